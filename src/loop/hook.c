/* Prepare and check watchers: callbacks right before the loop waits and right after its I/O
 * callbacks.
 *
 * Both kinds are a doubly linked list of nk_hook_node in start order, so start and stop are
 * O(1). A pass walks the list with a cursor that a stop moves on, so any watcher may be stopped
 * (and freed) from any callback. Each start takes the next number of loop->hook_seq: a pass
 * runs the watchers numbered up to the mark taken when it began, so one started (or restarted)
 * during the pass, which goes to the tail with a higher number, waits for the next iteration.
 * The loop calls a pass only when the list is not empty: nothing is added to an iteration of a
 * program that uses neither kind.
 */
#include <stddef.h>

#include "loop/loop_internal.h"

static void node_init(nk_hook_node *n)
{
    n->prev = n->next = NULL;
    n->seq = 0;
}

static void list_start(nk_loop *loop, nk__hooklist *list, nk_hook_node *n)
{
    if (n->seq != 0)
        return;
    n->seq = ++loop->hook_seq;
    n->next = NULL;
    n->prev = list->tail;
    if (list->tail)
        list->tail->next = n;
    else
        list->head = n;
    list->tail = n;
}

static void list_stop(nk__hooklist *list, nk_hook_node *n)
{
    if (n->seq == 0)
        return;
    if (list->cursor == n)
        list->cursor = n->next;
    if (n->prev)
        n->prev->next = n->next;
    else
        list->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        list->tail = n->prev;
    node_init(n);
}

/* call() turns the node back into its watcher and calls it; nothing of n is touched after. */
static void list_run(nk_loop *loop, nk__hooklist *list, void (*call)(nk_loop *, nk_hook_node *))
{
    uint64_t mark = loop->hook_seq;
    nk_hook_node *n = list->head;
    while (n != NULL && n->seq <= mark) {
        list->cursor = n->next;
        call(loop, n);
        n = list->cursor;
    }
    list->cursor = NULL;
}

/* The watcher whose member .node is at ptr. */
#define NODE_OWNER(ptr, type) ((type *)(void *)((char *)(ptr) - offsetof(type, node)))

/* ---- prepare --------------------------------------------------------------------------- */

void nk_prepare_init(nk_prepare *p, nk_prepare_cb cb, void *data)
{
    p->data = data;
    p->cb = cb;
    node_init(&p->node);
}

void nk_prepare_start(nk_loop *loop, nk_prepare *p)
{
    list_start(loop, &loop->prepares, &p->node);
}

void nk_prepare_stop(nk_loop *loop, nk_prepare *p)
{
    list_stop(&loop->prepares, &p->node);
}

static void prepare_call(nk_loop *loop, nk_hook_node *n)
{
    nk_prepare *p = NODE_OWNER(n, nk_prepare);
    p->cb(loop, p);
}

void nk__prepares_run(nk_loop *loop)
{
    list_run(loop, &loop->prepares, prepare_call);
}

/* ---- check ----------------------------------------------------------------------------- */

void nk_check_init(nk_check *c, nk_check_cb cb, void *data)
{
    c->data = data;
    c->cb = cb;
    node_init(&c->node);
}

void nk_check_start(nk_loop *loop, nk_check *c)
{
    list_start(loop, &loop->checks, &c->node);
}

void nk_check_stop(nk_loop *loop, nk_check *c)
{
    list_stop(&loop->checks, &c->node);
}

static void check_call(nk_loop *loop, nk_hook_node *n)
{
    nk_check *c = NODE_OWNER(n, nk_check);
    c->cb(loop, c);
}

void nk__checks_run(nk_loop *loop)
{
    list_run(loop, &loop->checks, check_call);
}
