/* netkit sniff output: one line per frame (or one block per layer with -v), TCP sequence
 * numbers relative to each connection's first ones, and the --handshake annotations.
 *
 * The connection's life (RFC 9293 section 3.5 for the three-way handshake, section 3.6 for the
 * close) is followed per 4-tuple: SYN, SYN-ACK, ACK; then FIN, its ACK, the other FIN and its
 * ACK; when the second FIN already acknowledges the first (FIN+ACK in one segment, the usual
 * three-segment close) steps 2 and 3 are one segment. Retransmissions add no annotation.
 */
#include "sniff/sniff.h"

#include <arpa/inet.h>
#include <string.h>

#include <netkit/raw.h>

enum { ST_NONE, ST_SYN, ST_SYNACK, ST_EST, ST_FIN1, ST_ACKED1, ST_FIN2, ST_CLOSED };

/* "a is at or after b" in sequence space (RFC 9293 section 3.4: arithmetic modulo 2^32). */
static int seq_ge(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }

static void mac_text(const uint8_t m[6], char *buf, size_t len)
{
    snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void ip_text(const nk_raw_ip *ip, const uint8_t *a, char *buf, size_t len)
{
    if (!inet_ntop(ip->version == 6 ? AF_INET6 : AF_INET, a, buf, (socklen_t)len))
        snprintf(buf, len, "?");
}

/* ---- connection table ----------------------------------------------------------------------- */

static sniff_conn *conn_find(sniff_printer *p, const nk_raw_packet *pkt, int *dir)
{
    size_t alen = pkt->ip.version == 6 ? 16 : 4;
    const uint8_t *src = pkt->ip.src, *dst = pkt->ip.dst;
    uint16_t sp = pkt->tcp.sport, dp = pkt->tcp.dport;
    sniff_conn *oldest = &p->conns[0];
    for (size_t i = 0; i < SNIFF_CONNS; i++) {
        sniff_conn *c = &p->conns[i];
        if (!c->used) {
            if (oldest->used)
                oldest = c;
            continue;
        }
        if (c->used_at < oldest->used_at && oldest->used)
            oldest = c;
        if (c->family != pkt->ip.version)
            continue;
        for (int d = 0; d < 2; d++) {
            if (c->port[d] == sp && c->port[!d] == dp && memcmp(c->addr[d], src, alen) == 0 &&
                memcmp(c->addr[!d], dst, alen) == 0) {
                *dir = d;
                c->used_at = ++p->tick;
                return c;
            }
        }
    }
    sniff_conn *c = oldest;
    memset(c, 0, sizeof *c);
    c->used = 1;
    c->family = pkt->ip.version;
    memcpy(c->addr[0], src, alen);
    memcpy(c->addr[1], dst, alen);
    c->port[0] = sp;
    c->port[1] = dp;
    c->used_at = ++p->tick;
    *dir = 0;
    return c;
}

/* Advance the connection's state; returns the annotation for this segment or NULL. */
static const char *conn_step(sniff_conn *c, int d, const nk_raw_tcp *t, size_t paylen)
{
    uint8_t f = t->flags;
    int ack = (f & NK_TCP_ACK) != 0;
    uint32_t end = t->seq + (uint32_t)paylen + 1; /* the FIN takes one sequence number */
    if (f & NK_TCP_RST) {
        c->state = ST_CLOSED;
        return "reset (RST)";
    }
    if ((f & NK_TCP_SYN) && !ack) {
        if (c->state == ST_SYN && c->initiator == d)
            return NULL; /* retransmitted SYN */
        c->state = ST_SYN;
        c->initiator = d;
        return "handshake 1/3 (SYN)";
    }
    if ((f & NK_TCP_SYN) && ack) {
        if (c->state != ST_SYN || d == c->initiator)
            return NULL;
        c->state = ST_SYNACK;
        return "handshake 2/3 (SYN-ACK)";
    }
    if (c->state == ST_SYNACK && d == c->initiator && ack) {
        c->state = ST_EST;
        if (!(f & NK_TCP_FIN))
            return "handshake 3/3 (ACK)";
    }
    if (f & NK_TCP_FIN) {
        if (c->state < ST_FIN1) {
            c->state = ST_FIN1;
            c->closer = d;
            c->fin_end[d] = end;
            return "close 1/4 (FIN)";
        }
        if (d != c->closer && (c->state == ST_FIN1 || c->state == ST_ACKED1)) {
            int acks_first = ack && seq_ge(t->ack, c->fin_end[c->closer]);
            const char *note = c->state == ST_FIN1 && acks_first
                                   ? "close 2/4+3/4 (FIN+ACK)"
                                   : "close 3/4 (FIN)";
            c->state = ST_FIN2;
            c->fin_end[d] = end;
            return note;
        }
        return NULL;
    }
    if (ack && c->state == ST_FIN1 && d != c->closer && seq_ge(t->ack, c->fin_end[c->closer])) {
        c->state = ST_ACKED1;
        return "close 2/4 (ACK)";
    }
    if (ack && c->state == ST_FIN2 && d == c->closer && seq_ge(t->ack, c->fin_end[!d])) {
        c->state = ST_CLOSED;
        return "close 4/4 (ACK)";
    }
    return NULL;
}

/* ---- payload text --------------------------------------------------------------------------- */

#define TEXT_MAX 48

static int printable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 0x20 && p[i] < 0x7f) || p[i] == '\r' || p[i] == '\n' || p[i] == '\t'))
            return 0;
    return n > 0;
}

