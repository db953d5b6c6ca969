/* netkit bench echo: a ping-pong load generator for echo servers, on one event loop.
 *
 * Each of N connections sends a message of SIZE bytes, waits for all of it to come back, and
 * sends the next (with --pipeline K, up to K messages are in flight per connection). Every
 * byte that comes back is checked: message (connection id, sequence) has its own content, so
 * mixed-up, repeated or corrupted echoes are caught, not counted. Round-trip times (from the
 * first byte sent to the last byte back, CLOCK_MONOTONIC) go into a log-linear histogram of
 * fixed size (latency_hist.c), so a long run needs no more memory than a short one.
 *
 * UDP: each "connection" is a connected UDP socket and each message one datagram. A datagram
 * without an answer after BENCH_UDP_RETRY_MS is sent again and counted as a retry; a
 * connection that hears nothing for BENCH_UDP_SILENCE_MS fails the run.
 */
#include "cli.h"
#include "latency_hist.h"
#include "opt.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BENCH_HDR 8                /* id and sequence at the start of messages this long */
#define BENCH_SPREAD 256           /* content offsets: neighbouring messages differ */
#define BENCH_READ_MAX (64 * 1024) /* one read */
#define BENCH_UDP_MAX 65507        /* largest UDP payload over IPv4 */
#define BENCH_UDP_RETRY_MS 200
#define BENCH_UDP_SILENCE_MS 3000
#define BENCH_CONNECT_MS 10000

typedef enum { PROTO_TCP, PROTO_UDP, PROTO_UNIX } bench_proto;

typedef struct bench bench;

typedef struct bslot { /* udp: a datagram in flight */
    uint64_t seq, sent_ns;
    int active;
} bslot;

typedef struct bconn {
    nk_io io;
    bench *b;
    uint32_t id;
    int connected;
    unsigned interest;
    uint64_t sent;      /* stream: messages started (the last maybe in part) */
    size_t send_off;    /* stream: bytes of message `sent` written; 0 between messages */
    uint64_t recvd;     /* messages completed */
    size_t recv_off;    /* stream: bytes of message `recvd` received */
    uint64_t *ts;       /* stream: send time of message seq at [seq % pipeline] */
    bslot *slots;       /* udp: pipeline slots */
    uint64_t next_seq;  /* udp */
    uint64_t last_reply_ns;
} bconn;

