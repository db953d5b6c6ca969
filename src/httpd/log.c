/* Access log in the combined format that log tools expect:
 *   127.0.0.1 - - [28/Nov/2026:04:10:30 +0000] "GET / HTTP/1.1" 200 123 "referer" "agent"
 * Lines are collected per worker and written when 16 KiB have gathered or once a second, so
 * a busy server does not pay a write per request. Each write holds whole lines, and the file
 * is opened with O_APPEND, so workers sharing it never interleave within a line.
 * Client-supplied text is escaped (", \ and non-printable bytes as \xHH), so a request cannot
 * forge log lines.
 *
 * --log-format json writes one JSON object per line instead:
 *   {"time":"2026-11-28T04:10:30.123Z","client":"127.0.0.1","method":"GET","path":"/x",
 *    "protocol":"HTTP/1.1","status":200,"bytes":123,"duration_us":85,"user_agent":"...",
 *    "referer":null}
 * path is the request target as sent. bytes is the body length of the response (for --gzip
 * responses the uncompressed length: the line is written when the response starts). duration
 * is from the arrival of the whole request head to the response being handed to the socket
 * (for bodies, after the body was read), not to its completion.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_FLUSH_BYTES 16384
#define LOG_FIELD_MAX 1024

static void put_escaped(nk_buf *b, nk_str s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s.p) {
        nk_buf_append(b, "-", 1);
        return;
    }
    size_t n = s.len < LOG_FIELD_MAX ? s.len : LOG_FIELD_MAX;
    char *w = nk_buf_reserve(b, n * 4) < 0 ? NULL : nk_buf_wptr(b);
    if (!w)
        return; /* no memory (or nothing to write into): the field is left out */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
            *w++ = '\\';
            *w++ = 'x';
            *w++ = hex[ch >> 4];
            *w++ = hex[ch & 15];
        } else {
            *w++ = (char)ch;
        }
    }
    nk_buf_commit(b, (size_t)(w - nk_buf_wptr(b)));
}

static const char *log_time(nk_httpd *srv)
{
    time_t now = time(NULL);
    if (now != srv->logtime_sec) {
        static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        struct tm tm;
        gmtime_r(&now, &tm);
        snprintf(srv->logtime, sizeof srv->logtime, "%02d/%s/%04d:%02d:%02d:%02d +0000",
                 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        srv->logtime_sec = now;
    }
    return srv->logtime;
}

uint64_t nk__log_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void json_str(nk_buf *b, nk_str s)
{
    if (!s.p) {
        nk_buf_append(b, "null", 4);
        return;
    }
    nk_buf_append(b, "\"", 1);
    nk_http_json_escape(s.p, s.len < LOG_FIELD_MAX ? s.len : LOG_FIELD_MAX, b);
    nk_buf_append(b, "\"", 1);
}

/* The request line split at its spaces: method, target, protocol (empty when missing). */
static void split_line(nk_str line, nk_str parts[3])
{
    /* A missing line (NULL) splits like an empty one. */
    const char *p = line.p ? line.p : "";
    const char *end = p + (line.p ? line.len : 0);
    for (int i = 0; i < 3; i++) {
        const char *start = p;
        while (p < end && (i == 2 || *p != ' '))
            p++;
        parts[i] = (nk_str){start, (size_t)(p - start)};
        if (p < end)
            p++;
    }
}

static void log_json(nk__conn *c, const char *ip, int status, uint64_t bytes)
{
    nk_httpd *srv = c->srv;
    nk_buf *b = &srv->log;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    uint64_t dur = c->x->t_head_us ? nk__log_clock_us() - c->x->t_head_us : 0;
    nk_str parts[3];
    split_line(srv->log_line, parts);
    if (nk__conn_h2s(c))
        parts[2] = (nk_str){"HTTP/2.0", 8}; /* the stream's request line is made here */
    nk_buf_printf(b, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"client\":\"%s\","
                     "\"method\":", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, ip);
    json_str(b, parts[0]);
    nk_buf_append_str(b, ",\"path\":");
    json_str(b, parts[1]);
    nk_buf_append_str(b, ",\"protocol\":");
    json_str(b, parts[2]);
    nk_buf_printf(b, ",\"status\":%d,\"bytes\":%llu,\"duration_us\":%llu,\"user_agent\":",
                  status, (unsigned long long)bytes, (unsigned long long)dur);
    json_str(b, srv->log_agent);
    nk_buf_append_str(b, ",\"referer\":");
    json_str(b, srv->log_referer);
    nk_buf_append(b, "}\n", 2);
}

void nk__log_request(nk__conn *c, int status, uint64_t bytes)
{
    nk_httpd *srv = c->srv;
    NK__COUNT(srv, requests_total, 1);
    if (status >= 100 && status <= 599)
        NK__COUNT(srv, status[status / 100 - 1], 1);
    if (srv->cfg.access_log_fd < 0) {
        c->x->t_head_us = 0;
        return;
    }
    char ip[INET6_ADDRSTRLEN] = "-";
    if (c->peer_family == AF_INET || c->peer_family == AF_INET6)
        inet_ntop(c->peer_family, c->peer_ip, ip, sizeof ip);
    nk_buf *b = &srv->log;
    if (srv->cfg.log_format == NK_HTTPD_LOG_JSON) {
        if (c->peer_family == AF_UNIX)
            strcpy(ip, "unix");
        log_json(c, ip, status, bytes);
        c->x->t_head_us = 0;
        goto written;
    }
    c->x->t_head_us = 0;
    nk_buf_printf(b, "%s - - [%s] \"", ip, log_time(srv));
    nk_str line = srv->log_line;
    if (nk__conn_h2s(c) && line.p && line.len > 9 && memcmp(line.p + line.len - 9, " HTTP/1.1", 9) == 0) {
        /* The request line of a stream is the one h2stream.c made: say what came. */
        line.len -= 8;
        put_escaped(b, line);
        nk_buf_append(b, "HTTP/2.0", 8);
    } else {
        put_escaped(b, line);
    }
    nk_buf_printf(b, "\" %d %llu \"", status, (unsigned long long)bytes);
    put_escaped(b, srv->log_referer);
    nk_buf_append(b, "\" \"", 3);
    put_escaped(b, srv->log_agent);
    nk_buf_append(b, "\"\n", 2);
written:
    if (nk_buf_len(b) >= LOG_FLUSH_BYTES)
        nk__log_flush(srv);
    else if (!nk_timer_active(&srv->log_timer))
        nk_timer_start(srv->loop, &srv->log_timer, 1000, 0);
}

void nk__log_flush(nk_httpd *srv)
{
    nk_buf *b = &srv->log;
    while (nk_buf_len(b) && srv->cfg.access_log_fd >= 0) {
        ssize_t n = write(srv->cfg.access_log_fd, nk_buf_rptr(b), nk_buf_len(b));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a full disk or closed pipe must not stop serving: drop the lines */
        nk_buf_consume(b, (size_t)n);
    }
    nk_buf_clear(b);
    nk_timer_stop(srv->loop, &srv->log_timer);
}
