/* A pure packet decoder: one Ethernet frame in, a description of each layer out.
 *
 * Every read goes through a length check first (need()), so a frame cut at any byte decodes as
 * far as it goes and names the layer that was short; the fuzz target fuzz/fuzz_decode.c and
 * tests/unit/test_raw_decode.c (every truncation length) hold it to that.
 */
#include <netkit/raw.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* At most this many IPv6 extension headers are walked: enough for any real packet, and a bound
 * on the work a crafted chain can cause. */
#define IPV6_MAX_EXT 8

static void set_payload(nk_raw_packet *pkt, const uint8_t *p, size_t avail, size_t wire)
{
    pkt->payload = p;
    pkt->payload_len = avail < wire ? avail : wire;
    pkt->payload_wire = wire;
    pkt->layers |= NK_RAW_PAYLOAD;
    if (avail < wire && !pkt->problem)
        pkt->problem = "truncated payload";
}

/* TCP options (RFC 9293 section 3.2): kind 0 ends, kind 1 pads, the others carry a length. */
static void tcp_options(nk_raw_tcp *t, const uint8_t *o, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t kind = o[i];
        if (kind == 0)
            return;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= n)
            return;
        uint8_t len = o[i + 1];
        if (len < 2 || i + len > n)
            return;
        if (kind == 2 && len == 4)
            t->mss = rd16(o + i + 2);
        else if (kind == 3 && len == 3)
            t->wscale = o[i + 2];
        else if (kind == 4 && len == 2)
            t->sack_ok = 1;
        else if (kind == 8 && len == 10) {
            t->has_ts = 1;
            t->tsval = rd32(o + i + 2);
            t->tsecr = rd32(o + i + 6);
        }
        i += len;
    }
}

/* The transport layer: p holds avail captured bytes of a segment whose length on the wire is
 * wire (from the IP header). */
static void transport(nk_raw_packet *pkt, uint8_t proto, const uint8_t *p, size_t avail,
                      size_t wire)
{
    if (wire < avail)
        avail = wire; /* bytes past the IP length are link padding */
    switch (proto) {
    case 6: {
        nk_raw_tcp *t = &pkt->tcp;
        pkt->transport = NK_RAW_TP_TCP;
        t->wscale = -1;
        if (avail < 20) {
            pkt->problem = "truncated tcp header";
            return;
        }
        t->sport = rd16(p);
        t->dport = rd16(p + 2);
        t->seq = rd32(p + 4);
        t->ack = rd32(p + 8);
        t->hdr_len = (size_t)(p[12] >> 4) * 4;
        t->flags = p[13];
        t->window = rd16(p + 14);
        t->checksum = rd16(p + 16);
        t->urgent = rd16(p + 18);
        if (t->hdr_len < 20) {
            pkt->problem = "bad tcp header length";
            return;
        }
        if (t->hdr_len > avail) {
            pkt->problem = wire < t->hdr_len ? "bad tcp header length" : "truncated tcp header";
            return;
        }
        tcp_options(t, p + 20, t->hdr_len - 20);
        pkt->layers |= NK_RAW_TRANSPORT;
        set_payload(pkt, p + t->hdr_len, avail - t->hdr_len, wire - t->hdr_len);
        return;
    }
    case 17: {
        nk_raw_udp *u = &pkt->udp;
        pkt->transport = NK_RAW_TP_UDP;
        if (avail < 8) {
            pkt->problem = "truncated udp header";
            return;
        }
        u->sport = rd16(p);
        u->dport = rd16(p + 2);
        u->len = rd16(p + 4);
        u->checksum = rd16(p + 6);
        pkt->layers |= NK_RAW_TRANSPORT;
        size_t ulen = u->len;
        if (ulen < 8 || ulen > wire) {
            /* RFC 768: the length counts header and data. A jumbogram (0) or a bad value:
             * trust the IP length instead. */
            if (!pkt->problem && ulen != 0)
                pkt->problem = "bad udp length";
            ulen = wire;
        }
        set_payload(pkt, p + 8, avail - 8, ulen - 8);
        return;
    }
    case 1:
    case 58: {
        nk_raw_icmp *c = &pkt->icmp;
        int v6 = proto == 58;
        pkt->transport = v6 ? NK_RAW_TP_ICMP6 : NK_RAW_TP_ICMP;
        if (avail < 4) {
            pkt->problem = v6 ? "truncated icmp6 header" : "truncated icmp header";
            return;
        }
        c->type = p[0];
        c->code = p[1];
        c->checksum = rd16(p + 2);
        int echo = v6 ? (c->type == 128 || c->type == 129) : (c->type == 0 || c->type == 8);
        size_t hl = 4;
        if (echo) {
            if (avail < 8) {
                pkt->problem = v6 ? "truncated icmp6 echo" : "truncated icmp echo";
                return;
            }
            c->echo = 1;
            c->id = rd16(p + 4);
            c->seq = rd16(p + 6);
            hl = 8;
        } else if (avail >= 8) {
            hl = 8; /* errors and most others: 4 bytes of type-specific data, then the body */
        }
        pkt->layers |= NK_RAW_TRANSPORT;
        set_payload(pkt, p + hl, avail - hl, wire - hl);
        return;
    }
    default:
        /* Unknown protocol: what follows the IP header is its payload. */
        set_payload(pkt, p, avail, wire);
        return;
    }
}