struct bench {
    const char *cmd;
    nk_loop *loop;
    bench_proto proto;
    nk_addr addr;
    char addr_text[NK_ADDR_STRLEN];
    long nconns, size, pipeline, duration_ms;
    int json;
    bconn *conns;
    long nconnected;
    char *block; /* size + BENCH_SPREAD bytes of pseudo-random content */
    char *rbuf;
    nk_timer timer, connect_timer, retry; /* duration, connection phase, udp retries */
    cli_stop_signals stop_signals;
    int running, failed, interrupted;
    uint64_t start_ns, stop_ns;
    uint64_t messages, retries, duplicates;
    lat_hist lat;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void bench_fail(bench *b, const bconn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bench_fail(bench *b, const bconn *c, const char *fmt, ...)
{
    if (b->failed)
        return;
    b->failed = 1;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c)
        cli_fail(b->cmd, "%s: connection %u: %s", b->addr_text, c->id, msg);
    else
        cli_fail(b->cmd, "%s: %s", b->addr_text, msg);
    nk_loop_stop(b->loop);
}

/* ---- message content ------------------------------------------------------------------------
 * Byte p of message (id, seq): the id and the sequence (big-endian) in the first 8 bytes when
 * the message is that long, then block[offset + p] with an offset that depends on both. */

static void msg_header(uint32_t id, uint64_t seq, unsigned char hdr[BENCH_HDR])
{
    uint32_t s = (uint32_t)seq;
    for (int i = 0; i < 4; i++) {
        hdr[i] = (unsigned char)(id >> (24 - 8 * i));
        hdr[4 + i] = (unsigned char)(s >> (24 - 8 * i));
    }
}

static const char *msg_block(const bench *b, uint32_t id, uint64_t seq)
{
    return b->block + ((id * 7u + (uint32_t)seq * 13u) % BENCH_SPREAD);
}

/* iovecs for bytes [from, size) of a message; hdr is the caller's storage. */
static int msg_iov(const bench *b, uint32_t id, uint64_t seq, size_t from, unsigned char *hdr,
                   struct iovec iov[2])
{
    size_t size = (size_t)b->size, hlen = size >= BENCH_HDR ? BENCH_HDR : 0;
    int n = 0;
    msg_header(id, seq, hdr);
    if (from < hlen) {
        iov[n].iov_base = hdr + from;
        iov[n++].iov_len = hlen - from;
        from = hlen;
    }
    iov[n].iov_base = (char *)msg_block(b, id, seq) + from;
    iov[n++].iov_len = size - from;
    return n;
}

/* Do data[0..n) equal bytes [pos, pos + n) of message (id, seq)? */
static int msg_equal(const bench *b, uint32_t id, uint64_t seq, size_t pos, const char *data,
                     size_t n)
{
    unsigned char hdr[BENCH_HDR];
    struct iovec iov[2];
    int k = msg_iov(b, id, seq, pos, hdr, iov);
    for (int i = 0; i < k && n > 0; i++) {
        size_t take = n < iov[i].iov_len ? n : iov[i].iov_len;
        if (memcmp(iov[i].iov_base, data, take) != 0)
            return 0;
        data += take;
        n -= take;
    }
    return 1;
}

/* ---- streams (tcp, unix) ---------------------------------------------------------------------- */

static void set_interest(bconn *c, unsigned want)
{
    if (want == c->interest)
        return;
    int rc = nk_io_start(c->b->loop, &c->io, want);
    if (rc < 0)
        bench_fail(c->b, c, "cannot watch the socket: %s", nk_strerror(rc));
    c->interest = want;
}

static void stream_send(bconn *c)
{
    bench *b = c->b;
    while (b->running && !b->failed &&
           (c->send_off > 0 || c->sent - c->recvd < (uint64_t)b->pipeline)) {
        unsigned char hdr[BENCH_HDR];
        struct iovec iov[2];
        int k = msg_iov(b, c->id, c->sent, c->send_off, hdr, iov);
        if (c->send_off == 0)
            c->ts[c->sent % (uint64_t)b->pipeline] = now_ns();
        ssize_t n = writev(c->io.fd, iov, k);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_interest(c, NK_READ | NK_WRITE);
                return;
            }
            bench_fail(b, c, "send: %s", strerror(errno));
            return;
        }
        c->send_off += (size_t)n;
        if (c->send_off == (size_t)b->size) {
            c->sent++;
            c->send_off = 0;
        }
    }
    set_interest(c, NK_READ);
}

static void stream_recv(bconn *c)
{
    bench *b = c->b;
    for (int round = 0; round < 4 && !b->failed; round++) {
        ssize_t n = read(c->io.fd, b->rbuf, BENCH_READ_MAX);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            bench_fail(b, c, "receive: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            bench_fail(b, c, "the server closed the connection");
            return;
        }
        const char *p = b->rbuf;
        size_t left = (size_t)n;
        uint64_t now = now_ns();
        while (left > 0) {
            size_t take = (size_t)b->size - c->recv_off;
            if (take > left)
                take = left;
            /* Never more back than was sent. */
            if (c->recvd > c->sent ||
                (c->recvd == c->sent && c->recv_off + take > c->send_off)) {
                bench_fail(b, c, "received more bytes than were sent");
                return;
            }
            if (!msg_equal(b, c->id, c->recvd, c->recv_off, p, take)) {
                bench_fail(b, c, "wrong bytes echoed in message %llu",
                           (unsigned long long)c->recvd);
                return;
            }
            c->recv_off += take;
            p += take;
            left -= take;
            if (c->recv_off == (size_t)b->size) {
                if (b->running) {
                    lat_hist_add(&b->lat, now - c->ts[c->recvd % (uint64_t)b->pipeline]);
                    b->messages++;
                }
                c->recvd++;
                c->recv_off = 0;
            }
        }
        if (b->running)
            stream_send(c);
        if ((size_t)n < BENCH_READ_MAX)
            return;
    }
}

