/*
 * timefmt: RFC 3339 UTC timestamps with milliseconds
 * ("2026-11-24T10:00:00.123Z"), the only time format of the API.
 */
#ifndef CHATPLANE_TIMEFMT_H
#define CHATPLANE_TIMEFMT_H

#include <stdint.h>

#define TIMEFMT_LEN 25 /* 24 characters and the NUL */

/* Writes the UTC time unix_ms (milliseconds since 1970) into out. */
void timefmt_rfc3339(int64_t unix_ms, char out[TIMEFMT_LEN]);

/* Parses the format timefmt_rfc3339 writes (and the same without
 * milliseconds); returns 0 and sets *unix_ms, or -1. */
int timefmt_parse(const char *s, int64_t *unix_ms);

#endif
