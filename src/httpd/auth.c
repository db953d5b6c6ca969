/* HTTP Basic authentication (RFC 7617) and the password hashes of an auth file.
 *
 * Plain passwords (given on the command line) are compared as SHA-256 digests with
 * CRYPTO_memcmp, so neither the comparison's time nor a length difference says how much of a
 * guess was right. Hashed passwords use PBKDF2-HMAC-SHA256, which is deliberately slow (tens
 * of milliseconds); to keep that cost off every request of a client that authenticates again
 * and again, the SHA-256 of a credential that passed is kept in a small per-server table and
 * later requests with the same credential are matched against it. The hash itself is
 * computed in the server's job thread (commit.c), never on the loop, so wrong guesses do not
 * stall other clients; an unknown user name costs the same hash (against a stand-in), so
 * timing does not tell which names exist; and a client address that keeps failing is
 * answered 429 for a while without any check.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define HASH_PREFIX "pbkdf2-sha256$"
#define HASH_LEN 32
#define ITER_MIN 1000
#define ITER_MAX 10000000u
#define SALT_MAX 64
#define CRED_MAX 1024 /* decoded user:password; longer credentials are refused */

static int b64_decode(const char *in, size_t len, unsigned char *out, size_t outmax)
{
    /* EVP_DecodeBlock counts padding as zero bytes of output; take them off again. */
    if (len == 0 || len % 4 != 0 || len / 4 * 3 > outmax)
        return -EINVAL;
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0)
        return -EINVAL;
    if (in[len - 1] == '=')
        n--;
    if (in[len - 2] == '=')
        n--;
    return n;
}

int nk_httpd_auth_hash(const char *password, size_t len, unsigned iterations,
                       const unsigned char *salt, size_t saltlen, char *out, size_t outlen)
{
    if (iterations < ITER_MIN || iterations > ITER_MAX || saltlen == 0 || saltlen > SALT_MAX ||
        len > CRED_MAX)
        return -EINVAL;
    unsigned char dk[HASH_LEN];
    if (!PKCS5_PBKDF2_HMAC(password, (int)len, salt, (int)saltlen, (int)iterations, EVP_sha256(),
                           HASH_LEN, dk))
        return -EIO;
    char salt64[SALT_MAX / 3 * 4 + 8], dk64[HASH_LEN / 3 * 4 + 8];
    EVP_EncodeBlock((unsigned char *)salt64, salt, (int)saltlen);
    EVP_EncodeBlock((unsigned char *)dk64, dk, HASH_LEN);
    int n = snprintf(out, outlen, HASH_PREFIX "%u$%s$%s", iterations, salt64, dk64);
    if (n < 0 || (size_t)n >= outlen)
        return -ENOSPC;
    return n;
}

int nk_httpd_auth_verify(const char *hash, const char *password, size_t len)
{
    if (strncmp(hash, HASH_PREFIX, sizeof HASH_PREFIX - 1) != 0)
        return -EINVAL;
    const char *p = hash + sizeof HASH_PREFIX - 1;
    char *end;
    if (*p < '0' || *p > '9')
        return -EINVAL;
    unsigned long iter = strtoul(p, &end, 10);
    if (*end != '$' || iter < ITER_MIN || iter > ITER_MAX)
        return -EINVAL;
    const char *salt64 = end + 1;
    const char *dollar = strchr(salt64, '$');
    if (!dollar)
        return -EINVAL;
    unsigned char salt[SALT_MAX + 3], want[HASH_LEN + 3], got[HASH_LEN];
    int saltlen = b64_decode(salt64, (size_t)(dollar - salt64), salt, sizeof salt);
    int wantlen = b64_decode(dollar + 1, strlen(dollar + 1), want, sizeof want);
    if (saltlen <= 0 || saltlen > SALT_MAX || wantlen != HASH_LEN)
        return -EINVAL;
    if (len > CRED_MAX)
        return 0;
    if (!PKCS5_PBKDF2_HMAC(password, (int)len, salt, saltlen, (int)iter, EVP_sha256(), HASH_LEN,
                           got))
        return -EINVAL;
    return CRYPTO_memcmp(got, want, HASH_LEN) == 0;
}

static void sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    if (!EVP_Digest(p, n, out, &len, EVP_sha256(), NULL))
        memset(out, 0, 32);
}

