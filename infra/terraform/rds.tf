# --- MLflow's backend store: PostgreSQL on RDS in the cluster's private subnets,
# reachable only from the cluster's nodes and pods (the EKS cluster security group),
# encrypted with the Kiln key, the master password generated and rotated by RDS in
# Secrets Manager (never in the state). MLflow's artifacts stay in the S3 bucket.
# infra/k8s/ml-platform.yaml's MLflow reads the connection from the Secret
# `mlflow-db` (README: "Run on Kubernetes" shows how to fill it from the outputs).

resource "aws_db_subnet_group" "mlflow" {
  name       = "${var.cluster_name}-mlflow"
  subnet_ids = var.private_subnet_ids
}

resource "aws_security_group" "mlflow_db" {
  name        = "${var.cluster_name}-mlflow-db"
  description = "MLflow PostgreSQL: port 5432 from the EKS cluster only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "mlflow_db_from_cluster" {
  security_group_id            = aws_security_group.mlflow_db.id
  description                  = "PostgreSQL from the cluster's nodes and pods"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

resource "aws_db_parameter_group" "mlflow" {
  name   = "${var.cluster_name}-mlflow-pg16"
  family = "postgres16"
  # Connections only over TLS; statement logging for slow queries.
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
}

resource "aws_db_instance" "mlflow" {
  identifier                          = "${var.cluster_name}-mlflow"
  engine                              = "postgres"
  engine_version                      = var.mlflow_db_engine_version
  instance_class                      = var.mlflow_db_instance_class
  allocated_storage                   = var.mlflow_db_storage_gb
  max_allocated_storage               = var.mlflow_db_storage_gb * 5
  storage_type                        = "gp3"
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.kiln.arn
  db_name                             = "mlflow"
  username                            = "mlflow"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.kiln.arn
  iam_database_authentication_enabled = true
  db_subnet_group_name                = aws_db_subnet_group.mlflow.name
  vpc_security_group_ids              = [aws_security_group.mlflow_db.id]
  parameter_group_name                = aws_db_parameter_group.mlflow.name
  publicly_accessible                 = false
  multi_az                            = var.mlflow_db_multi_az
  backup_retention_period             = 14
  copy_tags_to_snapshot               = true
  deletion_protection                 = true
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.cluster_name}-mlflow-final"
  auto_minor_version_upgrade          = true
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.kiln.arn
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.rds_monitoring.arn
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
  name               = "${var.cluster_name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}
