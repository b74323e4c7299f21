// Ember's CUDA emulator: the entry points of the CUDA driver API, NVRTC and cuBLAS that
// Ember's GPU backend calls, implemented on the host CPU, in one shared library.
//
// It exists so that the GPU backend runs end to end where no GPU is: the library loader,
// device model, caching allocator, kernel argument packing, streams and events, cuBLAS
// calls, and every generated kernel. Kernels are the same CUDA C source Ember hands to
// NVRTC; the emulated NVRTC compiles it with the host C++ compiler against a small prelude
// (threadIdx and friends, __shared__, __syncthreads, atomics). Kernels that synchronise a
// block run each thread of the block as a fiber; the others run thread after thread.
//
// What it checks that a GPU also would:
//  - device memory is not host memory: it lives in an arena that is unreadable except
//    while emulated device work runs, so host code that dereferences a device pointer
//    stops with a message naming the address (a real GPU would fault or read garbage);
//  - work is queued and runs only when the host synchronises (stream or event
//    synchronisation, a copy to pageable host memory, a free), in queue order, so host
//    code that reads pinned memory before synchronising sees stale data, as on a GPU;
//  - kernel arguments are copied at launch; host-to-device copies from pageable memory
//    are staged at the call, as the driver does;
//  - contexts: a thread has a current context only after cuCtxSetCurrent, and driver calls
//    without one return CUDA_ERROR_INVALID_CONTEXT (except the event queries, waits and
//    destruction, whose documented errors do not include it); work queued on another device's stream,
//    with another device's kernel or event, or through a cuBLAS/cuDNN handle or NCCL
//    communicator made for another device, is refused.
// It is not a performance model and does not check cross-stream ordering (all streams run
// in one global order).
//
// Build: c++ -std=c++17 -O2 -fPIC -shared -o libember-cuda-emulator.so emulator.cpp -ldl -lpthread
// Use:   EMBER_CUDA_DRIVER=…/libember-cuda-emulator.so EMBER_NVRTC_LIBRARY=… EMBER_CUBLAS_LIBRARY=…
//        (Scripts/cuda-emulator.sh sets these). EMBER_EMULATOR_CXX picks the compiler;
//        EMBER_EMULATOR_TRACE=1 prints every launch, cuDNN call and synchronisation.
//        EMBER_EMULATOR_STREAM_ORDER=newest-first|oldest-first runs the streams' queued work
//        in an adversarial order (each stream in order, event waits honoured).
//        EMBER_EMULATOR_RACECHECK=1 checks every kernel for data races (needs clang++):
//        kernels are built with clang's thread-sanitizer instrumentation, whose hooks report
//        each load and store of device and shared memory to the emulator; two GPU threads
//        that touch the same element within one launch, at least one of them writing, with
//        neither a barrier (__syncthreads, same block) nor atomics between them, stop the
//        program with the kernel's name. A GPU runs those threads at once: such code loses
//        updates or reads stale values there, however it behaves run thread after thread.

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <unordered_map>
#include <mutex>
#include <string>
#include <vector>

extern char** environ;