static void put_text(FILE *out, const uint8_t *p, size_t n)
{
    size_t show = n < TEXT_MAX ? n : TEXT_MAX;
    fputc('"', out);
    for (size_t i = 0; i < show; i++) {
        switch (p[i]) {
        case '\r': fputs("\\r", out); break;
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        default: fputc(p[i], out);
        }
    }
    fputc('"', out);
    if (show < n)
        fputs("...", out);
}

static void hexdump(FILE *out, const uint8_t *p, size_t n)
{
    for (size_t off = 0; off < n; off += 16) {
        fprintf(out, "    %04zx ", off);
        for (size_t i = 0; i < 16; i++) {
            if (off + i < n)
                fprintf(out, " %02x", p[off + i]);
            else
                fputs("   ", out);
        }
        fputs("  ", out);
        for (size_t i = 0; i < 16 && off + i < n; i++)
            fputc(p[off + i] >= 0x20 && p[off + i] < 0x7f ? p[off + i] : '.', out);
        fputc('\n', out);
    }
}

/* ---- one frame ------------------------------------------------------------------------------ */

typedef struct tcp_view {
    sniff_conn *conn;
    int dir;
    uint32_t rseq, rack;
    const char *note;
    double since_ms; /* < 0: first step */
} tcp_view;

static void tcp_track(sniff_printer *p, const nk_raw_packet *pkt, const struct timespec *ts,
                      tcp_view *v)
{
    const nk_raw_tcp *t = &pkt->tcp;
    sniff_conn *c = conn_find(p, pkt, &v->dir);
    int d = v->dir;
    if ((t->flags & NK_TCP_SYN) || !c->have_base[d]) {
        c->base[d] = t->seq;
        c->have_base[d] = 1;
    }
    if ((t->flags & NK_TCP_ACK) && !c->have_base[!d]) {
        c->base[!d] = t->ack - 1; /* a connection seen mid-way: its ack counts from 1 */
        c->have_base[!d] = 1;
    }
    v->conn = c;
    v->rseq = t->seq - c->base[d];
    v->rack = t->ack - c->base[!d];
    v->note = conn_step(c, d, t, pkt->payload_len);
    v->since_ms = -1;
    if (v->note) {
        if (c->last.tv_sec || c->last.tv_nsec)
            v->since_ms = (double)(ts->tv_sec - c->last.tv_sec) * 1e3 +
                          (double)(ts->tv_nsec - c->last.tv_nsec) / 1e6;
        c->last = *ts;
        if ((t->flags & (NK_TCP_SYN | NK_TCP_ACK)) == NK_TCP_SYN)
            v->since_ms = -1;
    }
}

