/* Unit tests for the net module: address text, look-ups, sockets and options. All traffic
 * stays on loopback; every port comes from the kernel (port 0). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <netkit/addr.h>
#include <netkit/err.h>
#include <netkit/sock.h>

static char long_path[300];     /* "unix:" + 200 characters */
static char max_path[130];      /* "unix:" + the longest path sun_path holds */
static char over_path[130];     /* one character more */
static char max_abstract[130];  /* "unix:@" + the longest abstract name */
static char over_abstract[130]; /* one character more */

static void make_paths(void)
{
    size_t room = sizeof(((struct sockaddr_un *)0)->sun_path);
    snprintf(long_path, sizeof(long_path), "unix:/%0199d", 0);
    snprintf(max_path, sizeof(max_path), "unix:/%0*d", (int)(room - 2), 0);
    snprintf(over_path, sizeof(over_path), "unix:/%0*d", (int)(room - 1), 0);
    snprintf(max_abstract, sizeof(max_abstract), "unix:@%0*d", (int)(room - 1), 0);
    snprintf(over_abstract, sizeof(over_abstract), "unix:@%0*d", (int)room, 0);
}

struct parse_case {
    const char *why;
    const char *text;
    int flags;
    int rc;
    const char *formatted; /* for rc 0: what nk_addr_format gives (NULL: same as text) */
};

static const struct parse_case parse_cases[] = {
    {"IPv4 and port", "1.2.3.4:80", 0, 0, NULL},
    {"IPv6 in brackets", "[::1]:80", 0, 0, NULL},
    {"IPv6 scope by interface name", "[fe80::1%lo]:80", 0, 0, NULL},
    {"IPv6 written long is formatted short", "[0:0:0:0:0:0:0:1]:443", 0, 0, "[::1]:443"},
    {"bare port means all IPv4 interfaces", "8080", 0, 0, "0.0.0.0:8080"},
    {"bare port with WILDCARD6 means [::]", "8080", NK_ADDR_WILDCARD6, 0, "[::]:8080"},
    {"star host is the wildcard", "*:80", 0, 0, "0.0.0.0:80"},
    {"empty host is the wildcard", ":80", 0, 0, "0.0.0.0:80"},
    {"port 0 asks the kernel", "127.0.0.1:0", 0, 0, NULL},
    {"largest port", "127.0.0.1:65535", 0, 0, NULL},
    {"leading zeros are still decimal", "127.0.0.1:0080", 0, 0, "127.0.0.1:80"},
    {"unix path", "unix:/tmp/x.sock", 0, 0, NULL},
    {"unix relative path", "unix:rel.sock", 0, 0, NULL},
    {"abstract unix name", "unix:@netkit", 0, 0, NULL},
    {"longest unix path", max_path, 0, 0, NULL},
    {"longest abstract name", max_abstract, 0, 0, NULL},
    {"port above 65535", "1.2.3.4:99999", 0, -ERANGE, NULL},
    {"port 65536", "1.2.3.4:65536", 0, -ERANGE, NULL},
    {"very long port number", "1.2.3.4:123456789012345678901234567890", 0, -ERANGE, NULL},
    {"bare port above 65535", "99999", 0, -ERANGE, NULL},
    {"missing port", "1.2.3.4", 0, -EINVAL, NULL},
    {"empty port", "1.2.3.4:", 0, -EINVAL, NULL},
    {"signed port", "1.2.3.4:+80", 0, -EINVAL, NULL},
    {"negative port", "1.2.3.4:-1", 0, -EINVAL, NULL},
    {"space in port", "1.2.3.4: 80", 0, -EINVAL, NULL},
    {"hex port", "1.2.3.4:0x50", 0, -EINVAL, NULL},
    {"service name needs resolve", "1.2.3.4:http", 0, -EINVAL, NULL},
    {"unclosed bracket", "[::1", 0, -EINVAL, NULL},
    {"brackets without port", "[::1]", 0, -EINVAL, NULL},
    {"garbage after bracket", "[::1]80", 0, -EINVAL, NULL},
    {"empty brackets", "[]:80", 0, -EINVAL, NULL},
    {"IPv6 without brackets", "::1:80", 0, -EINVAL, NULL},
    {"brackets are for IPv6 only", "[1.2.3.4]:80", 0, -EINVAL, NULL},
    {"IPv4 shorthand is not accepted", "1.2.3:80", 0, -EINVAL, NULL},
    {"octet over 255", "256.1.1.1:80", 0, -EINVAL, NULL},
    {"host name needs resolve", "localhost:80", 0, -EINVAL, NULL},
    {"empty text", "", 0, -EINVAL, NULL},
    {"empty scope", "[fe80::1%]:80", 0, -EINVAL, NULL},
    {"unknown interface", "[fe80::1%nosuchif9]:80", 0, -ENODEV, NULL},
    {"empty unix path", "unix:", 0, -EINVAL, NULL},
    {"empty abstract name", "unix:@", 0, -EINVAL, NULL},
    {"unix path of 200 characters", long_path, 0, -ENAMETOOLONG, NULL},
    {"unix path one over sun_path - 1", over_path, 0, -ENAMETOOLONG, NULL},
    {"abstract name one over", over_abstract, 0, -ENAMETOOLONG, NULL},
};

