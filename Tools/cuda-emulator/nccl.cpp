// NCCL across processes: ranks meet in a shared-memory segment named by the unique id, one
// slot per rank; collectives and point-to-point groups run in queue order when the device
// work runs (queue.cpp). A rank that never comes ends the others after a timeout.
#include "emulator.h"

// MARK: - NCCL across processes: shared memory, one slot per rank, collectives in queue order

namespace emu {

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

}  // namespace emu

using namespace emu;

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
