/* The option tables of tcp listen|connect and unix listen|connect (cli/opt.h): each is the
 * command's parser, the options of its --help and its option list in docs/netkit.1.
 *
 * The four share most entries; the macros below write each shared entry once. A listener's
 * table also names the client's TLS options and a client's the listener's (as "listen only",
 * "connect only"): they are parsed everywhere, so that using one on the wrong side says so
 * (cli_tls_check) instead of "unknown option". The unix tables hold the --dgram options too
 * (stream/unix.c tells the modes apart).
 */
#include "stream/dgram.h"
#include "stream/stream.h"

/* -k is --keep-open for listen and --insecure for connect (as nc and curl have it). */
#define STREAM_KEEP_OPEN_HELP                                                                 \
    "after a client leaves, wait for the next one, one at a time (stdin goes to the current " \
    "client, and the peer's FIN ends its connection)"

#define STREAM_VERBOSE_HELP                                                                   \
    "addresses, descriptor, socket options and byte counts on stderr; with --tls also the "   \
    "protocol, cipher and the peer's certificate (subject, SHA-256)"

/* What nk_sockopt_names() lists (src/net/sockopt.c). */
#define STREAM_SOCKOPT_NAMES                                                                  \
    "SO_RCVBUF SO_SNDBUF SO_KEEPALIVE SO_REUSEADDR SO_REUSEPORT SO_BROADCAST SO_LINGER "      \
    "SO_RCVLOWAT SO_SNDLOWAT SO_PRIORITY SO_MARK TCP_NODELAY TCP_KEEPIDLE TCP_KEEPINTVL "     \
    "TCP_KEEPCNT TCP_MAXSEG TCP_QUICKACK TCP_CORK TCP_USER_TIMEOUT TCP_FASTOPEN "             \
    "TCP_DEFER_ACCEPT IP_TTL IP_TOS IP_MULTICAST_TTL IP_MULTICAST_LOOP IPV6_UNICAST_HOPS "    \
    "IPV6_V6ONLY"

/* The pump's options and --sockopt; when: when the socket options are set. */
#define STREAM_PUMP_OPTS(when)                                                                \
    {"hex", 'x', NULL,                                                                        \
     "hex dump of the traffic on stderr ('>' sent, '<' received; with --tls the plaintext)"}, \
    {"crlf", STREAM_OPT_CRLF, NULL,                                                           \
     "send stdin's LF as CRLF (a CR already before it is kept, not doubled)"},                \
    {"close-on-eof", STREAM_OPT_CLOSE_ON_EOF, NULL,                                           \
     "at stdin's EOF send what is left and quit, without waiting for the peer"},              \
    {"frame", STREAM_OPT_FRAME, "KIND",                                                       \
     "line or len32 (a 4-byte big-endian length before each message): exchange messages "     \
     "instead of bytes; each stdin line is sent as one message and each message received "    \
     "is printed as one line"},                                                               \
    {"frame-output", STREAM_OPT_FRAME_OUTPUT, "raw|escaped|hex",                              \
     "how a received message is printed (with --frame): escaped (\\\\, \\n, \\r, \\t, \\xNN " \
     "for other control bytes and bytes that are not UTF-8; the default for len32 and on a "  \
     "terminal) keeps one message on one line; raw prints the bytes as they are; hex in "    \
     "lowercase hex"},                                                                        \
    {"sockopt", STREAM_OPT_SOCKOPT, "NAME=VALUE",                                             \
     "set a socket option " when ", repeatable: " STREAM_SOCKOPT_NAMES ". An unknown name "   \
     "or a bad value exits 2; Linux reports SO_RCVBUF and SO_SNDBUF as twice the value set"}

#define STREAM_HANDSHAKE_HELP                                                                 \
    " The handshake is done before any byte is copied, within -w (10 seconds without it), "   \
    "and the end of input sends close_notify before the FIN"

/* The listener's TLS options. */
#define STREAM_TLS_SERVER_OPTS                                                                \
    {"tls", CLI_TLS_OPT_TLS, NULL,                                                            \
     "speak TLS (1.2 or 1.3, forward-secret AEAD ciphers only) with the certificate of "      \
     "--tls-cert and --tls-key, or of --tls-self-signed." STREAM_HANDSHAKE_HELP ". A client " \
     "whose handshake fails is reported (one that closes without a word, such as a tcp wait " \
     "probe, is not); with -k the next one is served"},                                       \
    CLI_TLS_CERT_OPTS

