/*
 * tzif: time zone offsets from TZif data and POSIX TZ rules.
 *
 * A TZif file holds a table of transition times, each naming a local time
 * type (an offset and a DST flag), and from version 2 on a footer with a
 * POSIX TZ rule for the times after the last transition. Modern "slim" files
 * carry few or no transitions and rely on the footer, so both halves are
 * needed. Times before the first transition use time type 0 (RFC 8536,
 * section 3.2).
 */
#include "core/tzif.h"

#include <stdbool.h>
#include <string.h>

#include "core/civil.h"

#define TZIF__HEADER_LEN 44
#define TZIF__DAY        INT64_C(86400)
/* Times are clamped to about ±300000 years so the calendar arithmetic cannot
 * overflow; zone rules mean nothing that far out anyway. */
#define TZIF__T_LIMIT INT64_C(10000000000000)

static uint32_t tzif__be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t tzif__be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)tzif__be32(p) << 32 | tzif__be32(p + 4));
}

/* ---- POSIX TZ strings ---- */

typedef struct tzif__rule {
    char kind; /* 'J' (1..365, no Feb 29), 'N' (0..365), 'M' (month.week.day) */
    int n, month, week, wday;
    int32_t time; /* seconds after local midnight, may be negative or > 24 h */
} tzif__rule;

typedef struct tzif__posix {
    int32_t std_east, dst_east;
    bool has_dst;
    tzif__rule start, end;
} tzif__posix;

/* Reads a decimal number of at most max; returns -1 when there is none. */
static int tzif__num(const char **s, int max)
{
    const char *p = *s;
    int v = 0;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > max) return -1;
    }
    *s = p;
    return v;
}

/* [+-]hh[:mm[:ss]] with hh at most max_hours; returns 0 or -1. */
static int tzif__hms(const char **s, int max_hours, int32_t *out)
{
    int sign = 1;
    if (**s == '+' || **s == '-') sign = *(*s)++ == '-' ? -1 : 1;
    int h = tzif__num(s, max_hours), m = 0, sec = 0;
    if (h < 0) return -1;
    if (**s == ':') {
        (*s)++;
        if ((m = tzif__num(s, 59)) < 0) return -1;
        if (**s == ':') {
            (*s)++;
            if ((sec = tzif__num(s, 59)) < 0) return -1;
        }
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return 0;
}

/* A zone abbreviation: three or more letters, or <…> with letters, digits
 * and signs. */
static int tzif__name(const char **s)
{
    const char *p = *s;
    if (*p == '<') {
        p++;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
               *p == '+' || *p == '-')
            p++;
        if (*p != '>' || p - *s < 4) return -1;
        *s = p + 1;
        return 0;
    }
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) p++;
    if (p - *s < 3) return -1;
    *s = p;
    return 0;
}

/* Jn, n or Mm.w.d, then an optional /time (default 02:00). */
static int tzif__parse_rule(const char **s, tzif__rule *r)
{
    memset(r, 0, sizeof *r);
    if (**s == 'J') {
        (*s)++;
        r->kind = 'J';
        if ((r->n = tzif__num(s, 365)) < 1) return -1;
    } else if (**s == 'M') {
        (*s)++;
        r->kind = 'M';
        if ((r->month = tzif__num(s, 12)) < 1 || *(*s)++ != '.') return -1;
        if ((r->week = tzif__num(s, 5)) < 1 || *(*s)++ != '.') return -1;
        if ((r->wday = tzif__num(s, 6)) < 0) return -1;
    } else {
        r->kind = 'N';
        if ((r->n = tzif__num(s, 365)) < 0) return -1;
    }
    r->time = 7200;
    if (**s == '/') {
        (*s)++;
        if (tzif__hms(s, 167, &r->time) < 0) return -1;
    }
    return 0;
}

static int tzif__parse_posix(const char *s, tzif__posix *z)
{
    memset(z, 0, sizeof *z);
    int32_t west;
    if (tzif__name(&s) < 0 || tzif__hms(&s, 24, &west) < 0) return -1;
    z->std_east = -west;
    if (*s == '\0') return 0;

    z->has_dst = true;
    if (tzif__name(&s) < 0) return -1;
    z->dst_east = z->std_east + 3600;
    if (*s != ',' && *s != '\0') {
        if (tzif__hms(&s, 24, &west) < 0) return -1;
        z->dst_east = -west;
    }
    /* Without rules, POSIX leaves the dates to the implementation; the
     * United States rules are what the reference code uses. */
    const char *rules = *s == ',' ? s + 1 : "M3.2.0,M11.1.0";
    if (tzif__parse_rule(&rules, &z->start) < 0 || *rules++ != ',') return -1;
    if (tzif__parse_rule(&rules, &z->end) < 0 || *rules != '\0') return -1;
    return 0;
}

/* Seconds since the epoch, as if local time were UTC, of the moment the
 * rule names in year y. */
static int64_t tzif__rule_time(const tzif__rule *r, int64_t y)
{
    int64_t day;
    if (r->kind == 'J') {
        day = civil_days_from(y, 1, 1) + r->n - 1 + (civil_is_leap(y) && r->n >= 60);
    } else if (r->kind == 'N') {
        day = civil_days_from(y, 1, 1) + r->n;
    } else {
        int64_t first = civil_days_from(y, r->month, 1);
        int64_t first_wday = ((first + 4) % 7 + 7) % 7; /* 1970-01-01 was a Thursday */
        day = first + (r->wday - first_wday + 7) % 7 + 7 * (r->week - 1);
        while (day >= first + civil_month_days(y, r->month)) day -= 7;
    }
    return day * TZIF__DAY + r->time;
}

