/* Table-driven options: one table per command is at once its parser, the options part of its
 * --help and its option list in docs/netkit.1, so the three cannot drift apart.
 *
 * A command describes itself with a cli_spec (usage line, operands, options, notes) and
 * registers it with CLI_SPEC_REGISTER, which puts a pointer to it in a linker section: the
 * hidden `netkit help --roff` walks that section to print every command's option list in
 * roff, and scripts/man-options writes those lists into docs/netkit.1 between the
 * `.\" options: CMD` and `.\" end options` markers (test_man_options checks they match).
 */
#ifndef NETKIT_CLI_OPT_H
#define NETKIT_CLI_OPT_H

#include <stdio.h>

/* Keys of long-only options start here, past every letter getopt could return. */
enum { CLI_OPT_LONG = 256 };

/* Returned by cli_opt_parse once it printed --help: the command exits 0 at once. */
enum { CLI_OPT_HELP_SHOWN = -1 };

typedef struct cli_opt {
    const char *name; /* long name without the dashes ("backend"); "" for a short-only
                       * option (ping's -4); NULL ends a table */
    int key;          /* its short letter ('b'), or CLI_OPT_LONG + n for a long-only one */
    const char *arg;  /* the value's name in help ("NAME"); NULL for a flag */
    const char *help; /* what it does, one or more sentences, wrapped when printed; a '\n'
                       * starts a new line */
} cli_opt;

/* An operand in the help's list: name ("ADDR") and what it is. Ends with a NULL name. */
typedef struct cli_operand {
    const char *name;
    const char *help;
} cli_operand;

typedef struct cli_spec {
    const char *cmd;             /* the command's full name, "echo serve" */
    const char *synopsis;        /* what follows "usage: netkit CMD ", e.g. "ADDR [options]" */
    const char *about;           /* printed as it is after the usage line; may be NULL */
    const cli_operand *operands; /* may be NULL */
    const cli_opt *opts;         /* may be NULL; -h, --help is added to every command */
    /* Notes and examples after the options (--help only); may be NULL. */
    void (*notes)(FILE *out);
} cli_spec;

/* Put spec (a const cli_spec object's name) into the command register. */
#define CLI_SPEC_REGISTER(spec)                                                                 \
    static const cli_spec *const cli_spec_ref_##spec                                           \
        __attribute__((used, section("cli_specs"), aligned(sizeof(void *)))) = &(spec)

/* Called for each option in command-line order with its key and value (NULL for a flag).
 * Returns 0 to go on, or an exit code (after printing its own message) that ends parsing. */
typedef int (*cli_opt_fn)(void *ctx, int key, const char *value);

/* Parse argv[1..argc) against spec's options (argv[0] is the command's name, used in
 * messages). Options and operands may be mixed; "--" ends the options. Unknown options and
 * missing values are usage errors ("unknown option '--x'", "option '--port' needs an
 * argument"). Returns 0 with *first set to the index of the first operand (the operands are
 * argv[*first..argc), in order), CLI_OPT_HELP_SHOWN after printing the help to stdout, or the
 * exit code from fn or of a usage error. */
int cli_opt_parse(const cli_spec *spec, int argc, char **argv, cli_opt_fn fn, void *ctx,
                  int *first);

/* The whole --help of spec: usage, about, operands, options, notes. */
void cli_opt_help(const cli_spec *spec, FILE *out);

/* The roff option list of every registered command (for docs/netkit.1), in name order.
 * Returns the number of commands printed. */
int cli_opt_roff_all(FILE *out);

#endif
