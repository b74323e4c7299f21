// A small persistent thread pool for intra-op parallelism (POSIX threads).
//
// Dispatch's concurrentPerform wakes its workers too late for kernels of ~100 µs: the
// caller ends up running every chunk itself. Here the workers spin for a short while after
// each job (the next kernel of a training step usually follows within microseconds), then
// sleep on a condition variable. One job runs at a time; a caller that finds the pool busy,
// or that is itself inside a pool job, is told so and runs the work another way.
#include "CEmberThreads.h"

#if !defined(_WIN32)
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

typedef struct {
    pthread_mutex_t submit;           // one job at a time
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    _Atomic uint64_t generation;      // bumped for each job
    _Atomic uint64_t claim;           // (generation << 32) | next chunk
    _Atomic long done;                // chunks finished in this job
    _Atomic int sleepers;
    _Atomic uint64_t parks;           // bumped to send spinning workers to sleep at once
    // The job: written by the submitter while the claim is closed, read by workers after they
    // saw the claim open for their generation (atomics: a late worker may read them while the
    // next job is being set up; its claim then fails and it runs nothing).
    _Atomic(ember_pool_fn) fn;
    _Atomic(void *) ctx;
    _Atomic long chunks;
    int workers;
    long spin_ns;
} pool_t;

static pool_t pool;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static int pool_requested = 0;
static _Thread_local int in_pool_job = 0;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

// Claims and runs chunks of job `gen` until none are left (or a newer job started).
//
// The claim word is (generation << 32) | next chunk. The submitter first closes it for the
// new generation (index CLOSED), then writes the job, then opens it (index 0) with release
// order. A worker reads the job only after it loaded an open claim of its own generation;
// if the job was replaced meanwhile, the claim has moved to another generation and the
// worker's compare-and-swap fails, so a chunk only ever runs with its own job's function
// and context. (Reading the job before checking the claim let a late worker call a new
// job's function with an old context, or an index past the old job's end.)
#define CLOSED 0xffffffffu
static void run_chunks(uint64_t gen) {
    for (;;) {
        uint64_t v = atomic_load_explicit(&pool.claim, memory_order_acquire);
        if ((v >> 32) != (gen & 0xffffffffu)) return;
        uint64_t idx = v & 0xffffffffu;
        if (idx == CLOSED) return;
        long chunks = atomic_load_explicit(&pool.chunks, memory_order_acquire);
        if ((long)idx >= chunks) return;
        ember_pool_fn fn = atomic_load_explicit(&pool.fn, memory_order_acquire);
        void *ctx = atomic_load_explicit(&pool.ctx, memory_order_acquire);
        if (atomic_compare_exchange_weak_explicit(&pool.claim, &v, v + 1, memory_order_acq_rel, memory_order_acquire)) {
            fn(ctx, (long)idx);
            atomic_fetch_add_explicit(&pool.done, 1, memory_order_acq_rel);
        }
    }
}

static void *worker_main(void *arg) {
    (void)arg;
    in_pool_job = 1;  // kernels called from a job never re-enter the pool
    uint64_t seen = atomic_load(&pool.generation);
    for (;;) {
        uint64_t g = atomic_load_explicit(&pool.generation, memory_order_acquire);
        if (g == seen) {
            uint64_t start = now_ns();
            uint64_t parks = atomic_load_explicit(&pool.parks, memory_order_relaxed);
            int n = 0;
            while ((g = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen) {
                CPU_RELAX();
                if (++n == 256) {
                    n = 0;
                    if (now_ns() - start > (uint64_t)pool.spin_ns) break;
                    if (atomic_load_explicit(&pool.parks, memory_order_relaxed) != parks) break;
                }
            }
            if (g == seen) {
                pthread_mutex_lock(&pool.sleep_lock);
                atomic_fetch_add(&pool.sleepers, 1);
                while ((g = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.sleep_lock);
                atomic_fetch_sub(&pool.sleepers, 1);
                pthread_mutex_unlock(&pool.sleep_lock);
            }
        }
        seen = g;
        run_chunks(g);
    }
    return NULL;
}

static void pool_init(void) {
    pthread_mutex_init(&pool.submit, NULL);
    pthread_mutex_init(&pool.sleep_lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    atomic_store(&pool.generation, 0);
    atomic_store(&pool.claim, 0);
    atomic_store(&pool.done, 0);
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.parks, 0);
    pool.spin_ns = 200000;
    const char *s = getenv("EMBER_SPIN_US");
    if (s) pool.spin_ns = atol(s) * 1000;
    int started = 0;
    for (int i = 0; i < pool_requested; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 8 << 20);
        if (pthread_create(&t, &attr, worker_main, NULL) == 0) {
            pthread_detach(t);
            started++;
        }
        pthread_attr_destroy(&attr);
    }
    pool.workers = started;
}

int ember_pool_start(int workers) {
    if (pool_requested == 0) pool_requested = workers > 0 ? workers : 0;
    pthread_once(&pool_once, pool_init);
    return pool.workers;
}

int ember_pool_run(ember_pool_fn fn, void *ctx, long chunks) {
    if (in_pool_job) return -2;
    if (pool.workers <= 0) return -1;
    if (pthread_mutex_trylock(&pool.submit) != 0) return -1;
    in_pool_job = 1;
    uint64_t gen = atomic_load(&pool.generation) + 1;
    // Close the claim for the new generation first: from here on no late worker of the
    // previous job can claim anything, whatever job fields it reads.
    atomic_store(&pool.claim, ((gen & 0xffffffffu) << 32) | CLOSED);
    atomic_store_explicit(&pool.fn, fn, memory_order_release);
    atomic_store_explicit(&pool.ctx, ctx, memory_order_release);
    atomic_store_explicit(&pool.chunks, chunks, memory_order_release);
    atomic_store(&pool.done, 0);
    atomic_store_explicit(&pool.claim, (gen & 0xffffffffu) << 32, memory_order_release);
    atomic_store(&pool.generation, gen);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep_lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep_lock);
    }
    run_chunks(gen);
    while (atomic_load_explicit(&pool.done, memory_order_acquire) < chunks) CPU_RELAX();
    in_pool_job = 0;
    pthread_mutex_unlock(&pool.submit);
    return 0;
}

int ember_pool_in_job(void) { return in_pool_job; }

void ember_pool_park(void) { atomic_fetch_add_explicit(&pool.parks, 1, memory_order_relaxed); }

#else
// Windows: no pool; the Swift side uses Dispatch.
int ember_pool_start(int workers) { (void)workers; return 0; }
int ember_pool_run(ember_pool_fn fn, void *ctx, long chunks) { (void)fn; (void)ctx; (void)chunks; return -1; }
int ember_pool_in_job(void) { return 0; }
void ember_pool_park(void) {}
#endif

static _Atomic long ember_pin_scopes;
void ember_pin_scopes_add(long delta) { atomic_fetch_add_explicit(&ember_pin_scopes, delta, memory_order_relaxed); }
long ember_pin_scopes_load(void) { return atomic_load_explicit(&ember_pin_scopes, memory_order_relaxed); }
