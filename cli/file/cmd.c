/* netkit file: reliable file transfer with SHA-256 checks. The sender is cli/file/send.c, the
 * receiver cli/file/recv.c; the messages are src/frame/xfer.c; the protocol is
 * docs/file-protocol.md. */
#include "cli.h"
#include "file/file.h"

void file_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

int cmd_file(int argc, char **argv)
{
    static const cli_cmd verbs[] = {
        {"send", "send files to a 'netkit file recv'", file_send},
        {"recv", "receive files into a directory", file_recv},
        {NULL, NULL, NULL},
    };
    return cli_dispatch("file", verbs, argc, argv);
}
