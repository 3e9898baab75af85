/* Unit tests for core/canon: canonical JSON, FNV-1a and fingerprints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/canon.h"

/* Parses text (any JSON value), canonicalizes it and compares the bytes. */
static void assert_canon(const char *text, const char *expected)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
    assert_non_null(v);
    char *s = canon_json_str(v);
    assert_string_equal(s, expected);
    free(s);
    json_decref(v);
}

/* Canonicalizes v, takes v's reference and compares the bytes. */
static void assert_canon_value(json_t *v, const char *expected)
{
    assert_non_null(v);
    char *s = canon_json_str(v);
    assert_string_equal(s, expected);
    free(s);
    json_decref(v);
}

static void test_nested_keys_sorted(void **state)
{
    (void)state;
    assert_canon("{ \"b\": 1, \"a\": {\"d\": [3, {\"z\": 1, \"y\": 2}], \"c\": null} }",
                 "{\"a\":{\"c\":null,\"d\":[3,{\"y\":2,\"z\":1}]},\"b\":1}");
    assert_canon("{}", "{}");
    assert_canon("{\"a\":{}}", "{\"a\":{}}");
}

static void test_keys_sorted_by_bytes(void **state)
{
    (void)state;
    /* Upper case before lower case, a prefix before its extensions, and
     * non-ASCII (lead byte 0xc3) after all of ASCII. */
    assert_canon("{\"\xc3\xa9\":1,\"aa\":2,\"a\":3,\"Z\":4,\"B\":5,\"\":6,\"a b\":7}",
                 "{\"\":6,\"B\":5,\"Z\":4,\"a\":3,\"a b\":7,\"aa\":2,\"\xc3\xa9\":1}");
}

static void test_key_with_nul_byte(void **state)
{
    (void)state;
    json_t *o = json_object();
    json_object_setn_new(o, "a\0b", 3, json_integer(1));
    json_object_setn_new(o, "a", 1, json_integer(2));
    assert_canon_value(o, "{\"a\":2,\"a\\u0000b\":1}");
}

static void test_arrays_keep_order(void **state)
{
    (void)state;
    assert_canon("[3, 1, 2, \"b\", \"a\", [2, 1], []]", "[3,1,2,\"b\",\"a\",[2,1],[]]");
}

static void test_escapes(void **state)
{
    (void)state;
    assert_canon_value(json_string("q\" b\\ \b\f\n\r\t \x01\x1f \x7f /"),
                       "\"q\\\" b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001f \x7f /\"");
    assert_canon_value(json_stringn("a\0b", 3), "\"a\\u0000b\"");
    assert_canon_value(json_string("\x0b\x1b"), "\"\\u000b\\u001b\"");
    assert_canon_value(json_string(""), "\"\"");
}

static void test_unicode_passes_through(void **state)
{
    (void)state;
    /* \u escapes in the input come out as raw UTF-8. */
    assert_canon("\"h\\u00e9llo \\u2713 \\ud83d\\ude00\"",
                 "\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\"");
    assert_canon("{\"\xe2\x9c\x93\":\"\xc3\xa9\"}", "{\"\xe2\x9c\x93\":\"\xc3\xa9\"}");
}

static void test_integers(void **state)
{
    (void)state;
    assert_canon("[0, -5, 42]", "[0,-5,42]");
    assert_canon_value(json_integer(INT64_MAX), "9223372036854775807");
    assert_canon_value(json_integer(INT64_MIN), "-9223372036854775808");
    assert_canon("9007199254740993", "9007199254740993");
}

static void test_reals(void **state)
{
    (void)state;
    assert_canon("1.0", "1");
    assert_canon("-3.0", "-3");
    assert_canon("0.1", "0.1");
    assert_canon("1.5", "1.5");
    assert_canon("1e300", "1e+300");
    assert_canon("-2.5e-8", "-2.5e-08");
    assert_canon("123456789012.5", "123456789012.5");
    assert_canon_value(json_real(-0.0), "0");
    assert_canon("-0.0", "0");
    /* 16 and 17 significant digits where 15 do not read back. */
    assert_canon_value(json_real(1.0 / 3.0), "0.3333333333333333");
    assert_canon_value(json_real(0.1 + 0.2), "0.30000000000000004");
}

static void test_reals_at_two_to_the_53(void **state)
{
    (void)state;
    assert_canon_value(json_real(9007199254740991.0), "9007199254740991");
    assert_canon_value(json_real(-9007199254740991.0), "-9007199254740991");
    /* From 2^53 on the real is printed by %g, which still needs no exponent. */
    assert_canon_value(json_real(9007199254740992.0), "9007199254740992");
    assert_canon_value(json_real(9007199254740994.0), "9007199254740994");
    assert_canon_value(json_real(-9007199254740992.0), "-9007199254740992");
    assert_canon_value(json_real(1e17), "1e+17");
}

