/* libFuzzer target for the URI reference functions (src/http/url.c).
 *
 * Properties checked:
 *   - an accepted reference formats back to exactly its own bytes (parsing loses nothing),
 *     and repairing it with nk_url_escape_invalid changes nothing (it holds no invalid byte);
 *   - resolved against a fixed base, with a buffer of the promised size (the two lengths plus
 *     3), it always resolves; the result parses into the components nk_url_resolve gave, formats
 *     back to itself, and resolving it again changes nothing (no dot segment survives) unless
 *     the reference was empty but for a query or fragment (the base's path is then kept as is);
 *   - used as a base when it is absolute, a few fixed references resolve with the same checks;
 *   - any input, repaired, is only printable ASCII and at most three times as long.
 * ASan and UBSan watch every step for reads or writes outside the buffers.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netkit/http.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static int same(nk_str a, nk_str b)
{
    if (!a.p || !b.p)
        return !a.p && !b.p;
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

static int same_url(const nk_url *a, const nk_url *b)
{
    return same(a->scheme, b->scheme) && same(a->userinfo, b->userinfo) &&
           same(a->host, b->host) && same(a->port, b->port) && same(a->path, b->path) &&
           same(a->query, b->query) && same(a->fragment, b->fragment) &&
           a->ip_literal == b->ip_literal;
}

/* Resolve ref against base into a buffer of exactly the promised size, then check the result. */
static void resolve_checked(const nk_url *base, size_t base_len, const nk_url *ref, size_t ref_len)
{
    size_t size = base_len + ref_len + 3;
    char *buf = malloc(size), *fmt = malloc(size), *again = malloc(size);
    check(buf && fmt && again);
    nk_url res, parsed, res2;
    int n = nk_url_resolve(base, ref, buf, size, &res);
    check(n >= 0 && (size_t)n < size && strlen(buf) == (size_t)n);
    check(res.scheme.p != NULL);
    check(nk_url_parse(buf, (size_t)n, &parsed) == 0 && same_url(&parsed, &res));
    check(nk_url_format(&res, fmt, size) == n && memcmp(fmt, buf, (size_t)n) == 0);
    /* Idempotence: the result is absolute and free of dot segments, unless the reference had
     * no path, scheme or authority: then section 5.2.2 takes the base's path as it is. */
    int m = nk_url_resolve(base, &res, again, size, &res2);
    check(m >= 0);
    if (ref->scheme.p || ref->host.p || ref->path.len > 0)
        check(m == n && memcmp(again, buf, (size_t)n) == 0);
    free(buf);
    free(fmt);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    size_t esize = size * 3 + 1;
    char *esc = malloc(esize);
    check(esc != NULL);
    int e = nk_url_escape_invalid(s, size, esc, esize);
    check(e >= 0 && (size_t)e <= size * 3);
    for (int i = 0; i < e; i++)
        check(esc[i] > 0x20 && esc[i] < 0x7f);

    nk_url u;
    if (nk_url_parse(s, size, &u) == 0) {
        check(e == (int)size && memcmp(esc, s, size) == 0);
        char *fmt = malloc(size + 1);
        check(fmt != NULL);
        check(nk_url_format(&u, fmt, size + 1) == (int)size && memcmp(fmt, s, size) == 0);
        free(fmt);

        static const char base_text[] = "http://a/b/c/d;p?q";
        nk_url base;
        check(nk_url_parse(base_text, sizeof base_text - 1, &base) == 0);
        resolve_checked(&base, sizeof base_text - 1, &u, size);

        if (u.scheme.p) {
            static const char *const refs[] = {"../g", "g?y#s", "//h/x", "", ".", "/./..//z"};
            for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
                nk_url ref;
                check(nk_url_parse(refs[i], strlen(refs[i]), &ref) == 0);
                resolve_checked(&u, size, &ref, strlen(refs[i]));
            }
        }
    }
    free(esc);
    return 0;
}
