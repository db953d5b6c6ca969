/* The server side of the whole-server fuzz targets (fuzz_httpd.c over HTTP/1.x, fuzz_h2.c over
 * HTTP/2), kept in one place so both attack the same docroot with the same engines and their
 * content checks agree on what every file holds.
 *
 * The docroot lives in a temporary directory: the files of docs[] (one with a valid gzip
 * sidecar, one with an empty sidecar that must never be served as gzip), a dotfile and a
 * file outside the root whose contents must never appear in a response, and symlinks to a
 * file inside the root and to the outside. Three engines run on one loop in this process,
 * each on a Unix socket in the same directory:
 *   A  static files with listings, gzip, CORS and a status page, and a route at /sink that
 *      streams request bodies (NK_HTTPD_STREAM_BODY: pauses, early answers; see the .c);
 *   B  echo behind HTTP Basic (users[]);
 *   C  no listing, SPA, tiny limits (and 2 streams a connection when HTTP/2 is on).
 * Every timeout is far longer than a run and Unix sockets move bytes synchronously, so a run
 * is deterministic: "nothing happened for MAX_IDLE rounds" means stuck. */
#ifndef NK_FUZZ_SERVER_FIXTURE_H
#define NK_FUZZ_SERVER_FIXTURE_H

#include <stddef.h>
#include <sys/un.h>

#include "netkit/http.h"
#include "netkit/httpd.h"
#include "netkit/loop.h"

#define MAX_IDLE 2000       /* loop rounds without any byte moving: the server is stuck */
#define MAX_RX (256u << 20) /* bytes from the server in one run: beyond, the server loops */
#define SECRET_DOT "NK-DOTFILE-SECRET-5c1e"
#define SECRET_OUT "NK-OUTSIDE-SECRET-93ad"

typedef struct doc {
    const char *url;  /* normalised request path that serves it */
    const char *file; /* below root */
    unsigned char *plain;
    size_t plain_len;
    unsigned char *gz; /* its .gz sidecar, or NULL */
    size_t gz_len;
    int gz_valid;      /* the sidecar inflates to plain (the empty one does not) */
} doc;

enum { DOC_INDEX, DOC_INDEX2, DOC_EMPTY, DOC_HELLO, DOC_BIG, DOC_APP, DOC_STYLE, DOC_SUB_A,
       DOC_SUB_EMPTY, DOC_WITHINDEX, DOC_WITHINDEX2, DOC_SPACE, DOC_LINK, NDOCS };

extern doc docs[NDOCS];

typedef struct engine {
    nk_httpd_config cfg;
    nk_httpd *srv;
    struct sockaddr_un addr;
    int serves_files;      /* content and secret checks apply */
    int needs_auth;        /* every request needs the credentials of users[] */
    unsigned h2_streams;   /* its SETTINGS_MAX_CONCURRENT_STREAMS with HTTP/2 on (0: default) */
} engine;

/* One turn of the loop: NK_RUN_NOWAIT, or NK_RUN_ONCE while the engine waits for a file
 * operation (nk_httpd_waiting), whose completion then ends the wait. Returns 1 in that case:
 * the turn counts as progress, since the server is working, not stuck or done. */
int loop_turn(const engine *e);

extern nk_loop *loop;
extern engine engines[3];
extern const nk_httpd_user users[1];

/* From LLVMFuzzerInitialize: build the docroot in /tmp/nk-fuzz-<name>.XXXXXX and start the
 * engines, serving HTTP/2 (h2c by prior knowledge) or HTTP/1.x only; all of it is taken down
 * at exit. `name` also prefixes every message. */
void fixture_start(const char *name, int http2);

/* What an input's control byte says alike in both targets: bits 0-1 the engine (0 or 1: A,
 * 2: B, 3: C); bits 2-4 the size of the pieces the client writes, one loop iteration apart
 * (0: all at once). */
engine *engine_for(unsigned ctl);
size_t piece_for(unsigned ctl);

/* A client connected to e, non-blocking. */
int client_connect(const engine *e);

/* Read all the server has sent into *p (grown as needed), counting it in *total; *progress
 * is set when a byte came, *eof at end of stream. */
void client_recv(int fd, unsigned char **p, size_t *len, size_t *cap, size_t *total, int *eof,
                 int *progress);

/* After the client closed: run the loop until e lets the connection go. */
void wait_released(engine *e);

/* The docroot file a request's path names, or NULL. */
const doc *doc_for(const nk_http_request *req);

/* A gzip body served for d must inflate to d's bytes. */
void check_inflates_to(const unsigned char *gz, size_t n, const doc *d);

/* An invariant is broken: say which, remove the docroot (abort skips atexit), abort. */
__attribute__((format(printf, 1, 2), noreturn)) void fail(const char *fmt, ...);

/* The harness itself could not set up (errno says why). */
__attribute__((noreturn)) void setup_fail(const char *what);

/* Show up to 300 bytes of what the server sent, escaped, after a violation's message. */
void show(const char *what, const unsigned char *p, size_t n);

/* Make room for `need` bytes in *p. */
void grow(unsigned char **p, size_t *cap, size_t need);

#endif
