/*
 * canon: canonical JSON and tool-call fingerprints (docs/runs.md, Guardrails).
 *
 * Canonical JSON has object keys sorted by their UTF-8 bytes, no
 * insignificant white space, strings escaped minimally (only '"', '\\' and
 * control characters, as \uXXXX except \b \f \n \r \t), and numbers printed
 * stably: integers in decimal; reals that hold an integral value below 2^53
 * as that integer ("1.0" -> "1"); other reals with the fewest significant
 * digits (up to 17) that read back as the same double. Two JSON values that
 * mean the same thing therefore give the same bytes.
 */
#ifndef CHATPLANE_CANON_H
#define CHATPLANE_CANON_H

#include <jansson.h>
#include <stdint.h>

#include "lib/buf.h"

/* Appends the canonical form of v to out. Returns 0 or BUF_TOOBIG (over
 * out's cap, or nested deeper than 2048); on failure out is unchanged. */
int canon_json(const json_t *v, buf *out);

/* Returns the canonical form of v as a new string; caller frees. Returns
 * NULL when it would exceed 16 MiB or nest deeper than 2048. */
char *canon_json_str(const json_t *v);

/* 64-bit FNV-1a over len bytes, continuing from h (start with CANON_HASH_SEED). */
#define CANON_HASH_SEED UINT64_C(0xcbf29ce484222325)
uint64_t canon_hash(uint64_t h, const void *data, size_t len);

/* The fingerprint of a tool call: a hash of the tool name, a NUL byte, and
 * the canonical JSON of its arguments (NULL counts as {}). */
uint64_t canon_fingerprint(const char *tool, const json_t *arguments);

#endif
