/* Unit tests for the TLS transport (netkit/tls.h): both ends of every connection run in this
 * thread over a non-blocking socketpair (or a loopback TCP pair), driven in turns, so nothing
 * waits on a thread and nothing leaves the machine. The certificates (a root CA, an
 * intermediate, leaves of both key types, a chain file) are made with OpenSSL's C API into a
 * temporary folder at start and removed at the end.
 *
 * The internal header is included only to look at the certificate a connection received
 * (nk_tls's SSL object) when the public API has no way to show it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <netkit/loop.h>
#include <netkit/tls.h>

#include "tls/tls_internal.h"

/* ---- certificates made for the tests ------------------------------------------------------ */

enum { F_CA, F_LEAF, F_LEAF_KEY, F_CHAIN, F_CHAIN_KEY, F_OTHER, F_OTHER_KEY, F_GARBAGE, F_MAX };
static const char *const file_names[F_MAX] = {
    "ca.pem",    "leaf.pem",  "leaf.key", "chain.pem", "chain.key",
    "other.pem", "other.key", "garbage.pem",
};

static struct {
    char dir[64];
    char path[F_MAX][128];
    char fp_leaf[NK_TLS_FP_HEX];  /* "localhost", 127.0.0.1; EC; signed by the root */
    char fp_chain[NK_TLS_FP_HEX]; /* "localhost"; EC; signed by the intermediate */
    char fp_other[NK_TLS_FP_HEX]; /* "other.test"; RSA; signed by the root */
} certs;

static const char *path_of(int f)
{
    return certs.path[f];
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A certificate for key, named cn (and san when not NULL), signed by issuer/ikey (NULL:
 * self-signed); ca makes it a CA that may sign certificates. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
                      EVP_PKEY *ikey, int ca)
{
    static long serial = 1;
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)cn, -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509 *signer = issuer ? issuer : x;
    if (ca) {
        add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, signer, NID_basic_constraints, "CA:FALSE");
        add_ext(x, signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        add_ext(x, signer, NID_ext_key_usage, "serverAuth");
        if (san)
            add_ext(x, signer, NID_subject_alt_name, san);
    }
    assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
    return x;
}

static void write_certs(int f, X509 *a, X509 *b)
{
    FILE *out = fopen(path_of(f), "w");
    assert_non_null(out);
    assert_int_equal(PEM_write_X509(out, a), 1);
    if (b)
        assert_int_equal(PEM_write_X509(out, b), 1);
    assert_int_equal(fclose(out), 0);
}

static void write_key(int f, EVP_PKEY *key)
{
    FILE *out = fopen(path_of(f), "w");
    assert_non_null(out);
    assert_int_equal(PEM_write_PrivateKey(out, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(out), 0);
}

static void fp_of(X509 *x, char fp[NK_TLS_FP_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    assert_int_equal(X509_digest(x, EVP_sha256(), md, &len), 1);
    assert_int_equal(len, 32);
    for (unsigned i = 0; i < len; i++)
        snprintf(fp + 2 * i, 3, "%02x", md[i]);
}

static int make_certs(void **state)
{
    (void)state;
    char dir[] = "/tmp/nk-tls-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(certs.dir, sizeof certs.dir, "%s", dir);
    for (int f = 0; f < F_MAX; f++)
        snprintf(certs.path[f], sizeof certs.path[f], "%s/%s", dir, file_names[f]);

    EVP_PKEY *root_key = EVP_EC_gen("P-256"), *inter_key = EVP_EC_gen("P-256");
    EVP_PKEY *leaf_key = EVP_EC_gen("P-256"), *chain_key = EVP_EC_gen("P-256");
    EVP_PKEY *other_key = EVP_RSA_gen(2048);
    assert_true(root_key && inter_key && leaf_key && chain_key && other_key);
    X509 *root = new_cert(root_key, "netkit test root", NULL, NULL, NULL, 1);
    X509 *inter = new_cert(inter_key, "netkit test intermediate", NULL, root, root_key, 1);
    X509 *leaf = new_cert(leaf_key, "localhost", "DNS:localhost,IP:127.0.0.1", root, root_key, 0);
    X509 *chain = new_cert(chain_key, "chain leaf", "DNS:localhost", inter, inter_key, 0);
    X509 *other = new_cert(other_key, "other.test", "DNS:other.test", root, root_key, 0);

    write_certs(F_CA, root, NULL);
    write_certs(F_LEAF, leaf, NULL);
    write_key(F_LEAF_KEY, leaf_key);
    write_certs(F_CHAIN, chain, inter);
    write_key(F_CHAIN_KEY, chain_key);
    write_certs(F_OTHER, other, NULL);
    write_key(F_OTHER_KEY, other_key);
    FILE *g = fopen(path_of(F_GARBAGE), "w");
    assert_non_null(g);
    fputs("-----BEGIN CERTIFICATE-----\nthis is not base64 at all!\n"
          "-----END CERTIFICATE-----\n",
          g);
    assert_int_equal(fclose(g), 0);

    fp_of(leaf, certs.fp_leaf);
    fp_of(chain, certs.fp_chain);
    fp_of(other, certs.fp_other);
    X509 *all[] = {root, inter, leaf, chain, other};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        X509_free(all[i]);
    EVP_PKEY *keys[] = {root_key, inter_key, leaf_key, chain_key, other_key};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

static int remove_certs(void **state)
{
    (void)state;
    for (int f = 0; f < F_MAX; f++)
        unlink(path_of(f));
    char extra[160]; /* what a test writes itself, left there when it fails */
    snprintf(extra, sizeof extra, "%s/self.pem", certs.dir);
    unlink(extra);
    rmdir(certs.dir);
    return 0;
}

/* ---- connections driven in turns ---------------------------------------------------------- */

typedef struct pair {
    int fd[2]; /* client, server */
    nk_tls *c, *s;
    int rc, rs; /* the handshakes' results */
} pair;

static void nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void pair_socketpair(pair *p)
{
    memset(p, 0, sizeof *p);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
}

/* Two ends of a loopback TCP connection (the port comes from the kernel). */
static void pair_tcp(pair *p)
{
    memset(p, 0, sizeof *p);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    p->fd[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->fd[0] >= 0);
    assert_int_equal(connect(p->fd[0], (struct sockaddr *)&a, sizeof a), 0);
    p->fd[1] = accept(l, NULL, NULL);
    assert_true(p->fd[1] >= 0);
    close(l);
    nonblock(p->fd[0]);
    nonblock(p->fd[1]);
}

static void pair_close(pair *p)
{
    nk_tls_free(p->c);
    nk_tls_free(p->s);
    p->c = p->s = NULL;
    for (int i = 0; i < 2; i++) {
        if (p->fd[i] >= 0)
            close(p->fd[i]);
        p->fd[i] = -1;
    }
}

static short events_of(unsigned want)
{
    assert_true(want == NK_READ || want == NK_WRITE);
    return want == NK_READ ? POLLIN : POLLOUT;
}

/* One side of a handshake: an nk_tls, or a bare OpenSSL client (for profiles the library will
 * not make itself). */
typedef struct side {
    nk_tls *t;
    SSL *raw;
    int fd;
} side;

static int step(const side *sd, short *events)
{
    if (sd->t) {
        int r = nk_tls_handshake(sd->t);
        if (r == -EAGAIN)
            *events = events_of(nk_tls_want(sd->t));
        return r;
    }
    int r = SSL_do_handshake(sd->raw);
    if (r == 1)
        return 0;
    switch (SSL_get_error(sd->raw, r)) {
    case SSL_ERROR_WANT_READ:
        *events = POLLIN;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        *events = POLLOUT;
        return -EAGAIN;
    default:
        return -EPROTO;
    }
}

/* Alternate the two handshakes until neither waits. When both (or the only one left) wait,
 * sleep in poll on what nk_tls_want asked for; a side that waits for nothing that comes (its
 * peer failed without a word) ends the loop with -EAGAIN. */
static void drive_sides(const side *c, const side *s, int *rc, int *rs)
{
    *rc = *rs = -EAGAIN;
    for (int round = 0; round < 500 && (*rc == -EAGAIN || *rs == -EAGAIN); round++) {
        struct pollfd pfd[2];
        int n = 0;
        short ev = 0;
        if (*rc == -EAGAIN && (*rc = step(c, &ev)) == -EAGAIN)
            pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
        if (*rs == -EAGAIN && (*rs = step(s, &ev)) == -EAGAIN)
            pfd[n++] = (struct pollfd){.fd = s->fd, .events = ev};
        if (n && poll(pfd, (nfds_t)n, 2000) == 0)
            break;
    }
}

static void drive(pair *p)
{
    side c = {.t = p->c, .fd = p->fd[0]}, s = {.t = p->s, .fd = p->fd[1]};
    drive_sides(&c, &s, &p->rc, &p->rs);
}

/* A connection from cctx (checking name) to sctx over a fresh socketpair, handshake done or
 * failed (p->rc, p->rs). */
static void connect_pair(pair *p, nk_tls_ctx *cctx, const char *name, nk_tls_ctx *sctx)
{
    pair_socketpair(p);
    assert_int_equal(nk_tls_new(cctx, p->fd[0], name, &p->c), 0);
    assert_int_equal(nk_tls_new(sctx, p->fd[1], NULL, &p->s), 0);
    assert_string_equal(nk_tls_error(p->c), "");
    drive(p);
}

static void connect_ok(pair *p, nk_tls_ctx *cctx, const char *name, nk_tls_ctx *sctx)
{
    connect_pair(p, cctx, name, sctx);
    if (p->rc != 0 || p->rs != 0)
        fail_msg("handshake: client %d (%s), server %d (%s)", p->rc, nk_tls_error(p->c), p->rs,
                 nk_tls_error(p->s));
}

static int wait_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 5000);
}

/* Read exactly len bytes into out, waiting for the socket when the connection has nothing. */
static void read_exact(nk_tls *t, int fd, void *out, size_t len)
{
    size_t got = 0;
    for (int round = 0; got < len && round < 100000; round++) {
        ssize_t n = nk_tls_read(t, (char *)out + got, len - got);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n != -EAGAIN)
            fail_msg("read: %zd (%s) after %zu of %zu bytes", n, nk_tls_error(t), got, len);
        assert_int_equal(nk_tls_want(t), NK_READ);
        assert_true(wait_readable(fd) > 0);
    }
    assert_int_equal(got, len);
}