static int32_t tzif__posix_at(const tzif__posix *z, int64_t t)
{
    if (!z->has_dst) return z->std_east;
    int64_t local = t + z->std_east;
    int64_t days = local >= 0 ? local / TZIF__DAY : (local - TZIF__DAY + 1) / TZIF__DAY;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    /* The start is given in standard local time, the end in daylight time. */
    int64_t start = tzif__rule_time(&z->start, y) - z->std_east;
    int64_t end = tzif__rule_time(&z->end, y) - z->dst_east;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? z->dst_east : z->std_east;
}

static int64_t tzif__clamp(int64_t t)
{
    return t < -TZIF__T_LIMIT ? -TZIF__T_LIMIT : t > TZIF__T_LIMIT ? TZIF__T_LIMIT : t;
}

int tzif_posix_offset(const char *tz, int64_t t, int32_t *offset)
{
    tzif__posix z;
    if (!tz || tzif__parse_posix(tz, &z) < 0) return -1;
    *offset = tzif__posix_at(&z, tzif__clamp(t));
    return 0;
}

/* ---- TZif data ---- */

typedef struct tzif__block {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
    const unsigned char *times, *idx, *types;
    int tsize;     /* 4 in the version 1 block, 8 in the later one */
    uint64_t size; /* bytes of the data block after the header */
} tzif__block;

/* Reads the header at p (len bytes available) and locates its data block. */
static int tzif__read_block(const unsigned char *p, size_t len, int tsize, tzif__block *b)
{
    if (len < TZIF__HEADER_LEN || memcmp(p, "TZif", 4) != 0) return -1;
    b->isutcnt = tzif__be32(p + 20);
    b->isstdcnt = tzif__be32(p + 24);
    b->leapcnt = tzif__be32(p + 28);
    b->timecnt = tzif__be32(p + 32);
    b->typecnt = tzif__be32(p + 36);
    b->charcnt = tzif__be32(p + 40);
    b->tsize = tsize;
    if (b->typecnt == 0 || b->typecnt > 256) return -1;
    b->size = (uint64_t)b->timecnt * (uint64_t)(tsize + 1) + (uint64_t)b->typecnt * 6 + b->charcnt +
              (uint64_t)b->leapcnt * (uint64_t)(tsize + 4) + b->isstdcnt + b->isutcnt;
    if (b->size > len - TZIF__HEADER_LEN) return -1;
    b->times = p + TZIF__HEADER_LEN;
    b->idx = b->times + (size_t)b->timecnt * (size_t)tsize;
    b->types = b->idx + b->timecnt;
    return 0;
}

static int64_t tzif__time_at(const tzif__block *b, uint32_t i)
{
    const unsigned char *p = b->times + (size_t)i * (size_t)b->tsize;
    return b->tsize == 8 ? tzif__be64(p) : (int64_t)(int32_t)tzif__be32(p);
}

static int tzif__type_offset(const tzif__block *b, uint32_t type, int32_t *offset)
{
    if (type >= b->typecnt) return -1;
    *offset = (int32_t)tzif__be32(b->types + (size_t)type * 6);
    return 0;
}

/*
 * The footer, if any, is "\n<TZ string>\n" right after the version 2+ data
 * block. Copies the TZ string into out (empty when there is none); returns
 * -1 when the footer is malformed.
 */
static int tzif__footer(const unsigned char *p, size_t len, char *out, size_t outlen)
{
    out[0] = '\0';
    if (len == 0) return 0;
    if (p[0] != '\n') return -1;
    const unsigned char *nl = memchr(p + 1, '\n', len - 1);
    if (!nl || (size_t)(nl - p - 1) >= outlen) return -1;
    memcpy(out, p + 1, (size_t)(nl - p - 1));
    out[nl - p - 1] = '\0';
    return 0;
}

int tzif_offset(const void *data, size_t len, int64_t t, int32_t *offset)
{
    const unsigned char *p = data;
    tzif__block b;
    if (!p || tzif__read_block(p, len, 4, &b) < 0) return -1;
    char footer[256] = "";
    if (p[4] >= '2') {
        size_t second = TZIF__HEADER_LEN + (size_t)b.size;
        if (tzif__read_block(p + second, len - second, 8, &b) < 0) return -1;
        size_t end = second + TZIF__HEADER_LEN + (size_t)b.size;
        if (tzif__footer(p + end, len - end, footer, sizeof footer) < 0) return -1;
    }
    t = tzif__clamp(t);

    bool after_last = b.timecnt == 0 || t >= tzif__time_at(&b, b.timecnt - 1);
    if (footer[0] && after_last) return tzif_posix_offset(footer, t, offset);
    if (b.timecnt == 0 || t < tzif__time_at(&b, 0)) return tzif__type_offset(&b, 0, offset);

    /* The last transition at or before t. */
    uint32_t lo = 0, hi = b.timecnt - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (tzif__time_at(&b, mid) <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return tzif__type_offset(&b, b.idx[lo], offset);
}
