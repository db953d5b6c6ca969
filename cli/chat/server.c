/* netkit chat serve: the chat server (protocol: docs/chat-protocol.md).
 *
 * One event loop; each connection has a frame decoder for what it sends and an output buffer
 * for what it must receive. A message is appended, in arrival order, to the output buffer of
 * every other member, which gives "exactly once, in order" for free: there is one queue per
 * member and one thread of control.
 *
 * Flow control has to tell a member that reads slowly from one that does not read at all. When
 * any member's queue passes the low-water mark (CHAT_LOW_WATER), the server stops reading from
 * every member (the senders) until each queue has drained to half the mark, so a flood goes at
 * the pace of the slowest reader and TCP pushes back on the senders instead of the queues
 * growing. A member that stays over the mark without taking a single byte for --send-timeout
 * seconds, or whose queue would pass the hard cap (--max-queue, 1 MiB), is not reading: it is
 * dropped with a notice to the others (what IRC servers call "SendQ exceeded"), so it can stall
 * the others for at most the send timeout. A connection that sends no HELLO within
 * --hello-timeout seconds, or that does not take its BYE within the send timeout, is closed so
 * that it cannot hold a slot.
 *
 * Drops and leaves found while relaying are not handled in the middle of the relay loop: the
 * member is marked and reaped once the current callback ends, so the member list never changes
 * under an iteration. Pausing and resuming reads is applied at the same point.
 *
 * With --tls a connection starts with its handshake, driven on the loop (cli_conn) within the
 * HELLO deadline; everything else is the same, over nk_tls. Reads take at least a whole
 * record (CLI_CONN_READ_MIN), so a member whose reads are paused keeps nothing inside OpenSSL
 * that resuming would have to find without a readiness event.
 */
#include "cli.h"
#include "chat/chat.h"
#include "cli_server.h"
#include "cli_tls.h"
#include "opt.h"

#include <errno.h>
#include <getopt.h> /* optind, for cli_one_operand */
#include <stdarg.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHAT_READ_CHUNK 65536
#define CHAT_READS_PER_EVENT 4 /* one busy member cannot starve the others */
#define CHAT_DEFAULT_QUEUE 1048576 /* 1 MiB */
#define CHAT_LOW_WATER_KIB 256
#define CHAT_LOW_WATER (CHAT_LOW_WATER_KIB * 1024) /* capped at half of --max-queue */
#define CHAT_DEFAULT_SEND_TIMEOUT 5
#define CHAT_DEFAULT_HELLO_TIMEOUT 10
#define CHAT_DEFAULT_MAX_CLIENTS 1000
#define CHAT_ACCEPTS_PER_EVENT 64
/* Largest message conn_sendf and relayf format (notices: a command word, two names, a reason). */
#define CHAT_NOTICE_MAX (CHAT_NAME_MAX * 2 + 256)

/* Whatever the server relays must fit in what every receiver accepts (CHAT_FRAME_MAX), or a
 * single sender could get every other member dropped. The largest relay is "MSG name text"
 * with the longest name and text; notices are formatted into CHAT_NOTICE_MAX bytes; WHO is
 * built in a buffer capped at CHAT_FRAME_MAX. */
#define CHAT_RELAY_MSG_MAX (sizeof "MSG " - 1 + CHAT_NAME_MAX + 1 + CHAT_TEXT_MAX)
_Static_assert(CHAT_RELAY_MSG_MAX <= CHAT_FRAME_MAX, "a relayed MSG could exceed the frame limit");
_Static_assert(CHAT_NOTICE_MAX <= CHAT_FRAME_MAX, "a notice could exceed the frame limit");

typedef struct chat_server chat_server;
typedef struct chat_conn chat_conn;

enum { ST_HELLO, ST_JOINED, ST_CLOSING, ST_DEAD };

struct chat_conn {
    cli_conn conn;
    nk_io io;
    nk_frame_decoder in;
    nk_buf out;
    unsigned interest;
    int state;
    int over;               /* joined and its queue is over the low-water mark */
    nk_timer timer;         /* HELLO deadline, or no-progress deadline (over the mark, closing) */
    uint64_t progress_at;   /* loop time of the last write that took bytes */
    char name[CHAT_NAME_MAX + 1];
    char peer[NK_ADDR_STRLEN];
    const char *dead_why;  /* ST_DEAD: "left", "dropped (not reading)", ... or NULL: quiet */
    chat_server *srv;
    chat_conn *prev, *next;
};

