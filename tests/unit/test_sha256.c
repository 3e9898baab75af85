/* Unit tests for core/sha256: the FIPS 180-4 test vectors, the padding
 * boundaries, feeding in pieces, and the constant-time comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/sha256.h"

static void assert_hex(const char *msg, size_t len, const char *want)
{
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex(msg, len, hex);
    assert_string_equal(hex, want);
}

static void test_fips_vectors(void **state)
{
    (void)state;
    assert_hex("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_hex("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_hex(m448, strlen(m448),
               "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmno"
        "pqrlmnopqrsmnopqrstnopqrstu";
    assert_hex(m896, strlen(m896),
               "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_million_a_in_pieces(void **state)
{
    (void)state;
    /* Pieces of 1, 2, 3, … bytes cross every block boundary differently. */
    char piece[1000];
    memset(piece, 'a', sizeof piece);
    sha256_ctx c;
    sha256_init(&c);
    size_t left = 1000000, n = 1;
    while (left > 0) {
        size_t take = n < left ? n : left;
        sha256_update(&c, piece, take);
        left -= take;
        n = n % 999 + 1;
    }
    unsigned char d[SHA256_DIGEST_BYTES];
    sha256_final(&c, d);
    static const unsigned char want[SHA256_DIGEST_BYTES] = {
        0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7,
        0xe2, 0x84, 0xd7, 0x3e, 0x67, 0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97,
        0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
    assert_memory_equal(d, want, sizeof want);
}

/* Lengths around the end of the first block, where the padding needs one
 * block or two. Expected values from coreutils' sha256sum. */
static void test_padding_boundaries(void **state)
{
    (void)state;
    char x[65];
    memset(x, 'x', sizeof x);
    assert_hex(x, 55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072");
    assert_hex(x, 56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e");
    assert_hex(x, 63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2");
    assert_hex(x, 64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c");
    assert_hex(x, 65, "9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9");
}

static void test_equal_const(void **state)
{
    (void)state;
    assert_true(sha256_equal_const("", ""));
    assert_true(sha256_equal_const("abc", "abc"));
    assert_false(sha256_equal_const("abc", "abd"));
    assert_false(sha256_equal_const("abc", "xbc"));
    assert_false(sha256_equal_const("abc", "ab"));
    assert_false(sha256_equal_const("", "a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_vectors),
        cmocka_unit_test(test_million_a_in_pieces),
        cmocka_unit_test(test_padding_boundaries),
        cmocka_unit_test(test_equal_const),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
