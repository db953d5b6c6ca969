/* Unit tests for nk_raw_filter_compile: the generated classic BPF program runs in a small
 * interpreter below (the kernel's semantics: loads past the end reject the packet) on crafted
 * frames, so filters are tested without root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netkit/raw.h>

#include "raw_frames.h"

/* Run prog on pkt; returns what the program returns (0: drop). Also checks the program is
 * well formed: every jump lands inside it, and it ends in a return. */
static uint32_t bpf_run(const struct sock_filter *prog, size_t n, const uint8_t *pkt,
                        size_t len)
{
    uint32_t A = 0, X = 0;
    for (size_t pc = 0; pc < n; pc++) {
        const struct sock_filter *f = &prog[pc];
        uint32_t k = f->k, off;
        size_t size;
        switch (BPF_CLASS(f->code)) {
        case BPF_LD:
            size = BPF_SIZE(f->code) == BPF_W ? 4 : BPF_SIZE(f->code) == BPF_H ? 2 : 1;
            if (BPF_MODE(f->code) == BPF_IMM) {
                A = k;
                break;
            }
            assert_true(BPF_MODE(f->code) == BPF_ABS || BPF_MODE(f->code) == BPF_IND);
            off = BPF_MODE(f->code) == BPF_IND ? X + k : k;
            if ((size_t)off + size > len)
                return 0;
            A = 0;
            for (size_t i = 0; i < size; i++)
                A = A << 8 | pkt[off + i];
            break;
        case BPF_LDX:
            if (BPF_MODE(f->code) == BPF_MSH) {
                if (k >= len)
                    return 0;
                X = (uint32_t)(pkt[k] & 0x0f) * 4;
            } else {
                assert_int_equal(BPF_MODE(f->code), BPF_IMM);
                X = k;
            }
            break;
        case BPF_JMP: {
            if (BPF_OP(f->code) == BPF_JA) {
                assert_true(pc + 1 + k < n);
                pc += k;
                break;
            }
            int cond;
            switch (BPF_OP(f->code)) {
            case BPF_JEQ: cond = A == k; break;
            case BPF_JGT: cond = A > k; break;
            case BPF_JGE: cond = A >= k; break;
            case BPF_JSET: cond = (A & k) != 0; break;
            default: fail(); return 0;
            }
            assert_true(pc + 1 + f->jt < n && pc + 1 + f->jf < n);
            pc += cond ? f->jt : f->jf;
            break;
        }
        case BPF_RET:
            return BPF_RVAL(f->code) == BPF_A ? A : k;
        case BPF_MISC:
            if (BPF_MISCOP(f->code) == BPF_TAX)
                X = A;
            else
                A = X;
            break;
        default:
            fail_msg("unexpected instruction class 0x%x at %zu", f->code, pc);
        }
    }
    fail_msg("program fell off its end");
    return 0;
}

static int matches(const char *expr, const uint8_t *pkt, size_t len)
{
    nk_raw_filter f;
    int rc = nk_raw_filter_compile(expr, &f);
    if (rc != 0)
        fail_msg("'%s' did not compile: %d %s", expr, rc, f.err_what ? f.err_what : "");
    assert_true(f.len <= BPF_MAXINSNS);
    uint32_t r = bpf_run(f.insns, f.len, pkt, len);
    nk_raw_filter_free(&f);
    assert_true(r == 0 || r == NK_RAW_SNAPLEN);
    return r != 0;
}

struct fcase {
    const char *expr;
    int tcp4, udp4, tcp6, udp6, icmp4, icmp6, arp;
    const char *why;
};

/* The frames: tcp4 10.0.0.1:40000 > 10.0.0.2:80; udp4 10.0.0.1:53 > 10.0.0.2:5353 (with 8
 * bytes of IP options, so the port check must use the IHL); tcp6 2001:db8::1:40000 >
 * 2001:db8::2:80; udp6 2001:db8::1:7 > 2001:db8::2:9; icmp4 echo request; icmp6 echo reply;
 * an ARP frame. */