struct chat_server {
    const char *cmd;
    cli_server net; /* listener, loop, TLS context, acceptor, stop signals */
    chat_conn *conns;
    size_t nconns;
    size_t max_clients;
    size_t max_queue;
    size_t low_water;
    uint64_t send_timeout_ms;
    uint64_t hello_timeout_ms;
    size_t nover;           /* members over the low-water mark */
    int paused;             /* reads from members are paused (applied state) */
    int need_reap;
    int exit_code;
};

static void conn_update(chat_conn *c);
static void flow_apply(chat_server *srv);

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
    nk_io_stop(c->srv->net.loop, &c->io);
    nk_timer_stop(c->srv->net.loop, &c->timer);
    c->interest = 0;
    if (c->over) {
        c->over = 0;
        c->srv->nover--;
    }
    c->srv->need_reap = 1;
}

/* Queue one message for c. A queue over the bound drops c. */
static void conn_send(chat_conn *c, const char *msg, size_t len)
{
    if (c->state == ST_DEAD)
        return;
    if (len > CHAT_FRAME_MAX) {
        /* Cannot happen (see CHAT_RELAY_MSG_MAX): if it did, the fault would be ours, not the
         * receiver's, so it must not be dropped as "not reading". */
        fprintf(stderr, "netkit: %s: a %zu-byte message over the frame limit was not sent to "
                        "%s\n", c->srv->cmd, len, c->state == ST_JOINED ? c->name : c->peer);
        return;
    }
    if (nk_buf_len(&c->out) + 4 + len > c->srv->max_queue ||
        nk_frame_encode(NK_FRAME_LEN32, msg, len, CHAT_FRAME_MAX, &c->out) < 0) {
        conn_kill(c, "dropped (not reading)");
        return;
    }
    conn_update(c);
}

/* Flush what is queued (BYE, or why it is refused), then close; within the send timeout. */
static void conn_closing(chat_conn *c)
{
    if (c->state == ST_DEAD)
        return;
    c->state = ST_CLOSING;
    conn_update(c); /* no longer over the mark (not a member now); may close at once */
    if (c->state == ST_CLOSING) {
        c->progress_at = nk_loop_now(c->srv->net.loop);
        nk_timer_start(c->srv->net.loop, &c->timer, c->srv->send_timeout_ms, 0);
    }
}

