/* Decoding a gzip response body as it arrives (`http get --compressed`), with zlib. */
#ifndef NETKIT_HTTP_GUNZIP_H
#define NETKIT_HTTP_GUNZIP_H

#include <stddef.h>
#define ZLIB_CONST /* next_in points at const bytes: the body is never written to */
#include <zlib.h>

typedef struct hc_gunzip {
    z_stream z;
    int ended; /* the last member's trailer (CRC-32 and length) was checked */
} hc_gunzip;

/* Receives decoded bytes; returns 0 or a negative error that stops the decoding. */
typedef int (*hc_gunzip_emit)(void *arg, const char *p, size_t n);

/* 0, or -ENOMEM. */
int hc_gunzip_init(hc_gunzip *g);
/* Decode n more bytes of the body, passing what comes out to emit. Several gzip members one
 * after the other are one body (RFC 1952 section 2.2). Returns 0, emit's error, or -EBADMSG for
 * data that is not gzip or fails its checks. */
int hc_gunzip_feed(hc_gunzip *g, const char *p, size_t n, hc_gunzip_emit emit, void *arg);
/* At the end of the body: 0 when the stream ended where it should, else -EBADMSG (cut short). */
int hc_gunzip_finish(const hc_gunzip *g);
void hc_gunzip_free(hc_gunzip *g);

#endif
