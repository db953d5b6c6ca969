/* systemd socket activation and readiness (sd_listen_fds(3), sd_notify(3)), done by hand so
 * the command needs no libsystemd: the protocol is two environment variables and a datagram.
 *
 * Listeners passed by the service manager are descriptors 3, 4, ... ($LISTEN_FDS of them,
 * meant for the process $LISTEN_PID names); $LISTEN_FDNAMES (FileDescriptorName= of the
 * socket units, colon-separated) chooses the scheme: "https", "proxy+http" ("proxy"),
 * "proxy+https", anything else http. The same variables carry the listeners from a running
 * server to its replacement on SIGUSR2 (http/upgrade.c). */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "http/serve.h"

#define LISTEN_FDS_START 3

int http_inherit_listeners(http_serve_opts *o)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (!pid || !fds)
        return 0;
    long n;
    if (cli_parse_long(pid, 1, 0x7fffffff, &n) < 0 || n != (long)getpid())
        return 0; /* meant for another process (an ancestor's) */
    if (cli_parse_long(fds, 0, HTTP_MAX_INHERIT, &n) < 0)
        return cli_usage(o->cmd, "LISTEN_FDS='%s': at most %d inherited listeners", fds,
                         HTTP_MAX_INHERIT);
    const char *names = getenv("LISTEN_FDNAMES");
    for (int i = 0; i < (int)n; i++) {
        int fd = LISTEN_FDS_START + i;
        int listening = 0, type = 0;
        socklen_t len = sizeof listening;
        socklen_t tlen = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || !listening ||
            type != SOCK_STREAM)
            return cli_fail(o->cmd, "inherited descriptor %d is not a listening stream socket",
                            fd);
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC); /* not passed on to anything we run */
        /* This descriptor's name: the i-th of the colon-separated list. */
        char name[64] = "";
        const char *p = names;
        for (int k = 0; p && k < i; k++) {
            p = strchr(p, ':');
            p = p ? p + 1 : NULL;
        }
        if (p) {
            size_t len_name = strcspn(p, ":");
            snprintf(name, sizeof name, "%.*s", (int)len_name, p);
        }
        http_inherited *h = &o->inherited[o->ninherited++];
        h->fd = fd;
        /* "-unlink": a unix socket path the server before an upgrade made, and that the last
         * server on it removes (http/upgrade.c); a service manager's paths are its own. */
        size_t nl = strlen(name), ul = strlen("-unlink");
        h->unlink = nl > ul && strcmp(name + nl - ul, "-unlink") == 0;
        if (h->unlink)
            name[nl - ul] = '\0';
        h->tls = strcmp(name, "https") == 0 || strcmp(name, "proxy+https") == 0;
        h->proxy = strncmp(name, "proxy", 5) == 0;
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
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return 0;
}

void http_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return;
    struct sockaddr_un sun;
    size_t n = strlen(path);
    if (n >= sizeof sun.sun_path)
        return;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, n);
    if (path[0] == '@')
        sun.sun_path[0] = '\0'; /* the abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    /* Best effort, as sd_notify: a manager that is not listening changes nothing here. */
    (void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun,
                 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
    close(fd);
}