namespace {

// MARK: - errors

enum : int {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_LAUNCH_FAILED = 719,
};

[[noreturn]] void die(const char* fmt, const char* a = "", const char* b = "") {
    fprintf(stderr, "Ember CUDA emulator: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    fflush(stderr);
    abort();
}

double nowSeconds() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

bool traceOn() {
    static int on = -1;
    if (on < 0) { const char* v = getenv("EMBER_EMULATOR_TRACE"); on = v && *v && strcmp(v, "0") != 0; }
    return on;
}

bool raceCheckOn() {
    static int on = -1;
    if (on < 0) { const char* v = getenv("EMBER_EMULATOR_RACECHECK"); on = v && *v && strcmp(v, "0") != 0; }
    return on;
}

std::recursive_mutex& apiLock() {
    static std::recursive_mutex m;
    return m;
}

// MARK: - device memory: an arena readable only while device work runs

const size_t kArenaBytes = size_t(64) << 30;  // address space only; pages are taken as touched
const size_t kDeviceMemory = size_t(16) << 30; // what the emulated device reports
char* arena = nullptr;
size_t arenaTop = 0;   // bytes of the arena ever handed out
size_t arenaUsed = 0;  // bytes live
std::multimap<size_t, size_t> freeBySize;  // size -> offset
std::map<size_t, size_t> liveBlocks;       // offset -> size
int deviceAccess = 0;                      // nesting of enterDevice/leaveDevice
struct sigaction previousSegv;

void segvHandler(int sig, siginfo_t* info, void* uc) {
    char* p = (char*)info->si_addr;
    if (arena && p >= arena && p < arena + kArenaBytes) {
        char msg[256];
        int n = snprintf(msg, sizeof msg,
                         "Ember CUDA emulator: host code touched device memory at device address %p "
                         "(a CUDA tensor's storage was used as host memory)\n", (void*)p);
        if (n > 0) { ssize_t w = write(2, msg, (size_t)n); (void)w; }
        // Where: the faulting instruction, then the frame-pointer chain, as image+symbol.
        void* pcs[32];
        int depth = 0;
#if defined(__x86_64__)
        ucontext_t* u = (ucontext_t*)uc;
        pcs[depth++] = (void*)u->uc_mcontext.gregs[REG_RIP];
        void** fp = (void**)u->uc_mcontext.gregs[REG_RBP];
        void** sp = (void**)u->uc_mcontext.gregs[REG_RSP];
        while (depth < 32 && fp > sp && fp < sp + (1 << 20) && ((uintptr_t)fp & 7) == 0) {
            pcs[depth++] = fp[1];
            void** next = (void**)fp[0];
            if (next <= fp) break;
            fp = next;
        }
#else
        (void)uc;
#endif
        for (int i = 0; i < depth; i++) {
            Dl_info di;
            memset(&di, 0, sizeof di);
            dladdr(pcs[i], &di);
            n = snprintf(msg, sizeof msg, "  #%d %p %s (%s+%#lx)\n", i, pcs[i], di.dli_fname ? di.dli_fname : "?",
                         di.dli_sname ? di.dli_sname : "?", (unsigned long)((char*)pcs[i] - (char*)(di.dli_saddr ? di.dli_saddr : di.dli_fbase)));
            if (n > 0) { ssize_t w = write(2, msg, (size_t)n); (void)w; }
        }
        signal(SIGSEGV, SIG_DFL);
        return;  // the access faults again, now with the default action
    }
    // Not ours: hand over to whoever was there before (or the default action).
    if (previousSegv.sa_flags & SA_SIGINFO) {
        if (previousSegv.sa_sigaction) { previousSegv.sa_sigaction(sig, info, uc); return; }
    } else if (previousSegv.sa_handler != SIG_DFL && previousSegv.sa_handler != SIG_IGN) {
        previousSegv.sa_handler(sig);
        return;
    }
    signal(SIGSEGV, SIG_DFL);
}

void initArena() {
    if (arena) return;
    void* p = mmap(nullptr, kArenaBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) die("cannot reserve %s of address space for device memory", "64 GiB");
    arena = (char*)p;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segvHandler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previousSegv);
}

void protectArena(int prot) {
    if (arenaTop && mprotect(arena, arenaTop, prot) != 0) die("mprotect of the device arena failed: %s", strerror(errno));
}

void enterDevice() { if (deviceAccess++ == 0) protectArena(PROT_READ | PROT_WRITE); }
void leaveDevice() { if (--deviceAccess == 0) protectArena(PROT_NONE); }

bool isDevice(uint64_t p, size_t n = 1) {
    char* c = (char*)(uintptr_t)p;
    return c >= arena && c + n <= arena + arenaTop;
}

const size_t kPage = 4096;
const int kPoison = 0xFF;  // all-ones bytes: NaN in every float type

int deviceAlloc(uint64_t* out, size_t bytes) {
    initArena();
    size_t size = (bytes + kPage - 1) / kPage * kPage;
    if (size == 0) size = kPage;
    if (arenaUsed + size > kDeviceMemory) return CUDA_ERROR_OUT_OF_MEMORY;
    size_t off;
    auto it = freeBySize.lower_bound(size);
    if (it != freeBySize.end() && it->first == size) {
        off = it->second;
        freeBySize.erase(it);
    } else {
        // A fresh range, one unmapped guard page after it: a kernel that runs past an
        // allocation's end faults instead of corrupting its neighbour.
        off = arenaTop;
        arenaTop += size + kPage;
        if (arenaTop > kArenaBytes) return CUDA_ERROR_OUT_OF_MEMORY;
        if (deviceAccess) protectArena(PROT_READ | PROT_WRITE);
    }
    liveBlocks[off] = size;
    arenaUsed += size;
    *out = (uint64_t)(uintptr_t)(arena + off);
    // cuMemAlloc does not clear memory: new blocks read as NaN (-1 as integers), so code
    // that counts on zeros finds out here rather than on a GPU.
    enterDevice();
    memset(arena + off, kPoison, size);
    leaveDevice();
    return CUDA_SUCCESS;
}

// The guard pages: readable with the rest of the arena only if we let them; mprotect the
// whole arena readable, then take the guards away again (they sit right after each block).
std::vector<size_t> guardOffsets;

int deviceFree(uint64_t p) {
    char* c = (char*)(uintptr_t)p;
    if (!arena || c < arena || c >= arena + arenaTop) return CUDA_ERROR_INVALID_VALUE;
    size_t off = (size_t)(c - arena);
    auto it = liveBlocks.find(off);
    if (it == liveBlocks.end()) return CUDA_ERROR_INVALID_VALUE;
    // Freed memory reads as garbage, as on a GPU where the next owner overwrites it.
    enterDevice();
    memset(c, kPoison, it->second);
    leaveDevice();
    freeBySize.emplace(it->second, off);
    arenaUsed -= it->second;
    liveBlocks.erase(it);
    return CUDA_SUCCESS;
}

// Guard pages need their own protection pass after the arena is made readable.
void protectGuards() {
    for (auto& kv : liveBlocks) {
        size_t end = kv.first + kv.second;
        mprotect(arena + end, kPage, PROT_NONE);
    }
    for (auto& kv : freeBySize) {
        size_t end = kv.second + kv.first;
        mprotect(arena + end, kPage, PROT_NONE);
    }
}

// MARK: - pinned host memory

std::map<uintptr_t, size_t> pinned;  // start -> bytes

bool isPinned(const void* p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    auto it = pinned.upper_bound(a);
    if (it == pinned.begin()) return false;
    --it;
    return a >= it->first && a + n <= it->first + it->second;
}

// MARK: - modules and kernels

struct Dim3 { unsigned x, y, z; };
struct Ctx { Dim3 threadIdx, blockIdx, blockDim, gridDim; void (*sync)(void); };
typedef size_t (*PackFn)(void** args, char* buffer);
typedef void (*RunFn)(char* buffer);
struct KernelInfo { const char* name; PackFn pack; RunFn run; int syncs; };

struct Module {
    int device;  // the context it was loaded in
    char* sharedLo = nullptr;  // its __shared__ variables (race check)
    char* sharedHi = nullptr;
    void* handle;
    Ctx* ctx;
    const KernelInfo* kernels;
    int count;
    std::string path;
};

struct Function { Module* module; const KernelInfo* info; };

// MARK: - the queue

enum OpKind { LAUNCH, COPY, MEMSET, EVENT, WAIT, GEMM_F32, GEMM_F64, NCCL, NCCL_P2P, CUDNN };

// One ncclSend or ncclRecv of a group (`bytes` of device memory at `buf`).
struct P2PEntry { bool send; char* buf; size_t bytes; int peer; void* comm; int stream; };

struct Gemm {
    int ta, tb, m, n, k;
    double alpha, beta;
    uint64_t a, b, c;
    int lda, ldb, ldc;
    long long sa, sb, sc;
    int batch;
};

// recordGen counts cuEventRecord calls, doneGen the records that have run; a wait queued
// after the n-th record can run once doneGen >= n.
struct Event { int device = -1; bool recorded = false, done = false; double time = 0; long recordGen = 0, doneGen = 0; };

struct Op {
    OpKind kind;
    int stream = 0;  // the stream's id (0: the legacy default stream)
    long gen = 0;    // EVENT: which record this is; WAIT: the record it waits for
    // LAUNCH
    Function* fn = nullptr;
    Dim3 grid{1, 1, 1}, block{1, 1, 1};
    std::vector<char> params;
    // COPY / MEMSET
    void* dst = nullptr;
    const void* src = nullptr;
    size_t bytes = 0;
    unsigned char value = 0;
    std::vector<char> staged;  // pageable host source, copied at the call
    // EVENT
    Event* event = nullptr;
    // GEMM
    Gemm gemm{};
    // NCCL_P2P: the sends and receives of one group, progressed together
    std::vector<P2PEntry> p2p;
};

std::vector<Op> queue;

// Fibers for kernels that call __syncthreads: one per thread of a block, switched by a few
// instructions (callee-saved registers and the stack pointer) on x86-64 and arm64; ucontext
// elsewhere (its switch is a system call, so ~50x slower).
#if defined(__x86_64__) || defined(__aarch64__)
#define EMBER_FAST_FIBERS 1
extern "C" void ember_fiber_switch(void** save, void* next);
#if defined(__x86_64__)
__asm__(
    ".text\n.globl ember_fiber_switch\n.hidden ember_fiber_switch\n.type ember_fiber_switch,@function\n"
    "ember_fiber_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n.size ember_fiber_switch,.-ember_fiber_switch\n");
#else
__asm__(
    ".text\n.globl ember_fiber_switch\n.hidden ember_fiber_switch\n.type ember_fiber_switch,%function\n"
    "ember_fiber_switch:\n"
    "  sub sp, sp, #176\n"
    "  stp x19, x20, [sp, #0]\n  stp x21, x22, [sp, #16]\n  stp x23, x24, [sp, #32]\n  stp x25, x26, [sp, #48]\n"
    "  stp x27, x28, [sp, #64]\n  stp x29, x30, [sp, #80]\n  stp d8, d9, [sp, #96]\n  stp d10, d11, [sp, #112]\n"
    "  stp d12, d13, [sp, #128]\n  stp d14, d15, [sp, #144]\n"
    "  mov x9, sp\n  str x9, [x0]\n  mov sp, x1\n"
    "  ldp x19, x20, [sp, #0]\n  ldp x21, x22, [sp, #16]\n  ldp x23, x24, [sp, #32]\n  ldp x25, x26, [sp, #48]\n"
    "  ldp x27, x28, [sp, #64]\n  ldp x29, x30, [sp, #80]\n  ldp d8, d9, [sp, #96]\n  ldp d10, d11, [sp, #112]\n"
    "  ldp d12, d13, [sp, #128]\n  ldp d14, d15, [sp, #144]\n"
    "  add sp, sp, #176\n  ret\n.size ember_fiber_switch,.-ember_fiber_switch\n");
#endif
#endif

struct FiberState {
#if EMBER_FAST_FIBERS
    void* scheduler = nullptr;
    std::vector<void*> fibers;  // saved stack pointers
#else
    ucontext_t scheduler;
    std::vector<ucontext_t> fibers;
#endif
    std::vector<char*> stacks;
    std::vector<int> finished;
    std::vector<int> phase;  // barriers each thread has passed (race check)
    int current = -1;
    Ctx* ctx = nullptr;
    RunFn run = nullptr;
    char* params = nullptr;
} fs;
const size_t kFiberStack = 128 * 1024;

void fiberYield() {
    int me = fs.current;
    fs.phase[me]++;
#if EMBER_FAST_FIBERS
    ember_fiber_switch(&fs.fibers[me], fs.scheduler);
#else
    swapcontext(&fs.fibers[me], &fs.scheduler);
#endif
}

#if EMBER_FAST_FIBERS
[[noreturn]] void fiberEntry() {
    fs.run(fs.params);
    fs.finished[fs.current] = 1;
    void* dead;
    ember_fiber_switch(&dead, fs.scheduler);
    __builtin_unreachable();
}

// A fresh fiber's stack: what ember_fiber_switch pops, then fiberEntry as the return address.
void* fiberStart(char* stack, size_t t) {
    // Tops staggered by thread, so that 256 stacks do not compete for the same cache sets.
    uintptr_t top = ((uintptr_t)stack + kFiberStack - (t % 61) * 64 - 64) & ~(uintptr_t)15;
    void** sp = (void**)top;
    *--sp = nullptr;              // fiberEntry's own return address (never used)
    *--sp = (void*)fiberEntry;    // where the switch returns to
#if defined(__x86_64__)
    for (int i = 0; i < 6; i++) *--sp = nullptr;  // rbp rbx r12..r15
    return sp;
#else
    // arm64: the return address is x30 in the saved frame; sp must stay 16-aligned.
    sp = (void**)top;
    char* frame = (char*)top - 176;
    memset(frame, 0, 176);
    ((void**)frame)[11] = (void*)fiberEntry;  // x30 at offset 88
    return frame;
#endif
}
#else
void fiberEntry() {
    fs.run(fs.params);
    fs.finished[fs.current] = 1;
}
#endif

// MARK: - race check (EMBER_EMULATOR_RACECHECK=1)
// Per launch: for each element touched, who touched it last and how. GPU threads are
// concurrent unless they are the same thread, or in the same block with a barrier between
// (different phases). Plain writes conflict with any access by another concurrent thread;
// reads conflict with plain writes; atomics conflict with plain writes only (a plain read
// next to atomic updates, as in a compare-and-swap loop's first load, is allowed).
struct RaceEntry { long long thread, block, reader; int phase; unsigned char flags; };  // flags: 1 write, 2 read, 4 atomic, 8 several readers
struct RaceLaunch {
    const char* kernel = nullptr;
    Ctx* ctx = nullptr;
    char* sharedLo = nullptr;
    char* sharedHi = nullptr;
    bool fibers = false;
    std::unordered_map<uintptr_t, RaceEntry> seen;
} race;

void raceAccess(const void* pv, int n, int kind) {  // kind: 0 read, 1 write, 2 atomic
    if (!race.kernel) return;
    char* p = (char*)pv;
    bool shared = p >= race.sharedLo && p < race.sharedHi;
    if (!shared && !isDevice((uint64_t)(uintptr_t)p, (size_t)n)) return;  // the thread's own stack, the arguments
    Ctx* c = race.ctx;
    long long block = ((long long)c->blockIdx.z * c->gridDim.y + c->blockIdx.y) * c->gridDim.x + c->blockIdx.x;
    long long inBlock = ((long long)c->threadIdx.z * c->blockDim.y + c->threadIdx.y) * c->blockDim.x + c->threadIdx.x;
    long long thread = block * ((long long)c->blockDim.x * c->blockDim.y * c->blockDim.z) + inBlock;
    int phase = race.fibers && fs.current >= 0 ? fs.phase[fs.current] : 0;
    unsigned char f = kind == 0 ? 2 : kind == 1 ? 1 : 4;
    auto it = race.seen.find((uintptr_t)p);
    if (it == race.seen.end()) { race.seen[(uintptr_t)p] = {thread, block, thread, phase, f}; return; }
    RaceEntry& e = it->second;
    // Shared memory is per block: another block's entry is a different variable.
    bool ordered = (shared && e.block != block) || (e.block == block && e.phase != phase);
    if (ordered) { e = {thread, block, thread, phase, f}; return; }
    bool otherReader = (e.flags & 2) && ((e.flags & 8) || e.reader != thread);
    bool otherWriter = (e.flags & 5) && e.thread != thread;
    bool conflict = false;
    const char* what = "";
    if (kind == 1 && (otherWriter || otherReader)) { conflict = true; what = "writes"; }
    else if (kind == 0 && (e.flags & 1) && e.thread != thread) { conflict = true; what = "reads"; }
    else if (kind == 2 && (e.flags & 1) && e.thread != thread) { conflict = true; what = "atomically updates"; }
    if (conflict) {
        long long other = otherWriter || kind != 1 ? e.thread : e.reader;
        char msg[512];
        snprintf(msg, sizeof msg, "data race in kernel %s: GPU thread %lld (block %lld) %s %s memory at %p, which thread %lld (block %lld) "
                 "%s in the same launch with no barrier or atomic between them (on a GPU they run at the same time)",
                 race.kernel, thread, block, what, shared ? "shared" : "device", pv, other, other / ((long long)c->blockDim.x * c->blockDim.y * c->blockDim.z),
                 (e.flags & 1) ? "writes" : (e.flags & 4) ? "updates atomically" : "reads");
        die("%s", msg);
    }
    if (kind == 0) {
        if ((e.flags & 2) && e.reader != thread) e.flags |= 8;
        e.reader = thread;
        e.flags |= 2;
    } else {
        e.flags |= f;
        e.thread = thread;
    }
    e.phase = phase;
}

void noSync() {
    die("a kernel called __syncthreads() but was run without fibers (the emulator's scan of the source missed it)");
}

void runLaunch(Op& op) {
    Function* f = op.fn;
    Ctx* ctx = f->module->ctx;
    ctx->gridDim = {op.grid.x, op.grid.y, op.grid.z};
    ctx->blockDim = {op.block.x, op.block.y, op.block.z};
    size_t threads = (size_t)op.block.x * op.block.y * op.block.z;
    if (traceOn()) fprintf(stderr, "[emulator] launch %s grid %u block %u\n", f->info->name, op.grid.x, op.block.x);
    char* params = op.params.data();
    if (raceCheckOn()) {
        race.kernel = f->info->name;
        race.ctx = ctx;
        race.sharedLo = f->module->sharedLo;
        race.sharedHi = f->module->sharedHi;
        race.fibers = f->info->syncs != 0;
        race.seen.clear();
    }
    struct EndRace { ~EndRace() { race.kernel = nullptr; } } endRace;
    if (!f->info->syncs) {
        ctx->sync = noSync;
        for (unsigned bz = 0; bz < op.grid.z; bz++)
        for (unsigned by = 0; by < op.grid.y; by++)
        for (unsigned bx = 0; bx < op.grid.x; bx++) {
            ctx->blockIdx = {bx, by, bz};
            for (unsigned tz = 0; tz < op.block.z; tz++)
            for (unsigned ty = 0; ty < op.block.y; ty++)
            for (unsigned tx = 0; tx < op.block.x; tx++) {
                ctx->threadIdx = {tx, ty, tz};
                f->info->run(params);
            }
        }
        return;
    }
    ctx->sync = fiberYield;
    if (fs.stacks.size() < threads) {
        size_t old = fs.stacks.size();
        fs.stacks.resize(threads);
        for (size_t i = old; i < threads; i++) {
            void* s = mmap(nullptr, kFiberStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (s == MAP_FAILED) die("cannot map a fiber stack");
            fs.stacks[i] = (char*)s;
        }
    }
    fs.fibers.resize(threads);
    fs.finished.assign(threads, 0);
    fs.phase.assign(threads, 0);
    fs.ctx = ctx;
    fs.run = f->info->run;
    fs.params = params;
    for (unsigned bz = 0; bz < op.grid.z; bz++)
    for (unsigned by = 0; by < op.grid.y; by++)
    for (unsigned bx = 0; bx < op.grid.x; bx++) {
        ctx->blockIdx = {bx, by, bz};
        for (size_t t = 0; t < threads; t++) {
            fs.finished[t] = 0;
            fs.phase[t] = 0;
#if EMBER_FAST_FIBERS
            fs.fibers[t] = fiberStart(fs.stacks[t], t);
#else
            getcontext(&fs.fibers[t]);
            fs.fibers[t].uc_stack.ss_sp = fs.stacks[t];
            fs.fibers[t].uc_stack.ss_size = kFiberStack;
            fs.fibers[t].uc_link = &fs.scheduler;
            makecontext(&fs.fibers[t], fiberEntry, 0);
#endif
        }
        // Rounds: every live thread runs to its next barrier (or its end).
        size_t live = threads;
        while (live > 0) {
            unsigned tx = 0, ty = 0, tz = 0;
            for (size_t t = 0; t < threads; t++) {
                if (t > 0 && ++tx == op.block.x) { tx = 0; if (++ty == op.block.y) { ty = 0; tz++; } }
                if (fs.finished[t]) continue;
                fs.current = (int)t;
                ctx->threadIdx = {tx, ty, tz};
#if EMBER_FAST_FIBERS
                ember_fiber_switch(&fs.scheduler, fs.fibers[t]);
#else
                swapcontext(&fs.scheduler, &fs.fibers[t]);
#endif
                if (fs.finished[t]) live--;
            }
        }
        fs.current = -1;
    }
}

template <typename T>
void runGemm(const Gemm& g) {
    for (int bi = 0; bi < g.batch; bi++) {
        const T* A = (const T*)(uintptr_t)(g.a + (uint64_t)(bi * g.sa * (long long)sizeof(T)));
        const T* B = (const T*)(uintptr_t)(g.b + (uint64_t)(bi * g.sb * (long long)sizeof(T)));
        T* C = (T*)(uintptr_t)(g.c + (uint64_t)(bi * g.sc * (long long)sizeof(T)));
        T alpha = (T)g.alpha, beta = (T)g.beta;
        std::vector<T> col((size_t)g.m);
        for (int j = 0; j < g.n; j++) {
            for (int i = 0; i < g.m; i++) col[i] = 0;
            for (int l = 0; l < g.k; l++) {
                T b = g.tb ? B[j + (size_t)l * g.ldb] : B[l + (size_t)j * g.ldb];
                if (g.ta) { for (int i = 0; i < g.m; i++) col[i] += A[l + (size_t)i * g.lda] * b; }
                else { const T* a = A + (size_t)l * g.lda; for (int i = 0; i < g.m; i++) col[i] += a[i] * b; }
            }
            T* c = C + (size_t)j * g.ldc;
            for (int i = 0; i < g.m; i++) c[i] = beta == 0 ? alpha * col[i] : alpha * col[i] + beta * c[i];
        }
    }
}

void runCollective(const Op& op);
void runDnnOp(size_t index);
void clearDnnOps();

void runPointToPoint(const Op& op);

struct Stream { int id; int device; };
int streamId(void* s) { return s ? ((Stream*)s)->id : 0; }

// MARK: - contexts
// As on a GPU, a thread has a current context (cuCtxSetCurrent) and every call that does
// device work needs one: without it the driver returns CUDA_ERROR_INVALID_CONTEXT. Streams,
// events, modules and library handles belong to the context they were made in, and work
// queued on another device's stream, or with another device's kernel or handle, fails.
int primaryContexts[16];
thread_local int currentDevice = -1;
int streamDevice(void* s) { return s ? ((Stream*)s)->device : currentDevice; }
int noContext(const char* fn) {
    fprintf(stderr, "Ember CUDA emulator: %s was called on a thread with no current CUDA context "
                    "(a GPU's driver returns CUDA_ERROR_INVALID_CONTEXT)\n", fn);
    return CUDA_ERROR_INVALID_CONTEXT;
}
int otherDevice(const char* fn, const char* what, int device) {
    fprintf(stderr, "Ember CUDA emulator: %s: the %s belongs to device %d, but the current context is device %d's\n",
            fn, what, device, currentDevice);
    return CUDA_ERROR_INVALID_HANDLE;
}
#define NEED_CONTEXT if (currentDevice < 0) return noContext(__func__)
#define ON_CURRENT_DEVICE(what, device) if ((device) != currentDevice) return otherDevice(__func__, what, device)
std::vector<Event*> destroyedEvents;  // freed after the flush that runs their last operations

// The order in which queued work of different streams runs (EMBER_EMULATOR_STREAM_ORDER):
// "fifo" (default): call order; "newest-first": the most recently created stream runs as far
// as its waits allow, then the next; "oldest-first": the reverse, so the first stream (Ember's
// default stream) runs ahead and user streams lag. Each stream keeps its own order and
// cuStreamWaitEvent is honoured, as on a GPU: work that another stream needs but was not
// waited for is found by one of the two adversarial orders.
int streamOrder() {
    static int order = -2;
    if (order == -2) {
        const char* v = getenv("EMBER_EMULATOR_STREAM_ORDER");
        order = v && strcmp(v, "newest-first") == 0 ? 1 : v && strcmp(v, "oldest-first") == 0 ? -1 : 0;
    }
    return order;
}

void runOp(Op& op) {
    switch (op.kind) {
    case LAUNCH: runLaunch(op); break;
    case COPY: memcpy(op.dst, op.staged.empty() ? op.src : op.staged.data(), op.bytes); break;
    case MEMSET: memset(op.dst, op.value, op.bytes); break;
    case EVENT:
        if (op.gen > op.event->doneGen) op.event->doneGen = op.gen;
        op.event->done = op.event->doneGen >= op.event->recordGen;
        op.event->time = nowSeconds();
        break;
    case WAIT: break;
    case GEMM_F32: runGemm<float>(op.gemm); break;
    case GEMM_F64: runGemm<double>(op.gemm); break;
    case NCCL: runCollective(op); break;
    case NCCL_P2P: runPointToPoint(op); break;
    case CUDNN: runDnnOp(op.bytes); break;
    }
}

void flush() {
    if (queue.empty()) return;
    std::vector<Op> ops;
    ops.swap(queue);
    enterDevice();
    protectGuards();
    if (streamOrder() == 0) {
        for (Op& op : ops) runOp(op);
    } else {
        // One lane per stream, in each stream's order; pick lanes by the policy.
        std::map<int, std::vector<size_t>> lanes;
        for (size_t i = 0; i < ops.size(); i++) lanes[ops[i].stream].push_back(i);
        std::map<int, size_t> head;
        size_t left = ops.size();
        auto runnable = [&](const Op& op) { return op.kind != WAIT || op.event->doneGen >= op.gen; };
        while (left > 0) {
            bool progressed = false;
            auto visit = [&](std::pair<const int, std::vector<size_t>>& lane) {
                size_t& h = head[lane.first];
                while (h < lane.second.size() && runnable(ops[lane.second[h]])) {
                    runOp(ops[lane.second[h]]);
                    h++; left--; progressed = true;
                }
            };
            if (streamOrder() > 0) { for (auto it = lanes.rbegin(); it != lanes.rend() && !progressed; ++it) visit(*it); }
            else { for (auto it = lanes.begin(); it != lanes.end() && !progressed; ++it) visit(*it); }
            if (!progressed) {
                // Every lane waits for an event whose record is not queued: a GPU would wait
                // for ever; run the earliest waiting operation (and say so).
                fprintf(stderr, "Ember CUDA emulator: every stream waits for an event that was never recorded after the wait\n");
                for (auto& lane : lanes) {
                    size_t& h = head[lane.first];
                    if (h < lane.second.size()) { runOp(ops[lane.second[h]]); h++; left--; break; }
                }
            }
        }
    }
    clearDnnOps();
    leaveDevice();
    for (Event* e : destroyedEvents) delete e;
    destroyedEvents.clear();
}

void enqueueOnStream(Op&& op, int stream) {
    op.stream = stream;
    queue.push_back(std::move(op));
    // A GPU makes progress on its own; bound the backlog.
    if (queue.size() >= 4096) flush();
}

void enqueue(Op&& op, void* stream) { enqueueOnStream(std::move(op), streamId(stream)); }

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

struct Handle { void* stream; int device; };

}  // namespace

#define API extern "C" __attribute__((visibility("default")))
#define LOCK std::lock_guard<std::recursive_mutex> guard(apiLock())

// MARK: - driver API

API int cuInit(unsigned) { LOCK; initArena(); return 0; }
// The race check's modules differ from plain ones: a different version keeps Ember's kernel
// cache from mixing them.
API int cuDriverGetVersion(int* v) { *v = raceCheckOn() ? 12091 : 12090; return 0; }
// EMBER_EMULATOR_DEVICES devices (default 1), all sharing the host's memory and queue.
static int emulatedDevices() {
    const char* v = getenv("EMBER_EMULATOR_DEVICES");
    int n = v && *v ? atoi(v) : 1;
    return n < 1 ? 1 : n > 16 ? 16 : n;
}
API int cuDeviceGetCount(int* n) { *n = emulatedDevices(); return 0; }
API int cuDeviceGet(int* d, int i) { if (i < 0 || i >= emulatedDevices()) return CUDA_ERROR_INVALID_VALUE; *d = i; return 0; }
API int cuDeviceGetName(char* buf, int len, int) {
    snprintf(buf, (size_t)len, "Ember CUDA emulator (host CPU)");
    return 0;
}
API int cuDeviceGetAttribute(int* v, int attr, int) {
    switch (attr) {
    case 75: *v = 9; break;   // compute capability major
    case 76: *v = 0; break;   // minor
    case 16: *v = 1; break;   // multiprocessors
    case 1: *v = 1024; break; // max threads per block
    default: *v = 0;
    }
    return 0;
}
API int cuDeviceTotalMem_v2(size_t* b, int) { *b = kDeviceMemory; return 0; }
API int cuDevicePrimaryCtxRetain(void** ctx, int d) { *ctx = &primaryContexts[d & 15]; return 0; }
API int cuCtxSetCurrent(void* ctx) {
    if (ctx && (ctx < (void*)primaryContexts || ctx >= (void*)(primaryContexts + 16))) return CUDA_ERROR_INVALID_CONTEXT;
    currentDevice = ctx ? (int)((int*)ctx - primaryContexts) : -1;
    return 0;
}
API int cuCtxGetCurrent(void** ctx) { *ctx = currentDevice < 0 ? nullptr : &primaryContexts[currentDevice]; return 0; }
API int cuCtxSynchronize() { NEED_CONTEXT; LOCK; if (traceOn()) fprintf(stderr, "[emulator] sync context\n"); flush(); return 0; }
API int cuMemAlloc_v2(uint64_t* p, size_t bytes) { NEED_CONTEXT; LOCK; return deviceAlloc(p, bytes); }
API int cuMemFree_v2(uint64_t p) { NEED_CONTEXT; LOCK; flush(); return deviceFree(p); }
API int cuMemGetInfo_v2(size_t* freeB, size_t* total) { NEED_CONTEXT; LOCK; *freeB = kDeviceMemory - arenaUsed; *total = kDeviceMemory; return 0; }

API int cuMemcpyHtoDAsync_v2(uint64_t dst, const void* src, size_t n, void* stream) {
    NEED_CONTEXT;
    ON_CURRENT_DEVICE("stream", streamDevice(stream));
    LOCK;
    if (!isDevice(dst, n)) die("cuMemcpyHtoDAsync: the destination is not device memory");
    Op op; op.kind = COPY; op.dst = (void*)(uintptr_t)dst; op.bytes = n;
    if (isPinned(src, n)) op.src = src;  // read when the copy runs, as the DMA engine would
    else op.staged.assign((const char*)src, (const char*)src + n);
    enqueue(std::move(op), stream);
    return 0;
}
API int cuMemcpyDtoHAsync_v2(void* dst, uint64_t src, size_t n, void* stream) {
    NEED_CONTEXT;
    ON_CURRENT_DEVICE("stream", streamDevice(stream));
    LOCK;
    if (!isDevice(src, n)) die("cuMemcpyDtoHAsync: the source is not device memory");
    if (isDevice((uint64_t)(uintptr_t)dst, n)) die("cuMemcpyDtoHAsync: the destination is device memory");
    Op op; op.kind = COPY; op.dst = dst; op.src = (const void*)(uintptr_t)src; op.bytes = n;
    enqueue(std::move(op), stream);
    // Into pageable memory the driver returns only when the copy is done.
    if (!isPinned(dst, n)) flush();
    return 0;
}
API int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t n, void* stream) {
    NEED_CONTEXT;
    ON_CURRENT_DEVICE("stream", streamDevice(stream));
    LOCK;
    if (!isDevice(dst, n) || !isDevice(src, n)) die("cuMemcpyDtoDAsync: an operand is not device memory");
    Op op; op.kind = COPY; op.dst = (void*)(uintptr_t)dst; op.src = (const void*)(uintptr_t)src; op.bytes = n;
    enqueue(std::move(op), stream);
    return 0;
}
API int cuMemsetD8Async(uint64_t dst, unsigned char v, size_t n, void* stream) {
    NEED_CONTEXT;
    ON_CURRENT_DEVICE("stream", streamDevice(stream));
    LOCK;
    if (!isDevice(dst, n)) die("cuMemsetD8Async: not device memory");
    Op op; op.kind = MEMSET; op.dst = (void*)(uintptr_t)dst; op.value = v; op.bytes = n;
    enqueue(std::move(op), stream);
    return 0;
}
API int cuMemHostAlloc(void** p, size_t n, unsigned) {
    NEED_CONTEXT;
    LOCK;
    void* m = nullptr;
    if (posix_memalign(&m, 4096, n ? n : 1) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    pinned[(uintptr_t)m] = n ? n : 1;
    *p = m;
    return 0;
}
API int cuMemFreeHost(void* p) {
    NEED_CONTEXT;
    LOCK;
    flush();  // queued copies may still read it
    auto it = pinned.find((uintptr_t)p);
    if (it == pinned.end()) return CUDA_ERROR_INVALID_VALUE;
    memset(p, 0x5A, it->second);
    pinned.erase(it);
    free(p);
    return 0;
}

API int cuModuleLoadData(void** m, const void* image) {
    NEED_CONTEXT;
    LOCK;
    // EMBER_EMULATOR_REFUSE_MODULES=1: a driver older than the compiler (for tests).
    const char* refuse = getenv("EMBER_EMULATOR_REFUSE_MODULES");
    if (refuse && *refuse && strcmp(refuse, "0") != 0) return CUDA_ERROR_UNSUPPORTED_PTX_VERSION;
    return loadModule((Module**)m, image);
}
API int cuModuleGetFunction(void** f, void* mod, const char* name) {
    NEED_CONTEXT;
    LOCK;
    Module* m = (Module*)mod;
    ON_CURRENT_DEVICE("module", m->device);
    for (int i = 0; i < m->count; i++) {
        if (strcmp(m->kernels[i].name, name) == 0) {
            *f = new Function{m, &m->kernels[i]};
            return 0;
        }
    }
    return CUDA_ERROR_NOT_FOUND;
}
API int cuLaunchKernel(void* fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                       unsigned shared, void* stream, void** params, void** extra) {
    NEED_CONTEXT;
    LOCK;
    (void)shared;
    if (!fn || extra) return CUDA_ERROR_INVALID_VALUE;
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || (size_t)bx * by * bz > 1024) return CUDA_ERROR_INVALID_VALUE;
    if (gy > 65535 || gz > 65535) return CUDA_ERROR_INVALID_VALUE;
    Function* f = (Function*)fn;
    ON_CURRENT_DEVICE("kernel", f->module->device);
    ON_CURRENT_DEVICE("stream", streamDevice(stream));
    Op op;
    op.kind = LAUNCH;
    op.fn = f;
    op.grid = {gx, gy, gz};
    op.block = {bx, by, bz};
    size_t n = f->info->pack(params, nullptr);
    op.params.resize(n + 16);
    f->info->pack(params, op.params.data());
    enqueue(std::move(op), stream);
    return 0;
}

