/* netkit ping: ICMP echo over IPv4 and IPv6, on the event loop.
 *
 * Socket: an unprivileged ICMP datagram socket (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)) when
 * net.ipv4.ping_group_range admits our group; the kernel then picks the echo identifier,
 * computes checksums and hands back only our replies, with the TTL as ancillary data
 * (IP_RECVTTL / IPV6_RECVHOPLIMIT) and ICMP errors on the error queue (IP_RECVERR). Otherwise a
 * raw socket (root or CAP_NET_RAW), which sees every ICMP message for the host: replies are
 * matched by identifier and source, errors by the echo request they quote, and the IPv4 TTL is
 * read from the IP header the raw socket delivers.
 *
 * Timing: a repeating timer sends one request per interval; each request in flight has its own
 * timer in a ring of slots (its -W deadline). Round-trip times come from CLOCK_MONOTONIC in
 * microseconds. When the count is reached the command ends once no request is in flight.
 */
#include "cli.h"
#include "opt.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <math.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/icmp6.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netkit/raw.h>

/* Requests that can be in flight at once; an older one still waiting when its slot is needed
 * again is reported as timed out (only with -W much longer than 256 intervals). */
#define PING_RING 256
/* Largest payload: 65535 - 20 (IPv4 header) - 8 (ICMP header). */
#define PING_MAX_SIZE 65507
#define PING_BUF (PING_MAX_SIZE + 8 + 60 + 1)
/* Messages handled per readiness event before other watchers get a turn. */
#define PING_READS_PER_EVENT 64

typedef struct ping ping;

typedef struct ping_slot {
    nk_timer timer;
    ping *pg;
    uint16_t seq;
    int waiting;   /* sent, no reply or error yet */
    int answered;  /* a reply came (a second one is a duplicate) */
    uint64_t sent_us;
} ping_slot;

struct ping {
    const char *cmd;
    nk_loop *loop;
    int fd;
    int v6, raw;
    nk_io io;
    nk_timer send_timer;
    cli_stop_signals stop_signals;
    nk_addr dest;
    char dest_text[NK_ADDR_STRLEN];
    const char *name; /* HOST as given when it is a name (not -n): "from NAME (ADDR)" */
    uint16_t id;
    long count; /* 0: until interrupted */
    long interval_ms, wait_ms, size;
    long sent, received, errors, dups, outstanding;
    double tmin, tmax, tsum, tsum2; /* milliseconds */
    uint64_t start_us;
    uint8_t *out, *in;
    ping_slot slots[PING_RING];
    int finished;
};

#define PING_TEXT(x) #x
#define PING_NUMBER_TEXT(x) PING_TEXT(x)

enum { PING_OPT_SOCKET = CLI_OPT_LONG };

