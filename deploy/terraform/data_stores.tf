# RDS MySQL (users), RDS PostgreSQL (catalog_db, orders_db, analytics_db),
# ElastiCache Redis: private subnets only, encrypted at rest with the
# environment's key and in transit, automated backups, deletion protection.

resource "aws_db_subnet_group" "main" {
  name       = local.prefix
  subnet_ids = aws_subnet.private[*].id
}

# Passwords live in Secrets Manager (below) and in the encrypted remote state.
resource "random_password" "mysql" {
  length  = 32
  special = false
}

resource "random_password" "postgres" {
  length  = 32
  special = false
}

resource "random_password" "redis" {
  length  = 48
  special = false
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${local.prefix}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_parameter_group" "mysql" {
  name   = "${local.prefix}-mysql"
  family = "mysql${var.mysql_engine_version}"

  # Clients must use TLS.
  parameter {
    name  = "require_secure_transport"
    value = "1"
  }
}

resource "aws_db_instance" "mysql" {
  identifier     = "${local.prefix}-mysql"
  engine         = "mysql"
  engine_version = var.mysql_engine_version
  instance_class = var.mysql_instance_class
  db_name        = "users_db"
  username       = "ecap"
  password       = random_password.mysql.result
  port           = 3306

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.main.arn

  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.mysql.id]
  publicly_accessible    = false
  multi_az               = var.db_multi_az
  parameter_group_name   = aws_db_parameter_group.mysql.name

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.prefix}-mysql-final"

  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["audit", "error", "general", "slowquery"]
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.main.arn
}

resource "aws_db_parameter_group" "postgres" {
  name   = "${local.prefix}-postgres"
  family = "postgres${var.postgres_engine_version}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }
}

resource "aws_db_instance" "postgres" {
  identifier     = "${local.prefix}-postgres"
  engine         = "postgres"
  engine_version = var.postgres_engine_version
  instance_class = var.postgres_instance_class
  # orders_db is created here; catalog_db and analytics_db by the one-off task
  # in docs/deploy.md ("First deploy").
  db_name  = "orders_db"
  username = "ecap"
  password = random_password.postgres.result
  port     = 5432

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.main.arn

  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.postgres.id]
  publicly_accessible    = false
  multi_az               = var.db_multi_az
  parameter_group_name   = aws_db_parameter_group.postgres.name

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.prefix}-postgres-final"

  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.main.arn
}

resource "aws_elasticache_subnet_group" "main" {
  name       = local.prefix
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id = local.prefix
  description          = "${local.prefix}: rate limits, sessions, event streams between services"
  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = 6379
  num_cache_clusters   = local.az_count

  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.main.name
  security_group_ids         = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.main.arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis.result

  snapshot_retention_limit   = 7
  snapshot_window            = "01:00-02:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  auto_minor_version_upgrade = true
}

# What each service reads as DATABASE_URL / REDIS_URL, injected by ECS from
# Secrets Manager (never in the task definition's plain environment).
locals {
  mysql_url    = "mysql://ecap:${random_password.mysql.result}@${aws_db_instance.mysql.address}:3306/users_db?ssl-mode=REQUIRED"
  postgres_url = "postgres://ecap:${random_password.postgres.result}@${aws_db_instance.postgres.address}:5432"
  secret_values = {
    users_database_url     = local.mysql_url
    catalog_database_url   = "${local.postgres_url}/catalog_db?sslmode=require"
    orders_database_url    = "${local.postgres_url}/orders_db?sslmode=require"
    analytics_database_url = "${local.postgres_url}/analytics_db?sslmode=require"
    redis_url              = "rediss://:${random_password.redis.result}@${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379"
    jwt_secret             = random_password.jwt.result
    internal_token         = random_password.internal.result
  }
}

resource "random_password" "jwt" {
  length  = 64
  special = false
}

resource "random_password" "internal" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "app" {
  # checkov:skip=CKV2_AWS_57:these are connection URLs built from the generated passwords; rotation is the runbook in docs/deploy.md (new random_password, apply, ECS rolls the tasks), not a Lambda
  for_each = local.secret_values

  name_prefix             = "${local.prefix}/${replace(each.key, "_", "-")}-"
  description             = "${local.prefix}: ${upper(each.key)}"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "app" {
  for_each = local.secret_values

  secret_id     = aws_secretsmanager_secret.app[each.key].id
  secret_string = each.value
}