static void test_parse_table(void **state)
{
    (void)state;
    make_paths();
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        print_message("parse: %s (%.40s)\n", c->why, c->text);
        nk_addr a;
        int rc = nk_addr_parse(c->text, c->flags, &a);
        if (rc != c->rc)
            fail_msg("%s: \"%s\" gave %d (%s), want %d", c->why, c->text, rc, nk_errname(rc),
                     c->rc);
        if (rc != 0)
            continue;
        char buf[NK_ADDR_STRLEN];
        int n = nk_addr_format(&a, buf, sizeof(buf));
        const char *want = c->formatted ? c->formatted : c->text;
        assert_string_equal(buf, want);
        assert_int_equal(n, (int)strlen(want));
        /* Round trip: the formatted text parses back to an equal address. */
        nk_addr b;
        assert_int_equal(nk_addr_parse(buf, c->flags, &b), 0);
        assert_true(nk_addr_equal(&a, &b));
        assert_int_equal(a.len, b.len);
    }
}

static void test_parse_details(void **state)
{
    (void)state;
    nk_addr a;
    /* Abstract names: a leading NUL and a length that ends exactly at the name. */
    assert_int_equal(nk_addr_parse("unix:@abc", 0, &a), 0);
    assert_int_equal(a.u.un.sun_path[0], '\0');
    assert_memory_equal(a.u.un.sun_path + 1, "abc", 3);
    assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + 4);
    /* Paths: terminated, length includes the NUL. */
    assert_int_equal(nk_addr_parse("unix:/p", 0, &a), 0);
    assert_string_equal(a.u.un.sun_path, "/p");
    assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + 3);
    assert_int_equal(nk_addr_port(&a), -EAFNOSUPPORT);
    /* Scope by number and by name are the same thing. */
    char text[64];
    unsigned lo = if_nametoindex("lo");
    assert_true(lo > 0);
    snprintf(text, sizeof(text), "[fe80::1%%%u]:80", lo);
    nk_addr b;
    assert_int_equal(nk_addr_parse(text, 0, &a), 0);
    assert_int_equal(nk_addr_parse("[fe80::1%lo]:80", 0, &b), 0);
    assert_int_equal(a.u.in6.sin6_scope_id, lo);
    assert_true(nk_addr_equal(&a, &b));
    assert_int_equal(nk_addr_port(&a), 80);
    nk_addr_set_port(&a, 8080);
    assert_int_equal(nk_addr_port(&a), 8080);
    assert_false(nk_addr_equal(&a, &b));
    assert_int_equal(nk_addr_family(&a), AF_INET6);
}

struct split_case {
    const char *why;
    const char *text;
    int rc;
    const char *host;
    const char *port;
};

