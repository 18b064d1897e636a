variable "region" {
  description = "AWS region of the cluster and the artifact bucket."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "cluster_name" {
  description = "Name of the EKS cluster (also the prefix of every IAM role and the KMS alias)."
  type        = string
  default     = "kiln"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}$", var.cluster_name))
    error_message = "cluster_name must be 2-39 characters: lower-case letters, digits and '-', starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the EKS control plane and node groups."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.(3[0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be a supported EKS minor version, 1.30 or later (e.g. 1.33)."
  }
}

variable "vpc_id" {
  description = "VPC the cluster runs in."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two, in different availability zones) for the control plane ENIs and the nodes."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2 && alltrue([for s in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "private_subnet_ids needs at least two subnet ids (subnet-...)."
  }
}

variable "api_allowed_cidrs" {
  description = "CIDR blocks allowed to reach the public Kubernetes API endpoint (your office or VPN). Empty keeps the endpoint private only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.api_allowed_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "api_allowed_cidrs must be CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "artifact_bucket_name" {
  description = "Name of the S3 bucket for pipeline artifacts (runs/, specs/, data/, registry/)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.artifact_bucket_name)) && !can(regex("\\.\\.", var.artifact_bucket_name))
    error_message = "artifact_bucket_name must be a valid S3 bucket name (3-63 lower-case letters, digits, '.', '-')."
  }
}

variable "artifact_prefixes" {
  description = "Key prefixes in the artifact bucket the pipeline steps may read and write (least privilege: nothing outside them)."
  type        = list(string)
  default     = ["runs/", "specs/", "data/", "registry/"]

  validation {
    condition     = length(var.artifact_prefixes) > 0 && alltrue([for p in var.artifact_prefixes : can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/$", p))])
    error_message = "artifact_prefixes must be non-empty key prefixes ending in '/', without a leading '/'."
  }
}

variable "artifact_noncurrent_days" {
  description = "Days to keep noncurrent (overwritten or deleted) object versions in the artifact bucket."
  type        = number
  default     = 90

  validation {
    condition     = var.artifact_noncurrent_days >= 1 && var.artifact_noncurrent_days <= 3650
    error_message = "artifact_noncurrent_days must be between 1 and 3650."
  }
}

variable "training_instance_types" {
  description = "Instance types of the spot training node group (GPU, one NVIDIA A10G on g5.xlarge)."
  type        = list(string)
  default     = ["g5.xlarge"]

  validation {
    condition     = length(var.training_instance_types) > 0 && alltrue([for t in var.training_instance_types : can(regex("^(g4dn|g5|g6|g6e|p3|p4d|p5)\\.", t))])
    error_message = "training_instance_types must be GPU instance types (g4dn, g5, g6, g6e, p3, p4d, p5)."
  }
}

variable "training_max_nodes" {
  description = "Upper bound of the spot training node group (it scales from 0)."
  type        = number
  default     = 10

  validation {
    condition     = var.training_max_nodes >= 1 && var.training_max_nodes <= 100
    error_message = "training_max_nodes must be between 1 and 100."
  }
}

variable "serving_instance_types" {
  description = "Instance types of the on-demand serving node group."
  type        = list(string)
  default     = ["g5.xlarge"]

  validation {
    condition     = length(var.serving_instance_types) > 0
    error_message = "serving_instance_types needs at least one instance type."
  }
}

variable "serving_min_nodes" {
  description = "Lower bound (and initial size) of the on-demand serving node group."
  type        = number
  default     = 1

  validation {
    condition     = var.serving_min_nodes >= 1
    error_message = "serving_min_nodes must be at least 1: serving never scales to zero."
  }
}

variable "serving_max_nodes" {
  description = "Upper bound of the on-demand serving node group."
  type        = number
  default     = 10

  validation {
    condition     = var.serving_max_nodes >= 1 && var.serving_max_nodes <= 100
    error_message = "serving_max_nodes must be between 1 and 100."
  }
}

variable "system_instance_types" {
  description = "Instance types of the CPU node group for the CPU steps, Argo, MLflow and cluster add-ons."
  type        = list(string)
  default     = ["m6i.xlarge"]

  validation {
    condition     = length(var.system_instance_types) > 0
    error_message = "system_instance_types needs at least one instance type."
  }
}

variable "node_volume_size_gb" {
  description = "Root volume size of every node, in GB (gp3, encrypted)."
  type        = number
  default     = 200

  validation {
    condition     = var.node_volume_size_gb >= 50 && var.node_volume_size_gb <= 2000
    error_message = "node_volume_size_gb must be between 50 and 2000 (the GPU AMI and CUDA images need room)."
  }
}

variable "pipeline_namespace" {
  description = "Kubernetes namespace of the Argo workflows and MLflow (infra/k8s/ml-platform.yaml)."
  type        = string
  default     = "kiln"
}

variable "pipeline_service_account" {
  description = "Service account the pipeline steps run as (the WorkflowTemplate's serviceAccountName)."
  type        = string
  default     = "kiln-pipeline"
}

variable "log_retention_days" {
  description = "Retention of the EKS control-plane logs in CloudWatch, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch accepts (e.g. 30, 90, 365)."
  }
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "mlflow_db_instance_class" {
  description = "RDS instance class of MLflow's PostgreSQL."
  type        = string
  default     = "db.t4g.small"
}

variable "mlflow_db_engine_version" {
  description = "PostgreSQL major version of MLflow's database (the parameter group's family follows it)."
  type        = string
  default     = "16"

  validation {
    condition     = var.mlflow_db_engine_version == "16"
    error_message = "rds.tf's parameter group is for postgres16; change both together."
  }
}

variable "mlflow_db_storage_gb" {
  description = "Initial storage of MLflow's database in GiB (autoscaling to five times this)."
  type        = number
  default     = 20
}

variable "mlflow_db_multi_az" {
  description = "A standby in a second availability zone for MLflow's database."
  type        = bool
  default     = true
}