static const struct fcase cases[] = {
    {"", 1, 1, 1, 1, 1, 1, 1, "empty: everything"},
    {"tcp", 1, 0, 1, 0, 0, 0, 0, "both families"},
    {"udp", 0, 1, 0, 1, 0, 0, 0, "both families"},
    {"icmp", 0, 0, 0, 0, 1, 0, 0, "IPv4 only"},
    {"icmp6", 0, 0, 0, 0, 0, 1, 0, "IPv6 only"},
    {"ip", 1, 1, 0, 0, 1, 0, 0, "ethertype"},
    {"ip6", 0, 0, 1, 1, 0, 1, 0, "ethertype"},
    {"arp", 0, 0, 0, 0, 0, 0, 1, "ethertype"},
    {"port 80", 1, 0, 1, 0, 0, 0, 0, "either direction"},
    {"port 5353", 0, 1, 0, 0, 0, 0, 0, "IHL with options"},
    {"src port 53", 0, 1, 0, 0, 0, 0, 0, "source"},
    {"dst port 53", 0, 0, 0, 0, 0, 0, 0, "53 is the source"},
    {"dst port 9", 0, 0, 0, 1, 0, 0, 0, "IPv6 destination"},
    {"tcp port 80", 1, 0, 1, 0, 0, 0, 0, "qualified"},
    {"udp port 80", 0, 0, 0, 0, 0, 0, 0, "wrong protocol"},
    {"tcp dst port 80", 1, 0, 1, 0, 0, 0, 0, "qualified with direction"},
    {"tcp src port 80", 0, 0, 0, 0, 0, 0, 0, "80 is the destination"},
    {"host 10.0.0.2", 1, 1, 0, 0, 1, 0, 0, "either address"},
    {"src host 10.0.0.2", 0, 0, 0, 0, 0, 0, 0, "10.0.0.2 is the destination"},
    {"dst host 10.0.0.2", 1, 1, 0, 0, 1, 0, 0, "destination"},
    {"host 2001:db8::2", 0, 0, 1, 1, 0, 1, 0, "IPv6 either"},
    {"src host 2001:db8::1", 0, 0, 1, 1, 0, 1, 0, "IPv6 source"},
    {"dst host 2001:db8::1", 0, 0, 0, 0, 0, 0, 0, "IPv6: it is the source"},
    {"host 2001:db8::3", 0, 0, 0, 0, 0, 0, 0, "IPv6: no such host"},
    {"not tcp", 0, 1, 0, 1, 1, 1, 1, "negation keeps other families"},
    {"tcp or udp", 1, 1, 1, 1, 0, 0, 0, "or"},
    {"tcp and ip6", 0, 0, 1, 0, 0, 0, 0, "and"},
    {"not tcp and not udp", 0, 0, 0, 0, 1, 1, 1, "not binds tighter than and"},
    {"icmp or tcp and ip6", 0, 0, 1, 0, 1, 0, 0, "and binds tighter than or"},
    {"(icmp or tcp) and ip", 1, 0, 0, 0, 1, 0, 0, "parentheses"},
    {"not (port 80 or port 9)", 0, 1, 0, 0, 1, 1, 1, "not of a group"},
    {"! tcp && ! udp || arp", 0, 0, 0, 0, 1, 1, 1, "symbol forms"},
    {"((((tcp))))", 1, 0, 1, 0, 0, 0, 0, "nesting"},
};

