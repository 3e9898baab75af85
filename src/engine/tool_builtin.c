/*
 * tool_builtin: the built-in tools, `calc` and `clock`, as a tool source.
 *
 * Both finish before returning from the call: calc is pure arithmetic, and
 * clock reads the wall clock and, for a zone other than UTC, one small file
 * under /usr/share/zoneinfo. That read blocks the loop thread for the time of
 * a local file read, which is accepted for a file of a few kilobytes. The
 * zone conversion itself is core/tzif, so the process-wide TZ variable is
 * never touched and no thread can race with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/calc.h"
#include "core/tzif.h"
#include "engine/tool_source.h"
#include "lib/clock.h"
#include "lib/xmalloc.h"

#define BUILTIN__ZONEINFO      "/usr/share/zoneinfo"
#define BUILTIN__ZONE_NAME_MAX 128
#define BUILTIN__ZONE_FILE_MAX (512 * 1024) /* real zone files are under 4 KiB */

/* calc {"expression": "…"}: the value as calc_format writes it, or the
 * evaluator's error message as both the text and the error. */
static tool_call *tool_builtin__calc(tool_source *s, struct event_base *evb, const json_t *args,
                                     const tool_callbacks *cb, void *ud)
{
    (void)s;
    (void)evb;
    const char *expr = json_string_value(json_object_get(args, "expression"));
    if (!expr) {
        tool__done_error(cb, ud, "calc: missing string argument 'expression'");
        return NULL;
    }
    double v;
    char err[128];
    if (calc_eval(expr, &v, err, sizeof err) < 0) {
        tool__done_error(cb, ud, err);
        return NULL;
    }
    char text[CALC_FORMAT_LEN];
    calc_format(v, text);
    tool__done_ok(cb, ud, text);
    return NULL;
}

/* A zone name that may be looked up under the zoneinfo directory: letters,
 * digits, '_', '+', '-' and '/' between non-empty parts. With no '.' at all,
 * "..", hidden files and the *.tab files cannot be named. */
static bool tool_builtin__zone_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > BUILTIN__ZONE_NAME_MAX || name[0] == '/' || name[n - 1] == '/') return false;
    if (strstr(name, "//")) return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-' || c == '/'))
            return false;
    }
    return true;
}

/* Reads the zone file of name; returns its bytes (caller frees) or NULL when
 * it is missing, not a regular file, or larger than any zone file. */
static unsigned char *tool_builtin__read_zone(const char *name, size_t *len)
{
    char path[sizeof BUILTIN__ZONEINFO + BUILTIN__ZONE_NAME_MAX + 1];
    snprintf(path, sizeof path, "%s/%s", BUILTIN__ZONEINFO, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    unsigned char *data = NULL;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > BUILTIN__ZONE_FILE_MAX) goto out;
    size_t size = (size_t)st.st_size, got = 0;
    data = xmalloc(size + 1);
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    *len = got;
out:
    close(fd);
    return data;
}

/* Writes "2026-11-24T10:00:00+01:00" for unix time t at the given offset; an
 * offset with seconds (only historical local mean times have them) shows
 * them as ":ss". */
static void tool_builtin__format_time(int64_t t, int32_t offset, char *out, size_t outlen)
{
    time_t local = (time_t)(t + offset);
    struct tm tm;
    gmtime_r(&local, &tm);
    int32_t a = offset < 0 ? -offset : offset;
    int n = snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     offset < 0 ? '-' : '+', (int)(a / 3600), (int)(a / 60 % 60));
    if (a % 60 && n > 0 && (size_t)n < outlen)
        snprintf(out + n, outlen - (size_t)n, ":%02d", (int)(a % 60));
}

/*
 * clock {"timezone"?: "…"}: "2026-11-24T10:00:00+01:00 (Europe/Paris)".
 * No zone (absent, null or "") means UTC, which needs no file; an explicit
 * "UTC" reads its file like any zone but falls back to +00:00 when the zone
 * files are not installed.
 */
static tool_call *tool_builtin__clock(tool_source *s, struct event_base *evb, const json_t *args,
                                      const tool_callbacks *cb, void *ud)
{
    (void)s;
    (void)evb;
    const json_t *tz = json_object_get(args, "timezone");
    if (tz && !json_is_null(tz) && !json_is_string(tz)) {
        tool__done_error(cb, ud, "clock: argument 'timezone' must be a string");
        return NULL;
    }
    const char *zone = tz && json_is_string(tz) ? json_string_value(tz) : "";
    int64_t now = clock_wall_ms() / 1000;
    int32_t offset = 0;
    if (zone[0] == '\0') {
        zone = "UTC";
    } else {
        size_t len = 0;
        unsigned char *data =
            tool_builtin__zone_name_ok(zone) ? tool_builtin__read_zone(zone, &len) : NULL;
        int rc = data ? tzif_offset(data, len, now, &offset) : -1;
        free(data);
        if (rc < 0 && strcmp(zone, "UTC") != 0) {
            char *msg = xasprintf("unknown time zone '%s'", zone);
            tool__done_error(cb, ud, msg);
            free(msg);
            return NULL;
        }
        if (rc < 0) offset = 0;
    }
    char when[48];
    tool_builtin__format_time(now, offset, when, sizeof when);
    char *text = xasprintf("%s (%s)", when, zone);
    tool__done_ok(cb, ud, text);
    free(text);
    return NULL;
}

/* Every built-in tool so far only reads: calc computes and clock reads the
 * time. Both finish before returning, so the source needs no cancel. */
static const tool_table_entry tool_builtin__tools[] = {
    {"calc",
     "Evaluates an arithmetic expression and returns its value. Supports + - * / % (remainder) "
     "^ (power), parentheses, unary minus and decimal numbers such as 2.5 or 1e3.",
     "{\"type\": \"object\", \"properties\": {\"expression\": {\"type\": \"string\", "
     "\"description\": \"The expression, e.g. \\\"(2+3)^2 / 7\\\"\"}}, \"required\": "
     "[\"expression\"]}",
     true, tool_builtin__calc},
    {"clock", "Returns the current date and time, in UTC or in the given IANA time zone.",
     "{\"type\": \"object\", \"properties\": {\"timezone\": {\"type\": \"string\", "
     "\"description\": \"An IANA time zone name such as \\\"Europe/Paris\\\"; UTC when "
     "omitted\"}}}",
     true, tool_builtin__clock},
};

tool_source *tool_builtin_new(struct event_base *base)
{
    return tool__table_new(tool_builtin__tools,
                           sizeof tool_builtin__tools / sizeof tool_builtin__tools[0], base, NULL);
}