static void test_literals(void **state)
{
    (void)state;
    assert_canon("[true, false, null]", "[true,false,null]");
    assert_canon("{\"t\":true,\"f\":false,\"n\":null}", "{\"f\":false,\"n\":null,\"t\":true}");
}

static void test_equal_objects_same_bytes_and_fingerprint(void **state)
{
    (void)state;
    json_t *a = json_loads("{\"x\":1,\"y\":{\"p\":[1,2],\"q\":\"s\"},\"z\":2.0}", 0, NULL);
    json_t *b =
        json_loads("{ \"z\" : 2, \"y\" : {\"q\":\"s\", \"p\":[1,2]}, \"x\" : 1.0 }", 0, NULL);
    char *sa = canon_json_str(a), *sb = canon_json_str(b);
    assert_string_equal(sa, "{\"x\":1,\"y\":{\"p\":[1,2],\"q\":\"s\"},\"z\":2}");
    assert_string_equal(sa, sb);
    assert_true(canon_fingerprint("calc", a) == canon_fingerprint("calc", b));
    free(sa);
    free(sb);
    json_decref(a);
    json_decref(b);
}

static void test_fingerprints_differ(void **state)
{
    (void)state;
    json_t *a = json_pack("{s:s}", "expression", "1/0");
    json_t *b = json_pack("{s:s}", "expression", "1/1");
    json_t *empty = json_object();
    uint64_t fa = canon_fingerprint("calc", a);
    assert_true(fa != canon_fingerprint("calc", b));
    assert_true(fa != canon_fingerprint("clock", a));
    /* NULL arguments count as {}. */
    assert_true(canon_fingerprint("clock", NULL) == canon_fingerprint("clock", empty));
    /* The NUL byte keeps the tool name apart from the arguments. */
    json_t *s1 = json_string("b"), *s2 = json_string("ab");
    assert_true(canon_fingerprint("xa", s1) != canon_fingerprint("x", s2));
    json_decref(s1);
    json_decref(s2);
    json_decref(a);
    json_decref(b);
    json_decref(empty);
}

static void test_fingerprint_is_hash_of_name_nul_canon(void **state)
{
    (void)state;
    json_t *a = json_loads("{\"b\":[1.0,\"\\n\"],\"a\":true}", 0, NULL);
    static const char bytes[] = "calc\0{\"a\":true,\"b\":[1,\"\\n\"]}";
    uint64_t want = canon_hash(CANON_HASH_SEED, bytes, sizeof bytes - 1);
    assert_true(canon_fingerprint("calc", a) == want);
    assert_true(canon_fingerprint("calc", NULL) ==
                canon_hash(CANON_HASH_SEED, "calc\0{}", sizeof "calc\0{}" - 1));
    json_decref(a);
}