static void test_split_table(void **state)
{
    (void)state;
    const struct split_case cases[] = {
        {"name and port", "example.com:80", 0, "example.com", "80"},
        {"service names pass through", "localhost:http", 0, "localhost", "http"},
        {"brackets are removed", "[::1]:443", 0, "::1", "443"},
        {"scope stays with the host", "[fe80::1%lo]:1", 0, "fe80::1%lo", "1"},
        {"bare port", "8080", 0, "", "8080"},
        {"star is the empty host", "*:9", 0, "", "9"},
        {"a lone name is a missing port", "localhost", -EINVAL, NULL, NULL},
        {"two colons need brackets", "a:b:c", -EINVAL, NULL, NULL},
        {"unix addresses have no port", "unix:/x", -EINVAL, NULL, NULL},
        {"host does not fit the buffer", "0123456789abcdef:1", -ENAMETOOLONG, NULL, NULL},
        {"numeric port does not fit: out of range", "h:1234567890", -ERANGE, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct split_case *c = &cases[i];
        print_message("split: %s\n", c->why);
        char host[16], port[8];
        assert_int_equal(nk_addr_split(c->text, host, sizeof(host), port, sizeof(port)), c->rc);
        if (c->rc == 0) {
            assert_string_equal(host, c->host);
            assert_string_equal(port, c->port);
        }
    }
}

static void test_format(void **state)
{
    (void)state;
    nk_addr a;
    char buf[NK_ADDR_STRLEN];
    assert_int_equal(nk_addr_parse("[fe80::1%lo]:80", 0, &a), 0);
    assert_int_equal(nk_addr_format_host(&a, buf, sizeof(buf)), 10);
    assert_string_equal(buf, "fe80::1%lo");
    assert_int_equal(nk_addr_parse("unix:@name", 0, &a), 0);
    assert_int_equal(nk_addr_format_host(&a, buf, sizeof(buf)), 5);
    assert_string_equal(buf, "@name");
    /* Too small: -ENOSPC, truncated but terminated. */
    assert_int_equal(nk_addr_parse("127.0.0.1:8080", 0, &a), 0);
    char small[6];
    memset(small, 'X', sizeof(small));
    assert_int_equal(nk_addr_format(&a, small, sizeof(small)), -ENOSPC);
    assert_string_equal(small, "127.0");
    assert_int_equal(nk_addr_format(&a, buf, 15), 14); /* exactly enough */
    /* An unknown family is refused, not printed as garbage. */
    memset(&a, 0, sizeof(a));
    assert_int_equal(nk_addr_format(&a, buf, sizeof(buf)), -EAFNOSUPPORT);
    assert_string_equal(buf, "");
}

struct class_case {
    const char *why;
    const char *text;
    int wildcard;
    int loopback;
};

static void test_classify(void **state)
{
    (void)state;
    const struct class_case cases[] = {
        {"IPv4 any", "0.0.0.0:1", 1, 0},
        {"IPv6 any", "[::]:1", 1, 0},
        {"IPv4 loopback", "127.0.0.1:1", 0, 1},
        {"all of 127/8 is loopback", "127.9.8.7:1", 0, 1},
        {"IPv6 loopback", "[::1]:1", 0, 1},
        {"mapped IPv4 loopback", "[::ffff:127.0.0.1]:1", 0, 1},
        {"ordinary address", "192.0.2.1:1", 0, 0},
        {"unix is neither", "unix:/x", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("classify: %s\n", cases[i].why);
        nk_addr a;
        assert_int_equal(nk_addr_parse(cases[i].text, 0, &a), 0);
        assert_int_equal(nk_addr_is_wildcard(&a), cases[i].wildcard);
        assert_int_equal(nk_addr_is_loopback(&a), cases[i].loopback);
    }
    nk_addr a, b;
    assert_int_equal(nk_addr_parse("unix:/x", 0, &a), 0);
    assert_int_equal(nk_addr_parse("unix:@x", 0, &b), 0);
    assert_false(nk_addr_equal(&a, &b)); /* a path and an abstract name are different */
    assert_int_equal(nk_addr_parse("1.2.3.4:1", 0, &a), 0);
    assert_int_equal(nk_addr_parse("[::ffff:1.2.3.4]:1", 0, &b), 0);
    assert_false(nk_addr_equal(&a, &b)); /* different families */
}

struct resolve_case {
    const char *why;
    const char *text;
    int passive;
    int rc;   /* > 0: at least this many results; <= 0: this error (1: GAI-range error) */
    int port;
};

static void test_resolve(void **state)
{
    (void)state;
    const struct resolve_case cases[] = {
        {"name and port", "localhost:80", 0, 1, 80},
        {"service name for the port", "localhost:http", 0, 1, 80},
        {"numeric needs no resolver", "127.0.0.1:7", 0, 1, 7},
        {"bracketed IPv6", "[::1]:9", 0, 1, 9},
        {"bare port", "8080", 1, 1, 8080},
        {"unix", "unix:/tmp/x", 0, 1, -EAFNOSUPPORT}, /* no port */
        {"port out of range with a name", "localhost:99999", 0, -ERANGE, 0},
        {"name without port", "localhost", 0, -EINVAL, 0},
        {"bracketed name", "[localhost]:80", 0, -EINVAL, 0},
        {"unknown service", "localhost:no-such-service-xyz", 0, -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct resolve_case *c = &cases[i];
        print_message("resolve: %s\n", c->why);
        nk_addr out[8];
        int n = nk_addr_resolve(c->text, SOCK_STREAM, c->passive, out, 8);
        if (c->rc == -1) {
            if (!NK_ERR_IS_GAI(n))
                fail_msg("%s: want a resolver error, got %d", c->why, n);
            assert_non_null(nk_strerror(n));
            continue;
        }
        if (c->rc <= 0) {
            assert_int_equal(n, c->rc);
            continue;
        }
        if (n < c->rc)
            fail_msg("%s: got %d (%s)", c->why, n, nk_strerror(n));
        int loop = 0;
        for (int k = 0; k < n; k++) {
            assert_int_equal(nk_addr_port(&out[k]), c->port);
            loop |= nk_addr_is_loopback(&out[k]);
            for (int j = 0; j < k; j++)
                assert_false(nk_addr_equal(&out[j], &out[k])); /* no duplicates */
        }
        if (strncmp(c->text, "localhost", 9) == 0)
            assert_true(loop); /* 127.0.0.1 or ::1, whichever the resolver lists */
    }
    /* max bounds the count. */
    nk_addr one;
    assert_int_equal(nk_addr_resolve("localhost:80", 0, 0, &one, 1), 1);
    assert_int_equal(nk_addr_resolve("localhost:80", 0, 0, &one, 0), -EINVAL);
}

static void test_reverse(void **state)
{
    (void)state;
    nk_addr a;
    char name[256];
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &a), 0);
    int rc = nk_addr_reverse(&a, name, sizeof(name));
    /* /etc/hosts normally names 127.0.0.1; if not, the error must be a resolver error. */
    if (rc == 0)
        assert_true(name[0] != '\0');
    else
        assert_true(NK_ERR_IS_GAI(rc));
    assert_int_equal(nk_addr_parse("unix:/x", 0, &a), 0);
    assert_int_equal(nk_addr_reverse(&a, name, sizeof(name)), -EAFNOSUPPORT);
}

/* Wait until fd is readable (bounded), so tests never spin or sleep blindly. */
static void wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
}