API int cuStreamCreate(void** s, unsigned) {
    NEED_CONTEXT;
    LOCK;
    static int next;
    *s = new Stream{++next, currentDevice};
    return 0;
}
API int cuStreamSynchronize(void*) { NEED_CONTEXT; LOCK; if (traceOn()) fprintf(stderr, "[emulator] sync stream\n"); flush(); return 0; }
API int cuStreamDestroy_v2(void* s) { NEED_CONTEXT; LOCK; delete (Stream*)s; return 0; }
API int cuStreamWaitEvent(void* stream, void* e, unsigned) {  // the event may be another device's
    NEED_CONTEXT;
    ON_CURRENT_DEVICE("stream", streamDevice(stream));
    LOCK;
    Op op; op.kind = WAIT; op.event = (Event*)e; op.gen = ((Event*)e)->recordGen;
    enqueue(std::move(op), stream);
    return 0;
}
API int cuEventCreate(void** e, unsigned) {
    NEED_CONTEXT;
    Event* ev = new Event();
    ev->device = currentDevice;
    *e = ev;
    return 0;
}
API int cuEventRecord(void* e, void* stream) {
    NEED_CONTEXT;
    LOCK;
    Event* ev = (Event*)e;
    ON_CURRENT_DEVICE("event", ev->device);
    ON_CURRENT_DEVICE("stream", streamDevice(stream));
    ev->recorded = true;
    ev->done = false;
    Op op; op.kind = EVENT; op.event = ev; op.gen = ++ev->recordGen;
    enqueue(std::move(op), stream);
    return 0;
}
API int cuEventSynchronize(void*) { LOCK; if (traceOn()) fprintf(stderr, "[emulator] sync event\n"); flush(); return 0; }
// A GPU makes progress on its own: a query of a pending event runs the queue.
API int cuEventQuery(void* e) {
    LOCK;
    Event* ev = (Event*)e;
    if (ev->recorded && !ev->done) flush();
    return !ev->recorded || ev->done ? 0 : 600;  // 600: not ready
}
API int cuEventElapsedTime_v2(float* ms, void* a, void* b) {
    LOCK;
    Event *ea = (Event*)a, *eb = (Event*)b;
    if (!ea->done || !eb->done) return 600;  // CUDA_ERROR_NOT_READY
    *ms = (float)((eb->time - ea->time) * 1000);
    return 0;
}
API int cuEventElapsedTime(float* ms, void* a, void* b) { return cuEventElapsedTime_v2(ms, a, b); }
// As on a GPU, an event may be destroyed while work that records or waits for it is queued.
API int cuEventDestroy_v2(void* e) {
    LOCK;
    if (queue.empty()) delete (Event*)e; else destroyedEvents.push_back((Event*)e);
    return 0;
}
API int cuGetErrorString(int code, const char** s) {
    switch (code) {
    case 0: *s = "no error"; break;
    case CUDA_ERROR_INVALID_VALUE: *s = "invalid argument"; break;
    case CUDA_ERROR_OUT_OF_MEMORY: *s = "out of memory"; break;
    case CUDA_ERROR_INVALID_IMAGE: *s = "device kernel image is invalid (not an emulator module)"; break;
    case CUDA_ERROR_NOT_FOUND: *s = "named symbol not found"; break;
    case CUDA_ERROR_INVALID_CONTEXT: *s = "invalid device context"; break;
    case CUDA_ERROR_INVALID_HANDLE: *s = "invalid resource handle"; break;
    case CUDA_ERROR_UNSUPPORTED_PTX_VERSION: *s = "the provided PTX was compiled with an unsupported toolchain."; break;
    default: *s = "unknown error";
    }
    return 0;
}

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