/* ---- datagrams ---------------------------------------------------------------------------------- */

static void udp_send(bconn *c, bslot *s)
{
    bench *b = c->b;
    unsigned char hdr[BENCH_HDR];
    struct iovec iov[2];
    int k = msg_iov(b, c->id, s->seq, 0, hdr, iov);
    s->sent_ns = now_ns();
    s->active = 1;
    ssize_t n;
    do
        n = writev(c->io.fd, iov, k);
    while (n < 0 && errno == EINTR);
    /* A full socket buffer loses this datagram like the network would: the retry resends. */
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
        bench_fail(b, c, "send: %s", strerror(errno));
}

static void udp_recv(bconn *c)
{
    bench *b = c->b;
    for (int round = 0; round < 64 && !b->failed; round++) {
        ssize_t n = recv(c->io.fd, b->rbuf, BENCH_READ_MAX, MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            bench_fail(b, c, "receive: %s", strerror(errno));
            return;
        }
        uint64_t now = now_ns();
        c->last_reply_ns = now;
        if (n != b->size) {
            bench_fail(b, c, "echoed a datagram of %zd bytes, sent %ld", n, b->size);
            return;
        }
        bslot *match = NULL;
        for (long i = 0; i < b->pipeline && !match; i++) {
            bslot *s = &c->slots[i];
            if (s->active && msg_equal(b, c->id, s->seq, 0, b->rbuf, (size_t)n))
                match = s;
        }
        if (!match) {
            /* A late copy of a datagram that was retried and answered already is fine; with
             * the header, anything else is provably wrong. (Messages shorter than the header
             * cannot be told apart so well: they are counted as duplicates.) */
            int dup = 1;
            if (b->size >= BENCH_HDR) {
                unsigned char hdr[BENCH_HDR];
                memcpy(hdr, b->rbuf, BENCH_HDR);
                uint32_t seq32 = (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 |
                                 (uint32_t)hdr[6] << 8 | hdr[7];
                uint64_t seq = (c->next_seq & ~(uint64_t)0xffffffff) | seq32;
                if (seq >= c->next_seq)
                    seq -= (uint64_t)1 << 32;
                dup = seq < c->next_seq && msg_equal(b, c->id, seq, 0, b->rbuf, (size_t)n);
            }
            if (!dup) {
                bench_fail(b, c, "wrong bytes echoed");
                return;
            }
            b->duplicates++;
            continue;
        }
        if (b->running) {
            lat_hist_add(&b->lat, now - match->sent_ns);
            b->messages++;
        }
        c->recvd++;
        match->active = 0;
        if (b->running) {
            match->seq = c->next_seq++;
            udp_send(c, match);
        }
    }
}

static void on_retry(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    bench *b = t->data;
    uint64_t now = now_ns();
    for (long i = 0; i < b->nconns && !b->failed; i++) {
        bconn *c = &b->conns[i];
        if (now - c->last_reply_ns > (uint64_t)BENCH_UDP_SILENCE_MS * 1000000u) {
            bench_fail(b, c, "no answer for %d ms", BENCH_UDP_SILENCE_MS);
            return;
        }
        for (long k = 0; k < b->pipeline; k++) {
            bslot *s = &c->slots[k];
            if (s->active && now - s->sent_ns >= (uint64_t)BENCH_UDP_RETRY_MS * 1000000u) {
                b->retries++;
                udp_send(c, s);
            }
        }
    }
}

/* ---- the run ------------------------------------------------------------------------------------ */

static void start_conn(bconn *c)
{
    bench *b = c->b;
    if (b->proto == PROTO_UDP) {
        c->last_reply_ns = now_ns();
        for (long k = 0; k < b->pipeline && !b->failed; k++) {
            c->slots[k].seq = c->next_seq++;
            udp_send(c, &c->slots[k]);
        }
    } else {
        stream_send(c);
    }
}

static void on_duration(nk_loop *loop, nk_timer *t)
{
    bench *b = t->data;
    /* The timer counts from the loop's time, taken when the iteration began; start_ns is the
     * clock read when the last connection came, which on a busy machine can be well after
     * that: measure for the whole duration asked, never less. */
    uint64_t elapsed_ms = (now_ns() - b->start_ns) / 1000000u;
    if (elapsed_ms < (uint64_t)b->duration_ms) {
        nk_timer_start(loop, t, (uint64_t)b->duration_ms - elapsed_ms, 0);
        return;
    }
    b->stop_ns = now_ns();
    b->running = 0;
    nk_loop_stop(loop);
}

static void all_connected(bench *b)
{
    nk_timer_stop(b->loop, &b->connect_timer);
    b->running = 1;
    b->start_ns = now_ns();
    nk_timer_start(b->loop, &b->timer, (uint64_t)b->duration_ms, 0);
    if (b->proto == PROTO_UDP)
        nk_timer_start(b->loop, &b->retry, BENCH_UDP_RETRY_MS / 4, BENCH_UDP_RETRY_MS / 4);
    for (long i = 0; i < b->nconns && !b->failed; i++)
        start_conn(&b->conns[i]);
}

static void on_connect_timeout(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    bench *b = t->data;
    bench_fail(b, NULL, "%ld of %ld connections established within %d ms", b->nconnected,
               b->nconns, BENCH_CONNECT_MS);
}

static void on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    bconn *c = io->data;
    bench *b = c->b;
    if (!c->connected) {
        int err = nk_sock_error(io->fd);
        if (err < 0) {
            bench_fail(b, c, "connect: %s", nk_strerror(err));
            return;
        }
        c->connected = 1;
        set_interest(c, NK_READ);
        if (++b->nconnected == b->nconns)
            all_connected(b);
        return;
    }
    if (b->proto == PROTO_UDP) {
        udp_recv(c);
        return;
    }
    if (events & (NK_READ | NK_ERROR))
        stream_recv(c);
    if (!b->failed && (events & NK_WRITE) && b->running)
        stream_send(c);
}

