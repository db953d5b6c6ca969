/* Socket helpers: listen, non-blocking connect, accept and the common options.
 *
 * Every socket is created with SOCK_NONBLOCK|SOCK_CLOEXEC in the same call, so there is no
 * window in which a forked child could inherit it or a read could block the loop.
 */
#include <netkit/sock.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* EINTR retries are bounded so that a signal storm cannot pin a caller in a loop. */
#define EINTR_RETRIES 100

static int set_int(int fd, int level, int name, int v)
{
    return setsockopt(fd, level, name, &v, sizeof(v)) < 0 ? -errno : 0;
}

/* Close fd but return err: errno from close must not replace the error being reported. */
static int close_with(int fd, int err)
{
    close(fd);
    return err;
}

static int is_unix_path(const nk_addr *addr)
{
    return addr->u.sa.sa_family == AF_UNIX &&
           addr->len > offsetof(struct sockaddr_un, sun_path) && addr->u.un.sun_path[0] != '\0';
}

/* Is the unix socket file at addr left over from a process that is gone? Only a socket file on
 * which a connect is refused qualifies: a live server answers (or has a full backlog), and a
 * file that is not a socket is never ours to delete. */
static int unix_path_is_stale(const nk_addr *addr, int socktype)
{
    struct stat st;
    if (lstat(addr->u.un.sun_path, &st) < 0)
        return errno == ENOENT ? 1 : 0; /* vanished: binding again may just work */
    if (!S_ISSOCK(st.st_mode))
        return 0;
    int fd = socket(AF_UNIX, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int rc = connect(fd, &addr->u.sa, addr->len);
    int err = rc < 0 ? errno : 0;
    close(fd);
    return rc < 0 && err == ECONNREFUSED;
}

static int listen_opts(int fd, const nk_addr *addr, int socktype, int flags)
{
    int fam = addr->u.sa.sa_family;
    int rc = 0;
    /* Lets a restarted server bind while old connections sit in TIME_WAIT. */
    if (socktype == SOCK_STREAM && (fam == AF_INET || fam == AF_INET6))
        rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && (flags & NK_SOCK_REUSEPORT))
        rc = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (rc == 0 && (flags & NK_SOCK_BROADCAST))
        rc = set_int(fd, SOL_SOCKET, SO_BROADCAST, 1);
    /* Set either way: the default comes from a sysctl, and [::] should mean both stacks. */
    if (rc == 0 && fam == AF_INET6)
        rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, (flags & NK_SOCK_V6ONLY) ? 1 : 0);
    return rc;
}

int nk_sock_listen(const nk_addr *addr, int socktype, int flags, int backlog)
{
    return nk_sock_listen_setup(addr, socktype, flags, backlog, NULL, NULL);
}

int nk_sock_listen_setup(const nk_addr *addr, int socktype, int flags, int backlog,
                         nk_connect_setup_cb setup, void *data)
{
    if (!addr || addr->len == 0)
        return -EINVAL;
    int fd = socket(addr->u.sa.sa_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = listen_opts(fd, addr, socktype, flags);
    if (rc == 0 && setup)
        rc = setup(fd, addr, data);
    if (rc < 0)
        return close_with(fd, rc);
    rc = bind(fd, &addr->u.sa, addr->len);
    if (rc < 0 && errno == EADDRINUSE && is_unix_path(addr)) {
        if (!unix_path_is_stale(addr, socktype))
            return close_with(fd, -EADDRINUSE);
        if (unlink(addr->u.un.sun_path) < 0 && errno != ENOENT)
            return close_with(fd, -errno);
        rc = bind(fd, &addr->u.sa, addr->len); /* once: a second race is reported, not fought */
    }
    if (rc < 0)
        return close_with(fd, -errno);
    if (socktype == SOCK_STREAM || socktype == SOCK_SEQPACKET) {
        if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0)
            return close_with(fd, -errno);
    }
    return fd;
}

int nk_sock_connect(const nk_addr *addr, int socktype, int flags, int *in_progress)
{
    if (in_progress)
        *in_progress = 0;
    if (!addr || addr->len == 0)
        return -EINVAL;
    int fd = socket(addr->u.sa.sa_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (flags & NK_SOCK_BROADCAST) {
        int rc = set_int(fd, SOL_SOCKET, SO_BROADCAST, 1);
        if (rc < 0)
            return close_with(fd, rc);
    }
    if (connect(fd, &addr->u.sa, addr->len) < 0) {
        /* EINTR on a non-blocking connect: the attempt goes on in the background. */
        if (errno != EINPROGRESS && errno != EINTR)
            return close_with(fd, -errno);
        if (in_progress)
            *in_progress = 1;
    }
    return fd;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int nk_sock_connect_wait(const nk_addr *addr, int socktype, int flags, int timeout_ms)
{
    int pending = 0;
    int fd = nk_sock_connect(addr, socktype, flags, &pending);
    if (fd < 0 || !pending)
        return fd;
    long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
    for (int i = 0; i < EINTR_RETRIES; i++) {
        int wait = -1;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            wait = left > 0 ? (int)left : 0;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int rc = poll(&pfd, 1, wait);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return close_with(fd, -errno);
        if (rc == 0)
            return close_with(fd, -ETIMEDOUT);
        int err = nk_sock_error(fd);
        return err < 0 ? close_with(fd, err) : fd;
    }
    return close_with(fd, -EINTR);
}

int nk_sock_accept(int lfd, nk_addr *peer)
{
    for (int i = 0; i < EINTR_RETRIES; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (peer) {
                memset(peer, 0, sizeof(*peer));
                if (len > sizeof(peer->u))
                    len = sizeof(peer->u);
                memcpy(&peer->u, &ss, len);
                peer->len = len;
            }
            return fd;
        }
        if (errno == EINTR)
            continue;
        /* The client gave up before we accepted it: for the caller that is "none pending". */
        if (errno == ECONNABORTED || errno == EWOULDBLOCK)
            return -EAGAIN;
        return -errno;
    }
    return -EINTR;
}

int nk_sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

static int get_name(int fd, nk_addr *out, int peer)
{
    memset(out, 0, sizeof(*out));
    socklen_t len = sizeof(out->u);
    int rc = peer ? getpeername(fd, &out->u.sa, &len) : getsockname(fd, &out->u.sa, &len);
    if (rc < 0)
        return -errno;
    out->len = len > sizeof(out->u) ? (socklen_t)sizeof(out->u) : len;
    return 0;
}

int nk_sock_local(int fd, nk_addr *out) { return get_name(fd, out, 0); }
int nk_sock_peer(int fd, nk_addr *out) { return get_name(fd, out, 1); }

int nk_sock_set_nodelay(int fd, int on)
{
    return set_int(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
}

int nk_sock_set_keepalive(int fd, int on, int idle_s)
{
    int rc = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0);
    if (rc == 0 && on && idle_s > 0)
        rc = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_s);
    return rc;
}

int nk_sock_set_bufsizes(int fd, int rcvbuf, int sndbuf)
{
    int rc = 0;
    if (rcvbuf > 0)
        rc = set_int(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf);
    if (rc == 0 && sndbuf > 0)
        rc = set_int(fd, SOL_SOCKET, SO_SNDBUF, sndbuf);
    return rc;
}

int nk_sock_set_broadcast(int fd, int on)
{
    return set_int(fd, SOL_SOCKET, SO_BROADCAST, on ? 1 : 0);
}

int nk_sock_set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    int want = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    if (want != fl && fcntl(fd, F_SETFL, want) < 0)
        return -errno;
    return 0;
}