/* Read whatever is there now (nk_tls_read until -EAGAIN) into out[*got, cap). */
static void read_now(nk_tls *t, void *out, size_t cap, size_t *got)
{
    while (*got < cap) {
        ssize_t n = nk_tls_read(t, (char *)out + *got, cap - *got);
        if (n == -EAGAIN)
            return;
        if (n <= 0)
            fail_msg("read: %zd (%s)", n, nk_tls_error(t));
        *got += (size_t)n;
    }
}

/* Bytes waiting in a socket, without taking them. */
static ssize_t peek(int fd, void *buf, size_t len)
{
    return recv(fd, buf, len, MSG_PEEK | MSG_DONTWAIT);
}

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (unsigned char)(seed >> 16);
    }
}

/* Contexts most tests use: a server with one certificate, a client pinned to it. */
static nk_tls_ctx *server_with(int cert, int key)
{
    nk_tls_ctx *ctx = NULL;
    char err[NK_TLS_ERR_MAX] = "";
    assert_int_equal(nk_tls_server_new(&ctx, err, sizeof err), 0);
    int r = nk_tls_ctx_add_cert(ctx, path_of(cert), path_of(key), err, sizeof err);
    if (r != 0)
        fail_msg("add_cert: %d %s", r, err);
    return ctx;
}

static nk_tls_ctx *client_with(const char *ca_file, const char *pin, int insecure)
{
    nk_tls_ctx *ctx = NULL;
    char err[NK_TLS_ERR_MAX] = "";
    nk_tls_client_config cfg = {.size = sizeof cfg, .ca_file = ca_file, .pin_sha256 = pin,
                                .insecure = insecure};
    int r = nk_tls_client_new(&cfg, &ctx, err, sizeof err);
    if (r != 0)
        fail_msg("client_new: %d %s", r, err);
    return ctx;
}

static void assert_alpn(const nk_tls *t, const char *want)
{
    size_t len = 99;
    const char *p = nk_tls_alpn(t, &len);
    assert_non_null(p);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(p, want, len);
}

/* ---- self-signed certificates -------------------------------------------------------------- */

static void test_self_signed(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = NULL;
    char err[NK_TLS_ERR_MAX] = "", fp[NK_TLS_FP_HEX] = "";
    assert_int_equal(nk_tls_server_new(&sctx, err, sizeof err), 0);
    assert_int_equal(nk_tls_ctx_ncerts(sctx), 0);
    const char *names[] = {"localhost", "127.0.0.1", "::1"};
    assert_int_equal(nk_tls_ctx_add_self_signed(sctx, names, 3, fp, err, sizeof err), 0);
    assert_int_equal(nk_tls_ctx_ncerts(sctx), 1);
    assert_int_equal(strlen(fp), 64);
    assert_int_equal(strspn(fp, "0123456789abcdef"), 64);

    /* The client sees the certificate whose fingerprint the server was given. */
    nk_tls_ctx *cctx = client_with(NULL, NULL, 1);
    pair p;
    connect_ok(&p, cctx, NULL, sctx);
    char seen[NK_TLS_FP_HEX] = "";
    assert_int_equal(nk_tls_peer_fingerprint(p.c, seen), 0);
    assert_string_equal(seen, fp);
    /* The server saw no client certificate. */
    assert_int_equal(nk_tls_peer_fingerprint(p.s, seen), -ENOENT);
    assert_int_equal(nk_tls_peer_chain(p.s, err, sizeof err), 0);

    /* Its names: host names as DNS names, literals as IP addresses. A client that trusts
     * this very certificate checks them as it would a CA-issued one's. */
    X509 *leaf = SSL_get0_peer_certificate(p.c->ssl);
    assert_non_null(leaf);
    assert_int_equal(X509_check_host(leaf, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "::1", 0), 1);
    assert_int_not_equal(X509_check_host(leaf, "other.test", 0, 0, NULL), 1);
    assert_int_not_equal(X509_check_host(leaf, "127.0.0.1", 0, 0, NULL), 1);
    char anchor[160];
    snprintf(anchor, sizeof anchor, "%s/self.pem", certs.dir);
    FILE *f = fopen(anchor, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, leaf), 1);
    assert_int_equal(fclose(f), 0);
    pair_close(&p);
    nk_tls_ctx_free(cctx);

    cctx = client_with(anchor, NULL, 0);
    connect_ok(&p, cctx, "localhost", sctx);
    pair_close(&p);
    connect_ok(&p, cctx, "127.0.0.1", sctx);
    pair_close(&p);
    connect_pair(&p, cctx, "other.test", sctx);
    assert_int_equal(p.rc, -EPROTO);
    assert_int_equal(p.rs, -EPROTO); /* told by the client's alert */
    assert_non_null(strstr(nk_tls_error(p.c), "certificate"));
    assert_non_null(strstr(nk_tls_error(p.c), "hostname mismatch"));
    assert_string_not_equal(nk_tls_error(p.s), "");
    pair_close(&p);
    nk_tls_ctx_free(cctx);
    unlink(anchor);

    /* Names that cannot go in a certificate, and a client context, are refused. */
    const char *bad[] = {"a,b"};
    assert_int_equal(nk_tls_ctx_add_self_signed(sctx, bad, 1, NULL, err, sizeof err), -EINVAL);
    const char *empty[] = {""};
    assert_int_equal(nk_tls_ctx_add_self_signed(sctx, empty, 1, NULL, err, sizeof err),
                     -EINVAL);
    assert_int_equal(nk_tls_ctx_ncerts(sctx), 1);
    cctx = client_with(NULL, NULL, 1);
    assert_int_equal(nk_tls_ctx_add_self_signed(cctx, names, 1, NULL, err, sizeof err),
                     -EINVAL);
    nk_tls_ctx_free(cctx);
    nk_tls_ctx_free(sctx);
}