static const cli_opt ping_opts[] = {
    {"count", 'c', "N", "stop after N requests (default: until Ctrl-C)"},
    {"interval", 'i', "SEC", "seconds between requests (default 1, at least 0.01)"},
    {"timeout", 'W', "SEC", "how long to wait for each reply (default 2)"},
    {"size", 's', "N", "payload bytes (default 56, at most " PING_NUMBER_TEXT(PING_MAX_SIZE) ")"},
    {"", '4', NULL, "use IPv4 only"},
    {"", '6', NULL, "use IPv6 only"},
    {"numeric", 'n', NULL, "replies from HOST given as a name show the address only (default: "
                           "'from NAME (ADDR)', as iputils)"},
    {"socket", PING_OPT_SOCKET, "TYPE", "dgram (an unprivileged ICMP socket) or raw (root or "
                                        "CAP_NET_RAW); default: dgram when "
                                        "net.ipv4.ping_group_range allows it, else raw"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand ping_operands[] = {
    {"HOST", "a name or an address, IPv4 or IPv6"},
    {NULL, NULL},
};

static void ping_notes(FILE *out)
{
    fputs("Exit status: 0 when any reply came, 1 otherwise, 2 for bad usage.\n", out);
}

static const cli_spec ping_spec = {
    .cmd = "ping",
    .synopsis = "HOST [-c COUNT] [-i SEC] [-W SEC] [-s SIZE] [-4|-6] [-n]",
    .about = "Send ICMP echo requests to HOST and report each reply, then a summary.\n",
    .operands = ping_operands,
    .opts = ping_opts,
    .notes = ping_notes,
};
CLI_SPEC_REGISTER(ping_spec);

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void out_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void ping_summary(ping *pg)
{
    double elapsed = (double)(now_us() - pg->start_us) / 1000.0;
    printf("\n--- %s ping statistics ---\n", pg->name ? pg->name : pg->dest_text);
    double loss = pg->sent ? (double)(pg->sent - pg->received) * 100.0 / (double)pg->sent : 0;
    printf("%ld packets transmitted, %ld received", pg->sent, pg->received);
    if (pg->dups)
        printf(", +%ld duplicates", pg->dups);
    if (pg->errors)
        printf(", +%ld errors", pg->errors);
    printf(", %g%% packet loss, time %.0fms\n", loss, elapsed);
    if (pg->received) {
        double n = (double)(pg->received + pg->dups);
        double avg = pg->tsum / n;
        double var = pg->tsum2 / n - avg * avg;
        printf("rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", pg->tmin, avg, pg->tmax,
               var > 0 ? sqrt(var) : 0.0);
    }
    fflush(stdout);
}

static void ping_finish(ping *pg)
{
    if (pg->finished)
        return;
    pg->finished = 1;
    nk_loop_stop(pg->loop);
}

static void check_done(ping *pg)
{
    if (pg->count && pg->sent >= pg->count && pg->outstanding == 0)
        ping_finish(pg);
}

static void slot_close(ping_slot *s)
{
    if (!s->waiting)
        return;
    s->waiting = 0;
    nk_timer_stop(s->pg->loop, &s->timer);
    s->pg->outstanding--;
}

static void on_slot_timeout(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    ping_slot *s = t->data;
    ping *pg = s->pg;
    if (!s->waiting)
        return;
    out_line("no reply for icmp_seq=%u within %.3f s\n", s->seq, (double)pg->wait_ms / 1000.0);
    slot_close(s);
    check_done(pg);
}

static ping_slot *slot_for(ping *pg, uint16_t seq)
{
    ping_slot *s = &pg->slots[seq % PING_RING];
    return s->sent_us && s->seq == seq ? s : NULL;
}

static void on_send(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    ping *pg = t->data;
    if (pg->count && pg->sent >= pg->count) {
        nk_timer_stop(pg->loop, &pg->send_timer);
        return;
    }
    uint16_t seq = (uint16_t)(pg->sent + 1); /* icmp_seq counts from 1, like iputils */
    ping_slot *s = &pg->slots[seq % PING_RING];
    if (s->waiting) { /* its deadline is past the ring: give up on it now */
        out_line("no reply for icmp_seq=%u within %.3f s\n", s->seq,
                 (double)pg->wait_ms / 1000.0);
        slot_close(s);
    }
    int len = nk_icmp_echo_build(pg->out, PING_BUF, pg->v6, pg->id, seq, (size_t)pg->size);
    pg->sent++;
    s->seq = seq;
    s->answered = 0;
    s->sent_us = now_us();
    ssize_t n;
    do
        n = sendto(pg->fd, pg->out, (size_t)len, 0, &pg->dest.u.sa, pg->dest.len);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        pg->errors++;
        out_line("icmp_seq=%u: sendto: %s\n", seq, strerror(errno));
    } else {
        s->waiting = 1;
        pg->outstanding++;
        nk_timer_start(pg->loop, &s->timer, (uint64_t)pg->wait_ms, 0);
    }
    if (pg->count && pg->sent >= pg->count)
        nk_timer_stop(pg->loop, &pg->send_timer);
    check_done(pg);
}

static void report_reply(ping *pg, const char *from, const nk_icmp_msg *m, int ttl)
{
    ping_slot *s = slot_for(pg, m->seq);
    if (!s) {
        return; /* not one of ours (or too old to remember) */
    }
    double ms = (double)(now_us() - s->sent_us) / 1000.0;
    int dup = s->answered;
    if (dup)
        pg->dups++;
    else
        pg->received++;
    s->answered = 1;
    if (pg->received + pg->dups == 1 || ms < pg->tmin)
        pg->tmin = ms;
    if (ms > pg->tmax)
        pg->tmax = ms;
    pg->tsum += ms;
    pg->tsum2 += ms * ms;
    char ttl_text[24] = "";
    if (ttl >= 0)
        snprintf(ttl_text, sizeof ttl_text, " ttl=%d", ttl);
    /* A reply from the host named on the command line carries that name, as iputils shows. */
    if (pg->name && strcmp(from, pg->dest_text) == 0)
        out_line("%zu bytes from %s (%s): icmp_seq=%u%s time=%.3f ms%s\n", m->data_len + 8,
                 pg->name, from, m->seq, ttl_text, ms, dup ? " (DUP!)" : "");
    else
        out_line("%zu bytes from %s: icmp_seq=%u%s time=%.3f ms%s\n", m->data_len + 8, from,
                 m->seq, ttl_text, ms, dup ? " (DUP!)" : "");
    slot_close(s);
    check_done(pg);
}

static void report_error(ping *pg, const char *from, uint16_t seq, uint8_t type, uint8_t code,
                         int local_errno)
{
    ping_slot *s = slot_for(pg, seq);
    if (!s || !s->waiting)
        return;
    pg->errors++;
    if (local_errno) {
        out_line("From %s icmp_seq=%u %s\n", from, seq, strerror(local_errno));
    } else {
        const char *cname = nk_raw_icmp_code_name(pg->v6, type, code);
        out_line("From %s icmp_seq=%u %s%s%s%s\n", from, seq, nk_raw_icmp_type_name(pg->v6, type),
                 cname ? " (" : "", cname ? cname : "", cname ? ")" : "");
    }
    slot_close(s);
    check_done(pg);
}

static void host_text(const struct sockaddr *sa, char *buf, size_t len)
{
    nk_addr a;
    memset(&a, 0, sizeof a);
    a.len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    memcpy(&a.u.sa, sa, a.len);
    if (nk_addr_format_host(&a, buf, len) < 0)
        snprintf(buf, len, "?");
}

/* One message from the error queue (datagram sockets with IP_RECVERR / IPV6_RECVERR). */
static int read_errqueue(ping *pg)
{
    char ctrl[512];
    struct sockaddr_storage from;
    struct iovec iov = {pg->in, PING_BUF};
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov,
                        .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl};
    ssize_t n = recvmsg(pg->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (n < 0)
        return -1;
    struct sock_extended_err *ee = NULL;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if ((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
            (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR))
            ee = (struct sock_extended_err *)(void *)CMSG_DATA(cm);
    /* The queued payload is the request we sent: its sequence number says which one. */
    if (!ee || n < 8)
        return 0;
    uint16_t seq = (uint16_t)(pg->in[6] << 8 | pg->in[7]);
    char text[NK_ADDR_STRLEN] = "?";
    struct sockaddr *off = SO_EE_OFFENDER(ee);
    if (off->sa_family == AF_INET || off->sa_family == AF_INET6)
        host_text(off, text, sizeof text);
    else
        snprintf(text, sizeof text, "%s", pg->dest_text);
    int icmp = ee->ee_origin == SO_EE_ORIGIN_ICMP || ee->ee_origin == SO_EE_ORIGIN_ICMP6;
    report_error(pg, text, seq, ee->ee_type, ee->ee_code, icmp ? 0 : (int)ee->ee_errno);
    return 0;
}

static void read_one(ping *pg, const uint8_t *buf, size_t len, const struct sockaddr *from,
                     int ttl)
{
    char text[NK_ADDR_STRLEN];
    host_text(from, text, sizeof text);
    if (pg->raw && !pg->v6) {
        /* Raw IPv4 sockets deliver the IP header: the TTL is in it. */
        int hl = nk_icmp_ipv4_hdr_len(buf, len);
        if (hl < 0)
            return;
        ttl = buf[8];
        buf += hl;
        len -= (size_t)hl;
    }
    nk_icmp_msg m;
    if (nk_icmp_parse(buf, len, pg->v6, &m) < 0)
        return;
    if (m.reply) {
        /* A raw socket sees every echo reply on the host: ours carry our id and come from the
         * address we pinged. The datagram socket's kernel already sorted them. */
        if (pg->raw) {
            nk_addr src;
            memset(&src, 0, sizeof src);
            src.len = pg->dest.len;
            memcpy(&src.u.sa, from, src.len);
            nk_addr_set_port(&src, 0);
            if (m.id != pg->id || !nk_addr_equal(&src, &pg->dest))
                return;
        }
        report_reply(pg, text, &m, ttl);
    } else if (m.error && pg->raw && m.id == pg->id) {
        report_error(pg, text, m.seq, m.type, m.code, 0);
    }
}

static void on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    ping *pg = io->data;
    for (int i = 0; i < PING_READS_PER_EVENT && !pg->finished; i++) {
        char ctrl[256];
        struct sockaddr_storage from;
        struct iovec iov = {pg->in, PING_BUF};
        struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov,
                            .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl};
        ssize_t n = recvmsg(pg->fd, &mh, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* A pending error (datagram sockets) makes recvmsg fail: fetch it from the queue. */
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                read_errqueue(pg);
            else if ((events & NK_ERROR) && !pg->raw)
                while (!pg->finished && read_errqueue(pg) == 0)
                    ;
            return;
        }
        int ttl = -1;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if ((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_TTL) ||
                (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_HOPLIMIT)) {
                int v;
                memcpy(&v, CMSG_DATA(cm), sizeof v);
                ttl = v;
            }
        }
        read_one(pg, pg->in, (size_t)n, (struct sockaddr *)&from, ttl);
    }
}

