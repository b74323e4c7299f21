// The libraries' entry points Ember calls: cuBLAS's strided-batched GEMM (float, double) and
// cuDNN's legacy convolution API (NCHW, forward and both backward passes), as direct loops
// queued like kernels and checked for contexts like them.
#include "emulator.h"

namespace emu {

struct Handle { void* stream; int device; };

}  // namespace emu

using namespace emu;

// MARK: - cuBLAS

API int cublasCreate_v2(void** h) {
    if (currentDevice < 0) { noContext(__func__); return 1; }  // CUBLAS_STATUS_NOT_INITIALIZED
    *h = new Handle{nullptr, currentDevice};
    return 0;
}
API int cublasDestroy_v2(void* h) { delete (Handle*)h; return 0; }
API int cublasSetStream_v2(void* h, void* s) { ((Handle*)h)->stream = s; return 0; }
API int cublasSetMathMode(void*, int) { return 0; }

template <typename T>
static int gemmStridedBatched(void* handle, int ta, int tb, int m, int n, int k, const T* alpha, uint64_t a, int lda, long long sa,
                              uint64_t b, int ldb, long long sb, const T* beta, uint64_t c, int ldc, long long sc, int batch,
                              OpKind kind) {
    LOCK;
    Handle* hd = (Handle*)handle;
    if (!hd) return 1;  // CUBLAS_STATUS_NOT_INITIALIZED
    // cuBLAS runs on the calling thread's current device: it must be the handle's.
    if (currentDevice != hd->device || streamDevice(hd->stream) != hd->device) {
        if (currentDevice < 0) noContext("cublasGemmStridedBatched"); else otherDevice("cublasGemmStridedBatched", "handle or its stream", hd->device);
        return 13;  // CUBLAS_STATUS_EXECUTION_FAILED
    }
    if (m < 0 || n < 0 || k < 0 || batch < 0 || ta < 0 || ta > 2 || tb < 0 || tb > 2) return 7;  // CUBLAS_STATUS_INVALID_VALUE
    if (ldc < (m > 1 ? m : 1) || lda < ((ta ? k : m) > 1 ? (ta ? k : m) : 1) || ldb < ((tb ? n : k) > 1 ? (tb ? n : k) : 1)) return 7;
    if (m == 0 || n == 0 || batch == 0) return 0;
    Op op;
    op.kind = kind;
    op.gemm = Gemm{ta != 0, tb != 0, m, n, k, (double)*alpha, (double)*beta, a, b, c, lda, ldb, ldc, sa, sb, sc, batch};
    enqueue(std::move(op), handle ? ((Handle*)handle)->stream : nullptr);
    return 0;
}

API int cublasSgemmStridedBatched(void* h, int ta, int tb, int m, int n, int k, const float* alpha, uint64_t a, int lda, long long sa,
                                  uint64_t b, int ldb, long long sb, const float* beta, uint64_t c, int ldc, long long sc, int batch) {
    return gemmStridedBatched<float>(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch, GEMM_F32);
}
API int cublasDgemmStridedBatched(void* h, int ta, int tb, int m, int n, int k, const double* alpha, uint64_t a, int lda, long long sa,
                                  uint64_t b, int ldb, long long sb, const double* beta, uint64_t c, int ldc, long long sc, int batch) {
    return gemmStridedBatched<double>(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch, GEMM_F64);
}

// MARK: - cuDNN: the legacy convolution API for NCHW float/double tensors, as direct loops