/* A host name may be longer than a certificate's common name may be (64): it still goes in,
 * as a subjectAltName, which is what clients check. */
static void test_self_signed_long_name(void **state)
{
    (void)state;
    char name[120]; /* 106 characters: two labels of 50, then ".test" */
    memset(name, 'a', 50);
    name[50] = '.';
    memset(name + 51, 'b', 50);
    strcpy(name + 101, ".test");
    nk_tls_ctx *sctx = NULL;
    char err[NK_TLS_ERR_MAX] = "", fp[NK_TLS_FP_HEX] = "";
    assert_int_equal(nk_tls_server_new(&sctx, err, sizeof err), 0);
    const char *names[] = {name, "localhost"};
    int r = nk_tls_ctx_add_self_signed(sctx, names, 2, fp, err, sizeof err);
    if (r != 0)
        fail_msg("add_self_signed: %d %s", r, err);
    nk_tls_ctx *cctx = client_with(NULL, fp, 0);
    pair p;
    connect_ok(&p, cctx, name, sctx);
    X509 *leaf = SSL_get0_peer_certificate(p.c->ssl);
    assert_non_null(leaf);
    assert_int_equal(X509_check_host(leaf, name, 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(leaf, "localhost", 0, 0, NULL), 1);
    pair_close(&p);
    nk_tls_ctx_free(cctx);
    nk_tls_ctx_free(sctx);
}

/* ---- reading and writing -------------------------------------------------------------------- */

static void test_read_write_both_ways(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = server_with(F_LEAF, F_LEAF_KEY);
    nk_tls_ctx *cctx = client_with(NULL, certs.fp_leaf, 0);
    pair p;
    connect_ok(&p, cctx, "localhost", sctx);
    assert_string_equal(nk_tls_version(p.c), "TLSv1.3");
    assert_string_equal(nk_tls_version(p.s), "TLSv1.3");
    assert_string_equal(nk_tls_cipher(p.c), nk_tls_cipher(p.s));
    assert_true(strcmp(nk_tls_cipher(p.c), "TLS_AES_128_GCM_SHA256") == 0 ||
                strcmp(nk_tls_cipher(p.c), "TLS_AES_256_GCM_SHA384") == 0 ||
                strcmp(nk_tls_cipher(p.c), "TLS_CHACHA20_POLY1305_SHA256") == 0);
    assert_string_equal(nk_tls_server_name(p.s), "localhost");
    assert_int_equal(nk_tls_resumed(p.c), 0);
    assert_int_equal(nk_tls_resumed(p.s), 0);
    assert_int_equal(nk_tls_ktls_send(p.c), 0); /* never over a unix socket */
    assert_string_equal(nk_tls_error(p.c), "");

    char buf[64] = "";
    assert_int_equal(nk_tls_write(p.c, "ping", 4), 4);
    read_exact(p.s, p.fd[1], buf, 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(nk_tls_write(p.s, "pong!", 5), 5);
    read_exact(p.c, p.fd[0], buf, 5);
    assert_memory_equal(buf, "pong!", 5);
    /* Nothing more: -EAGAIN, waiting to read. */
    assert_int_equal(nk_tls_read(p.c, buf, sizeof buf), -EAGAIN);
    assert_int_equal(nk_tls_want(p.c), NK_READ);
    assert_int_equal(nk_tls_pending(p.c), 0);

    /* close_notify reads as 0; so does a bare EOF. */
    nk_tls_shutdown(p.s);
    assert_true(wait_readable(p.fd[0]) > 0);
    assert_int_equal(nk_tls_read(p.c, buf, sizeof buf), 0);
    close(p.fd[0]);
    p.fd[0] = -1;
    assert_true(wait_readable(p.fd[1]) > 0);
    assert_int_equal(nk_tls_read(p.s, buf, sizeof buf), 0);
    pair_close(&p);
    nk_tls_ctx_free(cctx);
    nk_tls_ctx_free(sctx);
}

/* A gather write of small pieces leaves as one record (TLS 1.3: 5 bytes of header, then the
 * data, its content type and a 16-byte tag), and the reader gets every byte in order. */
static void test_writev_joins_pieces(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = server_with(F_LEAF, F_LEAF_KEY);
    nk_tls_ctx *cctx = client_with(NULL, certs.fp_leaf, 0);
    pair p;
    connect_ok(&p, cctx, "localhost", sctx);

    struct iovec iov[] = {
        {"HTTP/1.1 200 OK\r\n", 17}, {"", 0}, {"Content-Length: 5\r\n", 19}, {"\r\n", 2},
        {"hello", 5},
    };
    const char want[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    size_t total = sizeof want - 1;
    assert_int_equal(nk_tls_writev(p.c, iov, 5), (ssize_t)total);
    unsigned char raw[512];
    assert_int_equal(peek(p.fd[1], raw, sizeof raw), (ssize_t)(5 + total + 1 + 16));
    char got[128] = "";
    read_exact(p.s, p.fd[1], got, total);
    assert_memory_equal(got, want, total);

    /* More small pieces than a record holds: the first call takes a record's worth, the
     * caller goes on from there, and the bytes arrive whole and in order. */
    enum { PIECES = 12, PIECE = 2000 };
    static unsigned char src[PIECES * PIECE], dst[PIECES * PIECE];
    fill(src, sizeof src, 7);
    struct iovec many[PIECES];
    size_t sent = 0;
    int calls = 0;
    while (sent < sizeof src && calls < 100) {
        int n = 0;
        for (size_t at = sent; at < sizeof src; n++) {
            size_t end = (at / PIECE + 1) * PIECE;
            many[n] = (struct iovec){src + at, end - at};
            at = end;
        }
        ssize_t w = nk_tls_writev(p.c, many, n);
        assert_true(w > 0);
        sent += (size_t)w;
        calls++;
    }
    assert_int_equal(sent, sizeof src);
    assert_true(calls >= 2); /* a call takes at most one record of joined pieces */
    read_exact(p.s, p.fd[1], dst, sizeof dst);
    assert_memory_equal(src, dst, sizeof src);
    assert_int_equal(nk_tls_writev(p.c, iov + 1, 1), 0); /* nothing to send */
    pair_close(&p);
    nk_tls_ctx_free(cctx);
    nk_tls_ctx_free(sctx);
}

/* A write the socket cannot take returns -EAGAIN waiting to write; once the reader drains,
 * the same bytes (here from another buffer, as the contract allows) go out, none lost or
 * doubled. */
static void test_large_write_retried(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = server_with(F_LEAF, F_LEAF_KEY);
    nk_tls_ctx *cctx = client_with(NULL, certs.fp_leaf, 0);
    pair p;
    connect_ok(&p, cctx, "localhost", sctx);

    size_t len = 4u << 20;
    unsigned char *src = malloc(len), *copy = malloc(len), *dst = malloc(len);
    assert_true(src && copy && dst);
    fill(src, len, 42);
    size_t sent = 0, got = 0;
    int eagains = 0;
    for (int round = 0; sent < len && round < 100000; round++) {
        /* After a refusal, repeat from a copy at another address. */
        const unsigned char *from = eagains % 2 ? copy : src;
        if (from == copy)
            memcpy(copy + sent, src + sent, len - sent);
        ssize_t n = nk_tls_write(p.s, from + sent, len - sent);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n != -EAGAIN)
            fail_msg("write: %zd (%s)", n, nk_tls_error(p.s));
        eagains++;
        assert_int_equal(nk_tls_want(p.s), NK_WRITE);
        read_now(p.c, dst, len, &got);
    }
    assert_int_equal(sent, len);
    assert_true(eagains > 0); /* the socket did fill up */
    read_exact(p.c, p.fd[0], dst + got, len - got);
    assert_memory_equal(src, dst, len);
    free(src);
    free(copy);
    free(dst);
    pair_close(&p);
    nk_tls_ctx_free(cctx);
    nk_tls_ctx_free(sctx);
}

static int temp_file(const unsigned char *data, size_t len)
{
    char name[] = "/tmp/nk-tls-file-XXXXXX";
    int fd = mkstemp(name);
    assert_true(fd >= 0);
    unlink(name);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    return fd;
}

/* Send [off, off + len) of a file with nk_tls_sendfile, reading on the other side whenever
 * the socket is full; every positive result advances *off by itself. */
static void sendfile_range(pair *p, int fd, off_t off, size_t len, unsigned char *dst,
                           int *eagains)
{
    off_t at = off;
    size_t got = 0;
    for (int round = 0; (size_t)(at - off) < len && round < 100000; round++) {
        off_t before = at;
        ssize_t n = nk_tls_sendfile(p->s, fd, &at, len - (size_t)(at - off));
        if (n > 0) {
            assert_int_equal(at - before, n);
            continue;
        }
        if (n != -EAGAIN)
            fail_msg("sendfile: %zd (%s)", n, nk_tls_error(p->s));
        assert_int_equal(at, before);
        assert_int_equal(nk_tls_want(p->s), NK_WRITE);
        (*eagains)++;
        read_now(p->c, dst, len, &got);
    }
    assert_int_equal(at - off, (off_t)len);
    read_exact(p->c, p->fd[0], dst + got, len - got);
}

static void check_sendfile(pair *p, int expect_eagain)
{
    size_t size = 1u << 20;
    unsigned char *src = malloc(size), *dst = malloc(size);
    assert_true(src && dst);
    fill(src, size, 9);
    int fd = temp_file(src, size);
    int eagains = 0;

    sendfile_range(p, fd, 0, size, dst, &eagains);
    assert_memory_equal(src, dst, size);
    if (expect_eagain)
        assert_true(eagains > 0);
    /* A range from the middle: exactly those bytes. */
    memset(dst, 0, size);
    sendfile_range(p, fd, 1000, 5000, dst, &eagains);
    assert_memory_equal(src + 1000, dst, 5000);
    /* At the end of the file: 0, and *off stays. */
    off_t end = (off_t)size;
    assert_int_equal(nk_tls_sendfile(p->s, fd, &end, 100), 0);
    assert_int_equal(end, (off_t)size);
    close(fd);
    free(src);
    free(dst);
}

static void test_sendfile(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = server_with(F_LEAF, F_LEAF_KEY);
    nk_tls_ctx *cctx = client_with(NULL, certs.fp_leaf, 0);
    pair p;
    connect_ok(&p, cctx, "localhost", sctx);
    check_sendfile(&p, 1);
    pair_close(&p);

    /* Over TCP, where kernel TLS may carry it (when this kernel has it). */
    pair_tcp(&p);
    assert_int_equal(nk_tls_new(cctx, p.fd[0], "localhost", &p.c), 0);
    assert_int_equal(nk_tls_new(sctx, p.fd[1], NULL, &p.s), 0);
    drive(&p);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.rs, 0);
    char why[200] = "";
    if (!nk_tls_ktls_available(why, sizeof why))
        assert_int_equal(nk_tls_ktls_send(p.s), 0);
    check_sendfile(&p, 0);
    pair_close(&p);
    nk_tls_ctx_free(cctx);
    nk_tls_ctx_free(sctx);
}

/* A read smaller than a record leaves the rest inside, which no readiness event announces:
 * nk_tls_pending says so and the next read gets it with the socket empty. */
static void test_pending(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = server_with(F_LEAF, F_LEAF_KEY);
    nk_tls_ctx *cctx = client_with(NULL, certs.fp_leaf, 0);
    pair p;
    connect_ok(&p, cctx, "localhost", sctx);

    unsigned char src[10000], dst[10000];
    fill(src, sizeof src, 3);
    assert_int_equal(nk_tls_write(p.s, src, sizeof src), (ssize_t)sizeof src);
    assert_true(wait_readable(p.fd[0]) > 0);
    assert_int_equal(nk_tls_pending(p.c), 0);
    size_t got = 0;
    for (int round = 0; got == 0 && round < 1000; round++) {
        ssize_t n = nk_tls_read(p.c, dst, 100);
        if (n == -EAGAIN)
            assert_true(wait_readable(p.fd[0]) > 0);
        else
            got = (size_t)n;
    }
    assert_int_equal(got, 100);
    assert_int_equal(nk_tls_pending(p.c), sizeof src - 100);
    unsigned char raw[16];
    assert_int_equal(peek(p.fd[0], raw, sizeof raw), -1); /* the socket has nothing */
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(nk_tls_read(p.c, dst + 100, sizeof dst - 100), (ssize_t)(sizeof src - 100));
    assert_int_equal(nk_tls_pending(p.c), 0);
    assert_memory_equal(src, dst, sizeof src);
    pair_close(&p);
    nk_tls_ctx_free(cctx);
    nk_tls_ctx_free(sctx);
}

/* ---- client verification -------------------------------------------------------------------- */

static void test_verify_ca_file(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = server_with(F_LEAF, F_LEAF_KEY);
    nk_tls_ctx *cctx = client_with(path_of(F_CA), NULL, 0);
    pair p;
    connect_ok(&p, cctx, "localhost", sctx);
    pair_close(&p);
    connect_ok(&p, cctx, "127.0.0.1", sctx); /* an IP literal is checked as an address */
    assert_null(nk_tls_server_name(p.s));   /* and not sent as SNI */
    pair_close(&p);

    connect_pair(&p, cctx, "other.test", sctx);
    assert_int_equal(p.rc, -EPROTO);
    assert_non_null(strstr(nk_tls_error(p.c), "certificate verify failed"));
    assert_non_null(strstr(nk_tls_error(p.c), "hostname mismatch"));
    pair_close(&p);
    connect_pair(&p, cctx, "127.0.0.2", sctx);
    assert_int_equal(p.rc, -EPROTO);
    assert_non_null(strstr(nk_tls_error(p.c), "IP address mismatch"));
    pair_close(&p);

    /* The name is what makes CA verification mean anything: none, or an empty one, is
     * refused. */
    nk_tls *t = NULL;
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    assert_int_equal(nk_tls_new(cctx, fds[0], NULL, &t), -EINVAL);
    assert_int_equal(nk_tls_new(cctx, fds[0], "", &t), -EINVAL);
    assert_null(t);
    nk_tls_ctx_free(cctx);

    /* Another CA (the system's, which does not know ours). */
    cctx = client_with(NULL, NULL, 0);
    assert_int_equal(nk_tls_new(cctx, fds[0], NULL, &t), -EINVAL);
    connect_pair(&p, cctx, "localhost", sctx);
    assert_int_equal(p.rc, -EPROTO);
    assert_non_null(strstr(nk_tls_error(p.c), "certificate verify failed"));
    pair_close(&p);
    nk_tls_ctx_free(cctx);

    /* Insecure: anything goes, with or without a name. */
    cctx = client_with(NULL, NULL, 1);
    connect_ok(&p, cctx, "other.test", sctx);
    pair_close(&p);
    connect_ok(&p, cctx, NULL, sctx);
    pair_close(&p);
    nk_tls_ctx_free(cctx);

    /* A CA file that is not there. */
    char err[NK_TLS_ERR_MAX] = "";
    nk_tls_client_config cfg = {.size = sizeof cfg, .ca_file = "/nonexistent/ca.pem"};
    nk_tls_ctx *none = NULL;
    assert_int_equal(nk_tls_client_new(&cfg, &none, err, sizeof err), -EPROTO);
    assert_null(none);
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
    close(fds[0]);
    close(fds[1]);
    nk_tls_ctx_free(sctx);
}

static void test_verify_pin(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = server_with(F_LEAF, F_LEAF_KEY);
    pair p;
    /* The right pin, bare, upper case with colons, and without a name. */
    char colons[3 * 32];
    for (int i = 0; i < 32; i++) {
        colons[3 * i] = (char)toupper((unsigned char)certs.fp_leaf[2 * i]);
        colons[3 * i + 1] = (char)toupper((unsigned char)certs.fp_leaf[2 * i + 1]);
        colons[3 * i + 2] = i < 31 ? ':' : '\0';
    }
    const char *pins[] = {certs.fp_leaf, colons};
    for (int i = 0; i < 2; i++) {
        nk_tls_ctx *cctx = client_with(NULL, pins[i], 0);
        connect_ok(&p, cctx, "not-the-name.test", sctx); /* a pin does not check names */
        pair_close(&p);
        connect_ok(&p, cctx, NULL, sctx);
        pair_close(&p);
        nk_tls_ctx_free(cctx);
    }

    /* Another certificate's pin. */
    nk_tls_ctx *cctx = client_with(NULL, certs.fp_other, 0);
    connect_pair(&p, cctx, "localhost", sctx);
    assert_int_equal(p.rc, -EPROTO);
    assert_int_equal(p.rs, -EPROTO);
    assert_non_null(strstr(nk_tls_error(p.c), "certificate"));
    pair_close(&p);
    nk_tls_ctx_free(cctx);

    /* Pins that are not 64 hex digits. */
    char shorter[64], longer[70], nonhex[65];
    snprintf(shorter, sizeof shorter, "%.62s", certs.fp_leaf);
    snprintf(longer, sizeof longer, "%s00", certs.fp_leaf);
    snprintf(nonhex, sizeof nonhex, "%.63sg", certs.fp_leaf);
    const char *bad[] = {"", "xyz", shorter, longer, nonhex};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nk_tls_client_config cfg = {.size = sizeof cfg, .pin_sha256 = bad[i]};
        char err[NK_TLS_ERR_MAX] = "";
        nk_tls_ctx *none = NULL;
        assert_int_equal(nk_tls_client_new(&cfg, &none, err, sizeof err), -EINVAL);
        assert_null(none);
        assert_string_not_equal(err, "");
    }
    nk_tls_ctx_free(sctx);
}

