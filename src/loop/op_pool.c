/* Receive buffer pools (nk_op_bufpool, netkit/op.h): buffers shared by many pooled receives.
 *
 * The buffers are one anonymous mapping, cut into count pieces of size bytes; buffer id (bid) i
 * is the piece at i * size. Pages nobody has written into cost no memory, so a large pool that
 * is little used stays small (a mapping of its own, not the heap, so that freeing the pool
 * gives every page back).
 *
 * Emulated (epoll, poll, select): the free ids form a stack, so the buffer used last, still in
 * the cache, is the next one taken. A pooled receive whose descriptor is readable takes one,
 * receives into it, and hands it over (result > 0) or puts it back (-EAGAIN, 0, an error).
 *
 * Native (uring): the free buffers are the entries of a provided-buffer ring registered under
 * the pool's buffer group; the kernel takes one when a receive's data is there and names it in
 * the completion (IORING_CQE_F_BUFFER, the id above IORING_CQE_BUFFER_SHIFT). A release adds
 * the buffer at the ring's tail.
 *
 * Empty pool, on both: the receive parks on the pool's wait list (the kernel says so with
 * -ENOBUFS). Each release resumes the oldest parked receive; if another receive takes that
 * buffer first, the resumed one parks again and waits for the next release. Nothing is lost:
 * a parked receive's bytes stay in the socket.
 */
#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "loop/op_internal.h"

enum { POOL_MAX_COUNT = 32768 };
#define POOL_MAX_SIZE ((size_t)1 << 30)

struct nk_op_bufpool {
    nk_loop *loop;
    char *mem;           /* count buffers of size bytes (mem_bytes mapped) */
    size_t mem_bytes;
    size_t size;
    unsigned count;
    unsigned out;        /* handed to callers, not yet released */
    size_t started;      /* pooled receives started on this pool */
    nk_op *wait_head, *wait_tail; /* parked receives (linked through op->link) */
    unsigned char *is_out;        /* by bid: 1 while the buffer is the caller's */
    /* emulated */
    unsigned *free_ids;
    unsigned nfree;
    /* native */
    struct io_uring *ring;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    unsigned entries; /* the ring's size: count rounded up to a power of two */
    unsigned bgid;
};

static void ring_add(nk_op_bufpool *p, unsigned bid, int offset)
{
    io_uring_buf_ring_add(p->br, p->mem + (size_t)bid * p->size, (unsigned)p->size,
                          (unsigned short)bid, io_uring_buf_ring_mask(p->entries), offset);
}

