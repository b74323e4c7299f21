#include "CEmberKernels.h"

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

#else  // not x86-64: no optional kernels; the portable Swift kernels run.

int ember_cpu_features(void) { return 0; }
void ember_sgemm_6x16_avx2(long kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    (void)kc; (void)a; (void)b; (void)c; (void)ldc; (void)accumulate;
}
void ember_sgemm_12x32_avx512(long kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    (void)kc; (void)a; (void)b; (void)c; (void)ldc; (void)accumulate;
}
#endif
