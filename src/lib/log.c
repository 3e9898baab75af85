#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/redact.h"

log_level log_min_level = LOG_INFO;

static const char *const log__names[] = {"debug", "info", "warn", "error"};

void log_write(log_level level, const char *msg, const char *kvfmt, ...)
{
    /* Build the line in one buffer and write it with one call, so lines from
     * several threads never interleave. */
    char line[4096];
    int n = snprintf(line, sizeof line, "level=%s msg=\"", log__names[level]);
    for (const char *p = msg; *p && n < (int)sizeof line - 8; p++) {
        if (*p == '"' || *p == '\\') line[n++] = '\\';
        line[n++] = (*p == '\n') ? ' ' : *p;
    }
    line[n++] = '"';
    if (kvfmt && *kvfmt) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, kvfmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, kvfmt, ap);
        va_end(ap);
        if (m > 0)
            n += (m < (int)(sizeof line - (size_t)n - 1)) ? m : (int)(sizeof line - (size_t)n - 2);
    }
    size_t out_len;
    char *out = redact_string(line, (size_t)n, &out_len);
    out[out_len] = '\n';
    fwrite(out, 1, out_len + 1, stderr);
    free(out);
}

int log_level_parse(const char *s, log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, log__names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_limit_init(log_limit *l, int64_t rate, int64_t burst, int64_t now_ms)
{
    l->rate = rate > 0 ? rate : 1;
    l->burst = burst > 0 ? burst : 1;
    l->milli = l->burst * 1000;
    l->refilled_ms = now_ms;
    l->dropped = 0;
    l->first_drop_ms = 0;
}

bool log_limit_take(log_limit *l, int64_t now_ms)
{
    /* rate lines a second is rate thousandths of a line a millisecond. A
     * clock that went back adds nothing. */
    if (now_ms > l->refilled_ms) {
        int64_t cap = l->burst * 1000, elapsed = now_ms - l->refilled_ms;
        l->milli = elapsed >= (cap - l->milli) / l->rate + 1 ? cap : l->milli + elapsed * l->rate;
        l->refilled_ms = now_ms;
    }
    if (l->milli >= 1000) {
        l->milli -= 1000;
        return true;
    }
    if (l->dropped++ == 0) l->first_drop_ms = now_ms;
    return false;
}

int64_t log_limit_due(const log_limit *l, int64_t every_ms)
{
    return l->dropped ? l->first_drop_ms + every_ms : -1;
}

int64_t log_limit_flush(log_limit *l, int64_t now_ms, int64_t *span_ms)
{
    int64_t n = l->dropped;
    *span_ms = n ? now_ms - l->first_drop_ms : 0;
    l->dropped = 0;
    return n;
}
