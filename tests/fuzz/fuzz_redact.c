/*
 * libFuzzer target for lib/redact.
 *
 * The input is [count] then count times [length][secret bytes], then the
 * text (count at most 4, each secret at most 63 bytes). The checks:
 *   - cut the output at every REDACT_MARK: what is between two marks holds
 *     no run of REDACT_MIN_RUN bytes of any secret, and no whole secret
 *     shorter than that, so nothing shown carries a fragment the rule says
 *     must go;
 *   - a text that is valid UTF-8 stays valid UTF-8;
 *   - nothing found means the text comes back as it was, something found
 *     means it changed (unless the text held the mark itself), and the
 *     output is NUL-terminated at its length.
 *
 *   make O=build/fuzz fuzz-bins && build/fuzz/tests/fuzz/fuzz_redact
 */
#define _GNU_SOURCE /* memmem */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/redact.h"

#define FUZZ_MAX_SECRETS 4
#define FUZZ_MAX_SECRET  63

/* True when the len bytes at p are valid UTF-8 (no overlongs, no
 * surrogates, nothing past U+10FFFF). */
static bool fuzz_utf8_valid(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t need;
        unsigned cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            need = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            need = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            need = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i < need) return false;
        for (size_t k = 1; k < need; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += need;
    }
    return true;
}

/* Aborts when the segment (bytes the output kept from the text) holds a
 * fragment of a secret that had to be masked. */
static void fuzz_check_segment(const redact_set *s, const char *seg, size_t len)
{
    for (size_t k = 0; k < s->n; k++) {
        size_t sl = s->lens[k];
        size_t run = sl < REDACT_MIN_RUN ? sl : REDACT_MIN_RUN;
        for (size_t j = 0; j + run <= sl; j++) {
            if (run <= len && memmem(seg, len, s->secrets[k] + j, run)) abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    redact_set set;
    size_t at = 0;

    redact_set_init(&set);
    size_t count = size ? data[at++] % (FUZZ_MAX_SECRETS + 1) : 0;
    for (size_t i = 0; i < count && at < size; i++) {
        size_t len = data[at++] % (FUZZ_MAX_SECRET + 1);
        if (len > size - at) len = size - at;
        redact_set_add(&set, (const char *)data + at, len);
        at += len;
    }
    const char *text = (const char *)data + at;
    size_t tlen = size - at;

    size_t olen;
    bool found;
    char *out = redact_text(&set, text, tlen, &olen, &found);
    if (out[olen] != '\0') abort();
    /* Masking a text that holds the mark itself may give the text back. */
    bool same = olen == tlen && memcmp(out, text, tlen) == 0;
    if (!found && !same) abort();
    if (found && same && !memmem(text, tlen, REDACT_MARK, sizeof REDACT_MARK - 1)) abort();
    if (fuzz_utf8_valid((const unsigned char *)text, tlen) &&
        !fuzz_utf8_valid((const unsigned char *)out, olen))
        abort();

    static const char mark[] = REDACT_MARK;
    const size_t ml = sizeof mark - 1;
    const char *p = out, *end = out + olen;
    for (;;) {
        const char *m = memmem(p, (size_t)(end - p), mark, ml);
        fuzz_check_segment(&set, p, (size_t)((m ? m : end) - p));
        if (!m) break;
        p = m + ml;
    }
    free(out);
    redact_set_cleanup(&set);
    return 0;
}
