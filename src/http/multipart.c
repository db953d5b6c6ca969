/* An incremental multipart/form-data parser (RFC 7578 over RFC 2046 section 5.1.1).
 *
 * The body is a preamble, then parts separated by the delimiter CRLF "--" boundary, the last
 * delimiter followed by "--", then an epilogue:
 *   multipart-body = [preamble CRLF] dash-boundary transport-padding CRLF body-part
 *                    *encapsulation close-delimiter transport-padding [CRLF epilogue]
 * The parser is a state machine over those positions, fed pieces of any size. A delimiter may
 * be cut between two pieces: the bytes that might start one are held back (as a count, since
 * they are a prefix of the delimiter itself) and handed out as data from the delimiter's own
 * copy when the next byte shows they were content. A boundary cannot contain CR, so after a
 * mismatch the only place a delimiter can restart is the mismatching byte itself.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "netkit/http.h"

enum { PREAMBLE, AFTER_DELIM, AFTER_DELIM_LF, CLOSE_DASH, HEADERS, BODY, DONE };

/* RFC 2046 section 5.1.1: bcharsnospace := DIGIT / ALPHA / "'" / "(" / ")" / "+" / "_" / ","
 * / "-" / "." / "/" / ":" / "=" / "?"; a space is allowed but not last. */
static int is_bchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("'()+_,-./:=? ", c) != NULL);
}

