/* Table-driven options (opt.h): the getopt_long tables, the --help text and the roff list are
 * all derived from one cli_opt table per command. */
#include "opt.h"

#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* Every command takes -h, --help; it is not repeated in the tables. */
static const cli_opt help_opt = {"help", 'h', NULL, "show this help"};

#define OPT_MAX 64          /* options in one table, --help included */
#define HELP_WIDTH 79       /* the help is wrapped to fit this many columns */
#define HELP_COLUMN 22      /* where the text of an option or operand starts */

static size_t count_opts(const cli_opt *opts)
{
    size_t n = 0;
    while (opts && opts[n].name)
        n++;
    return n;
}

/* The i-th option of spec, the implicit --help being the last one. */
static const cli_opt *opt_at(const cli_spec *spec, size_t i)
{
    return i < count_opts(spec->opts) ? &spec->opts[i] : &help_opt;
}

/* ---- parsing ------------------------------------------------------------------------------ */

/* getopt's view of the table: the long options and the optstring (':' first, so that a
 * missing value is told apart from an unknown option). */
typedef struct getopt_view {
    struct option longs[OPT_MAX + 1];
    char shorts[2 * OPT_MAX + 2];
} getopt_view;

static int build_view(const cli_spec *spec, getopt_view *v)
{
    size_t n = count_opts(spec->opts) + 1;
    if (n > OPT_MAX)
        return cli_fail(spec->cmd, "internal error: more than %d options", OPT_MAX - 1);
    size_t s = 0, l = 0;
    v->shorts[s++] = ':';
    for (size_t i = 0; i < n; i++) {
        const cli_opt *o = opt_at(spec, i);
        if (*o->name) /* not a short-only option */
            v->longs[l++] = (struct option){o->name, o->arg ? required_argument : no_argument,
                                            NULL, o->key};
        if (o->key > 0 && o->key < CLI_OPT_LONG) {
            v->shorts[s++] = (char)o->key;
            if (o->arg)
                v->shorts[s++] = ':';
        }
    }
    v->longs[l] = (struct option){NULL, 0, NULL, 0};
    v->shorts[s] = '\0';
    return 0;
}

int cli_opt_parse(const cli_spec *spec, int argc, char **argv, cli_opt_fn fn, void *ctx,
                  int *first)
{
    getopt_view v;
    int rc = build_view(spec, &v);
    if (rc)
        return rc;
    optind = 0; /* glibc: full re-initialisation, argv differs from any earlier parse */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, v.shorts, v.longs, NULL)) != -1) {
        if (c == '?' || c == ':')
            return cli_getopt_error(argv[0], c, argv);
        if (c == 'h') {
            cli_opt_help(spec, stdout);
            return CLI_OPT_HELP_SHOWN;
        }
        rc = fn(ctx, c, optarg);
        if (rc)
            return rc;
    }
    *first = optind;
    return 0;
}

/* ---- help --------------------------------------------------------------------------------- */

/* Print text from column `col`, wrapped at HELP_WIDTH, continuation lines indented to `col`;
 * the cursor is at column `at` on entry, and text starts on the next line unless two spaces
 * fit before col. A '\n' in text starts a new line. */
static void print_wrapped(FILE *out, const char *text, int col, int at)
{
    if (at + 2 > col) {
        fputc('\n', out);
        at = 0;
    }
    fprintf(out, "%*s", col - at, "");
    at = col;
    const char *p = text;
    int line_start = 1;
    while (*p) {
        if (*p == '\n') {
            fprintf(out, "\n%*s", col, "");
            at = col;
            line_start = 1;
            p++;
            continue;
        }
        size_t word = strcspn(p, " \n");
        if (!line_start && at + 1 + (int)word > HELP_WIDTH) {
            fprintf(out, "\n%*s", col, "");
            at = col;
            line_start = 1;
        }
        if (!line_start) {
            fputc(' ', out);
            at++;
        }
        fwrite(p, 1, word, out);
        at += (int)word;
        line_start = 0;
        p += word;
        while (*p == ' ')
            p++;
    }
    fputc('\n', out);
}

static int print_label(FILE *out, const cli_opt *o)
{
    int n;
    if (!*o->name)
        n = fprintf(out, "  -%c", o->key);
    else if (o->key > 0 && o->key < CLI_OPT_LONG)
        n = fprintf(out, "  -%c, --%s", o->key, o->name);
    else
        n = fprintf(out, "      --%s", o->name);
    if (o->arg)
        n += fprintf(out, " %s", o->arg);
    return n;
}

