#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
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
