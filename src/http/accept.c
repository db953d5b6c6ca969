/* Proactive content negotiation (RFC 9110 section 12.5): how much a request wants a given
 * media type, content coding, charset or language, as a q-value from 0 to 1000.
 *
 *   Accept          = #( media-range [ weight ] )                    (section 12.5.1)
 *   media-range     = ( "*" "/" "*" / ( type "/" "*" ) / ( type "/" subtype ) ) parameters
 *   Accept-Encoding = #( codings [ weight ] )                        (section 12.5.3)
 *   codings         = content-coding / "identity" / "*"
 *   weight          = OWS ";" OWS "q=" qvalue                        (section 12.4.2)
 *   qvalue          = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
 *
 * The most specific element that matches decides ("text/html;q=0, text/ *" refuses HTML and
 * takes every other text type), so a q of 0 is a refusal, never "listed, hence accepted".
 * Every line of the field counts (section 5.3). An element that breaks the grammar (a bad
 * qvalue, a stray byte) is skipped rather than guessed at.
 */
#include <errno.h>
#include <string.h>

#include "netkit/http.h"
#include "http_internal.h"

static int ieq(nk_str a, const char *b) { return nk__http_ieq(a.p, a.len, b); }

static int ows(char c) { return c == ' ' || c == '\t'; }

/* One list element: its name ("text/html", "gzip"), the parameters before the weight (as
 * written, "level=1"), and the weight. */
typedef struct elem {
    nk_str name;
    nk_str params;
    int q;
} elem;

/* qvalue, all of v: 0..1000, or -1 when it breaks the grammar. */
static int qvalue(const char *v, size_t n)
{
    if (n == 0 || (v[0] != '0' && v[0] != '1'))
        return -1;
    int q = v[0] == '1' ? 1000 : 0;
    if (n == 1)
        return q;
    if (v[1] != '.' || n > 5)
        return -1;
    int scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (v[i] < '0' || v[i] > '9' || (q == 1000 && v[i] != '0'))
            return -1;
        q += (v[i] - '0') * scale;
    }
    return q;
}

/* Parse one element of a #list; 0 when it breaks the grammar. name_slash: the name is
 * type "/" subtype (Accept) rather than a token. */
static int parse_elem(nk_str el, int name_slash, elem *e)
{
    const char *p = el.p, *end = el.p + el.len;
    while (p < end && (nk__http_tchar[(unsigned char)*p] || (name_slash && *p == '/')))
        p++;
    e->name.p = el.p;
    e->name.len = (size_t)(p - el.p);
    e->params.p = NULL;
    e->params.len = 0;
    e->q = 1000;
    if (e->name.len == 0)
        return 0;
    if (name_slash) {
        const char *slash = memchr(e->name.p, '/', e->name.len);
        if (!slash || slash == e->name.p || slash + 1 == p || memchr(slash + 1, '/', (size_t)(p - slash - 1)))
            return 0;
    }
    const char *params_start = NULL, *params_end = NULL;
    for (;;) {
        while (p < end && ows(*p))
            p++;
        if (p == end)
            break;
        if (*p != ';')
            return 0;
        const char *semi = p++;
        while (p < end && ows(*p))
            p++;
        if (p == end)
            break; /* parameters = *( OWS ";" OWS [ parameter ] ): a trailing ";" is fine */
        const char *pn = p;
        while (p < end && nk__http_tchar[(unsigned char)*p])
            p++;
        if (p == pn || p == end || *p != '=')
            return 0;
        nk_str pname = {pn, (size_t)(p - pn)};
        const char *pv = ++p;
        if (p < end && *p == '"') {
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\' && p + 1 < end)
                    p++;
            if (p == end)
                return 0;
            p++;
        } else {
            while (p < end && nk__http_tchar[(unsigned char)*p])
                p++;
            if (p == pv)
                return 0;
        }
        if (ieq(pname, "q")) {
            /* The weight ends the media type's parameters; what follows it is ignored. */
            e->q = qvalue(pv, (size_t)(p - pv));
            if (e->q < 0)
                return 0;
            break;
        }
        if (!params_start)
            params_start = semi + 1;
        params_end = p;
    }
    if (params_start) {
        e->params.p = params_start;
        e->params.len = (size_t)(params_end - params_start);
    }
    return 1;
}

/* Parameter lists equal but for whitespace around ";" and the case of names and tokens
 * (a simplification: only the names are case-insensitive by the RFC, but no common value
 * relies on case). */
static int params_equal(nk_str a, nk_str b)
{
    size_t i = 0, j = 0;
    for (;;) {
        while (i < a.len && ows(a.p[i]))
            i++;
        while (j < b.len && ows(b.p[j]))
            j++;
        if (i == a.len || j == b.len)
            return i == a.len && j == b.len;
        if (!nk__http_ieq_n(a.p + i, 1, b.p + j, 1))
            return 0;
        i++;
        j++;
    }
}

enum kind { MEDIA, CODING, LANGUAGE, TOKEN };