static int open_conns(bench *b)
{
    int socktype = b->proto == PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
    for (long i = 0; i < b->nconns; i++) {
        bconn *c = &b->conns[i];
        c->b = b;
        c->id = (uint32_t)i;
        int inprog = 0;
        int fd = nk_sock_connect(&b->addr, socktype, 0, &inprog);
        if (fd < 0) {
            bench_fail(b, c, "connect: %s", nk_strerror(fd));
            return -1;
        }
        nk_io_init(&c->io, fd, on_io, c);
        if (socktype == SOCK_STREAM && b->proto == PROTO_TCP)
            nk_sock_set_nodelay(fd, 1);
        c->interest = inprog ? NK_WRITE : NK_READ;
        int rc = nk_io_start(b->loop, &c->io, c->interest);
        if (rc < 0) {
            bench_fail(b, c, "cannot watch fd %d on the %s backend: %s", fd,
                       nk_loop_backend(b->loop), nk_strerror(rc));
            close(fd);
            c->io.fd = -1;
            return -1;
        }
        if (!inprog) {
            c->connected = 1;
            b->nconnected++;
        }
    }
    if (b->nconnected == b->nconns)
        all_connected(b);
    else
        nk_timer_start(b->loop, &b->connect_timer, BENCH_CONNECT_MS, 0);
    return 0;
}

static void on_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)signum;
    bench *b = sig->data;
    b->interrupted = 1;
    if (b->running) {
        b->stop_ns = now_ns();
        b->running = 0;
    }
    nk_loop_stop(loop);
}

static const char *proto_name(bench_proto p)
{
    return p == PROTO_UDP ? "udp" : p == PROTO_UNIX ? "unix" : "tcp";
}

