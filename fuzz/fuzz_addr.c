/* libFuzzer target for the address parser (src/net/addr.c).
 *
 * The input (up to its first NUL) is the text; the first byte's low bit also picks
 * NK_ADDR_WILDCARD6. Properties:
 *   - nk_addr_parse never crashes and fails only with -EINVAL, -ERANGE, -ENAMETOOLONG or -ENODEV,
 *     leaving no half-filled address behind;
 *   - a parsed address formats (nk_addr_format) without truncation, and that text parses
 *     back to an equal address (nk_addr_equal) with the same family, port and length;
 *   - formatting into a buffer one byte too small reports -ENOSPC and still NUL-terminates;
 *   - nk_addr_split agrees with the parser on what is well-formed for HOST:PORT texts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netkit/addr.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int flags = (data[0] & 1) ? NK_ADDR_WILDCARD6 : 0;
    /* An exact-size, NUL-terminated copy so ASan sees any read past the text. */
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';

    nk_addr a;
    int rc = nk_addr_parse(text, flags, &a);
    if (rc < 0) {
        /* -ENODEV: an IPv6 scope naming no interface ("[fe80::1%nope]:80", addr.h) */
        check(rc == -EINVAL || rc == -ERANGE || rc == -ENAMETOOLONG || rc == -ENODEV);
        free(text);
        return 0;
    }
    check(rc == 0);
    check(a.len > 0 && a.len <= sizeof(a.u));
    check(nk_addr_equal(&a, &a));

    char buf[NK_ADDR_STRLEN];
    int n = nk_addr_format(&a, buf, sizeof(buf));
    check(n > 0 && (size_t)n < sizeof(buf) && strlen(buf) == (size_t)n);

    nk_addr b;
    int rc2 = nk_addr_parse(buf, flags, &b);
    check(rc2 == 0);
    check(nk_addr_equal(&a, &b));
    check(nk_addr_family(&a) == nk_addr_family(&b));
    check(nk_addr_port(&a) == nk_addr_port(&b));
    check(a.len == b.len);

    /* Formatting is a fixed point after one round. */
    char buf2[NK_ADDR_STRLEN];
    int n2 = nk_addr_format(&b, buf2, sizeof(buf2));
    check(n2 == n && memcmp(buf, buf2, (size_t)n + 1) == 0);

    /* One byte short: truncated, terminated, reported. */
    char *small = malloc((size_t)n);
    if (!small)
        abort();
    check(nk_addr_format(&a, small, (size_t)n) == -ENOSPC);
    check(strlen(small) == (size_t)n - 1 && memcmp(small, buf, (size_t)n - 1) == 0);
    free(small);

    char host[NK_ADDR_STRLEN];
    check(nk_addr_format_host(&a, host, sizeof(host)) >= 0);

    if (nk_addr_family(&a) != AF_UNIX) {
        char h[1100], p[16];
        check(nk_addr_split(text, h, sizeof(h), p, sizeof(p)) == 0);
        check(nk_addr_port(&a) >= 0 && nk_addr_port(&a) <= 65535);
    }
    free(text);
    return 0;
}
