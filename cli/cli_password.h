/* Reading a password from a terminal with echo off (cli_password.c). */
#ifndef NETKIT_CLI_PASSWORD_H
#define NETKIT_CLI_PASSWORD_H

#include <stdio.h>

/* Print prompt on prompt_out, read one line from the terminal in (echo off, restored after,
 * even when a signal ends the command meanwhile) into buf without its line end. Returns 0, or
 * -ENOTTY when in is not a terminal, -ENODATA at end of input, -EMSGSIZE for a line that does
 * not fit in cap bytes, another negative errno value otherwise. */
int cli_read_password(FILE *in, FILE *prompt_out, const char *prompt, char *buf, size_t cap);

#endif
