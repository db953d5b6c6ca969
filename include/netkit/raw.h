/* Packets: a layer-by-layer decoder, a filter language compiled to classic BPF, a pcap writer
 * and ICMP echo messages. Used by `netkit sniff` and `netkit ping`.
 *
 * Everything here is pure (bytes in, structs out) except the pcap writer, which writes to a
 * file descriptor the caller owns. Nothing opens sockets: that is the command's job.
 */
#ifndef NETKIT_RAW_H
#define NETKIT_RAW_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>
#include <linux/filter.h>
#include <errno.h>
#include <netkit/api.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

/* ISO C99 has no struct timespec (C11 and POSIX do): the functions below take a pointer,
 * for which the tag is enough. */
struct timespec;

/* ---- decoder (src/raw/decode.c) -------------------------------------------------------------
 * nk_raw_decode reads one frame that starts with an Ethernet header (on Linux loopback that
 * header is all zeroes but for the ethertype) and fills an nk_raw_packet. Every field it reads
 * is bounds-checked against len: a short or malformed frame is described as far as it goes and
 * `problem` names what was wrong ("truncated ipv4 header"); it never reads past data + len.
 * Pointers in the result (payload) point into data. */

enum {
    NK_RAW_LINK = 1u << 0,      /* eth is valid */
    NK_RAW_NETWORK = 1u << 1,   /* ip (or arp) is valid */
    NK_RAW_TRANSPORT = 1u << 2, /* tcp, udp or icmp is valid */
    NK_RAW_PAYLOAD = 1u << 3,   /* payload/payload_len describe the transport's payload */
};

enum { NK_RAW_NET_NONE = 0, NK_RAW_NET_IPV4, NK_RAW_NET_IPV6, NK_RAW_NET_ARP };
enum { NK_RAW_TP_NONE = 0, NK_RAW_TP_TCP, NK_RAW_TP_UDP, NK_RAW_TP_ICMP, NK_RAW_TP_ICMP6 };

/* TCP flag bits as in the header's 12th/13th byte (RFC 9293 section 3.1, RFC 3168 for E/W). */
enum {
    NK_TCP_FIN = 0x01, NK_TCP_SYN = 0x02, NK_TCP_RST = 0x04, NK_TCP_PSH = 0x08,
    NK_TCP_ACK = 0x10, NK_TCP_URG = 0x20, NK_TCP_ECE = 0x40, NK_TCP_CWR = 0x80,
};

typedef struct nk_raw_eth {
    uint8_t dst[6], src[6];
    uint16_t type;     /* the ethertype after any VLAN tags */
    unsigned nvlan;    /* 802.1Q/802.1ad tags skipped (at most 2) */
    uint16_t vlan[2];  /* their VLAN ids */
    size_t hdr_len;    /* 14 + 4 per tag */
} nk_raw_eth;

typedef struct nk_raw_arp {
    uint16_t htype, ptype, op;
    uint8_t sha[6], spa[4], tha[6], tpa[4]; /* valid for Ethernet/IPv4 ARP only */
    int ether_ipv4;                         /* 1 when the four fields above were filled */
} nk_raw_arp;

typedef struct nk_raw_ip {
    int version;         /* 4 or 6 */
    size_t hdr_len;      /* IPv4: IHL * 4; IPv6: 40 + extension headers walked */
    size_t total_len;    /* IPv4 total length; IPv6 40 + payload length */
    uint8_t tos;         /* IPv4 TOS / IPv6 traffic class */
    uint8_t ttl;         /* TTL or hop limit */
    uint8_t proto;       /* IPv4 protocol; IPv6: the next header after extension headers */
    uint8_t first_nxt;   /* IPv6: the next header field of the fixed header */
    uint32_t flow;       /* IPv6 flow label */
    uint32_t id;         /* IPv4 identification; IPv6: fragment header id */
    uint16_t checksum;   /* IPv4 header checksum */
    uint16_t frag_off;   /* fragment offset in bytes */
    int df, mf;          /* don't fragment / more fragments */
    int fragment;        /* part of a fragmented datagram (mf or an offset) */
    unsigned next_hdrs;  /* IPv6 extension headers walked */
    uint8_t src[16], dst[16]; /* IPv4 uses the first 4 bytes */
} nk_raw_ip;