/* A failure after an insecure handshake is reported as what it is, not as the certificate
 * check the client chose to skip. */
static void test_error_after_insecure_handshake(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = server_with(F_LEAF, F_LEAF_KEY);
    nk_tls_ctx *cctx = client_with(NULL, NULL, 1);
    pair p;
    connect_ok(&p, cctx, "other.test", sctx); /* the certificate would not verify */
    char buf[64];
    read_now(p.c, buf, sizeof buf, &(size_t){0}); /* take the session tickets */
    /* A record of garbage written past the TLS layer. */
    const unsigned char junk[] = {0x17, 0x03, 0x03, 0x00, 0x20, 1, 2, 3, 4, 5, 6, 7, 8,
                                  9,    10,   11,   12,   13,   14, 15, 16, 17, 18, 19, 20,
                                  21,   22,   23,   24,   25,   26, 27, 28, 29, 30, 31, 32};
    assert_int_equal(write(p.fd[1], junk, sizeof junk), (ssize_t)sizeof junk);
    assert_true(wait_readable(p.fd[0]) > 0);
    assert_int_equal(nk_tls_read(p.c, buf, sizeof buf), -EPROTO);
    assert_string_not_equal(nk_tls_error(p.c), "");
    assert_null(strstr(nk_tls_error(p.c), "certificate"));
    pair_close(&p);
    nk_tls_ctx_free(cctx);
    nk_tls_ctx_free(sctx);
}

