/*
 * agui: the AG-UI 1.0 dialect (docs/protocols.md, AG-UI). Two pure parts:
 *
 * - agui_input_parse reads a RunAgentInput body into what a run needs:
 *   the thread, the client's run id, the new user message, the mode and
 *   the answers to interrupts (resume);
 * - agui_xlate translates a run's committed chatplane events, one at a
 *   time and in seq order, into AG-UI events framed for SSE
 *   ("data: <event JSON>" and a blank line), keeping the little state the
 *   order rules of AG-UI clients need: which text message and which step
 *   are open, and which tool calls still wait for their results.
 *
 * Nothing here does I/O; the HTTP side (net/api_protocols.c) feeds it the
 * same events the session's own stream carries.
 */
#ifndef CHATPLANE_AGUI_H
#define CHATPLANE_AGUI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/agentproto.h"
#include "lib/buf.h"

/* The most resume entries and messages one request may carry. */
#define AGUI_RESUME_MAX   16
#define AGUI_MESSAGES_MAX 10000
/* The most bytes of context text the system note takes. */
#define AGUI_CONTEXT_MAX 16384

/* One answer to an interrupt: resolved with payload.approved true is an
 * approval; resolved with approved false, or cancelled, is a denial. */
typedef struct agui_resume {
    char *interrupt_id;
    bool approved;
    char *reason; /* payload.reason, or NULL */
} agui_resume;

typedef struct agui_input {
    char *thread_id;
    char *run_id;
    /* The newest user message's text when nothing (no assistant or tool
     * message) follows it in messages: the run's message; else NULL. */
    char *message;
    char *mode; /* forwardedProps.mode, or NULL */
    /* The context items as text for the system note, "The frontend gave
     * this context:" and a line "- description: value" each; NULL without
     * items. */
    char *context;
    agui_resume resume[AGUI_RESUME_MAX];
    size_t nresume;
} agui_input;

/*
 * Parses a RunAgentInput. Returns 0, or -1 with a message naming the
 * problem in err ("threadId must be 1 to 128 characters of
 * [A-Za-z0-9._:-]", "messages[2].content: only text parts are supported",
 * …). out needs agui_input_cleanup either way.
 */
int agui_input_parse(const char *text, size_t len, agui_input *out, char *err, size_t errlen);
/* The same for a body already read as JSON (borrowed). */
int agui_input_read(const json_t *in, agui_input *out, char *err, size_t errlen);
void agui_input_cleanup(agui_input *in);

typedef struct agui_xlate {
    /* The open text message and step, the tool calls waiting for results,
     * and, resuming, the approval whose approval_decided nothing goes out
     * before. */
    agentproto_xlate b;
    char *thread_id, *run_id;
    int steps;
} agui_xlate;

/* resume_approval: the approval whose decision a resumed stream starts
 * after (NULL for a new run). Strings are copied. */
void agui_xlate_init(agui_xlate *x, const char *thread_id, const char *run_id,
                     const char *resume_approval);
void agui_xlate_cleanup(agui_xlate *x);

/*
 * Appends the AG-UI frames for one chatplane event (an object as
 * docs/events.md describes it; borrowed). Returns 0 to go on, 1 when the
 * AG-UI run is over (RUN_FINISHED or RUN_ERROR went out: the stream ends),
 * or BUF_TOOBIG.
 */
int agui_xlate_event(agui_xlate *x, const json_t *ev, buf *out);

/* The run stopped, but its run_stopped could not be stored: appends the
 * frames that end the stream as an error, unless it has ended. */
void agui_xlate_unrecorded(agui_xlate *x, buf *out);

#endif
