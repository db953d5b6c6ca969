/* HTTP/1.1 building blocks: request parsing (RFC 9112), and the small pure steps of a static
 * file server (RFC 9110): path decoding and confinement, dates, validators, conditional
 * requests, ranges, content types. None of them touches a socket; the server engine
 * (src/httpd, netkit/httpd.h) sequences them.
 *
 * Parsers work on the caller's buffer and return views (pointer + length) into it: nothing is
 * copied or allocated. Results follow the library's error model; where a failure maps to an
 * HTTP status, the status to answer with is given separately.
 */
#ifndef NETKIT_HTTP_H
#define NETKIT_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>
#include <errno.h>
#include <netkit/api.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

/* A view into someone else's bytes; not NUL-terminated. */
typedef struct nk_str {
    const char *p;
    size_t len;
} nk_str;

/* A method token the parser does not know is NK_HTTP_UNKNOWN, with the token in
 * method_name (methods are case-sensitive: "get" is such a token). */
typedef enum nk_http_method {
    NK_HTTP_UNKNOWN = 0,
    NK_HTTP_GET,
    NK_HTTP_HEAD,
    NK_HTTP_POST,
    NK_HTTP_PUT,
    NK_HTTP_DELETE,
    NK_HTTP_OPTIONS,
    NK_HTTP_TRACE,
    NK_HTTP_PATCH,
    NK_HTTP_CONNECT
} nk_http_method;

typedef struct nk_http_header {
    nk_str name;  /* as sent (case kept) */
    nk_str value; /* leading/trailing whitespace removed */
} nk_http_header;

/* Hard upper bound on header fields per request; the configurable limit is below it. */
#define NK_HTTP_MAX_HEADERS 128

typedef struct nk_http_limits {
    size_t max_request_line; /* longer: 414 (default 8192) */
    size_t max_head;         /* whole head (request line + fields): longer: 431 (default 16384) */
    size_t max_headers;      /* field count: more: 431 (default 100, at most NK_HTTP_MAX_HEADERS) */
} nk_http_limits;

/* Fill lim with the defaults above. */
void nk_http_limits_default(nk_http_limits *lim);

typedef struct nk_http_request {
    nk_http_method method;
    nk_str method_name;   /* as sent */
    nk_str target;        /* request-target as sent */
    nk_str path;          /* path part of the target, still percent-encoded; "*" for OPTIONS * */
    nk_str query;         /* after '?', without it; p == NULL when there is no '?' */
    int version_major;
    int version_minor;
    nk_http_header headers[NK_HTTP_MAX_HEADERS];
    size_t nheaders;

    /* Derived from the fields above (RFC 9112 section 6, RFC 9110 section 7.2): */
    nk_str host;            /* from an absolute-form target, else the Host field */
    int64_t content_length; /* -1 when absent */
    int chunked;            /* Transfer-Encoding: chunked */
    int keep_alive;         /* persistence after this request (version + Connection) */
    int expect_continue;    /* Expect: 100-continue */
    size_t head_len;        /* bytes of the head, through the empty line */
    /* Reported, not refused: what to do is the server's policy (RFC 9110 section 10.1.1
     * lets it answer 417; section 9.1 501 for a method it does not implement). */
    int expect_unknown;     /* Expect names something other than 100-continue (HTTP/1.1) */
    /* The caller's array holding the fields (nk_http_parse_request_fields), or NULL when they
     * are in headers above. Read them through nk_http_fields, which knows which. */
    nk_http_header *fields;
} nk_http_request;

/* The request's fields, nheaders of them, in the order sent. */
static inline const nk_http_header *nk_http_fields(const nk_http_request *req)
{
    return req->fields ? req->fields : req->headers;
}

/* Parse a request head from buf[0..len).
 * Returns the head length (> 0) when complete, -EAGAIN when more bytes are needed, or
 * -EBADMSG when the request must be refused: *status then holds the code to answer with
 * (400, 414, 431, 501 for a transfer coding it cannot decode, 505) and the connection must
 * be closed after that answer. An unknown method or expectation is reported, not refused.
 * Empty lines before the request line are skipped (RFC 9112 section 2.2).
 * prev_len: how many of these bytes an earlier call already saw (0 at first), so that a head
 * arriving in pieces is not rescanned from the start for its end. */
