/* Chunked transfer coding decoder (RFC 9112 section 7.1), resumable at every byte.
 *
 *   chunked-body   = *chunk last-chunk trailer-section CRLF
 *   chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-size     = 1*HEXDIG
 *   last-chunk     = 1*("0") [ chunk-ext ] CRLF
 *   chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   chunk-ext-val  = token / quoted-string
 *
 * Strict on purpose: the body's framing decides where the next request starts, so any byte we
 * read differently from a proxy in front of us is a smuggling vector. Lines end in CRLF only
 * (no bare LF, unlike the head: section 2.2's leniency is a MAY and chunk framing is where
 * "TE.0"-style desyncs live); sizes are bounded; extensions are parsed to the grammar and then
 * ignored ("A recipient MUST ignore unrecognized chunk extensions", section 7.1.1).
 */
#include <errno.h>
#include <stdint.h>

#include "netkit/http.h"
#include "http_internal.h"

/* A chunk-size line with its extensions: nobody needs 4 KiB of extensions, and section 7.1.1
 * says "A server ought to limit the total length of chunk extensions received in a request
 * to an amount reasonable for the services provided". */
#define MAX_SIZE_LINE 4096
/* The trailer section, all fields together (like max_head for the head). */
#define MAX_TRAILER 16384
/* 16 hex digits are 64 bits: any more cannot be represented ("recipients MUST anticipate
 * potentially large hexadecimal numerals and prevent parsing errors due to integer
 * conversion overflows", section 7.1). */
#define MAX_SIZE_DIGITS 16

enum {
    C_SIZE0,      /* expecting the first hex digit of a chunk-size */
    C_SIZE,       /* in the chunk-size */
    C_EXT_BWS,    /* whitespace before ';' */
    C_EXT_NAME0,  /* after ';': BWS, then the extension name */
    C_EXT_NAME,   /* in the name */
    C_EXT_NBWS,   /* whitespace after the name: '=' or ';' must follow */
    C_EXT_VAL0,   /* after '=': BWS, then a token or a quoted-string */
    C_EXT_VTOK,   /* in a token value */
    C_EXT_VQ,     /* in a quoted-string value */
    C_EXT_VQESC,  /* after a backslash in a quoted-string */
    C_EXT_VEND,   /* after the closing quote */
    C_SIZE_LF,    /* CR seen at the end of the size line */
    C_DATA,       /* in chunk-data: remaining bytes left */
    C_DATA_CR,    /* expecting the CR after chunk-data */
    C_DATA_LF,    /* expecting the LF after chunk-data */
    C_TRAILER0,   /* at the start of a trailer line, or of the final empty line */
    C_TR_NAME,    /* in a trailer field name */
    C_TR_VALUE,   /* in a trailer field value */
    C_TR_LF,      /* CR seen at the end of a trailer line */
    C_FINAL_LF,   /* CR seen at the start of a line: the end of the body */
    C_DONE,
    C_ERR_BADMSG,
    C_ERR_FBIG,
};

