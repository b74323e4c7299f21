#include "CEmberKernels.h"
#include <math.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static void cpuid(int leaf, int sub, unsigned r[4]) { int x[4]; __cpuidex(x, leaf, sub); for (int i = 0; i < 4; i++) r[i] = (unsigned)x[i]; }
static unsigned long long xgetbv0(void) { return _xgetbv(0); }
#else
#include <cpuid.h>
static void cpuid(int leaf, int sub, unsigned r[4]) { __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]); }
static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

int ember_cpu_features(void) {
    unsigned r[4];
    cpuid(0, 0, r);
    if (r[0] < 7) return 0;
    cpuid(1, 0, r);
    int fma = (r[2] >> 12) & 1, osxsave = (r[2] >> 27) & 1, avx = (r[2] >> 28) & 1;
    if (!osxsave || !avx) return 0;
    unsigned long long xcr0 = xgetbv0();
    if ((xcr0 & 6) != 6) return 0;  // the OS saves SSE and AVX state
    cpuid(7, 0, r);
    int avx2 = (r[1] >> 5) & 1, avx512f = (r[1] >> 16) & 1;
    int features = 0;
    if (avx2 && fma) features |= EMBER_ISA_AVX2_FMA;
    if (avx512f && (features & EMBER_ISA_AVX2_FMA) && (xcr0 & 0xe6) == 0xe6) features |= EMBER_ISA_AVX512;  // opmask + ZMM state
    return features;
}

__attribute__((target("avx2,fma")))
void ember_sgemm_6x16_avx2(long kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (long k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 x;
        x = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
        a += 6;
        b += 16;
    }
#define STORE_ROW(r, lo, hi)                                                              \
    do {                                                                                  \
        float *p = c + (r) * ldc;                                                         \
        if (accumulate) { lo = _mm256_add_ps(lo, _mm256_loadu_ps(p)); hi = _mm256_add_ps(hi, _mm256_loadu_ps(p + 8)); } \
        _mm256_storeu_ps(p, lo);                                                          \
        _mm256_storeu_ps(p + 8, hi);                                                      \
    } while (0)
    STORE_ROW(0, c00, c01); STORE_ROW(1, c10, c11); STORE_ROW(2, c20, c21);
    STORE_ROW(3, c30, c31); STORE_ROW(4, c40, c41); STORE_ROW(5, c50, c51);
#undef STORE_ROW
}

__attribute__((target("avx512f")))
void ember_sgemm_12x32_avx512(long kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    __m512 acc[12][2];
    for (int i = 0; i < 12; i++) { acc[i][0] = _mm512_setzero_ps(); acc[i][1] = _mm512_setzero_ps(); }
    for (long k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        for (int i = 0; i < 12; i++) {
            __m512 x = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(x, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(x, b1, acc[i][1]);
        }
        a += 12;
        b += 32;
    }
    for (int i = 0; i < 12; i++) {
        float *p = c + i * ldc;
        __m512 lo = acc[i][0], hi = acc[i][1];
        if (accumulate) { lo = _mm512_add_ps(lo, _mm512_loadu_ps(p)); hi = _mm512_add_ps(hi, _mm512_loadu_ps(p + 16)); }
        _mm512_storeu_ps(p, lo);
        _mm512_storeu_ps(p + 16, hi);
    }
}

__attribute__((target("avx2")))
void ember_binary_f32_avx2(int op, const float *a, const float *b, float *out, long n, int bScalar) {
    long i = 0;
    __m256 bs = _mm256_set1_ps(b[0]);
#define LOOP(EXPR, SEXPR)                                                                  \
    for (; i + 8 <= n; i += 8) {                                                           \
        __m256 x = _mm256_loadu_ps(a + i), y = bScalar ? bs : _mm256_loadu_ps(b + i);       \
        _mm256_storeu_ps(out + i, EXPR);                                                   \
    }                                                                                      \
    for (; i < n; i++) { float x = a[i], y = bScalar ? b[0] : b[i]; out[i] = SEXPR; }
    switch (op) {
    case 0: LOOP(_mm256_add_ps(x, y), x + y) break;
    case 1: LOOP(_mm256_sub_ps(x, y), x - y) break;
    case 2: LOOP(_mm256_mul_ps(x, y), x * y) break;
    default: LOOP(_mm256_div_ps(x, y), x / y) break;
    }
#undef LOOP
}

__attribute__((target("avx2")))
void ember_relu_f32_avx2(const float *x, float *out, long n) {
    long i = 0;
    __m256 z = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        // v < 0 ? 0 : v (NaN compares false and is kept, as PyTorch's relu does).
        _mm256_storeu_ps(out + i, _mm256_blendv_ps(v, z, _mm256_cmp_ps(v, z, _CMP_LT_OQ)));
    }
    for (; i < n; i++) out[i] = x[i] < 0 ? 0 : x[i];
}

