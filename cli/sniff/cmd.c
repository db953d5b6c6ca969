/* netkit sniff: capture frames with an AF_PACKET socket and print them layer by layer.
 *
 * The socket is created with protocol 0, so it receives nothing until it is bound; the BPF
 * filter is attached first and only then is it bound to ETH_P_ALL. That way no frame the
 * filter would reject is ever queued, and "listening on IFACE" on stderr means the capture is
 * complete from that instant on.
 *
 * On loopback every frame passes the tap twice, once leaving (PACKET_OUTGOING) and once
 * arriving; the outgoing copy is skipped so each packet shows once. Only Ethernet-framed
 * devices (Ethernet, loopback) are decoded; frames from others (tun, ip tunnels...) are counted
 * as skipped, since the filter's offsets assume an Ethernet header too.
 */
#include "cli.h"
#include "opt.h"
#include "sniff/sniff.h"

#include <errno.h>
#include <net/if_arp.h>
#include <linux/if_ether.h>
#include <netpacket/packet.h>
#include <net/if.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netkit/raw.h>

#define SNIFF_BUF NK_RAW_SNAPLEN
#define SNIFF_READS_PER_EVENT 64
/* Kernel receive buffer: room for bursts while the terminal scrolls. */
#define SNIFF_RCVBUF (4 * 1024 * 1024)
#define SNIFF_FILTER_MAX 4096

typedef struct sniff {
    const char *cmd;
    nk_loop *loop;
    int fd;
    nk_io io;
    cli_stop_signals stop_signals;
    long count, captured, skipped;
    int interrupted; /* stopped by SIGINT: the terminal shows "^C" where the cursor is */
    int ifindex;
    nk_pcap pcap;
    int writing;
    int exit_code;
    uint8_t *buf;
    struct { int index; char name[IF_NAMESIZE]; } names[32];
    sniff_printer printer;
} sniff;

enum { SNIFF_OPT_HEX = CLI_OPT_LONG, SNIFF_OPT_HANDSHAKE };

static const cli_opt sniff_opts[] = {
    {"interface", 'i', "IFACE", "capture on IFACE only (default: all, and each line shows "
                                "the interface's name)"},
    {"count", 'c', "N", "stop after N packets"},
    {"write", 'w', "FILE", "also write the packets to FILE in pcap format"},
    {"link", 'e', NULL, "show the Ethernet source and destination addresses on each line "
                        "(hidden by default, as loopback's are all zero)"},
    {"hex", SNIFF_OPT_HEX, NULL, "hex dump of each frame"},
    {"verbose", 'v', NULL, "every header field, one block per layer"},
    {"handshake", SNIFF_OPT_HANDSHAKE, NULL, "annotate TCP handshakes and closes, with step "
                                             "times"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand sniff_operands[] = {
    {"FILTER...", "tcp, udp, icmp, icmp6, ip, ip6, arp, [src|dst] port N, [src|dst] host ADDR, "
                  "tcp port N, udp port N, combined with and, or, not and parentheses; its "
                  "words may mix with the options (default: every packet)"},
    {NULL, NULL},
};

static void sniff_notes(FILE *out)
{
    fputs("Prints \"listening on IFACE\" on stderr once capturing. Ctrl-C or SIGTERM ends the\n"
          "capture with \"N packets captured, M dropped by kernel\" on stderr (M is the\n"
          "kernel's count of frames it had no buffer room for). On loopback each packet is\n"
          "shown once (its outgoing copy is skipped). See man netkit.\n",
          out);
}

static const cli_spec sniff_spec = {
    .cmd = "sniff",
    .synopsis = "[-i IFACE] [FILTER...] [options]",
    .about = "Capture packets (root or CAP_NET_RAW) and print one line per packet, decoded layer\n"
             "by layer: link, network, transport, payload.\n",
    .operands = sniff_operands,
    .opts = sniff_opts,
    .notes = sniff_notes,
};
CLI_SPEC_REGISTER(sniff_spec);

static const char *iface_name(sniff *s, int index)
{
    size_t slots = sizeof s->names / sizeof *s->names;
    size_t i = (size_t)index % slots;
    if (s->names[i].index != index) {
        if (!if_indextoname((unsigned)index, s->names[i].name))
            snprintf(s->names[i].name, sizeof s->names[i].name, "if%d", index);
        s->names[i].index = index;
    }
    return s->names[i].name;
}

static void stop(sniff *s)
{
    nk_io_stop(s->loop, &s->io);
    nk_loop_stop(s->loop);
}

static void on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    sniff *s = io->data;
    for (int i = 0; i < SNIFF_READS_PER_EVENT; i++) {
        struct sockaddr_ll sll;
        char ctrl[128];
        struct iovec iov = {s->buf, SNIFF_BUF};
        struct msghdr mh = {.msg_name = &sll, .msg_namelen = sizeof sll, .msg_iov = &iov,
                            .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl};
        ssize_t n = recvmsg(s->fd, &mh, MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENETDOWN) {
                s->exit_code = cli_fail(s->cmd, "capture: %s", strerror(errno));
                stop(s);
            }
            return;
        }
        if (sll.sll_hatype == ARPHRD_LOOPBACK && sll.sll_pkttype == PACKET_OUTGOING)
            continue; /* the same packet comes back as incoming */
        if (sll.sll_hatype != ARPHRD_ETHER && sll.sll_hatype != ARPHRD_LOOPBACK) {
            s->skipped++;
            continue;
        }
        struct timespec ts = {0, 0};
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS)
                memcpy(&ts, CMSG_DATA(cm), sizeof ts);
        if (ts.tv_sec == 0)
            clock_gettime(CLOCK_REALTIME, &ts);
        size_t orig = (size_t)n;
        size_t len = orig < SNIFF_BUF ? orig : SNIFF_BUF;
        sniff_print(&s->printer, stdout, &ts, iface_name(s, sll.sll_ifindex), s->buf, len,
                    orig);
        if (s->writing) {
            int rc = nk_pcap_write(&s->pcap, &ts, s->buf, len, orig);
            if (rc < 0) {
                s->exit_code = cli_fail(s->cmd, "writing the pcap file: %s", nk_strerror(rc));
                stop(s);
                return;
            }
        }
        s->captured++;
        if (s->count && s->captured >= s->count) {
            stop(s);
            return;
        }
    }
}

