#ifndef CEMBER_KERNELS_H
#define CEMBER_KERNELS_H

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

/// out = a op b elementwise over n contiguous floats (op: 0 add, 1 sub, 2 mul, 3 div), AVX2;
/// `bScalar` broadcasts b[0].
void ember_binary_f32_avx2(int op, const float *a, const float *b, float *out, long n, int bScalar);
/// out = max(x, 0) (NaN kept) over n contiguous floats, AVX2.
void ember_relu_f32_avx2(const float *x, float *out, long n);
/// y[i] = exp(x[i]) (Cephes expf polynomial, relative error < 2e-7), AVX2+FMA.
void ember_exp_avx2(const float *x, float *y, long n);
/// Softmax (or log-softmax) of `rows` contiguous rows of `n` floats, AVX2+FMA.
void ember_softmax_rows_avx2(const float *x, float *y, long rows, long n, int log);
/// log Σ exp(row) of one row of `n` floats, AVX2+FMA.
float ember_logsumexp_avx2(const float *x, long n);

/// A chunk of a parallel job: fn(ctx, chunkIndex).
typedef void (*ember_pool_fn)(void *ctx, long chunk);
/// Starts the intra-op pool with `workers` threads (first call wins); returns how many run.
int ember_pool_start(int workers);
/// Runs chunks 0..<chunks on the pool and the calling thread; returns 0 when done, -1 when
/// the pool is busy or absent, -2 when called from inside a pool job (run it inline).
int ember_pool_run(ember_pool_fn fn, void *ctx, long chunks);
/// Sends spinning workers to sleep now (before handing the cores to another library's threads).
void ember_pool_park(void);
/// Whether this thread is running a pool job.
int ember_pool_in_job(void);

/// Calls NCCL's `ncclCommInitRank(comm, nranks, id, rank)` through `fn` (from dlsym): the
/// 128-byte id is passed by value, which only C can spell.
int ember_nccl_comm_init_rank(void *fn, void **comm, int nranks, const void *id128, int rank);

#ifdef __cplusplus
}
#endif
#endif
