/* The servers' accept loop over nk_acceptor, and the framed servers' listening side (see
 * cli_server.h). */
#include "cli_server.h"

#include <signal.h>
#include <unistd.h>

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

int cli_server_open(cli_server *s, const char *cmd, const char *text, const nk_addr *addr,
                    const cli_tls_opts *tls)
{
    s->cmd = cmd;
    s->tls_ctx = NULL;
    signal(SIGPIPE, SIG_IGN);
    int rc;
    if (tls->on && (rc = cli_tls_server_ctx(cmd, tls, addr, &s->tls_ctx)) != 0)
        return rc;
    s->lfd = nk_sock_listen(addr, SOCK_STREAM, 0, 0);
    if (s->lfd < 0) {
        nk_tls_ctx_free(s->tls_ctx);
        return cli_fail(cmd, "cannot listen on %s: %s", text, nk_strerror(s->lfd));
    }
    rc = nk_loop_new(NULL, &s->loop);
    if (rc < 0) {
        nk_tls_ctx_free(s->tls_ctx);
        close(s->lfd);
        return cli_fail(cmd, "event loop: %s", nk_strerror(rc));
    }
    return 0;
}

int cli_server_run(cli_server *s, int per_event, cli_accept_cb cb, void *data,
                   nk_signal_cb on_stop, void *stop_data)
{
    const char *cmd = s->cmd;
    cli_acceptor_init(&s->accept, s->loop, cmd, s->lfd, per_event, cb, data);
    cli_stop_signals_start(s->loop, &s->stop_signals, on_stop, stop_data);
    int rc = cli_acceptor_start(&s->accept);
    if (rc < 0)
        return cli_fail(cmd, "cannot watch the listener: %s", nk_strerror(rc));
    if (cli_print_listening("tcp", s->lfd) < 0)
        return cli_fail(cmd, "getsockname failed");
    if ((rc = nk_loop_run(s->loop, NK_RUN_DEFAULT)) < 0)
        return cli_fail(cmd, "event loop: %s", nk_strerror(rc));
    return s->accept.exit_code;
}

void cli_server_handshake_failed(const char *cmd, const char *peer, const cli_conn *conn,
                                 int rc)
{
    /* A probe closes without a word: not worth a line. */
    if (!cli_tls_closed_early(rc, cli_conn_why(conn, rc)))
        fprintf(stderr, "netkit: %s: %s: TLS: %s\n", cmd, peer, cli_conn_why(conn, rc));
}

void cli_server_close(cli_server *s)
{
    cli_acceptor_stop(&s->accept);
    cli_stop_signals_stop(s->loop, &s->stop_signals);
    nk_loop_free(s->loop);
    nk_tls_ctx_free(s->tls_ctx);
    close(s->lfd);
}