void cli_opt_help(const cli_spec *spec, FILE *out)
{
    fprintf(out, "usage: netkit %s%s%s\n", spec->cmd, *spec->synopsis ? " " : "",
            spec->synopsis);
    if (spec->about)
        fprintf(out, "\n%s", spec->about);
    fputc('\n', out);
    for (const cli_operand *op = spec->operands; op && op->name; op++) {
        int at = fprintf(out, "  %s", op->name);
        print_wrapped(out, op->help, HELP_COLUMN, at);
    }
    size_t n = count_opts(spec->opts) + 1;
    for (size_t i = 0; i < n; i++) {
        const cli_opt *o = opt_at(spec, i);
        int at = print_label(out, o);
        print_wrapped(out, o->help, HELP_COLUMN, at);
    }
    if (spec->notes) {
        fputc('\n', out);
        spec->notes(out);
    }
}

/* ---- roff --------------------------------------------------------------------------------- */

/* Text for roff: backslashes, hyphens and apostrophes escaped, a '\n' a line break, and no
 * line starting with a control character. */
static void roff_text(FILE *out, const char *s)
{
    int line_start = 1;
    for (; *s; s++) {
        if (line_start && (*s == '.' || *s == '\''))
            fputs("\\&", out);
        line_start = 0;
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '\'')
            fputs("\\(aq", out); /* an apostrophe, not a typographic quote */
        else if (*s == '-')
            fputs("\\-", out);
        else if (*s == '\n') {
            fputs("\n.br\n", out);
            line_start = 1;
        } else
            fputc(*s, out);
    }
}

static void roff_opt(FILE *out, const cli_opt *o)
{
    fputs(".TP\n", out);
    if (!*o->name) {
        fprintf(out, "\\fB\\-%c\\fR", o->key);
    } else {
        if (o->key > 0 && o->key < CLI_OPT_LONG)
            fprintf(out, "\\fB\\-%c\\fR, ", o->key);
        fputs("\\fB\\-\\-", out);
        roff_text(out, o->name);
        fputs("\\fR", out);
    }
    if (o->arg) {
        fputs(" \\fI", out);
        roff_text(out, o->arg);
        fputs("\\fR", out);
    }
    fputc('\n', out);
    /* In the manual an option's text ends as a sentence does. */
    size_t len = strlen(o->help);
    roff_text(out, o->help);
    fputs(len > 0 && o->help[len - 1] == '.' ? "\n" : ".\n", out);
}

/* The register: pointers to every CLI_SPEC_REGISTER'd spec, between the linker's
 * __start_/__stop_ symbols of the section (weak: both NULL while no command registers). */
// NOLINTNEXTLINE(bugprone-reserved-identifier): the names GNU ld gives these symbols
extern const cli_spec *const __start_cli_specs[] __attribute__((weak));
// NOLINTNEXTLINE(bugprone-reserved-identifier)
extern const cli_spec *const __stop_cli_specs[] __attribute__((weak));

static int by_name(const void *a, const void *b)
{
    const cli_spec *x = *(const cli_spec *const *)a, *y = *(const cli_spec *const *)b;
    return strcmp(x->cmd, y->cmd);
}

int cli_opt_roff_all(FILE *out)
{
    /* both ends of one section, which the linker lays out as one array */
    // cppcheck-suppress comparePointers
    size_t n = (size_t)(__stop_cli_specs - __start_cli_specs);
    const cli_spec **sorted = calloc(n ? n : 1, sizeof(const cli_spec *));
    if (!sorted)
        return -1;
    if (n)
        memcpy(sorted, __start_cli_specs, n * sizeof(const cli_spec *));
    qsort(sorted, n, sizeof(const cli_spec *), by_name);
    for (size_t i = 0; i < n; i++) {
        const cli_spec *spec = sorted[i];
        fprintf(out, ".\\\" options: %s\n", spec->cmd);
        size_t nopts = count_opts(spec->opts) + 1;
        for (size_t k = 0; k < nopts; k++)
            roff_opt(out, opt_at(spec, k));
        fputs(".\\\" end options\n", out);
    }
    free(sorted);
    return (int)n;
}
