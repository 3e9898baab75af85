/*
 * term: small helpers for text shown on a terminal: display columns of UTF-8
 * text, cutting it to fit, scrubbing control characters out of text that
 * came from a model or a tool, and what the environment says about the
 * terminal (its width, UTF-8, colour).
 *
 * Columns are counted one per character, and one per unit of bytes that is
 * not UTF-8 (lib/utf8.h), which a terminal shows as U+FFFD. Wide (East Asian) characters and
 * combining marks are counted as one column too; a line holding them may
 * end up a little shorter or longer than asked, never broken in the middle
 * of a character.
 */
#ifndef CHATPLANE_TERM_H
#define CHATPLANE_TERM_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* The display columns of s[0..len). */
size_t term_cols(const char *s, size_t len);

/* The length in bytes of the longest prefix of s[0..len) that takes at most
 * cols columns; it ends on a character boundary. */
size_t term_fit(const char *s, size_t len, size_t cols);

/*
 * Appends s[0..len) to b with every control character replaced by repl:
 * C0 controls (bytes below 0x20) except those listed in keep (e.g. "\n\t"),
 * DEL, and the C1 controls U+0080..U+009F, which some terminals obey. Text
 * from models and tools goes through this before it reaches a terminal, so
 * it can never move the cursor, change colours or retitle the window. A CR
 * right before a kept LF is dropped (a line end written the DOS way).
 * Returns 0, or BUF_TOOBIG (b then holds what fitted).
 */
int term_clean(buf *b, const char *s, size_t len, const char *keep, const char *repl);

/* The columns of the terminal on fd, or fallback when fd is not a terminal
 * or the terminal reports no size. */
int term_width(int fd, int fallback);

/* Whether fd_a and fd_b are both terminals and the same one. */
bool term_same(int fd_a, int fd_b);

/* Whether the locale variables (LC_ALL, else LC_CTYPE, else LANG) name
 * UTF-8. */
bool term_env_utf8(void);

/* Whether colour is wanted: NO_COLOR unset or empty (https://no-color.org). */
bool term_env_color(void);

/* Whether TERM names a terminal that understands "\r" and "ESC [ K":
 * anything but unset, empty or "dumb". */
bool term_env_capable(void);

#endif
