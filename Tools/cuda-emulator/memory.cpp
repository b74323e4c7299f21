// Device memory: an arena of address space that host code cannot read except while
// emulated device work runs, guard pages, NaN-filled new and freed blocks; pinned host
// memory; and the helpers every part shares (messages, trace switches, the API lock).
#include "emulator.h"

namespace emu {

[[noreturn]] void die(const char* fmt, const char* a, const char* b) {
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
extern const size_t kDeviceMemory = size_t(16) << 30; // what the emulated device reports
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

bool isDevice(uint64_t p, size_t n) {
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

}  // namespace emu
