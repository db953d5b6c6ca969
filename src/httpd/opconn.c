/* A plain HTTP/1.1 connection on completion operations (netkit/op.h), on the uring backend.
 *
 * The engine above (conn.c, respond.c) is written for non-blocking calls: it asks the
 * transport for bytes or hands it bytes, and hears "-EAGAIN" when the socket cannot do it now.
 * Here that transport is made of operations, so that the loop's one io_uring_enter per turn
 * carries every receive and send and no read or write is a system call of its own:
 * - a receive starts an nk_op_recv_pool on the server's receive buffer pool and answers
 *   -EAGAIN; the kernel takes a buffer only when bytes arrive, so a connection waiting for a
 *   request holds none. Its completion runs the connection as if the socket had become
 *   readable, and the same call then hands the bytes over (copied into the request buffer,
 *   which the engine moves and gives back to its pool between requests: the kernel must not
 *   write into it). The pool buffer goes back before the completion's callback returns: bytes
 *   the engine did not take then (a request buffer full, a connection not reading) move to a
 *   small allocation of their own, so that no connection can keep the pool empty;
 * - a send starts an nk_op_send (or nk_op_sendfile) of exactly the bytes asked for and answers
 *   -EAGAIN; its completion (the whole length, op.h) runs the connection as if the socket had
 *   become writable, and the same call, made again for the same bytes, returns that length.
 *   The bytes stay where the engine keeps its pending output (the exchange's out buffer, the
 *   file), untouched while a response is in progress, since answers leave in order.
 * Head and in-memory body are one buffer by then (respond.c copies what a send did not take),
 * so a small response is one send request. The send's operation lives in a record of its own
 * (nk__opcw), taken from the server's spares for each send and given back once its result is
 * taken: an idle keep-alive connection holds only its receive side.
 *
 * A file body is one sendfile operation for all of it (NK__OPC_SENDFILE_STEP), which writes
 * until the socket is full and waits for it to drain, as the readiness path does. Its callback
 * comes only at the end, so the send timeout (renewed by progress) cannot hear of progress
 * from completions: while it runs, a ticker every eighth of --send-timeout looks at how far it
 * got (nk_op_progress) and renews the deadline when bytes moved. A client that takes bytes at
 * least every 7/8 of the timeout is never cut; one that stops is cut between 1 and 1 1/8 of
 * the timeout after its last byte (readiness: exactly 1).
 *
 * Closing: an operation the kernel holds is cancelled; its -ECANCELED completion comes later,
 * so the record outlives the connection (an orphan on srv->opc_orphans) until both
 * operations are over. nk_httpd_free waits for the orphans so that the loop can be freed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd/internal.h"

/* The server's receive pool (shared by its plain connections on operations): a request head
 * fits in one buffer, a body comes in pieces. A buffer is out only during a completion's
 * callback, so the pool needs about as many buffers as completions one loop turn brings (the
 * kernel takes them in ring order, and a short request touches one page of each: 128 buffers
 * cost 512 KiB of memory under small requests, 2 MiB at most). With more completions at once,
 * the receives short of a buffer wait a turn (op.h). */
#define OPC_RBUF 16384
#define OPC_POOL_COUNT 128
/* Send records kept for reuse: as many as sends run at once in an ordinary burst. Past that a
 * finished send's record goes back to malloc, so a burst does not stay resident. */
#define OPC_SPARE_SENDS 64

/* A send under way, or its result not yet handed over. Only a connection that is answering
 * needs one, so it is allocated per send and freed once its result is taken: an idle
 * keep-alive connection holds only the receive side (nk__opc), which is what a server with
 * many of them pays for each. */
typedef struct nk__opcw nk__opcw;
struct nk__opcw {
    nk__opc *opc;
    nk__opcw *next_spare;   /* on srv->opc_spare_sends */
    nk_op wop;
    ssize_t wres;
    const void *wbuf;       /* what the send sends: asked again, it is answered */
    size_t wlen;
    int wfd;                /* a file's send or read: its descriptor (-1: memory) and offset */
    unsigned char wdone;    /* wres holds the send's result */
    unsigned char wread;    /* a file read into piece, not a send */
    off_t woff;
    char *piece;            /* a read's memory, this record's while the kernel may write it */
    size_t piece_cap;
    size_t wseen;           /* the file send's progress at the ticker's last look */
    nk_timer wtick;         /* runs while a file send does: renews the send deadline */
};