// MARK: - NCCL across processes: shared memory, one slot per rank, collectives in queue order

namespace {

struct NcclId { char bytes[128]; };

struct NcclShared {
    std::atomic<int> ready;
    int nranks;
    std::atomic<int> joined;
    std::atomic<int> count;
    std::atomic<int> generation;
};
const size_t kNcclHeader = 4096;
const size_t kNcclSlot = 8 << 20;
// Point to point: a one-chunk mailbox per ordered pair of ranks (sender, receiver).
const size_t kP2PChunk = 1 << 20;
struct P2PChannel {
    std::atomic<int> full;  // 1: a chunk waits for the receiver
    int pad;
    size_t bytes;
    char reserved[48];
};

size_t p2pControlOffset(int nranks) { return kNcclHeader + (size_t)nranks * kNcclSlot; }
size_t p2pDataOffset(int nranks) { return p2pControlOffset(nranks) + (((size_t)nranks * nranks * sizeof(P2PChannel) + 4095) & ~(size_t)4095); }
size_t ncclSegmentSize(int nranks) { return p2pDataOffset(nranks) + (size_t)nranks * nranks * kP2PChunk; }

struct NcclComm {
    int nranks, rank;
    int device = currentDevice;  // NCCL takes the device current at init
    NcclShared* shared = nullptr;  // nullptr for a group of one
    size_t mapped = 0;
    char* slot(int r) { return (char*)shared + kNcclHeader + (size_t)r * kNcclSlot; }
    P2PChannel* channel(int from, int to) {
        return (P2PChannel*)((char*)shared + p2pControlOffset(nranks)) + (size_t)from * nranks + to;
    }
    char* mailbox(int from, int to) { return (char*)shared + p2pDataOffset(nranks) + ((size_t)from * nranks + to) * kP2PChunk; }
};

double ncclTimeout() {
    const char* v = getenv("EMBER_EMULATOR_NCCL_TIMEOUT");
    return v && *v ? atof(v) : 300;
}

// All ranks meet here; a rank that never comes ends this one after the timeout (a real
// NCCL would hang; the emulator's users are tests).
void ncclBarrier(NcclComm* c) {
    if (!c->shared) return;
    NcclShared* s = c->shared;
    int g = s->generation.load(std::memory_order_acquire);
    if (s->count.fetch_add(1, std::memory_order_acq_rel) == c->nranks - 1) {
        s->count.store(0, std::memory_order_relaxed);
        s->generation.fetch_add(1, std::memory_order_release);
        return;
    }
    double start = nowSeconds(), limit = ncclTimeout();
    for (long spins = 0; s->generation.load(std::memory_order_acquire) == g; spins++) {
        if (spins > 2000) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, nullptr);
            if (spins % 1000 == 0 && nowSeconds() - start > limit) {
                fprintf(stderr, "Ember CUDA emulator: NCCL rank %d waited %.0f s for the other ranks (one died or stopped calling collectives)\n", c->rank, limit);
                _exit(124);
            }
        }
    }
}