static void test_table(void **state)
{
    (void)state;
    uint8_t fr[7][128];
    size_t len[7];
    len[0] = frame_tcp4(fr[0], 40000, 80, NK_TCP_SYN);
    len[1] = frame_udp4(fr[1], 53, 5353, 8);
    len[2] = frame_tcp6(fr[2], 40000, 80, NK_TCP_SYN);
    len[3] = frame_udp6(fr[3], 7, 9);
    len[4] = frame_icmp4(fr[4]);
    len[5] = frame_icmp6(fr[5]);
    len[6] = put_eth(fr[6], 0x0806) + 28;
    memset(fr[6] + 14, 0, 28);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct fcase *c = &cases[i];
        int want[7] = {c->tcp4, c->udp4, c->tcp6, c->udp6, c->icmp4, c->icmp6, c->arp};
        for (int j = 0; j < 7; j++) {
            int got = matches(c->expr, fr[j], len[j]);
            if (got != want[j])
                fail_msg("'%s' (%s) on frame %d: got %d, want %d", c->expr, c->why, j, got,
                         want[j]);
        }
    }
}

static void test_fragments(void **state)
{
    (void)state;
    /* A later IPv4 fragment has no ports: "port" must not read payload bytes as ports. */
    uint8_t f[128];
    size_t n = frame_udp4(f, 53, 5353, 0);
    assert_true(matches("port 53", f, n));
    f[14 + 7] = 0x01; /* offset 8 bytes */
    assert_false(matches("port 53", f, n));
    assert_true(matches("udp", f, n));
    /* Truncated frames are rejected by the kernel's rules, not read past. */
    n = frame_tcp4(f, 40000, 80, 0);
    assert_false(matches("port 80", f, 14 + 20 + 2));
}

static void test_long_programs(void **state)
{
    (void)state;
    /* Jumps past 255 instructions go through the 32-bit `ja` trampolines. */
    char expr[8192] = "";
    size_t used = 0;
    for (int i = 0; i < 60; i++)
        used += (size_t)snprintf(expr + used, sizeof expr - used, "%sport %d", i ? " or " : "",
                                 1000 + i);
    used += (size_t)snprintf(expr + used, sizeof expr - used, " or port 80");
    uint8_t f[128];
    size_t n = frame_tcp4(f, 40000, 80, 0);
    assert_true(matches(expr, f, n));
    n = frame_tcp6(f, 40000, 1059, 0);
    assert_true(matches(expr, f, n));
    n = frame_tcp6(f, 40000, 81, 0);
    assert_false(matches(expr, f, n));
    /* Too long for BPF_MAXINSNS: refused with E2BIG. */
    char *big = malloc(200000);
    assert_non_null(big);
    used = 0;
    for (int i = 0; i < 400; i++)
        used += (size_t)snprintf(big + used, 200000 - used, "%shost 2001:db8::%x", i ? " or " : "",
                                 i + 1);
    nk_raw_filter fl;
    assert_int_equal(nk_raw_filter_compile(big, &fl), -E2BIG);
    assert_non_null(fl.err_what);
    free(big);
}

struct ecase {
    const char *expr;
    size_t pos;
    const char *why;
};

static void test_errors(void **state)
{
    (void)state;
    static const struct ecase bad[] = {
        {"port", 4, "missing number"},
        {"port 65536", 5, "out of range"},
        {"port 8o", 5, "not a number"},
        {"host foo.example", 5, "names are not resolved"},
        {"tcp and", 7, "ends too early"},
        {"(tcp", 4, "missing ')'"},
        {"tcp)", 3, "unbalanced ')'"},
        {"tcp udp", 4, "juxtaposition"},
        {"src tcp", 4, "src needs port or host"},
        {"banana", 0, "unknown word"},
        {"not", 3, "not needs an operand"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        nk_raw_filter f;
        int rc = nk_raw_filter_compile(bad[i].expr, &f);
        if (rc != -EINVAL || f.err_pos != bad[i].pos || !f.err_what)
            fail_msg("'%s' (%s): rc %d pos %zu", bad[i].expr, bad[i].why, rc, f.err_pos);
        assert_null(f.insns);
    }
    char deep[1024];
    memset(deep, '(', 300);
    strcpy(deep + 300, "tcp");
    nk_raw_filter f;
    assert_int_equal(nk_raw_filter_compile(deep, &f), -E2BIG);
    assert_int_equal(nk_raw_filter_compile(NULL, &f), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_fragments),
        cmocka_unit_test(test_long_programs),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
