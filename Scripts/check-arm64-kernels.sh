#!/usr/bin/env bash
# Cross-compiles Ember's C kernels for arm64 (Linux) with the toolchain's clang and checks
# that the portable code became NEON vector code. No arm64 sysroot is needed: the kernels use
# only <stdint.h> and logf from <math.h>, which stub headers stand in for. (The Swift side is
# not cross-built here; its SIMD types lower to NEON on arm64 by construction.)
set -euo pipefail
cd "$(dirname "$0")/.."
clang=$(command -v clang || true)
objdump=$(command -v llvm-objdump || true)
if [ -z "$clang" ] || [ -z "$objdump" ]; then echo "check-arm64-kernels: clang or llvm-objdump not found; skipped"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/inc"
printf 'typedef long int64_t;\ntypedef unsigned long uint64_t;\ntypedef int int32_t;\ntypedef unsigned uint32_t;\n' > "$work/inc/stdint.h"
printf 'float logf(float);\n' > "$work/inc/math.h"
for f in kernels conv optim; do
    "$clang" --target=aarch64-linux-gnu -O2 -nostdinc -isystem "$work/inc" -ISources/CEmberKernels/include \
        -c -o "$work/$f.o" "Sources/CEmberKernels/$f.c"
done
count() { "$objdump" -d "$work/$1.o" | grep -cE "$2" || true; }
sqrt=$(count optim 'fsqrt[[:space:]]+v[0-9]+\.4s')
conv=$(count conv '(fmla|fadd|fmax|fcmgt|bsl|bif|bit)[[:space:]]+v[0-9]+\.(4s|16b)')
echo "arm64: Adam square roots in NEON: $sqrt, conv/pool NEON vector instructions: $conv"
[ "$sqrt" -gt 0 ] && [ "$conv" -gt 0 ] || { echo "check-arm64-kernels: the portable kernels did not vectorise for NEON" >&2; exit 1; }
echo "arm64 kernels: ok"