static void on_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)loop;
    sniff *s = sig->data;
    s->interrupted = signum == SIGINT;
    stop(s);
}

/* Join the filter words as one expression, as tcpdump does. */
static int join_filter(int argc, char **argv, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < argc; i++) {
        int n = snprintf(out + used, cap - used, "%s%s", i ? " " : "", argv[i]);
        if (n < 0 || (size_t)n >= cap - used)
            return -1;
        used += (size_t)n;
    }
    return 0;
}

static int open_capture(sniff *s, const nk_raw_filter *f)
{
    s->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        if (errno == EPERM || errno == EACCES)
            return cli_fail(s->cmd, "capturing needs root or CAP_NET_RAW (%s)", strerror(errno));
        return cli_fail(s->cmd, "cannot open a packet socket: %s", strerror(errno));
    }
    struct sock_fprog prog = {.len = (unsigned short)f->len, .filter = f->insns};
    if (setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
        return cli_fail(s->cmd, "cannot attach the filter: %s", strerror(errno));
    int on = 1, rcvbuf = SNIFF_RCVBUF;
    setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                              .sll_ifindex = s->ifindex};
    if (bind(s->fd, (struct sockaddr *)&sll, sizeof sll) < 0)
        return cli_fail(s->cmd, "cannot bind the packet socket: %s", strerror(errno));
    return 0;
}

static void sniff_free(sniff *s)
{
    if (s->loop) {
        if (s->fd >= 0)
            nk_io_stop(s->loop, &s->io);
        cli_stop_signals_stop(s->loop, &s->stop_signals);
        nk_loop_free(s->loop);
    }
    if (s->fd >= 0)
        close(s->fd);
    if (s->writing)
        nk_pcap_close(&s->pcap);
    free(s->buf);
    free(s);
}

/* What the command line asked for. */
typedef struct sniff_args {
    const char *cmd;
    const char *iface, *wfile; /* NULL: all interfaces, no pcap file */
    long count;                /* 0: until interrupted */
    int hex, verbose, handshake, link;
} sniff_args;

static int on_sniff_opt(void *ctx, int key, const char *value)
{
    sniff_args *a = ctx;
    switch (key) {
    case 'i': a->iface = value; return 0;
    case 'c':
        if (cli_parse_long(value, 1, 1000000000L, &a->count) < 0)
            return cli_usage(a->cmd, "invalid count '%s' (a positive number)", value);
        return 0;
    case 'w': a->wfile = value; return 0;
    case 'e': a->link = 1; return 0;
    case SNIFF_OPT_HEX: a->hex = 1; return 0;
    case 'v': a->verbose = 1; return 0;
    case SNIFF_OPT_HANDSHAKE: a->handshake = 1; return 0;
    default: return CLI_USAGE;
    }
}

/* Options, then the filter words compiled into *f (the caller frees it once this returned 0).
 * 0, CLI_OPT_HELP_SHOWN or an exit code. Filter words and options may mix, as tcpdump's. */