static int is_nonblock_cloexec(int fd)
{
    return (fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

/* Listen on text, connect to what the kernel chose, accept, exchange a byte each way. */
static void tcp_pair(const char *text)
{
    nk_addr a, local, peer, cl, cpeer;
    assert_int_equal(nk_addr_parse(text, 0, &a), 0);
    int lfd = nk_sock_listen(&a, SOCK_STREAM, 0, 0);
    if (lfd == -EAFNOSUPPORT || lfd == -EADDRNOTAVAIL) {
        print_message("skipping %s: %s\n", text, nk_strerror(lfd));
        return;
    }
    assert_true(lfd >= 0);
    assert_true(is_nonblock_cloexec(lfd));
    assert_int_equal(nk_sock_accept(lfd, &peer), -EAGAIN); /* nothing pending yet */
    assert_int_equal(nk_sock_local(lfd, &local), 0);
    assert_true(nk_addr_port(&local) > 0);
    int cfd = nk_sock_connect_wait(&local, SOCK_STREAM, 0, 5000);
    assert_true(cfd >= 0);
    assert_true(is_nonblock_cloexec(cfd));
    wait_readable(lfd);
    int sfd = nk_sock_accept(lfd, &peer);
    assert_true(sfd >= 0);
    assert_true(is_nonblock_cloexec(sfd));
    assert_int_equal(nk_sock_local(cfd, &cl), 0);
    assert_int_equal(nk_sock_peer(cfd, &cpeer), 0);
    assert_true(nk_addr_equal(&peer, &cl));    /* server sees the client's address */
    assert_true(nk_addr_equal(&cpeer, &local)); /* client is connected to the listener */
    assert_int_equal(nk_sock_error(cfd), 0);
    assert_int_equal(write(cfd, "c", 1), 1);
    wait_readable(sfd);
    char ch = 0;
    assert_int_equal(read(sfd, &ch, 1), 1);
    assert_int_equal(ch, 'c');
    close(sfd);
    close(cfd);
    close(lfd);
}

static void test_tcp_v4(void **state)
{
    (void)state;
    tcp_pair("127.0.0.1:0");
}

static void test_tcp_v6(void **state)
{
    (void)state;
    tcp_pair("[::1]:0");
}

static void test_connect_refused(void **state)
{
    (void)state;
    nk_addr a, local;
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &a), 0);
    /* Learn a free port by binding it, then close: nothing listens there any more. */
    int lfd = nk_sock_listen(&a, SOCK_STREAM, 0, 0);
    assert_true(lfd >= 0);
    assert_int_equal(nk_sock_local(lfd, &local), 0);
    close(lfd);
    assert_int_equal(nk_sock_connect_wait(&local, SOCK_STREAM, 0, 5000), -ECONNREFUSED);
    /* The asynchronous form reports the same through nk_sock_error. */
    int pending = -1;
    int fd = nk_sock_connect(&local, SOCK_STREAM, 0, &pending);
    if (fd >= 0) {
        assert_true(pending == 0 || pending == 1);
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        assert_int_equal(poll(&p, 1, 5000), 1);
        assert_int_equal(nk_sock_error(fd), -ECONNREFUSED);
        close(fd);
    } else {
        assert_int_equal(fd, -ECONNREFUSED);
    }
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_connect_timeout(void **state)
{
    (void)state;
    nk_addr a, local;
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &a), 0);
    /* A listener that never accepts, with a backlog of 1: once its queue is full the kernel
     * drops further SYNs, so a connect can only time out. */
    int lfd = nk_sock_listen(&a, SOCK_STREAM, 0, 1);
    assert_true(lfd >= 0);
    assert_int_equal(nk_sock_local(lfd, &local), 0);
    int fds[8], nfds = 0, timed_out = 0;
    for (int i = 0; i < 8 && !timed_out; i++) {
        long long t0 = mono_ms();
        int fd = nk_sock_connect_wait(&local, SOCK_STREAM, 0, 200);
        if (fd >= 0) {
            fds[nfds++] = fd;
            continue;
        }
        assert_int_equal(fd, -ETIMEDOUT);
        assert_true(mono_ms() - t0 >= 150); /* it waited, roughly as long as asked */
        timed_out = 1;
    }
    assert_true(timed_out);
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    close(lfd);
}

