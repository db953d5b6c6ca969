/* netkit chat serve: the chat server (protocol: docs/chat-protocol.md).
 *
 * One event loop; each connection has a frame decoder for what it sends and an output buffer
 * for what it must receive. A message is appended, in arrival order, to the output buffer of
 * every other member, which gives "exactly once, in order" for free: there is one queue per
 * member and one thread of control.
 *
 * A member that does not read must not stall the others, so the server never waits for a
 * member: its output buffer is bounded (--max-queue, 1 MiB by default, on top of what the
 * kernel's socket buffer holds) and a member whose queue would pass the bound is dropped, with
 * a notice to the others (what IRC servers call "SendQ exceeded"). Drops and leaves found while
 * relaying are not handled in the middle of the relay loop: the member is marked and reaped
 * once the current callback ends, so the member list never changes under an iteration.
 */
#include "cli.h"
#include "chat.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHAT_READ_CHUNK 65536
#define CHAT_READS_PER_EVENT 4 /* one busy member cannot starve the others */
#define CHAT_DEFAULT_QUEUE (1024 * 1024)
#define CHAT_DEFAULT_MAX_CLIENTS 1000
#define CHAT_ACCEPT_PAUSE_MS 100

typedef struct chat_server chat_server;
typedef struct chat_conn chat_conn;

enum { ST_HELLO, ST_JOINED, ST_CLOSING, ST_DEAD };

struct chat_conn {
    nk_io io;
    nk_frame_decoder in;
    nk_buf out;
    unsigned interest;
    int state;
    char name[CHAT_NAME_MAX + 1];
    char peer[NK_ADDR_STRLEN];
    const char *dead_why;  /* ST_DEAD: "left", "dropped (not reading)", ... or NULL: quiet */
    chat_server *srv;
    chat_conn *prev, *next;
};

struct chat_server {
    const char *cmd;
    nk_loop *loop;
    int lfd;
    nk_io lio;
    nk_timer resume;
    nk_signal sigint, sigterm;
    chat_conn *conns;
    size_t nconns;
    size_t max_clients;
    size_t max_queue;
    int need_reap;
    int exit_code;
};

static void conn_update(chat_conn *c);

static chat_conn *find_member(chat_server *srv, const char *name, size_t len)
{
    for (chat_conn *c = srv->conns; c; c = c->next)
        if (c->state == ST_JOINED && strlen(c->name) == len && memcmp(c->name, name, len) == 0)
            return c;
    return NULL;
}

/* Mark a connection to be closed once the current callback ends. why: the leave notice for
 * the others ("left", ...), or NULL when it never joined. */
static void conn_kill(chat_conn *c, const char *why)
{
    if (c->state == ST_DEAD)
        return;
    c->dead_why = c->state == ST_JOINED || c->state == ST_CLOSING ? why : NULL;
    if (c->state == ST_CLOSING) /* it said QUIT: its leave was announced already */
        c->dead_why = NULL;
    c->state = ST_DEAD;
    nk_io_stop(c->srv->loop, &c->io);
    c->interest = 0;
    c->srv->need_reap = 1;
}

/* Queue one message for c. A queue over the bound drops c. */
static void conn_send(chat_conn *c, const char *msg, size_t len)
{
    if (c->state == ST_DEAD)
        return;
    if (nk_buf_len(&c->out) + 4 + len > c->srv->max_queue ||
        nk_frame_encode(NK_FRAME_LEN32, msg, len, CHAT_FRAME_MAX, &c->out) < 0) {
        conn_kill(c, "dropped (not reading)");
        return;
    }
    conn_update(c);
}

