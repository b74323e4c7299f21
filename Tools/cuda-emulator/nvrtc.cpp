// NVRTC (nvrtc*) on the host: Ember's CUDA C is compiled by the host C++ compiler against a
// prelude (threadIdx and friends, __shared__, __syncthreads as a fiber switch, atomics), with
// clang's thread-sanitizer instrumentation for the race check; the result is a shared
// library wrapped as a module image that cuModuleLoadData loads (loadModule).
#include "emulator.h"

namespace emu {

// MARK: - emulated NVRTC: the host C++ compiler

const char* kPrelude = R"PRELUDE(
// Ember CUDA emulator prelude: CUDA C built for the host.
#include <math.h>
#include <string.h>
#include <stddef.h>
struct ember_dim3 { unsigned int x, y, z; };
struct EmberEmuCtx { ember_dim3 threadIdx, blockIdx, blockDim, gridDim; void (*sync)(void); };
extern "C" { EmberEmuCtx __ember_ctx; }
#define threadIdx (__ember_ctx.threadIdx)
#define blockIdx (__ember_ctx.blockIdx)
#define blockDim (__ember_ctx.blockDim)
#define gridDim (__ember_ctx.gridDim)
#define __syncthreads() (__ember_ctx.sync())
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#ifdef EMBER_RACE
// Race check: clang's thread-sanitizer instrumentation calls these hooks for every load and
// store; they pass them to the emulator (no sanitizer runtime is linked). Shared variables
// live in one section, so the emulator knows their addresses.
#define EMBER_NOSAN __attribute__((no_sanitize("thread")))
extern "C" { void (*__ember_race)(const void*, int, int) = 0; }
extern "C" EMBER_NOSAN void __tsan_init() {}
#define EMBER_HOOK(name, n, kind) extern "C" EMBER_NOSAN void name(void* p) { if (__ember_race) __ember_race(p, n, kind); }
EMBER_HOOK(__tsan_read1, 1, 0) EMBER_HOOK(__tsan_read2, 2, 0) EMBER_HOOK(__tsan_read4, 4, 0) EMBER_HOOK(__tsan_read8, 8, 0)
EMBER_HOOK(__tsan_read16, 16, 0) EMBER_HOOK(__tsan_write1, 1, 1) EMBER_HOOK(__tsan_write2, 2, 1) EMBER_HOOK(__tsan_write4, 4, 1)
EMBER_HOOK(__tsan_write8, 8, 1) EMBER_HOOK(__tsan_write16, 16, 1)
EMBER_HOOK(__tsan_unaligned_read2, 2, 0) EMBER_HOOK(__tsan_unaligned_read4, 4, 0) EMBER_HOOK(__tsan_unaligned_read8, 8, 0)
EMBER_HOOK(__tsan_unaligned_read16, 16, 0) EMBER_HOOK(__tsan_unaligned_write2, 2, 1) EMBER_HOOK(__tsan_unaligned_write4, 4, 1)
EMBER_HOOK(__tsan_unaligned_write8, 8, 1) EMBER_HOOK(__tsan_unaligned_write16, 16, 1)
#define EMBER_ATOMIC(p) (__ember_race ? __ember_race((const void*)(p), (int)sizeof(*(p)), 2) : (void)0)
#define __shared__ static __attribute__((section("ember_shared")))
#else
#define EMBER_NOSAN
#define EMBER_ATOMIC(p) ((void)0)
#define __shared__ static
#endif
#define __restrict__ __restrict
static inline float __int_as_float(int v) { float f; memcpy(&f, &v, 4); return f; }
static inline int __float_as_int(float v) { int i; memcpy(&i, &v, 4); return i; }
static inline double __longlong_as_double(long long v) { double d; memcpy(&d, &v, 8); return d; }
static inline long long __double_as_longlong(double v) { long long i; memcpy(&i, &v, 8); return i; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
template <typename T, typename U> EMBER_NOSAN inline T atomicAdd(T* p, U v) { EMBER_ATOMIC(p); T old = *p; *p = (T)(old + (T)v); return old; }
template <typename T, typename U> EMBER_NOSAN inline T atomicMax(T* p, U v) { EMBER_ATOMIC(p); T old = *p; if ((T)v > old) *p = (T)v; return old; }
template <typename T, typename U> EMBER_NOSAN inline T atomicMin(T* p, U v) { EMBER_ATOMIC(p); T old = *p; if ((T)v < old) *p = (T)v; return old; }
template <typename T, typename U> EMBER_NOSAN inline T atomicExch(T* p, U v) { EMBER_ATOMIC(p); T old = *p; *p = (T)v; return old; }
template <typename T> EMBER_NOSAN inline T atomicCAS(T* p, T cmp, T v) { EMBER_ATOMIC(p); T old = *p; if (old == cmp) *p = v; return old; }
)PRELUDE";

const char* kEpilogueHead = R"EPI(
// Kernel entry points for the emulated driver: copy the arguments at launch, run one thread.
template <typename T> struct ember_id { typedef T type; };
static inline size_t ember_align(size_t o, size_t a) { return (o + a - 1) / a * a; }
template <typename... A> size_t ember_pack(void (*)(A...), void** args, char* buf) {
    size_t off = 0; int i = 0;
    ((off = ember_align(off, alignof(A)), (buf ? (void)memcpy(buf + off, args[i], sizeof(A)) : (void)0), off += sizeof(A), i++), ...);
    return off + 1;
}
template <size_t... I> struct ember_seq {};
template <size_t N, size_t... I> struct ember_make : ember_make<N - 1, N - 1, I...> {};
template <size_t... I> struct ember_make<0, I...> { typedef ember_seq<I...> type; };
template <typename... A, size_t... I> inline void ember_call(void (*f)(A...), char* buf, const size_t* offs, ember_seq<I...>) {
    f(*(A*)(buf + offs[I])...);
}
template <typename... A> void ember_run(void (*f)(A...), char* buf) {
    size_t offs[sizeof...(A) + 1]; size_t off = 0; int i = 0;
    ((off = ember_align(off, alignof(A)), offs[i++] = off, off += sizeof(A)), ...);
    ember_call(f, buf, offs, typename ember_make<sizeof...(A)>::type());
}
struct EmberKernelInfo { const char* name; size_t (*pack)(void**, char*); void (*run)(char*); int syncs; };
#ifdef EMBER_RACE
extern "C" char __start_ember_shared[] __attribute__((weak)), __stop_ember_shared[] __attribute__((weak));
extern "C" void __ember_shared_range(char** lo, char** hi) { *lo = __start_ember_shared; *hi = __stop_ember_shared; }
#endif
)EPI";

