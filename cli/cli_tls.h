/* TLS for the socket tools: tcp and unix listen|connect (stream), file send|recv, chat
 * serve|join. (http serve has its own, cli/http/tls.c.)
 *
 * Every tool takes the same options, with the same meaning and the same checks:
 *   server side  --tls with --tls-cert FILE --tls-key FILE, or --tls-self-signed (a certificate
 *                made at start; its SHA-256 is printed as "TLS certificate: self-signed,
 *                sha256 HEX" on stderr, before "listening on")
 *   client side  --tls, verified against the system's CAs (or --cacert FILE) and the host of
 *                ADDR (or --servername NAME; an IP literal must be an IP address of the
 *                certificate), or only against --pin-sha256 HEX, or not at all (-k/--insecure)
 * A tool lists the options in its own option table (so that each command's option list is
 * in one place) with the CLI_TLS_OPT_* values (CLI_TLS_CERT_OPTS and CLI_TLS_VERIFY_OPTS
 * write the entries that read the same everywhere), and hands every option to
 * cli_tls_option.
 *
 * The one-connection tools (tcp/unix, file send, chat join) finish the handshake before they
 * start pumping, with a bounded wait (cli_tls_handshake); the servers with many connections
 * (file recv, chat serve) drive it on their loop through cli_conn.
 */
#ifndef NETKIT_CLI_TLS_H
#define NETKIT_CLI_TLS_H

#include <stdio.h>
#include <netkit/netkit.h>

/* The handshake's bound when the command has no timeout of its own. */
#define CLI_TLS_HANDSHAKE_MS 10000

typedef struct cli_tls_opts {
    int on;                 /* --tls */
    const char *cert, *key; /* --tls-cert, --tls-key */
    int self_signed;        /* --tls-self-signed */
    const char *cacert;     /* --cacert */
    const char *pin;        /* --pin-sha256 */
    int insecure;           /* -k, --insecure */
    const char *servername; /* --servername */
} cli_tls_opts;

/* getopt_long values of the options (-k is the tool's own letter: it maps it to
 * CLI_TLS_OPT_INSECURE where -k means --insecure). */
enum {
    CLI_TLS_OPT_TLS = 0x7100,
    CLI_TLS_OPT_CERT,
    CLI_TLS_OPT_KEY,
    CLI_TLS_OPT_SELF_SIGNED,
    CLI_TLS_OPT_CACERT,
    CLI_TLS_OPT_PIN,
    CLI_TLS_OPT_INSECURE,
    CLI_TLS_OPT_SERVERNAME,
};

/* Entries of a command's option table (cli/opt.h) that read the same for every tool: the
 * listener's certificate, and how a client checks the server's. --tls (its text gives the
 * tool's bounds) and -k/--insecure (the tool's own letter) are written by each tool. */
#define CLI_TLS_CERT_OPTS                                                                     \
    {"tls-cert", CLI_TLS_OPT_CERT, "FILE",                                                    \
     "the certificate chain (PEM, leaf first), with --tls-key"},                              \
    {"tls-key", CLI_TLS_OPT_KEY, "FILE", "the private key of --tls-cert (PEM)"},              \
    {"tls-self-signed", CLI_TLS_OPT_SELF_SIGNED, NULL,                                        \
     "a certificate made at start (ECDSA P-256, valid 30 days) naming localhost, the "        \
     "loopback addresses, this host's name and the listening address (each interface's "     \
     "when listening on all of them); \"TLS certificate: self-signed, sha256 HEX\" on "       \
     "stderr, before the readiness line, is what a client pins with --pin-sha256"}
#define CLI_TLS_VERIFY_OPTS                                                                   \
    {"cacert", CLI_TLS_OPT_CACERT, "FILE",                                                    \
     "trust the CA certificates of FILE (PEM) instead of the system's store"},                \
    {"pin-sha256", CLI_TLS_OPT_PIN, "HEX",                                                    \
     "accept exactly the certificate whose SHA-256 fingerprint is HEX (64 hex digits, "       \
     "colons allowed: what --tls-self-signed prints), without CA or name checks"}

/* One getopt result: 1 when c is a TLS option (recorded in o), 0 when it is not. */
int cli_tls_option(cli_tls_opts *o, int c, const char *arg);

/* After the options: 0, or CLI_USAGE (printed) when they do not go together or do not belong
 * to this side (server: 1 for a listener, 0 for a client). */
int cli_tls_check(const char *cmd, const cli_tls_opts *o, int server);