namespace emu {
struct DnnTensor { int dtype = 0, n = 0, c = 0, h = 0, w = 0; };
struct DnnFilter { int dtype = 0, k = 0, c = 0, h = 0, w = 0; };
struct DnnConv { int ph = 0, pw = 0, sh = 1, sw = 1, dh = 1, dw = 1, mode = 1, groups = 1, math = 0; };
struct DnnHandle { void* stream = nullptr; int device = currentDevice; };
// cudnnConvolution*AlgoPerf_t: algo, status, time, memory, determinism, mathType, reserved[3]
struct DnnPerf { int algo; int status; float time; size_t memory; int determinism; int mathType; int reserved[3]; };

struct DnnConvOp {
    int kind;  // 0 forward, 1 backward data, 2 backward filter
    DnnTensor x, y;
    DnnFilter w;
    DnnConv conv;
    double alpha, beta;
    uint64_t px, pw, py;  // x, w, y (for backward: dy in py; the output is dx / dw)
};
std::vector<DnnConvOp> dnnOps;  // queued convolutions, referenced by index from the queue

template <typename T> void runDnn(const DnnConvOp& o) {
    const DnnTensor &X = o.x, &Y = o.y;
    const DnnFilter& W = o.w;
    const DnnConv& cv = o.conv;
    T* x = (T*)(uintptr_t)o.px;
    T* w = (T*)(uintptr_t)o.pw;
    T* y = (T*)(uintptr_t)o.py;
    auto xi = [&](int n, int c, int h, int ww) { return (((size_t)n * X.c + c) * X.h + h) * X.w + ww; };
    auto wi = [&](int k, int c, int h, int ww) { return (((size_t)k * W.c + c) * W.h + h) * W.w + ww; };
    auto yi = [&](int n, int k, int h, int ww) { return (((size_t)n * Y.c + k) * Y.h + h) * Y.w + ww; };
    T alpha = (T)o.alpha, beta = (T)o.beta;
    if (o.kind == 0) {
        for (int n = 0; n < Y.n; n++) for (int k = 0; k < Y.c; k++) for (int i = 0; i < Y.h; i++) for (int j = 0; j < Y.w; j++) {
            T acc = 0;
            for (int c = 0; c < W.c; c++) for (int p = 0; p < W.h; p++) for (int q = 0; q < W.w; q++) {
                int ih = i * cv.sh - cv.ph + p * cv.dh, iw = j * cv.sw - cv.pw + q * cv.dw;
                if (ih < 0 || ih >= X.h || iw < 0 || iw >= X.w) continue;
                int pp = cv.mode == 0 ? W.h - 1 - p : p, qq = cv.mode == 0 ? W.w - 1 - q : q;
                acc += x[xi(n, c, ih, iw)] * w[wi(k, c, pp, qq)];
            }
            size_t at = yi(n, k, i, j);
            y[at] = beta == 0 ? alpha * acc : alpha * acc + beta * y[at];
        }
    } else {
        // Backward: every (output position, filter tap) pair adds dy·w into dx (data) or
        // dy·x into dw (filter); the sums are made in a buffer, then scaled into place.
        bool data = o.kind == 1;
        std::vector<T> acc(data ? (size_t)X.n * X.c * X.h * X.w : (size_t)W.k * W.c * W.h * W.w, 0);
        for (int n = 0; n < Y.n; n++) for (int k = 0; k < Y.c; k++) for (int i = 0; i < Y.h; i++) for (int j = 0; j < Y.w; j++) {
            T g = y[yi(n, k, i, j)];
            for (int c = 0; c < W.c; c++) for (int p = 0; p < W.h; p++) for (int q = 0; q < W.w; q++) {
                int ih = i * cv.sh - cv.ph + p * cv.dh, iw = j * cv.sw - cv.pw + q * cv.dw;
                if (ih < 0 || ih >= X.h || iw < 0 || iw >= X.w) continue;
                int pp = cv.mode == 0 ? W.h - 1 - p : p, qq = cv.mode == 0 ? W.w - 1 - q : q;
                if (data) acc[xi(n, c, ih, iw)] += g * w[wi(k, c, pp, qq)];
                else acc[wi(k, c, pp, qq)] += g * x[xi(n, c, ih, iw)];
            }
        }
        T* dst = data ? x : w;
        for (size_t i = 0; i < acc.size(); i++) dst[i] = beta == 0 ? alpha * acc[i] : alpha * acc[i] + beta * dst[i];
    }
}

void clearDnnOps() { dnnOps.clear(); }

void runDnnOp(size_t index) {
    const DnnConvOp& o = dnnOps[index];
    if (o.x.dtype == 1) runDnn<double>(o); else runDnn<float>(o);
}

int dnnEnqueue(DnnHandle* h, int kind, const void* alpha, DnnTensor* x, uint64_t px, DnnFilter* w, uint64_t pw, DnnConv* conv,
               const void* beta, DnnTensor* y, uint64_t py) {
    LOCK;
    if (!h) return 3;
    if (currentDevice != h->device || streamDevice(h->stream) != h->device) {
        if (currentDevice < 0) noContext("cudnnConvolution"); else otherDevice("cudnnConvolution", "handle or its stream", h->device);
        return 8;  // CUDNN_STATUS_EXECUTION_FAILED
    }
    if (!x || !w || !y || !conv || x->dtype != w->dtype || x->dtype != y->dtype || (x->dtype != 0 && x->dtype != 1)) return 3;  // BAD_PARAM
    if (conv->groups != 1 || x->c != w->c || y->c != w->k || x->n != y->n) return 9;  // NOT_SUPPORTED (the emulator: groups 1)
    int oh = (x->h + 2 * conv->ph - conv->dh * (w->h - 1) - 1) / conv->sh + 1, ow = (x->w + 2 * conv->pw - conv->dw * (w->w - 1) - 1) / conv->sw + 1;
    if (oh != y->h || ow != y->w) return 3;
    size_t es = x->dtype == 1 ? 8 : 4;
    if (!isDevice(px, (size_t)x->n * x->c * x->h * x->w * es) || !isDevice(pw, (size_t)w->k * w->c * w->h * w->w * es)
        || !isDevice(py, (size_t)y->n * y->c * y->h * y->w * es)) return 3;
    if (traceOn()) fprintf(stderr, "[emulator] cudnn %s [%d, %d, %d, %d] * [%d, %d, %d, %d]\n",
                           kind == 0 ? "forward" : kind == 1 ? "backwardData" : "backwardFilter", x->n, x->c, x->h, x->w, w->k, w->c, w->h, w->w);
    DnnConvOp o;
    o.kind = kind; o.x = *x; o.w = *w; o.y = *y; o.conv = *conv;
    o.alpha = x->dtype == 1 ? *(const double*)alpha : *(const float*)alpha;
    o.beta = x->dtype == 1 ? *(const double*)beta : *(const float*)beta;
    o.px = px; o.pw = pw; o.py = py;
    dnnOps.push_back(o);
    Op op; op.kind = CUDNN; op.bytes = dnnOps.size() - 1;
    enqueue(std::move(op), h ? h->stream : nullptr);
    return 0;
}
}  // namespace emu

