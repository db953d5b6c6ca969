/* The client side of a length-prefixed (NK_FRAME_LEN32) connection, as chat join and file send
 * speak it: the connection (TCP, or TLS after its handshake), its loop, the frame decoder of what
 * arrives, the buffer of what goes, the socket's watch and the stop signals. One call opens all
 * of it (connecting first), one closes it; the protocol stays with the command.
 */
#ifndef NETKIT_CLI_FRAMED_PEER_H
#define NETKIT_CLI_FRAMED_PEER_H

#include "cli.h"
#include "cli_tls.h"

typedef struct framed_peer {
    nk_loop *loop;
    cli_conn conn;
    nk_io io;           /* the socket, to the command's callback */
    unsigned interest;  /* what io watches now */
    nk_frame_decoder in;
    nk_buf out;
    cli_stop_signals stop_signals;
} framed_peer;

/* What to connect to and whom to call. */
typedef struct framed_peer_cfg {
    const char *cmd;           /* for messages */
    const cli_tls_opts *tls;
    const char *text;          /* ADDR as given */
    const nk_addr *addr;
    long timeout_ms;           /* for the connection, and again for the handshake */
    size_t frame_max;          /* the longest message accepted */
    nk_io_cb on_io;            /* the socket's events, with data */
    nk_signal_cb on_signal;    /* SIGINT/SIGTERM, with data */
    void *data;
} framed_peer_cfg;

/* Connect (and shake hands), then the loop, decoder, buffer and signals; the socket is not
 * watched yet. 0 or an exit code after its message (nothing kept). */
int framed_peer_open(framed_peer *p, const framed_peer_cfg *cfg);
/* Watch the socket for what the connection wants now (reads always, writes while out holds
 * bytes): 0 or a negative error (the watch unchanged). */
int framed_peer_watch(framed_peer *p);
/* Stop the watch and the signals, free the loop, decoder and buffer, close the connection. */
void framed_peer_close(framed_peer *p);

#endif