void nk_http_chunked_init(nk_http_chunked *c, uint64_t max_body)
{
    c->state = C_SIZE0;
    c->remaining = 0;
    c->total = 0;
    c->max = max_body;
    c->line = 0;
    c->trailer = 0;
    c->digits = 0;
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* qdtext / quoted-pair bytes of RFC 9110 section 5.6.4 */
static int qdtext(unsigned char ch) { return nk__http_fchar[ch] && ch != '"' && ch != '\\'; }

/* The size is complete: check it against the body limit before a single data byte is read. */
static int size_done(nk_http_chunked *c)
{
    if (c->remaining > c->max - c->total)
        return -EFBIG;
    return 0;
}

/* After the chunk-size or an extension's value: the line ends, another extension starts, or
 * whitespace comes that must lead to another extension. */
static int after_value(nk_http_chunked *c, unsigned char ch)
{
    if (ch == '\r')
        c->state = C_SIZE_LF;
    else if (ch == ';')
        c->state = C_EXT_NAME0;
    else if (ch == ' ' || ch == '\t')
        c->state = C_EXT_BWS;
    else
        return -EBADMSG;
    return 0;
}

/* One byte of everything but chunk-data. Returns 0 to go on, 2 at the end of the body, or a
 * negative error. */
static int step_byte(nk_http_chunked *c, unsigned char ch)
{
    int v;
    if (c->state <= C_SIZE_LF && ++c->line > MAX_SIZE_LINE)
        return -EBADMSG;
    if (c->state >= C_TRAILER0 && c->state <= C_FINAL_LF && ++c->trailer > MAX_TRAILER)
        return -EBADMSG;

    switch (c->state) {
    case C_SIZE0:
        if ((v = hexval(ch)) < 0)
            return -EBADMSG;
        c->remaining = (uint64_t)v;
        c->digits = 1;
        c->state = C_SIZE;
        return 0;
    case C_SIZE:
        if ((v = hexval(ch)) >= 0) {
            if (++c->digits > MAX_SIZE_DIGITS)
                return -EBADMSG;
            c->remaining = c->remaining << 4 | (uint64_t)v; /* cannot overflow: <= 16 digits */
            return 0;
        }
        if (size_done(c) < 0)
            return -EFBIG;
        return after_value(c, ch);
    case C_EXT_VEND:
        return after_value(c, ch);
    case C_EXT_BWS:
        /* BWS is only allowed before ';': "5 \r\n" is not a chunk-size line */
        if (ch == ';')
            c->state = C_EXT_NAME0;
        else if (ch != ' ' && ch != '\t')
            return -EBADMSG;
        return 0;
    case C_EXT_NAME0:
        if (nk__http_tchar[ch])
            c->state = C_EXT_NAME;
        else if (ch != ' ' && ch != '\t')
            return -EBADMSG;
        return 0;
    case C_EXT_NAME:
        if (nk__http_tchar[ch])
            return 0;
        if (ch == '=')
            c->state = C_EXT_VAL0;
        else if (ch == ' ' || ch == '\t')
            c->state = C_EXT_NBWS;
        else if (ch == ';')
            c->state = C_EXT_NAME0;
        else if (ch == '\r')
            c->state = C_SIZE_LF;
        else
            return -EBADMSG;
        return 0;
    case C_EXT_NBWS:
        if (ch == '=')
            c->state = C_EXT_VAL0;
        else if (ch == ';')
            c->state = C_EXT_NAME0;
        else if (ch != ' ' && ch != '\t')
            return -EBADMSG;
        return 0;
    case C_EXT_VAL0:
        if (nk__http_tchar[ch])
            c->state = C_EXT_VTOK;
        else if (ch == '"')
            c->state = C_EXT_VQ;
        else if (ch != ' ' && ch != '\t')
            return -EBADMSG;
        return 0;
    case C_EXT_VTOK:
        if (nk__http_tchar[ch])
            return 0;
        return after_value(c, ch);
    case C_EXT_VQ:
        if (ch == '"')
            c->state = C_EXT_VEND;
        else if (ch == '\\')
            c->state = C_EXT_VQESC;
        else if (!qdtext(ch))
            return -EBADMSG;
        return 0;
    case C_EXT_VQESC:
        /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
        if (!nk__http_fchar[ch])
            return -EBADMSG;
        c->state = C_EXT_VQ;
        return 0;
    case C_SIZE_LF:
        if (ch != '\n')
            return -EBADMSG;
        c->line = 0;
        c->digits = 0;
        /* last-chunk: the size was zero, the trailer section follows */
        c->state = c->remaining ? C_DATA : C_TRAILER0;
        return 0;
    case C_DATA_CR:
        if (ch != '\r')
            return -EBADMSG;
        c->state = C_DATA_LF;
        return 0;
    case C_DATA_LF:
        if (ch != '\n')
            return -EBADMSG;
        c->state = C_SIZE0;
        return 0;
    case C_TRAILER0:
        /* trailer-section = *( field-line CRLF ); a line starting with SP/HTAB would be an
         * obs-fold, refused as in the head (RFC 9112 section 5.2). */
        if (ch == '\r')
            c->state = C_FINAL_LF;
        else if (nk__http_tchar[ch])
            c->state = C_TR_NAME;
        else
            return -EBADMSG;
        return 0;
    case C_TR_NAME:
        /* no whitespace before the colon (RFC 9112 section 5.1) */
        if (ch == ':')
            c->state = C_TR_VALUE;
        else if (!nk__http_tchar[ch])
            return -EBADMSG;
        return 0;
    case C_TR_VALUE:
        if (ch == '\r')
            c->state = C_TR_LF;
        else if (!nk__http_fchar[ch])
            return -EBADMSG;
        return 0;
    case C_TR_LF:
        if (ch != '\n')
            return -EBADMSG;
        c->state = C_TRAILER0;
        return 0;
    case C_FINAL_LF:
        if (ch != '\n')
            return -EBADMSG;
        c->state = C_DONE;
        return 2;
    default:
        return -EBADMSG;
    }
}

int nk_http_chunked_step(nk_http_chunked *c, const char *in, size_t len, size_t *consumed,
                         const char **data, size_t *dlen)
{
    size_t i = 0;
    *consumed = 0;
    *data = NULL;
    *dlen = 0;
    /* Errors are sticky: a caller that keeps feeding a broken body keeps hearing why. */
    if (c->state == C_ERR_BADMSG)
        return -EBADMSG;
    if (c->state == C_ERR_FBIG)
        return -EFBIG;
    if (c->state == C_DONE)
        return 2;

    while (i < len) {
        if (c->state == C_DATA) {
            size_t n = len - i;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            *data = in + i;
            *dlen = n;
            c->remaining -= n;
            c->total += n;
            if (c->remaining == 0)
                c->state = C_DATA_CR;
            *consumed = i + n;
            return 1;
        }
        int rc = step_byte(c, (unsigned char)in[i]);
        if (rc < 0) {
            c->state = rc == -EFBIG ? C_ERR_FBIG : C_ERR_BADMSG;
            *consumed = i;
            return rc;
        }
        i++;
        if (rc == 2) {
            *consumed = i;
            return 2;
        }
    }
    *consumed = i;
    return 0;
}