/* The client's TLS options; tls_help: what --tls checks, name_help: what --servername is. */
#define STREAM_TLS_CLIENT_OPTS(tls_help, name_help)                                           \
    {"tls", CLI_TLS_OPT_TLS, NULL, "speak TLS (1.2 or 1.3). " tls_help STREAM_HANDSHAKE_HELP}, \
    CLI_TLS_VERIFY_OPTS,                                                                      \
    {"insecure", 'k', NULL, "no verification at all: encrypted, but not authenticated"},      \
    {"servername", CLI_TLS_OPT_SERVERNAME, "NAME", name_help}

#define STREAM_TLS_FAILED_HELP(cmd)                                                           \
    " A failed check is one line, \"netkit: " cmd ": TLS: certificate verify failed: "        \
    "REASON\", and exit status 1."

/* In a listener's table: the client's TLS options, parsed to be refused with a reason. */
#define STREAM_CLIENT_ONLY_OPTS(connect)                                                      \
    {"cacert", CLI_TLS_OPT_CACERT, "FILE",                                                    \
     "(connect only) the CAs a client trusts: see netkit " connect},                          \
    {"pin-sha256", CLI_TLS_OPT_PIN, "HEX",                                                    \
     "(connect only) the one certificate a client accepts: see netkit " connect},             \
    {"insecure", CLI_TLS_OPT_INSECURE, NULL,                                                  \
     "(connect only) a client that checks nothing: see netkit " connect},                     \
    {"servername", CLI_TLS_OPT_SERVERNAME, "NAME",                                            \
     "(connect only) the name a client sends and checks: see netkit " connect}

/* In a client's table: the listener's options, parsed to be refused with a reason. */
#define STREAM_LISTEN_ONLY_OPTS(listen)                                                       \
    {"keep-open", STREAM_OPT_KEEP_OPEN, NULL,                                                 \
     "(listen only) after a client leaves, wait for the next one: see netkit " listen},       \
    {"tls-cert", CLI_TLS_OPT_CERT, "FILE",                                                    \
     "(listen only) the listener's certificate: see netkit " listen},                         \
    {"tls-key", CLI_TLS_OPT_KEY, "FILE", "(listen only) its private key"},                    \
    {"tls-self-signed", CLI_TLS_OPT_SELF_SIGNED, NULL,                                        \
     "(listen only) a certificate made at start: see netkit " listen}

/* ---- tcp ---------------------------------------------------------------------------------- */

static const cli_opt tcp_listen_opts[] = {
    {"keep-open", 'k', NULL, STREAM_KEEP_OPEN_HELP},
    {"wait", 'w', "SEC", "idle timeout, and TLS handshake timeout: exit 1 \"timed out\""},
    {"verbose", 'v', NULL, STREAM_VERBOSE_HELP},
    STREAM_PUMP_OPTS("before listening, and on each accepted connection"),
    STREAM_TLS_SERVER_OPTS,
    STREAM_CLIENT_ONLY_OPTS("tcp connect"),
    {NULL, 0, NULL, NULL},
};

static const cli_operand tcp_listen_operands[] = {
    {"ADDR", "HOST:PORT, [IPV6]:PORT or PORT (all interfaces); port 0 picks a free port"},
    {NULL, NULL},
};

static void tcp_listen_notes(FILE *out)
{
    fputs("Once ready it prints \"listening on tcp://HOST:PORT\" on stderr, with the real\n"
          "port.\n"
          "\n"
          "Examples:\n"
          "  netkit tcp listen 127.0.0.1:9000 -k -v\n"
          "  netkit tcp listen 9000 --frame line --sockopt SO_RCVBUF=65536\n"
          "  netkit tcp listen 127.0.0.1:9443 --tls --tls-self-signed\n",
          out);
}

const cli_spec tcp_listen_spec = {
    .cmd = "tcp listen",
    .synopsis = "ADDR [-k] [options]",
    .about = "Wait for one client, then copy stdin to the socket and the socket to stdout,\n"
             "both at once. EOF on stdin sends FIN (shutdown) and keeps reading until the\n"
             "peer closes. A one-shot listener probed by tcp wait takes the probe as its\n"
             "client.\n",
    .operands = tcp_listen_operands,
    .opts = tcp_listen_opts,
    .notes = tcp_listen_notes,
};
CLI_SPEC_REGISTER(tcp_listen_spec);

