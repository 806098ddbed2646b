# ECS on Fargate (docs/adr/0009-aws-compute-ecs-fargate.md): one service per
# ecap process of the split shape, all from the same image. The gateway sits
# behind the load balancer; the others are reached through Cloud Map names
# (users.ecap.internal, ...) inside the VPC.

locals {
  services = {
    gateway   = { port = 8000, database = null, public = true }
    users     = { port = 8001, database = "users_database_url", public = false }
    catalog   = { port = 8002, database = "catalog_database_url", public = false }
    orders    = { port = 8003, database = "orders_database_url", public = false }
    analytics = { port = 8004, database = "analytics_database_url", public = false }
  }
  namespace = "${var.name}.internal"
  image     = "${aws_ecr_repository.ecap.repository_url}:${var.image_tag}"

  common_environment = [
    { name = "CORS_ORIGIN", value = var.cors_origin },
    { name = "LOG_FORMAT", value = "json" },
    { name = "LOG_LEVEL", value = "info" },
    { name = "S3_BUCKET", value = aws_s3_bucket.images.id },
    { name = "AWS_REGION", value = var.region },
    { name = "USER_SERVICE_URL", value = "http://users.${local.namespace}:8001" },
    { name = "PRODUCT_SERVICE_URL", value = "http://catalog.${local.namespace}:8002" },
    { name = "ORDER_SERVICE_URL", value = "http://orders.${local.namespace}:8003" },
    { name = "ANALYTICS_SERVICE_URL", value = "http://analytics.${local.namespace}:8004" },
    # Only the load balancer (in the VPC) may set X-Forwarded-For.
    { name = "TRUSTED_PROXIES", value = var.vpc_cidr },
  ]
  common_secrets = ["jwt_secret", "internal_token", "redis_url"]
}

resource "aws_ecs_cluster" "main" {
  name = local.prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_service_discovery_private_dns_namespace" "main" {
  name = local.namespace
  vpc  = aws_vpc.main.id
}

resource "aws_service_discovery_service" "svc" {
  for_each = local.services
  name     = each.key

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.main.id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  health_check_custom_config {
    failure_threshold = 1
  }
}

resource "aws_cloudwatch_log_group" "svc" {
  for_each          = local.services
  name              = "/${local.prefix}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_ecs_task_definition" "svc" {
  for_each = local.services

  family                   = "${local.prefix}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.service_cpu[each.key]
  memory                   = var.service_memory[each.key]
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.key].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name                   = each.key
    image                  = local.image
    essential              = true
    readonlyRootFilesystem = true
    user                   = "10001:10001"
    portMappings           = [{ containerPort = each.value.port, protocol = "tcp" }]
    environment = concat(local.common_environment, [
      { name = "ECAP_ONLY", value = each.key },
      { name = "PORT", value = tostring(each.value.port) },
    ])
    secrets = concat(
      [for s in local.common_secrets : { name = upper(s), valueFrom = aws_secretsmanager_secret.app[s].arn }],
      each.value.database == null ? [] : [{ name = "DATABASE_URL", valueFrom = aws_secretsmanager_secret.app[each.value.database].arn }],
    )
    healthCheck = {
      command     = ["CMD", "ecap", "healthcheck"]
      interval    = 10
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }
    stopTimeout = 30
    mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    linuxParameters = {
      initProcessEnabled = true
      capabilities       = { drop = ["ALL"] }
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.svc[each.key].name
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
  }])

  volume {
    name = "tmp"
  }
}

resource "aws_ecs_service" "svc" {
  for_each = local.services

  name                   = each.key
  cluster                = aws_ecs_cluster.main.id
  task_definition        = aws_ecs_task_definition.svc[each.key].arn
  desired_count          = var.service_desired_count[each.key]
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  propagate_tags         = "SERVICE"
  enable_execute_command = false

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = each.value.public ? 60 : null

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }

  service_registries {
    registry_arn = aws_service_discovery_service.svc[each.key].arn
  }

  dynamic "load_balancer" {
    for_each = each.value.public ? [1] : []
    content {
      target_group_arn = aws_lb_target_group.gateway.arn
      container_name   = each.key
      container_port   = each.value.port
    }
  }

  depends_on = [aws_lb_listener.https]
}
