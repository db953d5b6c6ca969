/* Argument helpers and the error conventions shared by every command. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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
    fprintf(out, "\nRun 'netkit %s%s<command> --help' for a command's options.\n",
            prefix ? prefix : "", prefix ? " " : "");
}

int cli_dispatch(const char *prefix, const cli_cmd *table, int argc, char **argv)
{
    if (argc < 2) {
        list_commands(prefix, table, stderr);
        return CLI_USAGE;
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
