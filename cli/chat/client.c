/* netkit chat join: the chat client (protocol: docs/chat-protocol.md).
 *
 * stdin lines become commands ("/nick NAME", "/who", "/quit") or messages; what the server
 * sends is printed as one line each on stdout ("[name] text", "* alice joined", "! error").
 * Plain lines in and out in a pipe; on a terminal (stdin and stdout) the line being typed is
 * edited by chat/prompt.c, so incoming messages print above it and it is drawn again, and
 * what is sent is shown as "[name] text". stdin is read only
 * after the server welcomed us, and only while less than CLIENT_HIGH_WATER bytes wait to be
 * sent, so a fast producer is slowed down by TCP instead of growing our memory.
 *
 * With --tls the handshake is done (within the connect timeout) before HELLO is sent, and
 * every byte goes through it (cli_conn).
 */
#include "cli.h"
#include "chat/chat.h"
#include "chat/prompt.h"
#include "cli_tls.h"
#include "framed_peer.h"
#include "stdin_watch.h"
#include "opt.h"

#include <errno.h>
#include <getopt.h> /* optind, for cli_one_operand */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLIENT_HIGH_WATER (256 * 1024)
#define CLIENT_READ_CHUNK 65536
#define CLIENT_CONNECT_TIMEOUT_SEC 10
#define CLIENT_CONNECT_TIMEOUT_MS (CLIENT_CONNECT_TIMEOUT_SEC * 1000)
#define CHAT_JOIN_STR_(x) #x
#define CHAT_JOIN_STR(x) CHAT_JOIN_STR_(x) /* a number's digits, for the option table */

typedef struct chat_client {
    const char *cmd;
    framed_peer peer; /* the server: connection, loop, frames in, bytes out, stop signals */
    stdin_watch input; /* stdin, the lines to send */
    int in_on;
    nk_buf lines;
    int in_eof;
    int welcomed, quitting;
    int server_stopping; /* the server sent NOTICE before closing */
    int tty;
    chat_prompt prompt; /* stdin and stdout are a terminal: the line is edited here */
    char name[CHAT_NAME_MAX + 1];
    int exit_code;
} chat_client;

static void client_done(chat_client *cl, int code)
{
    cl->exit_code = code;
    nk_loop_stop(cl->peer.loop);
}

static void client_update(chat_client *cl);

static void client_send(chat_client *cl, const char *word, const char *arg, size_t arglen)
{
    nk_buf msg;
    nk_buf_init(&msg, 0);
    int rc = nk_buf_append_str(&msg, word);
    if (rc == 0 && arg) {
        rc = nk_buf_append(&msg, " ", 1);
        if (rc == 0)
            rc = nk_buf_append(&msg, arg, arglen);
    }
    if (rc == 0)
        rc = nk_frame_encode(NK_FRAME_LEN32, nk_buf_rptr(&msg), nk_buf_len(&msg),
                             CHAT_FRAME_MAX, &cl->peer.out);
    nk_buf_free(&msg);
    if (rc < 0)
        client_done(cl, cli_fail(cl->cmd, "cannot queue a message: %s", nk_strerror(rc)));
}

static void quit(chat_client *cl)
{
    if (cl->quitting)
        return;
    cl->quitting = 1;
    client_send(cl, "QUIT", NULL, 0);
}

/* One stdin line (without its newline). */
static void on_line(chat_client *cl, char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0)
        return;
    if (line[0] == '/' && !(len > 1 && line[1] == '/')) {
        const char *sp = memchr(line, ' ', len);
        size_t wlen = sp ? (size_t)(sp - line) : len;
        const char *arg = sp ? sp + 1 : line + len;
        size_t alen = sp ? len - wlen - 1 : 0;
        if (wlen == 5 && memcmp(line, "/nick", 5) == 0 && alen > 0)
            client_send(cl, "NICK", arg, alen);
        else if (wlen == 4 && memcmp(line, "/who", 4) == 0)
            client_send(cl, "WHO", NULL, 0);
        else if (wlen == 5 && memcmp(line, "/quit", 5) == 0)
            quit(cl);
        else
            printf("! unknown command '%.*s' (/nick NAME, /who, /quit; '//' sends a '/')\n",
                   (int)(wlen > 32 ? 32 : wlen), line);
        return;
    }
    if (line[0] == '/') { /* "//text" sends "/text" */
        line++;
        len--;
    }
    if (len > CHAT_TEXT_MAX) {
        printf("! line too long (%zu bytes, at most %d): not sent\n", len, CHAT_TEXT_MAX);
        return;
    }
    client_send(cl, "MSG", line, len);
    if (cl->prompt.on) { /* on a terminal, what was sent stays in view as the others see it */
        putchar('[');
        cli_fput_escaped(stdout, cl->name, strlen(cl->name), CLI_ESC_KEEP_TAB);
        fputs("] ", stdout);
        cli_fput_escaped(stdout, line, len, CLI_ESC_KEEP_TAB);
        putchar('\n');
    }
}

