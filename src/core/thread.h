/*
 * thread: the thread ids of the agent protocols (docs/protocols.md). An
 * AG-UI threadId or an AI SDK chat id names one session of its owner; the
 * session's id is derived from the owner and the thread id, so the same
 * thread always finds the same session, and two owners using the same
 * thread id never share one.
 */
#ifndef CHATPLANE_THREAD_H
#define CHATPLANE_THREAD_H

#include <stdbool.h>

#include "lib/id.h"

#define THREAD_ID_MAX 128

/* Whether s is 1 to 128 characters of [A-Za-z0-9._:-]. */
bool thread_id_valid(const char *s);

/* Writes "ses_" and 24 hex digits of SHA-256(owner, thread_id) into out.
 * owner NULL (authentication off) is the empty owner. */
void thread_session_id(const char *owner, const char *thread_id, char out[ID_MAX]);

#endif
