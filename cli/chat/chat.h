/* netkit chat: the two halves (docs/chat-protocol.md). */
#ifndef NETKIT_CLI_CHAT_H
#define NETKIT_CLI_CHAT_H

/* Longest member name, and the characters allowed in one (so that a name is one word in the
 * space-separated protocol and prints safely). */
#define CHAT_NAME_MAX 32
/* Largest frame payload either side accepts: a command word, a name and the text. */
#define CHAT_FRAME_MAX 65536
/* Longest message text; a line longer than this is refused by chat join. */
#define CHAT_TEXT_MAX 60000

int chat_serve(int argc, char **argv);
int chat_join(int argc, char **argv);

/* 1 when name[0..len) is a valid member name: 1..CHAT_NAME_MAX of [A-Za-z0-9_.-]. */
int chat_name_valid(const char *name, size_t len);
/* 1 when text[0..len) may be relayed: no control characters other than tab. */
int chat_text_valid(const char *text, size_t len);

#endif
