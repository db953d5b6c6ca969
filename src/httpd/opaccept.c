/* Accepting through completion operations, on the uring backend (netkit/op.h).
 *
 * Each listener keeps up to NK__ACCEPTS one-shot accepts (nk_op_accept_once) in flight. They
 * are IORING_OP_ACCEPT requests, written into the submission queue with everything else of the
 * turn, and the kernel fills in the client's address, so a connection costs no accept4 and no
 * getpeername of its own. The callback starts the connection, whose first receive (opconn.c)
 * then goes to the kernel in the next io_uring_enter together with the accept that replaces
 * this one: accept and first read chain without a readiness wake-up in between.
 *
 * A multishot accept would be cheaper still, but it cannot be paused: at max_conns it would
 * keep taking clients the engine could only close. One-shot accepts can: each one started
 * holds a connection slot (srv->accepts_started counts in below_limits, server.c), so at most
 * as many are started as there is room for, and the clients beyond wait in the kernel's
 * backlog, as they do on readiness. Room that frees up (a connection closes) tops the
 * listeners up again (nk__httpd_conn_closed, update_accepting).
 *
 * Stopping (shutdown, back-off, a failed listener, nk_httpd_free): an accept the kernel holds
 * answers -ECANCELED later; one it completed meanwhile is closed by the loop. Until that last
 * callback the accept keeps its slot and its listener record, which nk_httpd_free waits for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd/internal.h"

/* Enough to keep accepting while the callbacks of a burst run; few enough that the slots
 * they hold are a small part of any sensible max_conns. */
#define NK__ACCEPTS 8
/* nk_httpd_free waits at most this many loop turns for cancelled accepts. */
#define DRAIN_TURNS 100

typedef struct {
    nk_op op;     /* first: the callback finds its record from the op */
    nk_addr peer; /* the kernel writes the client's address here */
} one_accept;

struct nk__acc {
    nk__listener *l;
    one_accept a[NK__ACCEPTS];
};

/* The listener record outlived its engine (nk__lops_free_listeners): free it with its last
 * accept. */
static void orphan_done(nk__listener *l)
{
    if (l->accepting > 0)
        return;
    free(l->accepts);
    free(l);
}

static void on_accepted(nk_loop *loop, nk_op *op, ssize_t result)
{
    (void)loop;
    const struct nk__acc *b = op->data;
    nk__listener *l = b->l;
    nk_httpd *srv = l->srv;
    l->accepting--;
    if (srv == NULL) {
        orphan_done(l);
        return;
    }
    srv->accepts_started--;
    /* Unlike on readiness, no request is read here (the first receive is an operation too),
     * so an accept never follows answers within a callback: input_batch stays as it is. */
    one_accept *a = (one_accept *)(void *)op;
    if (result >= 0)
        nk__accept_took(srv, l, (int)result, &a->peer);
    else if (result != -ECANCELED)
        nk__accept_failed(srv, l, (int)result);
    if (srv->shutting_down || srv->accept_backoff || l->failed)
        return;
    /* The usual case: this accept again at once, its slot handed on to the next client. */
    if (result >= 0 && nk__accept_room(srv) &&
        nk_op_accept_once(srv->loop, op, l->fd, &a->peer.u.ss, &a->peer.len) == 0) {
        l->accepting++;
        srv->accepts_started++;
        return;
    }
    nk__accept_update(srv); /* at the limits (paused), or after an error: as they allow */
}

static int block_new(nk__listener *l)
{
    struct nk__acc *b = malloc(sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    b->l = l;
    for (int i = 0; i < NK__ACCEPTS; i++)
        nk_op_init(&b->a[i].op, on_accepted, b);
    l->accepts = b;
    return 0;
}

int nk__lops_fill(nk_httpd *srv, nk__listener *l)
{
    if (l->failed || l->accepting >= NK__ACCEPTS)
        return 0;
    if (l->accepts == NULL) {
        int err = block_new(l);
        if (err < 0)
            return err;
    }
    for (int i = 0; i < NK__ACCEPTS; i++) {
        one_accept *a = &l->accepts->a[i];
        if (nk_op_active(&a->op))
            continue; /* in flight, or a cancelled one not yet back */
        if (!nk__accept_room(srv))
            break;
        int err = nk_op_accept_once(srv->loop, &a->op, l->fd, &a->peer.u.ss, &a->peer.len);
        if (err < 0 && l->accepting == 0) {
            free(l->accepts); /* nothing started: the record goes (listen_on reports err) */
            l->accepts = NULL;
            return err;
        }
        if (err < 0)
            return 0; /* short of the full number; topped up at the next change */
        l->accepting++;
        srv->accepts_started++;
    }
    return 0;
}

void nk__lops_stop(nk_httpd *srv, nk__listener *l)
{
    if (l->accepts == NULL)
        return;
    for (int i = 0; i < NK__ACCEPTS; i++) {
        nk_op *op = &l->accepts->a[i].op;
        /* -EINPROGRESS: the kernel holds it; its -ECANCELED callback gives the slot back. A
         * cancelled one not yet back answers the same, so none is counted twice. */
        if (nk_op_active(op) && nk_op_stop(srv->loop, op) == 0) {
            l->accepting--;
            srv->accepts_started--;
        }
    }
}

void nk__lops_free_listeners(nk_httpd *srv)
{
    for (int turn = 0; turn < DRAIN_TURNS; turn++) {
        unsigned pending = 0;
        for (size_t i = 0; i < srv->nlisteners; i++)
            pending += srv->listeners[i]->accepting;
        if (pending == 0)
            break;
        nk_loop_run(srv->loop, NK_RUN_ONCE);
    }
    for (size_t i = 0; i < srv->nlisteners; i++) {
        nk__listener *l = srv->listeners[i];
        l->srv = NULL;
        orphan_done(l); /* now, or at its last accept's callback */
    }
    free(srv->listeners);
    srv->listeners = NULL;
    srv->nlisteners = 0;
}
