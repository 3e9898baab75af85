/*
 * jsonw: jansson values written as JSON text, byte for byte what
 * json_dumps writes with the same flags, for the flags chatplane writes
 * with: JSON_COMPACT, with or without JSON_REAL_PRECISION(n) and
 * JSON_ENCODE_ANY. Other flags (indentation, sorted keys, ASCII or slash
 * escapes) go to jansson itself.
 *
 * jansson walks every string by UTF-8 code point and every value through
 * a callback; a run's request to the model, its rows and its events' fields
 * are a few kilobytes of text, and that walk was the larger part of their
 * cost (docs/benchmarks.md, fix 58). Here strings are copied in runs between
 * the bytes that need escaping, numbers other than reals are converted
 * directly, and reals are still formatted by jansson, so that every digit
 * stays the same.
 */
#ifndef CHATPLANE_JSONW_H
#define CHATPLANE_JSONW_H

#include <jansson.h>
#include <stddef.h>

#include "lib/buf.h"

/* The most a whole text may take: larger than any request or row
 * chatplane writes, a bound rather than a limit. */
#define JSONW_MAX ((size_t)1 << 30)

/* Appends s[0..len) as a JSON string, escaped as jansson escapes it: '"',
 * '\\' and control characters only, the common ones by letter and the rest
 * as \u00XX. s must be valid UTF-8. Returns 0 or BUF_TOOBIG. */
int jsonw_string(buf *out, const char *s, size_t len);

/* Appends v as json_dumps(v, flags) would write it. Returns 0, or -1 when
 * jansson would refuse it (a scalar without JSON_ENCODE_ANY, a string that
 * is not UTF-8) or out's cap is reached; out then holds part of it. */
int jsonw_value(buf *out, const json_t *v, size_t flags);

/* As json_dumps: a new NUL-terminated text the caller frees, or NULL. */
char *jsonw_dumps(const json_t *v, size_t flags);

/* The length of json_dumps(v, flags), as json_dumpb(v, NULL, 0, flags)
 * gives it, or 0 when jansson would refuse v. */
size_t jsonw_length(const json_t *v, size_t flags);

#endif
