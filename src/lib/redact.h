/*
 * redact: keeps known secrets out of text chatplane shows (events, run
 * details, API answers, log lines).
 *
 * Outside text (a model's error body, a stream's error message, a tool
 * server's complaint) may echo a secret whole or in part: "Incorrect API
 * key provided: sk-live-S3CR3Tk3y01234567…" often holds most of the key,
 * cut or starred. So the rule is about fragments: every run of
 * REDACT_MIN_RUN or more consecutive bytes that also occurs inside a known
 * secret is replaced, and each stretch of replaced bytes becomes one
 * REDACT_MARK. A fragment shorter than that is kept (it is too short to
 * help a guesser, and masking it would blank ordinary words). A secret
 * shorter than REDACT_MIN_RUN is masked only where it appears whole, and a
 * secret shorter than REDACT_MIN_SECRET is not kept at all.
 *
 * A masked stretch is widened to whole UTF-8 characters, so redaction never
 * leaves half a character behind.
 *
 * Two layers: a redact_set and redact_text are pure (no globals, no locks)
 * and are what the tests and the fuzz target check; the registry below
 * them is one process-wide set the runtime fills at start-up (model key,
 * passwords of the database and model URLs) and that every place showing
 * outside text consults through redact_string.
 */
#ifndef CHATPLANE_REDACT_H
#define CHATPLANE_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REDACT_MIN_RUN    8    /* a shared run this long is masked */
#define REDACT_MIN_SECRET 4    /* shorter secrets are not kept */
#define REDACT_MAX_SECRET 4096 /* longer secrets are not kept */
#define REDACT_MAX_COUNT  64   /* secrets in one set */
#define REDACT_MARK       "[redacted]"

/* What redact_set_add returns. */
#define REDACT_ADDED   0
#define REDACT_IGNORED 1    /* too short, too long, or already known */
#define REDACT_FULL    (-1) /* the set holds REDACT_MAX_COUNT secrets */

typedef struct redact_set {
    char **secrets; /* owned copies, in the order added */
    size_t *lens;   /* their lengths */
    size_t n;
    uint64_t *grams; /* every REDACT_MIN_RUN-byte window of the secrets, sorted */
    size_t ngrams;
} redact_set;

void redact_set_init(redact_set *s);
void redact_set_cleanup(redact_set *s);
/* Adds a copy of the len bytes of secret. Returns REDACT_ADDED,
 * REDACT_IGNORED or REDACT_FULL. */
int redact_set_add(redact_set *s, const char *secret, size_t len);

/*
 * Returns a new NUL-terminated copy of the len bytes of text with every
 * secret fragment masked (see above), its length in *out_len when out_len
 * is not NULL. Caller frees. Bytes of text outside masked stretches are
 * copied unchanged, NUL bytes included. *found, when not NULL, tells
 * whether anything was masked.
 */
char *redact_text(const redact_set *s, const char *text, size_t len, size_t *out_len, bool *found);

/* ---- the process-wide registry ---- */

/* Adds a secret to the registry (thread-safe). Same returns as
 * redact_set_add. */
int redact_register(const char *secret);
/* Adds the password of a URL: the one in "scheme://user:password@host…"
 * and every "password=" parameter, as written and percent-decoded. A URL
 * without one adds nothing. Returns how many secrets were added. */
int redact_register_url(const char *url);
/* Empties the registry (tests, shutdown). */
void redact_reset(void);
/* redact_text through the registry: a new string, caller frees. */
char *redact_string(const char *text, size_t len, size_t *out_len);
/* Replaces *s (a malloc'd string, may be NULL) by its redacted form when
 * the registry finds anything in it. */
void redact_in_place(char **s);

#endif
