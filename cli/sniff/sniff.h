/* netkit sniff: the printer shared by sniff/cmd.c (capture) and sniff/print.c (output). */
#ifndef NETKIT_CLI_SNIFF_H
#define NETKIT_CLI_SNIFF_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* TCP connections remembered for relative sequence numbers and --handshake; the least
 * recently seen one is forgotten when a new one needs room. */
#define SNIFF_CONNS 512

typedef struct sniff_conn {
    int used;
    int family;
    uint8_t addr[2][16];   /* endpoint 0 is the sender of the first packet seen */
    uint16_t port[2];
    uint32_t base[2];      /* first sequence number per direction */
    int have_base[2];
    int state;             /* handshake / close progress, see sniff/print.c */
    int initiator;         /* direction of the SYN */
    int closer;            /* direction of the first FIN */
    uint32_t fin_end[2];   /* sequence number just after each direction's FIN */
    struct timespec last;  /* time of the previous annotated step */
    uint64_t used_at;      /* for eviction */
} sniff_conn;

typedef struct sniff_printer {
    int verbose, hex, handshake, show_iface;
    int link; /* -e: Ethernet addresses on each line */
    uint64_t tick;
    sniff_conn conns[SNIFF_CONNS];
} sniff_printer;

/* Print one captured frame (len bytes captured of origlen on the wire). */
void sniff_print(sniff_printer *p, FILE *out, const struct timespec *ts, const char *iface,
                 const uint8_t *data, size_t len, size_t origlen);

#endif
