/* libFuzzer target for the chunked decoder (src/http/chunked.c).
 *
 * The first two bytes choose the body limit and a cut point; the rest is the body. Fed whole,
 * cut in two at that point, and byte by byte, the decoder must give the same decoded bytes,
 * the same result and (when complete) the same number of bytes used. Each piece is an
 * exact-size allocation so ASan catches reads past it.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
 *   fuzz/fuzz_chunked.c src/http/parse.c src/http/header.c src/http/chunked.c src/http/status.c
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netkit/http.h"

struct result {
    int rc;
    size_t used;
    uint8_t *out;
    size_t olen;
};

/* Feed in[0..len) in pieces: [0..cut), then pieces of step bytes (0: the rest at once). */
static void decode(const uint8_t *in, size_t len, uint64_t max, size_t cut, size_t step,
                   struct result *r)
{
    nk_http_chunked c;
    nk_http_chunked_init(&c, max);
    size_t off = 0;
    r->rc = 0;
    r->olen = 0;
    r->out = malloc(len + 1);
    if (!r->out)
        abort();
    while (off < len || off == 0) {
        size_t end = off < cut ? cut : (step ? off + step : len);
        if (end > len)
            end = len;
        size_t n = end - off;
        char *piece = malloc(n ? n : 1);
        if (!piece)
            abort();
        memcpy(piece, in + off, n);
        size_t pos = 0;
        for (;;) {
            size_t consumed, dlen;
            const char *data;
            r->rc = nk_http_chunked_step(&c, piece + pos, n - pos, &consumed, &data, &dlen);
            if (consumed > n - pos)
                abort();
            if (r->rc == 1) {
                if (dlen == 0 || data < piece + pos || data + dlen > piece + n)
                    abort();
                memcpy(r->out + r->olen, data, dlen);
                r->olen += dlen;
            } else if (dlen != 0) {
                abort();
            }
            pos += consumed;
            if (r->rc != 1)
                break;
        }
        free(piece);
        off += pos;
        if (r->rc != 0)
            break;
        if (pos != n || c.total > max)
            abort();
        if (end == len)
            break;
    }
    if (r->rc != 0 && r->rc != 2 && r->rc != -EBADMSG && r->rc != -EFBIG)
        abort();
    if (r->olen > max)
        abort();
    r->used = off;
}

static void same(const struct result *a, const struct result *b)
{
    if (a->rc != b->rc || a->olen != b->olen || memcmp(a->out, b->out, a->olen) != 0)
        abort();
    if (a->rc == 2 && a->used != b->used)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const uint64_t maxes[] = {0, 1, 10, 100, 4096, UINT64_MAX - 1, UINT64_MAX, 65536};
    uint64_t max = maxes[data[0] & 7];
    const uint8_t *in = data + 2;
    size_t len = size - 2;
    size_t cut = len ? data[1] % (len + 1) : 0;

    struct result whole, split, bytes;
    decode(in, len, max, 0, 0, &whole);
    decode(in, len, max, cut, 0, &split);
    decode(in, len, max, 0, 1, &bytes);
    same(&whole, &split);
    same(&whole, &bytes);
    free(whole.out);
    free(split.out);
    free(bytes.out);
    return 0;
}
