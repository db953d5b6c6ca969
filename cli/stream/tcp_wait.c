/* netkit tcp wait: exit 0 as soon as an address accepts TCP connections.
 *
 * A timer makes one non-blocking connect every WAIT_RETRY_MS, cycling through the addresses a
 * name resolves to; an attempt still pending at the next tick is abandoned, so a silent
 * address (SYN dropped) never holds up the others. A second timer is the --timeout.
 */
#include "cli.h"
#include "opt.h"
#include "stream/stream.h"

#include <errno.h>
#include <getopt.h> /* optind, for cli_one_operand */
#include <string.h>
#include <unistd.h>

/* One connection attempt per interval, and the default limit (both named in the help). */
#define WAIT_RETRY_MS 100
#define WAIT_DEFAULT_MS 30000
_Static_assert(WAIT_RETRY_MS == 100 && WAIT_DEFAULT_MS == 30000,
               "the help of tcp wait names these numbers");

typedef struct wait_tool {
    const char *cmd;
    const char *text; /* ADDR as given */
    nk_loop *loop;
    nk_addr addrs[STREAM_MAX_ADDRS];
    int naddrs, next, verbose;
    int fd;
    nk_io io;
    nk_timer retry, deadline;
    int exit_code, last_err;
    long timeout_ms;
} wait_tool;

static const cli_opt tcp_wait_opts[] = {
    {"timeout", 't', "SEC", "give up after SEC seconds (default 30): exit 1, naming the last "
                            "attempt's error"},
    {"verbose", 'v', NULL, "say \"HOST:PORT accepts connections\" on stderr once it does"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand tcp_wait_operands[] = {
    {"ADDR", "HOST:PORT, [IPV6]:PORT or PORT (localhost); every address a name resolves to is "
             "tried in turn"},
    {NULL, NULL},
};

static void tcp_wait_notes(FILE *out)
{
    fputs("Example: netkit chat serve 127.0.0.1:9003 & netkit tcp wait 127.0.0.1:9003\n", out);
}

static const cli_spec tcp_wait_spec = {
    .cmd = "tcp wait",
    .synopsis = "ADDR [--timeout SEC] [-v]",
    .about = "Exit 0 as soon as something accepts TCP connections at ADDR, trying every\n"
             "100 ms (an attempt not answered by then is dropped); exit 1 after --timeout.\n",
    .operands = tcp_wait_operands,
    .opts = tcp_wait_opts,
    .notes = tcp_wait_notes,
};
CLI_SPEC_REGISTER(tcp_wait_spec);

static void wait_drop(wait_tool *w)
{
    if (w->fd >= 0) {
        nk_io_stop(w->loop, &w->io);
        close(w->fd);
        w->fd = -1;
    }
}

static void wait_on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    wait_tool *w = io->data;
    int err = nk_sock_error(w->fd);
    if (err == 0) {
        if (w->verbose) {
            char text[NK_ADDR_STRLEN];
            nk_addr_format(&w->addrs[(w->next + w->naddrs - 1) % w->naddrs], text, sizeof text);
            fprintf(stderr, "%s accepts connections\n", text);
        }
        wait_drop(w);
        w->exit_code = CLI_OK;
        nk_loop_stop(loop);
        return;
    }
    w->last_err = err;
    wait_drop(w); /* the retry timer makes the next attempt */
}

/* One attempt per tick, cycling through the addresses; a slow attempt is abandoned. */
static void wait_on_retry(nk_loop *loop, nk_timer *timer)
{
    (void)loop;
    wait_tool *w = timer->data;
    wait_drop(w);
    const nk_addr *a = &w->addrs[w->next];
    w->next = (w->next + 1) % w->naddrs;
    int pending = 0;
    int fd = nk_sock_connect(a, SOCK_STREAM, 0, &pending);
    if (fd < 0) {
        w->last_err = fd;
        return;
    }
    w->fd = fd;
    nk_io_init(&w->io, fd, wait_on_io, w);
    int rc = nk_io_start(w->loop, &w->io, NK_WRITE);
    if (rc < 0) {
        w->last_err = rc;
        close(fd);
        w->fd = -1;
    }
}

static void wait_on_deadline(nk_loop *loop, nk_timer *timer)
{
    wait_tool *w = timer->data;
    w->exit_code = CLI_FAIL;
    nk_loop_stop(loop);
}

static int on_tcp_wait_opt(void *ctx, int key, const char *value)
{
    wait_tool *w = ctx;
    switch (key) {
    case 't':
        if (cli_parse_seconds(value, &w->timeout_ms) < 0)
            return cli_usage(w->cmd, "invalid time '%s' for --timeout (seconds)", value);
        return 0;
    case 'v':
        w->verbose = 1;
        return 0;
    default:
        return CLI_USAGE;
    }
}

/* Options, then ADDR resolved: 0, CLI_OPT_HELP_SHOWN or an exit code. */
static int tcp_wait_parse(int argc, char **argv, wait_tool *w)
{
    int first;
    int rc = cli_opt_parse(&tcp_wait_spec, argc, argv, on_tcp_wait_opt, w, &first);
    if (rc)
        return rc;
    optind = first;
    if ((rc = cli_one_operand(w->cmd, argc, argv, "ADDR", &w->text)) != 0)
        return rc;
    if (strncmp(w->text, "unix:", 5) == 0)
        return cli_usage(w->cmd, "'%s' is a unix address: tcp wait takes HOST:PORT", w->text);
    size_t n;
    rc = cli_parse_addrs(w->cmd, w->text, SOCK_STREAM, 0, w->addrs, STREAM_MAX_ADDRS, &n);
    w->naddrs = (int)n;
    return rc;
}

/* Attempt until one succeeds or the deadline: the exit code. */
static int tcp_wait_run(wait_tool *w)
{
    int rc = nk_loop_new(NULL, &w->loop);
    if (rc < 0)
        return cli_fail(w->cmd, "cannot start the event loop: %s", nk_strerror(rc));
    nk_timer_init(&w->retry, wait_on_retry, w);
    nk_timer_init(&w->deadline, wait_on_deadline, w);
    w->exit_code = CLI_FAIL;
    nk_timer_start(w->loop, &w->retry, 0, WAIT_RETRY_MS);
    nk_timer_start(w->loop, &w->deadline, (uint64_t)w->timeout_ms, 0);
    rc = nk_loop_run(w->loop, NK_RUN_DEFAULT);
    nk_timer_stop(w->loop, &w->retry);
    nk_timer_stop(w->loop, &w->deadline);
    wait_drop(w);
    nk_loop_free(w->loop);
    if (rc < 0)
        return cli_fail(w->cmd, "event loop: %s", nk_strerror(rc));
    if (w->exit_code != CLI_OK)
        return cli_fail(w->cmd, "%s: timed out after %ld ms (last: %s)", w->text, w->timeout_ms,
                        nk_strerror(w->last_err));
    return CLI_OK;
}

int tcp_wait(int argc, char **argv)
{
    wait_tool w;
    memset(&w, 0, sizeof w);
    w.cmd = argv[0];
    w.fd = -1;
    w.timeout_ms = WAIT_DEFAULT_MS;
    w.last_err = -ECONNREFUSED;
    int rc = tcp_wait_parse(argc, argv, &w);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    return tcp_wait_run(&w);
}