static void take_lines(chat_client *cl)
{
    for (;;) {
        char *p = nk_buf_rptr(&cl->lines);
        size_t avail = nk_buf_len(&cl->lines);
        char *nl = avail ? memchr(p, '\n', avail) : NULL; /* empty: p may be NULL */
        if (!nl && !(cl->in_eof && avail > 0))
            break;
        size_t len = nl ? (size_t)(nl - p) : avail;
        if (!cl->quitting)
            on_line(cl, p, len);
        nk_buf_consume(&cl->lines, nl ? len + 1 : len);
    }
    if (nk_buf_len(&cl->lines) > CHAT_TEXT_MAX + 2) {
        /* No newline within the limit: say so and skip to the next line. */
        printf("! line too long (at most %d bytes): not sent\n", CHAT_TEXT_MAX);
        nk_buf_clear(&cl->lines);
    }
    if (cl->in_eof)
        quit(cl);
    fflush(stdout);
}

static void prompt_redraw(chat_client *cl)
{
    if (cl->welcomed && !cl->quitting && !cl->in_eof)
        chat_prompt_show(&cl->prompt);
}

static void read_stdin(chat_client *cl)
{
    if (cl->prompt.on) {
        char typed[256];
        ssize_t n = read(STDIN_FILENO, typed, sizeof typed);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0 || chat_prompt_feed(&cl->prompt, typed, (size_t)n, &cl->lines) != 0) {
            chat_prompt_hide(&cl->prompt);
            cl->in_eof = 1;
        }
        take_lines(cl);
        prompt_redraw(cl);
        client_update(cl);
        return;
    }
    ssize_t n = nk_buf_read_fd(&cl->lines, STDIN_FILENO, CLIENT_READ_CHUNK);
    if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR)
        return;
    if (n <= 0)
        cl->in_eof = 1; /* end of input, or an error reading it: leave either way */
    take_lines(cl);
    client_update(cl);
}

static void on_stdin(void *data)
{
    read_stdin(data);
}

/* Print peer-supplied text (names, messages, reasons) escaped for the terminal. */
static void show(const char *s, int len)
{
    cli_fput_escaped(stdout, s, len > 0 ? (size_t)len : 0, CLI_ESC_KEEP_TAB);
}

/* A message from the server cut into words: "WORD first tail...". */
typedef struct chat_words {
    const char *rest; /* what follows WORD */
    int rlen;
    int nlen;         /* the first word of rest */
    const char *tail; /* what follows that word */
    int tlen;
    int has_tail;     /* rest has a second word (possibly empty) */
} chat_words;

static void render_leave(const chat_words *w, int left)
{
    fputs("* ", stdout);
    show(w->rest, w->nlen);
    fputs(left ? " left" : " dropped", stdout);
    if (w->has_tail) { /* the reason comes bare; an older server put it in parentheses already */
        const char *why = w->tail;
        int wlen = w->tlen;
        if (wlen >= 2 && why[0] == '(' && why[wlen - 1] == ')') {
            why++;
            wlen -= 2;
        }
        fputs(" (", stdout);
        show(why, wlen);
        putchar(')');
    }
    putchar('\n');
}

static void render_nick(chat_client *cl, const chat_words *w)
{
    if ((size_t)w->nlen == strlen(cl->name) && memcmp(w->rest, cl->name, (size_t)w->nlen) == 0 &&
        w->tlen <= CHAT_NAME_MAX) {
        memcpy(cl->name, w->tail, (size_t)w->tlen);
        cl->name[w->tlen] = '\0';
    }
    fputs("* ", stdout);
    show(w->rest, w->nlen);
    fputs(" is now known as ", stdout);
    show(w->tail, w->tlen);
    putchar('\n');
}

