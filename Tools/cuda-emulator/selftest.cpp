// Self-test of the CUDA emulator: what it promises to catch, it catches.
//   c++ -std=c++17 -O1 -o selftest selftest.cpp -ldl && ./selftest path/to/libember-cuda-emulator.so
// Prints one line per check; exit status 0 when all pass.
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

static void* lib;
template <typename F> F sym(const char* name) {
    void* p = dlsym(lib, name);
    if (!p) { fprintf(stderr, "selftest: %s missing\n", name); exit(2); }
    return (F)p;
}

static int failures = 0;
static void check(bool ok, const char* what) {
    printf("  %s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

static const char* kSource = R"CU(
extern "C" __global__ void blockSum(const float* in, float* out, int n) {
    __shared__ float part[128];
    float s = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += in[blockIdx.x * n + i];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}
extern "C" __global__ void scale(float* x, long long n, float f) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) x[i] *= f;
}
extern "C" __global__ void pastTheEnd(float* x, long long n) {
    if (blockIdx.x == 0 && threadIdx.x == 0) x[n] = 1;  // one element past the end
}
)CU";

// For the race check (selftest LIBRARY --race).
static const char* kRaceSource = R"CU(
extern "C" __global__ void racyAdd(const float* in, float* out, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) out[0] += in[i];
}
extern "C" __global__ void atomicSum(const float* in, float* out, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) atomicAdd(out, in[i]);
}
extern "C" __global__ void sharedNoBarrier(const float* in, float* out, long long n) {
    __shared__ float s[64];
    s[threadIdx.x] = in[threadIdx.x];
    out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];  // written by the next thread: needs a barrier
}
extern "C" __global__ void sharedBarrier(const float* in, float* out, long long n) {
    __shared__ float s[64];
    s[threadIdx.x] = in[blockIdx.x * blockDim.x + threadIdx.x];
    __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}
)CU";

typedef int (*Alloc)(uint64_t*, size_t);
typedef int (*HtoD)(uint64_t, const void*, size_t, void*);
typedef int (*DtoH)(void*, uint64_t, size_t, void*);
typedef int (*Launch)(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*, void**, void**);
typedef int (*Sync)(void*);

// Runs `body` in a child; returns the signal that ended it (0 when it exited) and its stderr.
template <typename B> static int inChild(B body, std::string& err) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        body();
        _exit(0);
    }
    close(fds[1]);
    char buf[4096];
    ssize_t k;
    while ((k = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, (size_t)k);
    close(fds[0]);
    int ws = 0;
    waitpid(pid, &ws, 0);
    return WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
}