static void report(const bench *b)
{
    double secs = (double)(b->stop_ns - b->start_ns) / 1e9;
    if (secs <= 0)
        secs = 1e-9;
    double rate = (double)b->messages / secs;
    double mbs = (double)b->messages * (double)b->size / secs / 1e6;
    const lat_hist *h = &b->lat;
    double p50 = (double)lat_hist_quantile(h, 0.50) / 1e3, p90 = (double)lat_hist_quantile(h, 0.90) / 1e3,
           p99 = (double)lat_hist_quantile(h, 0.99) / 1e3, mn = (double)h->min / 1e3,
           mx = (double)h->max / 1e3;
    if (b->json) {
        printf("{\"proto\":\"%s\",\"addr\":\"", proto_name(b->proto));
        for (const char *p = b->addr_text; *p; p++)
            printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
        printf("\",\"backend\":\"%s\",\"conns\":%ld,\"size\":%ld,\"pipeline\":%ld,"
               "\"duration_s\":%.6f,\"messages\":%llu,\"messages_per_s\":%.1f,"
               "\"mb_per_s\":%.3f,\"retries\":%llu,\"duplicates\":%llu,"
               "\"latency_us\":{\"min\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
               "\"max\":%.1f}}\n",
               nk_loop_backend(b->loop), b->nconns, b->size, b->pipeline, secs,
               (unsigned long long)b->messages, rate, mbs, (unsigned long long)b->retries,
               (unsigned long long)b->duplicates, mn, p50, p90, p99, mx);
        return;
    }
    printf("bench echo %s %s: %ld connections, %ld-byte messages, pipeline %ld, %.2f s on %s\n",
           proto_name(b->proto), b->addr_text, b->nconns, b->size, b->pipeline, secs,
           nk_loop_backend(b->loop));
    printf("messages:   %llu (%.1f messages/s)\n", (unsigned long long)b->messages, rate);
    printf("throughput: %.3f MB/s echoed (10^6 bytes of payload each way)\n", mbs);
    if (b->proto == PROTO_UDP)
        printf("retries:    %llu (datagrams resent after %d ms), %llu late duplicates\n",
               (unsigned long long)b->retries, BENCH_UDP_RETRY_MS,
               (unsigned long long)b->duplicates);
    printf("latency us: min %.1f  p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", mn, p50, p90, p99,
           mx);
}

enum { BENCH_OPT_JSON = CLI_OPT_LONG };