int nk_http_parse_request(const char *buf, size_t len, size_t prev_len, const nk_http_limits *lim,
                          nk_http_request *req, int *status);
/* As nk_http_parse_request, with the fields in the caller's array of cap entries instead of
 * req->headers, so the caller sizes the field count: cap is the limit (lim->max_headers and
 * NK_HTTP_MAX_HEADERS do not apply), and a head with more fields than cap is refused like one
 * over max_headers: -EBADMSG with *status 431. Afterwards req->fields is fields and
 * req->nheaders counts them (nk_http_fields, nk_http_find_header and the other readers of
 * req follow); the array must outlive the use of req. cap 0 takes only heads without fields
 * (fields may then be NULL). -EINVAL (*status 0) for fields NULL with cap > 0. */
int nk_http_parse_request_fields(const char *buf, size_t len, size_t prev_len,
                                 const nk_http_limits *lim, nk_http_request *req,
                                 nk_http_header *fields, size_t cap, int *status);

/* Find a header by name, case-insensitively. Returns the first match or NULL. */
const nk_http_header *nk_http_find_header(const nk_http_request *req, const char *name);

/* True if the comma-separated list in value contains token (case-insensitive). */
int nk_http_list_has(nk_str value, const char *token);

const char *nk_http_method_name(nk_http_method m); /* "GET"; "" for NK_HTTP_UNKNOWN */
const char *nk_http_reason(int status); /* "Not Found"; "" for unknown codes */

/* ---- chunked request bodies (RFC 9112 section 7.1) ---------------------------------------- */
typedef struct nk_http_chunked {
    int state;          /* private */
    uint64_t remaining; /* private: data bytes left in the current chunk */
    uint64_t total;     /* body bytes decoded so far */
    uint64_t max;       /* body limit: over it the decoder fails with -EFBIG (413) */
    size_t line;        /* private: bytes of the current size/extension/trailer line */
    size_t trailer;     /* private: bytes of trailer section seen */
    int digits;         /* private */
} nk_http_chunked;

/* Start decoding a chunked body of at most max_body bytes. */
void nk_http_chunked_init(nk_http_chunked *c, uint64_t max_body);
/* Decode from in[0..len). Sets *consumed to the bytes used. Returns:
 *   1  a piece of body data is at *data, *dlen (inside in)
 *   0  all input used, more is needed
 *   2  the body is complete (last chunk and trailers consumed); bytes after it are not used
 *  <0  -EBADMSG (malformed: answer 400) or -EFBIG (over max: answer 413)
 * Chunk lines must end in CRLF; sizes are hex, bounded, and checked before use. */
int nk_http_chunked_step(nk_http_chunked *c, const char *in, size_t len, size_t *consumed,
                         const char **data, size_t *dlen);

/* ---- multipart/form-data request bodies (RFC 7578, RFC 2046 section 5.1.1) ----------------- */
#define NK_HTTP_MULTIPART_BOUNDARY_MAX 70  /* RFC 2046: 1 to 70 characters */
#define NK_HTTP_MULTIPART_HEAD_MAX 4096    /* bytes of one part's header section */
#define NK_HTTP_MULTIPART_NAME_MAX 256     /* name and filename, NUL included */

typedef struct nk_http_multipart {
    /* The current part, valid from NK_HTTP_MP_PART until the next part begins: */
    char name[NK_HTTP_MULTIPART_NAME_MAX];     /* Content-Disposition name, "" if none */
    char filename[NK_HTTP_MULTIPART_NAME_MAX]; /* filename as sent, "" if none */
    int has_filename;                          /* a filename parameter was present */
    char content_type[128];                    /* the part's Content-Type, "" if none */
    /* private */
    char delim[NK_HTTP_MULTIPART_BOUNDARY_MAX + 4]; /* CRLF "--" boundary */
    size_t dlen, matched;
    int state;
    size_t hlen;
    char head[NK_HTTP_MULTIPART_HEAD_MAX];
} nk_http_multipart;

