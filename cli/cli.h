/* Shared pieces of the netkit command: the subcommand table and the error conventions.
 *
 * Conventions (DESIGN.md, CLI contract): errors are one line on stderr,
 * "netkit: <command>: <message>"; exit 0 on success, 1 when the work failed, 2 for usage.
 */
#ifndef NETKIT_CLI_H
#define NETKIT_CLI_H

#include <stdio.h>
#include <netkit/netkit.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli_cmd {
    const char *name;
    const char *summary;
    /* argv[0] is the command's full name ("http serve"), argv[1..] its arguments. */
    int (*run)(int argc, char **argv);
} cli_cmd;

/* Print "netkit: <cmd>: <message>\n" to stderr; return CLI_FAIL / CLI_USAGE. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Dispatch argv[1] among a table of sub-commands (for nouns with verbs, such as "http serve").
 * Handles --help/-h and unknown verbs. prefix is the noun ("http"). */
int cli_dispatch(const char *prefix, const cli_cmd *table, int argc, char **argv);

/* Parse a non-negative integer option value in [min, max]; returns 0 or -EINVAL/-ERANGE. */
int cli_parse_long(const char *text, long min, long max, long *out);

/* Parse seconds as a decimal ("1.5") into milliseconds; -EINVAL when malformed or negative. */
int cli_parse_seconds(const char *text, long *out_ms);

/* Commands, one file each (cmd_<noun>.c). */
int cmd_echo(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_http(int argc, char **argv);

#endif