/* How specifically range names value: 0 not at all, higher wins. */
static int media_match(const elem *r, const elem *v)
{
    const char *rs = memchr(r->name.p, '/', r->name.len);
    const char *vs = memchr(v->name.p, '/', v->name.len);
    nk_str rtype = {r->name.p, (size_t)(rs - r->name.p)}, rsub = {rs + 1, (size_t)(r->name.p + r->name.len - rs - 1)};
    nk_str vtype = {v->name.p, (size_t)(vs - v->name.p)}, vsub = {vs + 1, (size_t)(v->name.p + v->name.len - vs - 1)};
    if (ieq(rtype, "*"))
        return ieq(rsub, "*") && !r->params.p ? 1 : 0; /* "*" "/" "*"; "*" "/" "html" is no range */
    if (!nk__http_ieq_n(rtype.p, rtype.len, vtype.p, vtype.len))
        return 0;
    if (ieq(rsub, "*"))
        return r->params.p ? 0 : 2;
    if (!nk__http_ieq_n(rsub.p, rsub.len, vsub.p, vsub.len))
        return 0;
    if (!r->params.p)
        return 3;
    /* "text/html;level=1" names only that variant. */
    return v->params.p && params_equal(r->params, v->params) ? 4 : 0;
}

/* RFC 9110 section 8.4.1: "x-gzip" and "x-compress" are the same codings as "gzip" and
 * "compress". */
static nk_str canon_coding(nk_str a)
{
    if (ieq(a, "x-gzip") || ieq(a, "x-compress")) {
        a.p += 2;
        a.len -= 2;
    }
    return a;
}

static int coding_eq(nk_str a, nk_str b)
{
    a = canon_coding(a);
    b = canon_coding(b);
    return nk__http_ieq_n(a.p, a.len, b.p, b.len);
}

static int match(enum kind k, const elem *r, const elem *v)
{
    switch (k) {
    case MEDIA:
        return media_match(r, v);
    case CODING:
        return ieq(r->name, "*") ? 1 : coding_eq(r->name, v->name) ? 2 : 0;
    case LANGUAGE:
        /* RFC 4647 section 3.3.1 basic filtering: "en" matches "en" and "en-US". */
        if (ieq(r->name, "*"))
            return 1;
        if (r->name.len <= v->name.len && nk__http_ieq_n(r->name.p, r->name.len, v->name.p, r->name.len) &&
            (r->name.len == v->name.len || v->name.p[r->name.len] == '-'))
            return 1 + (int)r->name.len;
        return 0;
    case TOKEN:
        return ieq(r->name, "*") ? 1 : nk__http_ieq_n(r->name.p, r->name.len, v->name.p, v->name.len) ? 2 : 0;
    }
    return 0;
}

/* Over every line of field: the q of the most specific matching element (the first of
 * equals); -ENOENT when none matches, -ENODATA when the request has no such field. */
static int best(const nk_http_request *req, const char *field, enum kind k, const elem *v,
                int min_spec)
{
    int found = 0, best_spec = 0, best_q = -ENOENT;
    for (size_t i = 0; i < req->nheaders; i++) {
        const nk_http_header *h = &nk_http_fields(req)[i];
        if (!ieq(h->name, field))
            continue;
        found = 1;
        if (!h->value.p)
            continue;
        const char *p = h->value.p, *end = h->value.p + h->value.len;
        nk_str el;
        elem r;
        while (nk__http_list_next(&p, end, &el)) {
            if (!parse_elem(el, k == MEDIA, &r))
                continue;
            int spec = match(k, &r, v);
            if (spec >= min_spec && spec > best_spec) {
                best_spec = spec;
                best_q = r.q;
            }
        }
    }
    return found ? best_q : -ENODATA;
}

static enum kind kind_of(const char *field)
{
    nk_str f = {field, strlen(field)};
    if (ieq(f, "Accept"))
        return MEDIA;
    if (ieq(f, "Accept-Encoding"))
        return CODING;
    if (ieq(f, "Accept-Language"))
        return LANGUAGE;
    return TOKEN;
}

/* value as an element: a media type with its parameters, or a token. */
static int value_elem(enum kind k, const char *value, elem *v)
{
    nk_str s = {value, strlen(value)};
    return parse_elem(s, k == MEDIA, v) && v->q == 1000 && v->name.len > 0;
}

int nk_http_accepts(const nk_http_request *req, const char *field, const char *value)
{
    enum kind k = kind_of(field);
    elem v;
    if (!value_elem(k, value, &v))
        return -EINVAL;
    int q = best(req, field, k, &v, 1);
    /* No such field: anything is acceptable (sections 12.5.1, 12.5.3, 12.5.4). */
    if (q == -ENODATA)
        return 1000;
    if (q >= 0)
        return q;
    /* Section 12.5.3: an unlisted "identity" is acceptable unless "*;q=0" (handled above,
     * as "*" matches it) or "identity;q=0" says otherwise; an empty field asks for no
     * coding at all, which is identity again. */
    if (k == CODING && ieq(v.name, "identity"))
        return 1000;
    return 0;
}

int nk_http_accepts_explicitly(const nk_http_request *req, const char *field, const char *value)
{
    enum kind k = kind_of(field);
    elem v;
    if (!value_elem(k, value, &v))
        return -EINVAL;
    /* Only the elements that name value without a wildcard. */
    int min = k == MEDIA ? 3 : 2;
    if (k == LANGUAGE)
        min = 1 + (int)v.name.len;
    int q = best(req, field, k, &v, min);
    return q >= 0 ? q : -ENOENT;
}