struct nk__opc {
    nk__conn *conn;         /* NULL once the connection is gone (an orphan) */
    nk_httpd *srv;
    nk__opc *next_orphan;
    nk__opcw *w;            /* the send side, while there is one */
    nk_op rop;
    char *rbuf;             /* received bytes not yet handed over: a pool buffer, or a copy */
    ssize_t rres;           /* a receive's result not yet handed over (bytes, 0, -errno) */
    size_t roff;            /* bytes of it already handed over */
    unsigned char rdone;    /* rres holds a result */
    unsigned char rpooled;  /* rbuf is the pool's (else malloc'd) */
    unsigned char in_recv;  /* inside on_recv: closing leaves the record to it */
};

int nk__opc_wanted(const nk_httpd *srv, int tls, int proxy)
{
    return srv->ops_engine && !tls && !proxy;
}

static void on_recv(nk_loop *loop, nk_op *op, ssize_t result);
static void on_send(nk_loop *loop, nk_op *op, ssize_t result);
static void on_send_tick(nk_loop *loop, nk_timer *t);

int nk__opc_new(nk__conn *c)
{
    if (!c->srv->opc_pool) {
        int rc = nk_op_bufpool_new(c->srv->loop, OPC_POOL_COUNT, OPC_RBUF, &c->srv->opc_pool);
        if (rc < 0)
            return rc;
    }
    nk__opc *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    o->conn = c;
    o->srv = c->srv;
    nk_op_init(&o->rop, on_recv, o);
    c->opc = o;
    return 0;
}

static void orphan_drop(nk__opc *o)
{
    if (!o->srv) { /* outlived its server (nk__opc_drain) */
        free(o);
        return;
    }
    nk__opc **pp = &o->srv->opc_orphans;
    while (*pp && *pp != o)
        pp = &(*pp)->next_orphan;
    if (*pp)
        *pp = o->next_orphan;
    free(o);
}

/* An operation's final callback on a record whose connection is gone. */
static void orphan_done(nk__opc *o)
{
    if (!nk_op_active(&o->rop) && !o->w)
        orphan_drop(o);
}

/* The send side goes: its operation is over (or never ran) and its timer stopped. It waits
 * for the next send of any connection on the server's spares, up to OPC_SPARE_SENDS: a
 * malloc and free per response cost 4% of a small keep-alive request's instructions. */
static void w_free(nk__opc *o)
{
    nk__opcw *w = o->w;
    o->w = NULL;
    free(w->piece); /* a read's buffer nobody took back: its connection is gone */
    w->piece = NULL;
    nk_httpd *srv = o->srv;
    if (!srv || srv->opc_nspare >= OPC_SPARE_SENDS) {
        free(w);
        return;
    }
    w->next_spare = srv->opc_spare_sends;
    srv->opc_spare_sends = w;
    srv->opc_nspare++;
}

/* The send side for a new send; the previous one's result must have been taken. */
static nk__opcw *w_new(nk__opc *o)
{
    nk__opcw *w = o->srv->opc_spare_sends;
    if (w) {
        o->srv->opc_spare_sends = w->next_spare;
        o->srv->opc_nspare--;
    } else if (!(w = malloc(sizeof *w))) {
        return NULL;
    }
    w->opc = o;
    w->wres = 0;
    w->wbuf = NULL;
    w->wlen = 0;
    w->wfd = -1;
    w->wdone = 0;
    w->wread = 0;
    w->woff = 0;
    w->piece = NULL;
    w->piece_cap = 0;
    w->wseen = 0;
    nk_op_init(&w->wop, on_send, w);
    nk_timer_init(&w->wtick, on_send_tick, w);
    o->w = w;
    return w;
}

