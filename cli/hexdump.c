/* Hex dump lines for -x (see hexdump.h). Each call starts a new line, so the dump of one read
 * or write is never mixed with the other direction's. */
#include "hexdump.h"

#include <ctype.h>

void hexdump(FILE *out, char dir, uint64_t offset, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t at = 0; at < len; at += 16) {
        size_t n = len - at < 16 ? len - at : 16;
        char line[128];
        int pos = snprintf(line, sizeof line, "%c %08llx  ", dir,
                           (unsigned long long)offset + at);
        for (size_t i = 0; i < 16; i++) {
            if (i < n)
                pos += snprintf(line + pos, sizeof line - (size_t)pos, "%02x ", p[at + i]);
            else
                pos += snprintf(line + pos, sizeof line - (size_t)pos, "   ");
            if (i == 7)
                line[pos++] = ' ';
        }
        line[pos++] = '|';
        for (size_t i = 0; i < n; i++)
            line[pos++] = isprint(p[at + i]) ? (char)p[at + i] : '.';
        line[pos++] = '|';
        line[pos] = '\0';
        fprintf(out, "%s\n", line);
    }
}