typedef struct nk_raw_tcp {
    uint16_t sport, dport;
    uint32_t seq, ack;
    size_t hdr_len;      /* data offset * 4 */
    uint8_t flags;       /* NK_TCP_* */
    uint16_t window, checksum, urgent;
    /* Options seen (RFC 9293 section 3.2, RFC 7323, RFC 2018). */
    uint16_t mss;        /* 0: none */
    int wscale;          /* -1: none */
    int sack_ok;
    int has_ts;
    uint32_t tsval, tsecr;
} nk_raw_tcp;

typedef struct nk_raw_udp {
    uint16_t sport, dport, len, checksum;
} nk_raw_udp;

typedef struct nk_raw_icmp {
    uint8_t type, code;
    uint16_t checksum;
    int echo;            /* echo request or reply: id and seq are valid */
    uint16_t id, seq;
} nk_raw_icmp;

typedef struct nk_raw_packet {
    unsigned layers;     /* NK_RAW_LINK | ... : the layers decoded whole */
    size_t len;          /* bytes given to the decoder */
    nk_raw_eth eth;
    int net;             /* NK_RAW_NET_* */
    nk_raw_ip ip;
    nk_raw_arp arp;
    int transport;       /* NK_RAW_TP_* */
    nk_raw_tcp tcp;
    nk_raw_udp udp;
    nk_raw_icmp icmp;    /* ICMP or ICMPv6 */
    const uint8_t *payload;
    size_t payload_len;  /* bytes captured; may be less than the headers promise */
    size_t payload_wire; /* payload length the headers announce */
    /* NULL when the frame was well formed as far as it was decoded; otherwise a static
     * description such as "truncated ipv4 header", "bad ipv4 header length". */
    const char *problem;
} nk_raw_packet;

/* Decode an Ethernet frame. Returns 0 (even for malformed frames: see problem), -EINVAL when
 * an argument is NULL. */
int nk_raw_decode(const uint8_t *data, size_t len, nk_raw_packet *out);

/* Names for display: "IPv4", "TCP", "echo-request", "port-unreachable"... never NULL. */
const char *nk_raw_ethertype_name(uint16_t type);
const char *nk_raw_proto_name(uint8_t proto);
const char *nk_raw_icmp_type_name(int v6, uint8_t type);
/* The code's name for types that have named codes (unreachable, time exceeded...); NULL else. */
const char *nk_raw_icmp_code_name(int v6, uint8_t type, uint8_t code);
/* tcpdump-style flags: "S", "S.", ".", "P.", "F.", "R", "R." ("none" when none); buf >= 12. */
char *nk_raw_tcp_flags(uint8_t flags, char *buf, size_t buflen);

/* ---- filters (src/raw/filter.c) -------------------------------------------------------------
 * Grammar (docs/sniff.md):
 *   expr    := and { ("or" | "||") and }
 *   and     := unary { ("and" | "&&") unary }
 *   unary   := ("not" | "!") unary | "(" expr ")" | prim
 *   prim    := "ip" | "ip6" | "arp" | "icmp" | "icmp6"
 *            | ("tcp" | "udp") [ [dir] "port" N ]
 *            | [dir] "port" N | [dir] "host" ADDR        dir := "src" | "dst"
 * An empty expression accepts every packet. The program reads Ethernet frames (link header at
 * offset 0, as an AF_PACKET SOCK_RAW socket on Ethernet or loopback devices delivers them) and
 * returns the snap length to keep a packet, 0 to drop it. */

#define NK_RAW_SNAPLEN 262144u

typedef struct nk_raw_filter {
    struct sock_filter *insns; /* owned: nk_raw_filter_free */
    size_t len;
    /* When compiling failed with -EINVAL or -E2BIG: the byte offset in the expression where
     * the problem is, and a static description ("expected a port number"). */
    size_t err_pos;
    const char *err_what;
} nk_raw_filter;

/* Compile expr into out->insns. Returns 0, -EINVAL (syntax: err_pos/err_what say where and
 * why), -E2BIG (more than BPF_MAXINSNS instructions or too deeply nested), -ENOMEM. */
int nk_raw_filter_compile(const char *expr, nk_raw_filter *out);
void nk_raw_filter_free(nk_raw_filter *f);

