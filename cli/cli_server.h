/* The servers' (echo, chat, file recv) accept loop: the library's nk_acceptor (bounded
 * batches, back-off when descriptors run out) plus what a command adds to it: the one-line
 * warning on the first pause, and an exit code when the listener cannot be watched again.
 * Then, for the framed TCP servers (chat serve, file recv), the listening side as a whole:
 * optional TLS context, listener, loop, acceptor and stop signals, opened, run and closed as
 * one call each with the same messages.
 */
#ifndef NETKIT_CLI_SERVER_H
#define NETKIT_CLI_SERVER_H

#include "cli.h"
#include "cli_tls.h"

typedef struct cli_acceptor cli_acceptor;

/* One accepted connection: fd (non-blocking, close-on-exec) now belongs to the callee. The
 * callee may call cli_acceptor_stop (for example, to serve one client only). */
typedef void (*cli_accept_cb)(cli_acceptor *a, int fd, const nk_addr *peer);

struct cli_acceptor {
    nk_loop *loop;
    const char *cmd;  /* for messages */
    cli_accept_cb cb;
    void *data;       /* the caller's */
    int exit_code;    /* CLI_FAIL once the listener could not be watched again (loop stopped) */
    nk_acceptor acceptor; /* private */
};

void cli_acceptor_init(cli_acceptor *a, nk_loop *loop, const char *cmd, int fd, int per_event,
                       cli_accept_cb cb, void *data);
/* Start accepting: 0 or a negative error. */
int cli_acceptor_start(cli_acceptor *a);
/* Stop accepting (a pause included); safe on an initialised acceptor that never started. */
void cli_acceptor_stop(cli_acceptor *a);

/* The listening side of a framed TCP server. The command keeps its connections and frees them
 * before cli_server_close. */
typedef struct cli_server {
    const char *cmd;     /* for messages */
    nk_loop *loop;
    int lfd;
    nk_tls_ctx *tls_ctx; /* --tls, else NULL */
    cli_acceptor accept;
    cli_stop_signals stop_signals;
} cli_server;

/* Ignore SIGPIPE (a vanished peer gives EPIPE), then the TLS context when tls->on (its line is
 * out before anyone can connect), the listener on addr (text: ADDR as given, for the message)
 * and the loop. 0 or an exit code after its message, nothing kept. */
int cli_server_open(cli_server *s, const char *cmd, const char *text, const nk_addr *addr,
                    const cli_tls_opts *tls);
/* Accept (per_event at a time, each connection to cb with data) until the loop stops; a stop
 * signal calls on_stop with stop_data, or stops the loop when on_stop is NULL. Prints the
 * "listening" line once the listener is watched. The exit code: CLI_OK, or CLI_FAIL after its
 * message (the listener, getsockname, the loop). */
int cli_server_run(cli_server *s, int per_event, cli_accept_cb cb, void *data,
                   nk_signal_cb on_stop, void *stop_data);
/* A connection's TLS handshake failed with rc: say so on one line ("netkit: CMD: PEER: TLS:
 * WHY"), unless it was a probe (tcp wait, nc -z) that closed without a word. */
void cli_server_handshake_failed(const char *cmd, const char *peer, const cli_conn *conn,
                                 int rc);
/* Stop accepting and the signals, free the loop and the TLS context, close the listener. */
void cli_server_close(cli_server *s);

#endif
