/* netkit file: the two halves (docs/file-protocol.md). */
#ifndef NETKIT_CLI_FILE_H
#define NETKIT_CLI_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int file_send(int argc, char **argv);
int file_recv(int argc, char **argv);

/* Partial files (".NAME.netkit-part-*") untouched this long are removed when a receiver
 * starts (file/partials.c). */
#define FILE_PARTIAL_STALE_SEC (24 * 3600)

/* Print DIR's partial files (name, size, age) on out; CLI_OK or a CLI error. */
int file_partials_list(const char *cmd, int dirfd, FILE *out);
/* Remove DIR's stale partial files that no receiver holds, one notice line each. */
void file_partials_clean(const char *cmd, int dirfd);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void file_hex(const uint8_t *bytes, size_t n, char *out);

#endif
