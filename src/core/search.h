/*
 * search: the text a session search looks for (docs/api.md, Sessions;
 * docs/storage.md, Search), checked and turned into the forms the stores'
 * queries take.
 *
 * A search is a literal substring: no character of it is special, and
 * case is folded for the ASCII letters A-Z only (other letters match as
 * written), the same on both backends.
 *
 * It also says when SQLite's index may take the messages waiting for it
 * (search_index_may_run).
 */
#ifndef CHATPLANE_SEARCH_H
#define CHATPLANE_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest search text, in bytes. */
#define SEARCH_TEXT_MAX 200
/* The shortest search text, in characters, that a trigram index answers:
 * shorter text has no trigram to look up and is found by reading rows. */
#define SEARCH_INDEXED_MIN 3

/* Checks the search text q of NUL-terminated length: 0 when it may be
 * searched for, else -1 with a message naming the field `q` in err. */
int search_text_check(const char *q, char *err, size_t errlen);

/* The number of characters of q (well-formed UTF-8, as checked). */
size_t search_text_chars(const char *q);

/* A LIKE pattern that matches exactly the text whose A-Z-lowered form
 * contains q's A-Z-lowered form: '%', then q lowered with '\\', '%' and
 * '_' escaped by a backslash, then '%'. Returns a new string; caller frees. */
char *search_like_pattern(const char *q);

/* An FTS5 query that is the one phrase q with A-Z lowered: between double
 * quotes, each double quote in it doubled, so no character of q is a query
 * operator. Returns a new string; caller frees. */
char *search_fts_phrase(const char *q);

/* A job of the index takes a core for milliseconds (an answer is about a
 * thousand trigrams), and on a busy machine the runs of a burst of starts
 * wait for it while they wait for their first tokens. So a job holds back
 * until no run has started for SEARCH_INDEX_QUIET_MS, but no longer than
 * SEARCH_INDEX_LATEST_MS after the index last caught up
 * (docs/storage.md, Search; docs/benchmarks.md, fix 47). */
#define SEARCH_INDEX_QUIET_MS  100
#define SEARCH_INDEX_LATEST_MS 1000

/* True when a job of the index may start at now_ms, given when the latest
 * run start was asked for and when a job last left nothing waiting (both
 * on the same clock, 0 for never). */
bool search_index_may_run(int64_t now_ms, int64_t last_start_ms, int64_t caught_up_ms);

#endif
