/* The PROXY protocol header (see netkit/proxy.h). Every call starts from the first byte, so
 * it keeps no state; the caller gives the whole prefix it has each time. A prefix is judged
 * as early as it can be: bytes no valid header could begin with are refused at once, so a
 * client speaking HTTP or TLS straight to a proxied listener is told apart at its first byte. */
#include <netkit/proxy.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

static const unsigned char v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* 0 when p[0..n) agrees with the first n bytes of want (n may be shorter). */
static int prefix_differs(const unsigned char *p, size_t n, const char *want, size_t wlen)
{
    return memcmp(p, want, n < wlen ? n : wlen) != 0;
}

static int v1_char_ok(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'Z') ||
           ch == '.' || ch == ':' || ch == ' ';
}

/* A decimal port without leading zeros, 0-65535. */
static int v1_port(const char *s, size_t len, unsigned *out)
{
    if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
        return -EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *out = v;
    return 0;
}

static int v1_addr(int family, const char *s, size_t len, unsigned char *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof tmp)
        return -EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    return inet_pton(family, tmp, out) == 1 ? 0 : -EINVAL;
}

/* The complete line p[0..len) without its CRLF, after "PROXY ". */
static int v1_fields(const char *p, size_t len, nk_proxy_info *out)
{
    if (len >= 7 && memcmp(p, "UNKNOWN", 7) == 0 && (len == 7 || p[7] == ' ')) {
        /* The specification lets the rest be anything up to the CRLF; it is ignored. */
        out->local = 1;
        out->family = AF_UNSPEC;
        return 0;
    }
    if (len < 5 || (memcmp(p, "TCP4 ", 5) != 0 && memcmp(p, "TCP6 ", 5) != 0))
        return -EINVAL;
    int family = p[3] == '4' ? AF_INET : AF_INET6;
    const char *f[4];
    size_t flen[4];
    size_t i = 5, k = 0;
    while (k < 4) {
        size_t start = i;
        while (i < len && p[i] != ' ')
            i++;
        f[k] = p + start;
        flen[k] = i - start;
        k++;
        if (k < 4) {
            if (i == len)
                return -EINVAL;
            i++; /* exactly one space: an empty field fails below */
        }
    }
    if (i != len)
        return -EINVAL;
    if (v1_addr(family, f[0], flen[0], out->src_ip) < 0 ||
        v1_addr(family, f[1], flen[1], out->dst_ip) < 0 ||
        v1_port(f[2], flen[2], &out->src_port) < 0 || v1_port(f[3], flen[3], &out->dst_port) < 0)
        return -EINVAL;
    out->family = family;
    out->local = 0;
    return 0;
}

static int parse_v1(const unsigned char *p, size_t n, nk_proxy_info *out)
{
    if (prefix_differs(p, n, "PROXY ", 6))
        return -EINVAL;
    size_t lim = n < NK_PROXY_V1_MAX ? n : NK_PROXY_V1_MAX;
    for (size_t i = 6; i < lim; i++) {
        unsigned char ch = p[i];
        if (ch == '\r') {
            if (i + 1 >= NK_PROXY_V1_MAX)
                return -EINVAL;
            if (i + 1 == n)
                return -EAGAIN;
            if (p[i + 1] != '\n')
                return -EINVAL;
            memset(out, 0, sizeof *out);
            out->version = 1;
            int r = v1_fields((const char *)p + 6, i - 6, out);
            return r < 0 ? r : (int)(i + 2);
        }
        if (!v1_char_ok(ch))
            return -EINVAL;
        /* The protocol word must be one of the three as soon as its bytes are here. */
        if (i < 6 + 7) {
            const char *q = (const char *)p + 6;
            size_t have = i - 6 + 1;
            if (prefix_differs((const unsigned char *)q, have, "TCP4 ", 5) &&
                prefix_differs((const unsigned char *)q, have, "TCP6 ", 5) &&
                prefix_differs((const unsigned char *)q, have, "UNKNOWN", 7))
                return -EINVAL;
        }
    }
    return n < NK_PROXY_V1_MAX ? -EAGAIN : -EINVAL;
}

