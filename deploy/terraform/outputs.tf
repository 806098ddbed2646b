output "url" {
  description = "The shop's load balancer address (point the certificate's DNS name at it)."
  value       = "https://${aws_lb.main.dns_name}"
}

output "alb_dns_name" {
  description = "DNS name of the load balancer, for a CNAME/alias record."
  value       = aws_lb.main.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone of the load balancer, for a Route 53 alias record."
  value       = aws_lb.main.zone_id
}

output "ecr_repository_url" {
  description = "Where the deploy workflow pushes the ecap image."
  value       = aws_ecr_repository.ecap.repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster running the services."
  value       = aws_ecs_cluster.main.name
}

output "ecs_service_names" {
  description = "ECS service of each ecap process."
  value       = { for k, s in aws_ecs_service.svc : k => s.name }
}

output "images_bucket" {
  description = "S3 bucket of product images (S3_BUCKET)."
  value       = aws_s3_bucket.images.id
}

output "mysql_endpoint" {
  description = "RDS MySQL endpoint (users_db)."
  value       = aws_db_instance.mysql.endpoint
}

output "postgres_endpoint" {
  description = "RDS PostgreSQL endpoint (catalog_db, orders_db, analytics_db)."
  value       = aws_db_instance.postgres.endpoint
}

output "redis_endpoint" {
  description = "ElastiCache primary endpoint (TLS, auth token in Secrets Manager)."
  value       = aws_elasticache_replication_group.redis.primary_endpoint_address
}

output "secret_arns" {
  description = "Secrets Manager ARN of each connection URL and secret the tasks read."
  value       = { for k, s in aws_secretsmanager_secret.app : k => s.arn }
}

output "github_deploy_role_arn" {
  description = "Role the deploy workflow assumes through OIDC to push images and roll services (empty without github_repository)."
  value       = local.github_enabled ? aws_iam_role.github_deploy[0].arn : ""
}

output "private_subnet_ids" {
  description = "Private subnets (tasks, databases, Redis), e.g. for one-off ECS tasks."
  value       = aws_subnet.private[*].id
}

output "app_security_group_id" {
  description = "Security group of the service tasks, e.g. for one-off ECS tasks (migrations, create-admin)."
  value       = aws_security_group.app.id
}