static void conn_sendf(chat_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_sendf(chat_conn *c, const char *fmt, ...)
{
    char msg[CHAT_NOTICE_MAX];
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
    char msg[CHAT_NOTICE_MAX];
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
    nk_io_stop(srv->net.loop, &c->io);
    nk_timer_stop(srv->net.loop, &c->timer);
    if (c->over) {
        c->over = 0;
        srv->nover--;
    }
    cli_conn_close(&c->conn);
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
    for (;;) {
        flow_apply(srv); /* may find a closing member flushed: repeat */
        if (!srv->need_reap)
            break;
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
                fprintf(stderr, "netkit: %s: %s %s\n", srv->cmd, name, why);
                conn_free(c);
                /* "dropped (not reading)" -> "DROP name not reading"; the reason goes
                 * without its parentheses, which the client adds. */
                const char *reason = strchr(why, '(');
                size_t rlen = reason ? strcspn(reason + 1, ")") : 0;
                if (strncmp(why, "dropped", 7) == 0)
                    relayf(srv, NULL, "DROP %s %.*s", name, (int)rlen, reason ? reason + 1 : "");
                else if (!reason)
                    relayf(srv, NULL, "LEAVE %s", name);
                else /* "left (connection reset)" */
                    relayf(srv, NULL, "LEAVE %s %.*s", name, (int)rlen, reason + 1);
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
    nk_timer_stop(srv->net.loop, &c->timer); /* the HELLO deadline */
    fprintf(stderr, "netkit: %s: %s joined from %s\n", srv->cmd, c->name, c->peer);
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
    fprintf(stderr, "netkit: %s: %s is now %s\n", srv->cmd, old, c->name);
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
        /* The decoder lets through frames up to CHAT_FRAME_MAX; the text limit leaves room
         * for "MSG name " in the relayed copy. Refused, not fatal: the sender stays joined. */
        if (rlen > CHAT_TEXT_MAX) {
            conn_sendf(c, "ERR message too long (at most %d bytes)", CHAT_TEXT_MAX);
            return;
        }
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
        fprintf(stderr, "netkit: %s: %s left\n", srv->cmd, c->name);
        relayf(srv, c, "LEAVE %s", c->name);
        conn_sendf(c, "BYE");
        conn_closing(c);
    } else if (word_is(msg, wlen, "HELLO")) {
        conn_sendf(c, "ERR already joined as %s", c->name);
    } else {
        conn_sendf(c, "ERR unknown command '%.*s'", (int)(wlen > 32 ? 32 : wlen), msg);
    }
}

/* ---- I/O ------------------------------------------------------------------------------------ */

/* Pause reads from every member while one is over the mark, resume once none is; called once
 * the current callback's work is done (from reap), so that interest changes never happen
 * under an iteration. Connections still in HELLO are read either way: a join is small. */
static void flow_apply(chat_server *srv)
{
    int paused = srv->nover > 0;
    if (paused == srv->paused)
        return;
    srv->paused = paused;
    for (chat_conn *c = srv->conns; c; c = c->next)
        conn_update(c);
}

/* Track whether c's queue is over the low-water mark: over when it passes the mark, back under
 * at half of it (so that reads are not paused and resumed for every message). Over the mark,
 * the no-progress deadline runs. */
static void conn_watch_queue(chat_conn *c)
{
    chat_server *srv = c->srv;
    size_t len = nk_buf_len(&c->out);
    int over = c->state == ST_JOINED && (c->over ? len > srv->low_water / 2 : len > srv->low_water);
    if (over == c->over)
        return;
    c->over = over;
    if (over) {
        srv->nover++;
        c->progress_at = nk_loop_now(srv->net.loop);
        nk_timer_start(srv->net.loop, &c->timer, srv->send_timeout_ms, 0);
    } else {
        srv->nover--;
        nk_timer_stop(srv->net.loop, &c->timer);
    }
}

static void conn_update(chat_conn *c)
{
    if (c->state == ST_DEAD)
        return;
    conn_watch_queue(c);
    unsigned want = cli_conn_interest(&c->conn,
                                      c->state == ST_HELLO ||
                                          (c->state == ST_JOINED && !c->srv->paused),
                                      nk_buf_len(&c->out) > 0);
    if (want == 0 && c->state == ST_CLOSING) { /* closing and flushed */
        conn_kill(c, NULL);
        return;
    }
    if (want != c->interest) { /* 0: a paused member with nothing to send */
        if (nk_io_start(c->srv->net.loop, &c->io, want) < 0) {
            conn_kill(c, "left (cannot be watched)");
            return;
        }
        c->interest = want;
    }
}

/* The deadline of a connection: no HELLO in time, or no write progress in time while over the
 * mark or while flushing its BYE. Progress since the timer started moves the deadline. */
static void conn_on_timer(nk_loop *loop, nk_timer *t)
{
    chat_conn *c = t->data;
    chat_server *srv = c->srv;
    uint64_t idle = nk_loop_now(loop) - c->progress_at;
    if (c->state == ST_HELLO) {
        fprintf(stderr, "netkit: %s: %s sent no HELLO within %llu s: closed\n", srv->cmd, c->peer,
                (unsigned long long)(srv->hello_timeout_ms / 1000));
        conn_kill(c, NULL);
    } else if ((c->state == ST_JOINED && c->over) || c->state == ST_CLOSING) {
        if (idle < srv->send_timeout_ms)
            nk_timer_start(loop, t, srv->send_timeout_ms - idle, 0);
        else
            conn_kill(c, c->state == ST_JOINED ? "dropped (not reading)" : NULL);
    }
    reap(srv);
}

/* --tls: one step of the handshake. 0 once done, else the caller is finished with c. */
static int conn_handshake(chat_conn *c)
{
    int rc = cli_conn_handshake(&c->conn);
    if (rc == 0)
        return 0;
    if (rc != -EAGAIN) {
        cli_server_handshake_failed(c->srv->cmd, c->peer, &c->conn, rc);
        conn_kill(c, NULL);
        return -1;
    }
    conn_update(c);
    return -1;
}

/* Send what is queued while the socket takes it: 0, or -1 once c is killed. */
static int chat_conn_flush(chat_conn *c)
{
    while (nk_buf_len(&c->out) > 0) {
        ssize_t n = cli_conn_send(&c->conn, &c->out);
        if (n == -EAGAIN)
            break;
        if (n < 0) {
            conn_kill(c, n == -ECONNRESET || n == -EPIPE ? "left (connection reset)" : "left");
            return -1;
        }
        c->progress_at = nk_loop_now(c->srv->net.loop);
    }
    if (nk_buf_len(&c->out) == 0)
        nk_buf_release(&c->out);
    return 0;
}

/* n bytes read from c into its decoder, each complete message handled: 0, or -1 once c is
 * killed for a protocol error. */
static int chat_conn_feed(chat_conn *c, const char *chunk, size_t n)
{
    const char *msg;
    size_t len;
    int rc = nk_frame_feed(&c->in, chunk, n);
    while (rc >= 0 && c->state != ST_DEAD && c->state != ST_CLOSING &&
           (rc = nk_frame_next(&c->in, &msg, &len)) > 0)
        on_message(c, msg, len);
    /* next reports what feed could not see yet (an over-long unfinished line checked after a
     * complete one): the same protocol error as a failed feed. */
    if (rc < 0) {
        conn_sendf(c, "ERR message too long");
        conn_kill(c, "left (protocol error)");
        return -1;
    }
    return 0;
}

/* Read and handle what c sent, a few chunks at most. Stop at once when a queue passes the
 * mark: what was read is relayed (the decoder keeps no complete frame back), the rest waits
 * in the kernel. */
static void chat_conn_read(chat_conn *c)
{
    chat_server *srv = c->srv;
    char chunk[CHAT_READ_CHUNK];
    for (int i = 0; i < CHAT_READS_PER_EVENT &&
                    (c->state == ST_HELLO || (c->state == ST_JOINED && srv->nover == 0));
         i++) {
        ssize_t n = cli_conn_read(&c->conn, chunk, sizeof chunk);
        if (n == -EAGAIN)
            break;
        if (n < 0) {
            if (c->conn.tls && n != -ECONNRESET)
                fprintf(stderr, "netkit: %s: %s: TLS: %s\n", srv->cmd, c->peer,
                        cli_conn_why(&c->conn, (int)n));
            conn_kill(c, n == -ECONNRESET ? "left (connection reset)" : "left");
            break;
        }
        if (n == 0) {
            conn_kill(c, "left");
            break;
        }
        if (chat_conn_feed(c, chunk, (size_t)n) < 0)
            break;
        /* A short read drained the socket; a TLS read takes one record at a time. */
        if ((!c->conn.tls && (size_t)n < sizeof chunk) || c->state == ST_CLOSING)
            break;
    }
}

static void conn_on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    chat_conn *c = io->data;
    chat_server *srv = c->srv;
    if (c->conn.handshaking) {
        if (conn_handshake(c) != 0)
            goto out;
        events |= c->conn.rd_wait | (nk_buf_len(&c->out) > 0 ? c->conn.wr_wait : 0);
    }
    if (cli_conn_can_write(&c->conn, events) && chat_conn_flush(c) < 0)
        goto out;
    if (cli_conn_can_read(&c->conn, events) && c->state != ST_CLOSING && c->state != ST_DEAD &&
        (c->state == ST_HELLO || !srv->paused))
        chat_conn_read(c);
    conn_update(c);
out:
    reap(srv);
}

