/* Unit tests for lib/utf8: the one UTF-8 rule (RFC 3629) and the
 * operations built on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/utf8.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static void test_seq_well_formed(void **state)
{
    (void)state;
    assert_int_equal(utf8_seq(S("a")), 1);
    assert_int_equal(utf8_seq("\0", 1), 1); /* NUL is a character */
    assert_int_equal(utf8_seq(S("\x7f")), 1);
    assert_int_equal(utf8_seq(S("\xc2\x80")), 2);         /* U+0080, the smallest two-byte form */
    assert_int_equal(utf8_seq(S("\xdf\xbf")), 2);         /* U+07FF */
    assert_int_equal(utf8_seq(S("\xe0\xa0\x80")), 3);     /* U+0800 */
    assert_int_equal(utf8_seq(S("\xed\x9f\xbf")), 3);     /* U+D7FF, just below the surrogates */
    assert_int_equal(utf8_seq(S("\xee\x80\x80")), 3);     /* U+E000, just above them */
    assert_int_equal(utf8_seq(S("\xef\xbf\xbf")), 3);     /* U+FFFF */
    assert_int_equal(utf8_seq(S("\xf0\x90\x80\x80")), 4); /* U+10000 */
    assert_int_equal(utf8_seq(S("\xf4\x8f\xbf\xbf")), 4); /* U+10FFFF, the last */
    /* Only the first character is measured. */
    assert_int_equal(utf8_seq(S("\xc3\xa9xyz")), 2);
}

static void test_seq_ill_formed(void **state)
{
    (void)state;
    assert_int_equal(utf8_seq("", 0), 0);
    /* Overlong forms. */
    assert_int_equal(utf8_seq(S("\xc0\xaf")), 0);
    assert_int_equal(utf8_seq(S("\xc1\xbf")), 0);
    assert_int_equal(utf8_seq(S("\xe0\x80\xaf")), 0);
    assert_int_equal(utf8_seq(S("\xe0\x9f\xbf")), 0);
    assert_int_equal(utf8_seq(S("\xf0\x80\x80\xaf")), 0);
    assert_int_equal(utf8_seq(S("\xf0\x8f\xbf\xbf")), 0);
    /* Surrogates. */
    assert_int_equal(utf8_seq(S("\xed\xa0\x80")), 0); /* U+D800 */
    assert_int_equal(utf8_seq(S("\xed\xbf\xbf")), 0); /* U+DFFF */
    /* Above U+10FFFF. */
    assert_int_equal(utf8_seq(S("\xf4\x90\x80\x80")), 0);
    assert_int_equal(utf8_seq(S("\xf5\x80\x80\x80")), 0);
    assert_int_equal(utf8_seq(S("\xf7\xbf\xbf\xbf")), 0);
    assert_int_equal(utf8_seq(S("\xf8\x88\x80\x80\x80")), 0);
    assert_int_equal(utf8_seq(S("\xff")), 0);
    assert_int_equal(utf8_seq(S("\xfe")), 0);
    /* Truncated: by the end of the input or by a byte that cannot follow. */
    assert_int_equal(utf8_seq(S("\xc3")), 0);
    assert_int_equal(utf8_seq(S("\xe2\x82")), 0);
    assert_int_equal(utf8_seq(S("\xf0\x9f\x98")), 0);
    assert_int_equal(utf8_seq("\xe2\x82\xac", 2), 0); /* n counts, not the NUL */
    assert_int_equal(utf8_seq(S("\xe2\x82x")), 0);
    assert_int_equal(utf8_seq(S("\xc3\xc3\xa9")), 0);
    /* A continuation byte alone. */
    assert_int_equal(utf8_seq(S("\x80")), 0);
    assert_int_equal(utf8_seq(S("\xbf")), 0);
}

/* The rule written the slow way: decode the bits, then check the value. */
static size_t reference_seq(const unsigned char *p, size_t n)
{
    size_t need;
    uint32_t cp, min;
    if (p[0] < 0x80) return 1;
    if ((p[0] & 0xe0) == 0xc0) {
        need = 2, min = 0x80, cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        need = 3, min = 0x800, cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        need = 4, min = 0x10000, cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n < need) return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : need;
}

