/*
 * timefmt: RFC 3339 UTC timestamps with milliseconds.
 *
 * The calendar arithmetic is done here rather than through gmtime_r and
 * timegm: it needs no time zone state, cannot fail, behaves the same on every
 * libc, and handles times before 1970 (core/civil.h).
 */
#include "core/timefmt.h"

#include <string.h>

#include "core/civil.h"

#define TIMEFMT__MS_PER_DAY INT64_C(86400000)
/* The range a four-digit year can show: 0000-01-01T00:00:00.000Z and
 * 9999-12-31T23:59:59.999Z. */
#define TIMEFMT__MIN_MS INT64_C(-62167219200000)
#define TIMEFMT__MAX_MS INT64_C(253402300799999)

/* Writes v as exactly width decimal digits (v is within range). */
static void timefmt__put(char *out, int64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/*
 * Times outside the years 0000..9999 are clamped to the nearest end of that
 * range, because the format has room for four year digits only; such times
 * do not occur in chatplane's data.
 */
void timefmt_rfc3339(int64_t unix_ms, char out[TIMEFMT_LEN])
{
    /* The last second written by this thread, whose text a time within it
     * reuses: every event is stamped, and those a thread makes come many to
     * a second (docs/benchmarks.md, fix 87). */
    static _Thread_local int64_t last_sec = INT64_MIN;
    static _Thread_local char last[TIMEFMT_LEN];

    if (unix_ms < TIMEFMT__MIN_MS) unix_ms = TIMEFMT__MIN_MS;
    if (unix_ms > TIMEFMT__MAX_MS) unix_ms = TIMEFMT__MAX_MS;
    int64_t ms = unix_ms % 1000;
    if (ms < 0) ms += 1000;
    int64_t sec = (unix_ms - ms) / 1000;
    if (sec == last_sec) {
        memcpy(out, last, TIMEFMT_LEN);
        timefmt__put(out + 20, ms, 3);
        return;
    }

    /* Floor division, so that times before 1970 fall on the earlier day. */
    int64_t days = unix_ms / TIMEFMT__MS_PER_DAY;
    int64_t rem = unix_ms % TIMEFMT__MS_PER_DAY;
    if (rem < 0) {
        rem += TIMEFMT__MS_PER_DAY;
        days--;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);

    memcpy(out, "0000-00-00T00:00:00.000Z", TIMEFMT_LEN);
    timefmt__put(out, y, 4);
    timefmt__put(out + 5, m, 2);
    timefmt__put(out + 8, d, 2);
    timefmt__put(out + 11, rem / 3600000, 2);
    timefmt__put(out + 14, rem / 60000 % 60, 2);
    timefmt__put(out + 17, rem / 1000 % 60, 2);
    timefmt__put(out + 20, rem % 1000, 3);
    memcpy(last, out, TIMEFMT_LEN);
    last_sec = sec;
}

/* Reads exactly n decimal digits; returns the value, or -1 when any of the n
 * characters is not a digit (a NUL stops it too). */
static int64_t timefmt__digits(const char *s, int n)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/*
 * Accepts "YYYY-MM-DDTHH:MM:SS.mmmZ" and "YYYY-MM-DDTHH:MM:SSZ" only: upper
 * case T and Z, no offsets, no other fraction lengths, no leap second, no
 * trailing bytes, and a day that exists in its month. *unix_ms is written only
 * on success.
 */
int timefmt_parse(const char *s, int64_t *unix_ms)
{
    size_t n = s ? strlen(s) : 0;
    if (n != 20 && n != 24) return -1;
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') return -1;
    if (s[n - 1] != 'Z') return -1;

    int64_t y = timefmt__digits(s, 4);
    int64_t mo = timefmt__digits(s + 5, 2);
    int64_t d = timefmt__digits(s + 8, 2);
    int64_t h = timefmt__digits(s + 11, 2);
    int64_t mi = timefmt__digits(s + 14, 2);
    int64_t sec = timefmt__digits(s + 17, 2);
    int64_t ms = 0;
    if (n == 24) {
        if (s[19] != '.') return -1;
        ms = timefmt__digits(s + 20, 3);
    }
    if (y < 0 || ms < 0 || mo < 1 || mo > 12 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 ||
        sec > 59)
        return -1;
    if (d < 1 || d > civil_month_days(y, (int)mo)) return -1;

    int64_t days = civil_days_from(y, (int)mo, (int)d);
    *unix_ms = days * TIMEFMT__MS_PER_DAY + ((h * 60 + mi) * 60 + sec) * 1000 + ms;
    return 0;
}
