/*
 * search: checking a session search's text and quoting it for the
 * stores' queries, and pacing the index's jobs (core/search.h).
 */
#include <stdio.h>
#include <string.h>

#include "core/search.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

/* The one fold of a search: A-Z lowered, every other byte kept. */
static char search__fold(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int search_text_check(const char *q, char *err, size_t errlen)
{
    size_t n = strlen(q);
    if (n > SEARCH_TEXT_MAX) {
        snprintf(err, errlen, "q must be at most %d bytes, got %zu", SEARCH_TEXT_MAX, n);
        return -1;
    }
    if (!utf8_valid(q, n)) {
        snprintf(err, errlen, "q must be UTF-8 text");
        return -1;
    }
    return 0;
}

size_t search_text_chars(const char *q)
{
    return utf8_count(q, strlen(q));
}

char *search_like_pattern(const char *q)
{
    /* Each byte may become two, plus the two '%' and the NUL. */
    size_t n = strlen(q);
    char *out = xmalloc(2 * n + 3), *o = out;
    *o++ = '%';
    for (size_t i = 0; i < n; i++) {
        char c = q[i];
        if (c == '\\' || c == '%' || c == '_') *o++ = '\\';
        *o++ = search__fold(c);
    }
    *o++ = '%';
    *o = '\0';
    return out;
}

char *search_fts_phrase(const char *q)
{
    size_t n = strlen(q);
    char *out = xmalloc(2 * n + 3), *o = out;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        char c = q[i];
        if (c == '"') *o++ = '"';
        *o++ = search__fold(c);
    }
    *o++ = '"';
    *o = '\0';
    return out;
}