/* Every one- to three-byte input, and every lead and second byte of four,
 * agree with the slow rule, and decode to the value the encoder takes
 * back to the same bytes. */
static void test_seq_matches_reference(void **state)
{
    (void)state;
    static const unsigned char tails[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0, 0xff};
    unsigned char b[4];
    size_t checked = 0;
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned c = 0; c < 256; c++) {
            for (unsigned d = 0; d < 256; d++) {
                b[0] = (unsigned char)a, b[1] = (unsigned char)c, b[2] = (unsigned char)d;
                for (size_t n = 1; n <= 3; n++) {
                    size_t got = utf8_seq((const char *)b, n);
                    if (got != reference_seq(b, n)) fail_msg("%02x %02x %02x n=%zu", a, c, d, n);
                    checked++;
                }
                if (a < 0xf0) continue;
                for (size_t t = 0; t < sizeof tails; t++) {
                    b[3] = tails[t];
                    if (utf8_seq((const char *)b, 4) != reference_seq(b, 4))
                        fail_msg("%02x %02x %02x %02x", a, c, d, b[3]);
                }
            }
        }
    }
    assert_int_equal(checked, 3 * 256 * 256 * 256);

    /* Round trips through the decoder and the encoder. */
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        char out[UTF8_SEQ_MAX];
        size_t n = utf8_encode(cp, out);
        if (cp >= 0xd800 && cp <= 0xdfff) {
            if (n != 0) fail_msg("surrogate %x encoded", cp);
            continue;
        }
        uint32_t back = 0;
        if (n == 0 || utf8_decode(out, n, &back) != n || back != cp) fail_msg("%x", cp);
    }
}