/* SIGTERM/SIGINT: tell every member why the connection is about to close (NOTICE), so a
 * client can say "server shutting down" instead of reporting a lost connection. The notice
 * goes with what the socket takes now, without waiting: a member far behind in its queue
 * misses it, and the close tells it anyway. */
static void on_stop_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)signum;
    chat_server *srv = sig->data;
    for (chat_conn *c = srv->conns; c; c = c->next) {
        if (c->state != ST_JOINED)
            continue;
        conn_sendf(c, "NOTICE server shutting down");
        while (c->state != ST_DEAD && !c->conn.handshaking && nk_buf_len(&c->out) > 0 &&
               cli_conn_send(&c->conn, &c->out) > 0)
            ;
    }
    nk_loop_stop(loop);
}

static void conn_new(chat_server *srv, int fd, const nk_addr *peer)
{
    chat_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    cli_conn_init(&c->conn, fd, NULL);
    if (srv->net.tls_ctx && cli_conn_accept_tls(&c->conn, srv->net.tls_ctx) < 0) {
        close(fd);
        free(c);
        return;
    }
    nk_io_init(&c->io, fd, conn_on_io, c);
    nk_timer_init(&c->timer, conn_on_timer, c);
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
        conn_closing(c);
        return;
    }
    nk_timer_start(srv->net.loop, &c->timer, srv->hello_timeout_ms, 0);
    conn_update(c);
}

