// Ember's CUDA emulator: the entry points of the CUDA driver API, NVRTC, cuBLAS, cuDNN
// (convolutions) and NCCL that Ember's GPU backend calls, implemented on the host CPU, in one
// shared library built from the files of this folder:
//
//   memory.cpp     device memory (an arena readable only while device work runs), pinned host memory
//   queue.cpp      the queue of device work, streams and their order, kernels run as fibers
//   racecheck.cpp  data races between GPU threads of one launch (EMBER_EMULATOR_RACECHECK=1)
//   driver.cpp     contexts and the driver API (cu*)
//   nvrtc.cpp      NVRTC (nvrtc*): the host C++ compiler builds Ember's CUDA C against a prelude
//   libraries.cpp  cuBLAS (strided-batched GEMM) and cuDNN (NCHW convolutions) as direct loops
//   nccl.cpp       NCCL across processes: shared memory, one slot per rank, in queue order
//
// It exists so that the GPU backend runs end to end where no GPU is: the library loader,
// device model, caching allocator, kernel argument packing, streams and events, cuBLAS and
// cuDNN calls, NCCL collectives, and every generated kernel. Kernels are the same CUDA C
// source Ember hands to NVRTC, compiled against a small prelude (threadIdx and friends,
// __shared__, __syncthreads, atomics); kernels that synchronise a block run each thread as
// a fiber, the others run thread after thread.
//
// What it checks, as a GPU would (or more strictly):
//  - device memory is not host memory: host code that dereferences a device pointer stops
//    with a message naming the address; each allocation is followed by an unmapped page, so
//    a kernel that runs past its end faults; new and freed device memory reads as NaN (-1 as
//    integers), so code that counts on zeros shows it;
//  - work is queued and runs only when the host synchronises (stream or event
//    synchronisation, a copy to pageable host memory, a free, an event query), so host code
//    that reads pinned memory before synchronising sees stale data; kernel arguments are
//    copied at launch, pageable host-to-device copies are staged at the call;
//  - streams keep their own order and honour cuStreamWaitEvent; with
//    EMBER_EMULATOR_STREAM_ORDER=newest-first|oldest-first the streams' queued work runs in
//    an adversarial order, so that work one stream needs from another without waiting for
//    it reads stale data;
//  - contexts: a thread has a current context only after cuCtxSetCurrent, and driver calls
//    without one return CUDA_ERROR_INVALID_CONTEXT (except event queries, waits and
//    destruction, as documented); work queued on another device's stream, with another
//    device's kernel or event, or through a cuBLAS/cuDNN handle or NCCL communicator made
//    for another device, is refused;
//  - EMBER_EMULATOR_RACECHECK=1 (clang++ only): kernels are built with clang's
//    thread-sanitizer instrumentation, whose hooks report each load and store of device and
//    shared memory; two GPU threads of one launch that touch one element, one of them
//    writing, with neither a barrier (same block) nor an atomic between them, stop the
//    program with the kernel's name and both threads.
// It is not a performance model: timings mean nothing.
//
// Build: c++ -std=c++17 -O2 -fPIC -shared -fvisibility=hidden -o libember-cuda-emulator.so \
//            memory.cpp queue.cpp racecheck.cpp driver.cpp nvrtc.cpp libraries.cpp nccl.cpp -ldl -lpthread
//        (Scripts/cuda-emulator.sh builds it once per source version and sets the variables below).
// Use:   EMBER_CUDA_DRIVER=…/libember-cuda-emulator.so EMBER_NVRTC_LIBRARY=… EMBER_CUBLAS_LIBRARY=…
//        EMBER_CUDNN_LIBRARY=… EMBER_NCCL_LIBRARY=…; EMBER_EMULATOR_CXX picks the kernels'
//        compiler; EMBER_EMULATOR_TRACE=1 prints every launch, cuDNN call and synchronisation;
//        EMBER_EMULATOR_DEVICES=N emulates N devices; EMBER_EMULATOR_REFUSE_MODULES=1 refuses
//        every module (a driver older than the compiler).

#pragma once


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

namespace emu {

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

// MARK: memory.cpp
[[noreturn]] void die(const char* fmt, const char* a = "", const char* b = "");
double nowSeconds();
bool traceOn();
bool raceCheckOn();
std::recursive_mutex& apiLock();
extern const size_t kDeviceMemory;
extern size_t arenaUsed;
void initArena();
void enterDevice();
void leaveDevice();
bool isDevice(uint64_t p, size_t n = 1);
int deviceAlloc(uint64_t* out, size_t bytes);
int deviceFree(uint64_t p);
void protectGuards();
extern std::map<uintptr_t, size_t> pinned;  // start -> bytes
bool isPinned(const void* p, size_t n);

// MARK: modules and kernels (nvrtc.cpp loads them, queue.cpp runs them)
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
int loadModule(Module** out, const void* image);

// MARK: queue.cpp
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
struct Stream { int id; int device; };
int streamId(void* s);
extern std::vector<Op> queue;
extern std::vector<Event*> destroyedEvents;  // freed after the flush that runs their last operations
void flush();
void enqueueOnStream(Op&& op, int stream);
void enqueue(Op&& op, void* stream);
/// Barriers the running fiber has passed (0 outside fibers): the race check's ordering.
int currentFiberPhase();

// MARK: racecheck.cpp
void raceBegin(const char* kernel, Ctx* ctx, char* sharedLo, char* sharedHi, bool fibers);
void raceEnd();
void raceAccess(const void* p, int n, int kind);  // kind: 0 read, 1 write, 2 atomic

// MARK: driver.cpp (contexts)
extern int primaryContexts[16];
extern thread_local int currentDevice;
int streamDevice(void* s);
int noContext(const char* fn);
int otherDevice(const char* fn, const char* what, int device);

// MARK: libraries.cpp, nccl.cpp (work the queue runs)
void runCollective(const Op& op);
void runPointToPoint(const Op& op);
void runDnnOp(size_t index);
void clearDnnOps();

}  // namespace emu

#define API extern "C" __attribute__((visibility("default")))
#define LOCK std::lock_guard<std::recursive_mutex> guard(emu::apiLock())
#define NEED_CONTEXT if (emu::currentDevice < 0) return emu::noContext(__func__)
#define ON_CURRENT_DEVICE(what, device) if ((device) != emu::currentDevice) return emu::otherDevice(__func__, what, device)
