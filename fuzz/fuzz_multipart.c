/* libFuzzer target for the multipart/form-data parser (src/http/multipart.c).
 *
 * The first byte chooses a cut point; the rest is the body, parsed with a fixed boundary
 * "XyZ". Fed whole, cut in two at that point, and byte by byte, the parser must give the same
 * transcript (part names, the concatenated data of each part, part ends, done) and the same
 * error. Each piece is an exact-size allocation so ASan catches reads past it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netkit/http.h"

struct out {
    uint8_t *p;
    size_t len, cap;
    int rc;
};

static void put(struct out *o, const void *p, size_t n)
{
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2 + 64;
        o->p = realloc(o->p, o->cap);
        if (!o->p)
            abort();
    }
    memcpy(o->p + o->len, p, n);
    o->len += n;
}

static void parse(const uint8_t *in, size_t len, size_t cut, size_t step, struct out *o)
{
    static const char ct[] = "multipart/form-data; boundary=XyZ";
    nk_http_multipart m;
    memset(o, 0, sizeof *o);
    if (nk_http_multipart_init(&m, (nk_str){ct, sizeof ct - 1}) != 0)
        abort();
    size_t off = 0;
    while (off < len) {
        size_t end = off < cut ? cut : (step ? off + step : len);
        if (end > len)
            end = len;
        size_t plen = end - off;
        uint8_t *piece = malloc(plen);
        memcpy(piece, in + off, plen);
        size_t i = 0;
        while (i < plen) {
            size_t used;
            const char *data;
            size_t dlen;
            int ev = nk_http_multipart_step(&m, (const char *)piece + i, plen - i, &used, &data,
                                            &dlen);
            if (used > plen - i)
                abort();
            i += used;
            if (ev < 0) {
                o->rc = ev;
                free(piece);
                return;
            }
            if (ev == NK_HTTP_MP_NEED || ev == NK_HTTP_MP_DONE) {
                if (ev == NK_HTTP_MP_DONE) {
                    o->rc = 1;
                    i = plen;
                }
                if (i < plen && ev == NK_HTTP_MP_NEED)
                    abort(); /* NEED means everything was used */
                break;
            }
            if (ev == NK_HTTP_MP_PART) {
                put(o, "\0P", 2);
                put(o, m.name, strlen(m.name) + 1);
                put(o, m.filename, strlen(m.filename) + 1);
            } else if (ev == NK_HTTP_MP_DATA) {
                if (!dlen)
                    abort(); /* no empty data events */
                put(o, data, dlen);
            } else if (ev == NK_HTTP_MP_PART_END) {
                put(o, "\0E", 2);
            }
        }
        free(piece);
        off = end;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cut = data[0];
    data++;
    size--;
    if (cut > size)
        cut = size;
    struct out a, b, c;
    parse(data, size, 0, 0, &a);
    parse(data, size, cut, 0, &b);
    parse(data, size, 0, 1, &c);
    if (a.rc != b.rc || a.rc != c.rc || a.len != b.len || a.len != c.len ||
        memcmp(a.p, b.p, a.len) != 0 || memcmp(a.p, c.p, a.len) != 0)
        abort();
    free(a.p);
    free(b.p);
    free(c.p);
    return 0;
}
