/* Timers: a binary min-heap of watcher pointers ordered by (due, seq), each watcher remembering
 * its slot so that stop and restart are O(log n) without a search. seq is the start order, so
 * equal deadlines fire first-started first. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "loop/loop_internal.h"

static int timer_before(const nk_timer *a, const nk_timer *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_place(nk_loop *loop, size_t i, nk_timer *t)
{
    loop->heap[i] = t;
    t->slot = i;
}

static void heap_up(nk_loop *loop, size_t i)
{
    nk_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, loop->heap[parent]))
            break;
        heap_place(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_place(loop, i, t);
}

static void heap_down(nk_loop *loop, size_t i)
{
    nk_timer *t = loop->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->nheap)
            break;
        if (child + 1 < loop->nheap && timer_before(loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!timer_before(loop->heap[child], t))
            break;
        heap_place(loop, i, loop->heap[child]);
        i = child;
    }
    heap_place(loop, i, t);
}

static void heap_remove(nk_loop *loop, nk_timer *t)
{
    size_t i = t->slot;
    t->slot = SIZE_MAX;
    loop->nheap--;
    nk__unref_stopped(loop, t->flags);
    if (i == loop->nheap)
        return;
    nk_timer *moved = loop->heap[loop->nheap];
    heap_place(loop, i, moved);
    /* The moved entry may belong above or below the hole; one of these is a no-op. */
    heap_up(loop, i);
    heap_down(loop, moved->slot);
}

/* Insert t (inactive) with its due already set; never fails (room was reserved). */
static void heap_insert(nk_loop *loop, nk_timer *t)
{
    t->seq = ++loop->timer_seq;
    nk__unref_started(loop, t->flags);
    loop->heap[loop->nheap] = t;
    t->slot = loop->nheap++;
    heap_up(loop, t->slot);
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

void nk_timer_init(nk_timer *t, nk_timer_cb cb, void *data)
{
    t->data = data;
    t->cb = cb;
    t->due = 0;
    t->repeat = 0;
    t->slot = SIZE_MAX;
    t->seq = 0;
    t->flags = 0;
}

int nk_timer_start(nk_loop *loop, nk_timer *t, uint64_t timeout_ms, uint64_t repeat_ms)
{
    if (nk_timer_active(t))
        heap_remove(loop, t);
    if (loop->nheap == loop->capheap) {
        size_t ncap = loop->capheap ? loop->capheap * 2 : 16;
        /* An array of pointers, so sizeof *nh is meant (the check expects a struct there).
         * NOLINTNEXTLINE(bugprone-sizeof-expression) */
        nk_timer **nh = realloc(loop->heap, ncap * sizeof *nh);
        if (nh == NULL)
            return -ENOMEM;
        loop->heap = nh;
        loop->capheap = ncap;
    }
    t->due = add_sat(loop->now, timeout_ms);
    t->repeat = repeat_ms;
    heap_insert(loop, t);
    return 0;
}

void nk_timer_stop(nk_loop *loop, nk_timer *t)
{
    if (nk_timer_active(t))
        heap_remove(loop, t);
}

int nk__timer_timeout(const nk_loop *loop)
{
    if (loop->nheap == 0)
        return -1;
    uint64_t due = loop->heap[0]->due;
    if (due <= loop->now)
        return 0;
    uint64_t ms = due - loop->now;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int nk__timers_run(nk_loop *loop)
{
    int ran = 0;
    /* Timers started (or restarted) by these callbacks get a seq above this mark; stopping at the
     * first of them keeps a zero-timeout timer that re-arms itself from spinning forever here. */
    uint64_t mark = loop->timer_seq;
    while (loop->nheap > 0) {
        nk_timer *t = loop->heap[0];
        if (t->due > loop->now || t->seq > mark)
            break;
        if (t->repeat != 0) {
            /* Keep the cadence of the previous due time, but never schedule into the past: a
             * loop that fell behind fires once and continues from now, not in a burst. */
            uint64_t next = add_sat(t->due, t->repeat);
            if (next <= loop->now)
                next = add_sat(loop->now, t->repeat);
            t->due = next;
            t->seq = ++loop->timer_seq;
            heap_down(loop, 0);
        } else {
            heap_remove(loop, t);
        }
        /* Nothing of t is touched after this: the callback may free it. */
        t->cb(loop, t);
        ran++;
    }
    return ran;
}

void nk__timers_free(nk_loop *loop)
{
    free(loop->heap);
    loop->heap = NULL;
    loop->nheap = loop->capheap = 0;
}