static void test_v6only_and_dualstack(void **state)
{
    (void)state;
    nk_addr any6, local;
    assert_int_equal(nk_addr_parse("[::]:0", 0, &any6), 0);
    int lfd = nk_sock_listen(&any6, SOCK_STREAM, NK_SOCK_V6ONLY, 0);
    if (lfd == -EAFNOSUPPORT) {
        skip();
        return;
    }
    assert_true(lfd >= 0);
    int v = -1;
    assert_int_equal(nk_sockopt_get(lfd, "IPV6_V6ONLY", &v), 0);
    assert_int_equal(v, 1);
    close(lfd);
    lfd = nk_sock_listen(&any6, SOCK_STREAM, 0, 0);
    assert_true(lfd >= 0);
    assert_int_equal(nk_sockopt_get(lfd, "IPV6_V6ONLY", &v), 0);
    assert_int_equal(v, 0); /* dual-stack whatever the sysctl says */
    /* An IPv4 client reaches the [::] listener. */
    assert_int_equal(nk_sock_local(lfd, &local), 0);
    nk_addr v4;
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &v4), 0);
    nk_addr_set_port(&v4, nk_addr_port(&local));
    int cfd = nk_sock_connect_wait(&v4, SOCK_STREAM, 0, 5000);
    assert_true(cfd >= 0);
    wait_readable(lfd);
    nk_addr peer;
    int sfd = nk_sock_accept(lfd, &peer);
    assert_true(sfd >= 0);
    assert_true(nk_addr_is_loopback(&peer)); /* ::ffff:127.0.0.1 */
    close(sfd);
    close(cfd);
    close(lfd);
}

static void test_reuseport(void **state)
{
    (void)state;
    nk_addr a, local;
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &a), 0);
    int l1 = nk_sock_listen(&a, SOCK_STREAM, NK_SOCK_REUSEPORT, 16);
    assert_true(l1 >= 0);
    assert_int_equal(nk_sock_local(l1, &local), 0);
    int l2 = nk_sock_listen(&local, SOCK_STREAM, NK_SOCK_REUSEPORT, 16);
    assert_true(l2 >= 0); /* both share the port */
    int v = 0;
    assert_int_equal(nk_sockopt_get(l2, "SO_REUSEPORT", &v), 0);
    assert_int_equal(v, 1);
    int l3 = nk_sock_listen(&local, SOCK_STREAM, 0, 16);
    assert_int_equal(l3, -EADDRINUSE); /* without the flag the port is taken */
    close(l1);
    close(l2);
}

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/nk-test-net-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
}

