/* netkit chat join: the prompt line on a terminal (chat/prompt.c). */
#ifndef NETKIT_CLI_CHAT_PROMPT_H
#define NETKIT_CLI_CHAT_PROMPT_H

#include <stddef.h>
#include <stdio.h>
#include <termios.h>

#include <netkit/buf.h>

typedef struct chat_prompt {
    int on;        /* the terminal is ours to edit on */
    int shown;     /* the prompt line is on the screen */
    int fd;
    FILE *out;
    struct termios saved;
    int esc;       /* inside an escape sequence: 1 after ESC, 2 inside CSI */
    size_t len;
    char line[4096]; /* what is typed; longer lines are cut here */
} chat_prompt;

/* Take over the terminal when in_fd and out are both terminals; returns 1 if so, else 0
 * (plain lines, nothing changed). */
int chat_prompt_start(chat_prompt *p, int in_fd, FILE *out);
/* Clear the prompt line and give the terminal its settings back. */
void chat_prompt_stop(chat_prompt *p);
/* Clear the prompt line before other output; chat_prompt_show draws it again. */
void chat_prompt_hide(chat_prompt *p);
void chat_prompt_show(chat_prompt *p);
/* Edit with typed bytes; each finished line goes to lines with its '\n'. Returns 1 at
 * Ctrl-D on an empty line (end of input), -1 when lines is full, else 0. */
int chat_prompt_feed(chat_prompt *p, const char *bytes, size_t n, nk_buf *lines);

#endif