uint16_t f2h(float v) {
    uint32_t x; memcpy(&x, &v, 4);
    uint32_t sgn = (x >> 16) & 0x8000u, e = (x >> 23) & 0xff, m = x & 0x7fffffu;
    if (e == 0xff) return (uint16_t)(sgn | 0x7c00u | (m ? 0x200u : 0));
    int ne = (int)e - 112;
    if (ne >= 31) return (uint16_t)(sgn | 0x7c00u);
    if (ne <= 0) {
        if (ne < -10) return (uint16_t)sgn;
        m |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - ne), hm = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (hm & 1))) hm++;
        return (uint16_t)(sgn | hm);
    }
    uint32_t hm = m >> 13, rem = m & 0x1fff, out = sgn | ((uint32_t)ne << 10) | hm;
    if (rem > 0x1000 || (rem == 0x1000 && (hm & 1))) out++;
    return (uint16_t)out;
}
float h2f(uint16_t h) {
    uint32_t sgn = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, f;
    if (e == 0) {
        if (m == 0) f = sgn;
        else { e = 113; while (!(m & 0x400)) { m <<= 1; e--; } m &= 0x3ff; f = sgn | (e << 23) | (m << 13); }
    } else if (e == 31) f = sgn | 0x7f800000u | (m << 13);
    else f = sgn | ((e + 112) << 23) | (m << 13);
    float out; memcpy(&out, &f, 4); return out;
}
float bf2f(uint16_t h) { uint32_t x = (uint32_t)h << 16; float f; memcpy(&f, &x, 4); return f; }
uint16_t f2bf(float v) {
    uint32_t x; memcpy(&x, &v, 4);
    if ((x & 0x7f800000u) == 0x7f800000u && (x & 0x7fffffu)) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

template <typename T, typename A> A ncclLoad(const char* p, size_t i) { T v; memcpy(&v, p + i * sizeof(T), sizeof(T)); return (A)v; }

// out[i] = op over ranks of slot[r][base + i], for n elements of NCCL type `t`.
void ncclReduce(NcclComm* c, size_t base, size_t n, int t, int op, char* out) {
    auto combine = [op](double a, double b) {
        switch (op) { case 1: return a * b; case 2: return a > b || a != a ? a : b; case 3: return a < b || a != a ? a : b; default: return a + b; }
    };
    for (size_t i = 0; i < n; i++) {
        size_t k = base + i;
        if (t == 4 || t == 5) {  // 64-bit integers: exact
            long long acc = ncclLoad<long long, long long>(c->slot(0), k);
            for (int r = 1; r < c->nranks; r++) {
                long long b = ncclLoad<long long, long long>(c->slot(r), k);
                acc = op == 1 ? acc * b : op == 2 ? (acc > b ? acc : b) : op == 3 ? (acc < b ? acc : b) : acc + b;
            }
            if (op == 4) acc /= c->nranks;
            memcpy(out + i * 8, &acc, 8);
            continue;
        }
        double acc = 0;
        for (int r = 0; r < c->nranks; r++) {
            const char* sp = c->slot(r);
            double v;
            switch (t) {
            case 0: v = ncclLoad<int8_t, double>(sp, k); break;
            case 1: v = ncclLoad<uint8_t, double>(sp, k); break;
            case 2: v = ncclLoad<int32_t, double>(sp, k); break;
            case 3: v = ncclLoad<uint32_t, double>(sp, k); break;
            case 6: v = h2f(ncclLoad<uint16_t, uint16_t>(sp, k)); break;
            case 7: v = ncclLoad<float, double>(sp, k); break;
            case 9: v = bf2f(ncclLoad<uint16_t, uint16_t>(sp, k)); break;
            default: v = ncclLoad<double, double>(sp, k); break;
            }
            acc = r == 0 ? v : combine(acc, v);
        }
        if (op == 4) acc /= c->nranks;
        switch (t) {
        case 0: { int8_t v = (int8_t)acc; memcpy(out + i, &v, 1); break; }
        case 1: { uint8_t v = (uint8_t)acc; memcpy(out + i, &v, 1); break; }
        case 2: { int32_t v = (int32_t)acc; memcpy(out + i * 4, &v, 4); break; }
        case 3: { uint32_t v = (uint32_t)acc; memcpy(out + i * 4, &v, 4); break; }
        case 6: { uint16_t v = f2h((float)acc); memcpy(out + i * 2, &v, 2); break; }
        case 7: { float v = (float)acc; memcpy(out + i * 4, &v, 4); break; }
        case 9: { uint16_t v = f2bf((float)acc); memcpy(out + i * 2, &v, 2); break; }
        default: memcpy(out + i * 8, &acc, 8); break;
        }
    }
}

size_t ncclTypeSize(int t) {
    switch (t) {
    case 0: case 1: return 1;          // int8, uint8
    case 2: case 3: case 7: return 4;  // int32, uint32, float32
    case 4: case 5: case 8: return 8;  // int64, uint64, float64
    case 6: case 9: return 2;          // float16, bfloat16
    default: return 0;
    }
}

// Runs one collective (called from flush, with device memory readable).
void runCollective(const Op& op) {
    NcclComm* c = (NcclComm*)op.gemm.a;  // the collective's fields ride in `gemm` and `value`
    const char* send = (const char*)op.src;
    char* recv = (char*)op.dst;
    int kind = op.gemm.m, t = op.gemm.n, redop = op.gemm.k, root = op.gemm.lda;
    size_t count = op.bytes, es = ncclTypeSize(t);
    if (!c->shared) {  // a group of one: every collective is a copy
        size_t n = kind == 3 ? count : count;
        if (send != recv) memmove(recv, send, n * es);
        return;
    }
    size_t chunk = kind == 2 ? kNcclSlot / (es * c->nranks) : kNcclSlot / es;
    for (size_t off = 0; off < count || (count == 0 && off == 0); off += chunk) {
        size_t n = count - off < chunk ? count - off : chunk;
        if (count == 0) break;
        switch (kind) {
        case 0:  // allReduce
            memcpy(c->slot(c->rank), send + off * es, n * es);
            ncclBarrier(c);
            ncclReduce(c, 0, n, t, redop, recv + off * es);
            ncclBarrier(c);
            break;
        case 1:  // broadcast
            if (c->rank == root) memcpy(c->slot(root), send + off * es, n * es);
            ncclBarrier(c);
            memcpy(recv + off * es, c->slot(root), n * es);
            ncclBarrier(c);
            break;
        case 2:  // reduceScatter: count is the per-rank count
            for (int d = 0; d < c->nranks; d++) memcpy(c->slot(c->rank) + (size_t)d * n * es, send + ((size_t)d * count + off) * es, n * es);
            ncclBarrier(c);
            ncclReduce(c, (size_t)c->rank * n, n, t, redop, recv + off * es);
            ncclBarrier(c);
            break;
        case 3:  // allGather: count is the per-rank count
            memcpy(c->slot(c->rank), send + off * es, n * es);
            ncclBarrier(c);
            for (int r = 0; r < c->nranks; r++) memcpy(recv + ((size_t)r * count + off) * es, c->slot(r), n * es);
            ncclBarrier(c);
            break;
        }
    }
}

// Group state of the calling thread: ncclSend/ncclRecv between ncclGroupStart and
// ncclGroupEnd are collected and queued as one operation.
thread_local int groupDepth = 0;
thread_local std::vector<P2PEntry> groupOps;

int enqueueCollective(int kind, const void* send, void* recv, size_t count, int t, int redop, int root, NcclComm* c, void* stream) {
    LOCK;
    if (groupDepth > 0) return 5;  // ncclInvalidUsage: the emulator groups only send/recv
    if (c && streamDevice(stream) != c->device) {
        if (currentDevice < 0) noContext(__func__); else otherDevice(__func__, "communicator's stream", streamDevice(stream));
        return 5;  // ncclInvalidUsage
    }
    size_t es = ncclTypeSize(t);
    if (!es || !c) return 4;  // ncclInvalidArgument
    size_t inCount = kind == 2 ? count * c->nranks : count, outCount = kind == 3 ? count * c->nranks : count;
    if (!isDevice((uint64_t)(uintptr_t)send, inCount * es) || !isDevice((uint64_t)(uintptr_t)recv, outCount * es)) return 4;
    if (root < 0 || root >= c->nranks) return 4;
    Op op;
    op.kind = NCCL;
    op.src = send;
    op.dst = recv;
    op.bytes = count;
    op.gemm.a = (uint64_t)(uintptr_t)c;
    op.gemm.m = kind; op.gemm.n = t; op.gemm.k = redop; op.gemm.lda = root;
    enqueue(std::move(op), stream);
    return 0;
}

int enqueuePointToPoint(bool send, const void* buf, size_t count, int t, int peer, NcclComm* c, void* stream) {
    LOCK;
    size_t es = ncclTypeSize(t);
    if (!es || !c || !c->shared || peer < 0 || peer >= c->nranks || peer == c->rank) return 4;
    if (c && streamDevice(stream) != c->device) {
        if (currentDevice < 0) noContext(__func__); else otherDevice(__func__, "communicator's stream", streamDevice(stream));
        return 5;  // ncclInvalidUsage
    }
    if (!isDevice((uint64_t)(uintptr_t)buf, count * es)) return 4;
    P2PEntry e{send, (char*)buf, count * es, peer, c, streamId(stream)};
    if (groupDepth > 0) { groupOps.push_back(e); return 0; }
    Op op;
    op.kind = NCCL_P2P;
    op.p2p.push_back(e);
    enqueue(std::move(op), stream);
    return 0;
}

// Runs the sends and receives of one group (called from flush, with device memory
// readable). Like NCCL, a send finishes only when its receiver has taken every byte, so
// sends and receives that depend on each other complete only when they are in one group;
// operations on the same channel (same peer and direction) keep their order.
void runPointToPoint(const Op& op) {
    NcclComm* c = (NcclComm*)op.p2p[0].comm;
    size_t n = op.p2p.size(), remaining = n;
    std::vector<size_t> done(n, 0);
    std::vector<char> started(n, 0), finished(n, 0);
    double start = nowSeconds(), limit = ncclTimeout();
    std::vector<char> busy((size_t)2 * c->nranks);
    for (long idle = 0; remaining > 0;) {
        bool progressed = false;
        std::fill(busy.begin(), busy.end(), 0);
        for (size_t i = 0; i < n; i++) {
            if (finished[i]) continue;
            const P2PEntry& e = op.p2p[i];
            char& held = busy[(size_t)(e.send ? 0 : c->nranks) + e.peer];
            if (held) continue;  // an earlier operation on this channel is still running
            held = 1;
            int from = e.send ? c->rank : e.peer, to = e.send ? e.peer : c->rank;
            P2PChannel* ch = c->channel(from, to);
            char* box = c->mailbox(from, to);
            if (ch->full.load(std::memory_order_acquire) != (e.send ? 0 : 1)) continue;
            progressed = true;
            if (e.send) {
                if (started[i] && done[i] >= e.bytes) { finished[i] = 1; remaining--; continue; }  // the last chunk was taken
                size_t k = e.bytes - done[i] < kP2PChunk ? e.bytes - done[i] : kP2PChunk;
                memcpy(box, e.buf + done[i], k);
                ch->bytes = k;
                ch->full.store(1, std::memory_order_release);
                done[i] += k;
                started[i] = 1;
            } else {
                size_t k = ch->bytes;
                if (k > e.bytes - done[i]) {
                    fprintf(stderr, "Ember CUDA emulator: NCCL rank %d received more bytes from rank %d than its ncclRecv of %zu bytes takes\n",
                            c->rank, e.peer, e.bytes);
                    _exit(3);
                }
                memcpy(e.buf + done[i], box, k);
                done[i] += k;
                ch->full.store(0, std::memory_order_release);
                if (done[i] >= e.bytes) { finished[i] = 1; remaining--; }
            }
        }
        if (progressed) { idle = 0; start = nowSeconds(); continue; }
        if (++idle > 2000) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, nullptr);
            if (idle % 1000 == 0 && nowSeconds() - start > limit) {
                fprintf(stderr, "Ember CUDA emulator: NCCL rank %d waited %.0f s for a peer's matching send or receive (%zu of %zu unfinished)\n",
                        c->rank, limit, remaining, n);
                _exit(124);
            }
        }
    }
}

}  // namespace