static void test_unix_stream(void **state)
{
    (void)state;
    make_tmpdir();
    char text[160], path[128];
    snprintf(path, sizeof(path), "%s/s.sock", tmpdir);
    snprintf(text, sizeof(text), "unix:%s", path);
    nk_addr a, local;
    assert_int_equal(nk_addr_parse(text, 0, &a), 0);

    /* A stale file: a socket bound and closed without unlinking. */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(stale >= 0);
    assert_int_equal(bind(stale, &a.u.sa, a.len), 0);
    close(stale);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);

    int lfd = nk_sock_listen(&a, SOCK_STREAM, 0, 0);
    assert_true(lfd >= 0); /* the stale file was replaced */
    assert_int_equal(nk_sock_local(lfd, &local), 0);
    char buf[NK_ADDR_STRLEN];
    assert_true(nk_addr_format(&local, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, text);

    /* Something answers now: a second listener must not steal the path. */
    assert_int_equal(nk_sock_listen(&a, SOCK_STREAM, 0, 0), -EADDRINUSE);
    /* The probe that found it alive was a connection, closed at once: the server sees EOF. */
    wait_readable(lfd);
    int sfd = nk_sock_accept(lfd, NULL);
    assert_true(sfd >= 0);
    wait_readable(sfd);
    char ch;
    assert_int_equal(read(sfd, &ch, 1), 0);
    close(sfd);
    int cfd = nk_sock_connect_wait(&a, SOCK_STREAM, 0, 5000);
    assert_true(cfd >= 0); /* the first listener still owns the path */
    wait_readable(lfd);
    sfd = nk_sock_accept(lfd, NULL);
    assert_true(sfd >= 0);
    assert_int_equal(write(cfd, "u", 1), 1);
    wait_readable(sfd);
    assert_int_equal(read(sfd, &ch, 1), 1);
    assert_int_equal(ch, 'u');
    close(sfd);
    close(cfd);
    close(lfd);

    /* A file that is not a socket is never deleted. */
    unlink(path);
    int f = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(f >= 0);
    close(f);
    assert_int_equal(nk_sock_listen(&a, SOCK_STREAM, 0, 0), -EADDRINUSE);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(path);
    rmdir(tmpdir);
}

static void test_unix_abstract(void **state)
{
    (void)state;
    char text[64];
    snprintf(text, sizeof(text), "unix:@netkit-test-%d", (int)getpid());
    nk_addr a, local;
    assert_int_equal(nk_addr_parse(text, 0, &a), 0);
    int lfd = nk_sock_listen(&a, SOCK_STREAM, 0, 0);
    assert_true(lfd >= 0);
    assert_int_equal(nk_sock_local(lfd, &local), 0);
    assert_true(nk_addr_equal(&local, &a));
    char buf[NK_ADDR_STRLEN];
    nk_addr_format(&local, buf, sizeof(buf));
    assert_string_equal(buf, text);
    /* No stale-file logic for abstract names: in use is in use. */
    assert_int_equal(nk_sock_listen(&a, SOCK_STREAM, 0, 0), -EADDRINUSE);
    int cfd = nk_sock_connect_wait(&a, SOCK_STREAM, 0, 5000);
    assert_true(cfd >= 0);
    wait_readable(lfd);
    int sfd = nk_sock_accept(lfd, NULL);
    assert_true(sfd >= 0);
    close(sfd);
    close(cfd);
    close(lfd);
}

