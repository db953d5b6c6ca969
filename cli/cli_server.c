/* The servers' accept loop over nk_acceptor (see cli_server.h). */
#include "cli_server.h"

static void on_conn(nk_acceptor *na, int fd, const nk_addr *peer)
{
    cli_acceptor *a = na->data;
    a->cb(a, fd, peer);
}

static void on_error(nk_acceptor *na, int err, int paused)
{
    cli_acceptor *a = na->data;
    if (paused) {
        fprintf(stderr, "netkit: %s: accept: %s; pausing for %u ms (said once)\n", a->cmd,
                nk_strerror(err), na->pause_ms);
        return;
    }
    a->exit_code = cli_fail(a->cmd, "cannot watch the listener: %s", nk_strerror(err));
    nk_loop_stop(a->loop);
}

void cli_acceptor_init(cli_acceptor *a, nk_loop *loop, const char *cmd, int fd, int per_event,
                       cli_accept_cb cb, void *data)
{
    a->loop = loop;
    a->cmd = cmd;
    a->cb = cb;
    a->data = data;
    a->exit_code = CLI_OK;
    nk_acceptor_init(&a->acceptor, loop, fd, on_conn, a);
    a->acceptor.per_event = per_event;
    a->acceptor.on_error = on_error;
}

int cli_acceptor_start(cli_acceptor *a)
{
    return nk_acceptor_start(&a->acceptor);
}

void cli_acceptor_stop(cli_acceptor *a)
{
    nk_acceptor_stop(&a->acceptor);
}