enum {
    NK_HTTP_MP_NEED = 0,     /* all input used, more is needed */
    NK_HTTP_MP_PART = 1,     /* a part's header section is complete: see the fields above */
    NK_HTTP_MP_DATA = 2,     /* a piece of the current part's content at *data, *dlen */
    NK_HTTP_MP_PART_END = 3, /* the current part's content is complete */
    NK_HTTP_MP_DONE = 4      /* the closing delimiter was seen; what follows is ignored */
};

/* Start a parser for a body of type content_type (the header value, such as
 * "multipart/form-data; boundary=xyz"). -EINVAL when it is not multipart/form-data with a
 * valid boundary parameter. */
int nk_http_multipart_init(nk_http_multipart *m, nk_str content_type);
/* Parse from in[0..len); *consumed gets the bytes used. Returns one of the NK_HTTP_MP_ events
 * (call again with the rest of the input after any event but NEED) or -EBADMSG for a body
 * that is not multipart (no delimiter line, bad header section, missing CRLF), -EMSGSIZE for
 * a part header section over NK_HTTP_MULTIPART_HEAD_MAX. The input may be cut anywhere; data
 * pieces may point into in or into the parser (bytes held back while they might have been
 * the start of a delimiter), valid until the next call. Parts are reported in order, each as
 * PART, DATA..., PART_END. */
int nk_http_multipart_step(nk_http_multipart *m, const char *in, size_t len, size_t *consumed,
                           const char **data, size_t *dlen);

/* ---- responses, for clients (RFC 9112 sections 4 to 6) ------------------------------------- */
/* Limits of a response head: a server answering more is broken or hostile. */
#define NK_HTTP_RESPONSE_MAX_HEAD (64 * 1024)  /* status line + fields + empty line */
#define NK_HTTP_RESPONSE_MAX_HEADERS 100

typedef struct nk_http_response {
    int version_major;
    int version_minor;
    int status;       /* 100 to 599 */
    nk_str reason;    /* reason-phrase, possibly empty */
    nk_http_header headers[NK_HTTP_RESPONSE_MAX_HEADERS];
    size_t nheaders;

    /* Message framing (RFC 9112 section 6.3), for a response to a request other than HEAD
     * (after HEAD there is never a body, whatever the fields say): */
    int no_body;            /* 1xx, 204, 304: the message ends with its head */
    int chunked;            /* Transfer-Encoding ending in chunked */
    int64_t content_length; /* -1 when absent (or when chunked) */
    int until_close;        /* neither: the body is everything until the connection closes */
    int keep_alive;         /* the connection may be reused after this response */
    size_t head_len;        /* bytes of the head, through the empty line */
} nk_http_response;

/* Parse a response head from buf[0..len) (the whole head so far; each call rescans it, which
 * the 64 KiB limit keeps cheap). Returns the head length (> 0) when complete, -EAGAIN when more
 * bytes are needed, or -EBADMSG when the bytes are not a valid HTTP/1.x response head or break
 * the limits above (the connection must then be dropped). A prefix of a head never gives an
 * answer other than -EAGAIN or the whole head's error. status, when not NULL, receives the
 * status code (0 unless the result is > 0). Bare-LF line endings are accepted (RFC 9112
 * section 2.2); obs-folds, bare CRs, invalid or conflicting framing fields are refused. */
int nk_http_parse_response(const char *buf, size_t len, nk_http_response *resp, int *status);

/* Find a response header by name, case-insensitively. Returns the first match or NULL. */
const nk_http_header *nk_http_response_header(const nk_http_response *resp, const char *name);

/* ---- URLs (RFC 3986): url.c ---------------------------------------------------------------- */
/* A URI reference split into its components (section 3), as views into the parsed text. An
 * absent component has p == NULL: section 5.3 tells "undefined" from "empty" ("http://h/?"
 * has an empty query, "http://h/" none). path is always defined, maybe empty. */
typedef struct nk_url {
    nk_str scheme;   /* without ":" */
    nk_str userinfo; /* without "@" */
    nk_str host;     /* defined exactly when there is an authority; an IP-literal without [] */
    nk_str port;     /* digits only, maybe empty ("http://h:/") */
    nk_str path;
    nk_str query;    /* without "?" */
    nk_str fragment; /* without "#" */
    int ip_literal;  /* host was written in brackets (IPv6 or IPvFuture) */
} nk_url;

