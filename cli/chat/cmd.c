/* netkit chat: group chat over TCP with NK_FRAME_LEN32 framed text messages. The server is
 * cli/chat/server.c, the client cli/chat/client.c; the protocol is docs/chat-protocol.md. */
#include "cli.h"
#include "chat/chat.h"

int chat_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > CHAT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

int chat_text_valid(const char *text, size_t len)
{
    /* Control characters would let one member move another's cursor or clear their screen:
     * C0 but tab, DEL, and C1 both as UTF-8 (U+0080..U+009F, "\xc2\x9b" is CSI) and as raw
     * bytes 0x80..0x9F outside valid UTF-8 (CSI to a terminal in an 8-bit mode). Clients
     * escape what they print anyway; the server refusing them keeps the relay clean for
     * clients that do not. */
    const unsigned char *u = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        size_t n = nk_utf8_len(u + i, len - i);
        if ((c < 0x20 && c != '\t') || c == 0x7f || (n == 2 && c == 0xC2 && u[i + 1] <= 0x9F) ||
            (n == 0 && c <= 0x9F))
            return 0;
        i += n ? n : 1;
    }
    return 1;
}

int cmd_chat(int argc, char **argv)
{
    static const cli_cmd verbs[] = {
        {"serve", "run a chat server", chat_serve},
        {"join", "join a chat: stdin lines out, messages to stdout", chat_join},
        {NULL, NULL, NULL},
    };
    return cli_dispatch("chat", verbs, argc, argv);
}
