/* netkit chat: group chat over TCP with NK_FRAME_LEN32 framed text messages. The server is
 * cli/chat_server.c, the client cli/chat_client.c; the protocol is docs/chat-protocol.md. */
#include "cli.h"
#include "chat.h"

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
    /* Control characters would let one member move another's cursor or clear their screen. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
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