static void on_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)loop;
    (void)signum;
    ping_finish(sig->data);
}

/* Open the datagram socket, or the raw one; 0, or a CLI exit code after printing why. */
static int open_socket(ping *pg, const char *want)
{
    int family = pg->v6 ? AF_INET6 : AF_INET;
    int proto = pg->v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
    int dgram_err = 0;
    if (!want || strcmp(want, "dgram") == 0) {
        pg->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
        if (pg->fd >= 0) {
            int on = 1;
            setsockopt(pg->fd, pg->v6 ? SOL_IPV6 : SOL_IP, pg->v6 ? IPV6_RECVHOPLIMIT : IP_RECVTTL,
                       &on, sizeof on);
            setsockopt(pg->fd, pg->v6 ? SOL_IPV6 : SOL_IP, pg->v6 ? IPV6_RECVERR : IP_RECVERR,
                       &on, sizeof on);
            return 0;
        }
        dgram_err = errno;
        if (want)
            return cli_fail(pg->cmd, "cannot open an ICMP datagram socket: %s (is your group "
                                     "in net.ipv4.ping_group_range?)",
                            strerror(dgram_err));
    }
    pg->fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (pg->fd < 0) {
        int e = errno;
        if (!want && (e == EPERM || e == EACCES))
            return cli_fail(pg->cmd, "not permitted: an ICMP datagram socket is refused (%s; "
                                     "see net.ipv4.ping_group_range) and a raw socket needs "
                                     "root or CAP_NET_RAW",
                            strerror(dgram_err));
        return cli_fail(pg->cmd, "cannot open a raw ICMP socket: %s", strerror(e));
    }
    pg->raw = 1;
    pg->id = (uint16_t)getpid();
    if (pg->v6) {
        int on = 1;
        setsockopt(pg->fd, SOL_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on);
        /* Only replies and errors: the rest of the host's ICMPv6 (neighbour discovery...) is
         * none of our business. */
        struct icmp6_filter f;
        ICMP6_FILTER_SETBLOCKALL(&f);
        ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
        ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &f);
        ICMP6_FILTER_SETPASS(ICMP6_PACKET_TOO_BIG, &f);
        ICMP6_FILTER_SETPASS(ICMP6_TIME_EXCEEDED, &f);
        ICMP6_FILTER_SETPASS(ICMP6_PARAM_PROB, &f);
        setsockopt(pg->fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f);
    }
    return 0;
}