/* The received bytes are handed over, or their connection is gone: the buffer goes back. */
static void rbuf_drop(nk__opc *o)
{
    if (o->rbuf && o->rpooled)
        (void)nk_op_bufpool_release(o->srv->opc_pool, o->rbuf);
    else
        free(o->rbuf);
    o->rbuf = NULL;
    o->rpooled = 0;
    o->rdone = 0;
}

/* Bytes the engine left in a pool buffer move out of the pool (if that allocation fails they
 * stay: the pool is short one buffer until the connection reads them). */
static void rbuf_keep_rest(nk__opc *o)
{
    size_t rest = (size_t)o->rres - o->roff;
    char *copy = malloc(rest);
    if (!copy)
        return;
    memcpy(copy, o->rbuf + o->roff, rest);
    (void)nk_op_bufpool_release(o->srv->opc_pool, o->rbuf);
    o->rbuf = copy;
    o->rpooled = 0;
    o->rres = (ssize_t)rest;
    o->roff = 0;
}

/* The connection is gone: the record goes now, or, while the kernel holds one of its
 * operations, when that operation's last callback comes (an orphan). */
static void opc_retire(nk__opc *o)
{
    rbuf_drop(o);
    if (o->w && !nk_op_active(&o->w->wop))
        w_free(o); /* a result nobody will take */
    if (!nk_op_active(&o->rop) && !o->w) {
        free(o);
        return;
    }
    o->next_orphan = o->srv->opc_orphans;
    o->srv->opc_orphans = o;
}

static void on_recv(nk_loop *loop, nk_op *op, ssize_t result)
{
    nk__opc *o = op->data;
    if (!o->conn) {
        if (result > 0 && o->srv) /* not expected: a stopped receive ends with -ECANCELED */
            (void)nk_op_bufpool_release(o->srv->opc_pool, nk_op_pool_buf(op));
        orphan_done(o);
        return;
    }
    o->rres = result;
    o->roff = 0;
    o->rdone = 1;
    if (result > 0) {
        o->rbuf = nk_op_pool_buf(op);
        o->rpooled = 1;
    }
    o->in_recv = 1;
    nk__conn_run(o->conn, NK_READ); /* may close the connection: o stays until below */
    o->in_recv = 0;
    if (!o->conn) {
        opc_retire(o);
        return;
    }
    if (o->rpooled && o->rdone)
        rbuf_keep_rest(o);
    (void)loop;
}

static void on_send(nk_loop *loop, nk_op *op, ssize_t result)
{
    nk__opcw *w = op->data;
    nk__opc *o = w->opc;
    nk_timer_stop(loop, &w->wtick);
    if (!o->conn) {
        w_free(o);
        orphan_done(o);
        return;
    }
    w->wres = result;
    w->wdone = 1;
    nk__conn_run(o->conn, NK_WRITE);
}

/* The file send has moved bytes since the last look: the connection made progress, which
 * renews its send deadline as a completed write would (the flush finds the send still under
 * way and writes nothing). The connection may be closed by it: o is not touched after. */
static void on_send_tick(nk_loop *loop, nk_timer *t)
{
    nk__opcw *w = t->data;
    nk__opc *o = w->opc;
    if (!o->conn || !nk_op_active(&w->wop)) {
        nk_timer_stop(loop, t);
        return;
    }
    size_t moved = nk_op_progress(&w->wop);
    if (moved == w->wseen)
        return;
    w->wseen = moved;
    nk__conn_resume_output(o->conn);
}

/* Start the receive the connection wants, unless one is under way or its result waits. */
int nk__opc_arm_read(nk__conn *c)
{
    nk__opc *o = c->opc;
    if (o->rdone || nk_op_active(&o->rop))
        return 0;
    return nk_op_recv_pool(c->srv->loop, &o->rop, c->io.fd, c->srv->opc_pool);
}