static void render_who(const chat_words *w)
{
    fputs(w->rlen ? "* members: " : "* members:", stdout);
    for (int i = 0; i < w->rlen;) {
        const char *end = memchr(w->rest + i, ' ', (size_t)(w->rlen - i));
        int n = end ? (int)(end - (w->rest + i)) : w->rlen - i;
        show(w->rest + i, n);
        i += n;
        if (i < w->rlen) {
            fputs(", ", stdout);
            i++;
        }
    }
    putchar('\n');
}

static void render_welcome(chat_client *cl, const chat_words *w)
{
    if (w->nlen <= CHAT_NAME_MAX) {
        memcpy(cl->name, w->rest, (size_t)w->nlen);
        cl->name[w->nlen] = '\0';
    }
    fputs("* joined as ", stdout);
    show(cl->name, (int)strlen(cl->name));
    fputs(" (", stdout);
    if (w->has_tail)
        show(w->tail, w->tlen);
    else
        putchar('?');
    fputs(" online)\n", stdout);
    cl->welcomed = 1;
}

static void render_taken(chat_client *cl, const chat_words *w)
{
    char name[CHAT_NAME_MAX * CLI_ESC_GROWTH + 1], alt[CHAT_NAME_MAX * CLI_ESC_GROWTH + 1];
    cli_term_escape(name, sizeof name, w->rest, (size_t)w->nlen, 0);
    cli_term_escape(alt, sizeof alt, w->tail, (size_t)w->tlen, 0);
    fflush(stdout);
    client_done(cl, cli_fail(cl->cmd, "the name '%s' is taken (try --name %s)", name, alt));
}

/* "* prefix REST" and a newline. */
static void render_rest(const char *prefix, const chat_words *w)
{
    fputs(prefix, stdout);
    show(w->rest, w->rlen);
    putchar('\n');
}

/* Print one message from the server. Every field comes from the network: a server (or, when
 * the server does not check, another member) could put control characters in any of them,
 * so each one goes through show(). */
static void render(chat_client *cl, const char *msg, size_t len)
{
    const char *sp = memchr(msg, ' ', len);
    size_t wlen = sp ? (size_t)(sp - msg) : len;
    chat_words w;
    w.rest = sp ? sp + 1 : msg + len;
    w.rlen = (int)(sp ? len - wlen - 1 : 0);
    const char *sp2 = memchr(w.rest, ' ', (size_t)w.rlen);
    w.has_tail = sp2 != NULL;
    w.nlen = sp2 ? (int)(sp2 - w.rest) : w.rlen;
    w.tail = sp2 ? sp2 + 1 : w.rest + w.rlen;
    w.tlen = sp2 ? w.rlen - w.nlen - 1 : 0;
#define IS(lit) (wlen == sizeof(lit) - 1 && memcmp(msg, lit, wlen) == 0)
    if (IS("MSG")) {
        putchar('[');
        show(w.rest, w.nlen);
        fputs("] ", stdout);
        show(w.tail, w.tlen);
        putchar('\n');
    } else if (IS("JOIN")) {
        fputs("* ", stdout);
        show(w.rest, w.rlen);
        fputs(" joined\n", stdout);
    } else if (IS("LEAVE") || IS("DROP")) {
        render_leave(&w, IS("LEAVE"));
    } else if (IS("NICK")) {
        render_nick(cl, &w);
    } else if (IS("WHO")) {
        render_who(&w);
    } else if (IS("WELCOME")) {
        render_welcome(cl, &w);
    } else if (IS("TAKEN")) {
        render_taken(cl, &w);
    } else if (IS("ERR")) {
        render_rest("! ", &w);
    } else if (IS("NOTICE")) {
        render_rest("* notice: ", &w);
        if (w.rlen == 20 && memcmp(w.rest, "server shutting down", 20) == 0)
            cl->server_stopping = 1;
    } /* BYE and anything newer: nothing to print (after BYE the server closes) */
#undef IS
}

static void client_update(chat_client *cl)
{
    int rc = framed_peer_watch(&cl->peer);
    if (rc < 0) {
        client_done(cl, cli_fail(cl->cmd, "cannot watch the socket: %s", nk_strerror(rc)));
        return;
    }
    int in_want = cl->welcomed && !cl->in_eof && !cl->quitting &&
                  nk_buf_len(&cl->peer.out) < CLIENT_HIGH_WATER;
    if (in_want == cl->in_on)
        return;
    cl->in_on = in_want;
    stdin_watch_set(&cl->input, in_want);
}