static void on_conn(cli_acceptor *a, int fd, const nk_addr *peer)
{
    chat_server *srv = a->data;
    conn_new(srv, fd, peer);
    reap(srv); /* a refused newcomer ("server full") may be reaped at once */
}

#define CHAT_STR_(x) #x
#define CHAT_STR(x) CHAT_STR_(x) /* a number's digits, for the option table's texts */

enum { CHAT_OPT_HELLO_TIMEOUT = CLI_OPT_LONG };

static const cli_opt chat_serve_opts[] = {
    {"max-clients", 'm', "N",
     "connections served at once (default " CHAT_STR(CHAT_DEFAULT_MAX_CLIENTS) ")"},
    {"max-queue", 'q', "BYTES", "bytes queued for a member before it is dropped, whatever its "
                                "progress (default " CHAT_STR(CHAT_DEFAULT_QUEUE) ")"},
    {"send-timeout", 't', "SEC",
     "while a member has over " CHAT_STR(CHAT_LOW_WATER_KIB) " KiB queued, reading from every "
     "member pauses; one that takes no byte for SEC seconds then is dropped as not reading "
     "(default " CHAT_STR(CHAT_DEFAULT_SEND_TIMEOUT) ")"},
    {"hello-timeout", CHAT_OPT_HELLO_TIMEOUT, "SEC",
     "close a connection that does not join within SEC seconds, TLS handshake included "
     "(default " CHAT_STR(CHAT_DEFAULT_HELLO_TIMEOUT) ")"},
    {"tls", CLI_TLS_OPT_TLS, NULL,
     "speak TLS (1.2 or 1.3, forward-secret AEAD ciphers only) with the certificate of "
     "--tls-cert and --tls-key, or of --tls-self-signed; each handshake runs on the event "
     "loop, bounded by --hello-timeout"},
    CLI_TLS_CERT_OPTS,
    {NULL, 0, NULL, NULL},
};

static const cli_operand chat_serve_operands[] = {
    {"ADDR", "HOST:PORT, [IPV6]:PORT or PORT (port 0 picks a free one)"},
    {NULL, NULL},
};

static void chat_serve_notes(FILE *out)
{
    fputs("Prints \"listening on tcp://HOST:PORT\" on stderr once ready, then one line per\n"
          "join, leave and drop. SIGINT or SIGTERM closes everything (exit 0). The protocol\n"
          "is in docs/chat-protocol.md.\n", out);
}

static const cli_spec chat_serve_spec = {
    .cmd = "chat serve",
    .synopsis = "ADDR [--max-clients N] [--max-queue BYTES]\n"
                "                         [--send-timeout SEC] [--hello-timeout SEC]\n"
                "                         [--tls --tls-cert FILE --tls-key FILE|--tls-self-signed]",
    .about = "Run a group chat server over TCP with framed messages: every message reaches every\n"
             "other member once, in order.\n",
    .operands = chat_serve_operands,
    .opts = chat_serve_opts,
    .notes = chat_serve_notes,
};
CLI_SPEC_REGISTER(chat_serve_spec);

