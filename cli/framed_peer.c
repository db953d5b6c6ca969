/* The client side of a framed connection (see framed_peer.h). */
#include "framed_peer.h"

#include <string.h>

int framed_peer_open(framed_peer *p, const framed_peer_cfg *cfg)
{
    int fd;
    nk_tls *t = NULL;
    int rc = cli_tls_connect(cfg->cmd, cfg->tls, cfg->text, cfg->addr, cfg->timeout_ms, &fd, &t);
    if (rc)
        return rc;
    memset(p, 0, sizeof *p);
    cli_conn_init(&p->conn, fd, t);
    rc = nk_loop_new(NULL, &p->loop);
    if (rc < 0) {
        cli_conn_close(&p->conn);
        return cli_fail(cfg->cmd, "event loop: %s", nk_strerror(rc));
    }
    nk_frame_decoder_init(&p->in, NK_FRAME_LEN32, cfg->frame_max);
    nk_buf_init(&p->out, 0);
    nk_io_init(&p->io, fd, cfg->on_io, cfg->data);
    cli_stop_signals_start(p->loop, &p->stop_signals, cfg->on_signal, cfg->data);
    return 0;
}

int framed_peer_watch(framed_peer *p)
{
    unsigned want = cli_conn_interest(&p->conn, 1, nk_buf_len(&p->out) > 0);
    if (want == p->interest)
        return 0;
    int rc = nk_io_start(p->loop, &p->io, want);
    if (rc < 0)
        return rc;
    p->interest = want;
    return 0;
}

void framed_peer_close(framed_peer *p)
{
    nk_io_stop(p->loop, &p->io);
    cli_stop_signals_stop(p->loop, &p->stop_signals);
    nk_loop_free(p->loop);
    nk_frame_decoder_free(&p->in);
    nk_buf_free(&p->out);
    cli_conn_close(&p->conn);
}
