output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority" {
  description = "Base64 CA certificate of the API endpoint."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "kubeconfig_command" {
  description = "Writes a kubeconfig entry for the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${aws_eks_cluster.this.name}"
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster (for more IRSA roles)."
  value       = aws_iam_openid_connect_provider.cluster.arn
}

output "artifact_bucket" {
  description = "The artifact bucket (the Argo template's `bucket` parameter)."
  value       = aws_s3_bucket.artifacts.bucket
}

output "pipeline_role_arn" {
  description = "Annotate the pipeline service account with it (eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.service_account["pipeline"].arn
}

output "mlflow_role_arn" {
  description = "Annotate the mlflow service account with it (eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.service_account["mlflow"].arn
}

output "kms_key_arn" {
  description = "KMS key of the bucket, secrets, volumes and logs."
  value       = aws_kms_key.kiln.arn
}

output "node_groups" {
  description = "Managed node groups and their scaling bounds."
  value = {
    for k, g in aws_eks_node_group.this : k => {
      name = g.node_group_name
      min  = g.scaling_config[0].min_size
      max  = g.scaling_config[0].max_size
    }
  }
}

output "cluster_autoscaler_role_arn" {
  description = "IAM role for the cluster-autoscaler service account (kube-system), for the Helm chart's rbac.serviceAccount.annotations."
  value       = aws_iam_role.autoscaler.arn
}

output "mlflow_db_endpoint" {
  description = "host:port of MLflow's PostgreSQL."
  value       = aws_db_instance.mlflow.endpoint
}

output "mlflow_db_secret_arn" {
  description = "Secrets Manager secret with the database's master credentials (managed and rotated by RDS)."
  value       = aws_db_instance.mlflow.master_user_secret[0].secret_arn
}