/* A self-signed certificate added to ctx, for localhost, the loopback addresses, this host's
 * name and each address (for a wildcard one, every interface's address of its family: what a
 * server's "reachable at" lines show), so that a client can use any URL the server announced.
 * fp gets its SHA-256 fingerprint. 0 or a negative errno (why in err). */
int cli_tls_add_self_signed(nk_tls_ctx *ctx, const nk_addr *addrs, int naddrs,
                            char fp[NK_TLS_FP_HEX], char *err, size_t errlen);

/* The server context. With --tls-self-signed the certificate names localhost, the loopback
 * addresses, this host's name and the listening address (every interface's for a wildcard),
 * and its fingerprint is printed. 0 or CLI_FAIL (printed). */
int cli_tls_server_ctx(const char *cmd, const cli_tls_opts *o, const nk_addr *bound,
                       nk_tls_ctx **out);

/* The client context: 0 or CLI_FAIL (printed). */
int cli_tls_client_ctx(const char *cmd, const cli_tls_opts *o, nk_tls_ctx **out);

/* The name the server's certificate must carry: --servername, else the host of the ADDR
 * operand as typed ("localhost" for PORT and :PORT, the address for [IPV6]:PORT), NULL for
 * a unix: address. buf holds it. */
const char *cli_tls_server_name(const cli_tls_opts *o, const char *addr_text, char *buf,
                                size_t len);

/* The handshake on the connected socket fd, waiting at most timeout_ms (poll). On success
 * *out is the connection. On failure nothing is kept, why (a line such as "certificate verify
 * failed: self-signed certificate" or "handshake timed out after 10000 ms") is in why, and
 * a negative error is returned. */
int cli_tls_handshake(nk_tls_ctx *ctx, int fd, const char *server_name, long timeout_ms,
                      nk_tls **out, char *why, size_t whylen);

/* Whether a failed handshake (its error rc and reason why) is a peer that closed without a
 * word: a port probe (tcp wait, nc -z), which the servers do not report. */
int cli_tls_closed_early(int rc, const char *why);

/* For the tools that connect once (file send, chat join): connect to addr (text is the ADDR
 * operand) and, with --tls, shake hands, waiting at most timeout_ms for each. 0 with *fd (and
 * *t with --tls), or an exit code after saying why. */
int cli_tls_connect(const char *cmd, const cli_tls_opts *o, const char *text,
                    const nk_addr *addr, long timeout_ms, int *fd, nk_tls **t);

/* -v: protocol and cipher, the peer certificate's subject and SHA-256 (on stderr). */
void cli_tls_print_info(const nk_tls *t);

/* ---- a socket with or without TLS, for tools that watch it themselves ------------------ */

/* Reads with a buffer of at least this many bytes take a whole TLS record, so nothing is
 * left inside OpenSSL (nk_tls_pending is 0) and the socket's readiness tells the whole
 * story, as for a plain socket. */
#define CLI_CONN_READ_MIN 16384

typedef struct cli_conn {
    int fd;
    nk_tls *tls;      /* NULL: plain */
    int handshaking;  /* a TLS handshake is under way (cli_conn_handshake) */
    unsigned rd_wait; /* the readiness the next read waits for */
    unsigned wr_wait; /* the readiness the next write waits for */
} cli_conn;

/* A plain connection on fd, optionally with tls (already through its handshake: owned now). */
void cli_conn_init(cli_conn *c, int fd, nk_tls *tls);
/* Start a server-side TLS handshake on the connection, to be driven by cli_conn_handshake.
 * 0 or a negative error. */
int cli_conn_accept_tls(cli_conn *c, nk_tls_ctx *ctx);
/* Drive the handshake: 0 when done (or plain), -EAGAIN (watch cli_conn_interest), or an
 * error (cli_conn_why says why). */
int cli_conn_handshake(cli_conn *c);
/* Read: > 0 bytes, 0 at the peer's end (FIN or close_notify), -EAGAIN, or an error. */
ssize_t cli_conn_read(cli_conn *c, void *buf, size_t len);
/* Send from the front of b and consume what was taken: > 0, -EAGAIN, or an error. */
ssize_t cli_conn_send(cli_conn *c, nk_buf *b);
/* Events to watch for the given wishes. */
unsigned cli_conn_interest(const cli_conn *c, int reading, int writing);
/* Whether the events reported let a read, or a write, go on. */
int cli_conn_can_read(const cli_conn *c, unsigned events);
int cli_conn_can_write(const cli_conn *c, unsigned events);
/* A line for the last error err of c: the TLS reason when there is one. */
const char *cli_conn_why(const cli_conn *c, int err);
/* Send close_notify when TLS (best effort), free the TLS state and close the socket. */
void cli_conn_close(cli_conn *c);

#endif