static void test_fnv1a_known_values(void **state)
{
    (void)state;
    assert_true(canon_hash(CANON_HASH_SEED, "", 0) == UINT64_C(0xcbf29ce484222325));
    assert_true(canon_hash(CANON_HASH_SEED, "a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
    assert_true(canon_hash(CANON_HASH_SEED, "foobar", 6) == UINT64_C(0x85944171f73967e8));
    /* Hashing in pieces equals hashing at once. */
    assert_true(canon_hash(canon_hash(CANON_HASH_SEED, "foo", 3), "bar", 3) ==
                UINT64_C(0x85944171f73967e8));
}

static void test_append_and_toobig(void **state)
{
    (void)state;
    json_t *v = json_loads("{\"b\":2,\"a\":1}", 0, NULL); /* {"a":1,"b":2}: 13 bytes */
    buf b;
    buf_init(&b, 15);
    buf_append_str(&b, "x:");
    assert_int_equal(canon_json(v, &b), 0);
    assert_string_equal(b.data, "x:{\"a\":1,\"b\":2}");
    assert_int_equal(b.len, 15);
    buf_cleanup(&b);

    /* One byte short: nothing of the value is left behind. */
    buf_init(&b, 14);
    buf_append_str(&b, "x:");
    assert_int_equal(canon_json(v, &b), BUF_TOOBIG);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "x:");
    buf_cleanup(&b);

    buf_init(&b, 4);
    assert_int_equal(canon_json(v, &b), BUF_TOOBIG);
    assert_int_equal(b.len, 0);
    buf_cleanup(&b);
    json_decref(v);
}

static void test_str_cap_is_generous(void **state)
{
    (void)state;
    size_t n = (size_t)4 * 1024 * 1024;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    json_t *v = json_string(big);
    char *s = canon_json_str(v);
    assert_non_null(s);
    assert_int_equal(strlen(s), n + 2);
    free(s);
    json_decref(v);
    free(big);

    /* Past 16 MiB there is no string. */
    n = (size_t)16 * 1024 * 1024;
    big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    v = json_string(big);
    assert_null(canon_json_str(v));
    json_decref(v);
    free(big);
}

/* Returns a new text of depth nested arrays: "[[…]]". */
static char *nested_arrays(size_t depth)
{
    char *s = malloc(2 * depth + 1);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    return s;
}

static void test_depth_limit(void **state)
{
    (void)state;
    /* The deepest document jansson parses is written in full. */
    char *text = nested_arrays(2048);
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    char *s = canon_json_str(v);
    assert_string_equal(s, text);
    free(s);

    /* One level more, built by hand, is refused rather than recursed into. */
    json_t *outer = json_array();
    json_array_append_new(outer, v);
    assert_null(canon_json_str(outer));
    buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(canon_json(outer, &b), BUF_TOOBIG);
    assert_int_equal(b.len, 0);
    buf_cleanup(&b);
    /* A fingerprint still comes out, the same for every such call. */
    assert_true(canon_fingerprint("t", outer) == canon_fingerprint("t", outer));
    json_decref(outer);
    free(text);
}

/* A small deterministic generator, so the shuffles below repeat exactly. */
static uint32_t next_random(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void shuffle(const char **items, size_t n, uint32_t *rng)
{
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = next_random(rng) % (i + 1);
        const char *t = items[i];
        items[i] = items[j];
        items[j] = t;
    }
}

/* Writes the members in random order, separated by random white space. */
static void append_members(buf *b, const char **members, size_t n, uint32_t *rng)
{
    static const char *const spaces[] = {"", " ", "\n", "\t ", "  "};
    shuffle(members, n, rng);
    buf_append_str(b, "{");
    for (size_t i = 0; i < n; i++) {
        if (i > 0) buf_append_str(b, ",");
        buf_append_str(b, spaces[next_random(rng) % 5]);
        buf_append_str(b, members[i]);
    }
    buf_append_str(b, "}");
}

static void test_random_key_order_gives_fixed_bytes(void **state)
{
    (void)state;
    static const char expected[] =
        "{\"\":\"empty\",\"B\":[1,2,{\"a\":0.5,\"b\":null}],\"a\":1,\"a1\":{\"x\":false,"
        "\"y\":true,\"z\":\"\xc3\xa9\\n\"},\"aa\":-7,\"b\":1e+300,\"\xc3\xa9t\xc3\xa9\":2}";
    uint32_t rng = 0x2545f491u;
    for (int round = 0; round < 200; round++) {
        const char *inner[] = {"\"z\": \"\\u00e9\\n\"", "\"x\":false", "\"y\" :true"};
        const char *leaf[] = {"\"b\":null", "\"a\":5e-1"};
        buf in, inner_obj, leaf_obj, b_member, a1_member;
        buf_init(&in, 4096);
        buf_init(&inner_obj, 1024);
        buf_init(&leaf_obj, 1024);
        buf_init(&b_member, 1024);
        buf_init(&a1_member, 1024);
        append_members(&inner_obj, inner, 3, &rng);
        append_members(&leaf_obj, leaf, 2, &rng);
        buf_printf(&a1_member, "\"a1\":%s", inner_obj.data);
        buf_printf(&b_member, "\"B\":[1,2.0,%s]", leaf_obj.data);
        const char *top[] = {"\"a\":1",
                             "\"aa\":-7",
                             "\"\":\"empty\"",
                             "\"b\":1.0e300",
                             "\"\xc3\xa9t\xc3\xa9\":2",
                             a1_member.data,
                             b_member.data};
        append_members(&in, top, 7, &rng);
        assert_canon(in.data, expected);
        buf_cleanup(&in);
        buf_cleanup(&inner_obj);
        buf_cleanup(&leaf_obj);
        buf_cleanup(&b_member);
        buf_cleanup(&a1_member);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_keys_sorted),
        cmocka_unit_test(test_keys_sorted_by_bytes),
        cmocka_unit_test(test_key_with_nul_byte),
        cmocka_unit_test(test_arrays_keep_order),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_unicode_passes_through),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_reals),
        cmocka_unit_test(test_reals_at_two_to_the_53),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_equal_objects_same_bytes_and_fingerprint),
        cmocka_unit_test(test_fingerprints_differ),
        cmocka_unit_test(test_fingerprint_is_hash_of_name_nul_canon),
        cmocka_unit_test(test_fnv1a_known_values),
        cmocka_unit_test(test_append_and_toobig),
        cmocka_unit_test(test_str_cap_is_generous),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_random_key_order_gives_fixed_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