static int resolve(ping *pg, const char *host, int family)
{
    struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        if (rc == EAI_NONAME || rc == EAI_FAMILY || rc == EAI_ADDRFAMILY || rc == EAI_NODATA)
            return cli_usage(pg->cmd, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return cli_fail(pg->cmd, "cannot resolve '%s': %s", host, gai_strerror(rc));
    }
    memset(&pg->dest, 0, sizeof pg->dest);
    memcpy(&pg->dest.u.sa, res->ai_addr, res->ai_addrlen);
    pg->dest.len = res->ai_addrlen;
    freeaddrinfo(res);
    pg->v6 = nk_addr_family(&pg->dest) == AF_INET6;
    nk_addr_format_host(&pg->dest, pg->dest_text, sizeof pg->dest_text);
    return 0;
}

/* Is host an address literal rather than a name? */
static int is_numeric_host(const char *host)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return 0;
    freeaddrinfo(res);
    return 1;
}

static void ping_free(ping *pg)
{
    if (pg->loop) {
        for (int i = 0; i < PING_RING; i++)
            nk_timer_stop(pg->loop, &pg->slots[i].timer);
        nk_timer_stop(pg->loop, &pg->send_timer);
        cli_stop_signals_stop(pg->loop, &pg->stop_signals);
        if (pg->fd >= 0)
            nk_io_stop(pg->loop, &pg->io);
        nk_loop_free(pg->loop);
    }
    if (pg->fd >= 0)
        close(pg->fd);
    free(pg->out);
    free(pg->in);
    free(pg);
}

