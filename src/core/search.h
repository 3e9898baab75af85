/*
 * search: the text a session search looks for (docs/api.md, Sessions;
 * docs/storage.md, Search), checked and turned into the forms the stores'
 * queries take.
 *
 * A search is a literal substring: no character of it is special, and
 * case is folded for the ASCII letters A-Z only (other letters match as
 * written), the same on both backends.
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

#endif
