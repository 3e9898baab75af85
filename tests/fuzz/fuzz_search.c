/*
 * libFuzzer target for core/search: the search text of GET
 * /api/sessions?q=, as any client sends it.
 *
 * Invariants: text the check accepts is at most SEARCH_TEXT_MAX bytes;
 * its LIKE pattern, read back by LIKE's rules (backslash escapes the next
 * character), is '%', the text with A-Z lowered, '%', with no unescaped
 * wildcard inside; its FTS5 phrase, read back by FTS5's rules (a doubled
 * quote is one), is the text with A-Z lowered.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_search tests/fuzz/corpus/search
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/search.h"

static void fuzz_check_pattern(const char *q, const char *p)
{
    size_t n = strlen(q), k = 0, len = strlen(p);
    if (len < 2 || p[0] != '%' || p[len - 1] != '%') abort();
    for (size_t i = 1; i < len - 1; i++) {
        char c = p[i];
        if (c == '%' || c == '_') abort();
        if (c == '\\') c = p[++i];
        char want = q[k] >= 'A' && q[k] <= 'Z' ? (char)(q[k] - 'A' + 'a') : q[k];
        if (k >= n || c != want) abort();
        k++;
    }
    if (k != n) abort();
}

static void fuzz_check_phrase(const char *q, const char *p)
{
    size_t n = strlen(q), k = 0, len = strlen(p);
    if (len < 2 || p[0] != '"' || p[len - 1] != '"') abort();
    for (size_t i = 1; i < len - 1; i++) {
        if (p[i] == '"' && p[++i] != '"') abort();
        char want = q[k] >= 'A' && q[k] <= 'Z' ? (char)(q[k] - 'A' + 'a') : q[k];
        if (k >= n || p[i] != want) abort();
        k++;
    }
    if (k != n) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A query value is a C string: it ends at the first NUL. */
    char *q = malloc(size + 1);
    memcpy(q, data, size);
    q[size] = '\0';
    char err[128];
    if (search_text_check(q, err, sizeof err) == 0) {
        if (strlen(q) > SEARCH_TEXT_MAX) abort();
        char *p = search_like_pattern(q);
        fuzz_check_pattern(q, p);
        free(p);
        p = search_fts_phrase(q);
        fuzz_check_phrase(q, p);
        free(p);
        (void)search_text_chars(q);
    } else if (!err[0] || strncmp(err, "q must", 6) != 0) {
        abort();
    }
    free(q);
    return 0;
}
