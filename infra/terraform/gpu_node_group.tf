# Node groups: CPU system/steps (on-demand), GPU training (spot, 0-10, tainted) and GPU
# serving (on-demand, 1-10, tainted). GPU nodes run the EKS-optimised accelerated
# AMI (AL2023 NVIDIA: driver, container toolkit, containerd runtime preinstalled);
# user-data.sh checks the GPU and turns on persistence mode before the node joins.

locals {
  gpu_taint = {
    key    = "nvidia.com/gpu"
    value  = "true"
    effect = "NO_SCHEDULE"
  }

  node_groups = {
    system = {
      instance_types = var.system_instance_types
      capacity_type  = "ON_DEMAND"
      ami_type       = "AL2023_x86_64_STANDARD"
      min_size       = 2
      desired_size   = 2
      max_size       = 6
      gpu            = false
    }
    training = {
      instance_types = var.training_instance_types
      capacity_type  = "SPOT"
      ami_type       = "AL2023_x86_64_NVIDIA"
      min_size       = 0
      desired_size   = 0
      max_size       = var.training_max_nodes
      gpu            = true
    }
    serving = {
      instance_types = var.serving_instance_types
      capacity_type  = "ON_DEMAND"
      ami_type       = "AL2023_x86_64_NVIDIA"
      min_size       = var.serving_min_nodes
      desired_size   = var.serving_min_nodes
      max_size       = var.serving_max_nodes
      gpu            = true
    }
  }
}

# The GPU nodes' extra boot step, as a MIME part EKS merges with its own nodeadm config.
data "cloudinit_config" "gpu" {
  gzip          = false
  base64_encode = true
  boundary      = "//KILN-BOUNDARY//"

  part {
    content_type = "text/x-shellscript"
    filename     = "user-data.sh"
    content      = file("${path.module}/user-data.sh")
  }
}

resource "aws_launch_template" "node" {
  for_each    = local.node_groups
  name_prefix = "${var.cluster_name}-${each.key}-"
  description = "${var.cluster_name} ${each.key} nodes: encrypted gp3 root volume, IMDSv2 only"

  user_data = each.value.gpu ? data.cloudinit_config.gpu.rendered : null

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.node_volume_size_gb
      volume_type           = "gp3"
      iops                  = 3000
      throughput            = 125
      encrypted             = true
      kms_key_id            = aws_kms_key.kiln.arn
      delete_on_termination = true
    }
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1 # pods use IRSA, never the node's role
    instance_metadata_tags      = "disabled"
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      Name                  = "${var.cluster_name}-${each.key}"
      "kiln.dev/node-group" = each.key
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_eks_node_group" "this" {
  for_each        = local.node_groups
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "${var.cluster_name}-${each.key}"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.private_subnet_ids
  ami_type        = each.value.ami_type
  capacity_type   = each.value.capacity_type
  instance_types  = each.value.instance_types

  scaling_config {
    min_size     = each.value.min_size
    desired_size = each.value.desired_size
    max_size     = each.value.max_size
  }

  update_config {
    max_unavailable = 1
  }

  launch_template {
    id      = aws_launch_template.node[each.key].id
    version = aws_launch_template.node[each.key].latest_version
  }

  labels = merge(
    {
      "kiln.dev/node-group"    = each.key
      "kiln.dev/capacity-type" = lower(each.value.capacity_type)
    },
    each.value.gpu ? { "nvidia.com/gpu.present" = "true" } : {},
  )

  # GPU nodes take only pods that tolerate the GPU taint (train, serving).
  dynamic "taint" {
    for_each = each.value.gpu ? [local.gpu_taint] : []
    content {
      key    = taint.value.key
      value  = taint.value.value
      effect = taint.value.effect
    }
  }

  tags = {
    "k8s.io/cluster-autoscaler/enabled"             = "true"
    "k8s.io/cluster-autoscaler/${var.cluster_name}" = "owned"
  }

  # The autoscaler owns desired_size after creation.
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

# Managed node group tags do not reach the Auto Scaling group: the cluster-autoscaler
# reads these node-template tags from the ASG to scale a GPU group up from zero
# (its labels, its taint, one GPU per node).
locals {
  autoscaler_templates = merge([
    for group, config in local.node_groups : {
      for key, value in {
        "k8s.io/cluster-autoscaler/node-template/label/kiln.dev/node-group"    = group
        "k8s.io/cluster-autoscaler/node-template/label/nvidia.com/gpu.present" = "true"
        "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"         = "true:NoSchedule"
        "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"     = "1"
      } : "${group}|${key}" => { group = group, key = key, value = value }
    } if config.gpu
  ]...)
}

resource "aws_autoscaling_group_tag" "gpu_node_template" {
  for_each               = local.autoscaler_templates
  autoscaling_group_name = aws_eks_node_group.this[each.value.group].resources[0].autoscaling_groups[0].name

  tag {
    key                 = each.value.key
    value               = each.value.value
    propagate_at_launch = false
  }
}
