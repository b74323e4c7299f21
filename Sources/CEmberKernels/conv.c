#include "CEmberKernels.h"
#include <stdint.h>

// im2col/col2im, 2×2 max-pool and small dot-product GEMMs for float32, written once in
// plain C and compiled three times: portable (SSE2 on x86-64, NEON on arm64), AVX2 and
// AVX-512 (per-function target attributes; the caller picks by CPUID), each vectorised by
// the compiler. im2col/col2im replace per-segment memmove calls: a 3×3 convolution copies
// runs as short as the image width, where a library call cost more than the copy.

// The output columns [*xs, *xe) whose input column xo·stride + x0 lies in [0, width).
static inline void valid_columns(long x0, long stride, long width, long outWidth, long *xs, long *xe) {
    long s = x0 >= 0 ? 0 : (-x0 + stride - 1) / stride;
    long e = width - x0 <= 0 ? 0 : (width - x0 + stride - 1) / stride;
    if (s > outWidth) s = outWidth;
    if (e > outWidth) e = outWidth;
    if (e < s) e = s;
    *xs = s;
    *xe = e;
}

static inline __attribute__((always_inline)) void im2col_body(const float *restrict plane, float *restrict dst, long rowPitch, const long *g, float pad) {
    const long H = g[0], W = g[1], kh = g[2], kw = g[3], sh = g[4], sw = g[5];
    const long ph = g[6], pw = g[7], dh = g[8], dw = g[9], Ho = g[10], Wo = g[11];
    for (long i = 0; i < kh; i++) {
        for (long j = 0; j < kw; j++) {
            float *restrict row = dst + (i * kw + j) * rowPitch;
            const long x0 = j * dw - pw;
            long xs, xe;
            valid_columns(x0, sw, W, Wo, &xs, &xe);
            for (long y = 0; y < Ho; y++) {
                const long iy = y * sh - ph + i * dh;
                float *restrict r = row + y * Wo;
                if (iy < 0 || iy >= H) {
                    for (long xo = 0; xo < Wo; xo++) r[xo] = pad;
                    continue;
                }
                const float *restrict line = plane + iy * W;
                for (long xo = 0; xo < xs; xo++) r[xo] = pad;
                if (sw == 1) {
                    for (long xo = xs; xo < xe; xo++) r[xo] = line[xo + x0];
                } else {
                    for (long xo = xs; xo < xe; xo++) r[xo] = line[xo * sw + x0];
                }
                for (long xo = xe; xo < Wo; xo++) r[xo] = pad;
            }
        }
    }
}

static inline __attribute__((always_inline)) void col2im_body(const float *restrict rows, float *restrict plane, long rowPitch, const long *g) {
    const long H = g[0], W = g[1], kh = g[2], kw = g[3], sh = g[4], sw = g[5];
    const long ph = g[6], pw = g[7], dh = g[8], dw = g[9], Ho = g[10], Wo = g[11];
    for (long i = 0; i < kh; i++) {
        for (long j = 0; j < kw; j++) {
            const float *restrict row = rows + (i * kw + j) * rowPitch;
            const long x0 = j * dw - pw;
            long xs, xe;
            valid_columns(x0, sw, W, Wo, &xs, &xe);
            for (long y = 0; y < Ho; y++) {
                const long iy = y * sh - ph + i * dh;
                if (iy < 0 || iy >= H) continue;
                const float *restrict r = row + y * Wo;
                float *restrict line = plane + iy * W;
                if (sw == 1) {
                    for (long xo = xs; xo < xe; xo++) line[xo + x0] += r[xo];
                } else {
                    for (long xo = xs; xo < xe; xo++) line[xo * sw + x0] += r[xo];
                }
            }
        }
    }
}

static inline __attribute__((always_inline)) void maxpool2x2_body(const float *restrict plane, float *restrict out, int64_t *restrict idx,
                                long W, long Ho, long Wo) {
    // Branch-free selects (the comparisons depend on the data and mispredict half the time
    // as branches). Scan order a, b, c, d; a later element wins when it is greater or NaN,
    // as PyTorch's kernel does.
    for (long y = 0; y < Ho; y++) {
        const long r0 = 2 * y * W, r1 = r0 + W;
        const float *restrict p0 = plane + r0, *restrict p1 = plane + r1;
        float *restrict o = out + y * Wo;
        int64_t *restrict io = idx + y * Wo;
        for (long xo = 0; xo < Wo; xo++) {
            float best = p0[2 * xo];
            long at = r0 + 2 * xo;
            float b = p0[2 * xo + 1], c = p1[2 * xo], d = p1[2 * xo + 1];
            int tb = (b > best) | (b != b);
            best = tb ? b : best;
            at = tb ? r0 + 2 * xo + 1 : at;
            int tc = (c > best) | (c != c);
            best = tc ? c : best;
            at = tc ? r1 + 2 * xo : at;
            int td = (d > best) | (d != d);
            best = td ? d : best;
            at = td ? r1 + 2 * xo + 1 : at;
            o[xo] = best;
            io[xo] = at;
        }
    }
}

static inline __attribute__((always_inline)) void dots_body(const float *restrict a, long lda, const float *restrict b, long ldb, float *restrict c, long ldc,
                    long m, long n, long k, int accumulate) {
    // Products whose m·n is small and k long (a convolution's weight gradient with few
    // input channels): dot products of contiguous rows beat packing for a GEMM.
#pragma clang fp reassociate(on)
    for (long i = 0; i < m; i++) {
        const float *restrict ai = a + i * lda;
        for (long j = 0; j < n; j++) {
            const float *restrict bj = b + j * ldb;
            float s = 0;
            for (long q = 0; q < k; q++) s += ai[q] * bj[q];
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + s : s;
        }
    }
}

// ---- one entry point per instruction set ----
#define PARAMS_IM2COL (const float *plane, float *dst, long rowPitch, const long *g, float pad)
#define ARGS_IM2COL (plane, dst, rowPitch, g, pad)
#define PARAMS_COL2IM (const float *rows, float *plane, long rowPitch, const long *g)
#define ARGS_COL2IM (rows, plane, rowPitch, g)
#define PARAMS_POOL (const float *plane, float *out, int64_t *idx, long W, long Ho, long Wo)
#define ARGS_POOL (plane, out, idx, W, Ho, Wo)
#define PARAMS_DOTS (const float *a, long lda, const float *b, long ldb, float *c, long ldc, long m, long n, long k, int accumulate)
#define ARGS_DOTS (a, lda, b, ldb, c, ldc, m, n, k, accumulate)

#if defined(__x86_64__) || defined(_M_X64)
#define ATTR_AVX2 __attribute__((target("avx2,fma")))
#define ATTR_AVX512 __attribute__((target("avx512f")))
#else
#define ATTR_AVX2
#define ATTR_AVX512
#endif

#define VARIANTS(NAME, BODY, PARAMS, ARGS)                 \
    void NAME PARAMS { BODY ARGS; }                        \
    ATTR_AVX2 void NAME##_avx2 PARAMS { BODY ARGS; }       \
    ATTR_AVX512 void NAME##_avx512 PARAMS { BODY ARGS; }

VARIANTS(ember_im2col_plane_f32, im2col_body, PARAMS_IM2COL, ARGS_IM2COL)
VARIANTS(ember_col2im_plane_f32, col2im_body, PARAMS_COL2IM, ARGS_COL2IM)
VARIANTS(ember_maxpool2x2_plane_f32, maxpool2x2_body, PARAMS_POOL, ARGS_POOL)
VARIANTS(ember_dots_f32, dots_body, PARAMS_DOTS, ARGS_DOTS)