ssize_t nk__opc_recv(nk__conn *c, void *buf, size_t len)
{
    nk__opc *o = c->opc;
    if (!o->rdone) {
        int rc = nk__opc_arm_read(c);
        return rc < 0 ? rc : -EAGAIN;
    }
    if (o->rres <= 0) {
        o->rdone = 0;
        return o->rres;
    }
    size_t left = (size_t)o->rres - o->roff;
    size_t n = left < len ? left : len;
    memcpy(buf, o->rbuf + o->roff, n);
    o->roff += n;
    if (o->roff == (size_t)o->rres)
        rbuf_drop(o);
    return (ssize_t)n;
}

size_t nk__opc_pending(const nk__conn *c)
{
    const nk__opc *o = c->opc;
    return o->rdone && o->rres > 0 ? (size_t)o->rres - o->roff : 0;
}

int nk__opc_sending(const nk__conn *c)
{
    return c->opc->w != NULL;
}

/* The result of the send of (buf, len) when it is over, else -EAGAIN. A completed send answers
 * only the call that asks for the same bytes; another caller's bytes wait their turn. Once
 * answered, the send side goes. */
static ssize_t send_result(nk__opc *o, const void *buf, int fd, off_t off, size_t len)
{
    nk__opcw *w = o->w;
    if (!w->wdone)
        return -EAGAIN;
    if (w->wread || buf != w->wbuf || fd != w->wfd || off != w->woff || len < w->wlen)
        return -EIO; /* the pending output changed under a send in progress: a bug */
    ssize_t n = w->wres;
    w_free(o);
    return n;
}

ssize_t nk__opc_send(nk__conn *c, const void *buf, size_t len)
{
    nk__opc *o = c->opc;
    if (o->w)
        return send_result(o, buf, -1, 0, len);
    nk__opcw *w = w_new(o);
    if (!w)
        return -ENOMEM;
    int rc = nk_op_send(c->srv->loop, &w->wop, c->io.fd, buf, len);
    if (rc < 0) {
        w_free(o);
        return rc;
    }
    w->wbuf = buf;
    w->wlen = len;
    w->wfd = -1;
    return -EAGAIN;
}

ssize_t nk__opc_sendfile(nk__conn *c, int fd, off_t *off, size_t len)
{
    nk__opc *o = c->opc;
    if (o->w) {
        ssize_t n = send_result(o, NULL, fd, *off, len);
        if (n > 0)
            *off += n;
        return n;
    }
    nk__opcw *w = w_new(o);
    if (!w)
        return -ENOMEM;
    nk_loop *loop = c->srv->loop;
    int rc = nk_op_sendfile(loop, &w->wop, c->io.fd, fd, (int64_t)*off, len);
    if (rc < 0) {
        w_free(o);
        return rc;
    }
    w->wlen = len;
    w->wfd = fd;
    w->woff = *off;
    /* Not all written at once (the socket filled up): watch its progress until it is. */
    unsigned tmo = c->srv->cfg.send_timeout_ms;
    w->wseen = nk_op_progress(&w->wop);
    if (tmo && w->wseen < len) {
        uint64_t every = tmo >= 8 ? tmo / 8 : 1;
        nk_timer_start(loop, &w->wtick, every, every);
    }
    return -EAGAIN;
}

/* Read len bytes of the file fd at off into `into` (empty, with room for len reserved), as an
 * operation: -EAGAIN while it runs, then, asked again for the same piece, the bytes read (0 at
 * the end of the file) or -errno, with into's write end moved past them. On uring the read is
 * an IORING_OP_READ in the turn's one io_uring_enter, so a piece of a copied body costs no
 * pread of its own and the loop never waits for the disk.
 * While the kernel may write into the memory, it is the send record's, not into's: a
 * connection closed meanwhile frees its exchange at once, and the memory then goes with the
 * record, after the read's last completion. */