/* Parse a URI-reference (absolute or relative) from s[0..len). Strict to the grammar of
 * appendix A (-EINVAL otherwise): every byte in the set its component allows, "%" followed by
 * two hex digits, an IPv6 literal that inet_pton accepts. Nothing is decoded or case-folded,
 * so nk_url_format gives back exactly s. */
int nk_url_parse(const char *s, size_t len, nk_url *u);
/* The port as a number: default_port when absent or empty, -ERANGE above 65535. */
int nk_url_port(const nk_url *u, int default_port);
/* Write u back as text (section 5.3) into buf (size counts the NUL). Returns the length, or
 * -ENOSPC (buf then holds ""), or -EINVAL for components that would read back differently. */
int nk_url_format(const nk_url *u, char *buf, size_t size);
/* Resolve ref against base (section 5.2, strict, with remove_dot_segments), write the target
 * into buf and parse it into res (whose views point into buf; buf must not overlap the texts
 * of base and ref). base must have a scheme (-EINVAL). Returns the length or -ENOSPC; a buf of
 * the two texts' lengths plus 3 always suffices. */
int nk_url_resolve(const nk_url *base, const nk_url *ref, char *buf, size_t size, nk_url *res);
/* Percent-encode the bytes no URI may contain (controls, space, non-ASCII, "<>\"^`{|}\\", a
 * "%" not starting an escape), as browsers do with a sloppy Location, before nk_url_parse.
 * Returns the length or -ENOSPC (len * 3 + 1 always suffices). */
int nk_url_escape_invalid(const char *s, size_t len, char *buf, size_t size);

/* ---- content negotiation (RFC 9110 section 12.5): accept.c ---------------------------------- */
/* How much the request wants value by field ("Accept", "Accept-Encoding", "Accept-Language",
 * "Accept-Charset"...), as a q-value from 0 (refused) to 1000: the weight of the most specific
 * element that matches, over every line of the field. Accept takes "type/subtype[;params]" and
 * honours "type/ *" and "* / *" ranges; Accept-Encoding honours "*", x-gzip = gzip, and keeps
 * "identity" acceptable unless refused; Accept-Language matches prefixes ("en" for "en-US").
 * A request without the field accepts anything (1000); a field that lists nothing matching
 * gives 0. -EINVAL when value itself is malformed. */
int nk_http_accepts(const nk_http_request *req, const char *field, const char *value);
/* The q-value of the most specific element naming value itself, without a wildcard
 * ("text/html" or "text/html;level=1", not "text/ *"), or -ENOENT when none does: for
 * decisions that hinge on an explicit ask (a browser navigation lists text/html). */
int nk_http_accepts_explicitly(const nk_http_request *req, const char *field, const char *value);

/* ---- paths (RFC 3986) ------------------------------------------------------------------------ */
/* Percent-decode a request path and normalise it into out (size outlen), the result always
 * starting with "/" and containing no "." or ".." segments, no "//", no NUL, no backslash.
 * Refused with -EINVAL (answer 400): bad percent-encoding, an encoded or raw NUL, an encoded
 * "/" (%2F), a backslash, ".." that would climb above the root, invalid or overlong UTF-8.
 * -ENAMETOOLONG when out is too small (out is NUL-terminated; outlen counts the NUL).
 * Returns the length of out. A trailing "/" is kept
 * (it tells a directory request apart). */
int nk_http_path_normalize(const char *path, size_t len, char *out, size_t outlen);
/* True when any segment of a normalised path starts with "." (a dotfile or dot directory). */
int nk_http_path_has_dotfile(const char *path);
/* The prefix of the temporary files an upload streams its body into before the rename
 * (netkit http serve --upload). Such a file is never listed or served, whatever the options. */
#define NK_HTTP_UPLOAD_TMP_PREFIX ".netkit-upload-"
/* True when any segment of path (normalised, with or without a leading "/") starts with
 * NK_HTTP_UPLOAD_TMP_PREFIX. */
int nk_http_path_has_upload_tmp(const char *path);
/* True when a directory entry name[0..len) can be requested: a link to it (the name
 * percent-encoded by nk_http_url_escape) normalises back to the same name. False for names
 * with control characters, a backslash or invalid UTF-8 (answered 400), "." and "..". */
