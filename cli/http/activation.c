/* systemd socket activation and readiness, through the library's netkit/service.h.
 *
 * A passed listener's name (FileDescriptorName= of the socket unit) chooses the scheme:
 * "https", "proxy+http" ("proxy"), "proxy+https", anything else http. The same variables carry the listeners from a running
 * server to its replacement on SIGUSR2 (http/upgrade.c). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netkit/service.h>

#include "cli.h"
#include "http/serve.h"

/* A passed listener's scheme from its name; "-unlink": a unix socket path the server before an
 * upgrade made, and that the last server on it removes (http/upgrade.c); a service manager's
 * paths are its own. */
static void scheme_from_name(http_inherited *h, char *name)
{
    size_t nl = strlen(name), ul = strlen("-unlink");
    h->unlink = nl > ul && strcmp(name + nl - ul, "-unlink") == 0;
    if (h->unlink)
        name[nl - ul] = '\0';
    h->tls = strcmp(name, "https") == 0 || strcmp(name, "proxy+https") == 0;
    h->proxy = strncmp(name, "proxy", 5) == 0;
}

int http_inherit_listeners(http_serve_opts *o)
{
    int bad = -1;
    int n = nk_listen_fds(HTTP_MAX_INHERIT, &bad);
    if (n == -ERANGE)
        return cli_usage(o->cmd, "LISTEN_FDS='%s': at most %d inherited listeners",
                         getenv("LISTEN_FDS"), HTTP_MAX_INHERIT);
    if (n < 0)
        return cli_fail(o->cmd, "inherited descriptor %d is not a listening stream socket", bad);
    for (int i = 0; i < n; i++) {
        http_inherited *h = &o->inherited[o->ninherited++];
        h->fd = NK_LISTEN_FDS_START + i;
        char name[64];
        (void)nk_listen_fd_name(i, name, sizeof name); /* a longer name is no scheme of ours */
        scheme_from_name(h, name);
    }
    /* Started by `http serve` itself on SIGUSR2: the old server waits on this pipe. */
    const char *up = getenv("NETKIT_UPGRADE_FD");
    long ufd;
    if (up && cli_parse_long(up, 3, 0x7fffffff, &ufd) == 0 && fcntl((int)ufd, F_GETFD) >= 0) {
        o->upgrade_fd = (int)ufd;
        (void)fcntl(o->upgrade_fd, F_SETFD, FD_CLOEXEC);
    }
    unsetenv("NETKIT_UPGRADE_FD");
    /* Children we fork are workers (fine); anything else must not take these for its own. */
    nk_listen_fds_forget();
    return 0;
}

void http_notify(const char *state)
{
    (void)nk_notify(state); /* best effort, as sd_notify: a manager not listening changes nothing */
}
