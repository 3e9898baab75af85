/*
 * log: one line per record on stderr, "level=… msg=\"…\" key=value …".
 *
 * LOG() checks the level before anything is formatted, so a debug line on a
 * hot path costs one comparison when debug logging is off.
 *
 * Every line goes through the secret registry (lib/redact.h) before it is
 * written: values logged from outside (a tool server's error, a URL) may
 * carry a key or a password, whole or in part.
 */
#ifndef CHATPLANE_LOG_H
#define CHATPLANE_LOG_H

#include <stdbool.h>
#include <stdint.h>

/* LOG_OFF is a minimum level only: nothing is written at all (`ask --json`,
 * whose stderr stays empty). */
typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF } log_level;

extern log_level log_min_level;

/* msg is a plain sentence; kvfmt formats trailing key=value pairs (may be ""). */
void log_write(log_level level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG(level, msg, ...)                                                                       \
    do {                                                                                           \
        if ((level) >= log_min_level) log_write((level), (msg), __VA_ARGS__);                      \
    } while (0)

/* Parses "debug", "info", "warn" or "error"; returns 0 or -1. */
int log_level_parse(const char *s, log_level *out);

/*
 * log_limit: a token bucket for log lines that someone else controls (an
 * MCP server's stderr): up to burst lines at once, then rate lines a
 * second. Lines over it are dropped and counted, and the caller writes one
 * summary line for them once per summary interval (log_limit_due,
 * log_limit_flush). Pure: time comes in as arguments (milliseconds of a
 * monotonic clock). Tokens are counted in thousandths of a line, so the
 * arithmetic is exact.
 */
typedef struct log_limit {
    int64_t rate;          /* lines per second */
    int64_t burst;         /* lines at once */
    int64_t milli;         /* tokens, in thousandths of a line */
    int64_t refilled_ms;   /* when milli was last brought up to date */
    int64_t dropped;       /* lines dropped since the last summary */
    int64_t first_drop_ms; /* when the first of them was dropped */
} log_limit;

/* A full bucket at now_ms. rate or burst below 1 counts as 1. */
void log_limit_init(log_limit *l, int64_t rate, int64_t burst, int64_t now_ms);
/* A line at now_ms: true when it may be written; false when it is dropped
 * (and counted). */
bool log_limit_take(log_limit *l, int64_t now_ms);
/* When the summary of the lines dropped is due (every_ms after the first
 * of them was dropped); -1 when none were. */
int64_t log_limit_due(const log_limit *l, int64_t every_ms);
/* Returns how many lines were dropped since the last summary, and sets
 * *span_ms to how long ago the first of them was; starts counting anew. */
int64_t log_limit_flush(log_limit *l, int64_t now_ms, int64_t *span_ms);

#endif
