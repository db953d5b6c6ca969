/* Session ticket keys without a key server: every key is derived from the context's secret and
 * the number of the current period (HMAC-SHA256(secret, label || period)), so all the worker
 * processes of a server, given one secret by their supervisor, encrypt and accept the same
 * tickets with no shared memory and no file. A key lives one period; tickets under the
 * previous period's key are still accepted (and replaced by a fresh ticket), so a client
 * resumes for up to two periods. The ticket format is OpenSSL's own (AES-256-CBC encryption,
 * HMAC-SHA256 authentication, checked before decryption).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "tls/tls_internal.h"

typedef struct ticket_keys {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char mac[32];
} ticket_keys;

static void derive(const nk_tls_ctx *ctx, const char *label, uint64_t period, unsigned char *out,
                   size_t outlen)
{
    unsigned char msg[16] = {0};
    size_t llen = strlen(label);
    memcpy(msg, label, llen < 8 ? llen : 8);
    for (int i = 0; i < 8; i++)
        msg[8 + i] = (unsigned char)(period >> (56 - 8 * i));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    HMAC(EVP_sha256(), ctx->secret, (int)ctx->secret_len, msg, sizeof msg, md, &mdlen);
    memcpy(out, md, outlen < mdlen ? outlen : mdlen);
    OPENSSL_cleanse(md, sizeof md);
}

static void keys_for(const nk_tls_ctx *ctx, uint64_t period, ticket_keys *k)
{
    derive(ctx, "name", period, k->name, sizeof k->name);
    derive(ctx, "aes", period, k->aes, sizeof k->aes);
    derive(ctx, "mac", period, k->mac, sizeof k->mac);
}

static int set_mac_key(EVP_MAC_CTX *hctx, unsigned char *key)
{
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/* OpenSSL's ticket key callback: enc 1 to issue (return 1), 0 to open a ticket (return 1 to
 * accept it, 2 to accept it and issue a fresh one, 0 for a full handshake, -1 on error). */
int nk__tls_ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv,
                      EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    const nk_tls_ctx *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(s));
    if (!ctx || ctx->secret_len == 0)
        return -1;
    uint64_t now = (uint64_t)time(NULL) / ctx->period_s;
    ticket_keys k;
    int ret = -1;
    if (enc) {
        keys_for(ctx, now, &k);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) == 1 &&
            EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) == 1 &&
            set_mac_key(hctx, k.mac) == 0) {
            memcpy(key_name, k.name, sizeof k.name);
            ret = 1;
        }
    } else {
        ret = 0; /* unknown key: a full handshake */
        for (uint64_t back = 0; back < 2 && back <= now; back++) {
            keys_for(ctx, now - back, &k);
            if (CRYPTO_memcmp(key_name, k.name, sizeof k.name) != 0)
                continue;
            if (set_mac_key(hctx, k.mac) < 0 ||
                EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1)
                ret = -1;
            else
                /* 2 (accept and issue a fresh ticket) for the current key too: TLS 1.3
                 * clients use a ticket once, and would otherwise resume only every other
                 * connection. */
                ret = 2;
            break;
        }
    }
    OPENSSL_cleanse(&k, sizeof k);
    return ret;
}

int nk_tls_ctx_set_ticket_secret(nk_tls_ctx *ctx, const void *secret, size_t len,
                                 unsigned period_s)
{
    if (!ctx || !ctx->is_server)
        return -EINVAL;
    if (secret) {
        if (len < 32)
            return -EINVAL;
        OPENSSL_cleanse(ctx->secret, sizeof ctx->secret);
        if (len <= sizeof ctx->secret) {
            memcpy(ctx->secret, secret, len);
            ctx->secret_len = len;
        } else {
            /* HMAC-SHA256 replaces a key longer than its 64-byte block by the key's SHA-256:
             * keeping that hash derives the very same keys from a secret of any length. */
            unsigned mdlen = 0;
            if (EVP_Digest(secret, len, ctx->secret, &mdlen, EVP_sha256(), NULL) != 1)
                return -EIO;
            ctx->secret_len = mdlen;
        }
    } else {
        if (RAND_bytes(ctx->secret, 32) != 1)
            return -EIO;
        ctx->secret_len = 32;
    }
    ctx->period_s = period_s ? period_s : 3600;
    return 0;
}
