#!/usr/bin/env bash
# Runs a command with Ember's GPU backend on the CUDA emulator (Tools/cuda-emulator): the
# driver API, NVRTC, cuBLAS, cuDNN and NCCL entry points Ember uses, implemented on the host
# CPU, with kernels compiled from Ember's generated CUDA C by the host C++ compiler. No GPU,
# no CUDA.
#
#   bash Scripts/cuda-emulator.sh .build/release/ember-gpu-check --no-bench
#   bash Scripts/cuda-emulator.sh swift test --filter EmberCUDATests.CUDADeviceTests
#   bash Scripts/cuda-emulator.sh --selftest   # the emulator's own checks (Tools/cuda-emulator/selftest.cpp)
#
# The emulator is built once per version of its sources and compiler, into
# .build/cuda-emulator/<hash>/ (so a CI run that uses it ten times builds it once); each run
# gets a temporary directory, removed afterwards, for the kernel cache and the kernels' own
# temporary files. It is a correctness check of the GPU code path, not a GPU: timings mean
# nothing.
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
sources=(memory queue racecheck driver nvrtc libraries nccl)
files=("${sources[@]/#/Tools/cuda-emulator/}")
files=("${files[@]/%/.cpp}")
key=$( { cat Tools/cuda-emulator/emulator.h Tools/cuda-emulator/selftest.cpp "${files[@]}"; "$cxx" --version; } | cksum | cut -d' ' -f1)
built=.build/cuda-emulator/$key
if [ ! -f "$built/libember-cuda-emulator.so" ]; then
  mkdir -p "$built.tmp.$$"
  "$cxx" -std=c++17 -O2 -fPIC -shared -fvisibility=hidden -o "$built.tmp.$$/libember-cuda-emulator.so" "${files[@]}" -ldl -lpthread
  "$cxx" -std=c++17 -O1 -o "$built.tmp.$$/selftest" Tools/cuda-emulator/selftest.cpp -ldl -lpthread
  rm -rf "$built" && mv "$built.tmp.$$" "$built"  # whole or not at all (another run may build it too)
fi
lib=$PWD/$built/libember-cuda-emulator.so
if [ "$1" = --selftest ]; then
  TMPDIR="$dir" EMBER_EMULATOR_CXX="$cxx" "$built/selftest" "$lib"
  # The race check builds kernels with clang's sanitizer instrumentation: clang++ only.
  if "$cxx" --version 2> /dev/null | grep -q clang; then
    TMPDIR="$dir" EMBER_EMULATOR_CXX="$cxx" "$built/selftest" "$lib" --race
  else
    echo "race check self-test skipped: $cxx is not clang++"
  fi
  exit
fi
export EMBER_EMULATOR_CXX="$cxx"
export EMBER_CUDA_DRIVER="$lib"
export EMBER_NVRTC_LIBRARY="$lib"
export EMBER_CUBLAS_LIBRARY="$lib"
export EMBER_CUDNN_LIBRARY="$lib"
export EMBER_NCCL_LIBRARY="$lib"
export EMBER_CACHE_DIR="${EMBER_CACHE_DIR:-$dir/kernel-cache}"  # a caller's cache (one per CI run) is kept
export TMPDIR="$dir"
"$@"
