/* Status reason phrases and method names.
 *
 * Reason phrases are those of RFC 9110 section 15 (the IANA registry's defaults), plus the
 * few from other RFCs a server of ours can send. RFC 9112 section 4: "A client SHOULD ignore
 * the reason-phrase content", so these are for people reading logs and error pages.
 */
#include <stddef.h>

#include "netkit/http.h"

const char *nk_http_reason(int status)
{
    switch (status) {
    /* 1xx, RFC 9110 section 15.2 */
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints"; /* RFC 8297 */
    /* 2xx, section 15.3 */
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    /* 3xx, section 15.4 (306 is reserved and unused) */
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    /* 4xx, section 15.5 */
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";           /* RFC 6585 */
    case 429: return "Too Many Requests";               /* RFC 6585 */
    case 431: return "Request Header Fields Too Large"; /* RFC 6585 */
    /* 5xx, section 15.6 */
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 511: return "Network Authentication Required"; /* RFC 6585 */
    default: return "";
    }
}

const char *nk_http_method_name(nk_http_method m)
{
    switch (m) {
    case NK_HTTP_GET: return "GET";
    case NK_HTTP_HEAD: return "HEAD";
    case NK_HTTP_POST: return "POST";
    case NK_HTTP_PUT: return "PUT";
    case NK_HTTP_DELETE: return "DELETE";
    case NK_HTTP_OPTIONS: return "OPTIONS";
    case NK_HTTP_TRACE: return "TRACE";
    case NK_HTTP_PATCH: return "PATCH";
    case NK_HTTP_CONNECT: return "CONNECT";
    case NK_HTTP_UNKNOWN: break;
    }
    return "";
}