static const cli_opt tcp_connect_opts[] = {
    {"wait", 'w', "SEC", "idle timeout, connect timeout (for each address) and TLS handshake "
                         "timeout: exit 1 \"timed out\""},
    {"verbose", 'v', NULL, STREAM_VERBOSE_HELP "; each address tried"},
    STREAM_PUMP_OPTS("before connecting (to each address)"),
    STREAM_TLS_CLIENT_OPTS("The server's certificate must chain to a CA of the system's store "
                           "(or of --cacert) and name the host of ADDR (an IP address among "
                           "its IP addresses), which is also sent as SNI."
                           STREAM_TLS_FAILED_HELP("tcp connect"),
                           "the name sent as SNI and checked in the certificate, instead of "
                           "the host of ADDR"),
    STREAM_LISTEN_ONLY_OPTS("tcp listen"),
    {NULL, 0, NULL, NULL},
};

static const cli_operand tcp_connect_operands[] = {
    {"ADDR", "HOST:PORT, [IPV6]:PORT or PORT (localhost); every address a name resolves to is "
             "tried in turn"},
    {NULL, NULL},
};

static void tcp_connect_notes(FILE *out)
{
    fputs("Examples:\n"
          "  netkit tcp connect 127.0.0.1:9000 --frame line\n"
          "  printf 'a\\nb\\n' | netkit tcp connect 127.0.0.1:7000 --frame len32\n"
          "  netkit tcp connect 127.0.0.1:9443 --tls --pin-sha256 HEX\n"
          "  netkit tcp connect localhost:9443 --tls --cacert ca.crt -v\n",
          out);
}

const cli_spec tcp_connect_spec = {
    .cmd = "tcp connect",
    .synopsis = "ADDR [options]",
    .about = "Connect, then copy stdin to the socket and the socket to stdout, both at once.\n"
             "EOF on stdin sends FIN (shutdown) and keeps reading until the peer closes.\n",
    .operands = tcp_connect_operands,
    .opts = tcp_connect_opts,
    .notes = tcp_connect_notes,
};
CLI_SPEC_REGISTER(tcp_connect_spec);

/* ---- unix --------------------------------------------------------------------------------- */

#define STREAM_DGRAM_HELP                                                                     \
    "datagram sockets instead of a stream: the options marked (--dgram), -w and -v work as "  \
    "for udp listen and udp send; stream options are refused. The client binds a temporary "  \
    "socket of its own in $TMPDIR (or /tmp), removed on exit, so that replies can come "     \
    "back, and prints them one per line"

#define STREAM_MAX_SIZE_HELP                                                                  \
    "(--dgram) bytes kept per datagram (default " DGRAM_DEFAULT_MAX_TEXT ", at most 16 MiB); " \
    "a longer one is reported on stderr as truncated, never silently cut"

static const cli_opt unix_listen_opts[] = {
    {"keep-open", 'k', NULL, STREAM_KEEP_OPEN_HELP},
    {"wait", 'w', "SEC", "idle timeout, and TLS handshake timeout: exit 1 \"timed out\" (no "
                         "effect with --dgram)"},
    {"verbose", 'v', NULL, STREAM_VERBOSE_HELP "; with --dgram \"from PATH (N bytes)\" "
                           "before each datagram"},
    STREAM_PUMP_OPTS("before listening, and on each accepted connection"),
    STREAM_TLS_SERVER_OPTS,
    STREAM_CLIENT_ONLY_OPTS("unix connect"),
    {"dgram", DGRAM_OPT_DGRAM, NULL, STREAM_DGRAM_HELP},
    {"raw", DGRAM_OPT_RAW, NULL, "(--dgram) write datagrams exactly, nothing added"},
    {"echo", DGRAM_OPT_ECHO, NULL, "(--dgram) send each datagram back to its sender"},
    {"reply", DGRAM_OPT_REPLY, NULL, "(--dgram, connect only) see netkit unix connect"},
    {"max-size", DGRAM_OPT_MAX_SIZE, "BYTES", STREAM_MAX_SIZE_HELP},
    {NULL, 0, NULL, NULL},
};