static int ring_open(nk_op_bufpool *p)
{
    int rc = nk__uring_ops_open(p->loop);
    if (rc < 0)
        return rc;
    p->ring = nk__uring_ops_ring_of(p->loop, &p->bgid);
    p->entries = 1;
    while (p->entries < p->count)
        p->entries *= 2;
    p->br_bytes = p->entries * sizeof(struct io_uring_buf);
    /* The kernel wants the ring page-aligned: a mapping of its own. */
    void *m = mmap(NULL, p->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -ENOMEM;
    p->br = m;
    struct io_uring_buf_reg reg = {0};
    reg.ring_addr = (uint64_t)(uintptr_t)p->br;
    reg.ring_entries = p->entries;
    reg.bgid = (uint16_t)p->bgid;
    rc = io_uring_register_buf_ring(p->ring, &reg, 0);
    if (rc < 0) {
        munmap(p->br, p->br_bytes);
        p->br = NULL;
        return rc;
    }
    io_uring_buf_ring_init(p->br);
    for (unsigned i = 0; i < p->count; i++)
        ring_add(p, i, (int)i);
    io_uring_buf_ring_advance(p->br, (int)p->count);
    return 0;
}

int nk_op_bufpool_new(nk_loop *loop, unsigned count, size_t size, nk_op_bufpool **out)
{
    if (loop == NULL || out == NULL || count == 0 || count > POOL_MAX_COUNT || size == 0 ||
        size > POOL_MAX_SIZE)
        return -EINVAL;
    nk_op_bufpool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->loop = loop;
    p->size = size;
    p->count = count;
    p->mem_bytes = (size_t)count * size;
    void *m = mmap(NULL, p->mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p->mem = m == MAP_FAILED ? NULL : m;
    p->is_out = calloc(count, 1);
    int rc = p->mem && p->is_out ? 0 : -ENOMEM;
    if (rc == 0 && loop->be == &nk__backend_uring) {
        rc = ring_open(p);
    } else if (rc == 0) {
        p->free_ids = malloc(count * sizeof *p->free_ids);
        if (p->free_ids == NULL)
            rc = -ENOMEM;
        for (unsigned i = 0; rc == 0 && i < count; i++)
            p->free_ids[i] = count - 1 - i; /* bid 0 on top */
        p->nfree = count;
    }
    if (rc < 0) {
        free(p->free_ids);
        free(p->is_out);
        if (p->mem)
            munmap(p->mem, p->mem_bytes);
        free(p);
        return rc;
    }
    loop->ops.pools++;
    *out = p;
    return 0;
}

int nk_op_bufpool_free(nk_op_bufpool *p)
{
    if (p == NULL)
        return 0;
    if (p->started > 0 || p->out > 0)
        return -EBUSY;
    if (p->br != NULL) {
        (void)io_uring_unregister_buf_ring(p->ring, (int)p->bgid);
        munmap(p->br, p->br_bytes);
    }
    p->loop->ops.pools--;
    free(p->free_ids);
    free(p->is_out);
    munmap(p->mem, p->mem_bytes);
    free(p);
    return 0;
}

unsigned nk_op_bufpool_avail(const nk_op_bufpool *p)
{
    return p->count - p->out;
}

int nk__pool_avail_now(const nk_op_bufpool *p)
{
    return p->out < p->count;
}

unsigned nk__pool_group(const nk_op_bufpool *p)
{
    return p->bgid;
}

void *nk__pool_took(nk_op_bufpool *p, unsigned bid)
{
    p->is_out[bid] = 1;
    p->out++;
    return p->mem + (size_t)bid * p->size;
}

void nk__pool_put(nk_op_bufpool *p, unsigned bid)
{
    if (p->br != NULL) {
        ring_add(p, bid, 0);
        io_uring_buf_ring_advance(p->br, 1);
    } else {
        p->free_ids[p->nfree++] = bid;
    }
}

int nk_op_bufpool_release(nk_op_bufpool *p, void *buf)
{
    uintptr_t at = (uintptr_t)buf, base = (uintptr_t)p->mem;
    if (buf == NULL || at < base || (at - base) % p->size != 0 ||
        (at - base) / p->size >= p->count)
        return -EINVAL;
    unsigned bid = (unsigned)((at - base) / p->size);
    if (!p->is_out[bid])
        return -EINVAL; /* released twice, or never taken */
    p->is_out[bid] = 0;
    p->out--;
    nk__pool_put(p, bid);
    nk_op *op = p->wait_head;
    if (op != NULL) {
        p->wait_head = op->link;
        if (p->wait_head == NULL)
            p->wait_tail = NULL;
        op->link = NULL;
        op->flags &= ~NK__OP_PARKED;
        nk__op_resume(p->loop, op);
    }
    return 0;
}

void nk__pool_park(nk_op *op)
{
    nk_op_bufpool *p = op->out;
    op->flags |= NK__OP_PARKED;
    op->link = NULL;
    if (p->wait_tail)
        p->wait_tail->link = op;
    else
        p->wait_head = op;
    p->wait_tail = op;
}

void nk__pool_ended(nk_op *op)
{
    nk_op_bufpool *p = op->out;
    p->started--;
    if (!(op->flags & NK__OP_PARKED))
        return;
    op->flags &= ~NK__OP_PARKED;
    nk_op *prev = NULL;
    for (nk_op *q = p->wait_head; q; prev = q, q = q->link) {
        if (q != op)
            continue;
        if (prev)
            prev->link = op->link;
        else
            p->wait_head = op->link;
        if (p->wait_tail == op)
            p->wait_tail = prev;
        break;
    }
    op->link = NULL;
}

void nk__pool_run(nk_loop *loop, nk_op *op)
{
    nk_op_bufpool *p = op->out;
    if (p->nfree == 0) {
        nk__pool_park(op);
        nk__op_resume(loop, op); /* parked: the watch leaves it out */
        return;
    }
    unsigned bid = p->free_ids[--p->nfree];
    char *b = p->mem + (size_t)bid * p->size;
    ssize_t n;
    do
        n = recv(op->fd, b, p->size, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        p->free_ids[p->nfree++] = bid;
        return;
    }
    if (n <= 0) {
        int err = n < 0 ? -errno : 0;
        p->free_ids[p->nfree++] = bid;
        nk__op_finish_now(loop, op, err);
        return;
    }
    op->buf = nk__pool_took(p, bid);
    nk__op_finish_now(loop, op, n);
}

int nk_op_recv_pool(nk_loop *loop, nk_op *op, int fd, nk_op_bufpool *pool)
{
    if (pool == NULL || pool->loop != loop)
        return -EINVAL;
    if (op->state != NK__OP_IDLE)
        return -EBUSY;
    op->out = pool;
    op->buf = NULL;
    op->len = pool->size;
    op->flags = 0;
    int rc = nk__op_start_recv_pool(loop, op, fd);
    if (rc == 0)
        pool->started++;
    return rc;
}