__attribute__((target("avx2,fma")))
static inline __m256 exp8(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.72283905206835f), lo = _mm256_set1_ps(-87.33654475055310f);
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ), under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 v = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(v, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    v = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), v);
    v = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), v);
    __m256 v2 = _mm256_mul_ps(v, v);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, v2, _mm256_add_ps(v, _mm256_set1_ps(1.0f)));
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i half = _mm256_srai_epi32(ni, 1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), _mm256_set1_epi32(127)), 23));
    __m256 r = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    r = _mm256_blendv_ps(r, _mm256_set1_ps(__builtin_inff()), over);
    r = _mm256_blendv_ps(r, _mm256_setzero_ps(), under);
    return _mm256_blendv_ps(r, x, nan);
}

__attribute__((target("avx2,fma")))
static inline float exp1(float x) {
    float in[8] = {x}, out[8];
    _mm256_storeu_ps(out, exp8(_mm256_loadu_ps(in)));
    return out[0];
}

__attribute__((target("avx2,fma")))
void ember_exp_avx2(const float *x, float *y, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = exp1(x[i]);
}

__attribute__((target("avx2,fma")))
static float row_max(const float *x, long n) {
    __m256 m = _mm256_set1_ps(-__builtin_inff());
    long i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    float t[8], r = -__builtin_inff();
    _mm256_storeu_ps(t, m);
    for (int k = 0; k < 8; k++) r = t[k] > r ? t[k] : r;
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return (r == -__builtin_inff()) ? 0.0f : r;
}

__attribute__((target("avx2,fma")))
static float sum_exp(const float *x, float *store, long n, float m) {
    __m256 mm = _mm256_set1_ps(m), s = _mm256_setzero_ps();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mm));
        if (store) _mm256_storeu_ps(store + i, e);
        s = _mm256_add_ps(s, e);
    }
    float t[8], r = 0;
    _mm256_storeu_ps(t, s);
    for (int k = 0; k < 8; k++) r += t[k];
    for (; i < n; i++) {
        float e = exp1(x[i] - m);
        if (store) store[i] = e;
        r += e;
    }
    return r;
}

__attribute__((target("avx2,fma")))
float ember_logsumexp_avx2(const float *x, long n) {
    float m = row_max(x, n);
    return m + logf(sum_exp(x, 0, n, m));
}

__attribute__((target("avx2,fma")))
void ember_softmax_rows_avx2(const float *x, float *y, long rows, long n, int log) {
    for (long r = 0; r < rows; r++) {
        const float *a = x + r * n;
        float *o = y + r * n;
        float m = row_max(a, n);
        float s = sum_exp(a, log ? 0 : o, n, m);
        if (log) {
            float shift = m + logf(s);
            for (long j = 0; j < n; j++) o[j] = a[j] - shift;
        } else {
            __m256 inv = _mm256_set1_ps(1.0f / s);
            long j = 0;
            for (; j + 8 <= n; j += 8) _mm256_storeu_ps(o + j, _mm256_mul_ps(_mm256_loadu_ps(o + j), inv));
            for (; j < n; j++) o[j] *= 1.0f / s;
        }
    }
}

#else  // not x86-64: no optional kernels; the portable Swift kernels run.

int ember_cpu_features(void) { return 0; }
void ember_sgemm_6x16_avx2(long kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    (void)kc; (void)a; (void)b; (void)c; (void)ldc; (void)accumulate;
}
void ember_sgemm_12x32_avx512(long kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    (void)kc; (void)a; (void)b; (void)c; (void)ldc; (void)accumulate;
}
void ember_exp_avx2(const float *x, float *y, long n) { (void)x; (void)y; (void)n; }
void ember_binary_f32_avx2(int op, const float *a, const float *b, float *out, long n, int bScalar) {
    (void)op; (void)a; (void)b; (void)out; (void)n; (void)bScalar;
}
void ember_relu_f32_avx2(const float *x, float *out, long n) { (void)x; (void)out; (void)n; }
void ember_softmax_rows_avx2(const float *x, float *y, long rows, long n, int log) { (void)x; (void)y; (void)rows; (void)n; (void)log; }
float ember_logsumexp_avx2(const float *x, long n) { (void)x; (void)n; return 0; }
#endif
