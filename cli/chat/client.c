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

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLIENT_HIGH_WATER (256 * 1024)
#define CLIENT_READ_CHUNK 65536
#define CLIENT_CONNECT_TIMEOUT_MS 10000

typedef struct chat_client {
    const char *cmd;
    nk_loop *loop;
    cli_conn conn;
    nk_io io;
    unsigned interest;
    nk_frame_decoder in;
    nk_buf out;
    nk_io in_io;
    nk_defer in_defer; /* stdin that epoll cannot watch (a regular file) */
    int in_polled, in_on;
    nk_buf lines;
    int in_eof;
    int welcomed, quitting;
    int server_stopping; /* the server sent NOTICE before closing */
    int tty;
    chat_prompt prompt; /* stdin and stdout are a terminal: the line is edited here */
    char name[CHAT_NAME_MAX + 1];
    cli_stop_signals stop_signals;
    int exit_code;
} chat_client;

static void client_done(chat_client *cl, int code)
{
    cl->exit_code = code;
    nk_loop_stop(cl->loop);
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
                             CHAT_FRAME_MAX, &cl->out);
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

static void on_stdin(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    read_stdin(io->data);
}

static void on_stdin_defer(nk_loop *loop, nk_defer *d)
{
    (void)loop;
    read_stdin(d->data);
}

/* Print peer-supplied text (names, messages, reasons) escaped for the terminal. */
static void show(const char *s, int len)
{
    cli_fput_escaped(stdout, s, len > 0 ? (size_t)len : 0, CLI_ESC_KEEP_TAB);
}

/* Print one message from the server. Every field comes from the network: a server (or, when
 * the server does not check, another member) could put control characters in any of them,
 * so each one goes through show(). */
static void render(chat_client *cl, const char *msg, size_t len)
{
    const char *sp = memchr(msg, ' ', len);
    size_t wlen = sp ? (size_t)(sp - msg) : len;
    const char *rest = sp ? sp + 1 : msg + len;
    int rlen = (int)(sp ? len - wlen - 1 : 0);
    /* "WORD first second...": the first word of rest, and what follows it */
    const char *sp2 = memchr(rest, ' ', (size_t)rlen);
    int nlen = sp2 ? (int)(sp2 - rest) : rlen;
    const char *tail = sp2 ? sp2 + 1 : rest + rlen;
    int tlen = sp2 ? rlen - nlen - 1 : 0;
#define IS(lit) (wlen == sizeof(lit) - 1 && memcmp(msg, lit, wlen) == 0)
    if (IS("MSG")) {
        putchar('[');
        show(rest, nlen);
        fputs("] ", stdout);
        show(tail, tlen);
        putchar('\n');
    } else if (IS("JOIN")) {
        fputs("* ", stdout);
        show(rest, rlen);
        fputs(" joined\n", stdout);
    } else if (IS("LEAVE") || IS("DROP")) {
        fputs("* ", stdout);
        show(rest, nlen);
        fputs(IS("LEAVE") ? " left" : " dropped", stdout);
        if (sp2) { /* the reason comes bare; an older server put it in parentheses already */
            const char *why = tail;
            int wlen2 = tlen;
            if (wlen2 >= 2 && why[0] == '(' && why[wlen2 - 1] == ')') {
                why++;
                wlen2 -= 2;
            }
            fputs(" (", stdout);
            show(why, wlen2);
            putchar(')');
        }
        putchar('\n');
    } else if (IS("NICK")) {
        if ((size_t)nlen == strlen(cl->name) && memcmp(rest, cl->name, (size_t)nlen) == 0 &&
            tlen <= CHAT_NAME_MAX) {
            memcpy(cl->name, tail, (size_t)tlen);
            cl->name[tlen] = '\0';
        }
        fputs("* ", stdout);
        show(rest, nlen);
        fputs(" is now known as ", stdout);
        show(tail, tlen);
        putchar('\n');
    } else if (IS("WHO")) {
        fputs(rlen ? "* members: " : "* members:", stdout);
        for (int i = 0; i < rlen;) {
            const char *end = memchr(rest + i, ' ', (size_t)(rlen - i));
            int n = end ? (int)(end - (rest + i)) : rlen - i;
            show(rest + i, n);
            i += n;
            if (i < rlen) {
                fputs(", ", stdout);
                i++;
            }
        }
        putchar('\n');
    } else if (IS("WELCOME")) {
        if (nlen <= CHAT_NAME_MAX) {
            memcpy(cl->name, rest, (size_t)nlen);
            cl->name[nlen] = '\0';
        }
        fputs("* joined as ", stdout);
        show(cl->name, (int)strlen(cl->name));
        fputs(" (", stdout);
        if (sp2)
            show(tail, tlen);
        else
            putchar('?');
        fputs(" online)\n", stdout);
        cl->welcomed = 1;
    } else if (IS("TAKEN")) {
        char name[CHAT_NAME_MAX * CLI_ESC_GROWTH + 1], alt[CHAT_NAME_MAX * CLI_ESC_GROWTH + 1];
        cli_term_escape(name, sizeof name, rest, (size_t)nlen, 0);
        cli_term_escape(alt, sizeof alt, tail, (size_t)tlen, 0);
        fflush(stdout);
        client_done(cl, cli_fail(cl->cmd, "the name '%s' is taken (try --name %s)", name, alt));
    } else if (IS("ERR")) {
        fputs("! ", stdout);
        show(rest, rlen);
        putchar('\n');
    } else if (IS("NOTICE")) {
        fputs("* notice: ", stdout);
        show(rest, rlen);
        putchar('\n');
        if (rlen == 20 && memcmp(rest, "server shutting down", 20) == 0)
            cl->server_stopping = 1;
    } else if (IS("BYE")) {
        /* the server closes next */
    }
#undef IS
}