static void on_sock(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    chat_client *cl = io->data;
    if (cli_conn_can_write(&cl->peer.conn, events)) {
        while (nk_buf_len(&cl->peer.out) > 0) {
            ssize_t n = cli_conn_send(&cl->peer.conn, &cl->peer.out);
            if (n == -EAGAIN)
                break;
            if (n < 0) {
                client_done(cl, cli_fail(cl->cmd, "connection lost: %s",
                                         cli_conn_why(&cl->peer.conn, (int)n)));
                return;
            }
        }
    }
    if (cli_conn_can_read(&cl->peer.conn, events)) {
        char chunk[CLIENT_READ_CHUNK];
        ssize_t n = cli_conn_read(&cl->peer.conn, chunk, sizeof chunk);
        if (n == -EAGAIN) {
            client_update(cl);
            return;
        }
        chat_prompt_hide(&cl->prompt); /* messages go above the line being typed */
        if (n <= 0) {
            fflush(stdout);
            if (n == 0 && cl->quitting)
                client_done(cl, CLI_OK);
            else if (n == 0 && cl->server_stopping)
                client_done(cl, cli_fail(cl->cmd, "the server shut down"));
            else if (n == 0)
                client_done(cl, cli_fail(cl->cmd, "the server closed the connection"));
            else
                client_done(cl, cli_fail(cl->cmd, "connection lost: %s",
                                         cli_conn_why(&cl->peer.conn, (int)n)));
            return;
        }
        if (nk_frame_feed(&cl->peer.in, chunk, (size_t)n) < 0) {
            client_done(cl, cli_fail(cl->cmd, "the server sent a message over %d bytes",
                                     CHAT_FRAME_MAX));
            return;
        }
        const char *msg;
        size_t len;
        while (nk_frame_next(&cl->peer.in, &msg, &len) > 0)
            render(cl, msg, len);
        if (fflush(stdout) != 0) {
            client_done(cl, cli_fail(cl->cmd, "writing stdout: %s", strerror(errno)));
            return;
        }
        prompt_redraw(cl);
    }
    client_update(cl);
}

static void on_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)loop;
    (void)signum;
    chat_prompt_hide(&((chat_client *)sig->data)->prompt);
    quit(sig->data); /* leave politely; the server's close ends the loop */
    client_update(sig->data);
}