int main(int argc, char** argv) {
    if (argc < 2) { fprintf(stderr, "usage: selftest LIBRARY [--race]\n"); return 2; }
    bool raceMode = argc > 2 && strcmp(argv[2], "--race") == 0;
    if (raceMode) setenv("EMBER_EMULATOR_RACECHECK", "1", 1);
    setenv("EMBER_EMULATOR_DEVICES", "2", 1);
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "selftest: %s\n", dlerror()); return 2; }
    sym<int (*)(unsigned)>("cuInit")(0);
    auto create = sym<int (*)(void**, const char*, const char*, int, const char* const*, const char* const*)>("nvrtcCreateProgram");
    auto compile = sym<int (*)(void*, int, const char* const*)>("nvrtcCompileProgram");
    auto imageSize = sym<int (*)(void*, size_t*)>("nvrtcGetCUBINSize");
    auto image = sym<int (*)(void*, char*)>("nvrtcGetCUBIN");
    auto logSize = sym<int (*)(void*, size_t*)>("nvrtcGetProgramLogSize");
    auto getLog = sym<int (*)(void*, char*)>("nvrtcGetProgramLog");
    auto load = sym<int (*)(void**, const void*)>("cuModuleLoadData");
    auto getFn = sym<int (*)(void**, void*, const char*)>("cuModuleGetFunction");
    auto alloc = sym<Alloc>("cuMemAlloc_v2");
    auto htod = sym<HtoD>("cuMemcpyHtoDAsync_v2");
    auto dtoh = sym<DtoH>("cuMemcpyDtoHAsync_v2");
    auto launch = sym<Launch>("cuLaunchKernel");
    auto sync = sym<Sync>("cuStreamSynchronize");
    auto hostAlloc = sym<int (*)(void**, size_t, unsigned)>("cuMemHostAlloc");
    auto retain = sym<int (*)(void**, int)>("cuDevicePrimaryCtxRetain");
    auto setCurrent = sym<int (*)(void*)>("cuCtxSetCurrent");
    auto streamCreate = sym<int (*)(void**, unsigned)>("cuStreamCreate");
    // Compiles `source` with the emulated NVRTC: the module image, or nothing (`log` says why).
    auto build = [&](const char* source, const char* name, std::string& log) {
        void* prog;
        create(&prog, source, name, 0, nullptr, nullptr);
        std::vector<char> img;
        size_t n = 0;
        if (compile(prog, 0, nullptr) != 0) {
            logSize(prog, &n);
            log.assign(n, 0);
            getLog(prog, &log[0]);
            return img;
        }
        imageSize(prog, &n);
        img.resize(n);
        image(prog, img.data());
        return img;
    };

    if (raceMode) {
        printf("CUDA emulator self-test: race check\n");
        void *c0;
        retain(&c0, 0);
        setCurrent(c0);
        std::string log;
        std::vector<char> img = build(kRaceSource, "race.cu", log);
        if (img.empty()) {
            printf("%s\n", log.c_str());
            check(false, "the race-check kernels compile (clang++ needed)");
            return 1;
        }
        void* mod;
        check(load(&mod, img.data()) == 0, "the instrumented module loads");
        uint64_t in, out;
        alloc(&in, 1024 * 4);
        alloc(&out, 1024 * 4);
        std::vector<float> ones(1024, 1.0f);
        htod(in, ones.data(), 1024 * 4, nullptr);
        htod(out, ones.data(), 1024 * 4, nullptr);
        auto run = [&](const char* kernel, unsigned blocks, unsigned threads, std::string& err) {
            return inChild([&] {
                void* f;
                getFn(&f, mod, kernel);
                long long cnt = 1024;
                void* args[] = {&in, &out, &cnt};
                launch(f, blocks, 1, 1, threads, 1, 1, 0, nullptr, args, nullptr);
                sync(nullptr);
            }, err);
        };
        std::string e1, e2, e3, e4;
        run("racyAdd", 4, 64, e1);
        check(e1.find("data race in kernel racyAdd") != std::string::npos, "a plain += from many threads into one element is a race");
        int s2 = run("atomicSum", 4, 64, e2);
        check(s2 == 0 && e2.find("race") == std::string::npos, "atomicAdd into one element is not");
        run("sharedNoBarrier", 1, 64, e3);
        check(e3.find("data race in kernel sharedNoBarrier") != std::string::npos && e3.find("shared memory") != std::string::npos,
              "reading another thread's shared memory without a barrier is a race");
        int s4 = run("sharedBarrier", 4, 64, e4);
        check(s4 == 0 && e4.find("race") == std::string::npos, "with __syncthreads between, it is not (and blocks have their own shared memory)");
        printf("%s\n", failures == 0 ? "all race-check self-tests passed" : "race-check self-test FAILED");
        return failures == 0 ? 0 : 1;
    }

    printf("CUDA emulator self-test\n");
    // 0. Contexts: device work needs a current context on the calling thread.
    void *ctx0, *ctx1;
    retain(&ctx0, 0);
    retain(&ctx1, 1);
    {
        uint64_t d = 0;
        int rc = alloc(&d, 64);
        check(rc == 201, "without a current context, cuMemAlloc returns CUDA_ERROR_INVALID_CONTEXT");
    }
    setCurrent(ctx0);
    {
        uint64_t d = 0;
        int here = alloc(&d, 64), there = -1;
        std::thread t([&] { uint64_t e = 0; there = alloc(&e, 64); });
        t.join();
        check(here == 0 && there == 201, "the context is current on the thread that set it only");
    }
    // 1. Compile errors come back with the compiler's log.
    {
        void* p;
        create(&p, "extern \"C\" __global__ void k() { undefined_thing(); }", "bad.cu", 0, nullptr, nullptr);
        int rc = compile(p, 0, nullptr);
        size_t n = 0;
        logSize(p, &n);
        std::string log(n, 0);
        getLog(p, &log[0]);
        check(rc == 6 && log.find("undefined_thing") != std::string::npos, "a compile error returns NVRTC_ERROR_COMPILATION with the log");
    }
    std::string log;
    std::vector<char> img = build(kSource, "selftest.cu", log);
    if (img.empty()) { printf("%s\n", log.c_str()); check(false, "the test kernels compile"); return 1; }
    void* mod;
    check(load(&mod, img.data()) == 0, "the module loads");
    void *fSum, *fScale, *fPast;
    getFn(&fSum, mod, "blockSum");
    getFn(&fScale, mod, "scale");
    getFn(&fPast, mod, "pastTheEnd");

    // 2. A block reduction with __syncthreads: 3 blocks of 128 threads over rows of 1000.
    {
        const int rows = 3, len = 1000;
        std::vector<float> h(rows * len);
        for (int i = 0; i < rows * len; i++) h[i] = (float)(i % 7) - 3;
        uint64_t in, out;
        alloc(&in, h.size() * 4);
        alloc(&out, rows * 4);
        htod(in, h.data(), h.size() * 4, nullptr);
        int nn = len;
        void* args[] = {&in, &out, &nn};
        launch(fSum, rows, 1, 1, 128, 1, 1, 0, nullptr, args, nullptr);
        float got[rows];
        dtoh(got, out, sizeof got, nullptr);
        bool ok = true;
        for (int r = 0; r < rows; r++) {
            double want = 0;
            for (int i = 0; i < len; i++) want += h[r * len + i];
            ok = ok && got[r] == (float)want;
        }
        check(ok, "block reduction with __syncthreads (fibers) matches the host sum");
    }

    // 3. Work is queued: a copy into pinned memory shows up only after synchronising.
    {
        uint64_t d;
        alloc(&d, 1024 * 4);
        std::vector<float> ones(1024, 1.0f);
        htod(d, ones.data(), 1024 * 4, nullptr);
        long long cnt = 1024;
        float f = 3;
        void* args[] = {&d, &cnt, &f};
        launch(fScale, 4, 1, 1, 256, 1, 1, 0, nullptr, args, nullptr);
        float* pinnedBuf;
        hostAlloc((void**)&pinnedBuf, 1024 * 4, 0);
        memset(pinnedBuf, 0, 1024 * 4);
        dtoh(pinnedBuf, d, 1024 * 4, nullptr);
        bool before = pinnedBuf[0] == 0 && pinnedBuf[1023] == 0;
        sync(nullptr);
        bool after = pinnedBuf[0] == 3 && pinnedBuf[1023] == 3;
        check(before && after, "an asynchronous copy to pinned memory lands only at synchronisation");
        // Arguments are copied at launch: changing the host variable afterwards has no effect.
        f = 100;
        launch(fScale, 4, 1, 1, 256, 1, 1, 0, nullptr, args, nullptr);
        f = 5;
        sync(nullptr);
        float back[2];
        dtoh(back, d, 8, nullptr);
        check(back[0] == 300, "kernel arguments are copied when the kernel is launched");
    }

    // 4. Host code reading device memory stops with a message.
    {
        uint64_t d;
        alloc(&d, 4096);
        std::string err;
        int sig = inChild([&] { volatile float v = *(float*)(uintptr_t)d; (void)v; }, err);
        check(sig == SIGSEGV && err.find("host code touched device memory") != std::string::npos,
              "host code reading device memory is stopped and named");
    }

    // 5. A kernel writing past the end of its allocation faults (guard page).
    {
        uint64_t d, next;
        alloc(&d, 4096);
        alloc(&next, 4096);  // a neighbour right behind it
        long long cnt = 1024;
        std::string err;
        int sig = inChild([&] {
            void* args[] = {&d, &cnt};
            launch(fPast, 1, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr);
            sync(nullptr);
        }, err);
        check(sig == SIGSEGV, "a kernel writing past the end of an allocation faults");
    }

    // 6. Another device's stream cannot take this context's work.
    {
        void* s1;
        setCurrent(ctx1);
        streamCreate(&s1, 1);
        setCurrent(ctx0);
        uint64_t d;
        alloc(&d, 4096);
        long long cnt = 16;
        float f = 2;
        void* args[] = {&d, &cnt, &f};
        int rc = launch(fScale, 1, 1, 1, 32, 1, 1, 0, s1, args, nullptr);
        check(rc == 400, "a launch on another device's stream returns CUDA_ERROR_INVALID_HANDLE");
    }

    // 7. cuBLAS: strided-batched SGEMM with a transposed operand against a host loop.
    {
        auto sgemm = sym<int (*)(void*, int, int, int, int, int, const float*, uint64_t, int, long long, uint64_t, int, long long,
                                 const float*, uint64_t, int, long long, int)>("cublasSgemmStridedBatched");
        const int m = 5, k = 7, nn = 3, batch = 2;
        std::vector<float> A(batch * k * m), B(batch * k * nn), C(batch * m * nn, 9.0f);
        for (size_t i = 0; i < A.size(); i++) A[i] = (float)((i * 37) % 11) - 5;
        for (size_t i = 0; i < B.size(); i++) B[i] = (float)((i * 13) % 7) - 3;
        uint64_t dA, dB, dC;
        alloc(&dA, A.size() * 4); alloc(&dB, B.size() * 4); alloc(&dC, C.size() * 4);
        htod(dA, A.data(), A.size() * 4, nullptr);
        htod(dB, B.data(), B.size() * 4, nullptr);
        htod(dC, C.data(), C.size() * 4, nullptr);
        float alpha = 2, beta = 0.5f;
        // C = alpha * Aᵀ·B + beta * C, A stored k×m column-major (lda = k), B k×n (ldb = k).
        void* handle;
        sym<int (*)(void**)>("cublasCreate_v2")(&handle);
        sgemm(handle, 1, 0, m, nn, k, &alpha, dA, k, k * m, dB, k, k * nn, &beta, dC, m, m * nn, batch);
        std::vector<float> got(C.size());
        dtoh(got.data(), dC, got.size() * 4, nullptr);
        bool ok = true;
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < nn; j++)
                for (int i = 0; i < m; i++) {
                    float s = 0;
                    for (int l = 0; l < k; l++) s += A[b * k * m + l + i * k] * B[b * k * nn + l + j * k];
                    float want = alpha * s + beta * 9.0f;
                    ok = ok && got[b * m * nn + i + j * m] == want;
                }
        check(ok, "cublasSgemmStridedBatched (transposed A, beta) matches a host loop");
    }
    printf("%s\n", failures == 0 ? "all emulator self-tests passed" : "emulator self-test FAILED");
    return failures == 0 ? 0 : 1;
}
