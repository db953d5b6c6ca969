/* A preload library for wrk's TLS connections (LD_PRELOAD=wrk_tls.so wrk ... https://...).
 *
 * wrk keeps one SSL object per connection slot and, when a connection closes, calls
 * SSL_shutdown and SSL_clear on it and reuses it for the next connection. SSL_clear keeps the
 * session of a cleanly shut down connection, so the next handshake offers it and a server with
 * session tickets resumes it: with "Connection: close" a good part of wrk's handshakes are
 * resumptions, not the full handshakes they look like.
 *
 * This library counts the handshakes wrk completes (full and resumed) and, with
 * BENCH_TLS_FORGET=1, drops the session in SSL_clear so that every new connection makes a full
 * handshake. With BENCH_TLS_REPORT=FILE it writes, when wrk exits, one line:
 *   full N resumed N version VERSION cipher CIPHER group GROUP
 * (version, cipher and key exchange group of the first completed handshake; "-" if none).
 *
 * Built by bench/servers.sh with `cc -shared -fPIC`; needs the OpenSSL 3 headers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

static unsigned long n_full, n_resumed;
static char negotiated[160];
static int have_negotiated;

static void *real_fn(const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);
    if (!fn) {
        fprintf(stderr, "wrk_tls: no %s in the libraries after this one\n", name);
        abort();
    }
    return fn;
}

/* Record what the first completed handshake agreed on; later ones are the same client and
 * server, so one is enough. */
static void note_negotiated(SSL *s)
{
    if (__atomic_exchange_n(&have_negotiated, 1, __ATOMIC_ACQ_REL))
        return;
    const char *group = SSL_group_to_name(s, SSL_get_negotiated_group(s));
    snprintf(negotiated, sizeof negotiated, "version %s cipher %s group %s",
             SSL_get_version(s), SSL_get_cipher_name(s), group ? group : "-");
}

int SSL_connect(SSL *s)
{
    static int (*real)(SSL *);
    if (!real)
        real = (int (*)(SSL *))real_fn("SSL_connect");
    int r = real(s);
    if (r == 1) {
        __atomic_fetch_add(SSL_session_reused(s) ? &n_resumed : &n_full, 1, __ATOMIC_RELAXED);
        note_negotiated(s);
    }
    return r;
}

int SSL_clear(SSL *s)
{
    static int (*real)(SSL *);
    static int forget = -1;
    if (!real)
        real = (int (*)(SSL *))real_fn("SSL_clear");
    if (forget < 0) {
        const char *v = getenv("BENCH_TLS_FORGET");
        forget = v && strcmp(v, "1") == 0;
    }
    int r = real(s);
    /* With no session to offer, the next connection on this object makes a full handshake. */
    if (r == 1 && forget)
        SSL_set_session(s, NULL);
    return r;
}

__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("BENCH_TLS_REPORT");
    if (!path || !*path)
        return;
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "full %lu resumed %lu %s\n", __atomic_load_n(&n_full, __ATOMIC_RELAXED),
            __atomic_load_n(&n_resumed, __ATOMIC_RELAXED),
            have_negotiated ? negotiated : "version - cipher - group -");
    fclose(f);
}
