/* Parse an HTTP/1.1 request head arriving in pieces, the way a server must: bytes are added
 * to a buffer as they come and nk_http_parse_request is called again after each piece, with
 * prev_len saying how much it has already seen, so that it does not rescan from the start.
 * Here the pieces are single bytes from stdin, the worst case a slow client can cause.
 *   cc parse_request.c $(pkg-config --cflags --libs netkit) -o parse_request
 *   printf 'GET /a%%20b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n' | ./parse_request
 * Prints the request's parts and exits 0; or prints the status a server should answer a
 * malformed request with ("status 400 Bad Request"), or "incomplete", and exits 1. */
#include <netkit/netkit.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

static void print_view(const char *label, nk_str s)
{
    if (s.p)
        printf("%s: %.*s\n", label, (int)s.len, s.p);
    else
        printf("%s: (none)\n", label);
}

static void print_request(const nk_http_request *req)
{
    char decoded[4096];
    print_view("method", req->method_name);
    print_view("target", req->target);
    print_view("path", req->path);
    /* The path is still percent-encoded; a server decodes and normalises it before use. */
    if (nk_http_path_normalize(req->path.p, req->path.len, decoded, sizeof decoded) >= 0)
        printf("decoded path: %s\n", decoded);
    else
        printf("decoded path: (refused: a server answers 400)\n");
    print_view("query", req->query);
    printf("version: HTTP/%d.%d\n", req->version_major, req->version_minor);
    for (size_t i = 0; i < req->nheaders; i++)
        printf("field: %.*s: %.*s\n", (int)req->headers[i].name.len, req->headers[i].name.p,
               (int)req->headers[i].value.len, req->headers[i].value.p);
    print_view("host", req->host);
    printf("content-length: %lld\n", (long long)req->content_length);
    printf("chunked: %s\n", req->chunked ? "yes" : "no");
    printf("keep-alive: %s\n", req->keep_alive ? "yes" : "no");
    printf("head: %zu bytes\n", req->head_len);
}

int main(void)
{
    nk_buf buf;
    nk_http_request req; /* large (128 field slots), but a single one */
    nk_http_limits lim;
    nk_http_limits_default(&lim);
    /* The parser refuses a head over lim.max_head (431), so the buffer needs no other bound;
     * the one given here is a second fence. */
    nk_buf_init(&buf, lim.max_head + 1);
    int rc = -EAGAIN, status = 0;
    char c;
    while (rc == -EAGAIN && read(STDIN_FILENO, &c, 1) == 1) {
        size_t prev_len = nk_buf_len(&buf);
        if (nk_buf_append(&buf, &c, 1) < 0)
            break;
        /* The buffer may move as it grows: the parser gets the current pointer every time and
         * remembers nothing between calls but what prev_len tells it. */
        rc = nk_http_parse_request(nk_buf_rptr(&buf), nk_buf_len(&buf), prev_len, &lim, &req,
                                   &status);
    }
    if (rc > 0) {
        /* Bytes after the head (req.head_len) would be the body: not read here. */
        print_request(&req);
    } else if (rc == -EBADMSG) {
        printf("status %d %s\n", status, nk_http_reason(status));
    } else {
        printf("incomplete: %zu bytes without the end of the head\n", nk_buf_len(&buf));
    }
    nk_buf_free(&buf);
    return rc > 0 ? 0 : 1;
}
