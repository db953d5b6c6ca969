/* A TCP echo server on libevent 2 (event2), for bench/echo.sh.
 *
 *   echo_libevent PORT   (0 picks a free port; prints "listening on tcp://127.0.0.1:PORT")
 *
 * Written the way libevent's documentation teaches an echo server: an evconnlistener accepts,
 * each connection is a socket bufferevent, and the read callback moves the whole input buffer to
 * the output buffer (evbuffer_add_buffer moves chains, it does not copy). The bufferevent then
 * writes on its own. Reads are allowed up to 64 KiB at once (bufferevent_set_max_single_read;
 * libevent's default is 4 KiB), the same as the other servers. TCP_NODELAY on every accepted
 * socket. SIGTERM/SIGINT break the loop; we free everything and exit 0.
 */
#define _GNU_SOURCE
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_MAX (64 * 1024) /* one read, the same for every server in the benchmark */

typedef struct conn {
    struct bufferevent *bev;
    struct conn *prev, *next;
} conn;

static conn *conns;

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, SOMAXCONN) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        close(fd);
        return -1;
    }
    fprintf(stderr, "listening on tcp://127.0.0.1:%d\n", ntohs(sa.sin_port));
    return fd;
}

static void conn_close(conn *c)
{
    bufferevent_free(c->bev); /* BEV_OPT_CLOSE_ON_FREE closes the socket */
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_close(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)sa;
    (void)salen;
    (void)arg;
    struct event_base *base = evconnlistener_get_base(l);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = calloc(1, sizeof *c);
    if (!c || !(c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE))) {
        free(c);
        close(fd);
        return;
    }
    bufferevent_set_max_single_read(c->bev, READ_MAX);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    int lfd = listen_on(atoi(argv[1]));
    if (!base || lfd < 0) {
        perror("echo_libevent");
        return 1;
    }
    /* backlog 0: the socket is already listening. */
    struct evconnlistener *l = evconnlistener_new(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE,
                                                  0, lfd);
    struct event *sterm = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sint = evsignal_new(base, SIGINT, on_signal, base);
    if (!l || !sterm || !sint || event_add(sterm, NULL) < 0 || event_add(sint, NULL) < 0) {
        fprintf(stderr, "echo_libevent: cannot set up the listener or signals\n");
        return 1;
    }
    event_base_dispatch(base);
    while (conns)
        conn_close(conns);
    evconnlistener_free(l);
    event_free(sterm);
    event_free(sint);
    event_base_free(base);
    return 0;
}
