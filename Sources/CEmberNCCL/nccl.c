#include "CEmberNCCL.h"

// NCCL's unique id is a struct passed by value; Swift cannot declare such a C function type.
typedef struct { char internal[128]; } ember_nccl_unique_id;
typedef int (*ember_nccl_init_fn)(void **comm, int nranks, ember_nccl_unique_id id, int rank);

int ember_nccl_comm_init_rank(void *fn, void **comm, int nranks, const void *id128, int rank) {
    ember_nccl_unique_id id;
    const char *src = (const char *)id128;
    for (int i = 0; i < 128; i++) id.internal[i] = src[i];
    return ((ember_nccl_init_fn)fn)(comm, nranks, id, rank);
}