struct Program {
    std::string source, name, log;
    std::vector<char> image;
};

// Top-level functions of `src` with their bodies: name -> body text.
std::map<std::string, std::string> functionBodies(const std::string& src) {
    std::map<std::string, std::string> out;
    int depth = 0;
    size_t n = src.size();
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '/' && i + 1 < n && src[i + 1] == '/') { while (i < n && src[i] != '\n') i++; continue; }
        if (c == '"') { i++; while (i < n && src[i] != '"') { if (src[i] == '\\') i++; i++; } continue; }
        if (c == '{') {
            if (depth == 0) {
                // A function body when the text before it ends with ")" (after qualifiers).
                size_t j = i;
                while (j > 0 && (isspace((unsigned char)src[j - 1]))) j--;
                while (j > 0 && isalpha((unsigned char)src[j - 1])) {  // const, noexcept
                    size_t k = j; while (k > 0 && isalpha((unsigned char)src[k - 1])) k--;
                    std::string w = src.substr(k, j - k);
                    if (w != "const" && w != "noexcept") break;
                    j = k; while (j > 0 && isspace((unsigned char)src[j - 1])) j--;
                }
                if (j > 0 && src[j - 1] == ')') {
                    int pd = 0; size_t k = j - 1;
                    for (;; k--) { if (src[k] == ')') pd++; else if (src[k] == '(') { if (--pd == 0) break; } if (k == 0) break; }
                    size_t e = k; while (e > 0 && isspace((unsigned char)src[e - 1])) e--;
                    size_t s = e; while (s > 0 && (isalnum((unsigned char)src[s - 1]) || src[s - 1] == '_')) s--;
                    std::string name = src.substr(s, e - s);
                    // body: to the matching brace
                    int bd = 0; size_t b = i;
                    for (; b < n; b++) { if (src[b] == '{') bd++; else if (src[b] == '}') { if (--bd == 0) break; } }
                    if (!name.empty()) out[name] += src.substr(i, b - i + 1);
                }
            }
            depth++;
        } else if (c == '}') {
            depth--;
        }
    }
    return out;
}

bool callsAny(const std::string& body, const std::map<std::string, bool>& syncs) {
    if (body.find("__syncthreads") != std::string::npos) return true;
    for (auto& kv : syncs) {
        if (!kv.second) continue;
        size_t p = 0;
        while ((p = body.find(kv.first, p)) != std::string::npos) {
            bool startOk = p == 0 || !(isalnum((unsigned char)body[p - 1]) || body[p - 1] == '_');
            size_t q = p + kv.first.size();
            while (q < body.size() && isspace((unsigned char)body[q])) q++;
            if (startOk && q < body.size() && body[q] == '(') return true;
            p += kv.first.size();
        }
    }
    return false;
}

