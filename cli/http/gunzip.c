/* Streaming gzip decoding of a response body: bytes in as they arrive, decoded bytes out in
 * pieces of a fixed buffer, so memory stays constant whatever the body's size or ratio. */
#include "http/gunzip.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#define GUNZIP_OUT 65536
#define GUNZIP_WINDOW (15 + 16) /* the largest window, gzip header and trailer only */

int hc_gunzip_init(hc_gunzip *g)
{
    memset(g, 0, sizeof *g);
    return inflateInit2(&g->z, GUNZIP_WINDOW) == Z_OK ? 0 : -ENOMEM;
}

int hc_gunzip_feed(hc_gunzip *g, const char *p, size_t n, hc_gunzip_emit emit, void *arg)
{
    unsigned char out[GUNZIP_OUT];
    while (n > 0) {
        if (g->ended) {
            /* Another member follows the one that ended. */
            if (inflateReset(&g->z) != Z_OK)
                return -EBADMSG;
            g->ended = 0;
        }
        /* z_stream counts in uInt: feed at most that much at a time. */
        uInt step = n > (size_t)UINT_MAX ? UINT_MAX : (uInt)n;
        g->z.next_in = (const Bytef *)p;
        g->z.avail_in = step;
        int zr;
        do {
            g->z.next_out = out;
            g->z.avail_out = sizeof out;
            zr = inflate(&g->z, Z_NO_FLUSH);
            if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
                return -EBADMSG;
            size_t got = sizeof out - g->z.avail_out;
            if (got > 0) {
                int e = emit(arg, (const char *)out, got);
                if (e < 0)
                    return e;
            }
            if (zr == Z_BUF_ERROR && got == 0)
                break; /* needs more input */
        } while (zr != Z_STREAM_END && (g->z.avail_in > 0 || g->z.avail_out == 0));
        size_t used = step - g->z.avail_in;
        p += used;
        n -= used;
        if (zr == Z_STREAM_END)
            g->ended = 1;
        else if (used == 0)
            return -EBADMSG; /* no progress on input zlib was given: not a gzip stream */
    }
    return 0;
}

int hc_gunzip_finish(const hc_gunzip *g)
{
    return g->ended ? 0 : -EBADMSG;
}

void hc_gunzip_free(hc_gunzip *g)
{
    inflateEnd(&g->z);
}
