/* What the uring backend shares with the native operations of op_uring.c (internal).
 *
 * Operations are io_uring requests on the backend's own ring: written into its submission
 * queue before the wait, submitted by the wait's one io_uring_enter. Their completions are told
 * apart from readiness completions by the low half of user_data, NK__URING_OP_FD, which is
 * never an fd-table index; the backend hands each of them to the sink while it reaps, and the
 * loop calls the operations back after the wait (a backend never calls user callbacks). */
#ifndef NETKIT_LOOP_URING_OPS_H
#define NETKIT_LOOP_URING_OPS_H

#include <stdint.h>

struct io_uring;
struct io_uring_cqe;

#define NK__URING_OP_FD UINT32_C(0xfffffffd)

typedef void (*nk__uring_sink)(void *arg, const struct io_uring_cqe *cqe);

/* Install the sink for operation completions and return the backend's ring. state is the
 * uring backend's (nk_loop.bstate). */
struct io_uring *nk__uring_ops_ring(void *state, nk__uring_sink sink, void *arg);

#endif
