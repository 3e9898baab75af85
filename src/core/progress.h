/*
 * progress: paces the progress one tool execution reports, so that a tool
 * sending thousands of notifications a second becomes a few timeline
 * events (docs/mcp.md, Progress).
 *
 * The rule: the first update is shown at once; after an update is shown,
 * the next one waits until interval_ms have passed, and only the latest of
 * those that arrived meanwhile is kept. The caller asks progress_due when
 * a held update becomes showable (to arm a timer) and takes it then. When
 * the execution ends, progress_drain hands over the update still held, so
 * the last value the tool reported is always shown, before the execution's
 * end: at most interval-paced updates plus one.
 *
 * Pure: time comes in as arguments (milliseconds of a monotonic clock).
 */
#ifndef CHATPLANE_PROGRESS_H
#define CHATPLANE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#define PROGRESS_INTERVAL_MS 250  /* at most one update shown per this many ms */
#define PROGRESS_MESSAGE_MAX 1024 /* bytes of a message kept; cut at a character */

/* One update. message is NULL for none; owned by whoever holds the update. */
typedef struct progress_update {
    double progress;
    double total; /* < 0: none */
    char *message;
} progress_update;

typedef struct progress_pace {
    int64_t interval_ms;
    bool shown;        /* an update was shown in this execution */
    int64_t shown_ms;  /* when the last one was */
    bool held;         /* an update waits */
    progress_update u; /* the update that waits */
} progress_pace;

void progress_init(progress_pace *p, int64_t interval_ms);
/* Frees the held update, if any. */
void progress_cleanup(progress_pace *p);
/* Forgets everything: a new execution starts. */
void progress_reset(progress_pace *p);

/* An update arrives: it replaces the one held. message is copied, cut to
 * PROGRESS_MESSAGE_MAX bytes at a UTF-8 character boundary. */
void progress_offer(progress_pace *p, double value, double total, const char *message);
/* When the held update may be shown: now or later (ms of the same clock);
 * -1 when nothing is held. */
int64_t progress_due(const progress_pace *p);
/* At now, moves the held update to *out (caller frees out->message) and
 * returns true when it may be shown; false (nothing moved) otherwise. */
bool progress_take(progress_pace *p, int64_t now_ms, progress_update *out);
/* The execution ends: moves the held update to *out whatever the time and
 * returns true, or returns false when nothing is held. */
bool progress_drain(progress_pace *p, progress_update *out);

#endif
