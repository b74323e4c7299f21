#!/usr/bin/env bash
# Runs a command with Ember's GPU backend on the CUDA emulator (Tools/cuda-emulator): the
# driver API, NVRTC and cuBLAS entry points Ember uses, implemented on the host CPU, with
# kernels compiled from Ember's generated CUDA C by the host C++ compiler. No GPU, no CUDA.
#
#   bash Scripts/cuda-emulator.sh .build/release/ember-gpu-check --no-bench
#   bash Scripts/cuda-emulator.sh swift test --filter EmberCUDATests.CUDADeviceTests
#   bash Scripts/cuda-emulator.sh --selftest   # the emulator's own checks (Tools/cuda-emulator/selftest.cpp)
#
# The emulator is built into a temporary directory, which is removed afterwards, with the
# kernel cache. It is a correctness check of the GPU code path, not a GPU: timings mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS…]" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cxx=${EMBER_EMULATOR_CXX:-}
if [ -z "$cxx" ]; then
  # The first compiler that builds C++17 with its standard library (the emulator uses <map>).
  printf '#include <map>\n#include <math.h>\nint main() { std::map<int, int> m; return (int)m.size(); }\n' > "$dir/probe.cpp"
  for c in clang++ c++ g++; do
    command -v "$c" > /dev/null && "$c" -std=c++17 -o "$dir/probe" "$dir/probe.cpp" 2> /dev/null && { cxx=$c; break; }
  done
fi
[ -n "$cxx" ] || { echo "cuda-emulator: no working C++ compiler (tried clang++, c++, g++; apt-get install g++)" >&2; exit 1; }
"$cxx" -std=c++17 -O2 -fPIC -shared -o "$dir/libember-cuda-emulator.so" Tools/cuda-emulator/emulator.cpp -ldl -lpthread
if [ "$1" = --selftest ]; then
  "$cxx" -std=c++17 -O1 -o "$dir/selftest" Tools/cuda-emulator/selftest.cpp -ldl -lpthread
  TMPDIR="$dir" EMBER_EMULATOR_CXX="$cxx" "$dir/selftest" "$dir/libember-cuda-emulator.so"
  # The race check builds kernels with clang's sanitizer instrumentation: clang++ only.
  if "$cxx" --version 2> /dev/null | grep -q clang; then
    TMPDIR="$dir" EMBER_EMULATOR_CXX="$cxx" "$dir/selftest" "$dir/libember-cuda-emulator.so" --race
  else
    echo "race check self-test skipped: $cxx is not clang++"
  fi
  exit
fi
export EMBER_EMULATOR_CXX="$cxx"
export EMBER_CUDA_DRIVER="$dir/libember-cuda-emulator.so"
export EMBER_NVRTC_LIBRARY="$dir/libember-cuda-emulator.so"
export EMBER_CUBLAS_LIBRARY="$dir/libember-cuda-emulator.so"
export EMBER_CUDNN_LIBRARY="$dir/libember-cuda-emulator.so"
export EMBER_NCCL_LIBRARY="$dir/libember-cuda-emulator.so"
export EMBER_CACHE_DIR="$dir/kernel-cache"
export TMPDIR="$dir"
"$@"
