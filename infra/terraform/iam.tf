# --- Nodes: the managed node groups' instance role (AWS managed policies EKS needs).

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.cluster_name}-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
  ])
  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.key}"
}

# --- Service accounts (IRSA): a role per Kubernetes service account, trusted only by
# that account in that namespace, through the cluster's OIDC provider.

locals {
  service_accounts = {
    pipeline = {
      name     = var.pipeline_service_account
      prefixes = var.artifact_prefixes
      # Steps read and write run roots, read specs and data, keep the local registry.
      write = true
    }
    mlflow = {
      name     = "mlflow"
      prefixes = ["mlflow/"]
      write    = true
    }
  }
}

data "aws_iam_policy_document" "irsa_assume" {
  for_each = local.service_accounts
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.cluster.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = ["system:serviceaccount:${var.pipeline_namespace}:${each.value.name}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "service_account" {
  for_each           = local.service_accounts
  name               = "${var.cluster_name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume[each.key].json
}

# Least privilege on the bucket: list only under the prefixes, read and write objects
# only under them (multipart uploads included: every Kiln artifact is written as one),
# and use the bucket's KMS key only through S3.
data "aws_iam_policy_document" "bucket_prefixes" {
  for_each = local.service_accounts

  statement {
    sid       = "ListUnderPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.artifacts.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = flatten([for p in each.value.prefixes : [p, "${p}*"]])
    }
  }

  statement {
    sid = "ObjectsUnderPrefixes"
    actions = concat(
      ["s3:GetObject", "s3:GetObjectVersion"],
      each.value.write ? ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"] : [],
    )
    resources = [for p in each.value.prefixes : "${aws_s3_bucket.artifacts.arn}/${p}*"]
  }

  statement {
    sid       = "BucketKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.kiln.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "bucket_prefixes" {
  for_each = local.service_accounts
  name     = "artifact-bucket-prefixes"
  role     = aws_iam_role.service_account[each.key].id
  policy   = data.aws_iam_policy_document.bucket_prefixes[each.key].json
}
