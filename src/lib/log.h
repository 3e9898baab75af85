/*
 * log: one line per record on stderr, "level=… msg=\"…\" key=value …".
 *
 * LOG() checks the level before anything is formatted, so a debug line on a
 * hot path costs one comparison when debug logging is off.
 */
#ifndef CHATPLANE_LOG_H
#define CHATPLANE_LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

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

#endif