int nk_http_name_servable(const char *name, size_t len);

/* ---- dates (RFC 9110 section 5.6.7) ----------------------------------------------------------- */
#define NK_HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */
/* Format t as IMF-fixdate into out (at least NK_HTTP_DATE_LEN + 1 bytes). */
void nk_http_date_format(time_t t, char *out);
/* Parse IMF-fixdate, and the obsolete RFC 850 and asctime forms. -EINVAL when malformed. */
int nk_http_date_parse(const char *s, size_t len, time_t *out);

/* ---- validators and conditional requests (RFC 9110 sections 8.8, 13) ------------------------- */
#define NK_HTTP_ETAG_MAX 64 /* worst case: 2 quotes, 16+1+8+1+16 hex/separators, NUL = 45 */
/* Strong ETag from a file's version: "\"<mtime-sec-hex>.<mtime-nsec-hex>-<size-hex>\"" (nginx's
 * "mtime-size" with nanoseconds). No inode number: it would tell clients about the file
 * system and change across a restore or between servers holding the same files. Returns its
 * length, or -ENOSPC when outlen is too small. */
int nk_http_file_etag(char *out, size_t outlen, uint64_t size, int64_t mtime_sec,
                      long mtime_nsec);
/* The same tag (ino is ignored); kept so that older callers build. */
int nk_http_etag(char *out, size_t outlen, uint64_t ino, uint64_t size, int64_t mtime_sec,
                 long mtime_nsec);

typedef struct nk_http_cond_input {
    nk_http_method method;
    nk_str if_match, if_none_match, if_modified_since, if_unmodified_since; /* p NULL: absent */
    const char *etag;  /* the resource's current ETag (with quotes) */
    time_t mtime;      /* the resource's Last-Modified */
} nk_http_cond_input;
/* Evaluate preconditions in the order of RFC 9110 section 13.2.2. Returns 0 to proceed,
 * 304 (Not Modified) or 412 (Precondition Failed). */
int nk_http_cond_evaluate(const nk_http_cond_input *in);
/* If-Range (RFC 9110 section 13.1.5): true when the Range header should be honoured. */
int nk_http_if_range_ok(nk_str if_range, const char *etag, time_t mtime);

/* ---- ranges (RFC 9110 section 14) -------------------------------------------------------------- */
#define NK_HTTP_MAX_RANGES 16
typedef struct nk_http_range {
    uint64_t first, last; /* inclusive byte positions within the representation */
} nk_http_range;
/* Parse a Range value for a representation of size bytes. Returns the number of satisfiable
 * ranges (>= 1) written to out (sorted, overlapping and adjacent ones merged; at most max),
 * 0 when the header must be ignored (not "bytes=", malformed: serve 200 in full), or -ERANGE
 * when none is satisfiable (answer 416 with "Content-Range: bytes * /size"). Too many ranges
 * (more than max after merging) is treated as malformed and ignored. */
int nk_http_range_parse(nk_str value, uint64_t size, nk_http_range *out, size_t max);

/* ---- content types ---------------------------------------------------------------------------- */
typedef struct nk_mime_table nk_mime_table;
/* Load /etc/mime.types (or path) over a built-in table of common types. Never fails for a
 * missing file: the built-in table is used. -ENOMEM only. */
int nk_mime_load(const char *path, nk_mime_table **out);
void nk_mime_free(nk_mime_table *t);
/* Full Content-Type value for a file name, such as "text/html; charset=utf-8" (text types get
 * charset=utf-8); "application/octet-stream" when unknown. The string lives as long as t. */
const char *nk_mime_lookup(const nk_mime_table *t, const char *filename);
/* True for types worth compressing (text/ types, JSON, JS, SVG, XML, ...). */
int nk_mime_compressible(const char *content_type);

/* ---- directory listings ------------------------------------------------------------------------ */
struct nk_buf;
/* Render the listing of the open directory dirfd, shown as url_path (already normalised,
 * ending in "/"), into out: an HTML5 page (names escaped, sizes, modification times, sorted,
 * directories first) or, with json != 0, a JSON array. show_dotfiles: include names starting
 * with ".". Returns 0 or a negative error. */