static const cli_opt chat_join_opts[] = {
    {"name", 'n', "NAME", "your name (default $USER, else \"guest\"); 1 to 32 of A-Z a-z 0-9 _ . -"},
    {"tls", CLI_TLS_OPT_TLS, NULL,
     "speak TLS (1.2 or 1.3); the server's certificate must chain to a CA of the system's store "
     "(or of --cacert) and name the host of ADDR (an IP address among its IP addresses), which "
     "is also sent as SNI. A failed check is one line, \"netkit: chat join: TLS: certificate "
     "verify failed: REASON\", and exit status 1. The connection and the handshake are bounded "
     "by " CHAT_JOIN_STR(CLIENT_CONNECT_TIMEOUT_SEC) " seconds each"},
    CLI_TLS_VERIFY_OPTS,
    {"insecure", 'k', NULL, "no verification at all: encrypted, but not authenticated"},
    {"servername", CLI_TLS_OPT_SERVERNAME, "NAME",
     "the name sent as SNI and checked in the certificate, instead of the host of ADDR"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand chat_join_operands[] = {
    {"ADDR", "HOST:PORT or [IPV6]:PORT of a 'netkit chat serve'"},
    {NULL, NULL},
};

static void chat_join_notes(FILE *out)
{
    fputs("Commands: /nick NAME (rename), /who (list members), /quit (leave; also at end of\n"
          "input or on SIGINT/SIGTERM). A line starting with '//' sends it with one '/'.\n"
          "On a terminal (stdin and stdout both) the line being typed stays under a \"> \"\n"
          "prompt that incoming messages do not tear: they print above it and it is drawn\n"
          "again (Backspace, Ctrl-U, Ctrl-W edit; Ctrl-D on an empty line leaves); your own\n"
          "messages are shown as \"[name] text\". When the server stops it says so\n"
          "(\"* notice: server shutting down\") and the command exits 1.\n"
          "Exit status: 0 after leaving, 1 when the name is taken or the connection fails.\n",
          out);
}

static const cli_spec chat_join_spec = {
    .cmd = "chat join",
    .synopsis = "ADDR [--name NAME] [--tls [--cacert FILE|--pin-sha256 HEX|-k]]",
    .about = "Join the chat at ADDR. Each stdin line is sent to the other members; what they say\n"
             "is printed as \"[name] text\", notices as \"* ...\", errors as \"! ...\".\n",
    .operands = chat_join_operands,
    .opts = chat_join_opts,
    .notes = chat_join_notes,
};
CLI_SPEC_REGISTER(chat_join_spec);

/* What the command line of chat join asked for. */
typedef struct chat_join_args {
    const char *cmd;
    const char *name;
    const char *text; /* ADDR as given */
    nk_addr addr;
    cli_tls_opts tls;
} chat_join_args;

static int on_chat_join_opt(void *ctx, int key, const char *value)
{
    chat_join_args *a = ctx;
    switch (key) {
    case 'n':
        a->name = value;
        return 0;
    case 'k':
        a->tls.insecure = 1;
        return 0;
    default:
        return cli_tls_option(&a->tls, key, value) ? 0 : CLI_USAGE;
    }
}

/* Options, ADDR and the name to join with. 0, CLI_OPT_HELP_SHOWN or an exit code. */
static int parse_chat_join_args(int argc, char **argv, chat_join_args *a)
{
    memset(a, 0, sizeof *a);
    a->cmd = argv[0];
    int first;
    int rc = cli_opt_parse(&chat_join_spec, argc, argv, on_chat_join_opt, a, &first);
    if (rc)
        return rc;
    optind = first;
    if (cli_one_operand(a->cmd, argc, argv, "ADDR", &a->text) != 0)
        return CLI_USAGE;
    if ((rc = cli_tls_check(a->cmd, &a->tls, 0)) != 0)
        return rc;
    if (!a->name) {
        a->name = getenv("USER");
        if (!a->name || !chat_name_valid(a->name, strlen(a->name)))
            a->name = "guest";
    }
    if (!chat_name_valid(a->name, strlen(a->name)))
        return cli_usage(a->cmd, "invalid name '%s' (1 to %d of A-Z a-z 0-9 _ . -)", a->name,
                         CHAT_NAME_MAX);
    size_t naddr;
    return cli_parse_addrs(a->cmd, a->text, SOCK_STREAM, 0, &a->addr, 1, &naddr);
}

/* Connect (and shake hands), then the loop and the client's state: 0 or an exit code (nothing
 * kept). */
static int chat_join_open(chat_client *cl, const chat_join_args *a)
{
    memset(cl, 0, sizeof *cl);
    const framed_peer_cfg cfg = {
        .cmd = a->cmd, .tls = &a->tls, .text = a->text, .addr = &a->addr,
        .timeout_ms = CLIENT_CONNECT_TIMEOUT_MS, .frame_max = CHAT_FRAME_MAX,
        .on_io = on_sock, .on_signal = on_signal, .data = cl,
    };
    int rc = framed_peer_open(&cl->peer, &cfg);
    if (rc)
        return rc;
    nk_sock_set_nodelay(cl->peer.conn.fd, 1);
    cl->cmd = a->cmd;
    cl->tty = isatty(STDOUT_FILENO);
    snprintf(cl->name, sizeof cl->name, "%s", a->name);
    nk_buf_init(&cl->lines, CHAT_TEXT_MAX + 2 + CLIENT_READ_CHUNK);
    stdin_watch_init(&cl->input, cl->peer.loop, on_stdin, cl);
    return 0;
}

static void chat_join_close(chat_client *cl)
{
    chat_prompt_stop(&cl->prompt);
    fflush(stdout);
    stdin_watch_set(&cl->input, 0);
    framed_peer_close(&cl->peer);
    nk_buf_free(&cl->lines);
}

int chat_join(int argc, char **argv)
{
    chat_join_args a;
    int rc = parse_chat_join_args(argc, argv, &a);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    signal(SIGPIPE, SIG_IGN);
    chat_client cl;
    if ((rc = chat_join_open(&cl, &a)) != 0)
        return rc;
    chat_prompt_start(&cl.prompt, STDIN_FILENO, stdout);
    client_send(&cl, "HELLO", cl.name, strlen(cl.name));
    client_update(&cl);
    rc = nk_loop_run(cl.peer.loop, NK_RUN_DEFAULT);
    if (rc < 0)
        cl.exit_code = cli_fail(a.cmd, "event loop: %s", nk_strerror(rc));
    chat_join_close(&cl);
    return cl.exit_code;
}
