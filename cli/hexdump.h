/* Hex dump of traffic for -x: one line per 16 bytes,
 *   "> 00000010  68 65 6c 6c 6f 0a ...                               |hello.|"
 * with the direction marker first ('>' sent, '<' received) and the offset counted per
 * direction over the whole connection. */
#ifndef NETKIT_CLI_HEXDUMP_H
#define NETKIT_CLI_HEXDUMP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Dump len bytes that start at stream offset `offset` in direction dir. */
void hexdump(FILE *out, char dir, uint64_t offset, const void *data, size_t len);

#endif
