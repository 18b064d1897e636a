# Kiln's GPU cluster: EKS with three managed node groups (CPU system/steps, spot GPU
# training scaling from zero, on-demand GPU serving), the artifact bucket, and IAM
# roles for the pipeline's and MLflow's service accounts (IRSA).
#
#   terraform init -backend-config=...   # see versions.tf
#   terraform apply -var vpc_id=vpc-... -var 'private_subnet_ids=["subnet-...","subnet-..."]' \
#                   -var artifact_bucket_name=<bucket>
#
# Files: eks.tf (control plane, KMS, logs, OIDC, add-ons), gpu_node_group.tf (node
# groups, launch templates, user-data.sh, cluster-autoscaler tags), s3.tf (artifact
# bucket), iam.tf (node and service-account roles), outputs.tf.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  oidc_host  = replace(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")
}
