/* Accepting stream connections on the loop, shared by the servers (echo, chat, file recv).
 *
 * Accepts in bounded batches, so that a burst of clients cannot starve the other watchers.
 * When accept fails for a reason that retrying at once would not clear (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM), readiness is level-triggered and would spin: accepting pauses for
 * CLI_ACCEPT_PAUSE_MS instead, with one warning on stderr for the whole run.
 */
#ifndef NETKIT_CLI_SERVER_H
#define NETKIT_CLI_SERVER_H

#include "cli.h"

#define CLI_ACCEPT_PAUSE_MS 100

typedef struct cli_acceptor cli_acceptor;

/* One accepted connection: fd (non-blocking, close-on-exec) now belongs to the callee. The
 * callee may call cli_acceptor_stop (for example, to serve one client only). */
typedef void (*cli_accept_cb)(cli_acceptor *a, int fd, const nk_addr *peer);

struct cli_acceptor {
    nk_loop *loop;
    const char *cmd;  /* for messages */
    int fd;           /* the listening socket; not owned */
    int per_event;    /* accepts per readiness event */
    cli_accept_cb cb;
    void *data;       /* the caller's */
    int exit_code;    /* CLI_FAIL once the listener could not be watched again (loop stopped) */
    nk_io io;         /* private */
    nk_timer resume;  /* private: ends a pause */
    int warned;       /* private */
};

void cli_acceptor_init(cli_acceptor *a, nk_loop *loop, const char *cmd, int fd, int per_event,
                       cli_accept_cb cb, void *data);
/* Start accepting: 0 or a negative error. */
int cli_acceptor_start(cli_acceptor *a);
/* Stop accepting (a pause included); safe on an initialised acceptor that never started. */
void cli_acceptor_stop(cli_acceptor *a);

#endif
