/* stdin from the loop, by watch or by defer (see stdin_watch.h). */
#include "stdin_watch.h"

static void on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    stdin_watch *w = io->data;
    w->cb(w->data);
}

static void on_defer(nk_loop *loop, nk_defer *d)
{
    (void)loop;
    stdin_watch *w = d->data;
    w->cb(w->data);
}

void stdin_watch_init(stdin_watch *w, nk_loop *loop, stdin_watch_cb cb, void *data)
{
    w->loop = loop;
    w->polled = 0;
    w->cb = cb;
    w->data = data;
    nk_io_init(&w->io, 0, on_io, w); /* fd 0: stdin */
    nk_defer_init(&w->defer, on_defer, w);
}

void stdin_watch_set(stdin_watch *w, int on)
{
    if (w->polled) {
        if (on)
            nk_defer_start(w->loop, &w->defer);
        else
            nk_defer_stop(w->loop, &w->defer);
    } else if (!on) {
        nk_io_stop(w->loop, &w->io);
    } else if (nk_io_start(w->loop, &w->io, NK_READ) < 0) {
        w->polled = 1;
        nk_defer_start(w->loop, &w->defer);
    }
}