/* What the command line of chat serve asked for. */
typedef struct chat_serve_args {
    const char *cmd;
    const char *text; /* ADDR as given */
    nk_addr addr;
    cli_tls_opts tls;
    chat_server *srv; /* the limits go straight into the server */
} chat_serve_args;

static int on_chat_serve_opt(void *ctx, int key, const char *value)
{
    chat_serve_args *a = ctx;
    chat_server *srv = a->srv;
    long v;
    switch (key) {
    case 'm':
        if (cli_parse_long(value, 1, 1000000, &v) < 0)
            return cli_usage(a->cmd, "invalid --max-clients '%s' (1 to 1000000)", value);
        srv->max_clients = (size_t)v;
        return 0;
    case 'q':
        if (cli_parse_long(value, 1024, 1L << 30, &v) < 0)
            return cli_usage(a->cmd, "invalid --max-queue '%s' (1024 to 2^30 bytes)", value);
        srv->max_queue = (size_t)v;
        return 0;
    case 't':
        if (cli_parse_long(value, 1, 3600, &v) < 0)
            return cli_usage(a->cmd, "invalid --send-timeout '%s' (1 to 3600 seconds)", value);
        srv->send_timeout_ms = (uint64_t)v * 1000;
        return 0;
    case CHAT_OPT_HELLO_TIMEOUT:
        if (cli_parse_long(value, 1, 3600, &v) < 0)
            return cli_usage(a->cmd, "invalid --hello-timeout '%s' (1 to 3600 seconds)", value);
        srv->hello_timeout_ms = (uint64_t)v * 1000;
        return 0;
    default:
        return cli_tls_option(&a->tls, key, value) ? 0 : CLI_USAGE;
    }
}

/* Options (the limits set in srv), ADDR, and whether the TLS options go together. 0,
 * CLI_OPT_HELP_SHOWN or an exit code. */
static int parse_chat_serve_args(int argc, char **argv, chat_serve_args *a, chat_server *srv)
{
    memset(a, 0, sizeof *a);
    memset(srv, 0, sizeof *srv);
    a->cmd = srv->cmd = argv[0];
    a->srv = srv;
    srv->max_clients = CHAT_DEFAULT_MAX_CLIENTS;
    srv->max_queue = CHAT_DEFAULT_QUEUE;
    srv->send_timeout_ms = CHAT_DEFAULT_SEND_TIMEOUT * 1000;
    srv->hello_timeout_ms = CHAT_DEFAULT_HELLO_TIMEOUT * 1000;
    int first;
    int rc = cli_opt_parse(&chat_serve_spec, argc, argv, on_chat_serve_opt, a, &first);
    if (rc)
        return rc;
    optind = first;
    if (cli_one_operand(a->cmd, argc, argv, "ADDR", &a->text) != 0)
        return CLI_USAGE;
    /* The mark sits well under the cap, so that a member that reads keeps its queue under it. */
    srv->low_water = CHAT_LOW_WATER < srv->max_queue / 2 ? CHAT_LOW_WATER : srv->max_queue / 2;
    if ((rc = cli_parse_bind_addr(a->cmd, a->text, SOCK_STREAM, &a->addr)) != 0)
        return rc;
    if (nk_addr_family(&a->addr) == AF_UNIX)
        return cli_usage(a->cmd, "chat serves TCP only (HOST:PORT)");
    return cli_tls_check(a->cmd, &a->tls, 1);
}

static void chat_serve_close(chat_server *srv)
{
    /* conn_free unlinks only the member it frees: take the next one first. */
    for (chat_conn *conn = srv->conns, *next; conn; conn = next) {
        next = conn->next;
        conn_free(conn);
    }
    cli_server_close(&srv->net);
}

int chat_serve(int argc, char **argv)
{
    chat_serve_args a;
    chat_server srv;
    int rc = parse_chat_serve_args(argc, argv, &a, &srv);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    if ((rc = cli_server_open(&srv.net, a.cmd, a.text, &a.addr, &a.tls)) != 0)
        return rc;
    /* Accept and relay until a stop signal. */
    srv.exit_code = cli_server_run(&srv.net, CHAT_ACCEPTS_PER_EVENT, on_conn, &srv, on_stop_signal,
                                   &srv);
    chat_serve_close(&srv);
    return srv.exit_code;
}
