/*
 * ask_view: how `chatplane ask` shows a run. One run's events go in, in
 * order; three views render them:
 *
 *   json   every event as one JSON line on stdout, the stored text exactly;
 *   plain  the assistant text on stdout; on stderr one line per status,
 *          tool execution, budget, guardrail, error and the stop, with no
 *          control characters (for logs and CI);
 *   tty    the assistant text on stdout; on stderr one status line redrawn
 *          in place (spinner, status, elapsed seconds, steps, tool calls
 *          and tokens against their limits), a permanent line per finished
 *          tool execution, guardrail, error and budget warning above it,
 *          and at the end the stop reason, the usage and the recovery
 *          suggestion.
 *
 * When stdout and stderr are the same terminal, the status line shares the
 * screen with the streamed answer. The status line is drawn only while the
 * answer's cursor sits at the start of a line: a token clears it before its
 * text is written, and it comes back with the next spinner tick once the
 * text has ended its line (a newline in the text, or the end of the
 * assistant message, which ends the line). While a line of the answer is
 * being written the spinner therefore pauses; the text itself is never
 * overwritten. When stdout is not that terminal (redirected to a file or a
 * pipe) the status line is redrawn freely.
 */
#ifndef CHATPLANE_ASK_VIEW_H
#define CHATPLANE_ASK_VIEW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/evt.h"

struct event_base;

typedef enum ask_view_kind { ASK_VIEW_JSON, ASK_VIEW_PLAIN, ASK_VIEW_TTY } ask_view_kind;

typedef struct ask_view_opts {
    ask_view_kind kind;
    FILE *out;               /* the assistant text, or the JSON lines */
    FILE *err;               /* everything else */
    struct event_base *base; /* runs the tty view's spinner timer; NULL: no timer */
    bool color;              /* tty: ANSI colours */
    bool shared;             /* tty: out and err are the same terminal */
    bool utf8;               /* tty: the terminal shows UTF-8 (spinner, marks) */
    int width;               /* tty: columns; 0 asks err's terminal at each redraw */
    int64_t (*now_ms)(void); /* monotonic milliseconds; NULL: clock_mono_ms */
} ask_view_opts;

typedef struct ask_view ask_view;

/*
 * Fills o for this process: --json gives the json view; otherwise the tty
 * view when stderr is a terminal that understands "\r" and "ESC [ K" (TERM
 * set and not "dumb"), else the plain view. Colour follows NO_COLOR, UTF-8
 * the locale variables. out and err are stdout and stderr.
 */
void ask_view_detect(ask_view_opts *o, bool json, struct event_base *base);

/* A new view; o is copied. Free it with ask_view_free (NULL is fine). */
ask_view *ask_view_new(const ask_view_opts *o);
void ask_view_free(ask_view *v);

/* Renders one event of the run. */
void ask_view_event(ask_view *v, const evt *ev);

/* Advances the spinner and redraws the status line (tty); the view's timer
 * calls it ten times a second. */
void ask_view_tick(ask_view *v);

/* The first Ctrl-C: the tty view says that a second one quits at once. */
void ask_view_interrupted(ask_view *v);

/* Ends the output: the answer's last line is ended and the status line
 * cleared. Call it before exiting, also when the run never stopped. */
void ask_view_end(ask_view *v);

#endif
