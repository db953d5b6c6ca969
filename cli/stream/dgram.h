/* The datagram halves of `netkit udp` and `netkit unix --dgram`: print what arrives, send
 * messages or stdin lines. The caller creates, binds or connects the socket; these run the loop
 * until the work is done or SIGINT/SIGTERM, and return the exit code. */
#ifndef NETKIT_CLI_DGRAM_TOOL_H
#define NETKIT_CLI_DGRAM_TOOL_H

#include "opt.h"

#include <stddef.h>

/* Largest datagram kept by default: a UDP payload is at most 65507 bytes over IPv4 and 65527
 * over IPv6, so 64 KiB holds any of them; --max-size lowers or raises it. */
#define DGRAM_DEFAULT_MAX 65536
#define DGRAM_LIMIT_MAX (16 * 1024 * 1024)
/* DGRAM_DEFAULT_MAX as text, for the help of the option tables. */
#define DGRAM_TEXT_(n) #n
#define DGRAM_TEXT(n) DGRAM_TEXT_(n)
#define DGRAM_DEFAULT_MAX_TEXT DGRAM_TEXT(DGRAM_DEFAULT_MAX)

typedef struct dgram_opts {
    int raw;           /* write the bytes exactly (no newline added) */
    int verbose;       /* "from ADDR (N bytes)" on stderr before each datagram */
    int echo;          /* listen: send each datagram back to its sender */
    size_t max_size;   /* bytes kept per datagram; longer ones are reported as truncated */
    int reply;         /* send: after sending, wait for one reply per datagram */
    int show_replies;  /* send: print replies that arrive even without --reply */
    long wait_ms;      /* send --reply: how long to wait for the replies after the last send */
} dgram_opts;

/* Keys of the datagram options in the option tables (cli/opt.h) of udp listen|send and unix
 * listen|connect; past the stream options' keys (stream/stream.h), which the unix tables hold
 * too. -w and -v are the short letters. */
enum {
    DGRAM_OPT_RAW = CLI_OPT_LONG + 32,
    DGRAM_OPT_ECHO,
    DGRAM_OPT_MAX_SIZE,
    DGRAM_OPT_REPLY,
    DGRAM_OPT_DGRAM,
};

/* Returned by dgram_on_opt for a key that is not a datagram option. */
enum { DGRAM_OPT_NOT_MINE = -2 };

/* One option of a datagram command (--raw, --echo, --max-size, --reply, -w, -v) into o: 0, an
 * exit code after printing why a value is bad, or DGRAM_OPT_NOT_MINE. Which side an option
 * belongs to is the caller's check (its table). */
int dgram_on_opt(const char *cmd, dgram_opts *o, int key, const char *value);

/* Print every datagram arriving on the bound socket fd until SIGINT/SIGTERM (exit 0). */
int dgram_listen(const char *cmd, int fd, const dgram_opts *o);

/* Send msgs[0..nmsgs) (or, when nmsgs is 0, each stdin line) as one datagram each on the
 * connected socket fd; dest names the destination in messages. */
int dgram_send(const char *cmd, int fd, const char *dest, char **msgs, int nmsgs,
               const dgram_opts *o);

#endif