/* Handshakes that meet something else than TLS: a peer that goes away (-ECONNRESET), plain
 * HTTP (-EPROTO with a reason). */
static void test_handshake_failures(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = server_with(F_LEAF, F_LEAF_KEY);
    nk_tls_ctx *cctx = client_with(NULL, NULL, 1);
    pair p;
    pair_socketpair(&p);
    assert_int_equal(nk_tls_new(cctx, p.fd[0], "localhost", &p.c), 0);
    assert_int_equal(nk_tls_handshake(p.c), -EAGAIN); /* the ClientHello is out */
    assert_int_equal(nk_tls_want(p.c), NK_READ);
    close(p.fd[1]);
    p.fd[1] = -1;
    assert_int_equal(nk_tls_handshake(p.c), -ECONNRESET);
    assert_string_not_equal(nk_tls_error(p.c), "");
    pair_close(&p);

    pair_socketpair(&p);
    assert_int_equal(nk_tls_new(sctx, p.fd[1], NULL, &p.s), 0);
    const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    assert_int_equal(write(p.fd[0], req, sizeof req - 1), (ssize_t)sizeof req - 1);
    assert_int_equal(nk_tls_handshake(p.s), -EPROTO);
    assert_string_not_equal(nk_tls_error(p.s), "");
    pair_close(&p);
    nk_tls_ctx_free(cctx);
    nk_tls_ctx_free(sctx);
}

/* ---- certificate files ---------------------------------------------------------------------- */