static int ieq(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Read one parameter "; name=value" (value a token or quoted-string) from [*pp, end).
 * Copies the value (unescaped) into val. Returns 1 when one was read, 0 at the end, -EBADMSG. */
static int next_param(const char **pp, const char *end, const char **name, size_t *nlen,
                      char *val, size_t valmax, size_t *vlen)
{
    const char *p = skip_ws(*pp, end);
    if (p == end)
        return 0;
    if (*p != ';')
        return -EBADMSG;
    p = skip_ws(p + 1, end);
    *name = p;
    while (p < end && *p != '=' && *p != ';' && *p != ' ' && *p != '\t')
        p++;
    *nlen = (size_t)(p - *name);
    p = skip_ws(p, end);
    size_t n = 0;
    if (p < end && *p == '=') {
        p = skip_ws(p + 1, end);
        if (p < end && *p == '"') {
            p++;
            for (;;) {
                if (p == end)
                    return -EBADMSG;
                char ch = *p++;
                if (ch == '"')
                    break;
                /* A quoted-pair only for '"' and '\\': browsers send Windows paths with bare
                 * backslashes (and encode a quote as %22), so other backslashes stay. */
                if (ch == '\\' && p < end && (*p == '"' || *p == '\\'))
                    ch = *p++;
                if (n + 1 >= valmax)
                    return -EBADMSG;
                val[n++] = ch;
            }
        } else {
            while (p < end && *p != ';' && *p != ' ' && *p != '\t') {
                if (n + 1 >= valmax)
                    return -EBADMSG;
                val[n++] = *p++;
            }
        }
    }
    val[n] = '\0';
    *vlen = n;
    *pp = p;
    return *nlen ? 1 : -EBADMSG;
}

int nk_http_multipart_init(nk_http_multipart *m, nk_str ct)
{
    memset(m, 0, sizeof *m);
    if (!ct.p)
        return -EINVAL;
    const char *p = ct.p, *end = ct.p + ct.len;
    const char *semi = memchr(p, ';', ct.len);
    const char *tend = semi ? semi : end;
    while (tend > p && (tend[-1] == ' ' || tend[-1] == '\t'))
        tend--;
    if (!ieq(p, (size_t)(tend - p), "multipart/form-data") || !semi)
        return -EINVAL;
    p = semi;
    const char *name;
    size_t nlen, vlen;
    char val[NK_HTTP_MULTIPART_BOUNDARY_MAX + 2];
    while (next_param(&p, end, &name, &nlen, val, sizeof val, &vlen) == 1) {
        if (!ieq(name, nlen, "boundary"))
            continue;
        if (vlen == 0 || vlen > NK_HTTP_MULTIPART_BOUNDARY_MAX || val[vlen - 1] == ' ')
            return -EINVAL;
        for (size_t i = 0; i < vlen; i++)
            if (!is_bchar((unsigned char)val[i]))
                return -EINVAL;
        memcpy(m->delim, "\r\n--", 4);
        memcpy(m->delim + 4, val, vlen);
        m->dlen = vlen + 4;
        m->state = PREAMBLE;
        m->matched = 2; /* the body may start with the delimiter, without the CRLF before it */
        return 0;
    }
    return -EINVAL; /* a malformed parameter (-EBADMSG from next_param), or no boundary */
}

static int parse_disposition(nk_http_multipart *m, const char *p, const char *end)
{
    const char *semi = memchr(p, ';', (size_t)(end - p));
    const char *tend = semi ? semi : end;
    while (tend > p && (tend[-1] == ' ' || tend[-1] == '\t'))
        tend--;
    if (!ieq(p, (size_t)(tend - p), "form-data"))
        return 0; /* RFC 7578 section 4.2: form-data is the only disposition; others ignored */
    if (!semi)
        return 0;
    p = semi;
    const char *name;
    size_t nlen, vlen;
    char val[NK_HTTP_MULTIPART_NAME_MAX];
    int r;
    while ((r = next_param(&p, end, &name, &nlen, val, sizeof val, &vlen)) == 1) {
        if (memchr(val, '\0', vlen))
            return -EBADMSG;
        if (ieq(name, nlen, "name")) {
            memcpy(m->name, val, vlen + 1);
        } else if (ieq(name, nlen, "filename")) {
            memcpy(m->filename, val, vlen + 1);
            m->has_filename = 1;
        }
    }
    return r;
}

/* The header section head[0..hlen) ends in CRLF CRLF (or is just CRLF). */
static int parse_head(nk_http_multipart *m)
{
    m->name[0] = m->filename[0] = m->content_type[0] = '\0';
    m->has_filename = 0;
    const char *p = m->head, *end = m->head + m->hlen - 2; /* without the final CRLF */
    while (p < end) {
        const char *eol = p;
        while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n'))
            eol++;
        if (eol + 1 >= end)
            return -EBADMSG;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        /* no obs-fold (a line starting with whitespace), no empty field name, no bare CR/LF */
        if (!colon || colon == p || *p == ' ' || *p == '\t' || memchr(p, '\r', (size_t)(eol - p)) ||
            memchr(p, '\n', (size_t)(eol - p)))
            return -EBADMSG;
        const char *v = skip_ws(colon + 1, eol), *vend = eol;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        if (ieq(p, (size_t)(colon - p), "Content-Disposition")) {
            int r = parse_disposition(m, v, vend);
            if (r < 0)
                return r;
        } else if (ieq(p, (size_t)(colon - p), "Content-Type")) {
            size_t n = (size_t)(vend - v);
            if (n >= sizeof m->content_type)
                n = sizeof m->content_type - 1;
            memcpy(m->content_type, v, n);
            m->content_type[n] = '\0';
        }
        p = eol + 2;
    }
    return 0;
}

int nk_http_multipart_step(nk_http_multipart *m, const char *in, size_t len, size_t *consumed,
                           const char **data, size_t *dlen)
{
    size_t i = 0;
    *data = NULL;
    *dlen = 0;
    *consumed = 0; /* on an error: nothing more is to be parsed anyway */
    while (i < len) {
        unsigned char ch = (unsigned char)in[i];
        switch (m->state) {
        case PREAMBLE:
            /* RFC 2046: the preamble is to be ignored. */
            i++;
            if (ch == (unsigned char)m->delim[m->matched]) {
                if (++m->matched == m->dlen) {
                    m->matched = 0;
                    m->state = AFTER_DELIM;
                }
            } else {
                m->matched = ch == '\r';
            }
            break;
        case AFTER_DELIM:
            i++;
            if (ch == '-')
                m->state = CLOSE_DASH;
            else if (ch == '\r')
                m->state = AFTER_DELIM_LF;
            else if (ch != ' ' && ch != '\t') /* transport-padding */
                return -EBADMSG;
            break;
        case AFTER_DELIM_LF:
            i++;
            if (ch != '\n')
                return -EBADMSG;
            m->state = HEADERS;
            m->hlen = 0;
            break;
        case CLOSE_DASH:
            i++;
            if (ch != '-')
                return -EBADMSG;
            m->state = DONE;
            *consumed = i;
            return NK_HTTP_MP_DONE;
        case HEADERS:
            if (m->hlen >= sizeof m->head)
                return -EMSGSIZE;
            m->head[m->hlen++] = (char)ch;
            i++;
            if (ch == '\n') {
                if (m->hlen < 2 || m->head[m->hlen - 2] != '\r')
                    return -EBADMSG;
                if (m->hlen == 2 || (m->hlen >= 4 && m->head[m->hlen - 3] == '\n')) {
                    int r = parse_head(m);
                    if (r < 0)
                        return r;
                    m->state = BODY;
                    m->matched = 0;
                    *consumed = i;
                    return NK_HTTP_MP_PART;
                }
            }
            break;
        case BODY:
            if (m->matched == 0) {
                const char *cr = memchr(in + i, '\r', len - i);
                size_t run = cr ? (size_t)(cr - (in + i)) : len - i;
                if (run) {
                    *data = in + i;
                    *dlen = run;
                    *consumed = i + run;
                    return NK_HTTP_MP_DATA;
                }
            }
            if (ch == (unsigned char)m->delim[m->matched]) {
                i++;
                if (++m->matched == m->dlen) {
                    m->matched = 0;
                    m->state = AFTER_DELIM;
                    *consumed = i;
                    return NK_HTTP_MP_PART_END;
                }
                break;
            }
            /* What was held back was content after all; the current byte is looked at again
             * with nothing held (it may start a delimiter itself). */
            *data = m->delim;
            *dlen = m->matched;
            m->matched = 0;
            *consumed = i;
            return NK_HTTP_MP_DATA;
        default: /* DONE: RFC 2046: the epilogue is to be ignored */
            *consumed = len;
            return NK_HTTP_MP_DONE;
        }
    }
    *consumed = len;
    return m->state == DONE ? NK_HTTP_MP_DONE : NK_HTTP_MP_NEED;
}