static void client_update(chat_client *cl)
{
    unsigned want = cli_conn_interest(&cl->conn, 1, nk_buf_len(&cl->out) > 0);
    if (want != cl->interest) {
        int rc = nk_io_start(cl->loop, &cl->io, want);
        if (rc < 0) {
            client_done(cl, cli_fail(cl->cmd, "cannot watch the socket: %s", nk_strerror(rc)));
            return;
        }
        cl->interest = want;
    }
    int in_want = cl->welcomed && !cl->in_eof && !cl->quitting &&
                  nk_buf_len(&cl->out) < CLIENT_HIGH_WATER;
    if (in_want == cl->in_on)
        return;
    cl->in_on = in_want;
    if (cl->in_polled) {
        if (in_want)
            nk_defer_start(cl->loop, &cl->in_defer);
        else
            nk_defer_stop(cl->loop, &cl->in_defer);
    } else if (!in_want) {
        nk_io_stop(cl->loop, &cl->in_io);
    } else if (nk_io_start(cl->loop, &cl->in_io, NK_READ) < 0) {
        /* epoll refuses regular files (EPERM); they are always readable: poll by defer. */
        cl->in_polled = 1;
        nk_defer_start(cl->loop, &cl->in_defer);
    }
}

static void on_sock(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    chat_client *cl = io->data;
    if (cli_conn_can_write(&cl->conn, events)) {
        while (nk_buf_len(&cl->out) > 0) {
            ssize_t n = cli_conn_send(&cl->conn, &cl->out);
            if (n == -EAGAIN)
                break;
            if (n < 0) {
                client_done(cl, cli_fail(cl->cmd, "connection lost: %s",
                                         cli_conn_why(&cl->conn, (int)n)));
                return;
            }
        }
    }
    if (cli_conn_can_read(&cl->conn, events)) {
        char chunk[CLIENT_READ_CHUNK];
        ssize_t n = cli_conn_read(&cl->conn, chunk, sizeof chunk);
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
                                         cli_conn_why(&cl->conn, (int)n)));
            return;
        }
        if (nk_frame_feed(&cl->in, chunk, (size_t)n) < 0) {
            client_done(cl, cli_fail(cl->cmd, "the server sent a message over %d bytes",
                                     CHAT_FRAME_MAX));
            return;
        }
        const char *msg;
        size_t len;
        while (nk_frame_next(&cl->in, &msg, &len) > 0)
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

static void join_help(FILE *out)
{
    fputs("usage: netkit chat join ADDR [--name NAME] [--tls [--cacert FILE|--pin-sha256 HEX|-k]]\n"
          "\n"
          "Join the chat at ADDR. Each stdin line is sent to the other members; what they say\n"
          "is printed as \"[name] text\", notices as \"* ...\", errors as \"! ...\".\n"
          "\n"
          "  ADDR            HOST:PORT or [IPV6]:PORT of a 'netkit chat serve'\n"
          "  -n, --name NAME  your name (default $USER, else \"guest\"); 1 to 32 of A-Z a-z\n"
          "                  0-9 _ . -\n", out);
    cli_tls_help(out, 0);
    fputs("  -h, --help      show this help\n"
          "\n"
          "Commands: /nick NAME (rename), /who (list members), /quit (leave; also at end of\n"
          "input or on SIGINT/SIGTERM). A line starting with '//' sends it with one '/'.\n"
          "On a terminal the line being typed stays under a \"> \" prompt that incoming\n"
          "messages do not tear, and your own messages are shown as \"[name] text\".\n"
          "Exit status: 0 after leaving, 1 when the name is taken or the connection fails.\n",
          out);
}

