/* The sniff filter language, compiled to a classic BPF program (linux/filter.h) that the
 * kernel runs on each frame before it is queued, so dropped packets never reach user space.
 *
 * Parsing builds a small tree (precedence: not > and > or). Every leaf is turned into one or
 * more "atoms": a straight-line check of one address family (an IPv4 port check, an IPv6 host
 * check...), so that a primitive such as `port 80` is simply IPv4-port-80 OR IPv6-port-80 and
 * `not` stays correct for frames of the other family. Code generation is the usual
 * short-circuit scheme: gen(node, T, F) emits code that jumps to label T when node holds and F
 * otherwise; labels are always placed after the code that uses them, so every jump is forward,
 * as classic BPF requires.
 *
 * Conditional jumps only reach 255 instructions ahead, so an atom never jumps outside itself:
 * it ends with two trampolines, `ja T` and `ja F`, whose 32-bit offsets reach anywhere.
 * Offsets in the frame assume the Ethernet header at 0 and no VLAN tag.
 */
#include <netkit/raw.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Limits on what one expression may build: each bounds memory and recursion depth. */
#define MAX_NODES 1024
#define MAX_DEPTH 100
#define MAX_LABELS (2 * MAX_NODES + 2)
#define MAX_EMIT (BPF_MAXINSNS + 64)

enum { N_AND, N_OR, N_NOT, N_ATOM };
enum { A_ETHERTYPE, A_IP4_PROTO, A_IP6_NXT, A_IP4_PORT, A_IP6_PORT, A_IP4_HOST, A_IP6_HOST };
enum { DIR_ANY, DIR_SRC, DIR_DST };
enum { P_TCP = 1, P_UDP = 2 };

typedef struct node {
    int kind;
    int a, b; /* children (N_AND, N_OR: both; N_NOT: a) */
    int atom, dir, protos;
    uint32_t value;   /* ethertype, protocol, port, IPv4 address (host order) */
    uint8_t addr6[16];
} node;

typedef struct compiler {
    const char *text;
    size_t pos;          /* where the current token starts */
    size_t tok_len;
    int depth;
    node nodes[MAX_NODES];
    int nnodes;
    struct sock_filter out[MAX_EMIT];
    int fix[MAX_EMIT];   /* label id a `ja` jumps to, or -1 */
    size_t n;
    int labels[MAX_LABELS];
    int nlabels;
    int err;
    size_t err_pos;
    const char *err_what;
} compiler;

/* ---- tokens --------------------------------------------------------------------------------- */

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Move to the token at or after pos and measure it. */
static void scan(compiler *c)
{
    const char *t = c->text;
    while (t[c->pos] && is_space(t[c->pos]))
        c->pos++;
    size_t i = c->pos;
    if (!t[i]) {
        c->tok_len = 0;
        return;
    }
    if (t[i] == '(' || t[i] == ')' || (t[i] == '!' && t[i + 1] != '=')) {
        c->tok_len = 1;
        return;
    }
    if ((t[i] == '&' && t[i + 1] == '&') || (t[i] == '|' && t[i + 1] == '|')) {
        c->tok_len = 2;
        return;
    }
    while (t[i] && !is_space(t[i]) && t[i] != '(' && t[i] != ')' && t[i] != '&' &&
           t[i] != '|')
        i++;
    if (i == c->pos) /* a lone '&' or '|' */
        i++;
    c->tok_len = i - c->pos;
}

static int tok_is(compiler *c, const char *word)
{
    size_t n = strlen(word);
    return c->tok_len == n && strncmp(c->text + c->pos, word, n) == 0;
}

static void advance(compiler *c)
{
    c->pos += c->tok_len;
    scan(c);
}

static int fail(compiler *c, const char *what)
{
    if (!c->err) {
        c->err = -EINVAL;
        c->err_pos = c->pos;
        c->err_what = what;
    }
    return -1;
}

