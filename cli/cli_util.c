/* Argument helpers and the error conventions shared by every command. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void vreport(const char *cmd, const char *fmt, va_list ap)
{
    fputs("netkit: ", stderr);
    if (cmd && *cmd)
        fprintf(stderr, "%s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'netkit %s%s--help'.\n", cmd ? cmd : "", cmd && *cmd ? " " : "");
    return CLI_USAGE;
}

static void list_commands(const char *prefix, const cli_cmd *table, FILE *out)
{
    fprintf(out, "usage: netkit %s%s<command> [options]\n\ncommands:\n", prefix ? prefix : "",
            prefix ? " " : "");
    for (const cli_cmd *c = table; c->name; c++)
        fprintf(out, "  %-12s %s\n", c->name, c->summary);
    fprintf(out, "\nRun 'netkit %s%s<command> --help' (or 'netkit help %s%s<command>') for a "
                 "command's options\nand examples; 'man netkit' has them all.\n",
            prefix ? prefix : "", prefix ? " " : "", prefix ? prefix : "", prefix ? " " : "");
}

int cli_dispatch(const char *prefix, const cli_cmd *table, int argc, char **argv)
{
    if (argc < 2) {
        list_commands(prefix, table, stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "help") == 0 && argc > 2) {
        /* "netkit help http serve" is "netkit http serve --help". */
        static char help_opt[] = "--help";
        char *again[16];
        if (argc > (int)(sizeof again / sizeof again[0]) - 1)
            return cli_usage(prefix ? prefix : "", "help: too many words");
        again[0] = argv[0];
        for (int i = 2; i < argc; i++)
            again[i - 1] = argv[i];
        again[argc - 1] = help_opt;
        again[argc] = NULL;
        return cli_dispatch(prefix, table, argc, again);
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        list_commands(prefix, table, stdout);
        return CLI_OK;
    }
    for (const cli_cmd *c = table; c->name; c++) {
        if (strcmp(c->name, argv[1]) != 0)
            continue;
        char full[64];
        snprintf(full, sizeof full, "%s%s%s", prefix ? prefix : "", prefix ? " " : "", c->name);
        argv[1] = full;
        return c->run(argc - 1, argv + 1);
    }
    return cli_usage(prefix ? prefix : "", "unknown command '%s'", argv[1]);
}