/* The link and network part of a one-line summary. */
static void sniff_line_net(sniff_printer *p, FILE *out, const nk_raw_packet *pkt)
{
    char a[64], b[64];
    const nk_raw_eth *e = &pkt->eth;
    /* Separator before the network layer: ", " after link addresses, a space otherwise. */
    const char *sep = " ";
    if (pkt->layers & NK_RAW_LINK) {
        /* Link addresses only on request (-e, as tcpdump): on loopback they are all zero and
         * on Ethernet they rarely matter, while they take a third of the line. */
        if (p->link) {
            mac_text(e->src, a, sizeof a);
            mac_text(e->dst, b, sizeof b);
            fprintf(out, " %s > %s", a, b);
            sep = ", ";
        }
        if (pkt->net == NK_RAW_NET_NONE)
            fprintf(out, " ethertype 0x%04x (%s)", e->type, nk_raw_ethertype_name(e->type));
    }
    const nk_raw_ip *ip = &pkt->ip;
    if (!(pkt->layers & NK_RAW_NETWORK))
        return;
    if (pkt->net == NK_RAW_NET_ARP) {
        const nk_raw_arp *r = &pkt->arp;
        fprintf(out, "%sARP %s", sep, r->op == 1 ? "request" : r->op == 2 ? "reply" : "op");
        if (r->ether_ipv4) {
            inet_ntop(AF_INET, r->spa, a, sizeof a);
            inet_ntop(AF_INET, r->tpa, b, sizeof b);
            fprintf(out, " %s > %s", a, b);
        }
        return;
    }
    ip_text(ip, ip->src, a, sizeof a);
    ip_text(ip, ip->dst, b, sizeof b);
    fprintf(out, "%sIPv%d %s > %s %s %u len %zu", sep, ip->version, a, b,
            ip->version == 6 ? "hlim" : "ttl", ip->ttl, ip->total_len);
    if (ip->fragment)
        fprintf(out, " frag id %u off %u%s", (unsigned)ip->id, ip->frag_off, ip->mf ? " MF" : "");
}

/* The transport part of a one-line summary (TCP, UDP or ICMP). */
static void sniff_line_transport(FILE *out, const nk_raw_packet *pkt, const tcp_view *v)
{
    char fl[16];
    switch (pkt->transport) {
    case NK_RAW_TP_TCP:
        fprintf(out, ", TCP %u > %u [%s] seq %u", pkt->tcp.sport, pkt->tcp.dport,
                nk_raw_tcp_flags(pkt->tcp.flags, fl, sizeof fl), v->rseq);
        if (pkt->tcp.flags & NK_TCP_ACK)
            fprintf(out, " ack %u", v->rack);
        fprintf(out, " win %u len %zu", pkt->tcp.window, pkt->payload_wire);
        break;
    case NK_RAW_TP_UDP:
        fprintf(out, ", UDP %u > %u len %zu", pkt->udp.sport, pkt->udp.dport, pkt->payload_wire);
        break;
    default: {
        int v6 = pkt->transport == NK_RAW_TP_ICMP6;
        const nk_raw_icmp *c = &pkt->icmp;
        const char *cn = nk_raw_icmp_code_name(v6, c->type, c->code);
        fprintf(out, ", %s %s", v6 ? "ICMPv6" : "ICMP", nk_raw_icmp_type_name(v6, c->type));
        if (cn)
            fprintf(out, " (%s)", cn);
        else if (c->code)
            fprintf(out, " code %u", c->code);
        if (c->echo)
            fprintf(out, " id %u seq %u", c->id, c->seq);
        fprintf(out, " len %zu", pkt->payload_wire);
    }
    }
}

static void line(sniff_printer *p, FILE *out, const nk_raw_packet *pkt, const tcp_view *v)
{
    sniff_line_net(p, out, pkt);
    if (pkt->layers & NK_RAW_TRANSPORT)
        sniff_line_transport(out, pkt, v);
    else if ((pkt->layers & NK_RAW_NETWORK) && pkt->net != NK_RAW_NET_ARP)
        fprintf(out, ", %s", nk_raw_proto_name(pkt->ip.proto));
    if ((pkt->layers & NK_RAW_PAYLOAD) && pkt->transport != NK_RAW_TP_ICMP &&
        pkt->transport != NK_RAW_TP_ICMP6 && printable(pkt->payload, pkt->payload_len)) {
        fputc(' ', out);
        put_text(out, pkt->payload, pkt->payload_len);
    }
    if (pkt->problem)
        fprintf(out, " [%s]", pkt->problem);
    if (p->handshake && v->note) {
        fprintf(out, "  -- %s", v->note);
        if (v->since_ms >= 0)
            fprintf(out, " +%.3f ms", v->since_ms);
    }
    fputc('\n', out);
}