int chat_join(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"tls", no_argument, NULL, CLI_TLS_OPT_TLS},
        {"cacert", required_argument, NULL, CLI_TLS_OPT_CACERT},
        {"pin-sha256", required_argument, NULL, CLI_TLS_OPT_PIN},
        {"insecure", no_argument, NULL, CLI_TLS_OPT_INSECURE},
        {"servername", required_argument, NULL, CLI_TLS_OPT_SERVERNAME},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    const char *name = NULL;
    cli_tls_opts tls = {0};
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":n:kh", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            name = optarg;
            break;
        case 'k':
            tls.insecure = 1;
            break;
        case 'h':
            join_help(stdout);
            return CLI_OK;
        default:
            if (cli_tls_option(&tls, c, optarg))
                break;
            return cli_getopt_error(cmd, c, argv);
        }
    }
    if (cli_one_operand(cmd, argc, argv, "ADDR", NULL) != 0)
        return CLI_USAGE;
    int rc = cli_tls_check(cmd, &tls, 0);
    if (rc)
        return rc;
    if (!name) {
        name = getenv("USER");
        if (!name || !chat_name_valid(name, strlen(name)))
            name = "guest";
    }
    if (!chat_name_valid(name, strlen(name)))
        return cli_usage(cmd, "invalid name '%s' (1 to %d of A-Z a-z 0-9 _ . -)", name,
                         CHAT_NAME_MAX);
    nk_addr addr;
    size_t naddr;
    rc = cli_parse_addrs(cmd, argv[optind], SOCK_STREAM, 0, &addr, 1, &naddr);
    if (rc)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    int fd;
    nk_tls *t = NULL;
    rc = cli_tls_connect(cmd, &tls, argv[optind], &addr, CLIENT_CONNECT_TIMEOUT_MS, &fd, &t);
    if (rc)
        return rc;
    nk_sock_set_nodelay(fd, 1);

    chat_client cl;
    memset(&cl, 0, sizeof cl);
    cl.cmd = cmd;
    cli_conn_init(&cl.conn, fd, t);
    cl.tty = isatty(STDOUT_FILENO);
    snprintf(cl.name, sizeof cl.name, "%s", name);
    rc = nk_loop_new(NULL, &cl.loop);
    if (rc < 0) {
        cli_conn_close(&cl.conn);
        return cli_fail(cmd, "event loop: %s", nk_strerror(rc));
    }
    nk_frame_decoder_init(&cl.in, NK_FRAME_LEN32, CHAT_FRAME_MAX);
    nk_buf_init(&cl.out, 0);
    nk_buf_init(&cl.lines, CHAT_TEXT_MAX + 2 + CLIENT_READ_CHUNK);
    nk_io_init(&cl.io, fd, on_sock, &cl);
    nk_io_init(&cl.in_io, STDIN_FILENO, on_stdin, &cl);
    nk_defer_init(&cl.in_defer, on_stdin_defer, &cl);
    cli_stop_signals_start(cl.loop, &cl.stop_signals, on_signal, &cl);
    chat_prompt_start(&cl.prompt, STDIN_FILENO, stdout);
    client_send(&cl, "HELLO", cl.name, strlen(cl.name));
    client_update(&cl);
    rc = nk_loop_run(cl.loop, NK_RUN_DEFAULT);
    if (rc < 0)
        cl.exit_code = cli_fail(cmd, "event loop: %s", nk_strerror(rc));
    chat_prompt_stop(&cl.prompt);
    fflush(stdout);
    nk_io_stop(cl.loop, &cl.io);
    nk_io_stop(cl.loop, &cl.in_io);
    nk_defer_stop(cl.loop, &cl.in_defer);
    cli_stop_signals_stop(cl.loop, &cl.stop_signals);
    nk_loop_free(cl.loop);
    nk_frame_decoder_free(&cl.in);
    nk_buf_free(&cl.out);
    nk_buf_free(&cl.lines);
    cli_conn_close(&cl.conn);
    return cl.exit_code;
}