static void conn_sendf(chat_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_sendf(chat_conn *c, const char *fmt, ...)
{
    char msg[CHAT_NAME_MAX * 2 + 256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n >= 0)
        conn_send(c, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

/* Send msg to every joined member except `except`. */
static void relay(chat_server *srv, chat_conn *except, const char *msg, size_t len)
{
    for (chat_conn *c = srv->conns; c; c = c->next)
        if (c != except && c->state == ST_JOINED)
            conn_send(c, msg, len);
}

static void relayf(chat_server *srv, chat_conn *except, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void relayf(chat_server *srv, chat_conn *except, const char *fmt, ...)
{
    char msg[CHAT_NAME_MAX * 2 + 256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n >= 0)
        relay(srv, except, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

static void conn_free(chat_conn *c)
{
    chat_server *srv = c->srv;
    nk_io_stop(srv->loop, &c->io);
    close(c->io.fd);
    nk_frame_decoder_free(&c->in);
    nk_buf_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    free(c);
}

/* Close the dead, announcing each leave; an announcement may drop further members, so repeat
 * until nothing is left to reap. */
static void reap(chat_server *srv)
{
    while (srv->need_reap) {
        srv->need_reap = 0;
        chat_conn *next;
        for (chat_conn *c = srv->conns; c; c = next) {
            next = c->next;
            if (c->state != ST_DEAD)
                continue;
            if (c->dead_why) {
                char name[CHAT_NAME_MAX + 1];
                char why[64];
                snprintf(name, sizeof name, "%s", c->name);
                snprintf(why, sizeof why, "%s", c->dead_why);
                fprintf(stderr, "chat: %s %s\n", name, why);
                conn_free(c);
                if (strncmp(why, "dropped", 7) == 0)
                    relayf(srv, NULL, "DROP %s%s", name, why + 7);
                else if (strcmp(why, "left") == 0)
                    relayf(srv, NULL, "LEAVE %s", name);
                else /* "left (connection reset)" */
                    relayf(srv, NULL, "LEAVE %s%s", name, why + 4);
                next = srv->conns; /* the list may have changed: rescan */
            } else {
                conn_free(c);
            }
        }
    }
    fflush(stderr);
}

/* ---- commands ------------------------------------------------------------------------------ */

static void suggest_name(chat_server *srv, const char *name, size_t len, char *out, size_t cap)
{
    if (len > CHAT_NAME_MAX - 4)
        len = CHAT_NAME_MAX - 4;
    for (int i = 2; i < 10000; i++) {
        snprintf(out, cap, "%.*s%d", (int)len, name, i);
        if (!find_member(srv, out, strlen(out)))
            return;
    }
    snprintf(out, cap, "guest%d", (int)srv->nconns);
}

static void on_hello(chat_conn *c, const char *name, size_t len)
{
    chat_server *srv = c->srv;
    if (!chat_name_valid(name, len)) {
        conn_sendf(c, "ERR invalid name (1 to %d of A-Z a-z 0-9 _ . -)", CHAT_NAME_MAX);
        return;
    }
    if (find_member(srv, name, len)) {
        char alt[CHAT_NAME_MAX + 1];
        suggest_name(srv, name, len, alt, sizeof alt);
        conn_sendf(c, "TAKEN %.*s %s", (int)len, name, alt);
        return;
    }
    memcpy(c->name, name, len);
    c->name[len] = '\0';
    size_t members = 1;
    for (chat_conn *o = srv->conns; o; o = o->next)
        members += o->state == ST_JOINED;
    c->state = ST_JOINED;
    fprintf(stderr, "chat: %s joined from %s\n", c->name, c->peer);
    conn_sendf(c, "WELCOME %s %zu", c->name, members);
    relayf(srv, c, "JOIN %s", c->name);
}

static void on_who(chat_conn *c)
{
    nk_buf msg;
    nk_buf_init(&msg, CHAT_FRAME_MAX);
    int rc = nk_buf_append_str(&msg, "WHO");
    for (chat_conn *o = c->srv->conns; o && rc >= 0; o = o->next)
        if (o->state == ST_JOINED)
            rc = nk_buf_printf(&msg, " %s", o->name);
    if (rc >= 0)
        conn_send(c, nk_buf_rptr(&msg), nk_buf_len(&msg));
    else
        conn_sendf(c, "ERR too many members to list");
    nk_buf_free(&msg);
}

static void on_nick(chat_conn *c, const char *name, size_t len)
{
    chat_server *srv = c->srv;
    if (!chat_name_valid(name, len)) {
        conn_sendf(c, "ERR invalid name (1 to %d of A-Z a-z 0-9 _ . -)", CHAT_NAME_MAX);
        return;
    }
    chat_conn *other = find_member(srv, name, len);
    if (other == c)
        return;
    if (other) {
        char alt[CHAT_NAME_MAX + 1];
        suggest_name(srv, name, len, alt, sizeof alt);
        conn_sendf(c, "ERR name taken: %.*s (try %s)", (int)len, name, alt);
        return;
    }
    char old[CHAT_NAME_MAX + 1];
    memcpy(old, c->name, sizeof old);
    memcpy(c->name, name, len);
    c->name[len] = '\0';
    fprintf(stderr, "chat: %s is now %s\n", old, c->name);
    relayf(srv, NULL, "NICK %s %s", old, c->name); /* the member itself learns it took effect */
}

/* Split "WORD rest": *word_len and the rest (after one space) in *rest and *rest_len. */
static void split_word(const char *msg, size_t len, size_t *word_len, const char **rest,
                       size_t *rest_len)
{
    const char *sp = memchr(msg, ' ', len);
    *word_len = sp ? (size_t)(sp - msg) : len;
    *rest = sp ? sp + 1 : msg + len;
    *rest_len = sp ? len - *word_len - 1 : 0;
}

static int word_is(const char *w, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

static void on_message(chat_conn *c, const char *msg, size_t len)
{
    chat_server *srv = c->srv;
    size_t wlen, rlen;
    const char *rest;
    split_word(msg, len, &wlen, &rest, &rlen);
    if (c->state == ST_HELLO) {
        if (word_is(msg, wlen, "HELLO"))
            on_hello(c, rest, rlen);
        else if (word_is(msg, wlen, "QUIT"))
            conn_kill(c, NULL);
        else
            conn_sendf(c, "ERR say HELLO NAME first");
        return;
    }
    if (word_is(msg, wlen, "MSG")) {
        if (!chat_text_valid(rest, rlen)) {
            conn_sendf(c, "ERR control characters are not allowed");
            return;
        }
        /* "MSG name text": built once, queued for every other member. */
        nk_buf out;
        nk_buf_init(&out, 0);
        if (nk_buf_printf(&out, "MSG %s ", c->name) >= 0 && nk_buf_append(&out, rest, rlen) == 0)
            relay(srv, c, nk_buf_rptr(&out), nk_buf_len(&out));
        nk_buf_free(&out);
    } else if (word_is(msg, wlen, "NICK")) {
        on_nick(c, rest, rlen);
    } else if (word_is(msg, wlen, "WHO") && rlen == 0) {
        on_who(c);
    } else if (word_is(msg, wlen, "QUIT")) {
        fprintf(stderr, "chat: %s left\n", c->name);
        relayf(srv, c, "LEAVE %s", c->name);
        conn_sendf(c, "BYE");
        if (c->state != ST_DEAD) {
            c->state = ST_CLOSING; /* flush BYE, then close */
            conn_update(c);
        }
    } else if (word_is(msg, wlen, "HELLO")) {
        conn_sendf(c, "ERR already joined as %s", c->name);
    } else {
        conn_sendf(c, "ERR unknown command '%.*s'", (int)(wlen > 32 ? 32 : wlen), msg);
    }
}

/* ---- I/O ------------------------------------------------------------------------------------ */

static void conn_update(chat_conn *c)
{
    if (c->state == ST_DEAD)
        return;
    unsigned want = 0;
    if (c->state != ST_CLOSING)
        want |= NK_READ;
    if (nk_buf_len(&c->out) > 0)
        want |= NK_WRITE;
    if (want == 0) { /* closing and flushed */
        conn_kill(c, NULL);
        return;
    }
    if (want != c->interest) {
        if (nk_io_start(c->srv->loop, &c->io, want) < 0) {
            conn_kill(c, "left (cannot be watched)");
            return;
        }
        c->interest = want;
    }
}

static void conn_on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    chat_conn *c = io->data;
    chat_server *srv = c->srv;
    if (events & (NK_WRITE | NK_ERROR)) {
        while (nk_buf_len(&c->out) > 0) {
            ssize_t n = nk_buf_write_fd(&c->out, io->fd);
            if (n == -EAGAIN || n == -EWOULDBLOCK || n == 0)
                break;
            if (n < 0) {
                conn_kill(c, n == -ECONNRESET || n == -EPIPE ? "left (connection reset)" : "left");
                goto out;
            }
        }
        if (nk_buf_len(&c->out) == 0)
            nk_buf_release(&c->out);
    }
    if ((events & (NK_READ | NK_ERROR)) && c->state != ST_CLOSING && c->state != ST_DEAD) {
        char chunk[CHAT_READ_CHUNK];
        for (int i = 0; i < CHAT_READS_PER_EVENT && c->state != ST_DEAD; i++) {
            ssize_t n = read(io->fd, chunk, sizeof chunk);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                break;
            if (n < 0) {
                conn_kill(c, errno == ECONNRESET ? "left (connection reset)" : "left");
                break;
            }
            if (n == 0) {
                conn_kill(c, "left");
                break;
            }
            if (nk_frame_feed(&c->in, chunk, (size_t)n) < 0) {
                conn_sendf(c, "ERR message too long");
                conn_kill(c, "left (protocol error)");
                break;
            }
            const char *msg;
            size_t len;
            int rc;
            while (c->state != ST_DEAD && c->state != ST_CLOSING &&
                   (rc = nk_frame_next(&c->in, &msg, &len)) > 0)
                on_message(c, msg, len);
            if ((size_t)n < sizeof chunk || c->state == ST_CLOSING)
                break;
        }
    }
    conn_update(c);
out:
    reap(srv);
}

static void conn_new(chat_server *srv, int fd, const nk_addr *peer)
{
    chat_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    nk_io_init(&c->io, fd, conn_on_io, c);
    nk_frame_decoder_init(&c->in, NK_FRAME_LEN32, CHAT_FRAME_MAX);
    nk_buf_init(&c->out, 0); /* bounded by max_queue in conn_send */
    c->srv = srv;
    c->state = ST_HELLO;
    if (nk_addr_format(peer, c->peer, sizeof c->peer) < 0)
        strcpy(c->peer, "?");
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    nk_sock_set_nodelay(fd, 1);
    if (srv->nconns > srv->max_clients) {
        conn_sendf(c, "ERR server full (%zu members)", srv->max_clients);
        if (c->state != ST_DEAD) {
            c->state = ST_CLOSING;
            conn_update(c);
        }
        return;
    }
    conn_update(c);
}

static void on_resume(nk_loop *loop, nk_timer *t)
{
    chat_server *srv = t->data;
    nk_io_start(loop, &srv->lio, NK_READ);
}

static void on_accept(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    chat_server *srv = io->data;
    for (int i = 0; i < 64; i++) {
        nk_addr peer;
        int fd = nk_sock_accept(srv->lfd, &peer);
        if (fd >= 0) {
            conn_new(srv, fd, &peer);
            continue;
        }
        if (fd == -EAGAIN || fd == -EWOULDBLOCK)
            break;
        if (fd == -EINTR || fd == -ECONNABORTED || fd == -EPROTO || fd == -EPERM)
            continue;
        /* Out of descriptors or memory: retrying at once would spin. */
        nk_io_stop(loop, &srv->lio);
        nk_timer_start(loop, &srv->resume, CHAT_ACCEPT_PAUSE_MS, 0);
        break;
    }
    reap(srv);
}

static void on_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)sig;
    (void)signum;
    nk_loop_stop(loop);
}

static void serve_help(FILE *out)
{
    fprintf(out,
            "usage: netkit chat serve ADDR [--max-clients N] [--max-queue BYTES]\n"
            "\n"
            "Run a group chat server: every message reaches every other member once, in order.\n"
            "\n"
            "  ADDR               HOST:PORT, [IPV6]:PORT or PORT (port 0 picks a free one)\n"
            "  -m, --max-clients N  connections served at once (default %d)\n"
            "  -q, --max-queue B    bytes queued for a member that does not read before it is\n"
            "                     dropped (default %d)\n"
            "  -h, --help         show this help\n"
            "\n"
            "Prints \"listening on tcp://HOST:PORT\" on stderr once ready, then one line per\n"
            "join, leave and drop. SIGINT or SIGTERM closes everything (exit 0). The protocol\n"
            "is in docs/chat-protocol.md.\n",
            CHAT_DEFAULT_MAX_CLIENTS, CHAT_DEFAULT_QUEUE);
}

int chat_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"max-clients", required_argument, NULL, 'm'},
        {"max-queue", required_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    chat_server srv;
    memset(&srv, 0, sizeof srv);
    srv.cmd = cmd;
    srv.lfd = -1;
    srv.max_clients = CHAT_DEFAULT_MAX_CLIENTS;
    srv.max_queue = CHAT_DEFAULT_QUEUE;
    long v;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:q:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (cli_parse_long(optarg, 1, 1000000, &v) < 0)
                return cli_usage(cmd, "invalid --max-clients '%s' (1 to 1000000)", optarg);
            srv.max_clients = (size_t)v;
            break;
        case 'q':
            if (cli_parse_long(optarg, 1024, 1L << 30, &v) < 0)
                return cli_usage(cmd, "invalid --max-queue '%s' (1024 to 2^30 bytes)", optarg);
            srv.max_queue = (size_t)v;
            break;
        case 'h':
            serve_help(stdout);
            return CLI_OK;
        default:
            return cli_getopt_error(cmd, c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage(cmd, "missing ADDR");
    if (optind + 1 < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind + 1]);
    nk_addr addr;
    int rc = cli_parse_bind_addr(cmd, argv[optind], SOCK_STREAM, &addr);
    if (rc)
        return rc;
    if (nk_addr_family(&addr) == AF_UNIX)
        return cli_usage(cmd, "chat serves TCP only (HOST:PORT)");
    /* A member that vanished must not kill the server with SIGPIPE; writes get EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    srv.lfd = nk_sock_listen(&addr, SOCK_STREAM, 0, 0);
    if (srv.lfd < 0)
        return cli_fail(cmd, "cannot listen on %s: %s", argv[optind], nk_strerror(srv.lfd));
    rc = nk_loop_new(NULL, &srv.loop);
    if (rc < 0) {
        close(srv.lfd);
        return cli_fail(cmd, "event loop: %s", nk_strerror(rc));
    }
    nk_io_init(&srv.lio, srv.lfd, on_accept, &srv);
    nk_timer_init(&srv.resume, on_resume, &srv);
    nk_signal_init(&srv.sigint, on_signal, &srv);
    nk_signal_init(&srv.sigterm, on_signal, &srv);
    nk_signal_start(srv.loop, &srv.sigint, SIGINT);
    nk_signal_start(srv.loop, &srv.sigterm, SIGTERM);
    rc = nk_io_start(srv.loop, &srv.lio, NK_READ);
    if (rc < 0)
        srv.exit_code = cli_fail(cmd, "cannot watch the listener: %s", nk_strerror(rc));
    else if (cli_print_listening("tcp", srv.lfd) < 0)
        srv.exit_code = cli_fail(cmd, "getsockname failed");
    else if ((rc = nk_loop_run(srv.loop, NK_RUN_DEFAULT)) < 0)
        srv.exit_code = cli_fail(cmd, "event loop: %s", nk_strerror(rc));
    while (srv.conns)
        conn_free(srv.conns);
    nk_io_stop(srv.loop, &srv.lio);
    nk_timer_stop(srv.loop, &srv.resume);
    nk_signal_stop(srv.loop, &srv.sigint);
    nk_signal_stop(srv.loop, &srv.sigterm);
    nk_loop_free(srv.loop);
    close(srv.lfd);
    return srv.exit_code;
}
