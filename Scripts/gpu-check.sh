#!/usr/bin/env bash
# The GPU verification in two steps (the GPU machine has no Swift).
#
#   bash Scripts/gpu-check.sh build   # here: static binary, stripped and xz-compressed into .build/gpu-check/
#   bash Scripts/gpu-check.sh run     # on the GPU machine, from the repository root (carry .build/gpu-check)
#   .build/release/ember-gpu-check --device cpu --no-bench   # dry run of the checker itself, here
#
# `run` unpacks the binary, makes NVRTC/cuBLAS/NCCL from the Python environment findable,
# and runs ember-gpu-check (op fixtures, layers, training, NCCL, speed against PyTorch).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  build)
    swift build -c release --static-swift-stdlib --product ember-gpu-check
    mkdir -p .build/gpu-check
    strip -o .build/gpu-check/ember-gpu-check .build/release/ember-gpu-check
    xz -T0 -6 -f .build/gpu-check/ember-gpu-check
    ls -la .build/gpu-check
    ;;
  run)
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    xz -dc .build/gpu-check/ember-gpu-check.xz > "$dir/ember-gpu-check"
    chmod +x "$dir/ember-gpu-check"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    export EMBER_CACHE_DIR="$dir/kernel-cache"
    "$dir/ember-gpu-check" "${@:2}"
    ;;
  *)
    echo "usage: $0 build | run [--no-bench]" >&2
    exit 2
    ;;
esac
