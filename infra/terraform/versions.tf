terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
    cloudinit = {
      source  = "hashicorp/cloudinit"
      version = "~> 2.3"
    }
  }

  # State belongs in a versioned, encrypted bucket with locking; pass it at init:
  #   terraform init -backend-config="bucket=<state bucket>" -backend-config="key=kiln/terraform.tfstate" \
  #                  -backend-config="region=<region>" -backend-config="use_lockfile=true"
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      "app.kubernetes.io/part-of" = "kiln"
      "kiln.dev/cluster"          = var.cluster_name
    })
  }
}