int nk__auth_needed(const nk_httpd *srv, const nk_http_request *req)
{
    if (srv->cfg.nusers == 0)
        return 0;
    if (!srv->cfg.upload || srv->cfg.echo)
        return 1;
    /* With --upload, credentials guard the writes; reads stay public. */
    return req->method == NK_HTTP_PUT || req->method == NK_HTTP_DELETE ||
           req->method == NK_HTTP_POST;
}

/* ---- failed attempts per client ------------------------------------------------------------ */

/* A client address that presented wrong credentials this often within the window is
 * answered 429 without any check until the window ends: guessing stays slow even with a
 * cheap plain password, and a flood of bad guesses costs the worker nothing. */
#define FAIL_MAX 10
#define FAIL_WINDOW_MS 60000

static struct nk__auth_fails *fail_slot(nk_httpd *srv, const nk__conn *c)
{
    uint32_t h = 2166136261u; /* FNV-1a of the address: a fixed-size table, no allocation */
    for (size_t i = 0; i < sizeof c->peer_ip; i++)
        h = (h ^ c->peer_ip[i]) * 16777619u;
    return &srv->auth_fails[h % (sizeof srv->auth_fails / sizeof srv->auth_fails[0])];
}

static int same_client(const struct nk__auth_fails *f, const nk__conn *c)
{
    return f->family == c->peer_family && memcmp(f->ip, c->peer_ip, sizeof f->ip) == 0;
}

static int too_many_failures(nk_httpd *srv, const nk__conn *c)
{
    const struct nk__auth_fails *f = fail_slot(srv, c);
    return same_client(f, c) && f->fails >= FAIL_MAX &&
           nk_loop_now(srv->loop) - f->since_ms < FAIL_WINDOW_MS;
}

static void note_failure(nk_httpd *srv, const nk__conn *c)
{
    struct nk__auth_fails *f = fail_slot(srv, c);
    uint64_t now = nk_loop_now(srv->loop);
    if (!same_client(f, c) || now - f->since_ms >= FAIL_WINDOW_MS) {
        memcpy(f->ip, c->peer_ip, sizeof f->ip);
        f->family = c->peer_family;
        f->fails = 0;
        f->since_ms = now;
    }
    f->fails++;
}

/* ---- checking credentials ------------------------------------------------------------------- */

static int cache_has(const nk_httpd *srv, const unsigned char digest[32])
{
    for (size_t i = 0; i < sizeof srv->auth_cache / sizeof srv->auth_cache[0]; i++)
        if (CRYPTO_memcmp(srv->auth_cache[i], digest, 32) == 0)
            return 1;
    return 0;
}

static void cache_add(nk_httpd *srv, const unsigned char digest[32])
{
    unsigned slot = srv->auth_cache_next++ % (sizeof srv->auth_cache / sizeof srv->auth_cache[0]);
    memcpy(srv->auth_cache[slot], digest, 32);
}

/* A password hash (PBKDF2, tens of milliseconds by design) checked in the job thread, so
 * wrong guesses never stall the other clients of the worker. */
typedef struct auth_job {
    nk__job job;
    nk_httpd *srv;
    const char *hash;        /* the user's (the config outlives the engine) */
    int stand_in;            /* unknown user: same work, verdict always "no" */
    int result;
    unsigned char digest[32];
    size_t plen;
    char pass[CRED_MAX];
} auth_job;

static void auth_work(nk__job *job)
{
    auth_job *aj = (auth_job *)job;
    aj->result = nk_httpd_auth_verify(aj->hash, aj->pass, aj->plen) == 1 && !aj->stand_in;
    OPENSSL_cleanse(aj->pass, sizeof aj->pass);
}

static void auth_done(nk__job *job)
{
    auth_job *aj = (auth_job *)job;
    nk__conn *c = job->conn;
    int ok = aj->result;
    if (ok)
        cache_add(aj->srv, aj->digest);
    free(aj);
    if (c) {
        c->x->auth_verdict = ok ? NK__AUTH_OK : NK__AUTH_FAILED;
        nk__conn_resume(c); /* processes the head again, which now finds the verdict */
    }
}

/* The first hashed user's hash: an unknown name is checked against it (with the verdict
 * forced to "no"), so a name that exists and one that does not take the same time. */
static const char *stand_in_hash(const nk_httpd *srv)
{
    for (size_t i = 0; i < srv->cfg.nusers; i++)
        if (srv->cfg.users[i].hash)
            return srv->cfg.users[i].hash;
    return NULL;
}