static void ipv4(nk_raw_packet *pkt, const uint8_t *p, size_t avail)
{
    nk_raw_ip *ip = &pkt->ip;
    pkt->net = NK_RAW_NET_IPV4;
    if (avail < 20) {
        pkt->problem = "truncated ipv4 header";
        return;
    }
    ip->version = p[0] >> 4;
    if (ip->version != 4) {
        pkt->problem = "bad ipv4 version";
        return;
    }
    ip->hdr_len = (size_t)(p[0] & 0x0f) * 4;
    ip->tos = p[1];
    ip->total_len = rd16(p + 2);
    ip->id = rd16(p + 4);
    uint16_t ff = rd16(p + 6);
    ip->df = (ff & 0x4000) != 0;
    ip->mf = (ff & 0x2000) != 0;
    ip->frag_off = (uint16_t)((ff & 0x1fff) * 8);
    ip->fragment = ip->mf || ip->frag_off != 0;
    ip->ttl = p[8];
    ip->proto = p[9];
    ip->checksum = rd16(p + 10);
    memcpy(ip->src, p + 12, 4);
    memcpy(ip->dst, p + 16, 4);
    /* RFC 791 section 3.1: IHL is at least 5 words, and the total length covers it. */
    if (ip->hdr_len < 20 || ip->total_len < ip->hdr_len) {
        pkt->problem = ip->hdr_len < 20 ? "bad ipv4 header length" : "bad ipv4 total length";
        return;
    }
    if (avail < ip->hdr_len) {
        pkt->problem = "truncated ipv4 header";
        return;
    }
    pkt->layers |= NK_RAW_NETWORK;
    /* A capture can be shorter than the datagram (snap length, a cut frame). */
    if (avail < ip->total_len)
        pkt->problem = "truncated ipv4 payload";
    size_t wire = ip->total_len - ip->hdr_len;
    const uint8_t *tp = p + ip->hdr_len;
    size_t tavail = avail - ip->hdr_len;
    if (ip->frag_off != 0) { /* a later fragment holds no transport header */
        set_payload(pkt, tp, tavail, wire);
        return;
    }
    transport(pkt, ip->proto, tp, tavail, wire);
}

/* IPv6 extension headers that share the "next header, length in 8-byte units" layout
 * (RFC 8200 section 4): hop-by-hop 0, routing 43, destination options 60; the fragment header
 * (44) is fixed at 8 bytes and carries the offset. */
