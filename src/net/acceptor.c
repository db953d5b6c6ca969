/* The acceptor: a watcher on a listening socket that accepts in bounded batches, so that a
 * burst of clients cannot starve the other watchers of the loop.
 *
 * When accept fails for a reason that retrying at once would not clear (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM), the pending connection stays queued and level-triggered readiness would
 * report it again on every iteration: the loop would spin at 100% CPU doing nothing. The
 * acceptor stops watching for pause_ms instead (a timer resumes it), and tells the caller
 * once, since a server under descriptor pressure would otherwise log on every pause.
 */
#include <netkit/sock.h>

#include <errno.h>

static unsigned pause_of(const nk_acceptor *a)
{
    return a->pause_ms ? a->pause_ms : NK_ACCEPT_PAUSE_MS;
}

static void on_resume(nk_loop *loop, nk_timer *t)
{
    nk_acceptor *a = t->data;
    int rc = nk_io_start(loop, &a->io, NK_READ);
    if (rc < 0 && a->on_error)
        a->on_error(a, rc, 0);
}

static void pause_accepting(nk_acceptor *a, int err)
{
    nk_io_stop(a->loop, &a->io);
    nk_timer_start(a->loop, &a->resume, pause_of(a), 0);
    if (a->pauses++ == 0 && a->on_error)
        a->on_error(a, err, 1);
}

static void on_accept(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    nk_acceptor *a = io->data;
    int batch = a->per_event > 0 ? a->per_event : NK_ACCEPT_PER_EVENT;
    for (int i = 0; i < batch; i++) {
        nk_addr peer;
        int fd = nk_sock_accept(a->fd, &peer);
        if (fd >= 0) {
            a->cb(a, fd, &peer);
            if (!nk_io_active(&a->io))
                return; /* the callback stopped accepting */
            continue;
        }
        switch (fd) {
        case -EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case -EWOULDBLOCK:
#endif
            return;
        case -EINTR:
        case -ECONNABORTED: /* the client gave up while queued: take the next one */
        case -EPROTO:
        case -EPERM: /* refused by a firewall rule */
            continue;
        default:
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything unexpected. */
            pause_accepting(a, fd);
            return;
        }
    }
}

void nk_acceptor_init(nk_acceptor *a, nk_loop *loop, int lfd, nk_accept_cb cb, void *data)
{
    a->data = data;
    a->per_event = NK_ACCEPT_PER_EVENT;
    a->pause_ms = NK_ACCEPT_PAUSE_MS;
    a->on_error = NULL;
    a->pauses = 0;
    a->loop = loop;
    a->fd = lfd;
    a->cb = cb;
    nk_io_init(&a->io, lfd, on_accept, a);
    nk_timer_init(&a->resume, on_resume, a);
}

int nk_acceptor_start(nk_acceptor *a)
{
    nk_timer_stop(a->loop, &a->resume);
    return nk_io_start(a->loop, &a->io, NK_READ);
}

void nk_acceptor_stop(nk_acceptor *a)
{
    nk_io_stop(a->loop, &a->io);
    nk_timer_stop(a->loop, &a->resume);
}
