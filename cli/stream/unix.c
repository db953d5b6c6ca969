/* netkit unix listen|connect: Unix-domain sockets. Streams go through the same pump and options
 * as netkit tcp (stream_run in stream/tcp.c); --dgram uses datagram sockets (stream/dgram.c).
 * One option table per command holds both modes (stream/stream_opts.c): --dgram anywhere
 * among the options picks the mode before they are parsed, so that -w and -v take the mode's
 * meaning and an option of the other mode is refused by name.
 *
 * A datagram client binds a temporary path of its own: without a name, a server has no address
 * to reply to (unix(7): an unbound datagram socket's sender address is empty). That path and the
 * listener's socket file are removed on exit, SIGINT and SIGTERM included (those stop the loop,
 * so the normal clean-up runs).
 */
#include "cli.h"
#include "stream/dgram.h"
#include "stream/stream.h"

#include <errno.h>
#include <getopt.h> /* optind, for cli_one_operand */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What a unix command line asked for: a stream (s) or, with --dgram, datagrams (d). */
typedef struct unix_args {
    const cli_spec *spec;
    int dgram;
    stream_args s;
    dgram_opts d;
    nk_addr dgram_addr;
} unix_args;

/* Is --dgram among the options (before a "--")? */
static int wants_dgram(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "--dgram") == 0)
            return 1;
    }
    return 0;
}

/* The long name of key in spec's table, for messages. */
static const char *unix_opt_name(const cli_spec *spec, int key)
{
    for (const cli_opt *o = spec->opts; o->name; o++)
        if (o->key == key)
            return o->name;
    return "?";
}

static int unix_is_dgram_opt(int key)
{
    return key == DGRAM_OPT_RAW || key == DGRAM_OPT_ECHO || key == DGRAM_OPT_MAX_SIZE ||
           key == DGRAM_OPT_REPLY;
}

static int on_unix_opt(void *ctx, int key, const char *value)
{
    unix_args *u = ctx;
    const char *cmd = u->s.cmd;
    if (key == DGRAM_OPT_DGRAM)
        return 0;
    if (!u->dgram) {
        if (unix_is_dgram_opt(key))
            return cli_usage(cmd, "--%s is for --dgram", unix_opt_name(u->spec, key));
        return stream_on_opt(&u->s, key, value);
    }
    if (key == DGRAM_OPT_ECHO && !u->s.listening)
        return cli_usage(cmd, "--echo is for listen");
    if (key == DGRAM_OPT_REPLY && u->s.listening)
        return cli_usage(cmd, "--reply is for connect");
    int rc = dgram_on_opt(cmd, &u->d, key, value);
    if (rc != DGRAM_OPT_NOT_MINE)
        return rc;
    return cli_usage(cmd, "--%s is for stream sockets, not --dgram", unix_opt_name(u->spec, key));
}

/* Options, then PATH: 0, CLI_OPT_HELP_SHOWN or an exit code. */
static int unix_parse(const cli_spec *spec, int argc, char **argv, int listening, unix_args *u)
{
    memset(u, 0, sizeof *u);
    u->spec = spec;
    u->dgram = wants_dgram(argc, argv);
    stream_args_init(&u->s, argv[0], 1, listening);
    u->d = (dgram_opts){.max_size = DGRAM_DEFAULT_MAX, .wait_ms = 2000, .show_replies = 1};
    int first;
    int rc = cli_opt_parse(spec, argc, argv, on_unix_opt, u, &first);
    if (rc)
        return rc;
    optind = first;
    const char *text;
    if ((rc = cli_one_operand(u->s.cmd, argc, argv, "PATH", &text)) != 0)
        return rc;
    if (!u->dgram)
        return stream_args_operand(&u->s, text);
    u->s.text = text;
    return cli_parse_unix_addr(u->s.cmd, text, SOCK_DGRAM, &u->dgram_addr);
}

