#include "core/period.h"

#include <stdio.h>
#include <string.h>

#include "core/civil.h"

#define PERIOD__DAY_MS 86400000LL

static const char *const period__names[PERIOD__COUNT] = {
    [PERIOD_DAY] = "day", [PERIOD_WEEK] = "week", [PERIOD_MONTH] = "month"};

const char *period_name(period_kind p)
{
    return (unsigned)p < PERIOD__COUNT ? period__names[p] : "unknown";
}

int period_parse(const char *name, period_kind *out)
{
    for (int i = 0; name && i < PERIOD__COUNT; i++) {
        if (strcmp(period__names[i], name) == 0) {
            *out = (period_kind)i;
            return 0;
        }
    }
    return -1;
}

/* The day number (days since 1970-01-01) holding unix_ms, rounding down
 * for times before 1970 too. */
static int64_t period__day(int64_t unix_ms)
{
    int64_t d = unix_ms / PERIOD__DAY_MS;
    return unix_ms % PERIOD__DAY_MS < 0 ? d - 1 : d;
}

/* The day number of the first day of the period holding day. */
static int64_t period__first_day(period_kind p, int64_t day)
{
    if (p == PERIOD_WEEK) {
        /* 1970-01-01 was a Thursday: day 0 is weekday 3 counted from
         * Monday, so Monday-based weekdays are (day + 3) mod 7. */
        int64_t wd = (day + 3) % 7;
        if (wd < 0) wd += 7;
        return day - wd;
    }
    if (p == PERIOD_MONTH) {
        int64_t y;
        int m, d;
        civil_from_days(day, &y, &m, &d);
        return civil_days_from(y, m, 1);
    }
    return day;
}

int64_t period_start_ms(period_kind p, int64_t unix_ms)
{
    return period__first_day(p, period__day(unix_ms)) * PERIOD__DAY_MS;
}

int64_t period_end_ms(period_kind p, int64_t unix_ms)
{
    int64_t first = period__first_day(p, period__day(unix_ms));
    if (p == PERIOD_WEEK) return (first + 7) * PERIOD__DAY_MS;
    if (p == PERIOD_MONTH) {
        int64_t y;
        int m, d;
        civil_from_days(first, &y, &m, &d);
        return (first + civil_month_days(y, m)) * PERIOD__DAY_MS;
    }
    return (first + 1) * PERIOD__DAY_MS;
}

void period_format_time(int64_t unix_ms, char out[PERIOD_TIME_LEN])
{
    int64_t day = period__day(unix_ms), y;
    int64_t s = (unix_ms - day * PERIOD__DAY_MS) / 1000;
    int m, d;
    civil_from_days(day, &y, &m, &d);
    /* Years outside 0..9999 do not fit the form; they are clamped, since
     * no period of a running server reaches them. */
    if (y < 0) y = 0;
    if (y > 9999) y = 9999;
    /* The compiler cannot see the fields' ranges, so the text is made in
     * room it accepts and copied; it is always PERIOD_TIME_LEN - 1 long. */
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, m, d, (int)(s / 3600),
             (int)(s / 60 % 60), (int)(s % 60));
    memcpy(out, tmp, PERIOD_TIME_LEN - 1);
    out[PERIOD_TIME_LEN - 1] = '\0';
}
