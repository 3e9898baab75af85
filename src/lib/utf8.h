/*
 * utf8: the one rule for UTF-8 text, RFC 3629: a character is one to four
 * bytes, with no overlong forms, no surrogates (U+D800..U+DFFF) and nothing
 * above U+10FFFF. These are the rules jansson enforces, so text that passes
 * here can go into a JSON string.
 *
 * Text from models, tools and terminals is not trusted to follow them. Where
 * it does not, the bytes are taken in "units" as browsers' decoders take
 * them: a well-formed character is one unit, and so is each maximal
 * ill-formed subpart (a lead byte and the continuation bytes that could
 * still have completed it, or any other single byte), which a decoder shows
 * as one U+FFFD.
 */
#ifndef CHATPLANE_UTF8_H
#define CHATPLANE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest character in bytes, and U+FFFD REPLACEMENT CHARACTER. */
#define UTF8_SEQ_MAX     4
#define UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* The byte length (1 to 4) of the well-formed character at s[0..n), or 0
 * when the bytes there are ill-formed or cut short (or n is 0). */
size_t utf8_seq(const char *s, size_t n);

/* As utf8_seq, and stores the character's code point in *cp when it is
 * well formed. */
size_t utf8_decode(const char *s, size_t n, uint32_t *cp);

/* The byte length of the unit at s[0..n): the well-formed character, or
 * else the maximal ill-formed subpart (at least 1). 0 only when n is 0. */
size_t utf8_next(const char *s, size_t n);

/* The length of the longest well-formed prefix of s[0..n). */
size_t utf8_valid_prefix(const char *s, size_t n);

/* Whether all of s[0..n) is well formed. */
bool utf8_valid(const char *s, size_t n);

/* The number of units in s[0..n): characters, for well-formed text. */
size_t utf8_count(const char *s, size_t n);

/* The byte length of the first `count` units of s[0..n) (all of it when it
 * holds fewer). */
size_t utf8_skip(const char *s, size_t n, size_t count);

/* The largest length of at most max bytes at which s[0..n) can be cut
 * without splitting a well-formed character: max itself (or n when n is
 * smaller) unless a character starts before it and ends after it, then
 * that character's start. Ill-formed bytes may be cut anywhere. */
size_t utf8_cut(const char *s, size_t n, size_t max);

/* Writes the UTF-8 form of cp into out and returns its length, or returns
 * 0 (writing nothing) for a surrogate or a value above U+10FFFF. */
size_t utf8_encode(uint32_t cp, char out[UTF8_SEQ_MAX]);

#endif