int nk_http_dirlist(int dirfd, const char *url_path, int json, int show_dotfiles, struct nk_buf *out);
/* The same, with flags: NK_HTTP_DIRLIST_UPLOAD adds an upload form (multipart/form-data POST to
 * url_path) to the HTML page. */
#define NK_HTTP_DIRLIST_UPLOAD 1
/* The order of the entries (directories always first, ties by name): by name in byte order
 * unless SORT_SIZE or SORT_MTIME, ascending unless DESC. The HTML page's column headers link
 * to "?sort=name|size|mtime&order=asc|desc", the current column with the other order. */
#define NK_HTTP_DIRLIST_SORT_SIZE (1 << 1)
#define NK_HTTP_DIRLIST_SORT_MTIME (1 << 2)
#define NK_HTTP_DIRLIST_DESC (1 << 3)
#define NK_HTTP_DIRLIST_SORT_MASK (NK_HTTP_DIRLIST_SORT_SIZE | NK_HTTP_DIRLIST_SORT_MTIME | \
                                   NK_HTTP_DIRLIST_DESC)
/* The HTML page links "?download=tar" and "?download=tar.gz" (whole-directory archives). */
#define NK_HTTP_DIRLIST_ARCHIVES (1 << 4)
/* With NK_HTTP_DIRLIST_UPLOAD: a "new folder" form (a field mkdir=NAME posted to url_path). */
#define NK_HTTP_DIRLIST_MKDIR (1 << 5)
/* nk_http_dirlist with flags (NK_HTTP_DIRLIST_*). */
int nk_http_dirlist_ex(int dirfd, const char *url_path, int json, int show_dotfiles, int flags,
                       struct nk_buf *out);
/* Rows rendered at most by default; past them the HTML page says the list was truncated. */
#define NK_HTTP_DIRLIST_MAX_ROWS 10000
struct stat;
typedef struct nk_http_dirlist_opts {
    int json;          /* a JSON array instead of the HTML page */
    int show_dotfiles; /* list names starting with "." */
    int flags;         /* NK_HTTP_DIRLIST_UPLOAD */
    size_t max_rows;   /* 0: NK_HTTP_DIRLIST_MAX_ROWS */
    /* Called for each symbolic link in the directory: 0 with *st set to what a request for
     * it would serve, or a negative errno when such a request would be refused (the link is
     * then not listed). NULL: links are followed with fstatat. */
    int (*resolve)(void *ctx, const char *name, struct stat *st);
    void *ctx;
    /* With NK_HTTP_DIRLIST_UPLOAD: the request body limit of an upload, shown on the page
     * (0 or UINT64_MAX: none shown). */
    uint64_t max_upload;
} nk_http_dirlist_opts;
/* The listing with every option. Only entries a request would be served are listed: names a
 * request can carry (nk_http_name_servable), no temporary upload file, dotfiles only with
 * show_dotfiles, regular files and directories (links judged by resolve). */
int nk_http_dirlist_render(int dirfd, const char *url_path, const nk_http_dirlist_opts *o,
                           struct nk_buf *out);

/* The sort flags a query asks for: "sort=name|size|mtime" and "order=asc|desc" (the first of
 * each counts); unknown values and other parameters are ignored. query may be NULL. */
int nk_http_dirlist_sort_query(const char *query, size_t len);

/* Escape text for HTML (&<>"') / for a JSON string body / percent-encode a path segment. */
int nk_http_html_escape(const char *s, size_t len, struct nk_buf *out);
int nk_http_json_escape(const char *s, size_t len, struct nk_buf *out);
int nk_http_url_escape(const char *s, size_t len, struct nk_buf *out);
/* Append a query component: RFC 3986 query characters and valid %XX escapes kept, everything
 * else (controls, space, "#", "%" not starting an escape, non-ASCII) percent-encoded. */
int nk_http_query_escape(const char *s, size_t len, struct nk_buf *out);
/* Length of the valid UTF-8 sequence at s[0..len) (RFC 3629 section 4), or 0 when the bytes
 * there are not one (overlong, surrogate, above U+10FFFF, truncated, stray continuation). */
size_t nk_utf8_len(const unsigned char *s, size_t len);

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