/* The link block of the verbose form. */
static void sniff_verbose_link(FILE *out, const nk_raw_eth *e)
{
    char a[64], b[64];
    mac_text(e->src, a, sizeof a);
    mac_text(e->dst, b, sizeof b);
    fprintf(out, "  link:\n    ethernet src %s dst %s type 0x%04x (%s) header %zu\n", a, b,
            e->type, nk_raw_ethertype_name(e->type), e->hdr_len);
    for (unsigned i = 0; i < e->nvlan; i++)
        fprintf(out, "    vlan %u\n", e->vlan[i]);
}

/* The network block of the verbose form: ARP, IPv4 or IPv6. */
static void sniff_verbose_net(FILE *out, const nk_raw_packet *pkt)
{
    char a[64], b[64];
    const nk_raw_ip *ip = &pkt->ip;
    fputs("  network:\n", out);
    if (pkt->net == NK_RAW_NET_ARP) {
        const nk_raw_arp *r = &pkt->arp;
        fprintf(out, "    arp htype %u ptype 0x%04x op %u\n", r->htype, r->ptype, r->op);
        if (r->ether_ipv4) {
            mac_text(r->sha, a, sizeof a);
            inet_ntop(AF_INET, r->spa, b, sizeof b);
            fprintf(out, "    sender %s %s\n", a, b);
            mac_text(r->tha, a, sizeof a);
            inet_ntop(AF_INET, r->tpa, b, sizeof b);
            fprintf(out, "    target %s %s\n", a, b);
        }
        return;
    }
    if (ip->version == 4) {
        fprintf(out, "    ipv4 header %zu tos 0x%02x length %zu id %u flags%s%s%s offset %u "
                     "ttl %u protocol %u (%s) checksum 0x%04x\n",
                ip->hdr_len, ip->tos, ip->total_len, (unsigned)ip->id, ip->df ? " DF" : "",
                ip->mf ? " MF" : "", ip->df || ip->mf ? "" : " none", ip->frag_off, ip->ttl,
                ip->proto, nk_raw_proto_name(ip->proto), ip->checksum);
    } else {
        fprintf(out, "    ipv6 class 0x%02x flow 0x%05x payload %zu next-header %u (%s) "
                     "hop-limit %u extension-headers %u\n",
                ip->tos, (unsigned)ip->flow, ip->total_len - 40, ip->first_nxt,
                nk_raw_proto_name(ip->first_nxt), ip->ttl, ip->next_hdrs);
        if (ip->fragment)
            fprintf(out, "    fragment id %u offset %u%s\n", (unsigned)ip->id, ip->frag_off,
                    ip->mf ? " MF" : "");
    }
    ip_text(ip, ip->src, a, sizeof a);
    ip_text(ip, ip->dst, b, sizeof b);
    fprintf(out, "    src %s dst %s\n", a, b);
}

/* The TCP lines of the verbose form: header, options, and the --handshake note. */
static void sniff_verbose_tcp(sniff_printer *p, FILE *out, const nk_raw_tcp *t,
                              const tcp_view *v)
{
    char fl[16];
    fprintf(out, "    tcp sport %u dport %u seq %u (relative %u) ack %u (relative %u)\n"
                 "    header %zu flags [%s] window %u checksum 0x%04x urgent %u\n",
            t->sport, t->dport, t->seq, v->rseq, t->ack, v->rack, t->hdr_len,
            nk_raw_tcp_flags(t->flags, fl, sizeof fl), t->window, t->checksum, t->urgent);
    if (t->mss || t->wscale >= 0 || t->sack_ok || t->has_ts) {
        fputs("    options", out);
        if (t->mss)
            fprintf(out, " mss %u", t->mss);
        if (t->wscale >= 0)
            fprintf(out, " wscale %d", t->wscale);
        if (t->sack_ok)
            fputs(" sackOK", out);
        if (t->has_ts)
            fprintf(out, " ts %u ecr %u", t->tsval, t->tsecr);
        fputc('\n', out);
    }
    if (p->handshake && v->note) {
        fprintf(out, "    %s", v->note);
        if (v->since_ms >= 0)
            fprintf(out, " +%.3f ms", v->since_ms);
        fputc('\n', out);
    }
}

