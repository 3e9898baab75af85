/*
 * redact: masking fragments of known secrets (see redact.h for the rule).
 *
 * A run of REDACT_MIN_RUN or more bytes shared with a secret is exactly the
 * union of the REDACT_MIN_RUN-byte windows it contains, each of which is a
 * window of the secret too. So the set keeps every such window of every
 * secret as one 64-bit number, sorted, and redact_text looks each window of
 * the text up by binary search: O(n log g) for n bytes of text and g
 * windows, with no quadratic worst case whatever the text.
 */
#include "lib/redact.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

_Static_assert(REDACT_MIN_RUN == sizeof(uint64_t), "a window is read as one uint64_t");

void redact_set_init(redact_set *s)
{
    memset(s, 0, sizeof *s);
}

void redact_set_cleanup(redact_set *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) free(s->secrets[i]);
    free(s->secrets);
    free(s->lens);
    free(s->grams);
    memset(s, 0, sizeof *s);
}

static uint64_t redact__window(const char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

static int redact__cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int redact_set_add(redact_set *s, const char *secret, size_t len)
{
    if (!secret || len < REDACT_MIN_SECRET || len > REDACT_MAX_SECRET) return REDACT_IGNORED;
    for (size_t i = 0; i < s->n; i++) {
        if (s->lens[i] == len && memcmp(s->secrets[i], secret, len) == 0) return REDACT_IGNORED;
    }
    if (s->n == REDACT_MAX_COUNT) return REDACT_FULL;
    s->secrets = xrealloc(s->secrets, (s->n + 1) * sizeof *s->secrets);
    s->lens = xrealloc(s->lens, (s->n + 1) * sizeof *s->lens);
    /* Copied as bytes: a secret may hold a NUL, which xstrndup stops at. */
    s->secrets[s->n] = xmalloc(len + 1);
    memcpy(s->secrets[s->n], secret, len);
    s->secrets[s->n][len] = '\0';
    s->lens[s->n] = len;
    s->n++;
    if (len >= REDACT_MIN_RUN) {
        size_t add = len - REDACT_MIN_RUN + 1;
        s->grams = xrealloc(s->grams, (s->ngrams + add) * sizeof *s->grams);
        for (size_t j = 0; j < add; j++) s->grams[s->ngrams++] = redact__window(secret + j);
        qsort(s->grams, s->ngrams, sizeof *s->grams, redact__cmp_u64);
    }
    return REDACT_ADDED;
}

static bool redact__known_window(const redact_set *s, const char *p)
{
    uint64_t w = redact__window(p);
    return bsearch(&w, s->grams, s->ngrams, sizeof w, redact__cmp_u64) != NULL;
}

static bool redact__continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* Marks in mask every byte of text that a secret fragment covers. Returns
 * true when any was marked. */
static bool redact__mark(const redact_set *s, const char *text, size_t len, unsigned char *mask)
{
    bool any = false;

    if (s->ngrams && len >= REDACT_MIN_RUN) {
        for (size_t i = 0; i + REDACT_MIN_RUN <= len; i++) {
            if (!redact__known_window(s, text + i)) continue;
            memset(mask + i, 1, REDACT_MIN_RUN);
            any = true;
        }
    }
    /* Short secrets count only whole. */
    for (size_t k = 0; k < s->n; k++) {
        size_t sl = s->lens[k];
        if (sl >= REDACT_MIN_RUN || sl > len) continue;
        for (size_t i = 0; i + sl <= len; i++) {
            if (text[i] == s->secrets[k][0] && memcmp(text + i, s->secrets[k], sl) == 0) {
                memset(mask + i, 1, sl);
                any = true;
            }
        }
    }
    return any;
}

/* Widens every marked stretch to whole UTF-8 characters: back to the lead
 * byte of a character it starts inside, on over the continuation bytes of
 * one it ends inside (at most 3 either way, as a character has). */
static void redact__widen(const char *text, size_t len, unsigned char *mask)
{
    const unsigned char *t = (const unsigned char *)text;
    for (size_t i = 0; i < len; i++) {
        if (!mask[i] || (i > 0 && mask[i - 1])) continue;
        for (size_t k = 0; k < 3 && i - k > 0 && redact__continuation(t[i - k]); k++)
            mask[i - k - 1] = 1;
    }
    for (size_t i = len; i-- > 0;) {
        if (!mask[i] || (i + 1 < len && mask[i + 1])) continue;
        for (size_t k = 1; k <= 3 && i + k < len && redact__continuation(t[i + k]); k++)
            mask[i + k] = 1;
    }
}

char *redact_text(const redact_set *s, const char *text, size_t len, size_t *out_len, bool *found)
{
    unsigned char *mask = (s && s->n && len) ? xcalloc(len, 1) : NULL;
    bool any = mask && redact__mark(s, text, len, mask);
    char *out;
    size_t n = 0;

    if (found) *found = any;
    if (!any) {
        out = xmalloc(len + 1);
        if (len) memcpy(out, text, len);
        out[len] = '\0';
        free(mask);
        if (out_len) *out_len = len;
        return out;
    }
    redact__widen(text, len, mask);
    /* Each stretch of at least one byte becomes a mark of a fixed length. */
    size_t stretches = 0;
    for (size_t i = 0; i < len; i++) stretches += mask[i] && (i == 0 || !mask[i - 1]);
    out = xmalloc(len + stretches * (sizeof REDACT_MARK - 1) + 1);
    for (size_t i = 0; i < len; i++) {
        if (!mask[i]) {
            out[n++] = text[i];
        } else if (i == 0 || !mask[i - 1]) {
            memcpy(out + n, REDACT_MARK, sizeof REDACT_MARK - 1);
            n += sizeof REDACT_MARK - 1;
        }
    }
    out[n] = '\0';
    free(mask);
    if (out_len) *out_len = n;
    return out;
}

/* ---- the registry ---- */

static pthread_mutex_t redact__lock = PTHREAD_MUTEX_INITIALIZER;
static redact_set redact__registry;

int redact_register(const char *secret)
{
    if (!secret) return REDACT_IGNORED;
    pthread_mutex_lock(&redact__lock);
    int rc = redact_set_add(&redact__registry, secret, strlen(secret));
    pthread_mutex_unlock(&redact__lock);
    return rc;
}

static int redact__hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Registers the len bytes at p, and their percent-decoded form when it
 * differs. Returns how many were added. */
static int redact__register_value(const char *p, size_t len)
{
    char *raw = xstrndup(p, len);
    char *dec = xmalloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (raw[i] == '%' && i + 2 < len && (hi = redact__hex(raw[i + 1])) >= 0 &&
            (lo = redact__hex(raw[i + 2])) >= 0) {
            dec[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dec[n++] = raw[i];
        }
    }
    dec[n] = '\0';
    int added = redact_register(raw) == REDACT_ADDED;
    if (n != len || memcmp(raw, dec, n) != 0) added += redact_register(dec) == REDACT_ADDED;
    free(raw);
    free(dec);
    return added;
}

int redact_register_url(const char *url)
{
    int added = 0;
    if (!url) return 0;
    const char *scheme = strstr(url, "://");
    if (scheme) {
        const char *host = scheme + 3;
        size_t end = strcspn(host, "?#");
        const char *at = NULL;
        for (const char *q = host; q < host + end; q++) {
            if (*q == '@') at = q;
        }
        const char *colon = at ? memchr(host, ':', (size_t)(at - host)) : NULL;
        if (colon) added += redact__register_value(colon + 1, (size_t)(at - colon - 1));
    }
    /* "password=" parameters: in a query string or a libpq keyword list. */
    for (const char *p = url; (p = strstr(p, "password=")) != NULL; p += 9) {
        if (p != url && p[-1] != '?' && p[-1] != '&' && p[-1] != ' ') continue;
        const char *v = p + 9;
        added += redact__register_value(v, strcspn(v, "& "));
    }
    return added;
}

void redact_reset(void)
{
    pthread_mutex_lock(&redact__lock);
    redact_set_cleanup(&redact__registry);
    pthread_mutex_unlock(&redact__lock);
}

char *redact_string(const char *text, size_t len, size_t *out_len)
{
    pthread_mutex_lock(&redact__lock);
    char *out = redact_text(&redact__registry, text, len, out_len, NULL);
    pthread_mutex_unlock(&redact__lock);
    return out;
}

void redact_in_place(char **s)
{
    if (!s || !*s) return;
    bool found;
    pthread_mutex_lock(&redact__lock);
    char *out = redact_text(&redact__registry, *s, strlen(*s), NULL, &found);
    pthread_mutex_unlock(&redact__lock);
    if (found) {
        free(*s);
        *s = out;
    } else {
        free(out);
    }
}
