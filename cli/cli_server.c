/* The accept loop shared by the stream servers (see cli_server.h). */
#include "cli_server.h"

#include <errno.h>

static void on_resume(nk_loop *loop, nk_timer *t)
{
    cli_acceptor *a = t->data;
    int rc = nk_io_start(loop, &a->io, NK_READ);
    if (rc < 0) {
        a->exit_code = cli_fail(a->cmd, "cannot watch the listener: %s", nk_strerror(rc));
        nk_loop_stop(loop);
    }
}

static void pause_accepting(cli_acceptor *a, int err)
{
    if (!a->warned) {
        a->warned = 1;
        fprintf(stderr, "netkit: %s: accept: %s; pausing for %d ms (said once)\n", a->cmd,
                nk_strerror(err), CLI_ACCEPT_PAUSE_MS);
    }
    nk_io_stop(a->loop, &a->io);
    nk_timer_start(a->loop, &a->resume, CLI_ACCEPT_PAUSE_MS, 0);
}

static void on_accept(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    cli_acceptor *a = io->data;
    for (int i = 0; i < a->per_event; i++) {
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
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything unexpected: the condition will not
             * clear by retrying at once, and level-triggered readiness would spin. */
            pause_accepting(a, fd);
            return;
        }
    }
}

void cli_acceptor_init(cli_acceptor *a, nk_loop *loop, const char *cmd, int fd, int per_event,
                       cli_accept_cb cb, void *data)
{
    a->loop = loop;
    a->cmd = cmd;
    a->fd = fd;
    a->per_event = per_event;
    a->cb = cb;
    a->data = data;
    a->exit_code = CLI_OK;
    a->warned = 0;
    nk_io_init(&a->io, fd, on_accept, a);
    nk_timer_init(&a->resume, on_resume, a);
}

int cli_acceptor_start(cli_acceptor *a)
{
    return nk_io_start(a->loop, &a->io, NK_READ);
}

void cli_acceptor_stop(cli_acceptor *a)
{
    nk_io_stop(a->loop, &a->io);
    nk_timer_stop(a->loop, &a->resume);
}