static void test_encode(void **state)
{
    (void)state;
    char out[UTF8_SEQ_MAX];
    assert_int_equal(utf8_encode(0x41, out), 1);
    assert_memory_equal(out, "A", 1);
    assert_int_equal(utf8_encode(0xe9, out), 2);
    assert_memory_equal(out, "\xc3\xa9", 2);
    assert_int_equal(utf8_encode(0x20ac, out), 3);
    assert_memory_equal(out, "\xe2\x82\xac", 3);
    assert_int_equal(utf8_encode(0x1f600, out), 4);
    assert_memory_equal(out, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(utf8_encode(0xd800, out), 0);
    assert_int_equal(utf8_encode(0xdfff, out), 0);
    assert_int_equal(utf8_encode(0x110000, out), 0);
    assert_int_equal(utf8_encode(UINT32_MAX, out), 0);
}

static void test_decode(void **state)
{
    (void)state;
    uint32_t cp = 7;
    assert_int_equal(utf8_decode(S("\xc2\x85"), &cp), 2);
    assert_int_equal(cp, 0x85);
    assert_int_equal(utf8_decode(S("\xf4\x8f\xbf\xbf"), &cp), 4);
    assert_int_equal(cp, 0x10ffff);
    /* An ill-formed input leaves *cp alone. */
    cp = 7;
    assert_int_equal(utf8_decode(S("\xed\xa0\x80"), &cp), 0);
    assert_int_equal(cp, 7);
}

static void test_next_takes_maximal_subparts(void **state)
{
    (void)state;
    assert_int_equal(utf8_next("", 0), 0);
    assert_int_equal(utf8_next(S("a")), 1);
    assert_int_equal(utf8_next(S("\xe2\x82\xac")), 3);
    /* A lead byte and the continuation bytes that could still complete it. */
    assert_int_equal(utf8_next(S("\xe2\x82x")), 2);
    assert_int_equal(utf8_next(S("\xf0\x9f\x98")), 3);
    assert_int_equal(utf8_next(S("\xf0\x9f\x98x")), 3);
    /* A second byte outside the lead's range ends the subpart at once. */
    assert_int_equal(utf8_next(S("\xe0\x80\x80")), 1);     /* overlong */
    assert_int_equal(utf8_next(S("\xed\xa0\x80")), 1);     /* surrogate */
    assert_int_equal(utf8_next(S("\xf4\x90\x80\x80")), 1); /* above U+10FFFF */
    assert_int_equal(utf8_next(S("\xc0\xaf")), 1);
    assert_int_equal(utf8_next(S("\x80\x80")), 1);
    assert_int_equal(utf8_next(S("\xff")), 1);
}

static void test_valid(void **state)
{
    (void)state;
    assert_true(utf8_valid("", 0));
    assert_true(utf8_valid(S("plain ascii")));
    assert_true(utf8_valid(S("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")));
    assert_true(utf8_valid("a\0b", 3));
    assert_false(utf8_valid(S("caf\xc3")));
    assert_false(utf8_valid(S("\xed\xa0\x80")));
    assert_false(utf8_valid(S("\xc0\x80")));
    assert_false(utf8_valid(S("\xf4\x90\x80\x80")));
    assert_int_equal(utf8_valid_prefix(S("ab\xc3\xa9\xff\xc3\xa9")), 4);
    assert_int_equal(utf8_valid_prefix(S("ab\xe2\x82")), 2);
    assert_int_equal(utf8_valid_prefix(S("\x80")), 0);
}

static void test_count_and_skip(void **state)
{
    (void)state;
    assert_int_equal(utf8_count("", 0), 0);
    assert_int_equal(utf8_count(S("abc")), 3);
    assert_int_equal(utf8_count(S("\xc3\xa9t\xc3\xa9")), 3);
    assert_int_equal(utf8_count(S("\xf0\x9f\x98\x80")), 1);
    /* Each ill-formed unit counts once, as the U+FFFD shown for it. */
    assert_int_equal(utf8_count(S("\x80\x80")), 2);
    assert_int_equal(utf8_count(S("a\xe2\x82")), 2);
    assert_int_equal(utf8_count(S("\xed\xa0\x80")), 3);
    assert_int_equal(utf8_count(S("\xc0\xaf")), 2);

    const char *s = "a\xc2\xb7"
                    "b\xf0\x9f\x98\x80";
    size_t n = strlen(s);
    assert_int_equal(utf8_skip(s, n, 0), 0);
    assert_int_equal(utf8_skip(s, n, 1), 1);
    assert_int_equal(utf8_skip(s, n, 2), 3);
    assert_int_equal(utf8_skip(s, n, 3), 4);
    assert_int_equal(utf8_skip(s, n, 4), 8);
    assert_int_equal(utf8_skip(s, n, 99), 8);
    assert_int_equal(utf8_skip(S("\xe2\x82x"), 1), 2);
}

static void test_cut(void **state)
{
    (void)state;
    const char *s = "ab\xe2\x82\xac"
                    "c"; /* "ab€c" */
    size_t n = strlen(s);
    assert_int_equal(utf8_cut(s, n, 0), 0);
    assert_int_equal(utf8_cut(s, n, 2), 2);
    assert_int_equal(utf8_cut(s, n, 3), 2); /* inside the euro sign */
    assert_int_equal(utf8_cut(s, n, 4), 2);
    assert_int_equal(utf8_cut(s, n, 5), 5);
    assert_int_equal(utf8_cut(s, n, 6), 6);
    assert_int_equal(utf8_cut(s, n, 100), 6);
    /* A four-byte character at the very start. */
    assert_int_equal(utf8_cut(S("\xf0\x9f\x98\x80!"), 3), 0);
    assert_int_equal(utf8_cut(S("\xf0\x9f\x98\x80!"), 4), 4);
    /* Ill-formed bytes hold no character to keep whole: the cut stays. */
    assert_int_equal(utf8_cut(S("a\x80\x80\x80\x80\x80"), 4), 4);
    assert_int_equal(utf8_cut(S("a\xe2\x82xyz"), 2), 2);
    assert_int_equal(utf8_cut(S("a\xed\xa0\x80z"), 3), 3);
    /* A character cut off by the end of the input is not kept whole. */
    assert_int_equal(utf8_cut("a\xe2\x82\xac", 3, 2), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_well_formed),
        cmocka_unit_test(test_seq_ill_formed),
        cmocka_unit_test(test_seq_matches_reference),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_next_takes_maximal_subparts),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_count_and_skip),
        cmocka_unit_test(test_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