static void test_add_cert_errors(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = NULL;
    char err[NK_TLS_ERR_MAX] = "";
    assert_int_equal(nk_tls_server_new(&sctx, err, sizeof err), 0);
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.pem", certs.dir);

    assert_int_equal(nk_tls_ctx_add_cert(sctx, missing, path_of(F_LEAF_KEY), err, sizeof err),
                     -ENOENT);
    assert_non_null(strstr(err, "missing.pem"));
    err[0] = '\0';
    assert_int_equal(nk_tls_ctx_add_cert(sctx, path_of(F_LEAF), missing, err, sizeof err),
                     -ENOENT);
    assert_non_null(strstr(err, "missing.pem"));
    err[0] = '\0';
    assert_int_equal(
        nk_tls_ctx_add_cert(sctx, path_of(F_GARBAGE), path_of(F_LEAF_KEY), err, sizeof err),
        -EPROTO);
    assert_non_null(strstr(err, "garbage.pem"));
    err[0] = '\0';
    assert_int_equal(
        nk_tls_ctx_add_cert(sctx, path_of(F_LEAF), path_of(F_GARBAGE), err, sizeof err),
        -EPROTO);
    assert_string_not_equal(err, "");
    err[0] = '\0';
    /* A key file holding a certificate, not a key. */
    assert_int_equal(nk_tls_ctx_add_cert(sctx, path_of(F_LEAF), path_of(F_LEAF), err, sizeof err),
                     -EPROTO);
    assert_string_not_equal(err, "");
    err[0] = '\0';
    /* Keys of other certificates, of the same type and of another. */
    assert_int_equal(
        nk_tls_ctx_add_cert(sctx, path_of(F_LEAF), path_of(F_CHAIN_KEY), err, sizeof err),
        -EPROTO);
    assert_non_null(strstr(err, "does not match"));
    err[0] = '\0';
    assert_int_equal(
        nk_tls_ctx_add_cert(sctx, path_of(F_LEAF), path_of(F_OTHER_KEY), err, sizeof err),
        -EPROTO);
    assert_non_null(strstr(err, "does not match"));
    assert_int_equal(nk_tls_ctx_ncerts(sctx), 0);
    /* Without err. */
    assert_int_equal(nk_tls_ctx_add_cert(sctx, missing, missing, NULL, 0), -ENOENT);
    assert_int_equal(nk_tls_ctx_add_cert(sctx, path_of(F_GARBAGE), path_of(F_LEAF_KEY), NULL, 0),
                     -EPROTO);

    /* A client context holds no certificates. */
    nk_tls_ctx *cctx = client_with(NULL, NULL, 1);
    assert_int_equal(
        nk_tls_ctx_add_cert(cctx, path_of(F_LEAF), path_of(F_LEAF_KEY), err, sizeof err),
        -EINVAL);
    nk_tls_ctx_free(cctx);
    nk_tls_ctx_free(sctx);
}

static void test_chain_served_whole(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = server_with(F_CHAIN, F_CHAIN_KEY);
    assert_int_equal(nk_tls_ctx_ncerts(sctx), 1);
    /* The client trusts only the root: it needs the intermediate from the server. */
    nk_tls_ctx *cctx = client_with(path_of(F_CA), NULL, 0);
    pair p;
    connect_ok(&p, cctx, "localhost", sctx);
    char text[4096];
    assert_int_equal(nk_tls_peer_chain(p.c, text, sizeof text), 2);
    assert_non_null(strstr(text, "chain leaf"));
    assert_non_null(strstr(text, "netkit test intermediate"));
    assert_non_null(strstr(text, certs.fp_chain));
    char fp[NK_TLS_FP_HEX];
    assert_int_equal(nk_tls_peer_fingerprint(p.c, fp), 0);
    assert_string_equal(fp, certs.fp_chain);
    /* Truncated to the buffer, still terminated, still counted. */
    char small[10];
    memset(small, 'x', sizeof small);
    assert_int_equal(nk_tls_peer_chain(p.c, small, sizeof small), 2);
    assert_int_equal(strlen(small), sizeof small - 1);
    pair_close(&p);
    nk_tls_ctx_free(cctx);
    nk_tls_ctx_free(sctx);
}

/* ---- SNI ------------------------------------------------------------------------------------ */

static void expect_cert(nk_tls_ctx *cctx, const char *name, nk_tls_ctx *sctx, const char *fp)
{
    pair p;
    connect_ok(&p, cctx, name, sctx);
    char seen[NK_TLS_FP_HEX] = "";
    assert_int_equal(nk_tls_peer_fingerprint(p.c, seen), 0);
    if (strcmp(seen, fp) != 0)
        fail_msg("SNI %s: got certificate %s, want %s", name ? name : "(none)", seen, fp);
    if (name)
        assert_string_equal(nk_tls_server_name(p.s), name);
    else
        assert_null(nk_tls_server_name(p.s));
    pair_close(&p);
}

static void test_sni(void **state)
{
    (void)state;
    /* The default is EC, the second RSA: the name must choose, not the key type. */
    nk_tls_ctx *sctx = server_with(F_LEAF, F_LEAF_KEY);
    char err[NK_TLS_ERR_MAX] = "", wild[NK_TLS_FP_HEX] = "";
    assert_int_equal(
        nk_tls_ctx_add_cert(sctx, path_of(F_OTHER), path_of(F_OTHER_KEY), err, sizeof err), 0);
    const char *names[] = {"*.wild.test"};
    assert_int_equal(nk_tls_ctx_add_self_signed(sctx, names, 1, wild, err, sizeof err), 0);
    assert_int_equal(nk_tls_ctx_ncerts(sctx), 3);

    nk_tls_ctx *cctx = client_with(NULL, NULL, 1);
    expect_cert(cctx, "other.test", sctx, certs.fp_other);
    expect_cert(cctx, "OTHER.test", sctx, certs.fp_other);
    expect_cert(cctx, "unknown.test", sctx, certs.fp_leaf);
    expect_cert(cctx, "localhost", sctx, certs.fp_leaf);
    expect_cert(cctx, NULL, sctx, certs.fp_leaf);
    expect_cert(cctx, "a.wild.test", sctx, wild);
    expect_cert(cctx, "a.b.wild.test", sctx, certs.fp_leaf); /* one label only */
    expect_cert(cctx, "other.test", sctx, certs.fp_other);  /* the choice is per connection */
    nk_tls_ctx_free(cctx);

    /* A verifying client accepts what SNI chose. */
    cctx = client_with(path_of(F_CA), NULL, 0);
    expect_cert(cctx, "other.test", sctx, certs.fp_other);
    expect_cert(cctx, "localhost", sctx, certs.fp_leaf);
    nk_tls_ctx_free(cctx);
    nk_tls_ctx_free(sctx);
}

/* ---- ALPN ----------------------------------------------------------------------------------- */

static void test_alpn(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = server_with(F_LEAF, F_LEAF_KEY);
    const char *server_protos[] = {"h2", "http/1.1"};
    assert_int_equal(nk_tls_ctx_set_alpn(sctx, server_protos, 2), 0);
    pair p;

    nk_tls_ctx *cctx = client_with(NULL, certs.fp_leaf, 0);
    const char *http1[] = {"http/1.1"};
    assert_int_equal(nk_tls_ctx_set_alpn(cctx, http1, 1), 0);
    connect_ok(&p, cctx, "localhost", sctx);
    assert_alpn(p.c, "http/1.1");
    assert_alpn(p.s, "http/1.1");
    pair_close(&p);

    /* The server's preference wins. */
    const char *both[] = {"http/1.1", "h2"};
    assert_int_equal(nk_tls_ctx_set_alpn(cctx, both, 2), 0);
    connect_ok(&p, cctx, "localhost", sctx);
    assert_alpn(p.c, "h2");
    assert_alpn(p.s, "h2");
    pair_close(&p);

    /* Only protocols the server does not speak: no_application_protocol. */
    const char *x[] = {"x"};
    assert_int_equal(nk_tls_ctx_set_alpn(cctx, x, 1), 0);
    connect_pair(&p, cctx, "localhost", sctx);
    assert_int_equal(p.rs, -EPROTO);
    assert_int_equal(p.rc, -EPROTO);
    assert_non_null(strstr(nk_tls_error(p.c), "application protocol"));
    pair_close(&p);

    /* None offered: no ALPN, "" of length 0. */
    assert_int_equal(nk_tls_ctx_set_alpn(cctx, NULL, 0), 0);
    connect_ok(&p, cctx, "localhost", sctx);
    assert_alpn(p.c, "");
    assert_alpn(p.s, "");
    pair_close(&p);
    nk_tls_ctx_free(sctx);

    /* A server without ALPN ignores what the client offers. */
    sctx = server_with(F_LEAF, F_LEAF_KEY);
    assert_int_equal(nk_tls_ctx_set_alpn(cctx, both, 2), 0);
    connect_ok(&p, cctx, "localhost", sctx);
    assert_alpn(p.c, "");
    pair_close(&p);

    /* Names that do not fit the wire format. */
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *bad1[] = {""}, *bad2[] = {longname};
    assert_int_equal(nk_tls_ctx_set_alpn(cctx, bad1, 1), -EINVAL);
    assert_int_equal(nk_tls_ctx_set_alpn(cctx, bad2, 1), -EINVAL);
    assert_int_equal(nk_tls_ctx_set_alpn(cctx, NULL, 1), -EINVAL);
    nk_tls_ctx_free(cctx);
    nk_tls_ctx_free(sctx);
}

