/* netkit chat join on a terminal: a prompt line that incoming messages do not tear.
 *
 * With the terminal in canonical mode the kernel holds what is being typed, so a message
 * printed meanwhile lands in the middle of it. Here the terminal is switched to
 * non-canonical mode without echo (signals stay on, so Ctrl-C still leaves politely) and the
 * line is edited in this buffer: before a message is printed the prompt line is cleared, and
 * afterwards it is drawn again with what was typed. Editing keys: Backspace, Ctrl-U (whole
 * line), Ctrl-W (last word), Enter; Ctrl-D on an empty line ends the input; escape sequences
 * (arrow keys) are skipped.
 */
#include "chat/prompt.h"

#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PROMPT "> "

int chat_prompt_start(chat_prompt *p, int in_fd, FILE *out)
{
    memset(p, 0, sizeof *p);
    p->fd = in_fd;
    p->out = out;
    if (!isatty(in_fd) || !isatty(fileno(out)) || tcgetattr(in_fd, &p->saved) < 0)
        return 0;
    struct termios t = p->saved;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(in_fd, TCSANOW, &t) < 0)
        return 0;
    p->on = 1;
    return 1;
}

void chat_prompt_stop(chat_prompt *p)
{
    if (!p->on)
        return;
    chat_prompt_hide(p);
    fflush(p->out);
    tcsetattr(p->fd, TCSANOW, &p->saved);
    p->on = 0;
}

void chat_prompt_hide(chat_prompt *p)
{
    if (p->on && p->shown) {
        fputs("\r\033[K", p->out);
        p->shown = 0;
    }
}

/* Bytes of the line that fit after the prompt: a line that wrapped could not be cleared
 * with one "\r\033[K", so a long one shows its end only ("<" marks the cut). Bytes stand
 * for columns, so wide or multi-byte characters cut early, never late. */
static size_t visible_from(const chat_prompt *p)
{
    struct winsize ws;
    size_t cols = ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 8 ? ws.ws_col : 80;
    size_t room = cols - sizeof PROMPT; /* the prompt, the cursor's last column */
    if (p->len <= room)
        return 0;
    size_t from = p->len - (room - 1); /* one column for "<" */
    while (from < p->len && ((unsigned char)p->line[from] & 0xc0) == 0x80)
        from++;
    return from;
}

void chat_prompt_show(chat_prompt *p)
{
    if (!p->on || p->shown)
        return;
    size_t from = visible_from(p);
    fputs(PROMPT, p->out);
    if (from)
        fputc('<', p->out);
    fwrite(p->line + from, 1, p->len - from, p->out);
    fflush(p->out);
    p->shown = 1;
}

static void redraw(chat_prompt *p)
{
    chat_prompt_hide(p);
    chat_prompt_show(p);
}

/* Backspace (one character: UTF-8 continuation bytes go with it) or Ctrl-W (one word). */
static void prompt_erase(chat_prompt *p, int word)
{
    if (word) {
        while (p->len > 0 && p->line[p->len - 1] == ' ')
            p->len--;
        while (p->len > 0 && p->line[p->len - 1] != ' ')
            p->len--;
    } else {
        while (p->len > 0 && ((unsigned char)p->line[p->len - 1] & 0xc0) == 0x80)
            p->len--;
        if (p->len > 0)
            p->len--;
    }
    redraw(p);
}

/* A typed byte: kept (while the line has room) and echoed. */
static void prompt_insert(chat_prompt *p, unsigned char ch)
{
    if (p->len >= sizeof p->line)
        return;
    p->line[p->len++] = (char)ch;
    if (p->shown && visible_from(p) == 0) {
        fputc(ch, p->out);
        fflush(p->out);
    } else if (p->shown) {
        redraw(p);
    }
}

int chat_prompt_feed(chat_prompt *p, const char *bytes, size_t n, nk_buf *lines)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)bytes[i];
        if (p->esc) {
            /* ESC [ params final, or ESC and one byte */
            if (p->esc == 1)
                p->esc = ch == '[' || ch == 'O' ? 2 : 0;
            else if (ch >= 0x40 && ch <= 0x7e)
                p->esc = 0;
            continue;
        }
        switch (ch) {
        case 0x1b:
            p->esc = 1;
            break;
        case '\r':
        case '\n':
            chat_prompt_hide(p);
            if (nk_buf_append(lines, p->line, p->len) < 0 || nk_buf_append(lines, "\n", 1) < 0)
                return -1;
            p->len = 0;
            break;
        case 0x7f:
        case 0x08:
            prompt_erase(p, 0);
            break;
        case 0x15: /* Ctrl-U */
            p->len = 0;
            redraw(p);
            break;
        case 0x17: /* Ctrl-W */
            prompt_erase(p, 1);
            break;
        case 0x04: /* Ctrl-D */
            if (p->len == 0)
                return 1;
            break;
        default:
            if (ch >= 0x20 || ch == '\t')
                prompt_insert(p, ch);
        }
    }
    return 0;
}
