/* Reading stdin from the loop (chat join, broadcast send): watched for reads when epoll can
 * watch it, and read on every loop turn (a defer) when it is a regular file, which epoll
 * refuses (EPERM) and which is always ready anyway.
 */
#ifndef NETKIT_CLI_STDIN_WATCH_H
#define NETKIT_CLI_STDIN_WATCH_H

#include <netkit/netkit.h>

typedef void (*stdin_watch_cb)(void *data);

typedef struct stdin_watch {
    nk_loop *loop;
    nk_io io;
    nk_defer defer;
    int polled; /* stdin is read by the defer */
    stdin_watch_cb cb;
    void *data;
} stdin_watch;

/* cb(data) runs whenever stdin may be read. Nothing is watched yet. */
void stdin_watch_init(stdin_watch *w, nk_loop *loop, stdin_watch_cb cb, void *data);
/* Read stdin (on) or not (off); the first refused watch turns to the defer for good. */
void stdin_watch_set(stdin_watch *w, int on);

#endif