static void ipv6(nk_raw_packet *pkt, const uint8_t *p, size_t avail)
{
    nk_raw_ip *ip = &pkt->ip;
    pkt->net = NK_RAW_NET_IPV6;
    if (avail < 40) {
        pkt->problem = "truncated ipv6 header";
        return;
    }
    ip->version = p[0] >> 4;
    if (ip->version != 6) {
        pkt->problem = "bad ipv6 version";
        return;
    }
    ip->tos = (uint8_t)((p[0] & 0x0f) << 4 | p[1] >> 4);
    ip->flow = (uint32_t)(p[1] & 0x0f) << 16 | (uint32_t)p[2] << 8 | p[3];
    ip->total_len = 40 + (size_t)rd16(p + 4);
    ip->first_nxt = p[6];
    ip->ttl = p[7];
    memcpy(ip->src, p + 8, 16);
    memcpy(ip->dst, p + 24, 16);
    pkt->layers |= NK_RAW_NETWORK;
    if (avail < ip->total_len)
        pkt->problem = "truncated ipv6 payload";
    else
        avail = ip->total_len; /* drop link padding */
    size_t off = 40;
    uint8_t nxt = ip->first_nxt;
    while (ip->next_hdrs < IPV6_MAX_EXT && (nxt == 0 || nxt == 43 || nxt == 60 || nxt == 44)) {
        size_t elen = nxt == 44 ? 8 : 0;
        if (off + 8 > avail || off + 8 > ip->total_len) {
            pkt->problem = "truncated ipv6 extension header";
            ip->hdr_len = off;
            ip->proto = nxt;
            return;
        }
        if (nxt != 44)
            elen = ((size_t)p[off + 1] + 1) * 8;
        if (off + elen > ip->total_len) {
            pkt->problem = "bad ipv6 extension header length";
            ip->hdr_len = off;
            ip->proto = nxt;
            return;
        }
        if (off + elen > avail) {
            pkt->problem = "truncated ipv6 extension header";
            ip->hdr_len = off;
            ip->proto = nxt;
            return;
        }
        if (nxt == 44) {
            uint16_t fo = rd16(p + off + 2);
            ip->frag_off = (uint16_t)(fo & 0xfff8);
            ip->mf = fo & 1;
            ip->fragment = 1;
            ip->id = rd32(p + off + 4);
        }
        nxt = p[off];
        off += elen;
        ip->next_hdrs++;
    }
    ip->hdr_len = off;
    ip->proto = nxt;
    size_t wire = ip->total_len - off;
    if (ip->frag_off != 0) {
        set_payload(pkt, p + off, avail - off, wire);
        return;
    }
    transport(pkt, nxt, p + off, avail - off, wire);
}

static void arp(nk_raw_packet *pkt, const uint8_t *p, size_t avail)
{
    nk_raw_arp *a = &pkt->arp;
    pkt->net = NK_RAW_NET_ARP;
    if (avail < 8) {
        pkt->problem = "truncated arp header";
        return;
    }
    a->htype = rd16(p);
    a->ptype = rd16(p + 2);
    a->op = rd16(p + 6);
    /* RFC 826: hardware and protocol address lengths; only Ethernet/IPv4 (6/4) is shown. */
    if (a->htype == 1 && a->ptype == 0x0800 && p[4] == 6 && p[5] == 4) {
        if (avail < 28) {
            pkt->problem = "truncated arp header";
            return;
        }
        memcpy(a->sha, p + 8, 6);
        memcpy(a->spa, p + 14, 4);
        memcpy(a->tha, p + 18, 6);
        memcpy(a->tpa, p + 24, 4);
        a->ether_ipv4 = 1;
    }
    pkt->layers |= NK_RAW_NETWORK;
}

int nk_raw_decode(const uint8_t *data, size_t len, nk_raw_packet *out)
{
    if (!out || (!data && len))
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->len = len;
    out->tcp.wscale = -1;
    nk_raw_eth *eth = &out->eth;
    if (len < 14) {
        out->problem = "truncated ethernet header";
        return 0;
    }
    memcpy(eth->dst, data, 6);
    memcpy(eth->src, data + 6, 6);
    size_t off = 12;
    uint16_t type = rd16(data + off);
    /* IEEE 802.1Q tags (0x8100) and 802.1ad outer tags (0x88a8): 4 bytes each. */
    while ((type == 0x8100 || type == 0x88a8) && eth->nvlan < 2) {
        if (off + 6 > len) {
            out->problem = "truncated vlan tag";
            return 0;
        }
        eth->vlan[eth->nvlan++] = rd16(data + off + 2) & 0x0fff;
        off += 4;
        type = rd16(data + off);
    }
    eth->type = type;
    eth->hdr_len = off + 2;
    out->layers |= NK_RAW_LINK;
    const uint8_t *p = data + eth->hdr_len;
    size_t avail = len - eth->hdr_len;
    switch (type) {
    case 0x0800:
        ipv4(out, p, avail);
        break;
    case 0x86dd:
        ipv6(out, p, avail);
        break;
    case 0x0806:
        arp(out, p, avail);
        break;
    default:
        set_payload(out, p, avail, avail);
        break;
    }
    return 0;
}

