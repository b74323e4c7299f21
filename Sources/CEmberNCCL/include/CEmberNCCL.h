#ifndef CEMBERNCCL_H
#define CEMBERNCCL_H

// The one NCCL call Swift cannot make itself: ncclCommInitRank takes the 128-byte unique
// id by value. NCCL is opened at run time (dlopen); this shim only forwards the call.

#ifdef __cplusplus
extern "C" {
#endif

/// Calls NCCL's `ncclCommInitRank(comm, nranks, id, rank)` through `fn` (from dlsym): the
/// 128-byte id is passed by value, which only C can spell.
int ember_nccl_comm_init_rank(void *fn, void **comm, int nranks, const void *id128, int rank);

#ifdef __cplusplus
}
#endif
#endif