/* ---- session tickets ------------------------------------------------------------------------ */

static const unsigned char secret_a[48] = "a shared secret for every worker of one server..";
static const unsigned char secret_b[48] = "another server's secret, not the same as the 1st";

static nk_tls_ctx *server_with_secret(const void *secret, size_t len)
{
    nk_tls_ctx *ctx = server_with(F_LEAF, F_LEAF_KEY);
    if (secret)
        assert_int_equal(nk_tls_ctx_set_ticket_secret(ctx, secret, len, 0), 0);
    return ctx;
}

/* A first connection to sctx; its session (after the data that brings the tickets) goes into
 * sess, *len its length. */
static void first_visit(nk_tls_ctx *cctx, nk_tls_ctx *sctx, unsigned char *sess, size_t *len)
{
    pair p;
    connect_ok(&p, cctx, "localhost", sctx);
    /* TLS 1.3: the tickets come after the handshake; nothing to save yet. */
    assert_int_equal(nk_tls_session_save(p.c, sess, *len), 0);
    assert_int_equal(nk_tls_write(p.s, "hi", 2), 2);
    char buf[2];
    read_exact(p.c, p.fd[0], buf, 2);
    ssize_t need = nk_tls_session_save(p.c, NULL, 0);
    assert_true(need > 0 && (size_t)need <= *len);
    /* Too small a buffer: the size, nothing written. */
    memset(sess, 0xee, *len);
    assert_int_equal(nk_tls_session_save(p.c, sess, (size_t)need - 1), need);
    assert_int_equal(sess[0], 0xee);
    assert_int_equal(nk_tls_session_save(p.c, sess, *len), need);
    *len = (size_t)need;
    /* A server connection has no session to save. */
    assert_int_equal(nk_tls_session_save(p.s, NULL, 0), -EINVAL);
    pair_close(&p);
}

/* A second connection offering sess; returns whether both sides say it resumed. */
static int second_visit(nk_tls_ctx *cctx, nk_tls_ctx *sctx, const unsigned char *sess,
                        size_t len)
{
    pair p;
    pair_socketpair(&p);
    assert_int_equal(nk_tls_new(cctx, p.fd[0], "localhost", &p.c), 0);
    assert_int_equal(nk_tls_new(sctx, p.fd[1], NULL, &p.s), 0);
    assert_int_equal(nk_tls_session_load(p.c, sess, len), 0);
    assert_int_equal(nk_tls_session_load(p.s, sess, len), -EINVAL); /* servers load none */
    drive(&p);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.rs, 0);
    int resumed = nk_tls_resumed(p.c);
    assert_int_equal(nk_tls_resumed(p.s), resumed);
    char fp[NK_TLS_FP_HEX] = "";
    assert_int_equal(nk_tls_peer_fingerprint(p.c, fp), 0); /* kept in the session */
    assert_string_equal(fp, certs.fp_leaf);
    /* It is usable after a resumption too. */
    assert_int_equal(nk_tls_write(p.c, "ok", 2), 2);
    char buf[2];
    read_exact(p.s, p.fd[1], buf, 2);
    /* Too late to offer a session. */
    assert_int_equal(nk_tls_session_load(p.c, sess, len), -EINVAL);
    pair_close(&p);
    return resumed;
}

