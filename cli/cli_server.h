/* The servers' (echo, chat, file recv) accept loop: the library's nk_acceptor (bounded
 * batches, back-off when descriptors run out) plus what a command adds to it: the one-line
 * warning on the first pause, and an exit code when the listener cannot be watched again.
 */
#ifndef NETKIT_CLI_SERVER_H
#define NETKIT_CLI_SERVER_H

#include "cli.h"

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

#endif
