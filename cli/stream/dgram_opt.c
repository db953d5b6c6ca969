/* The options the datagram commands share (udp listen|send, unix listen|connect --dgram): one
 * place for their values' checks and messages. */
#include "cli.h"
#include "stream/dgram.h"

int dgram_on_opt(const char *cmd, dgram_opts *o, int key, const char *value)
{
    long v;
    switch (key) {
    case DGRAM_OPT_RAW:
        o->raw = 1;
        return 0;
    case DGRAM_OPT_ECHO:
        o->echo = 1;
        return 0;
    case DGRAM_OPT_REPLY:
        o->reply = 1;
        return 0;
    case DGRAM_OPT_MAX_SIZE:
        if (cli_parse_long(value, 1, DGRAM_LIMIT_MAX, &v) < 0)
            return cli_usage(cmd, "invalid --max-size '%s' (1 to %d bytes)", value,
                             DGRAM_LIMIT_MAX);
        o->max_size = (size_t)v;
        return 0;
    case 'w':
        if (cli_parse_seconds(value, &o->wait_ms) < 0)
            return cli_usage(cmd, "invalid time '%s' for -w (seconds)", value);
        return 0;
    case 'v':
        o->verbose = 1;
        return 0;
    default:
        return DGRAM_OPT_NOT_MINE;
    }
}