/* What the command line asked for. */
typedef struct ping_args {
    const char *cmd;
    const char *host;
    long count, size, interval_ms, wait_ms;
    int family, numeric;
    const char *sock_type; /* NULL: dgram if allowed, else raw */
} ping_args;

static int on_ping_opt(void *ctx, int key, const char *value)
{
    ping_args *a = ctx;
    switch (key) {
    case 'c':
        if (cli_parse_long(value, 1, 1000000000L, &a->count) < 0)
            return cli_usage(a->cmd, "invalid count '%s' (a positive number)", value);
        return 0;
    case 'i':
        if (cli_parse_seconds(value, &a->interval_ms) < 0 || a->interval_ms < 10)
            return cli_usage(a->cmd, "invalid interval '%s' (seconds, at least 0.01)", value);
        return 0;
    case 'W':
        if (cli_parse_seconds(value, &a->wait_ms) < 0 || a->wait_ms < 1)
            return cli_usage(a->cmd, "invalid timeout '%s' (seconds, more than 0)", value);
        return 0;
    case 's':
        if (cli_parse_long(value, 0, PING_MAX_SIZE, &a->size) < 0)
            return cli_usage(a->cmd, "invalid size '%s' (0 to %d)", value, PING_MAX_SIZE);
        return 0;
    case '4': a->family = AF_INET; return 0;
    case '6': a->family = AF_INET6; return 0;
    case 'n': a->numeric = 1; return 0;
    case PING_OPT_SOCKET:
        if (strcmp(value, "dgram") != 0 && strcmp(value, "raw") != 0)
            return cli_usage(a->cmd, "unknown socket type '%s' (dgram or raw)", value);
        a->sock_type = value;
        return 0;
    default:
        return CLI_USAGE;
    }
}

