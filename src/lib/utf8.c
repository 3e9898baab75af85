#include "lib/utf8.h"

#include <stdint.h>
#include <string.h>

/*
 * Measures the unit at s[0..n), n >= 1. Returns the length (1 to 4) of a
 * well-formed character. Otherwise returns 0 and sets *bad to the length
 * of the maximal ill-formed subpart. The ranges of the second byte are
 * those of RFC 3629's grammar: they exclude the overlong forms (E0 80..9F,
 * F0 80..8F), the surrogates (ED A0..BF) and what lies above U+10FFFF
 * (F4 90..BF); C0, C1 and F5..FF never start a character.
 */
static size_t utf8__scan(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i < need && i < n; i++) {
        unsigned b = s[i];
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) break;
    }
    if (i == need) return need;
    *bad = i;
    return 0;
}

size_t utf8_seq(const char *s, size_t n)
{
    size_t bad;
    return n ? utf8__scan((const unsigned char *)s, n, &bad) : 0;
}

size_t utf8_decode(const char *s, size_t n, uint32_t *cp)
{
    size_t k = utf8_seq(s, n);
    if (k == 0) return 0;
    const unsigned char *p = (const unsigned char *)s;
    static const unsigned char lead_mask[UTF8_SEQ_MAX + 1] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t v = p[0] & lead_mask[k];
    for (size_t i = 1; i < k; i++) v = v << 6 | (p[i] & 0x3F);
    *cp = v;
    return k;
}

size_t utf8_next(const char *s, size_t n)
{
    if (n == 0) return 0;
    size_t bad = 0;
    size_t k = utf8__scan((const unsigned char *)s, n, &bad);
    return k ? k : bad;
}

size_t utf8_valid_prefix(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, bad;
    while (i < n) {
        /* ASCII runs are the common case; skip them eight bytes at a time,
         * then a byte at a time, without the full scan. */
        uint64_t w;
        while (i + 8 <= n && (memcpy(&w, p + i, 8), (w & 0x8080808080808080ULL) == 0)) i += 8;
        if (i >= n) break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8__scan(p + i, n - i, &bad);
        if (k == 0) break;
        i += k;
    }
    return i;
}

bool utf8_valid(const char *s, size_t n)
{
    return utf8_valid_prefix(s, n) == n;
}

size_t utf8_count(const char *s, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n; i += utf8_next(s + i, n - i)) units++;
    return units;
}

size_t utf8_skip(const char *s, size_t n, size_t count)
{
    size_t i = 0;
    for (size_t u = 0; u < count && i < n; u++) i += utf8_next(s + i, n - i);
    return i;
}

size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (max >= n) return n;
    /* A character that straddles the cut starts at most three bytes before
     * it, at the nearest byte that is not a continuation byte: a lead byte
     * is never inside a well-formed character. */
    for (size_t back = 1; back < UTF8_SEQ_MAX && back <= max; back++) {
        size_t at = max - back;
        if (((unsigned char)s[at] & 0xC0) != 0x80)
            return utf8_seq(s + at, n - at) > back ? at : max;
    }
    return max;
}

size_t utf8_encode(uint32_t cp, char out[UTF8_SEQ_MAX])
{
    unsigned char *u = (unsigned char *)out;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF) return 0;
    u[0] = (unsigned char)(0xF0 | cp >> 18);
    u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    u[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