API size_t cudnnGetVersion() { return 90100; }
API const char* cudnnGetErrorString(int s) { return s == 0 ? "CUDNN_STATUS_SUCCESS" : s == 9 ? "CUDNN_STATUS_NOT_SUPPORTED" : "CUDNN_STATUS_BAD_PARAM"; }
API int cudnnCreate(DnnHandle** h) {
    if (currentDevice < 0) { noContext(__func__); return 1; }  // CUDNN_STATUS_NOT_INITIALIZED
    *h = new DnnHandle();
    return 0;
}
API int cudnnDestroy(DnnHandle* h) { delete h; return 0; }
API int cudnnSetStream(DnnHandle* h, void* s) { h->stream = s; return 0; }
API int cudnnCreateTensorDescriptor(DnnTensor** d) { *d = new DnnTensor(); return 0; }
API int cudnnDestroyTensorDescriptor(DnnTensor* d) { delete d; return 0; }
API int cudnnSetTensor4dDescriptor(DnnTensor* d, int format, int dtype, int n, int c, int h, int w) {
    if (format != 0 || n <= 0 || c <= 0 || h <= 0 || w <= 0) return 3;  // NCHW only
    *d = DnnTensor{dtype, n, c, h, w};
    return 0;
}
API int cudnnCreateFilterDescriptor(DnnFilter** d) { *d = new DnnFilter(); return 0; }
API int cudnnDestroyFilterDescriptor(DnnFilter* d) { delete d; return 0; }
API int cudnnSetFilter4dDescriptor(DnnFilter* d, int dtype, int format, int k, int c, int h, int w) {
    if (format != 0 || k <= 0 || c <= 0 || h <= 0 || w <= 0) return 3;
    *d = DnnFilter{dtype, k, c, h, w};
    return 0;
}
API int cudnnCreateConvolutionDescriptor(DnnConv** d) { *d = new DnnConv(); return 0; }
API int cudnnDestroyConvolutionDescriptor(DnnConv* d) { delete d; return 0; }
API int cudnnSetConvolution2dDescriptor(DnnConv* d, int ph, int pw, int sh, int sw, int dh, int dw, int mode, int) {
    if (ph < 0 || pw < 0 || sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0) return 3;
    d->ph = ph; d->pw = pw; d->sh = sh; d->sw = sw; d->dh = dh; d->dw = dw; d->mode = mode;
    return 0;
}
API int cudnnSetConvolutionGroupCount(DnnConv* d, int g) { d->groups = g; return 0; }
API int cudnnSetConvolutionMathType(DnnConv* d, int m) { d->math = m; return 0; }
static int dnnOneAlgo(int requested, int* returned, DnnPerf* perf) {
    if (requested < 1) return 3;
    *returned = 1;
    perf[0] = DnnPerf{1, 0, 0.0f, 0, 1, 0, {0, 0, 0}};
    return 0;
}
API int cudnnGetConvolutionForwardAlgorithm_v7(DnnHandle*, DnnTensor*, DnnFilter*, DnnConv*, DnnTensor*, int req, int* ret, DnnPerf* p) { return dnnOneAlgo(req, ret, p); }
API int cudnnGetConvolutionBackwardDataAlgorithm_v7(DnnHandle*, DnnFilter*, DnnTensor*, DnnConv*, DnnTensor*, int req, int* ret, DnnPerf* p) { return dnnOneAlgo(req, ret, p); }
API int cudnnGetConvolutionBackwardFilterAlgorithm_v7(DnnHandle*, DnnTensor*, DnnTensor*, DnnConv*, DnnFilter*, int req, int* ret, DnnPerf* p) { return dnnOneAlgo(req, ret, p); }
API int cudnnGetConvolutionForwardWorkspaceSize(DnnHandle*, DnnTensor*, DnnFilter*, DnnConv*, DnnTensor*, int, size_t* s) { *s = 256; return 0; }
API int cudnnGetConvolutionBackwardDataWorkspaceSize(DnnHandle*, DnnFilter*, DnnTensor*, DnnConv*, DnnTensor*, int, size_t* s) { *s = 256; return 0; }
API int cudnnGetConvolutionBackwardFilterWorkspaceSize(DnnHandle*, DnnTensor*, DnnTensor*, DnnConv*, DnnFilter*, int, size_t* s) { *s = 256; return 0; }
API int cudnnConvolutionForward(DnnHandle* h, const void* alpha, DnnTensor* xd, const void* x, DnnFilter* wd, const void* w, DnnConv* cd,
                                int, void*, size_t, const void* beta, DnnTensor* yd, void* y) {
    return dnnEnqueue(h, 0, alpha, xd, (uint64_t)(uintptr_t)x, wd, (uint64_t)(uintptr_t)w, cd, beta, yd, (uint64_t)(uintptr_t)y);
}
API int cudnnConvolutionBackwardData(DnnHandle* h, const void* alpha, DnnFilter* wd, const void* w, DnnTensor* dyd, const void* dy, DnnConv* cd,
                                     int, void*, size_t, const void* beta, DnnTensor* dxd, void* dx) {
    return dnnEnqueue(h, 1, alpha, dxd, (uint64_t)(uintptr_t)dx, wd, (uint64_t)(uintptr_t)w, cd, beta, dyd, (uint64_t)(uintptr_t)dy);
}
API int cudnnConvolutionBackwardFilter(DnnHandle* h, const void* alpha, DnnTensor* xd, const void* x, DnnTensor* dyd, const void* dy, DnnConv* cd,
                                       int, void*, size_t, const void* beta, DnnFilter* dwd, void* dw) {
    return dnnEnqueue(h, 2, alpha, xd, (uint64_t)(uintptr_t)x, dwd, (uint64_t)(uintptr_t)dw, cd, beta, dyd, (uint64_t)(uintptr_t)dy);
}
