#ifndef CEMBERTHREADS_H
#define CEMBERTHREADS_H

// The intra-op thread pool (persistent workers that spin briefly between jobs, POSIX
// threads; absent on Windows, where the Swift side uses Dispatch) and a process-wide
// counter with relaxed atomics.

#ifdef __cplusplus
extern "C" {
#endif

/// A chunk of a parallel job: fn(ctx, chunkIndex).
typedef void (*ember_pool_fn)(void *ctx, long chunk);
/// Starts the intra-op pool with `workers` threads (first call wins); returns how many run.
int ember_pool_start(int workers);
/// Runs chunks 0..<chunks on the pool and the calling thread; returns 0 when done, -1 when
/// the pool is busy or absent, -2 when called from inside a pool job (run it inline).
int ember_pool_run(ember_pool_fn fn, void *ctx, long chunks);
/// Sends spinning workers to sleep now (before handing the cores to another library's threads).
void ember_pool_park(void);
/// Whether this thread is running a pool job.
int ember_pool_in_job(void);

/// A process-wide counter with relaxed atomics (the number of threads inside a pinned
/// allocation scope: the CPU allocator's fast path reads it).
void ember_pin_scopes_add(long delta);
long ember_pin_scopes_load(void);

#ifdef __cplusplus
}
#endif
#endif
