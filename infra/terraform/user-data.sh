#!/usr/bin/env bash
# GPU node boot step (merged by EKS with its own nodeadm configuration; runs before
# the node joins). The EKS-optimised accelerated AMI ships the NVIDIA driver and the
# container toolkit; this script refuses to let a node with a broken GPU join (no
# pod would run on it) and turns on persistence mode so that the first CUDA call of
# each training pod does not pay the driver's initialisation.
set -euo pipefail

log() { echo "kiln-user-data: $*" | systemd-cat -t kiln-user-data 2>/dev/null || echo "kiln-user-data: $*"; }

if ! command -v nvidia-smi > /dev/null 2>&1; then
  log "nvidia-smi not found: this node group must use the AL2023 NVIDIA AMI"
  exit 1
fi

for attempt in 1 2 3 4 5; do
  if nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > /tmp/kiln-gpu.txt 2>&1; then
    log "GPU ready: $(tr '\n' ';' < /tmp/kiln-gpu.txt)"
    break
  fi
  log "GPU not ready (attempt ${attempt}): $(cat /tmp/kiln-gpu.txt)"
  if [ "${attempt}" -eq 5 ]; then
    exit 1
  fi
  sleep 10
done

nvidia-smi --persistence-mode=1 > /dev/null
log "persistence mode on"
