/*
 * civil: dates of the proleptic Gregorian calendar as day numbers, with no
 * time zone or libc state involved (gmtime_r and timegm need both, and
 * differ between libcs before 1970). The day conversions are Howard
 * Hinnant's days_from_civil and civil_from_days; they are exact for any year
 * whose day number fits in an int64_t with room for the arithmetic, far
 * beyond the ±300000 years the callers ever pass.
 */
#ifndef CHATPLANE_CIVIL_H
#define CHATPLANE_CIVIL_H

#include <stdbool.h>
#include <stdint.h>

/* Days since 1970-01-01 of the date y-m-d (m 1..12, d 1..31; a day past
 * the end of its month counts on into the next). Negative before 1970. */
int64_t civil_days_from(int64_t y, int m, int d);

/* The date of the day `days` days after 1970-01-01 (negative: before). */
void civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/* Whether y is a leap year. */
bool civil_is_leap(int64_t y);

/* The number of days of month m (1..12) in year y. */
int civil_month_days(int64_t y, int m);

#endif