/* ---- --dgram -------------------------------------------------------------------------------- */

static int unix_dgram_listen(const unix_args *u)
{
    const char *cmd = u->s.cmd;
    int fd = nk_sock_listen(&u->dgram_addr, SOCK_DGRAM, 0, 0);
    if (fd < 0)
        return cli_fail(cmd, "%s: %s", u->s.text, nk_strerror(fd));
    cli_unix_file file;
    cli_unix_file_remember(&file, u->dgram_addr.u.un.sun_path);
    int code, rc;
    if ((rc = cli_print_listening("unix", fd)) < 0)
        code = cli_fail(cmd, "getsockname: %s", nk_strerror(rc));
    else
        code = dgram_listen(cmd, fd, &u->d);
    close(fd);
    cli_unix_file_remove(&file);
    return code;
}

/* Bind fd to a fresh name in dir, unique by pid and a counter, for the replies to come back
 * to: 0 with *me filled, or a negative error. */
static int unix_bind_reply_socket(int fd, const char *dir, struct sockaddr_un *me)
{
    memset(me, 0, sizeof *me);
    me->sun_family = AF_UNIX;
    int rc = -EADDRINUSE;
    for (int i = 0; i < 100 && rc == -EADDRINUSE; i++) {
        int n = snprintf(me->sun_path, sizeof me->sun_path, "%s/netkit-%ld-%d.sock", dir,
                         (long)getpid(), i);
        if (n < 0 || (size_t)n >= sizeof me->sun_path)
            return -ENAMETOOLONG;
        rc = bind(fd, (struct sockaddr *)me, sizeof *me) < 0 ? -errno : 0;
    }
    return rc;
}

static int unix_dgram_connect(const unix_args *u)
{
    const char *cmd = u->s.cmd;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cli_fail(cmd, "socket: %s", nk_strerror(-errno));
    const char *dir = getenv("TMPDIR"); /* the reply address's folder: $TMPDIR, or /tmp */
    if (!dir || !*dir)
        dir = "/tmp";
    struct sockaddr_un me;
    int rc = unix_bind_reply_socket(fd, dir, &me);
    if (rc < 0) {
        close(fd);
        return cli_fail(cmd, "cannot bind a reply socket in %s: %s", dir, nk_strerror(rc));
    }
    cli_unix_file file;
    cli_unix_file_remember(&file, me.sun_path);
    int code;
    if (connect(fd, &u->dgram_addr.u.sa, u->dgram_addr.len) < 0) {
        code = cli_fail(cmd, "%s: %s", u->s.text, nk_strerror(-errno));
    } else {
        char dest[NK_ADDR_STRLEN];
        nk_addr_format(&u->dgram_addr, dest, sizeof dest);
        code = dgram_send(cmd, fd, dest, NULL, 0, &u->d);
    }
    close(fd);
    cli_unix_file_remove(&file);
    return code;
}

/* ---- the commands --------------------------------------------------------------------------- */

static int unix_cmd(const cli_spec *spec, int argc, char **argv, int listening)
{
    unix_args u;
    int rc = unix_parse(spec, argc, argv, listening, &u);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    if (!u.dgram)
        return stream_run(&u.s);
    return listening ? unix_dgram_listen(&u) : unix_dgram_connect(&u);
}

static int unix_listen(int argc, char **argv)
{
    return unix_cmd(&unix_listen_spec, argc, argv, 1);
}

static int unix_connect(int argc, char **argv)
{
    return unix_cmd(&unix_connect_spec, argc, argv, 0);
}

static const cli_cmd unix_commands[] = {
    {"listen", "wait for a client: PATH [-k] [--dgram] (stream options as tcp)", unix_listen},
    {"connect", "connect: PATH [--dgram] (stream options as tcp)", unix_connect},
    {NULL, NULL, NULL},
};

int cmd_unix(int argc, char **argv)
{
    return cli_dispatch("unix", unix_commands, argc, argv);
}