std::vector<std::string> kernelNames(const std::string& src) {
    std::vector<std::string> names;
    size_t p = 0;
    while ((p = src.find("__global__", p)) != std::string::npos) {
        p += 10;
        size_t q = src.find('(', p);
        if (q == std::string::npos) break;
        size_t e = q; while (e > p && isspace((unsigned char)src[e - 1])) e--;
        size_t s = e; while (s > p && (isalnum((unsigned char)src[s - 1]) || src[s - 1] == '_')) s--;
        std::string n = src.substr(s, e - s);
        if (!n.empty()) names.push_back(n);
        p = q;
    }
    return names;
}

std::string tempDirectory() {
    const char* t = getenv("TMPDIR");
    std::string base = t && *t ? t : "/tmp";
    std::string templ = base + "/ember-emu-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back(0);
    if (!mkdtemp(buf.data())) return "";
    return std::string(buf.data());
}

bool readFile(const std::string& path, std::vector<char>& out) {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) return false;
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + k);
    fclose(f);
    return true;
}

void removeTree(const std::string& dir, const std::vector<std::string>& files) {
    for (auto& f : files) unlink((dir + "/" + f).c_str());
    rmdir(dir.c_str());
}

const char kImageMagic[8] = {'E', 'M', 'B', 'E', 'R', 'E', 'M', 'U'};

int compileProgram(Program& p) {
    std::string dir = tempDirectory();
    if (dir.empty()) { p.log = "cannot create a temporary directory"; return 6; }
    auto bodies = functionBodies(p.source);
    std::map<std::string, bool> syncs;
    for (auto& kv : bodies) syncs[kv.first] = false;
    for (bool changed = true; changed;) {
        changed = false;
        for (auto& kv : bodies) {
            if (!syncs[kv.first] && callsAny(kv.second, syncs)) { syncs[kv.first] = true; changed = true; }
        }
    }
    std::string text = kPrelude;
    text += "#line 1 \"" + p.name + "\"\n" + p.source + "\n" + kEpilogueHead;
    auto names = kernelNames(p.source);
    for (auto& k : names) {
        text += "extern \"C\" size_t __ember_pack_" + k + "(void** a, char* b) { return ember_pack(&" + k + ", a, b); }\n";
        text += "extern \"C\" void __ember_run_" + k + "(char* b) { ember_run(&" + k + ", b); }\n";
    }
    text += "extern \"C\" const EmberKernelInfo __ember_kernels[] = {\n";
    for (auto& k : names) text += "  {\"" + k + "\", __ember_pack_" + k + ", __ember_run_" + k + ", " + (syncs[k] ? "1" : "0") + "},\n";
    text += "  {0, 0, 0, 0}\n};\nextern \"C\" const int __ember_kernel_count = " + std::to_string(names.size()) + ";\n";
    std::string cpp = dir + "/module.cpp", so = dir + "/module.so", err = dir + "/log.txt";
    FILE* f = fopen(cpp.c_str(), "wb");
    if (!f) { p.log = "cannot write " + cpp; removeTree(dir, {}); return 6; }
    fwrite(text.data(), 1, text.size(), f);
    fclose(f);
    const char* cxxEnv = getenv("EMBER_EMULATOR_CXX");
    std::vector<std::string> compilers;
    if (cxxEnv && *cxxEnv) compilers.push_back(cxxEnv); else compilers = {"clang++", "c++", "g++"};
    int status = -1;
    std::string used;
    for (auto& cxx : compilers) {
        std::vector<std::string> argv = {cxx, "-std=c++17", "-O2", "-fPIC", "-shared", "-w", "-fno-exceptions",
                                         "-ffp-contract=off", "-o", so, cpp};
        if (raceCheckOn()) {
            // clang's instrumentation without its runtime: the module defines the hooks.
            argv.insert(argv.end() - 3, {"-DEMBER_RACE", "-fsanitize=thread", "-mllvm", "-tsan-instrument-func-entry-exit=0",
                                         "-mllvm", "-tsan-instrument-atomics=0", "-mllvm", "-tsan-instrument-memintrinsics=0"});
        }
        std::vector<char*> av;
        for (auto& a : argv) av.push_back((char*)a.c_str());
        av.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        pid_t pid;
        int rc = posix_spawnp(&pid, cxx.c_str(), &fa, nullptr, av.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) continue;  // not installed: try the next
        int ws = 0;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
        status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128;
        used = cxx;
        break;
    }
    std::vector<char> log;
    readFile(err, log);
    p.log.assign(log.begin(), log.end());
    if (status < 0) {
        p.log = "no host C++ compiler found (tried clang++, c++, g++; set EMBER_EMULATOR_CXX)";
        removeTree(dir, {"module.cpp", "log.txt"});
        return 6;
    }
    if (status != 0) {
        p.log = used + " rejected the kernel source:\n" + p.log;
        removeTree(dir, {"module.cpp", "module.so", "log.txt"});
        return 6;  // NVRTC_ERROR_COMPILATION
    }
    std::vector<char> bytes;
    readFile(so, bytes);
    removeTree(dir, {"module.cpp", "module.so", "log.txt"});
    p.image.assign(kImageMagic, kImageMagic + 8);
    uint64_t len = bytes.size();
    p.image.insert(p.image.end(), (char*)&len, (char*)&len + 8);
    p.image.insert(p.image.end(), bytes.begin(), bytes.end());
    return 0;
}

