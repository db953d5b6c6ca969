/* Socket activation and readiness for a service manager. See netkit/service.h. */
#include <netkit/service.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A whole decimal number from lo to hi, or -1. */
static long env_number(const char *name, long lo, long hi)
{
    const char *text = getenv(name);
    if (!text || *text < '0' || *text > '9')
        return -1;
    errno = 0;
    char *end;
    long v = strtol(text, &end, 10);
    return errno || *end || v < lo || v > hi ? -1 : v;
}

static int is_stream_listener(int fd)
{
    int listening = 0, type = 0;
    socklen_t len = sizeof listening, tlen = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 &&
           getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && listening &&
           type == SOCK_STREAM;
}

int nk_listen_fds(int max, int *bad_fd)
{
    if (!getenv("LISTEN_PID") || !getenv("LISTEN_FDS"))
        return 0;
    if (env_number("LISTEN_PID", 1, INT_MAX) != (long)getpid())
        return 0; /* meant for another process (an ancestor's) */
    long n = env_number("LISTEN_FDS", 0, max);
    if (n < 0)
        return -ERANGE;
    for (int i = 0; i < (int)n; i++) {
        int fd = NK_LISTEN_FDS_START + i;
        if (!is_stream_listener(fd)) {
            if (bad_fd)
                *bad_fd = fd;
            return -ENOTSOCK;
        }
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC); /* not passed on to anything the server runs */
    }
    return (int)n;
}

int nk_listen_fd_name(int i, char *buf, size_t len)
{
    const char *p = getenv("LISTEN_FDNAMES");
    for (int k = 0; p && k < i; k++) {
        p = strchr(p, ':');
        p = p ? p + 1 : NULL;
    }
    size_t n = p ? strcspn(p, ":") : 0;
    if (len == 0)
        return n ? -ENAMETOOLONG : 0;
    size_t fit = n < len ? n : len - 1;
    if (fit)
        memcpy(buf, p, fit);
    buf[fit] = '\0';
    return fit < n ? -ENAMETOOLONG : 0;
}

void nk_listen_fds_forget(void)
{
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

int nk_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un sun;
    size_t n = strlen(path);
    if (n >= sizeof sun.sun_path)
        return -ENAMETOOLONG;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, n);
    if (path[0] == '@')
        sun.sun_path[0] = '\0'; /* the abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
    int err = sent < 0 ? -errno : 0;
    close(fd);
    return err;
}