const char *nk_raw_ethertype_name(uint16_t type)
{
    switch (type) {
    case 0x0800: return "IPv4";
    case 0x86dd: return "IPv6";
    case 0x0806: return "ARP";
    case 0x8100: return "802.1Q";
    case 0x88a8: return "802.1ad";
    case 0x88cc: return "LLDP";
    default: return type < 0x0600 ? "802.3 length" : "unknown";
    }
}

const char *nk_raw_proto_name(uint8_t proto)
{
    switch (proto) {
    case 0: return "HOPOPT";
    case 1: return "ICMP";
    case 2: return "IGMP";
    case 6: return "TCP";
    case 17: return "UDP";
    case 41: return "IPv6";
    case 43: return "IPv6-Route";
    case 44: return "IPv6-Frag";
    case 47: return "GRE";
    case 50: return "ESP";
    case 51: return "AH";
    case 58: return "ICMPv6";
    case 59: return "IPv6-NoNxt";
    case 60: return "IPv6-Opts";
    case 132: return "SCTP";
    default: return "unknown";
    }
}

/* RFC 792 and RFC 4443 section 2.1 type numbers. */
const char *nk_raw_icmp_type_name(int v6, uint8_t type)
{
    if (v6) {
        switch (type) {
        case 1: return "destination-unreachable";
        case 2: return "packet-too-big";
        case 3: return "time-exceeded";
        case 4: return "parameter-problem";
        case 128: return "echo-request";
        case 129: return "echo-reply";
        case 130: return "mld-query";
        case 131: return "mld-report";
        case 133: return "router-solicitation";
        case 134: return "router-advertisement";
        case 135: return "neighbor-solicitation";
        case 136: return "neighbor-advertisement";
        case 137: return "redirect";
        case 143: return "mldv2-report";
        default: return "unknown";
        }
    }
    switch (type) {
    case 0: return "echo-reply";
    case 3: return "destination-unreachable";
    case 4: return "source-quench";
    case 5: return "redirect";
    case 8: return "echo-request";
    case 9: return "router-advertisement";
    case 10: return "router-solicitation";
    case 11: return "time-exceeded";
    case 12: return "parameter-problem";
    case 13: return "timestamp";
    case 14: return "timestamp-reply";
    default: return "unknown";
    }
}

const char *nk_raw_icmp_code_name(int v6, uint8_t type, uint8_t code)
{
    static const char *const unreach4[] = {
        "net-unreachable", "host-unreachable", "protocol-unreachable", "port-unreachable",
        "fragmentation-needed", "source-route-failed", "net-unknown", "host-unknown",
        "source-host-isolated", "net-prohibited", "host-prohibited", "net-tos-unreachable",
        "host-tos-unreachable", "admin-prohibited", "precedence-violation",
        "precedence-cutoff"};
    static const char *const unreach6[] = {
        "no-route", "admin-prohibited", "beyond-scope", "address-unreachable",
        "port-unreachable", "source-policy-failed", "reject-route"};
    if (!v6 && type == 3 && code < sizeof unreach4 / sizeof *unreach4)
        return unreach4[code];
    if (v6 && type == 1 && code < sizeof unreach6 / sizeof *unreach6)
        return unreach6[code];
    if (type == (v6 ? 3 : 11))
        return code == 0 ? "ttl-exceeded" : code == 1 ? "reassembly-exceeded" : NULL;
    return NULL;
}

char *nk_raw_tcp_flags(uint8_t flags, char *buf, size_t buflen)
{
    /* tcpdump's order: S F P R U W E, then '.' for ACK. */
    static const struct { uint8_t bit; char c; } order[] = {
        {NK_TCP_SYN, 'S'}, {NK_TCP_FIN, 'F'}, {NK_TCP_PSH, 'P'}, {NK_TCP_RST, 'R'},
        {NK_TCP_URG, 'U'}, {NK_TCP_CWR, 'W'}, {NK_TCP_ECE, 'E'}, {NK_TCP_ACK, '.'}};
    if (!buf || buflen == 0)
        return buf;
    size_t n = 0;
    for (size_t i = 0; i < sizeof order / sizeof *order && n + 1 < buflen; i++)
        if (flags & order[i].bit)
            buf[n++] = order[i].c;
    buf[n] = '\0';
    if (n == 0)
        snprintf(buf, buflen, "none");
    return buf;
}
