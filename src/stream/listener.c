/* A stream listener: nk_sock_listen, an nk_acceptor and nk_stream_new for every connection, so
 * that a server built on streams needs no accept code of its own. The acceptor brings what a
 * hand-written accept loop tends to lack: bounded batches per readiness event, and a pause
 * instead of a busy loop when descriptors run out.
 */
#include <netkit/stream.h>
#include <netkit/sock.h>
#include "core/extstruct.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

struct nk_stream_listener {
    nk_loop *loop;
    nk_acceptor acceptor;
    nk_stream_config cfg;
    int fd;
};

static void on_connection(nk_acceptor *a, int fd, const nk_addr *peer)
{
    (void)peer;
    nk_stream_listener *l = a->data;
    /* A connection the loop cannot watch (-ERANGE: select above FD_SETSIZE) or no memory:
     * refuse this one client and go on with the next. */
    if (nk_stream_new(l->loop, fd, &l->cfg, NULL) < 0)
        close(fd);
}

int nk_stream_listen(nk_loop *loop, const nk_addr *addr, const nk_stream_config *cfg,
                     nk_stream_listener **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!loop || !addr || !cfg)
        return -EINVAL;
    nk_stream_listener *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    int rc = nk__ext_copy(&l->cfg, sizeof l->cfg, cfg);
    if (rc == 0 && (!l->cfg.on_read || !l->cfg.on_event))
        rc = -EINVAL; /* refused now, not once per connection */
    l->fd = rc < 0 ? rc : nk_sock_listen(addr, SOCK_STREAM, 0, 0);
    if (l->fd < 0) {
        rc = l->fd;
        free(l);
        return rc;
    }
    l->loop = loop;
    nk_acceptor_init(&l->acceptor, loop, l->fd, on_connection, l);
    rc = nk_acceptor_start(&l->acceptor);
    if (rc < 0) {
        close(l->fd);
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int nk_stream_listener_addr(const nk_stream_listener *l, nk_addr *out)
{
    return nk_sock_local(l->fd, out);
}

void nk_stream_listener_free(nk_stream_listener *l)
{
    if (!l)
        return;
    nk_acceptor_stop(&l->acceptor);
    close(l->fd);
    free(l);
}