static void test_udp(void **state)
{
    (void)state;
    nk_addr a, local, cl, from;
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &a), 0);
    int sfd = nk_sock_listen(&a, SOCK_DGRAM, 0, 0);
    assert_true(sfd >= 0);
    assert_int_equal(nk_sock_local(sfd, &local), 0);
    assert_true(nk_addr_port(&local) > 0);
    int in_progress = -1;
    int cfd = nk_sock_connect(&local, SOCK_DGRAM, NK_SOCK_BROADCAST, &in_progress);
    assert_true(cfd >= 0);
    assert_int_equal(in_progress, 0); /* datagram connect completes at once */
    int v = 0;
    assert_int_equal(nk_sockopt_get(cfd, "SO_BROADCAST", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(send(cfd, "ping", 4, 0), 4);
    wait_readable(sfd);
    char buf[16];
    socklen_t fl = sizeof(from.u);
    memset(&from, 0, sizeof(from));
    assert_int_equal(recvfrom(sfd, buf, sizeof(buf), 0, &from.u.sa, &fl), 4);
    from.len = fl;
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(nk_sock_local(cfd, &cl), 0);
    assert_true(nk_addr_equal(&from, &cl));
    close(cfd);
    close(sfd);
}

struct opt_case {
    const char *why;
    const char *set;
    int rc;
    const char *get;   /* option to read back (NULL: none) */
    int value;         /* expected value */
    int at_least;      /* 1: value is a lower bound (the kernel may round up) */
};

static void test_sockopt_table(void **state)
{
    (void)state;
    const struct opt_case cases[] = {
        {"boolean by word", "TCP_NODELAY=on", 0, "TCP_NODELAY", 1, 0},
        {"names ignore case", "tcp_nodelay=0", 0, "TCP_NODELAY", 0, 0},
        {"yes is true", "SO_KEEPALIVE=yes", 0, "so_keepalive", 1, 0},
        {"false is off", "SO_KEEPALIVE=false", 0, "SO_KEEPALIVE", 0, 0},
        {"integer option", "TCP_KEEPIDLE=30", 0, "TCP_KEEPIDLE", 30, 0},
        {"buffer size may be rounded up", "SO_RCVBUF=65536", 0, "SO_RCVBUF", 65536, 1},
        {"linger time in seconds", "SO_LINGER=5", 0, "SO_LINGER", 5, 0},
        {"linger off", "SO_LINGER=off", 0, "SO_LINGER", -1, 0},
        {"IP level option", "IP_TTL=7", 0, "IP_TTL", 7, 0},
        {"unknown name", "SO_NOPE=1", -ENOENT, NULL, 0, 0},
        {"no value", "IP_TTL", -EINVAL, NULL, 0, 0},
        {"empty value", "IP_TTL=", -EINVAL, NULL, 0, 0},
        {"words only for booleans", "SO_RCVBUF=on", -EINVAL, NULL, 0, 0},
        {"not a boolean word", "TCP_NODELAY=maybe", -EINVAL, NULL, 0, 0},
        {"no spaces", "IP_TTL= 7", -EINVAL, NULL, 0, 0},
        {"no hex", "IP_TTL=0x7", -EINVAL, NULL, 0, 0},
        {"beyond int", "IP_TTL=99999999999", -EINVAL, NULL, 0, 0},
        {"linger needs a time", "SO_LINGER=on", -EINVAL, NULL, 0, 0},
        {"the kernel's own range check", "IP_TTL=300", -EINVAL, NULL, 0, 0},
    };
    nk_addr a;
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &a), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct opt_case *c = &cases[i];
        print_message("sockopt: %s\n", c->why);
        int rc = nk_sockopt_set(fd, c->set);
        if (rc != c->rc)
            fail_msg("%s: \"%s\" gave %d (%s)", c->why, c->set, rc, nk_errname(rc));
        if (!c->get)
            continue;
        int v = -12345;
        assert_int_equal(nk_sockopt_get(fd, c->get, &v), 0);
        if (c->at_least)
            assert_true(v >= c->value);
        else
            assert_int_equal(v, c->value);
    }
    int v;
    assert_int_equal(nk_sockopt_get(fd, "NO_SUCH", &v), -ENOENT);
    /* Every listed name is known to get (the kernel may still refuse some on this socket). */
    const char *const *names = nk_sockopt_names();
    size_t count = 0;
    for (; names[count] && count < 100; count++)
        assert_int_not_equal(nk_sockopt_get(fd, names[count], &v), -ENOENT);
    assert_true(count >= 20);
    close(fd);
}