ssize_t nk__opc_pread(nk__conn *c, int fd, off_t off, size_t len, nk_buf *into)
{
    nk__opc *o = c->opc;
    nk__opcw *w = o->w;
    if (w) {
        if (!w->wdone)
            return -EAGAIN;
        if (!w->wread || fd != w->wfd || off != w->woff || len != w->wlen)
            return -EIO; /* another piece asked for under a read in progress: a bug */
        ssize_t n = w->wres;
        into->data = w->piece;
        into->cap = w->piece_cap;
        into->rpos = 0;
        w->piece = NULL;
        w_free(o);
        /* Kernels before 5.19 answer a read of an O_NONBLOCK file (the engine opens its
         * files so) whose pages are not cached with -EAGAIN instead of waiting in a worker:
         * that piece is read here, as the readiness path reads every piece. */
        if (n == -EAGAIN) {
            do
                n = pread(fd, into->data, len, off);
            while (n < 0 && errno == EINTR);
            if (n < 0)
                n = errno == EAGAIN ? -EIO : -errno; /* -EAGAIN would mean "still running" */
        }
        into->wpos = n > 0 ? (size_t)n : 0;
        return n;
    }
    if (nk_buf_len(into) || into->cap < len)
        return -EINVAL;
    if (!(w = w_new(o)))
        return -ENOMEM;
    int rc = nk_op_pread(c->srv->loop, &w->wop, fd, into->data, len, (int64_t)off);
    if (rc < 0) {
        w_free(o);
        return rc;
    }
    w->wread = 1;
    w->wfd = fd;
    w->woff = off;
    w->wlen = len;
    w->piece = into->data;
    w->piece_cap = into->cap;
    into->data = NULL;
    into->cap = into->rpos = into->wpos = 0;
    return -EAGAIN;
}

/* The connection is closing (its descriptor next): stop both operations. A send the kernel
 * still holds must not carry bytes of memory that goes back to the pools: the socket is shut
 * first, so that whatever it still tries fails. */
void nk__opc_close(nk__conn *c)
{
    nk__opc *o = c->opc;
    if (!o)
        return;
    c->opc = NULL;
    nk_loop *loop = c->srv->loop;
    nk__opcw *w = o->w;
    if (w) {
        nk_timer_stop(loop, &w->wtick);
        if (nk_op_active(&w->wop) && w->wop.native)
            shutdown(c->io.fd, SHUT_RDWR);
        if (nk_op_stop(loop, &w->wop) == 0)
            w_free(o); /* else its -ECANCELED callback frees it */
    }
    (void)nk_op_stop(loop, &o->rop);
    o->conn = NULL;
    if (!o->in_recv) /* else on_recv retires it when the engine returns */
        opc_retire(o);
}

/* The connection leaves operations for readiness (HTTP/2 over it): nothing may be under way.
 * 0, or -EBUSY when an operation still is (the connection is then closed). */
int nk__opc_leave(nk__conn *c)
{
    nk__opc *o = c->opc;
    if (!o)
        return 0;
    if (nk_op_active(&o->rop) || o->w || o->rdone)
        return -EBUSY;
    c->opc = NULL;
    o->conn = NULL;
    if (!o->in_recv)
        free(o);
    return 0;
}

/* nk_httpd_free: let the kernel give back what it holds for closed connections, so that the
 * loop's operations are over and the loop can be freed. Bounded: a cancellation completes at
 * once, and the loop turns only for as long as orphans remain, at most 100 turns. */
void nk__opc_drain(nk_httpd *srv)
{
    for (int i = 0; i < 100 && srv->opc_orphans; i++)
        nk_loop_run(srv->loop, NK_RUN_ONCE);
    if (!srv->opc_orphans && nk_op_bufpool_free(srv->opc_pool) == 0)
        srv->opc_pool = NULL;
    while (srv->opc_spare_sends) {
        nk__opcw *w = srv->opc_spare_sends;
        srv->opc_spare_sends = w->next_spare;
        free(w);
    }
    srv->opc_nspare = 0;
    while (srv->opc_orphans) {
        /* Left to the kernel: the record must outlive srv, so it is left allocated (and the
         * pool with it, which the kernel may still fill). */
        nk__opc *o = srv->opc_orphans;
        srv->opc_orphans = o->next_orphan;
        o->srv = NULL;
        o->next_orphan = NULL;
    }
}