static const cli_operand unix_listen_operands[] = {
    {"PATH", "the socket path, with or without \"unix:\"; a stale socket file (one nobody "
             "answers on) is replaced"},
    {NULL, NULL},
};

static void unix_listen_notes(FILE *out)
{
    fputs("Once ready it prints \"listening on unix:PATH\" on stderr. The socket file is\n"
          "removed on exit, SIGINT and SIGTERM included.\n"
          "\n"
          "Examples:\n"
          "  netkit unix listen /tmp/s.sock -k\n"
          "  netkit unix listen /tmp/d.sock --dgram --echo -v\n"
          "  netkit unix listen /tmp/s.sock --tls --tls-cert s.crt --tls-key s.key\n",
          out);
}

const cli_spec unix_listen_spec = {
    .cmd = "unix listen",
    .synopsis = "PATH [-k] [options]\n"
                "       netkit unix listen PATH --dgram [--raw] [--echo] [-v] [--max-size BYTES]",
    .about = "Like tcp listen, on the unix socket PATH: wait for one client, then copy stdin\n"
             "to the socket and the socket to stdout, both at once; EOF on stdin sends FIN\n"
             "and keeps reading until the peer closes. With --dgram, print each datagram\n"
             "arriving at PATH on its own line instead (a newline is added when it has none).\n",
    .operands = unix_listen_operands,
    .opts = unix_listen_opts,
    .notes = unix_listen_notes,
};
CLI_SPEC_REGISTER(unix_listen_spec);

static const cli_opt unix_connect_opts[] = {
    {"wait", 'w', "SEC", "idle timeout and TLS handshake timeout: exit 1 \"timed out\"; with "
                         "--dgram, how long --reply waits after stdin ends (default 2)"},
    {"verbose", 'v', NULL, STREAM_VERBOSE_HELP "; with --dgram \"from PATH (N bytes)\" "
                           "before each reply"},
    STREAM_PUMP_OPTS("before connecting"),
    STREAM_TLS_CLIENT_OPTS("The server's certificate must chain to a CA of the system's store "
                           "(or of --cacert) and carry the name of --servername, which is also "
                           "sent as SNI; a unix socket has no host name to check, so --tls "
                           "needs --servername, --pin-sha256 or -k."
                           STREAM_TLS_FAILED_HELP("unix connect"),
                           "the name sent as SNI and checked in the certificate (a unix "
                           "socket has no host name of its own)"),
    STREAM_LISTEN_ONLY_OPTS("unix listen"),
    {"dgram", DGRAM_OPT_DGRAM, NULL, STREAM_DGRAM_HELP},
    {"raw", DGRAM_OPT_RAW, NULL, "(--dgram) write the replies exactly, nothing added"},
    {"echo", DGRAM_OPT_ECHO, NULL, "(--dgram, listen only) see netkit unix listen"},
    {"reply", DGRAM_OPT_REPLY, NULL, "(--dgram) after stdin ends, wait for one reply per "
                                     "datagram; exit 1 if they are not all back within -w"},
    {"max-size", DGRAM_OPT_MAX_SIZE, "BYTES", STREAM_MAX_SIZE_HELP},
    {NULL, 0, NULL, NULL},
};

static const cli_operand unix_connect_operands[] = {
    {"PATH", "the socket path, with or without \"unix:\""},
    {NULL, NULL},
};

static void unix_connect_notes(FILE *out)
{
    fputs("Examples:\n"
          "  netkit unix connect /tmp/s.sock\n"
          "  echo hi | netkit unix connect /tmp/d.sock --dgram --reply\n"
          "  netkit unix connect /tmp/s.sock --tls --cacert ca.crt --servername localhost\n",
          out);
}

const cli_spec unix_connect_spec = {
    .cmd = "unix connect",
    .synopsis = "PATH [options]\n"
                "       netkit unix connect PATH --dgram [--reply [-w SEC]] [-v]",
    .about = "Like tcp connect, to the unix socket PATH: copy stdin to the socket and the\n"
             "socket to stdout, both at once; EOF on stdin sends FIN and keeps reading until\n"
             "the peer closes. With --dgram, send each stdin line as one datagram to PATH\n"
             "instead.\n",
    .operands = unix_connect_operands,
    .opts = unix_connect_opts,
    .notes = unix_connect_notes,
};
CLI_SPEC_REGISTER(unix_connect_spec);
