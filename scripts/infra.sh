#!/usr/bin/env bash
# `make infra-init|infra-plan|infra-apply|infra-destroy`: terraform in infra/terraform.
# init takes the state bucket from TF_STATE_BUCKET (and TF_STATE_REGION); plan and
# apply read variables from TF_VARS_FILE (default infra/terraform/kiln.tfvars, see
# infra/terraform/kiln.tfvars.example). Without terraform: one line, exit 2.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
action=${1:?usage: infra.sh init|plan|apply|destroy}
terraform="${TERRAFORM:-terraform}"
dir="$root/infra/terraform"
command -v "$terraform" > /dev/null 2>&1 || { echo "make infra-$action: terraform not found (TERRAFORM=$terraform); install Terraform 1.6+" >&2; exit 2; }
vars="${TF_VARS_FILE:-$dir/kiln.tfvars}"
need_vars() {
  [ -f "$vars" ] || { echo "make infra-$action: no variables file $vars (copy infra/terraform/kiln.tfvars.example and fill it in)" >&2; exit 2; }
}
case "$action" in
  init)
    [ -n "${TF_STATE_BUCKET:-}" ] || { echo "make infra-init: set TF_STATE_BUCKET (a versioned S3 bucket for the state; TF_STATE_REGION too if not us-east-1)" >&2; exit 2; }
    exec "$terraform" -chdir="$dir" init -input=false \
      -backend-config="bucket=$TF_STATE_BUCKET" -backend-config="key=kiln/terraform.tfstate" \
      -backend-config="region=${TF_STATE_REGION:-us-east-1}" -backend-config="use_lockfile=true" ;;
  plan) need_vars; exec "$terraform" -chdir="$dir" plan -input=false -var-file="$vars" -out=kiln.tfplan ;;
  apply)
    if [ -f "$dir/kiln.tfplan" ]; then exec "$terraform" -chdir="$dir" apply -input=false kiln.tfplan; fi
    need_vars; exec "$terraform" -chdir="$dir" apply -input=false -var-file="$vars" ;;
  destroy) need_vars; exec "$terraform" -chdir="$dir" destroy -input=false -var-file="$vars" ;;
  *) echo "infra.sh: unknown action \`$action\` (init, plan, apply, destroy)" >&2; exit 2 ;;
esac