static int parse_v2(const unsigned char *p, size_t n, nk_proxy_info *out)
{
    if (n < 16)
        return -EAGAIN; /* the signature prefix was checked by the caller */
    unsigned ver = p[12] >> 4, cmd = p[12] & 0x0f;
    unsigned fam = p[13] >> 4, proto = p[13] & 0x0f;
    size_t len = (size_t)p[14] << 8 | p[15];
    if (ver != 2 || cmd > 1 || fam > 3 || proto > 2)
        return -EINVAL;
    if (16 + len > NK_PROXY_V2_MAX)
        return -EMSGSIZE;
    /* Addresses need their room whatever the command; a LOCAL header usually has none. */
    size_t alen = fam == 1 ? 12 : fam == 2 ? 36 : fam == 3 ? 216 : 0;
    if (cmd == 1 && len < alen)
        return -EINVAL;
    if (cmd == 1 && fam != 0 && proto != 1)
        return -EINVAL; /* a datagram (or unspecified) transport under a stream connection */
    if (n < 16 + len)
        return -EAGAIN;
    memset(out, 0, sizeof *out);
    out->version = 2;
    const unsigned char *a = p + 16;
    size_t skip = 0;
    if (cmd == 0 || fam == 0 || fam == 3) {
        out->local = 1;
        out->family = AF_UNSPEC;
        skip = cmd == 1 ? alen : len; /* LOCAL: whatever follows is not interpreted */
    } else if (fam == 1) {
        out->family = AF_INET;
        memcpy(out->src_ip, a, 4);
        memcpy(out->dst_ip, a + 4, 4);
        out->src_port = (unsigned)a[8] << 8 | a[9];
        out->dst_port = (unsigned)a[10] << 8 | a[11];
        skip = 12;
    } else {
        out->family = AF_INET6;
        memcpy(out->src_ip, a, 16);
        memcpy(out->dst_ip, a + 16, 16);
        out->src_port = (unsigned)a[32] << 8 | a[33];
        out->dst_port = (unsigned)a[34] << 8 | a[35];
        skip = 36;
    }
    /* TLVs (type, 16-bit length, value) fill the rest exactly; their meaning is not used. */
    for (size_t i = skip; i < len;) {
        if (len - i < 3)
            return -EINVAL;
        size_t tl = (size_t)a[i + 1] << 8 | a[i + 2];
        if (tl > len - i - 3)
            return -EINVAL;
        i += 3 + tl;
    }
    return (int)(16 + len);
}

int nk_proxy_parse(const void *buf, size_t n, nk_proxy_info *out)
{
    const unsigned char *p = buf;
    if (n == 0)
        return -EAGAIN;
    if (p[0] == 'P')
        return parse_v1(p, n, out);
    if (memcmp(p, v2_sig, n < 12 ? n : 12) != 0)
        return -EINVAL;
    return parse_v2(p, n, out);
}

int nk_proxy_cidr_parse(const char *s, nk_proxy_cidr *out)
{
    char tmp[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof tmp)
        return -EINVAL;
    memcpy(tmp, s, alen);
    tmp[alen] = 0;
    memset(out, 0, sizeof *out);
    unsigned max;
    if (inet_pton(AF_INET, tmp, out->ip) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, tmp, out->ip) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -EINVAL;
    }
    unsigned bits = max;
    if (slash) {
        const char *d = slash + 1;
        size_t dl = strlen(d);
        if (dl == 0 || dl > 3 || (dl > 1 && d[0] == '0'))
            return -EINVAL;
        bits = 0;
        for (size_t i = 0; i < dl; i++) {
            if (d[i] < '0' || d[i] > '9')
                return -EINVAL;
            bits = bits * 10 + (unsigned)(d[i] - '0');
        }
        if (bits > max)
            return -EINVAL;
    }
    out->bits = bits;
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits > i * 8 ? bits - i * 8 : 0;
        if (keep < 8)
            out->ip[i] &= (unsigned char)(0xff00u >> keep);
    }
    return 0;
}

int nk_proxy_cidr_match(const nk_proxy_cidr *r, int family, const unsigned char *ip)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && r->family == AF_INET && memcmp(ip, mapped, 12) == 0) {
        family = AF_INET;
        ip += 12;
    }
    if (family != r->family)
        return 0;
    unsigned full = r->bits / 8, rest = r->bits % 8;
    if (memcmp(ip, r->ip, full) != 0)
        return 0;
    if (rest && (ip[full] & (unsigned char)(0xff00u >> rest)) != r->ip[full])
        return 0;
    return 1;
}
