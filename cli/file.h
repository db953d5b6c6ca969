/* netkit file: the two halves (docs/file-protocol.md). */
#ifndef NETKIT_CLI_FILE_H
#define NETKIT_CLI_FILE_H

#include <stddef.h>
#include <stdint.h>

int file_send(int argc, char **argv);
int file_recv(int argc, char **argv);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void file_hex(const uint8_t *bytes, size_t n, char *out);

#endif