static const cli_opt bench_echo_opts[] = {
    {"conns", 'c', "N", "connections (default 64, at most 100000)"},
    {"size", 's', "BYTES", "message size (default 64, at most 16777216; udp at most 65507)"},
    {"duration", 'd', "SEC", "how long to measure, in seconds (default 5, at most 3600)"},
    {"proto", 'p', "PROTO", "tcp (default; unix for a unix: ADDR), udp or unix"},
    {"pipeline", 'k', "K", "messages in flight per connection (default 1, at most 1024)"},
    {"backend", 'b', "NAME", "event loop backend: epoll, uring, poll or select (default: "
                             "$NETKIT_BACKEND, else epoll)"},
    {"json", BENCH_OPT_JSON, NULL, "print one JSON object instead of text"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand bench_echo_operands[] = {
    {"ADDR", "HOST:PORT, [IPV6]:PORT, or for unix a PATH or unix:PATH"},
    {NULL, NULL},
};

static void bench_echo_notes(FILE *out)
{
    fputs("Exits 1 when the target fails: refused, reset, closed, or wrong bytes echoed.\n", out);
}

static const cli_spec bench_echo_spec = {
    .cmd = "bench echo",
    .synopsis = "ADDR [options]",
    .about = "Ping-pong load generator against an echo server: each connection sends a\n"
             "message, waits for all of it to come back (checking every byte), and sends the\n"
             "next. Prints messages/s, MB/s and the round-trip latency percentiles in\n"
             "microseconds.\n",
    .operands = bench_echo_operands,
    .opts = bench_echo_opts,
    .notes = bench_echo_notes,
};
CLI_SPEC_REGISTER(bench_echo_spec);

static int parse_proto(const char *text, bench_proto *out)
{
    if (strcmp(text, "tcp") == 0)
        *out = PROTO_TCP;
    else if (strcmp(text, "udp") == 0)
        *out = PROTO_UDP;
    else if (strcmp(text, "unix") == 0)
        *out = PROTO_UNIX;
    else
        return -EINVAL;
    return 0;
}

static int parse_target(bench *b, const char *text, int proto_given)
{
    const char *cmd = b->cmd;
    int is_unix = strncmp(text, "unix:", 5) == 0;
    if (is_unix && !proto_given)
        b->proto = PROTO_UNIX;
    if (is_unix && b->proto != PROTO_UNIX)
        return cli_usage(cmd, "'%s' is a unix address: use --proto unix", text);
    char buf[PATH_MAX + 8];
    if (b->proto == PROTO_UNIX && !is_unix) {
        if (!*text || snprintf(buf, sizeof buf, "unix:%s", text) >= (int)sizeof buf)
            return cli_usage(cmd, "invalid unix socket path '%s'", text);
        text = buf;
    }
    int socktype = b->proto == PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
    size_t naddr;
    int rc = cli_parse_addrs(cmd, text, socktype, 0, &b->addr, 1, &naddr);
    if (rc)
        return rc;
    nk_addr_format(&b->addr, b->addr_text, sizeof b->addr_text);
    return 0;
}

static void bench_free(bench *b)
{
    if (b->conns) {
        for (long i = 0; i < b->nconns; i++) {
            bconn *c = &b->conns[i];
            if (c->b && c->io.fd >= 0) {
                nk_io_stop(b->loop, &c->io);
                close(c->io.fd);
            }
            free(c->ts);
            free(c->slots);
        }
        free(b->conns);
    }
    if (b->loop) {
        nk_timer_stop(b->loop, &b->timer);
        nk_timer_stop(b->loop, &b->connect_timer);
        nk_timer_stop(b->loop, &b->retry);
        cli_stop_signals_stop(b->loop, &b->stop_signals);
        nk_loop_free(b->loop);
    }
    free(b->block);
    free(b->rbuf);
}

/* What the command line asked for besides what goes straight into the bench. */
typedef struct bench_args {
    bench *b;
    const char *backend;
    int proto_given;
} bench_args;

static int on_bench_echo_opt(void *ctx, int key, const char *value)
{
    bench_args *a = ctx;
    bench *b = a->b;
    switch (key) {
    case 'c':
        if (cli_parse_long(value, 1, 100000, &b->nconns) < 0)
            return cli_usage(b->cmd, "invalid --conns '%s' (1 to 100000)", value);
        return 0;
    case 's':
        if (cli_parse_long(value, 1, 16 << 20, &b->size) < 0)
            return cli_usage(b->cmd, "invalid --size '%s' (1 to 16777216)", value);
        return 0;
    case 'd':
        if (cli_parse_seconds(value, &b->duration_ms) < 0 || b->duration_ms <= 0 ||
            b->duration_ms > 3600 * 1000L)
            return cli_usage(b->cmd, "invalid --duration '%s' (seconds, up to 3600)", value);
        return 0;
    case 'p':
        a->proto_given = 1;
        if (parse_proto(value, &b->proto) < 0)
            return cli_usage(b->cmd, "unknown protocol '%s' (choose from tcp, udp, unix)", value);
        return 0;
    case 'k':
        if (cli_parse_long(value, 1, 1024, &b->pipeline) < 0)
            return cli_usage(b->cmd, "invalid --pipeline '%s' (1 to 1024)", value);
        return 0;
    case 'b':
        a->backend = value;
        return 0;
    case BENCH_OPT_JSON:
        b->json = 1;
        return 0;
    default:
        return CLI_USAGE;
    }
}

/* Options and ADDR into a->b. 0, CLI_OPT_HELP_SHOWN or an exit code (after its message). */
static int bench_parse_args(int argc, char **argv, bench_args *a)
{
    bench *b = a->b;
    b->cmd = argv[0];
    b->nconns = 64;
    b->size = 64;
    b->pipeline = 1;
    b->duration_ms = 5000;
    int first;
    int rc = cli_opt_parse(&bench_echo_spec, argc, argv, on_bench_echo_opt, a, &first);
    if (rc)
        return rc;
    if (first >= argc)
        return cli_usage(b->cmd, "missing ADDR");
    if (first + 1 < argc)
        return cli_usage(b->cmd, "unexpected argument '%s'", argv[first + 1]);
    if ((rc = cli_check_backend(b->cmd, a->backend)) ||
        (rc = parse_target(b, argv[first], a->proto_given)))
        return rc;
    if (b->proto == PROTO_UDP && b->size > BENCH_UDP_MAX)
        return cli_usage(b->cmd, "--size %ld is over the largest UDP payload (%d)", b->size,
                         BENCH_UDP_MAX);
    return 0;
}

/* The connections, their per-message state and the buffers; 0 or -ENOMEM. */
static int bench_alloc(bench *b)
{
    b->conns = calloc((size_t)b->nconns, sizeof *b->conns);
    b->block = malloc((size_t)b->size + BENCH_SPREAD);
    b->rbuf = malloc(BENCH_READ_MAX);
    int ok = b->conns && b->block && b->rbuf;
    for (long i = 0; ok && i < b->nconns; i++) {
        b->conns[i].io.fd = -1;
        if (b->proto == PROTO_UDP)
            ok = (b->conns[i].slots = calloc((size_t)b->pipeline, sizeof(bslot))) != NULL;
        else
            ok = (b->conns[i].ts = calloc((size_t)b->pipeline, sizeof(uint64_t))) != NULL;
    }
    if (!ok)
        return -ENOMEM;
    /* xorshift: content that no buffer reuse or off-by-one would echo by accident */
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (long i = 0; i < b->size + BENCH_SPREAD; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b->block[i] = (char)(x >> 24);
    }
    return 0;
}

/* Connect, measure and report on b's loop: the exit code. */
static int bench_run(bench *b)
{
    int code = CLI_OK;
    nk_timer_init(&b->timer, on_duration, b);
    nk_timer_init(&b->connect_timer, on_connect_timeout, b);
    nk_timer_init(&b->retry, on_retry, b);
    int rc = cli_stop_signals_start(b->loop, &b->stop_signals, on_signal, b);
    if (rc < 0) {
        code = cli_fail(b->cmd, "cannot watch signals: %s", nk_strerror(rc));
    } else if (open_conns(b) == 0 && !b->failed) {
        rc = nk_loop_run(b->loop, NK_RUN_DEFAULT);
        if (rc < 0)
            bench_fail(b, NULL, "event loop: %s", nk_strerror(rc));
    }
    if (code == CLI_OK && b->failed)
        code = CLI_FAIL;
    if (code == CLI_OK && !b->stop_ns)
        code = cli_fail(b->cmd, "%s: interrupted before all connections were up", b->addr_text);
    if (code == CLI_OK && b->messages == 0)
        code = cli_fail(b->cmd, "%s: no message came back", b->addr_text);
    if (code == CLI_OK)
        report(b);
    return code;
}

static int bench_echo(int argc, char **argv)
{
    bench *b = calloc(1, sizeof *b); /* the histogram makes it too big for the stack */
    if (!b)
        return cli_fail(argv[0], "%s", nk_strerror(-ENOMEM));
    bench_args a = {.b = b};
    int code = bench_parse_args(argc, argv, &a);
    if (code) {
        free(b);
        return code == CLI_OPT_HELP_SHOWN ? CLI_OK : code;
    }
    int rc = nk_loop_new(a.backend, &b->loop);
    if (rc < 0) {
        b->loop = NULL;
        code = cli_backend_fail(b->cmd, a.backend, rc);
    } else {
        signal(SIGPIPE, SIG_IGN); /* a reset peer must give EPIPE, not end the run */
        if (bench_alloc(b) < 0)
            code = cli_fail(b->cmd, "%s", nk_strerror(-ENOMEM));
        else
            code = bench_run(b);
    }
    bench_free(b);
    free(b);
    return code;
}

static const cli_cmd bench_commands[] = {
    {"echo", "ping-pong against an echo server: ADDR [--conns N] [--size B] [--duration S]",
     bench_echo},
    {NULL, NULL, NULL},
};

int cmd_bench(int argc, char **argv)
{
    return cli_dispatch("bench", bench_commands, argc, argv);
}