static void test_sock_helpers(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int v;
    assert_int_equal(nk_sock_set_nodelay(fd, 1), 0);
    assert_int_equal(nk_sockopt_get(fd, "TCP_NODELAY", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(nk_sock_set_keepalive(fd, 1, 42), 0);
    assert_int_equal(nk_sockopt_get(fd, "SO_KEEPALIVE", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(nk_sockopt_get(fd, "TCP_KEEPIDLE", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(nk_sock_set_bufsizes(fd, 0, 32768), 0);
    assert_int_equal(nk_sockopt_get(fd, "SO_SNDBUF", &v), 0);
    assert_true(v >= 32768);
    assert_int_equal(nk_sock_set_broadcast(fd, 1), 0);
    assert_int_equal(nk_sockopt_get(fd, "SO_BROADCAST", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(nk_sock_set_nonblock(fd, 1), 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_int_equal(nk_sock_set_nonblock(fd, 0), 0);
    assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
    close(fd);
    assert_int_equal(nk_sock_set_nodelay(fd, 1), -EBADF);
    assert_int_equal(nk_sock_error(fd), -EBADF);
    assert_int_equal(nk_sock_accept(fd, NULL), -EBADF);
}

/* Address classification: a row for each block and its edges, both families. */
static void test_addr_kind(void **state)
{
    (void)state;
    static const struct {
        const char *addr;
        int kind;
        const char *text;
    } t[] = {
        {"255.255.255.255:0", NK_ADDR_BROADCAST, "limited broadcast"},
        {"255.255.255.254:0", NK_ADDR_RESERVED, "reserved"},
        {"240.0.0.0:0", NK_ADDR_RESERVED, "reserved"},
        {"0.0.0.0:0", NK_ADDR_UNSPECIFIED, "unspecified"},
        {"0.1.2.3:0", NK_ADDR_THIS_NETWORK, "this network (RFC 1122)"},
        {"127.0.0.1:0", NK_ADDR_LOOPBACK, "loopback"},
        {"127.255.255.255:0", NK_ADDR_LOOPBACK, "loopback"},
        {"10.1.2.3:0", NK_ADDR_PRIVATE, "private (RFC 1918)"},
        {"172.16.0.1:0", NK_ADDR_PRIVATE, "private (RFC 1918)"},
        {"172.31.255.255:0", NK_ADDR_PRIVATE, "private (RFC 1918)"},
        {"172.32.0.1:0", NK_ADDR_GLOBAL, "global"},
        {"172.15.255.255:0", NK_ADDR_GLOBAL, "global"},
        {"192.168.1.1:0", NK_ADDR_PRIVATE, "private (RFC 1918)"},
        {"100.64.0.1:0", NK_ADDR_SHARED, "shared address space (RFC 6598)"},
        {"100.127.255.255:0", NK_ADDR_SHARED, "shared address space (RFC 6598)"},
        {"100.128.0.0:0", NK_ADDR_GLOBAL, "global"},
        {"169.254.1.1:0", NK_ADDR_LINK_LOCAL, "link-local"},
        {"192.0.2.7:0", NK_ADDR_DOCUMENTATION, "documentation (RFC 5737)"},
        {"198.51.100.7:0", NK_ADDR_DOCUMENTATION, "documentation (RFC 5737)"},
        {"203.0.113.7:0", NK_ADDR_DOCUMENTATION, "documentation (RFC 5737)"},
        {"198.19.255.255:0", NK_ADDR_BENCHMARKING, "benchmarking (RFC 2544)"},
        {"198.20.0.0:0", NK_ADDR_GLOBAL, "global"},
        {"224.0.0.1:0", NK_ADDR_MULTICAST, "multicast"},
        {"239.255.255.255:0", NK_ADDR_MULTICAST, "multicast"},
        {"8.8.8.8:0", NK_ADDR_GLOBAL, "global"},
        {"[::]:0", NK_ADDR_UNSPECIFIED, "unspecified"},
        {"[::1]:0", NK_ADDR_LOOPBACK, "loopback"},
        {"[::2]:0", NK_ADDR_GLOBAL, "global"},
        {"[::ffff:10.0.0.1]:0", NK_ADDR_V4MAPPED, "IPv4-mapped"},
        {"[ff02::1]:0", NK_ADDR_MULTICAST, "multicast"},
        {"[fe80::1]:0", NK_ADDR_LINK_LOCAL, "link-local"},
        {"[febf::1]:0", NK_ADDR_LINK_LOCAL, "link-local"},
        {"[fec0::1]:0", NK_ADDR_GLOBAL, "global"},
        {"[fd00::1]:0", NK_ADDR_PRIVATE, "unique local (RFC 4193)"},
        {"[fc00::1]:0", NK_ADDR_PRIVATE, "unique local (RFC 4193)"},
        {"[2001:db8::1]:0", NK_ADDR_DOCUMENTATION, "documentation (RFC 3849)"},
        {"[2001:db9::1]:0", NK_ADDR_GLOBAL, "global"},
        {"[2002:c000:204::1]:0", NK_ADDR_6TO4, "6to4"},
        {"[2606:4700::1111]:0", NK_ADDR_GLOBAL, "global"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        nk_addr a;
        assert_int_equal(nk_addr_parse(t[i].addr, 0, &a), 0);
        if (nk_addr_kind(&a) != t[i].kind || strcmp(nk_addr_kind_text(&a), t[i].text) != 0)
            fail_msg("%s: kind %d \"%s\", expected %d \"%s\"", t[i].addr, nk_addr_kind(&a),
                     nk_addr_kind_text(&a), t[i].kind, t[i].text);
    }
    nk_addr u;
    assert_int_equal(nk_addr_parse("unix:/tmp/x", 0, &u), 0);
    assert_int_equal(nk_addr_kind(&u), -EAFNOSUPPORT);
    assert_string_equal(nk_addr_kind_text(&u), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_details),
        cmocka_unit_test(test_split_table),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_reverse),
        cmocka_unit_test(test_tcp_v4),
        cmocka_unit_test(test_tcp_v6),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_v6only_and_dualstack),
        cmocka_unit_test(test_reuseport),
        cmocka_unit_test(test_unix_stream),
        cmocka_unit_test(test_unix_abstract),
        cmocka_unit_test(test_udp),
        cmocka_unit_test(test_sockopt_table),
        cmocka_unit_test(test_sock_helpers),
        cmocka_unit_test(test_addr_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