int cli_parse_long(const char *text, long min, long max, long *out)
{
    if (!text || !*text)
        return -EINVAL;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (*end != '\0' || end == text)
        return -EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int cli_parse_seconds(const char *text, long *out_ms)
{
    if (!text || !*text)
        return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (*end != '\0' || end == text || errno == ERANGE || !(v >= 0) || v > 86400.0 * 365)
        return -EINVAL;
    *out_ms = (long)(v * 1000.0 + 0.5);
    return 0;
}

int cli_getopt_error(const char *cmd, int c, char **argv)
{
    /* With a leading ':' in optstring, getopt_long returns ':' for a missing argument and '?'
     * for an unknown option. optopt holds a short option's letter; for long options it is 0
     * (unknown) or the option's val, so the text is taken from argv instead. */
    const char *text = optind > 0 ? argv[optind - 1] : "?";
    char shortopt[3] = {'-', (char)optopt, '\0'};
    if (optopt > 0 && optopt < 128 && !(text[0] == '-' && text[1] == '-'))
        text = shortopt;
    if (c == ':')
        return cli_usage(cmd, "option '%s' needs an argument", text);
    return cli_usage(cmd, "unknown option '%s'", text);
}

int cli_check_backend(const char *cmd, const char *name)
{
    if (!name)
        return 0;
    const char *const *names = nk_loop_backends();
    for (size_t i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return 0;
    char list[256] = "";
    size_t used = 0;
    for (size_t i = 0; names[i] && used < sizeof list; i++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return cli_usage(cmd, "unknown backend '%s' (choose from %s)", name, list);
}

int cli_backend_fail(const char *cmd, const char *name, int err)
{
    if (name == NULL) {
        const char *env = getenv("NETKIT_BACKEND");
        name = env != NULL && env[0] != '\0' ? env : "default";
    }
    if (strcmp(name, "uring") == 0 && (err == -ENOSYS || err == -EPERM))
        return cli_fail(cmd, "cannot start the uring backend: %s (this kernel refuses io_uring: "
                        "not built in, kernel.io_uring_disabled, or a seccomp filter)",
                        nk_strerror(err));
    return cli_fail(cmd, "cannot start the %s backend: %s", name, nk_strerror(err));
}

int cli_print_listening(const char *scheme, int fd)
{
    nk_addr local;
    int rc = nk_sock_local(fd, &local);
    if (rc < 0)
        return rc;
    char text[NK_ADDR_STRLEN];
    rc = nk_addr_format(&local, text, sizeof text);
    if (rc < 0)
        return rc;
    if (nk_addr_family(&local) == AF_UNIX)
        fprintf(stderr, "listening on %s\n", text);
    else
        fprintf(stderr, "listening on %s://%s\n", scheme, text);
    fflush(stderr);
    return 0;
}

int cli_one_operand(const char *cmd, int argc, char **argv, const char *what, const char **out)
{
    if (optind >= argc)
        return cli_usage(cmd, "missing %s", what);
    if (optind + 1 < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind + 1]);
    if (out)
        *out = argv[optind];
    return 0;
}

int cli_parse_unix_addr(const char *cmd, const char *text, int socktype, nk_addr *out)
{
    char buf[PATH_MAX + 8];
    if (strncmp(text, "unix:", 5) != 0) {
        if (!*text)
            return cli_usage(cmd, "empty unix socket path");
        int n = snprintf(buf, sizeof buf, "unix:%s", text);
        if (n < 0 || (size_t)n >= sizeof buf)
            return cli_usage(cmd, "unix socket path too long (at most %zu bytes): '%s'",
                             sizeof(((struct sockaddr_un *)0)->sun_path) - 1, text);
        text = buf;
    }
    return cli_parse_bind_addr(cmd, text, socktype, out);
}

void cli_unix_file_remember(cli_unix_file *f, const char *sun_path)
{
    f->path = NULL;
    struct stat st;
    if (sun_path[0] == '\0' || stat(sun_path, &st) != 0)
        return;
    f->path = strndup(sun_path, sizeof(((struct sockaddr_un *)0)->sun_path));
    f->dev = st.st_dev;
    f->ino = st.st_ino;
}

void cli_unix_file_remove(cli_unix_file *f)
{
    if (!f->path)
        return;
    struct stat st;
    if (lstat(f->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == f->dev &&
        st.st_ino == f->ino)
        unlink(f->path);
    free(f->path);
    f->path = NULL;
}

static void stop_loop(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)sig;
    (void)signum;
    nk_loop_stop(loop);
}

int cli_stop_signals_start(nk_loop *loop, cli_stop_signals *s, nk_signal_cb cb, void *data)
{
    nk_signal_init(&s->sigint, cb ? cb : stop_loop, data);
    nk_signal_init(&s->sigterm, cb ? cb : stop_loop, data);
    int rc = nk_signal_start(loop, &s->sigint, SIGINT);
    if (rc == 0 && (rc = nk_signal_start(loop, &s->sigterm, SIGTERM)) < 0)
        nk_signal_stop(loop, &s->sigint);
    return rc;
}

void cli_stop_signals_stop(nk_loop *loop, cli_stop_signals *s)
{
    nk_signal_stop(loop, &s->sigint);
    nk_signal_stop(loop, &s->sigterm);
}

/* How s[0..len) starts on a terminal: *keep bytes as they are (0 when they must be escaped),
 * and the escape text in esc[] otherwise. Returns the bytes of s covered. */
static size_t term_step(const unsigned char *s, size_t len, unsigned flags, size_t *keep,
                        char esc[8])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[0];
    size_t n = nk_utf8_len(s, len);
    *keep = 0;
    if (n == 2 && c == 0xC2 && s[1] <= 0x9F) { /* U+0080..U+009F: C1 controls (CSI, OSC...) */
        snprintf(esc, 8, "\\u%04x", (unsigned)s[1]);
        return 2;
    }
    if (n > 1) {
        *keep = n;
        return n;
    }
    if (n == 1 && !((c < 0x20 && !((c == '\t' && (flags & CLI_ESC_KEEP_TAB)) ||
                                   (c == '\n' && (flags & CLI_ESC_KEEP_NL)))) ||
                    c == 0x7F)) {
        *keep = 1;
        return 1;
    }
    /* a C0 control, DEL, or a byte that is not part of valid UTF-8 (raw 0x80..0x9F, which a
     * terminal in an 8-bit mode takes as C1 controls, among them) */
    esc[0] = '\\';
    esc[1] = 'x';
    esc[2] = hex[c >> 4];
    esc[3] = hex[c & 15];
    esc[4] = '\0';
    return 1;
}

size_t cli_term_escape(char *out, size_t cap, const char *s, size_t len, unsigned flags)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t need = 0, used = 0;
    int fits = 1;
    for (size_t i = 0; i < len;) {
        size_t keep;
        char esc[8];
        size_t adv = term_step(u + i, len - i, flags, &keep, esc);
        const char *piece = keep ? s + i : esc;
        size_t plen = keep ? keep : strlen(esc);
        /* Whole pieces only: half a UTF-8 sequence or half an escape could merge with what
         * is printed after it. */
        if (fits && used + plen < cap) {
            memcpy(out + used, piece, plen);
            used += plen;
        } else {
            fits = 0;
        }
        need += plen;
        i += adv;
    }
    if (cap > 0)
        out[used] = '\0';
    return need;
}

void cli_fput_escaped(FILE *f, const char *s, size_t len, unsigned flags)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0; /* s[run..i) is kept as it is, written in one go */
    while (i < len) {
        size_t keep;
        char esc[8];
        size_t adv = term_step(u + i, len - i, flags, &keep, esc);
        if (!keep) {
            fwrite(s + run, 1, i - run, f);
            fputs(esc, f);
            run = i + adv;
        }
        i += adv;
    }
    fwrite(s + run, 1, len - run, f);
}
