/* HTTP Basic authentication (RFC 7617) and the password hashes of an auth file.
 *
 * Plain passwords (given on the command line) are compared as SHA-256 digests with
 * CRYPTO_memcmp, so neither the comparison's time nor a length difference says how much of a
 * guess was right. Hashed passwords use PBKDF2-HMAC-SHA256, which is deliberately slow (tens
 * of milliseconds); to keep that cost off every request of a client that authenticates again
 * and again, the SHA-256 of a credential that passed is kept in a small per-server table and
 * later requests with the same credential are matched against it.
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

/* Does user:password (cred, the decoded credentials) belong to u? */
static int user_matches(nk_httpd *srv, const nk_httpd_user *u, const char *cred, size_t len,
                        const unsigned char digest[32])
{
    const char *colon = memchr(cred, ':', len);
    size_t nlen = (size_t)(colon - cred);
    if (strlen(u->name) != nlen || memcmp(u->name, cred, nlen) != 0)
        return 0;
    const char *pass = colon + 1;
    size_t plen = len - nlen - 1;
    if (u->password) {
        unsigned char a[32], b[32];
        sha256(pass, plen, a);
        sha256(u->password, strlen(u->password), b);
        return CRYPTO_memcmp(a, b, 32) == 0;
    }
    if (!u->hash)
        return 0;
    for (size_t i = 0; i < sizeof srv->auth_cache / sizeof srv->auth_cache[0]; i++)
        if (CRYPTO_memcmp(srv->auth_cache[i], digest, 32) == 0)
            return 1;
    if (nk_httpd_auth_verify(u->hash, pass, plen) != 1)
        return 0;
    unsigned slot = srv->auth_cache_next++ % (sizeof srv->auth_cache / sizeof srv->auth_cache[0]);
    memcpy(srv->auth_cache[slot], digest, 32);
    return 1;
}

int nk__auth_ok(nk_httpd *srv, const nk_http_request *req)
{
    if (srv->cfg.nusers == 0)
        return 1;
    const nk_http_header *h = nk_http_find_header(req, "Authorization");
    if (!h)
        return 0;
    /* RFC 7617 section 2: credentials = "Basic" 1*SP token68 (user-id ":" password, base64);
     * the scheme name is case-insensitive (RFC 9110 section 11.1). */
    const char *p = h->value.p;
    size_t len = h->value.len;
    if (len < 7 || strncasecmp(p, "Basic ", 6) != 0)
        return 0;
    p += 6;
    len -= 6;
    while (len && *p == ' ') {
        p++;
        len--;
    }
    unsigned char cred[CRED_MAX + 4];
    int n = b64_decode(p, len, cred, sizeof cred - 1);
    if (n <= 0 || !memchr(cred, ':', (size_t)n))
        return 0;
    unsigned char digest[32];
    sha256(cred, (size_t)n, digest);
    int ok = 0;
    for (size_t i = 0; i < srv->cfg.nusers && !ok; i++)
        ok = user_matches(srv, &srv->cfg.users[i], (const char *)cred, (size_t)n, digest);
    OPENSSL_cleanse(cred, sizeof cred);
    return ok;
}