/* The transport block of the verbose form: TCP, UDP or ICMP. */
static void sniff_verbose_transport(sniff_printer *p, FILE *out, const nk_raw_packet *pkt,
                                    const tcp_view *v)
{
    fputs("  transport:\n", out);
    if (pkt->transport == NK_RAW_TP_TCP) {
        sniff_verbose_tcp(p, out, &pkt->tcp, v);
    } else if (pkt->transport == NK_RAW_TP_UDP) {
        const nk_raw_udp *u = &pkt->udp;
        fprintf(out, "    udp sport %u dport %u length %u checksum 0x%04x\n", u->sport,
                u->dport, u->len, u->checksum);
    } else {
        int v6 = pkt->transport == NK_RAW_TP_ICMP6;
        const nk_raw_icmp *c = &pkt->icmp;
        const char *cn = nk_raw_icmp_code_name(v6, c->type, c->code);
        fprintf(out, "    %s type %u (%s) code %u%s%s%s checksum 0x%04x", v6 ? "icmp6" : "icmp",
                c->type, nk_raw_icmp_type_name(v6, c->type), c->code, cn ? " (" : "",
                cn ? cn : "", cn ? ")" : "", c->checksum);
        if (c->echo)
            fprintf(out, " id %u seq %u", c->id, c->seq);
        fputc('\n', out);
    }
}

static void verbose(sniff_printer *p, FILE *out, const nk_raw_packet *pkt, const tcp_view *v)
{
    if (pkt->layers & NK_RAW_LINK)
        sniff_verbose_link(out, &pkt->eth);
    if (pkt->layers & NK_RAW_NETWORK)
        sniff_verbose_net(out, pkt);
    if (pkt->layers & NK_RAW_TRANSPORT)
        sniff_verbose_transport(p, out, pkt, v);
    if ((pkt->layers & NK_RAW_PAYLOAD) && pkt->payload_wire > 0) {
        fprintf(out, "  application:\n    %zu bytes", pkt->payload_wire);
        if (pkt->payload_len < pkt->payload_wire)
            fprintf(out, " (%zu captured)", pkt->payload_len);
        if (printable(pkt->payload, pkt->payload_len)) {
            fputc(' ', out);
            put_text(out, pkt->payload, pkt->payload_len);
        }
        fputc('\n', out);
    }
    if (pkt->problem)
        fprintf(out, "  [%s]\n", pkt->problem);
}

void sniff_print(sniff_printer *p, FILE *out, const struct timespec *ts, const char *iface,
                 const uint8_t *data, size_t len, size_t origlen)
{
    nk_raw_packet pkt;
    nk_raw_decode(data, len, &pkt);
    tcp_view v = {0};
    if (pkt.transport == NK_RAW_TP_TCP && (pkt.layers & NK_RAW_TRANSPORT))
        tcp_track(p, &pkt, ts, &v);

    struct tm tm;
    time_t sec = ts->tv_sec;
    localtime_r(&sec, &tm);
    fprintf(out, "%02d:%02d:%02d.%06ld", tm.tm_hour, tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000);
    if (p->show_iface && iface)
        fprintf(out, " %s", iface);
    if (p->verbose) {
        fprintf(out, " length %zu", origlen);
        if (len < origlen)
            fprintf(out, " (%zu captured)", len);
        fputc('\n', out);
        verbose(p, out, &pkt, &v);
    } else {
        line(p, out, &pkt, &v);
    }
    if (p->hex)
        hexdump(out, data, len);
    fflush(out);
}
