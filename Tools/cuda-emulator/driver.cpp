// The CUDA driver API (cu*): devices, contexts (checked as a driver checks them), memory,
// copies, modules, launches, streams and events. Device work goes to the queue (queue.cpp).
#include "emulator.h"

namespace emu {

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

}  // namespace emu

using namespace emu;

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
