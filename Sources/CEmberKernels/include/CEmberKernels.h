#ifndef CEMBER_KERNELS_H
#define CEMBER_KERNELS_H

#include <stdint.h>

// Hot CPU kernels compiled for several instruction sets in one portable binary: each
// function carries its own target attribute and is called only after CPUID says the
// processor (and the OS) supports it. No global -march flag is used.

#ifdef __cplusplus
extern "C" {
#endif

/// Bit set of the instruction sets this CPU and OS support (see EMBER_ISA_*).
int ember_cpu_features(void);
#define EMBER_ISA_AVX2_FMA 1
#define EMBER_ISA_AVX512 2

/// C[6x16] (+)= A[kc x 6 packed] * B[kc x 16 packed]; C rows are ldc floats apart.
void ember_sgemm_6x16_avx2(long kc, const float *a, const float *b, float *c, long ldc, int accumulate);
/// C[12x32] (+)= A[kc x 12 packed] * B[kc x 32 packed].
void ember_sgemm_12x32_avx512(long kc, const float *a, const float *b, float *c, long ldc, int accumulate);

/// Vector kernels, one copy per instruction set (suffix _avx2: AVX2+FMA, _avx512: AVX-512F),
/// called only when CPUID says the CPU has it:
/// out = a op b elementwise over n contiguous floats (op: 0 add, 1 sub, 2 mul, 3 div);
/// `bScalar` broadcasts b[0]. (Memory-bound: AVX2 only, also used on AVX-512 CPUs.)
void ember_binary_f32_avx2(int op, const float *a, const float *b, float *out, long n, int bScalar);
/// out = max(x, 0) (NaN kept) over n contiguous floats (AVX2 only, as above).
void ember_relu_f32_avx2(const float *x, float *out, long n);
/// y[i] = exp(x[i]) (Cephes expf polynomial, relative error < 2e-7).
void ember_exp_avx2(const float *x, float *y, long n);
void ember_exp_avx512(const float *x, float *y, long n);
/// Softmax (or log-softmax) of `rows` contiguous rows of `n` floats.
void ember_softmax_rows_avx2(const float *x, float *y, long rows, long n, int log);
void ember_softmax_rows_avx512(const float *x, float *y, long rows, long n, int log);
/// log Σ exp(row) of one row of `n` floats.
float ember_logsumexp_avx2(const float *x, long n);
float ember_logsumexp_avx512(const float *x, long n);

/// Σ x[0..<n] accumulated in float64 (AVX2: 4 lanes × 4 accumulators; AVX-512: 8 × 4).
double ember_sum_f32_avx2(const float *x, long n);
double ember_sum_f32_avx512(const float *x, long n);

/// im2col of one float32 image plane [H, W]: writes kh·kw rows (row (i·kw + j) at
/// `dst + (i·kw + j)·rowPitch`) of Ho·Wo columns, `pad` outside the image. `g` holds
/// H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo. Portable code, and AVX2 / AVX-512 copies
/// of the same C (the _avx2/_avx512 entry points, for CPUs that have them).
void ember_im2col_plane_f32(const float *plane, float *dst, long rowPitch, const long *g, float pad);
void ember_im2col_plane_f32_avx2(const float *plane, float *dst, long rowPitch, const long *g, float pad);
void ember_im2col_plane_f32_avx512(const float *plane, float *dst, long rowPitch, const long *g, float pad);
/// col2im of one plane: adds the kh·kw rows (laid out as im2col writes them) into `plane`.
void ember_col2im_plane_f32(const float *rows, float *plane, long rowPitch, const long *g);
void ember_col2im_plane_f32_avx2(const float *rows, float *plane, long rowPitch, const long *g);
void ember_col2im_plane_f32_avx512(const float *rows, float *plane, long rowPitch, const long *g);

/// 2×2 max-pool with stride 2 of one float32 plane (row length W) into Ho×Wo outputs and
/// their flat input positions; a later element wins ties only when greater or NaN.
void ember_maxpool2x2_plane_f32(const float *plane, float *out, int64_t *idx, long W, long Ho, long Wo);
void ember_maxpool2x2_plane_f32_avx2(const float *plane, float *out, int64_t *idx, long W, long Ho, long Wo);
void ember_maxpool2x2_plane_f32_avx512(const float *plane, float *out, int64_t *idx, long W, long Ho, long Wo);

/// One Adam/AdamW step over n float32 parameters (PyTorch's single-tensor algorithm).
/// coef: 1−β1, β2, 1−β2, eps, weight decay, 1−lr·wd, lr/bc1, √bc2; flags: 1 weight decay,
/// 2 decoupled (AdamW); vmax non-NULL for AMSGrad. Portable code, and AVX2 / AVX-512 copies
/// (no fused multiply-add in any: every copy rounds like the scalar loop).
void ember_adam_f32(float *p, const float *g, float *m, float *v, float *vmax, long n, const float *coef, int flags);
void ember_adam_f32_avx2(float *p, const float *g, float *m, float *v, float *vmax, long n, const float *coef, int flags);
void ember_adam_f32_avx512(float *p, const float *g, float *m, float *v, float *vmax, long n, const float *coef, int flags);

/// c[i, j] (+)= Σ_q a[i, q]·b[j, q] for row-major a [m, k] and b [n, k] (dot products of
/// contiguous rows; summation order left to the compiler's vectoriser). Portable code.
void ember_dots_f32(const float *a, long lda, const float *b, long ldb, float *c, long ldc, long m, long n, long k, int accumulate);
void ember_dots_f32_avx2(const float *a, long lda, const float *b, long ldb, float *c, long ldc, long m, long n, long k, int accumulate);
void ember_dots_f32_avx512(const float *a, long lda, const float *b, long ldb, float *c, long ldc, long m, long n, long k, int accumulate);

#ifdef __cplusplus
}
#endif
#endif
