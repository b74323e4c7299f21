// The race check (EMBER_EMULATOR_RACECHECK=1): kernels built with clang's thread-sanitizer
// instrumentation report every load and store (nvrtc.cpp links the hooks to raceAccess);
// two GPU threads of one launch that touch one element, one writing, with neither a barrier
// nor an atomic between them, stop the program naming the kernel and both threads.
#include "emulator.h"

namespace emu {

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
};
RaceLaunch race;

void raceAccess(const void* pv, int n, int kind) {  // kind: 0 read, 1 write, 2 atomic
    if (!race.kernel) return;
    char* p = (char*)pv;
    bool shared = p >= race.sharedLo && p < race.sharedHi;
    if (!shared && !isDevice((uint64_t)(uintptr_t)p, (size_t)n)) return;  // the thread's own stack, the arguments
    Ctx* c = race.ctx;
    long long block = ((long long)c->blockIdx.z * c->gridDim.y + c->blockIdx.y) * c->gridDim.x + c->blockIdx.x;
    long long inBlock = ((long long)c->threadIdx.z * c->blockDim.y + c->threadIdx.y) * c->blockDim.x + c->threadIdx.x;
    long long thread = block * ((long long)c->blockDim.x * c->blockDim.y * c->blockDim.z) + inBlock;
    int phase = race.fibers ? currentFiberPhase() : 0;
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

void raceBegin(const char* kernel, Ctx* ctx, char* sharedLo, char* sharedHi, bool fibers) {
    race.kernel = kernel;
    race.ctx = ctx;
    race.sharedLo = sharedLo;
    race.sharedHi = sharedHi;
    race.fibers = fibers;
    race.seen.clear();
}

void raceEnd() { race.kernel = nullptr; }

}  // namespace emu
