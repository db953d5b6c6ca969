/* libFuzzer target for nk_http_range_parse.
 *
 * The first 8 bytes of the input choose the representation size (so tiny, empty and huge
 * files are all explored) and one more byte the maximum number of ranges; the rest is the
 * Range field value. Properties: the result is 0, -ERANGE or 1..max; the returned ranges are
 * sorted, disjoint and not adjacent (merged), each within [0, size); an empty representation
 * never yields a range.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t rsize = 0;
    size_t max;
    nk_http_range out[NK_HTTP_MAX_RANGES + 1];

    if (size < 9)
        return 0;
    for (int i = 0; i < 8; i++)
        rsize = rsize << 8 | data[i];
    /* Mostly small sizes, where ranges interact; the top bit of byte 0 keeps huge ones. */
    if (!(data[0] & 0x80))
        rsize %= 4096;
    max = data[8] % (NK_HTTP_MAX_RANGES + 1);
    nk_str v = {(const char *)data + 9, size - 9};

    /* A guard entry after max catches writes past the caller's array. */
    memset(out, 0x5A, sizeof(out));
    int r = nk_http_range_parse(v, rsize, out, max);
    check(r == 0 || r == -ERANGE || (r >= 1 && (size_t)r <= max));
    for (int i = 0; i < r; i++) {
        check(out[i].first <= out[i].last);
        check(out[i].last < rsize);
        if (i > 0)
            check(out[i - 1].last + 1 < out[i].first);
    }
    const unsigned char *guard = (const unsigned char *)&out[max];
    for (size_t i = 0; i < sizeof(out) - max * sizeof(out[0]); i++)
        check(guard[i] == 0x5A);
    return 0;
}