/* The token after the current one, without consuming anything. */
static int next_is(compiler *c, const char *word)
{
    size_t save_pos = c->pos, save_len = c->tok_len;
    advance(c);
    int r = tok_is(c, word);
    c->pos = save_pos;
    c->tok_len = save_len;
    return r;
}

/* ---- tree ----------------------------------------------------------------------------------- */

static int new_node(compiler *c, int kind)
{
    if (c->nnodes >= MAX_NODES) {
        if (!c->err) {
            c->err = -E2BIG;
            c->err_pos = c->pos;
            c->err_what = "expression too long";
        }
        return -1;
    }
    node *n = &c->nodes[c->nnodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    return c->nnodes++;
}

static int new_atom(compiler *c, int atom, int dir, int protos, uint32_t value)
{
    int i = new_node(c, N_ATOM);
    if (i < 0)
        return -1;
    c->nodes[i].atom = atom;
    c->nodes[i].dir = dir;
    c->nodes[i].protos = protos;
    c->nodes[i].value = value;
    return i;
}

static int new_bin(compiler *c, int kind, int a, int b)
{
    if (a < 0 || b < 0)
        return -1;
    int i = new_node(c, kind);
    if (i < 0)
        return -1;
    c->nodes[i].a = a;
    c->nodes[i].b = b;
    return i;
}

/* ---- parser --------------------------------------------------------------------------------- */

static int parse_or(compiler *c);

static int parse_port(compiler *c, int dir, int protos)
{
    advance(c); /* "port" */
    if (c->tok_len == 0 || c->tok_len > 5)
        return fail(c, "expected a port number (0 to 65535)");
    uint32_t v = 0;
    for (size_t i = 0; i < c->tok_len; i++) {
        char ch = c->text[c->pos + i];
        if (ch < '0' || ch > '9')
            return fail(c, "expected a port number (0 to 65535)");
        v = v * 10 + (uint32_t)(ch - '0');
    }
    if (v > 65535)
        return fail(c, "expected a port number (0 to 65535)");
    advance(c);
    return new_bin(c, N_OR, new_atom(c, A_IP4_PORT, dir, protos, v),
                   new_atom(c, A_IP6_PORT, dir, protos, v));
}

static int parse_host(compiler *c, int dir)
{
    advance(c); /* "host" */
    char text[INET6_ADDRSTRLEN + 1];
    if (c->tok_len == 0 || c->tok_len >= sizeof text)
        return fail(c, "expected a numeric IPv4 or IPv6 address");
    memcpy(text, c->text + c->pos, c->tok_len);
    text[c->tok_len] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    int i;
    if (inet_pton(AF_INET, text, &a4) == 1) {
        i = new_atom(c, A_IP4_HOST, dir, 0, ntohl(a4.s_addr));
    } else if (inet_pton(AF_INET6, text, &a6) == 1) {
        i = new_atom(c, A_IP6_HOST, dir, 0, 0);
        if (i >= 0)
            memcpy(c->nodes[i].addr6, a6.s6_addr, 16);
    } else {
        return fail(c, "expected a numeric IPv4 or IPv6 address");
    }
    advance(c);
    return i;
}

static int parse_prim(compiler *c)
{
    if (tok_is(c, "ip") || tok_is(c, "ip6") || tok_is(c, "arp")) {
        uint32_t t = tok_is(c, "ip") ? 0x0800 : tok_is(c, "ip6") ? 0x86dd : 0x0806;
        advance(c);
        return new_atom(c, A_ETHERTYPE, DIR_ANY, 0, t);
    }
    if (tok_is(c, "icmp")) {
        advance(c);
        return new_atom(c, A_IP4_PROTO, DIR_ANY, 0, 1);
    }
    if (tok_is(c, "icmp6")) {
        advance(c);
        return new_atom(c, A_IP6_NXT, DIR_ANY, 0, 58);
    }
    if (tok_is(c, "tcp") || tok_is(c, "udp")) {
        int p = tok_is(c, "tcp") ? P_TCP : P_UDP;
        uint32_t num = p == P_TCP ? 6 : 17;
        advance(c);
        /* "tcp port 80", "udp src port 53": the protocol qualifies the port. */
        if (tok_is(c, "port"))
            return parse_port(c, DIR_ANY, p);
        if ((tok_is(c, "src") || tok_is(c, "dst")) && next_is(c, "port")) {
            int dir = tok_is(c, "src") ? DIR_SRC : DIR_DST;
            advance(c);
            return parse_port(c, dir, p);
        }
        return new_bin(c, N_OR, new_atom(c, A_IP4_PROTO, DIR_ANY, 0, num),
                       new_atom(c, A_IP6_NXT, DIR_ANY, 0, num));
    }
    int dir = DIR_ANY;
    if (tok_is(c, "src") || tok_is(c, "dst")) {
        dir = tok_is(c, "src") ? DIR_SRC : DIR_DST;
        advance(c);
        if (!tok_is(c, "port") && !tok_is(c, "host"))
            return fail(c, "expected 'port' or 'host' after 'src'/'dst'");
    }
    if (tok_is(c, "port"))
        return parse_port(c, dir, P_TCP | P_UDP);
    if (tok_is(c, "host"))
        return parse_host(c, dir);
    if (c->tok_len == 0)
        return fail(c, "expression ends too early");
    return fail(c, "unknown word (expected tcp, udp, icmp, icmp6, ip, ip6, arp, port, host, "
                   "src, dst, not or '(')");
}

static int parse_unary(compiler *c)
{
    if (++c->depth > MAX_DEPTH) {
        if (!c->err) {
            c->err = -E2BIG;
            c->err_pos = c->pos;
            c->err_what = "expression nested too deeply";
        }
        return -1;
    }
    int r;
    if (tok_is(c, "not") || tok_is(c, "!")) {
        advance(c);
        int a = parse_unary(c);
        r = a < 0 ? -1 : new_bin(c, N_NOT, a, a);
    } else if (tok_is(c, "(")) {
        advance(c);
        r = parse_or(c);
        if (r >= 0) {
            if (!tok_is(c, ")"))
                r = fail(c, "expected ')'");
            else
                advance(c);
        }
    } else {
        r = parse_prim(c);
    }
    c->depth--;
    return r;
}

static int parse_and(compiler *c)
{
    int a = parse_unary(c);
    while (a >= 0 && (tok_is(c, "and") || tok_is(c, "&&"))) {
        advance(c);
        a = new_bin(c, N_AND, a, parse_unary(c));
    }
    return a;
}

static int parse_or(compiler *c)
{
    int a = parse_and(c);
    while (a >= 0 && (tok_is(c, "or") || tok_is(c, "||"))) {
        advance(c);
        a = new_bin(c, N_OR, a, parse_and(c));
    }
    return a;
}

/* ---- code generation ------------------------------------------------------------------------ */

/* Symbolic jump targets inside an atom: its trailing `ja T` / `ja F`. */
#define TO_T 0xff
#define TO_F 0xfe

static void emit(compiler *c, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
    if (c->n >= MAX_EMIT) {
        if (!c->err) {
            c->err = -E2BIG;
            c->err_pos = 0;
            c->err_what = "filter program too long";
        }
        return;
    }
    c->fix[c->n] = -1;
    c->out[c->n++] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
}

static void emit_ja(compiler *c, int label)
{
    size_t at = c->n;
    emit(c, BPF_JMP | BPF_JA, 0, 0, 0);
    if (at < c->n)
        c->fix[at] = label;
}

static int new_label(compiler *c)
{
    if (c->nlabels >= MAX_LABELS)
        return 0; /* cannot happen: at most two labels per node */
    c->labels[c->nlabels] = -1;
    return c->nlabels++;
}

static void place(compiler *c, int label) { c->labels[label] = (int)c->n; }

#define LD(mode, size, k) emit(c, BPF_LD | (size) | (mode), 0, 0, (k))
#define JEQ(k, jt, jf) emit(c, BPF_JMP | BPF_JEQ | BPF_K, (jt), (jf), (k))

/* The ethertype check that opens every atom: on a mismatch, the atom is false. */
static void need_ethertype(compiler *c, uint32_t type)
{
    LD(BPF_ABS, BPF_H, 12);
    JEQ(type, 0, TO_F);
}

/* Accept the transport protocols in protos at the loaded protocol byte, else false. */
static void need_protos(compiler *c, int protos)
{
    if (protos == (P_TCP | P_UDP)) {
        JEQ(6, 1, 0);
        JEQ(17, 0, TO_F);
    } else {
        JEQ(protos == P_TCP ? 6 : 17, 0, TO_F);
    }
}

/* Compare the 16-bit words at offsets src/dst (relative to X when ind) with value. */
static void ports(compiler *c, int mode, uint32_t src, uint32_t dst, int dir, uint32_t value)
{
    if (dir != DIR_DST) {
        LD(mode, BPF_H, src);
        JEQ(value, TO_T, dir == DIR_SRC ? TO_F : 0);
    }
    if (dir != DIR_SRC) {
        LD(mode, BPF_H, dst);
        JEQ(value, TO_T, TO_F);
    }
}

static void gen_atom(compiler *c, const node *nd, int lt, int lf)
{
    size_t start = c->n;
    switch (nd->atom) {
    case A_ETHERTYPE:
        LD(BPF_ABS, BPF_H, 12);
        JEQ(nd->value, TO_T, TO_F);
        break;
    case A_IP4_PROTO:
        need_ethertype(c, 0x0800);
        LD(BPF_ABS, BPF_B, 14 + 9);
        JEQ(nd->value, TO_T, TO_F);
        break;
    case A_IP6_NXT:
        need_ethertype(c, 0x86dd);
        LD(BPF_ABS, BPF_B, 14 + 6);
        JEQ(nd->value, TO_T, TO_F);
        break;
    case A_IP4_PORT:
        need_ethertype(c, 0x0800);
        LD(BPF_ABS, BPF_B, 14 + 9);
        need_protos(c, nd->protos);
        /* Only the first fragment (offset 0) holds the ports (RFC 791 section 3.1). */
        LD(BPF_ABS, BPF_H, 14 + 6);
        emit(c, BPF_JMP | BPF_JSET | BPF_K, TO_F, 0, 0x1fff);
        /* X = IHL * 4: the transport header follows the options. */
        emit(c, BPF_LDX | BPF_B | BPF_MSH, 0, 0, 14);
        ports(c, BPF_IND, 14, 16, nd->dir, nd->value);
        break;
    case A_IP6_PORT:
        /* The transport header right after the fixed header; extension headers are not
         * followed (documented in docs/sniff.md). */
        need_ethertype(c, 0x86dd);
        LD(BPF_ABS, BPF_B, 14 + 6);
        need_protos(c, nd->protos);
        ports(c, BPF_ABS, 14 + 40, 14 + 42, nd->dir, nd->value);
        break;
    case A_IP4_HOST:
        need_ethertype(c, 0x0800);
        if (nd->dir != DIR_DST) {
            LD(BPF_ABS, BPF_W, 14 + 12);
            JEQ(nd->value, TO_T, nd->dir == DIR_SRC ? TO_F : 0);
        }
        if (nd->dir != DIR_SRC) {
            LD(BPF_ABS, BPF_W, 14 + 16);
            JEQ(nd->value, TO_T, TO_F);
        }
        break;
    case A_IP6_HOST:
        need_ethertype(c, 0x86dd);
        for (int pass = 0; pass < 2; pass++) {
            int is_src = pass == 0;
            if ((is_src && nd->dir == DIR_DST) || (!is_src && nd->dir == DIR_SRC))
                continue;
            /* When src fails and dst is still to be tried, jump to the dst block: it starts
             * right after the 8 instructions of this block. */
            int fallthrough = is_src && nd->dir == DIR_ANY;
            uint32_t base = 14 + (is_src ? 8 : 24);
            for (int w = 0; w < 4; w++) {
                uint32_t word = (uint32_t)nd->addr6[4 * w] << 24 |
                                (uint32_t)nd->addr6[4 * w + 1] << 16 |
                                (uint32_t)nd->addr6[4 * w + 2] << 8 | nd->addr6[4 * w + 3];
                LD(BPF_ABS, BPF_W, base + 4 * (uint32_t)w);
                uint8_t miss = fallthrough ? (uint8_t)(6 - 2 * w) : TO_F;
                JEQ(word, w == 3 ? TO_T : 0, miss);
            }
        }
        break;
    }
    size_t t_at = c->n;
    emit_ja(c, lt);
    emit_ja(c, lf);
    if (c->err)
        return;
    for (size_t i = start; i < t_at; i++) {
        struct sock_filter *f = &c->out[i];
        if (BPF_CLASS(f->code) != BPF_JMP || BPF_OP(f->code) == BPF_JA)
            continue;
        if (f->jt == TO_T || f->jt == TO_F)
            f->jt = (uint8_t)((f->jt == TO_T ? t_at : t_at + 1) - (i + 1));
        if (f->jf == TO_T || f->jf == TO_F)
            f->jf = (uint8_t)((f->jf == TO_T ? t_at : t_at + 1) - (i + 1));
    }
}

static void gen(compiler *c, int idx, int lt, int lf)
{
    const node *nd = &c->nodes[idx];
    int mid;
    switch (nd->kind) {
    case N_AND:
        mid = new_label(c);
        gen(c, nd->a, mid, lf);
        place(c, mid);
        gen(c, nd->b, lt, lf);
        break;
    case N_OR:
        mid = new_label(c);
        gen(c, nd->a, lt, mid);
        place(c, mid);
        gen(c, nd->b, lt, lf);
        break;
    case N_NOT:
        gen(c, nd->a, lf, lt);
        break;
    default:
        gen_atom(c, nd, lt, lf);
        break;
    }
}

int nk_raw_filter_compile(const char *expr, nk_raw_filter *out)
{
    if (!expr || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    compiler *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->text = expr;
    scan(c);
    if (c->tok_len == 0) {
        emit(c, BPF_RET | BPF_K, 0, 0, NK_RAW_SNAPLEN); /* no filter: keep everything */
    } else {
        int root = parse_or(c);
        if (root >= 0 && c->tok_len != 0)
            fail(c, tok_is(c, ")") ? "unbalanced ')'" : "expected 'and', 'or' or the end");
        if (!c->err) {
            int lt = new_label(c), lf = new_label(c);
            gen(c, root, lt, lf);
            place(c, lt);
            emit(c, BPF_RET | BPF_K, 0, 0, NK_RAW_SNAPLEN);
            place(c, lf);
            emit(c, BPF_RET | BPF_K, 0, 0, 0);
            for (size_t i = 0; i < c->n && !c->err; i++)
                if (c->fix[i] >= 0)
                    c->out[i].k = (uint32_t)(c->labels[c->fix[i]] - (int)(i + 1));
        }
    }
    if (!c->err && c->n > BPF_MAXINSNS) {
        c->err = -E2BIG;
        c->err_pos = 0;
        c->err_what = "filter program too long";
    }
    int rc = c->err;
    if (rc) {
        out->err_pos = c->err_pos;
        out->err_what = c->err_what;
    } else {
        out->insns = malloc(c->n * sizeof *out->insns);
        if (!out->insns) {
            rc = -ENOMEM;
        } else {
            memcpy(out->insns, c->out, c->n * sizeof *out->insns);
            out->len = c->n;
        }
    }
    free(c);
    return rc;
}

void nk_raw_filter_free(nk_raw_filter *f)
{
    if (!f)
        return;
    free(f->insns);
    f->insns = NULL;
    f->len = 0;
}
