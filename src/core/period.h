/*
 * period: the calendar periods owner budgets are counted in (docs/owner-
 * budgets.md): the UTC day, the week from Monday and the calendar month.
 * Pure arithmetic on Unix milliseconds through civil, so a period never
 * depends on the machine's time zone or a libc's gmtime.
 */
#ifndef CHATPLANE_PERIOD_H
#define CHATPLANE_PERIOD_H

#include <stdint.h>

typedef enum period_kind { PERIOD_DAY, PERIOD_WEEK, PERIOD_MONTH, PERIOD__COUNT } period_kind;

/* "day", "week" or "month"; "unknown" outside the enum. */
const char *period_name(period_kind p);
/* Returns 0 and sets *out for "day", "week" or "month", else -1. */
int period_parse(const char *name, period_kind *out);

/* The first millisecond of the period of kind p that holds the UTC time
 * unix_ms (negative times, before 1970, included). */
int64_t period_start_ms(period_kind p, int64_t unix_ms);
/* The first millisecond of the next period: when the one holding unix_ms
 * resets. */
int64_t period_end_ms(period_kind p, int64_t unix_ms);

#define PERIOD_TIME_LEN 21 /* "2026-12-04T00:00:00Z" and the NUL */
/* Writes unix_ms as RFC 3339 UTC to the second ("2026-12-04T00:00:00Z"),
 * the form a reset time is shown in; milliseconds are dropped. */
void period_format_time(int64_t unix_ms, char out[PERIOD_TIME_LEN]);

#endif