/* Options and HOST: 0, CLI_OPT_HELP_SHOWN or an exit code (after its message). */
static int ping_parse_args(int argc, char **argv, ping_args *a)
{
    *a = (ping_args){.cmd = argv[0], .size = 56, .interval_ms = 1000, .wait_ms = 2000,
                     .family = AF_UNSPEC};
    int first;
    int rc = cli_opt_parse(&ping_spec, argc, argv, on_ping_opt, a, &first);
    if (rc)
        return rc;
    optind = first;
    return cli_one_operand(a->cmd, argc, argv, "HOST", &a->host) ? CLI_USAGE : 0;
}

/* HOST resolved and the socket open; NULL after printing why (*code: the exit code). */
static ping *ping_new(const ping_args *a, int *code)
{
    ping *pg = calloc(1, sizeof *pg);
    if (!pg) {
        *code = cli_fail(a->cmd, "out of memory");
        return NULL;
    }
    pg->cmd = a->cmd;
    pg->fd = -1;
    pg->count = a->count;
    pg->size = a->size;
    pg->interval_ms = a->interval_ms;
    pg->wait_ms = a->wait_ms;
    int rc = resolve(pg, a->host, a->family);
    if (rc == 0 && !a->numeric && !is_numeric_host(a->host))
        pg->name = a->host;
    if (rc == 0)
        rc = open_socket(pg, a->sock_type);
    if (rc) {
        ping_free(pg);
        *code = rc;
        return NULL;
    }
    return pg;
}

/* The buffers, the loop, the socket's and the signals' watchers, the timers: 0 or an exit
 * code (after its message). */
static int ping_start(ping *pg)
{
    pg->out = malloc(PING_BUF);
    pg->in = malloc(PING_BUF);
    int err = pg->out && pg->in ? nk_loop_new(NULL, &pg->loop) : -ENOMEM;
    if (err == 0) {
        nk_io_init(&pg->io, pg->fd, on_io, pg);
        err = nk_io_start(pg->loop, &pg->io, NK_READ);
    }
    if (err == 0)
        err = cli_stop_signals_start(pg->loop, &pg->stop_signals, on_signal, pg);
    if (err < 0)
        return cli_fail(pg->cmd, "cannot start: %s", nk_strerror(err));
    for (int i = 0; i < PING_RING; i++) {
        pg->slots[i].pg = pg;
        nk_timer_init(&pg->slots[i].timer, on_slot_timeout, &pg->slots[i]);
    }
    nk_timer_init(&pg->send_timer, on_send, pg);
    return 0;
}

int cmd_ping(int argc, char **argv)
{
    ping_args a;
    int rc = ping_parse_args(argc, argv, &a);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    ping *pg = ping_new(&a, &rc);
    if (!pg)
        return rc;
    if ((rc = ping_start(pg))) {
        ping_free(pg);
        return rc;
    }
    if (pg->v6)
        out_line("PING %s (%s) %ld data bytes\n", a.host, pg->dest_text, a.size);
    else
        out_line("PING %s (%s) %ld(%ld) bytes of data.\n", a.host, pg->dest_text, a.size,
                 a.size + 28);
    pg->start_us = now_us();
    nk_timer_start(pg->loop, &pg->send_timer, 0, (uint64_t)a.interval_ms);
    int err = nk_loop_run(pg->loop, NK_RUN_DEFAULT);
    ping_summary(pg);
    rc = err < 0 ? cli_fail(a.cmd, "event loop: %s", nk_strerror(err))
                 : pg->received > 0 ? CLI_OK : CLI_FAIL;
    ping_free(pg);
    return rc;
}
