/* Internals shared by the files of src/http (not installed, not part of the API).
 *
 * The character classes and the framing rules are defined once (header.c) and used by the
 * request parser, the response parser and the chunked decoder: two copies of "what is a
 * token" would be two chances to disagree with a proxy about where a message ends.
 */
#ifndef NETKIT_SRC_HTTP_INTERNAL_H
#define NETKIT_SRC_HTTP_INTERNAL_H

#include <stddef.h>

#include "netkit/http.h"

/* tchar (RFC 9110 section 5.6.2): 1 for the bytes a token may contain. */
extern const unsigned char nk__http_tchar[256];
/* field-vchar / SP / HTAB / obs-text (RFC 9110 section 5.5): 1 for the bytes a field value
 * may contain. */
extern const unsigned char nk__http_fchar[256];

/* ASCII case-insensitive equality of a[0..alen) and b[0..blen) / the string b. */
int nk__http_ieq_n(const char *a, size_t alen, const char *b, size_t blen);
int nk__http_ieq(const char *a, size_t alen, const char *b);

/* Split the field line at buf[*pos] (field-line = field-name ":" OWS field-value OWS, RFC
 * 9112 section 5), ending in LF or CRLF, in a head whose end the caller's scanner has found.
 * Returns 1 with the name and the trimmed value in *h and *pos past the line's LF, 0 at the
 * empty line that ends the head, -1 for a malformed line (no name, a non-token byte or
 * whitespace before the colon, a byte no field value may hold). */
int nk__http_field_line(const char *buf, size_t *pos, nk_http_header *h);

/* Walk a #list (RFC 9110 section 5.6.1): elements separated by commas with optional
 * whitespace; empty elements are skipped, as the RFC asks recipients to. Returns 1 and the
 * next element in *el (trimmed), or 0 at the end. A comma inside a quoted-string is not told
 * apart: no field this module splits carries one where it matters. */
int nk__http_list_next(const char **pp, const char *end, nk_str *el);

/* The next transfer-coding of a Transfer-Encoding value (RFC 9112 section 6.1: a #list of
 * transfer-coding = token *( OWS ";" OWS transfer-parameter )): 1 with its name in *coding
 * and what follows the name in the element in *rest (empty for a bare coding), 0 at the
 * end, -1 for an element that does not begin with a token. The request and the response
 * parsers judge *rest each by their own rule. */
int nk__http_te_next(const char **pp, const char *end, nk_str *coding, nk_str *rest);

/* host [ ":" port ] as a Host field or an authority-form target may carry it; need_port for
 * CONNECT's authority-form. 1 when well formed, 0 otherwise. */
int nk__http_authority_ok(const char *p, size_t len, int need_port);

/* Derive a parsed request's framing and routing facts (Host, Content-Length, chunked,
 * keep-alive, Expect) from its fields; on refusal returns a negative errno and sets *status. */
int nk__http_derive(nk_http_request *req, int host_in_target, int *status);

#endif