std::vector<Module*> modules;
std::vector<std::string> moduleFiles;

struct Cleanup {
    ~Cleanup() { for (auto& f : moduleFiles) unlink(f.c_str()); }
} cleanup;

int loadModule(Module** out, const void* image) {
    const char* c = (const char*)image;
    if (memcmp(c, kImageMagic, 8) != 0) return CUDA_ERROR_INVALID_IMAGE;  // a real CUBIN or PTX
    uint64_t len;
    memcpy(&len, c + 8, 8);
    std::string dir = tempDirectory();
    if (dir.empty()) return CUDA_ERROR_INVALID_IMAGE;
    std::string path = dir + "/module.so";
    FILE* f = fopen(path.c_str(), "wb");
    if (!f) return CUDA_ERROR_INVALID_IMAGE;
    fwrite(c + 16, 1, len, f);
    fclose(f);
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    unlink(path.c_str());
    rmdir(dir.c_str());
    if (!h) { fprintf(stderr, "Ember CUDA emulator: dlopen of a module failed: %s\n", dlerror()); return CUDA_ERROR_INVALID_IMAGE; }
    Module* m = new Module();
    m->device = currentDevice;
    m->handle = h;
    m->ctx = (Ctx*)dlsym(h, "__ember_ctx");
    m->kernels = (const KernelInfo*)dlsym(h, "__ember_kernels");
    const int* count = (const int*)dlsym(h, "__ember_kernel_count");
    if (!m->ctx || !m->kernels || !count) { delete m; return CUDA_ERROR_INVALID_IMAGE; }
    m->count = *count;
    if (raceCheckOn()) {
        auto hook = (void (**)(const void*, int, int))dlsym(h, "__ember_race");
        auto range = (void (*)(char**, char**))dlsym(h, "__ember_shared_range");
        if (!hook || !range) { fprintf(stderr, "Ember CUDA emulator: a module without race-check hooks (built by clang++?)\n"); delete m; return CUDA_ERROR_INVALID_IMAGE; }
        *hook = raceAccess;
        range(&m->sharedLo, &m->sharedHi);
    }
    modules.push_back(m);
    *out = m;
    return CUDA_SUCCESS;
}


}  // namespace emu

using namespace emu;

// MARK: - NVRTC

API int nvrtcVersion(int* major, int* minor) { *major = 12; *minor = 9; return 0; }
API int nvrtcGetNumSupportedArchs(int* n) { *n = 1; return 0; }
API int nvrtcGetSupportedArchs(int* a) { a[0] = 90; return 0; }
API int nvrtcCreateProgram(void** prog, const char* src, const char* name, int, const char* const*, const char* const*) {
    Program* p = new Program();
    p->source = src;
    p->name = name ? name : "kernel.cu";
    *prog = p;
    return 0;
}
API int nvrtcCompileProgram(void* prog, int, const char* const*) { return compileProgram(*(Program*)prog); }
API int nvrtcGetPTXSize(void* prog, size_t* n) { *n = ((Program*)prog)->image.size(); return 0; }
API int nvrtcGetPTX(void* prog, char* out) { auto& i = ((Program*)prog)->image; memcpy(out, i.data(), i.size()); return 0; }
API int nvrtcGetCUBINSize(void* prog, size_t* n) { return nvrtcGetPTXSize(prog, n); }
API int nvrtcGetCUBIN(void* prog, char* out) { return nvrtcGetPTX(prog, out); }
API int nvrtcGetProgramLogSize(void* prog, size_t* n) { *n = ((Program*)prog)->log.size() + 1; return 0; }
API int nvrtcGetProgramLog(void* prog, char* out) { auto& l = ((Program*)prog)->log; memcpy(out, l.c_str(), l.size() + 1); return 0; }
API int nvrtcDestroyProgram(void** prog) { delete (Program*)*prog; *prog = nullptr; return 0; }
API const char* nvrtcGetErrorString(int code) { return code == 0 ? "NVRTC_SUCCESS" : code == 6 ? "NVRTC_ERROR_COMPILATION" : "NVRTC_ERROR"; }