API int ncclGetVersion(int* v) { *v = 22300; return 0; }
API int ncclGetUniqueId(NcclId* id) {
    memset(id, 0, sizeof *id);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(id->bytes, 64, "ember-emu-%d-%lld", (int)getpid(), (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    return 0;
}
API int ncclCommInitRank(NcclComm** comm, int nranks, NcclId id, int rank) {
    if (nranks < 1 || rank < 0 || rank >= nranks) return 4;
    NcclComm* c = new NcclComm{nranks, rank};
    if (nranks > 1) {
        char name[96];
        snprintf(name, sizeof name, "/%.60s", id.bytes);
        size_t size = ncclSegmentSize(nranks);
        int fd = -1;
        if (rank == 0) {
            fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
            if (fd < 0 || ftruncate(fd, (off_t)size) != 0) { delete c; return 2; }  // ncclSystemError
        } else {
            double start = nowSeconds();
            while ((fd = shm_open(name, O_RDWR, 0600)) < 0) {
                if (nowSeconds() - start > ncclTimeout()) { delete c; return 2; }
                usleep(2000);
            }
            struct stat st;
            while (fstat(fd, &st) == 0 && (size_t)st.st_size < size) usleep(1000);
        }
        void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED) { delete c; return 2; }
        c->shared = (NcclShared*)p;
        c->mapped = size;
        if (rank == 0) { c->shared->nranks = nranks; c->shared->ready.store(1, std::memory_order_release); }
        while (c->shared->ready.load(std::memory_order_acquire) != 1) usleep(1000);
        c->shared->joined.fetch_add(1);
        ncclBarrier(c);  // every rank has mapped the segment: its name can go
        if (rank == 0) shm_unlink(name);
    }
    *comm = c;
    return 0;
}
API int ncclCommDestroy(NcclComm* c) {
    LOCK;
    flush();
    if (c->shared) munmap(c->shared, c->mapped);
    delete c;
    return 0;
}
API int ncclCommAbort(NcclComm* c) { if (c->shared) munmap(c->shared, c->mapped); delete c; return 0; }
API int ncclAllReduce(const void* s, void* r, size_t n, int t, int op, NcclComm* c, void* st) { return enqueueCollective(0, s, r, n, t, op, 0, c, st); }
API int ncclBroadcast(const void* s, void* r, size_t n, int t, int root, NcclComm* c, void* st) { return enqueueCollective(1, s, r, n, t, 0, root, c, st); }
API int ncclReduceScatter(const void* s, void* r, size_t n, int t, int op, NcclComm* c, void* st) { return enqueueCollective(2, s, r, n, t, op, 0, c, st); }
API int ncclAllGather(const void* s, void* r, size_t n, int t, NcclComm* c, void* st) { return enqueueCollective(3, s, r, n, t, 0, 0, c, st); }
API int ncclSend(const void* s, size_t n, int t, int peer, NcclComm* c, void* st) { return enqueuePointToPoint(true, s, n, t, peer, c, st); }
API int ncclRecv(void* r, size_t n, int t, int peer, NcclComm* c, void* st) { return enqueuePointToPoint(false, r, n, t, peer, c, st); }
API int ncclGroupStart() { groupDepth++; return 0; }
API int ncclGroupEnd() {
    if (groupDepth <= 0) return 5;  // ncclInvalidUsage
    if (--groupDepth > 0) return 0;
    LOCK;
    std::vector<P2PEntry> ops;
    ops.swap(groupOps);
    if (ops.empty()) return 0;
    for (const P2PEntry& e : ops) if (e.comm != ops[0].comm) return 5;  // the emulator groups one communicator at a time
    Op op;
    op.kind = NCCL_P2P;
    op.p2p = std::move(ops);
    int stream = op.p2p[0].stream;
    enqueueOnStream(std::move(op), stream);
    return 0;
}
API const char* ncclGetErrorString(int code) {
    switch (code) {
    case 0: return "no error";
    case 2: return "system error (the emulator's shared memory)";
    case 4: return "invalid argument";
    case 5: return "invalid usage";
    default: return "NCCL error";
    }
}

// MARK: - cuDNN: the legacy convolution API for NCHW float/double tensors, as direct loops

namespace {
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
}  // namespace

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
