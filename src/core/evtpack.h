/*
 * evtpack: several encoded events of one session in one text, the form in
 * which the event log stores a run of token events as one row
 * (docs/storage.md, Token rows).
 *
 * Each event is one line: its seq in decimal, a tab, its type's name, a
 * tab, its JSON exactly as it is streamed, and a newline. Encoded events
 * hold no raw newline, so the line ends where the JSON does.
 */
#ifndef CHATPLANE_CORE_EVTPACK_H
#define CHATPLANE_CORE_EVTPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* The longest type name a line may carry. */
#define EVTPACK_TYPE_MAX 31

typedef struct evtpack_item {
    int64_t seq;
    char type[EVTPACK_TYPE_MAX + 1];
    const char *json; /* into the text read; not NUL-terminated */
    size_t json_len;
} evtpack_item;

/* Appends one event's line to b. Returns 0, or BUF_TOOBIG. */
int evtpack_append(buf *b, int64_t seq, const char *type, const char *json, size_t json_len);

/*
 * Reads the line at *at (before end) into *out and moves *at past it.
 * Returns false at the end of the text, or at a line that is not one
 * evtpack_append writes (a seq that is not a positive number in plain decimal, an empty or
 * overlong type name, no newline, no JSON object): what follows is then
 * not read.
 */
bool evtpack_next(const char **at, const char *end, evtpack_item *out);

#endif
