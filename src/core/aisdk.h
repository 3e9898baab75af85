/*
 * aisdk: the Vercel AI SDK UI message stream (docs/protocols.md, AI SDK).
 * Two pure parts, like core/agui:
 *
 * - aisdk_input_read reads the body DefaultChatTransport posts
 *   ({id, messages: [UIMessage…], trigger, messageId}) into what a run
 *   needs: the chat (thread) id, the new user message, or the answer to
 *   an approval the last assistant message carries;
 * - aisdk_xlate translates a run's committed chatplane events into UI
 *   message stream chunks framed for SSE ("data: <chunk JSON>" and a blank
 *   line, then "data: [DONE]"), keeping which text part and which step are
 *   open and which tool calls wait for results.
 */
#ifndef CHATPLANE_AISDK_H
#define CHATPLANE_AISDK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/agentproto.h"
#include "lib/buf.h"

#define AISDK_MESSAGES_MAX 10000

typedef struct aisdk_input {
    char *chat_id;
    bool regenerate; /* trigger "regenerate-message" */
    char *message;   /* the last message is a user message: its text */
    char *mode;      /* an extra body field "mode", or NULL */
    /* The last message is an assistant message with a tool part in state
     * approval-responded: the decision it carries. */
    char *approval_id;
    bool approved;
    char *reason; /* or NULL */
} aisdk_input;

/*
 * Reads the body (borrowed). Returns 0, or -1 with a message naming the
 * problem in err ("id must be 1 to 128 characters of [A-Za-z0-9._:-]",
 * "messages[0].parts[1]: only text parts are supported", …). out needs
 * aisdk_input_cleanup either way.
 */
int aisdk_input_read(const json_t *in, aisdk_input *out, char *err, size_t errlen);
/* The same from text (what the fuzz target feeds). */
int aisdk_input_parse(const char *text, size_t len, aisdk_input *out, char *err, size_t errlen);
void aisdk_input_cleanup(aisdk_input *in);

typedef struct aisdk_xlate {
    /* The open text part and step, the tool calls without a result yet,
     * and the approval whose decision nothing goes out before. */
    agentproto_xlate b;
    json_t *decided; /* approvals decided before the stream began: no end at their requests */
    json_t *denied;  /* tool call ids whose call was denied */
    char *tool_status, *tool_error; /* of the last tool_finished */
} aisdk_xlate;

/* wait_approval: a continuation after that approval's decision (NULL for
 * a new run or a resume); copied. The stream ends at a request for an
 * approval, unless aisdk_xlate_decided named it: a resume replays the run
 * from its start, and the requests decided already are only shown. */
void aisdk_xlate_init(aisdk_xlate *x, const char *wait_approval);
void aisdk_xlate_decided(aisdk_xlate *x, const char *approval_id);
void aisdk_xlate_cleanup(aisdk_xlate *x);

/*
 * Appends the chunks for one chatplane event (borrowed). Returns 0 to go
 * on, 1 when the stream is over ("data: [DONE]" went out), or BUF_TOOBIG.
 */
int aisdk_xlate_event(aisdk_xlate *x, const json_t *ev, buf *out);

/* The run stopped, but its run_stopped could not be stored: appends the
 * frames that end the stream as an error, unless it has ended. */
void aisdk_xlate_unrecorded(aisdk_xlate *x, buf *out);

#endif
