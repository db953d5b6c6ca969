/* A certificate made at start, for a share that should be encrypted without a CA: ECDSA
 * P-256 (fast handshakes, small), self-signed, its names as subjectAltName entries (IP
 * literals as iPAddress, the rest as dNSName), valid from an hour ago (clock skew) for 30
 * days. Clients trust it by its SHA-256 fingerprint, which the caller prints.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tls/tls_internal.h"


static int is_ip(const char *s)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

/* "DNS:a,IP:127.0.0.1,..." for X509V3_EXT_conf_nid. */
static int san_text(const char *const *names, size_t n, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!names[i] || !*names[i] || strpbrk(names[i], ",\n"))
            return -EINVAL;
        int w = snprintf(out + used, outlen - used, "%s%s:%s", used ? "," : "",
                         is_ip(names[i]) ? "IP" : "DNS", names[i]);
        if (w < 0 || (size_t)w >= outlen - used)
            return -ENAMETOOLONG;
        used += (size_t)w;
    }
    return 0;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

static X509 *make_cert(EVP_PKEY *key, const char *const *names, size_t n, const char *san)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    int ok = RAND_bytes(serial, sizeof serial) == 1;
    serial[0] &= 0x7f; /* a positive serial number */
    if (ok)
        bn = BN_bin2bn(serial, sizeof serial, NULL);
    ok = ok && bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    ok = ok && X509_set_version(x, 2) == 1;
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL;
    ok = ok && X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600) != NULL;
    X509_NAME *subject = X509_get_subject_name(x);
    /* A common name holds at most 64 characters (a host name up to 253): a longer first name
     * is only in subjectAltName, which is what clients check anyway. */
    const char *cn = n && strlen(names[0]) <= ub_common_name ? names[0] : "netkit";
    ok = ok && X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC,
                                          (const unsigned char *)"netkit self-signed", -1, -1,
                                          0) == 1;
    ok = ok && X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                          (const unsigned char *)cn, -1, -1, 0) == 1;
    ok = ok && X509_set_issuer_name(x, subject) == 1;
    ok = ok && X509_set_pubkey(x, key) == 1;
    ok = ok && add_ext(x, NID_basic_constraints, "critical,CA:FALSE") == 0;
    ok = ok && add_ext(x, NID_key_usage, "critical,digitalSignature") == 0;
    ok = ok && add_ext(x, NID_ext_key_usage, "serverAuth") == 0;
    ok = ok && (!*san || add_ext(x, NID_subject_alt_name, san) == 0);
    ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

int nk_tls_ctx_add_self_signed(nk_tls_ctx *ctx, const char *const *names, size_t nnames,
                               char fp_hex[NK_TLS_FP_HEX], char *err, size_t errlen)
{
    if (!ctx || !ctx->is_server || (nnames && !names))
        return -EINVAL;
    char san[4096];
    int r = san_text(names, nnames, san, sizeof san);
    if (r < 0) {
        nk__tls_set_err(err, errlen, "bad or too many names for a certificate");
        return r;
    }
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = key ? make_cert(key, names, nnames, san) : NULL;
    if (!x) {
        nk__tls_set_err(err, errlen, "cannot make a certificate");
        EVP_PKEY_free(key);
        return -EPROTO;
    }
    if (fp_hex) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        X509_digest(x, EVP_sha256(), md, &len);
        nk__tls_hex(md, len, fp_hex);
    }
    return nk__tls_add_made_cert(ctx, x, key, err, errlen);
}
