variable "name" {
  description = "Short name used as the prefix of every resource (lower case, letters, digits and dashes)."
  type        = string
  default     = "ecap"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 characters of a-z, 0-9 and dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name (production, staging, ...), part of every resource name."
  type        = string
  default     = "production"
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "tags" {
  description = "Extra tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC; split into one public and one private /20 per availability zone."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones (2 or 3, in var.region) to spread subnets, tasks, databases and Redis over."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b"]

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3
    error_message = "availability_zones must name 2 or 3 zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all private subnets (cheaper) instead of one per availability zone (survives the loss of a zone)."
  type        = bool
  default     = false
}

variable "certificate_arn" {
  description = "ARN of the ACM certificate for the load balancer's HTTPS listener (the shop's domain)."
  type        = string
}

variable "cors_origin" {
  description = "The shop's public origin (https://shop.example.com), sent as CORS_ORIGIN."
  type        = string
}

variable "image_tag" {
  description = "Tag of the ecap image in the ECR repository to run (the deploy workflow sets it to the git tag)."
  type        = string
  default     = "latest"
}

variable "service_cpu" {
  description = "Fargate CPU units of each service task (256 = 0.25 vCPU)."
  type        = map(number)
  default = {
    gateway   = 512
    users     = 512
    catalog   = 512
    orders    = 512
    analytics = 256
  }
}

variable "service_memory" {
  description = "Fargate memory (MiB) of each service task."
  type        = map(number)
  default = {
    gateway   = 1024
    users     = 1024
    catalog   = 1024
    orders    = 1024
    analytics = 512
  }
}

variable "service_desired_count" {
  description = "Running tasks per service; orders runs two replicas like the Compose topology."
  type        = map(number)
  default = {
    gateway   = 2
    users     = 2
    catalog   = 2
    orders    = 2
    analytics = 1
  }
}

variable "mysql_instance_class" {
  description = "RDS instance class of the users database (MySQL)."
  type        = string
  default     = "db.t4g.medium"
}

variable "mysql_engine_version" {
  description = "RDS MySQL engine version."
  type        = string
  default     = "8.0"
}

variable "postgres_instance_class" {
  description = "RDS instance class of the catalog, orders and analytics database (PostgreSQL)."
  type        = string
  default     = "db.t4g.medium"
}

variable "postgres_engine_version" {
  description = "RDS PostgreSQL engine version."
  type        = string
  default     = "15"
}

variable "db_allocated_storage" {
  description = "Initial storage of each RDS instance, GiB (grows automatically up to db_max_allocated_storage)."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage" {
  description = "Upper bound of RDS storage autoscaling, GiB."
  type        = number
  default     = 500
}

variable "db_multi_az" {
  description = "Run each RDS instance with a standby in a second availability zone."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups (point-in-time recovery window), 7-35."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 7 and 35."
  }
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "redis_engine_version" {
  description = "ElastiCache Redis engine version."
  type        = string
  default     = "7.1"
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps service, VPC flow and database logs."
  type        = number
  default     = 365
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may push images and deploy through OIDC; empty: no GitHub role."
  type        = string
  default     = ""
}

variable "github_oidc_provider_arn" {
  description = "ARN of an existing GitHub OIDC identity provider in the account; empty: this configuration creates one."
  type        = string
  default     = ""
}

variable "deletion_protection" {
  description = "Protect the load balancer and databases from deletion (turn off only to tear an environment down)."
  type        = bool
  default     = true
}