static int sniff_parse_args(int argc, char **argv, sniff_args *a, nk_raw_filter *f)
{
    memset(a, 0, sizeof *a);
    a->cmd = argv[0];
    int first;
    int rc = cli_opt_parse(&sniff_spec, argc, argv, on_sniff_opt, a, &first);
    if (rc)
        return rc;
    char expr[SNIFF_FILTER_MAX];
    if (join_filter(argc - first, argv + first, expr, sizeof expr) < 0)
        return cli_usage(a->cmd, "filter expression too long (at most %d bytes)",
                         SNIFF_FILTER_MAX - 1);
    rc = nk_raw_filter_compile(expr, f);
    if (rc == -EINVAL || rc == -E2BIG) {
        const char *at = expr + f->err_pos;
        if (*at)
            return cli_usage(a->cmd, "bad filter at '%.*s': %s", (int)strcspn(at, " \t()"), at,
                             f->err_what);
        return cli_usage(a->cmd, "bad filter: %s", f->err_what);
    }
    if (rc < 0)
        return cli_fail(a->cmd, "filter: %s", nk_strerror(rc));
    return 0;
}

/* The capture state for a (its socket not open yet); NULL after printing why. */
static sniff *sniff_new(const sniff_args *a, int *code)
{
    sniff *s = calloc(1, sizeof *s);
    if (!s) {
        *code = cli_fail(a->cmd, "out of memory");
        return NULL;
    }
    s->cmd = a->cmd;
    s->fd = -1;
    s->count = a->count;
    s->printer.verbose = a->verbose;
    s->printer.hex = a->hex;
    s->printer.link = a->link;
    s->printer.handshake = a->handshake;
    s->printer.show_iface = a->iface == NULL;
    if (a->iface) {
        s->ifindex = (int)if_nametoindex(a->iface);
        if (s->ifindex == 0) {
            *code = cli_usage(a->cmd, "no interface '%s'", a->iface);
            sniff_free(s);
            return NULL;
        }
    }
    return s;
}

/* Open the capture with filter f, the pcap file, and watch the socket and the signals: 0 or
 * an exit code (after its message). */
static int sniff_start(sniff *s, const sniff_args *a, const nk_raw_filter *f)
{
    int rc = open_capture(s, f);
    if (rc)
        return rc;
    if (a->wfile) {
        int err = nk_pcap_open(&s->pcap, a->wfile, NK_RAW_SNAPLEN, 0);
        if (err < 0)
            return cli_fail(s->cmd, "cannot write '%s': %s", a->wfile, nk_strerror(err));
        s->writing = 1;
    }
    s->buf = malloc(SNIFF_BUF);
    int err = s->buf ? nk_loop_new(NULL, &s->loop) : -ENOMEM;
    if (err == 0) {
        nk_io_init(&s->io, s->fd, on_io, s);
        err = nk_io_start(s->loop, &s->io, NK_READ);
    }
    if (err == 0)
        err = cli_stop_signals_start(s->loop, &s->stop_signals, on_signal, s);
    if (err < 0)
        return cli_fail(s->cmd, "cannot start: %s", nk_strerror(err));
    return 0;
}

/* After the capture: the counts on stderr and the pcap file closed. */
static void sniff_finish(sniff *s, const sniff_args *a)
{
    fflush(stdout);
    if (s->interrupted && isatty(STDERR_FILENO))
        fputc('\n', stderr);
    /* The kernel's count of frames it had no room for in the receive buffer (the counters
     * reset when read, and this is the only read). */
    struct { unsigned packets, drops; } st; /* struct tpacket_stats (linux/if_packet.h) */
    socklen_t sl = sizeof st;
    if (getsockopt(s->fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) < 0)
        st.drops = 0;
    fprintf(stderr, "%ld packet%s captured, %u dropped by kernel\n", s->captured,
            s->captured == 1 ? "" : "s", st.drops);
    if (s->skipped)
        fprintf(stderr, "%ld packet%s from non-Ethernet devices skipped\n", s->skipped,
                s->skipped == 1 ? "" : "s");
    if (s->writing) {
        int cerr = nk_pcap_close(&s->pcap);
        s->writing = 0;
        if (cerr < 0 && !s->exit_code)
            s->exit_code = cli_fail(s->cmd, "closing '%s': %s", a->wfile, nk_strerror(cerr));
    }
}

int cmd_sniff(int argc, char **argv)
{
    sniff_args a;
    nk_raw_filter f;
    int rc = sniff_parse_args(argc, argv, &a, &f);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    sniff *s = sniff_new(&a, &rc);
    if (s)
        rc = sniff_start(s, &a, &f);
    nk_raw_filter_free(&f);
    if (!s)
        return rc;
    if (rc) {
        sniff_free(s);
        return rc;
    }
    fprintf(stderr, "listening on %s\n", a.iface ? a.iface : "any");
    fflush(stderr);
    int err = nk_loop_run(s->loop, NK_RUN_DEFAULT);
    if (err < 0 && !s->exit_code)
        s->exit_code = cli_fail(a.cmd, "event loop: %s", nk_strerror(err));
    sniff_finish(s, &a);
    rc = s->exit_code;
    sniff_free(s);
    return rc;
}
