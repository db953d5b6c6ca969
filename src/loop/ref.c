/* References: whether a started watcher keeps nk_loop_run(NK_RUN_DEFAULT) going.
 *
 * The mark is a flag in each watcher; the loop counts the started watchers that carry it
 * (unref_active) and nk_loop_active subtracts that count. Start and stop paths add or remove
 * the flag's value without a branch (nk__unref_started/stopped), so a program that never
 * unrefs pays one add there and nothing per iteration. Here the flag changes: the count moves
 * only when the watcher is started, because a stopped one is not counted at all.
 */
#include "loop/loop_internal.h"

static void flag_set(nk_loop *loop, unsigned *flags, int active)
{
    if (*flags & NK__UNREF)
        return;
    *flags |= NK__UNREF;
    if (active)
        loop->unref_active++;
}

static void flag_clear(nk_loop *loop, unsigned *flags, int active)
{
    if (!(*flags & NK__UNREF))
        return;
    *flags &= ~(unsigned)NK__UNREF;
    if (active)
        loop->unref_active--;
}

void nk_io_unref(nk_loop *loop, nk_io *io)
{
    flag_set(loop, &io->flags, nk_io_active(io));
}

void nk_io_ref(nk_loop *loop, nk_io *io)
{
    flag_clear(loop, &io->flags, nk_io_active(io));
}

void nk_timer_unref(nk_loop *loop, nk_timer *t)
{
    flag_set(loop, &t->flags, nk_timer_active(t));
}

void nk_timer_ref(nk_loop *loop, nk_timer *t)
{
    flag_clear(loop, &t->flags, nk_timer_active(t));
}

void nk_signal_unref(nk_loop *loop, nk_signal *s)
{
    flag_set(loop, &s->flags, s->signum != 0);
}

void nk_signal_ref(nk_loop *loop, nk_signal *s)
{
    flag_clear(loop, &s->flags, s->signum != 0);
}

void nk_defer_unref(nk_loop *loop, nk_defer *d)
{
    flag_set(loop, &d->flags, d->active);
}

void nk_defer_ref(nk_loop *loop, nk_defer *d)
{
    flag_clear(loop, &d->flags, d->active);
}

void nk_async_unref(nk_loop *loop, nk_async *a)
{
    flag_set(loop, &a->flags, nk_async_active(a));
}

void nk_async_ref(nk_loop *loop, nk_async *a)
{
    flag_clear(loop, &a->flags, nk_async_active(a));
}
