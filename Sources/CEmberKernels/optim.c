#include "CEmberKernels.h"

// Optimizer updates in portable C (no target attribute): the compiler vectorises them for the
// baseline instruction set (SSE2 / NEON), including the square root, which Swift's SIMD types
// lower to one scalar call per lane. No multiply-add contraction: each operation rounds as in
// the scalar reference loop.
#pragma clang fp contract(off)

static inline __attribute__((always_inline)) void adam_body(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                    float *restrict vmax, long n, const float *coef, int flags) {
    const float c1 = coef[0], b2 = coef[1], c2 = coef[2], eps = coef[3], wd = coef[4];
    const float decay = coef[5], step = coef[6], sbc2 = coef[7];
    const int hasDecay = flags & 1, decoupled = flags & 2;
#define BODY(DECAY_STMT, SECOND)                                                    \
    for (long i = 0; i < n; i++) {                                                  \
        float gi = g[i], pi = p[i];                                                 \
        DECAY_STMT;                                                                 \
        float mi = m[i] + c1 * (gi - m[i]);                                         \
        float vi = b2 * v[i] + c2 * gi * gi;                                        \
        m[i] = mi;                                                                  \
        v[i] = vi;                                                                  \
        float second = SECOND;                                                      \
        p[i] = pi - step * mi / (__builtin_elementwise_sqrt(second) / sbc2 + eps);  \
    }
#define MAXV (vmax[i] = vmax[i] > vi ? vmax[i] : vi)
    if (vmax) {
        if (!hasDecay) { BODY((void)0, MAXV) }
        else if (decoupled) { BODY(pi *= decay, MAXV) }
        else { BODY(gi += wd * pi, MAXV) }
    } else {
        if (!hasDecay) { BODY((void)0, vi) }
        else if (decoupled) { BODY(pi *= decay, vi) }
        else { BODY(gi += wd * pi, vi) }
    }
#undef MAXV
#undef BODY
}

// One copy per instruction set: the loop above, vectorised 4, 8 or 16 lanes wide.
void ember_adam_f32(float *p, const float *g, float *m, float *v, float *vmax, long n, const float *coef, int flags) {
    adam_body(p, g, m, v, vmax, n, coef, flags);
}
#if defined(__x86_64__) || defined(_M_X64)
__attribute__((target("avx2")))
void ember_adam_f32_avx2(float *p, const float *g, float *m, float *v, float *vmax, long n, const float *coef, int flags) {
    adam_body(p, g, m, v, vmax, n, coef, flags);
}
__attribute__((target("avx512f")))
void ember_adam_f32_avx512(float *p, const float *g, float *m, float *v, float *vmax, long n, const float *coef, int flags) {
    adam_body(p, g, m, v, vmax, n, coef, flags);
}
#else
void ember_adam_f32_avx2(float *p, const float *g, float *m, float *v, float *vmax, long n, const float *coef, int flags) {
    adam_body(p, g, m, v, vmax, n, coef, flags);
}
void ember_adam_f32_avx512(float *p, const float *g, float *m, float *v, float *vmax, long n, const float *coef, int flags) {
    adam_body(p, g, m, v, vmax, n, coef, flags);
}
#endif