static void test_tickets(void **state)
{
    (void)state;
    nk_tls_ctx *a = server_with_secret(secret_a, sizeof secret_a);
    nk_tls_ctx *b = server_with_secret(secret_a, sizeof secret_a);
    nk_tls_ctx *other = server_with_secret(secret_b, sizeof secret_b);
    nk_tls_ctx *random1 = server_with_secret(NULL, 0), *random2 = server_with_secret(NULL, 0);
    nk_tls_ctx *cctx = client_with(path_of(F_CA), NULL, 0);
    unsigned char sess[8192];
    size_t len = sizeof sess;

    first_visit(cctx, a, sess, &len);
    assert_int_equal(second_visit(cctx, a, sess, len), 1);
    assert_int_equal(second_visit(cctx, b, sess, len), 1);     /* another process, same secret */
    assert_int_equal(second_visit(cctx, other, sess, len), 0); /* a full handshake instead */

    /* Without a secret: each context its own. */
    len = sizeof sess;
    first_visit(cctx, random1, sess, &len);
    assert_int_equal(second_visit(cctx, random1, sess, len), 1);
    assert_int_equal(second_visit(cctx, random2, sess, len), 0);

    /* A long secret works as well (at least 32 bytes: no upper limit). */
    unsigned char long_secret[200];
    fill(long_secret, sizeof long_secret, 5);
    nk_tls_ctx *l1 = server_with_secret(long_secret, sizeof long_secret);
    nk_tls_ctx *l2 = server_with_secret(long_secret, sizeof long_secret);
    len = sizeof sess;
    first_visit(cctx, l1, sess, &len);
    assert_int_equal(second_visit(cctx, l2, sess, len), 1);
    long_secret[150] ^= 1; /* every byte counts */
    nk_tls_ctx *l3 = server_with_secret(long_secret, sizeof long_secret);
    assert_int_equal(second_visit(cctx, l3, sess, len), 0);

    /* Secrets too short, a client context, garbage for a session. */
    assert_int_equal(nk_tls_ctx_set_ticket_secret(a, secret_a, 31, 0), -EINVAL);
    assert_int_equal(nk_tls_ctx_set_ticket_secret(cctx, secret_a, sizeof secret_a, 0), -EINVAL);
    pair p;
    pair_socketpair(&p);
    assert_int_equal(nk_tls_new(cctx, p.fd[0], "localhost", &p.c), 0);
    assert_int_equal(nk_tls_session_load(p.c, "garbage", 7), -EINVAL);
    assert_int_equal(nk_tls_session_load(p.c, sess, 10), -EINVAL);
    pair_close(&p);

    nk_tls_ctx *all[] = {a, b, other, random1, random2, l1, l2, l3, cctx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        nk_tls_ctx_free(all[i]);
}

/* ---- protocol versions ---------------------------------------------------------------------- */

/* A bare OpenSSL client limited to versions [min, max] and, when not NULL, TLS 1.2 ciphers;
 * returns the handshake results (client, server), and the server's protocol on success. */
static void raw_client(nk_tls_ctx *sctx, int min, int max, const char *ciphers, int *rc,
                       int *rs, char *version, size_t vlen)
{
    SSL_CTX *rctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(rctx);
    /* Security level 0, so that the refusal comes from the server, not from this client. */
    SSL_CTX_set_security_level(rctx, 0);
    assert_int_equal(SSL_CTX_set_min_proto_version(rctx, min), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(rctx, max), 1);
    assert_int_equal(SSL_CTX_set_cipher_list(rctx, ciphers ? ciphers : "ALL:@SECLEVEL=0"), 1);
    SSL_CTX_set_verify(rctx, SSL_VERIFY_NONE, NULL);
    pair p;
    pair_socketpair(&p);
    SSL *raw = SSL_new(rctx);
    assert_non_null(raw);
    assert_int_equal(SSL_set_fd(raw, p.fd[0]), 1);
    SSL_set_connect_state(raw);
    assert_int_equal(nk_tls_new(sctx, p.fd[1], NULL, &p.s), 0);
    side c = {.raw = raw, .fd = p.fd[0]}, s = {.t = p.s, .fd = p.fd[1]};
    drive_sides(&c, &s, rc, rs);
    snprintf(version, vlen, "%s", *rs == 0 ? nk_tls_version(p.s) : "");
    if (*rs == 0)
        assert_string_equal(nk_tls_cipher(p.s), SSL_get_cipher_name(raw));
    SSL_free(raw);
    SSL_CTX_free(rctx);
    pair_close(&p);
}

static void test_versions(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = server_with(F_LEAF, F_LEAF_KEY);
    char version[32];
    int rc, rs;

    raw_client(sctx, TLS1_VERSION, TLS1_1_VERSION, NULL, &rc, &rs, version, sizeof version);
    assert_int_equal(rs, -EPROTO);
    assert_int_not_equal(rc, 0);
    raw_client(sctx, TLS1_VERSION, TLS1_VERSION, NULL, &rc, &rs, version, sizeof version);
    assert_int_equal(rs, -EPROTO);

    /* TLS 1.2 with forward-secret AEAD suites only. */
    raw_client(sctx, TLS1_2_VERSION, TLS1_2_VERSION, NULL, &rc, &rs, version, sizeof version);
    assert_int_equal(rc, 0);
    assert_int_equal(rs, 0);
    assert_string_equal(version, "TLSv1.2");
    raw_client(sctx, TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA", &rc, &rs, version,
               sizeof version); /* CBC */
    assert_int_equal(rs, -EPROTO);
    raw_client(sctx, TLS1_2_VERSION, TLS1_2_VERSION, "AES128-GCM-SHA256", &rc, &rs, version,
               sizeof version); /* RSA key exchange */
    assert_int_equal(rs, -EPROTO);
    raw_client(sctx, TLS1_2_VERSION, TLS1_3_VERSION, NULL, &rc, &rs, version, sizeof version);
    assert_int_equal(rs, 0);
    assert_string_equal(version, "TLSv1.3");
    nk_tls_ctx_free(sctx);
}

/* ---- lifetimes ------------------------------------------------------------------------------ */

/* A connection keeps its context: the caller may drop its own reference first (under
 * AddressSanitizer a use after free or a leaked context fails this test). */
static void test_ctx_refs(void **state)
{
    (void)state;
    nk_tls_ctx *sctx = server_with(F_LEAF, F_LEAF_KEY);
    char err[NK_TLS_ERR_MAX];
    assert_int_equal(
        nk_tls_ctx_add_cert(sctx, path_of(F_OTHER), path_of(F_OTHER_KEY), err, sizeof err), 0);
    const char *alpn[] = {"http/1.1"};
    assert_int_equal(nk_tls_ctx_set_alpn(sctx, alpn, 1), 0);
    nk_tls_ctx *cctx = client_with(NULL, certs.fp_other, 0);
    assert_int_equal(nk_tls_ctx_set_alpn(cctx, alpn, 1), 0);

    assert_ptr_equal(nk_tls_ctx_ref(sctx), sctx);
    nk_tls_ctx_free(sctx); /* back to one */
    assert_null(nk_tls_ctx_ref(NULL));
    nk_tls_ctx_free(NULL);

    pair p;
    pair_socketpair(&p);
    assert_int_equal(nk_tls_new(cctx, p.fd[0], "other.test", &p.c), 0);
    assert_int_equal(nk_tls_new(sctx, p.fd[1], NULL, &p.s), 0);
    nk_tls_ctx_free(sctx);
    nk_tls_ctx_free(cctx);
    /* SNI, ALPN, tickets and the pin all read the contexts now held only by connections. */
    drive(&p);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.rs, 0);
    assert_alpn(p.c, "http/1.1");
    char fp[NK_TLS_FP_HEX];
    assert_int_equal(nk_tls_peer_fingerprint(p.c, fp), 0);
    assert_string_equal(fp, certs.fp_other);
    assert_int_equal(nk_tls_write(p.s, "x", 1), 1);
    read_exact(p.c, p.fd[0], fp, 1);
    pair_close(&p);

    nk_tls_free(NULL);
}

/* Bad arguments that must not crash. */
static void test_arguments(void **state)
{
    (void)state;
    char err[NK_TLS_ERR_MAX];
    assert_int_equal(nk_tls_server_new(NULL, err, sizeof err), -EINVAL);
    assert_int_equal(nk_tls_client_new(NULL, NULL, err, sizeof err), -EINVAL);
    nk_tls_ctx *cctx = NULL;
    assert_int_equal(nk_tls_client_new(NULL, &cctx, NULL, 0), 0); /* the system's CAs */
    nk_tls *t = NULL;
    assert_int_equal(nk_tls_new(cctx, -1, "localhost", &t), -EINVAL);
    assert_int_equal(nk_tls_new(NULL, 0, "localhost", &t), -EINVAL);
    assert_int_equal(nk_tls_ctx_ncerts(NULL), 0);
    assert_int_equal(nk_tls_ctx_ncerts(cctx), 0);
    nk_tls_ctx_free(cctx);
    /* The config's size (docs/library.md, "Config structs"). */
    nk_tls_client_config cfg;
    nk_tls_client_config_init(&cfg);
    cfg.size = 0;
    cctx = NULL;
    assert_int_equal(nk_tls_client_new(&cfg, &cctx, err, sizeof err), -EINVAL);
    struct {
        nk_tls_client_config known;
        uint64_t later;
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.known.size = sizeof newer;
    newer.later = 1;
    assert_int_equal(nk_tls_client_new(&newer.known, &cctx, err, sizeof err), -E2BIG);
    assert_null(cctx);
    /* An older caller, compiled before insecure existed: what lies there is not read. */
    cfg.size = offsetof(nk_tls_client_config, insecure);
    cfg.insecure = 1;
    cfg.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(nk_tls_client_new(&cfg, &cctx, err, sizeof err), -EPROTO);
    cfg.size = sizeof cfg;
    assert_int_equal(nk_tls_client_new(&cfg, &cctx, err, sizeof err), 0);
    nk_tls_ctx_free(cctx);
}

static void test_ktls_available(void **state)
{
    (void)state;
    char why[200];
    memset(why, 'x', sizeof why);
    int r = nk_tls_ktls_available(why, sizeof why);
    assert_true(r == 0 || r == 1);
    assert_non_null(memchr(why, '\0', sizeof why));
    if (r == 0)
        assert_true(strlen(why) > 0);
    else
        assert_string_equal(why, "");
    assert_int_equal(nk_tls_ktls_available(NULL, 0), r);
    char tiny[4];
    assert_int_equal(nk_tls_ktls_available(tiny, sizeof tiny), r);
    assert_true(strlen(tiny) < sizeof tiny);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* a write to a closed peer is an error, not a death */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_signed),
        cmocka_unit_test(test_self_signed_long_name),
        cmocka_unit_test(test_read_write_both_ways),
        cmocka_unit_test(test_writev_joins_pieces),
        cmocka_unit_test(test_large_write_retried),
        cmocka_unit_test(test_sendfile),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_verify_ca_file),
        cmocka_unit_test(test_verify_pin),
        cmocka_unit_test(test_error_after_insecure_handshake),
        cmocka_unit_test(test_handshake_failures),
        cmocka_unit_test(test_add_cert_errors),
        cmocka_unit_test(test_chain_served_whole),
        cmocka_unit_test(test_sni),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_tickets),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_ctx_refs),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_ktls_available),
    };
    return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
