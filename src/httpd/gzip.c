/* --gzip: compress a response body on the fly, streamed.
 *
 * The length of the compressed body is not known in advance, so it is sent with the chunked
 * transfer coding (RFC 9112 section 7.1) and the Content-Encoding: gzip (RFC 9110 section
 * 8.4.1.3). Memory stays bounded whatever the file size: the file is read IN_CHUNK bytes at a
 * time with pread (the open-file cache shares the descriptor, so no file position is used),
 * deflated into an OUT_CHUNK buffer, and the next piece is produced only when the socket has
 * taken the previous one (nk__respond_flush calls nk__gz_fill when c->x->out runs dry). So a slow
 * client costs one piece of output, not the whole compressed file.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* next_in becomes a pointer to const, so deflate can read the cached body in place without
 * casting its const away. */
#define ZLIB_CONST
#include <zlib.h>

#define IN_CHUNK 32768
#define OUT_CHUNK 32768

typedef struct nk__gz {
    z_stream zs;
    int fd;
    const char *mem;      /* small files: the cached body, read in place */
    uint64_t size, pos;   /* input: total and consumed so far */
    int done;             /* deflate returned Z_STREAM_END; the last chunk is out */
    unsigned char in[IN_CHUNK];
    unsigned char out[OUT_CHUNK];
} nk__gz;

int nk__gz_start(nk__conn *c, int fd, const char *mem, uint64_t size)
{
    nk__gz *g = malloc(sizeof *g);
    if (!g)
        return -ENOMEM;
    memset(&g->zs, 0, sizeof g->zs);
    int level = c->srv->cfg.gzip_level ? c->srv->cfg.gzip_level : 6;
    /* windowBits 15 + 16: a gzip wrapper (RFC 1952) around the deflate stream. */
    if (deflateInit2(&g->zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(g);
        return -ENOMEM;
    }
    g->fd = fd;
    g->mem = mem;
    g->size = size;
    g->pos = 0;
    g->done = 0;
    c->x->gz = g;
    c->srv->gz_streams++;
    return 0;
}

void nk__gz_free(nk__conn *c)
{
    nk__gz *g = c->x->gz;
    if (!g)
        return;
    deflateEnd(&g->zs);
    free(g);
    c->x->gz = NULL;
    c->srv->gz_streams--;
}

/* Give deflate more input when it has none. Returns 0, or -EIO when the file shrank. */
static int refill_input(nk__gz *g)
{
    if (g->zs.avail_in || g->pos >= g->size)
        return 0;
    size_t want = g->size - g->pos < IN_CHUNK ? (size_t)(g->size - g->pos) : IN_CHUNK;
    if (g->mem) {
        g->zs.next_in = (const unsigned char *)(g->mem + g->pos);
        g->zs.avail_in = (uInt)want;
        g->pos += want;
        return 0;
    }
    ssize_t n;
    do
        n = pread(g->fd, g->in, want, (off_t)g->pos);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -EIO; /* the file shrank: the stream cannot be finished honestly */
    g->zs.next_in = g->in;
    g->zs.avail_in = (uInt)n;
    g->pos += (uint64_t)n;
    return 0;
}

int nk__gz_fill(nk__conn *c)
{
    nk__gz *g = c->x->gz;
    if (!g)
        return 0;
    if (g->done) {
        nk__gz_free(c);
        return 0;
    }
    g->zs.next_out = g->out;
    g->zs.avail_out = OUT_CHUNK;
    /* Deflate until a piece of output is ready or the stream ends. deflate keeps up to its
     * window of input without output, so this may read several input chunks. */
    while (g->zs.avail_out == OUT_CHUNK || (g->zs.avail_out && g->zs.avail_in)) {
        int err = refill_input(g);
        if (err < 0)
            return err;
        int flush = g->pos >= g->size && g->zs.avail_in == 0 ? Z_FINISH : Z_NO_FLUSH;
        int zr = deflate(&g->zs, flush);
        if (zr == Z_STREAM_END) {
            g->done = 1;
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return -EIO;
        if (flush == Z_FINISH && g->zs.avail_out == 0)
            break; /* more to come from Z_FINISH on the next call */
        if (flush == Z_NO_FLUSH && g->zs.avail_in == 0 && g->zs.avail_out != OUT_CHUNK)
            break; /* some output, input used up: send it rather than read more */
    }
    size_t produced = OUT_CHUNK - g->zs.avail_out;
    size_t before = nk_buf_len(&c->x->out);
    char hdr[16];
    int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", produced);
    if (produced && (nk_buf_append(&c->x->out, hdr, (size_t)hl) < 0 ||
                     nk_buf_append(&c->x->out, g->out, produced) < 0 ||
                     nk_buf_append(&c->x->out, "\r\n", 2) < 0))
        return -ENOMEM;
    /* RFC 9112 section 7.1: the last chunk has size 0; no trailer fields follow. */
    if (g->done && nk_buf_append(&c->x->out, "0\r\n\r\n", 5) < 0)
        return -ENOMEM;
    c->x->seg.mem += nk_buf_len(&c->x->out) - before;
    return 1;
}

/* A body made in memory (a directory listing) compressed whole: it is already all there, so
 * streaming it would only add chunk framing; the result has a Content-Length. */
int nk__gz_whole(const nk_httpd *srv, const char *in, size_t len, nk_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int level = srv->cfg.gzip_level ? srv->cfg.gzip_level : 6;
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    uLong bound = deflateBound(&zs, (uLong)len) + 32;
    int err = nk_buf_reserve(out, (size_t)bound);
    if (err == 0) {
        zs.next_in = (const unsigned char *)in;
        zs.avail_in = (uInt)len;
        zs.next_out = (unsigned char *)nk_buf_wptr(out);
        zs.avail_out = (uInt)nk_buf_space(out);
        err = deflate(&zs, Z_FINISH) == Z_STREAM_END ? 0 : -EIO;
        if (err == 0)
            out->wpos += zs.total_out;
    }
    deflateEnd(&zs);
    return err;
}
