/* Running `netkit http serve`: listeners, one worker or a supervisor with several. */
#ifndef NETKIT_CLI_HTTP_SERVE_H
#define NETKIT_CLI_HTTP_SERVE_H

#include <netkit/httpd.h>

#define HTTP_MAX_LISTEN 16
#define HTTP_MAX_USERS 1024

typedef struct http_serve_opts {
    const char *cmd;
    const char *root;
    const char *listen[HTTP_MAX_LISTEN];
    int nlisten;
    int workers;
    const char *backend;
    const char *access_log; /* "-", "off" or a path */
    int quiet;
    int verbose;            /* -v: print each request head on stderr */
    int upload_anonymous;   /* --upload-anonymous: writes without credentials */
    nk_httpd_user users[HTTP_MAX_USERS];
    size_t nusers;
    char *auth_file_data;   /* the --auth-file contents; users point into it */
    nk_httpd_config cfg;
} http_serve_opts;

int http_serve_run(http_serve_opts *o);

#endif