/* Verify pass against hash in the job thread. Returns -EINPROGRESS, or the verdict (0 or
 * 401) when it had to be done here (no thread could be started). */
static int verify_off_loop(nk__conn *c, const char *hash, int stand_in, const char *pass,
                           size_t plen, const unsigned char digest[32])
{
    nk_httpd *srv = c->srv;
    auth_job *aj = calloc(1, sizeof *aj);
    if (aj) {
        aj->srv = srv;
        aj->hash = hash;
        aj->stand_in = stand_in;
        memcpy(aj->digest, digest, 32);
        memcpy(aj->pass, pass, plen);
        aj->plen = plen;
        aj->job.work = auth_work;
        aj->job.done = auth_done;
        if (nk__job_submit(c, &aj->job) == 0)
            return -EINPROGRESS;
        OPENSSL_cleanse(aj->pass, sizeof aj->pass);
        free(aj);
    }
    int ok = nk_httpd_auth_verify(hash, pass, plen) == 1 && !stand_in;
    if (ok) {
        cache_add(srv, digest);
        return 0;
    }
    note_failure(srv, c);
    return 401;
}

static int check_cred(nk__conn *c, const char *cred, size_t len, const unsigned char digest[32])
{
    nk_httpd *srv = c->srv;
    const char *colon = memchr(cred, ':', len);
    size_t nlen = (size_t)(colon - cred);
    const char *pass = colon + 1;
    size_t plen = len - nlen - 1;
    const nk_httpd_user *user = NULL;
    for (size_t i = 0; i < srv->cfg.nusers && !user; i++) {
        const nk_httpd_user *u = &srv->cfg.users[i];
        if (strlen(u->name) == nlen && memcmp(u->name, cred, nlen) == 0)
            user = u;
    }
    if (user && user->password) {
        /* Compared as digests: neither the time nor a length difference tells how much of a
         * guess was right. */
        unsigned char a[32], b[32];
        sha256(pass, plen, a);
        sha256(user->password, strlen(user->password), b);
        if (CRYPTO_memcmp(a, b, 32) == 0)
            return 0;
        note_failure(srv, c);
        return 401;
    }
    if (user && user->hash && cache_has(srv, digest))
        return 0;
    const char *hash = user && user->hash ? user->hash : stand_in_hash(srv);
    if (!hash) {
        note_failure(srv, c); /* plain passwords only, and no such user */
        return 401;
    }
    return verify_off_loop(c, hash, !(user && user->hash), pass, plen, digest);
}

/* 0, 401, 429, or -EINPROGRESS while a hash is checked off the loop (verify_off_loop). */
static int auth_status(nk__conn *c, const nk_http_request *req)
{
    nk_httpd *srv = c->srv;
    if (srv->cfg.nusers == 0)
        return 0;
    if (c->x->auth_verdict) {
        /* The verdict of the check made off the loop for this very head. */
        int ok = c->x->auth_verdict == NK__AUTH_OK;
        c->x->auth_verdict = NK__AUTH_NONE;
        if (ok)
            return 0;
        note_failure(srv, c);
        return 401;
    }
    const nk_http_header *h = nk_http_find_header(req, "Authorization");
    if (!h)
        return 401; /* asked for the first time: not a failed attempt */
    if (too_many_failures(srv, c))
        return 429;
    /* RFC 7617 section 2: credentials = "Basic" 1*SP token68 (user-id ":" password, base64);
     * the scheme name is case-insensitive (RFC 9110 section 11.1). */
    const char *p = h->value.p;
    size_t len = h->value.len;
    unsigned char cred[CRED_MAX + 4] = {0};
    int n = -1;
    if (len >= 7 && strncasecmp(p, "Basic ", 6) == 0) {
        p += 6;
        len -= 6;
        while (len && *p == ' ') {
            p++;
            len--;
        }
        n = b64_decode(p, len, cred, sizeof cred - 1);
    }
    if (n <= 0 || !memchr(cred, ':', (size_t)n)) {
        note_failure(srv, c);
        return 401;
    }
    unsigned char digest[32];
    sha256(cred, (size_t)n, digest);
    int st = check_cred(c, (const char *)cred, (size_t)n, digest);
    OPENSSL_cleanse(cred, sizeof cred);
    return st;
}

nk__outcome nk__auth_check(nk__conn *c, const nk_http_request *req, nk__status *status)
{
    int st = auth_status(c, req);
    if (st == -EINPROGRESS)
        return NK__WAIT;
    *status = st;
    return NK__DONE;
}