/* ---- pcap files (src/raw/pcap.c) ------------------------------------------------------------
 * The classic libpcap format: a 24-byte file header (magic 0xa1b2c3d4 for microseconds or
 * 0xa1b23c4d for nanoseconds, written in host byte order as readers expect; version 2.4;
 * snaplen; link type 1, Ethernet), then per packet a 16-byte record header (ts_sec, ts_usec or
 * ts_nsec, incl_len, orig_len) and incl_len bytes. Each record is written with one writev, so
 * after every nk_pcap_write returns the file holds only whole records and is readable. */

enum { NK_PCAP_NSEC = 1 << 0 };
#define NK_PCAP_LINKTYPE_ETHERNET 1u
#define NK_PCAP_HDR_LEN 24u
#define NK_PCAP_REC_LEN 16u

typedef struct nk_pcap {
    int fd;            /* the caller's when nk_pcap_init was used; closed by nk_pcap_close */
    uint32_t snaplen;
    int flags;
    uint64_t packets;  /* records written */
} nk_pcap;

/* Fill the 24-byte file header. */
void nk_pcap_file_header(uint8_t out[NK_PCAP_HDR_LEN], uint32_t snaplen, int flags);
/* Fill a 16-byte record header; caplen is cut to snaplen by the caller. */
void nk_pcap_record_header(uint8_t out[NK_PCAP_REC_LEN], const struct timespec *ts,
                           uint32_t caplen, uint32_t origlen, int flags);

/* Create (truncate) path with mode 0644 and write the file header. 0 or negative errno. */
int nk_pcap_open(nk_pcap *p, const char *path, uint32_t snaplen, int flags);
/* Use an open fd (a pipe, stdout...): writes the file header. The fd is closed by close. */
int nk_pcap_init(nk_pcap *p, int fd, uint32_t snaplen, int flags);
/* Append one packet: at most snaplen of len bytes are kept; origlen is its length on the wire
 * (>= len). 0 or negative errno (the file then ends after the last whole record, unless the
 * disk filled in the middle of one: -ENOSPC/-EIO are reported). */
int nk_pcap_write(nk_pcap *p, const struct timespec *ts, const void *data, size_t len,
                  size_t origlen);
/* fsync is not done; close the descriptor. 0 or negative errno. */
int nk_pcap_close(nk_pcap *p);

/* ---- ICMP echo (src/raw/icmp.c) ------------------------------------------------------------ */

enum {
    NK_ICMP_ECHO_REPLY = 0, NK_ICMP_UNREACH = 3, NK_ICMP_ECHO = 8, NK_ICMP_TIME_EXCEEDED = 11,
    NK_ICMP6_UNREACH = 1, NK_ICMP6_TOO_BIG = 2, NK_ICMP6_TIME_EXCEEDED = 3,
    NK_ICMP6_ECHO = 128, NK_ICMP6_ECHO_REPLY = 129,
};

/* The Internet checksum (RFC 1071) of data, folded and complemented. */
uint16_t nk_icmp_checksum(const void *data, size_t len);

/* Build an echo request (RFC 792 "Echo or Echo Reply Message"; RFC 4443 section 4.1 for v6):
 * 8-byte header then payload_len bytes of a fixed pattern. The IPv4 checksum is filled in; for
 * ICMPv6 it is left 0 because the kernel computes it over the pseudo-header. Returns the
 * length, or -ENOSPC when cap is too small. */
ssize_t nk_icmp_echo_build(uint8_t *buf, size_t cap, int v6, uint16_t id, uint16_t seq,
                           size_t payload_len);

typedef struct nk_icmp_msg {
    uint8_t type, code;
    int reply;           /* an echo reply: id and seq valid */
    int error;           /* an error that quotes an echo request of ours: id and seq valid,
                          * from the quoted message (RFC 792: IP header + 8 bytes) */
    uint16_t id, seq;
    size_t data_len;     /* echo reply payload length */
} nk_icmp_msg;

/* Parse an ICMP message (starting at the ICMP header, no IP header). -EINVAL when it is too
 * short; 0 otherwise (neither reply nor error set for other messages). */
int nk_icmp_parse(const uint8_t *buf, size_t len, int v6, nk_icmp_msg *out);

/* Length of the IPv4 header at the start of buf (raw IPv4 sockets deliver it), or -EINVAL. */
int nk_icmp_ipv4_hdr_len(const uint8_t *buf, size_t len);

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
