// The queue of device work: operations (launches, copies, events, waits, library calls)
// are queued per stream and run only when the host synchronises, in call order or in an
// adversarial order of the streams (EMBER_EMULATOR_STREAM_ORDER). Kernels run thread after
// thread, or as one fiber per thread of a block when they call __syncthreads.
#include "emulator.h"

namespace emu {

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


int currentFiberPhase() { return fs.current >= 0 && !fs.phase.empty() ? fs.phase[fs.current] : 0; }

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
    if (raceCheckOn()) raceBegin(f->info->name, ctx, f->module->sharedLo, f->module->sharedHi, f->info->syncs != 0);
    struct EndRace { ~EndRace() { raceEnd(); } } endRace;
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

int streamId(void* s) { return s ? ((Stream*)s)->id : 0; }

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

}  // namespace emu
