/* Unit tests for net/page: the embedded web page, found by URL path, with
 * ETags. The module's .c is included to reach its hash function; the test
 * then does not pull page.o from the library. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/page.c"

static void test_fnv1a_known_answers(void **state)
{
    (void)state;
    /* The published FNV-1a 64 test vectors. */
    assert_true(page__fnv1a((const unsigned char *)"", 0) == 0xcbf29ce484222325ull);
    assert_true(page__fnv1a((const unsigned char *)"a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(page__fnv1a((const unsigned char *)"foobar", 6) == 0x85944171f73967e8ull);
}

static void test_root_is_index(void **state)
{
    (void)state;
    const page_file *root = page_find("/");
    const page_file *index = page_find("/index.html");
    assert_non_null(root);
    assert_ptr_equal(root, index);
    assert_string_equal(root->path, "web/index.html");
    assert_memory_equal(root->data, "<!doctype html>", 15);
    /* The bytes end with the NUL tools/embed adds, not counted in len. */
    assert_int_equal(root->data[root->len], 0);
    assert_int_equal(strlen((const char *)root->data), root->len);
}

static void test_etag_is_the_hash_of_the_bytes(void **state)
{
    (void)state;
    const char *files[] = {"/index.html", "/app.js", "/app.css", "/markdown.js", "/favicon.svg"};
    const char *seen[5];
    for (size_t i = 0; i < 5; i++) {
        const page_file *f = page_find(files[i]);
        assert_non_null(f);
        char want[19];
        snprintf(want, sizeof want, "\"%016llx\"",
                 (unsigned long long)page__fnv1a(f->data, f->len));
        assert_string_equal(f->etag, want);
        for (size_t k = 0; k < i; k++) assert_string_not_equal(seen[k], f->etag);
        seen[i] = f->etag;
    }
}

static void test_unknown_and_unsafe_paths(void **state)
{
    (void)state;
    assert_null(page_find("/nope.js"));
    assert_null(page_find(""));
    assert_null(page_find(NULL));
    assert_null(page_find("index.html"));
    assert_null(page_find("/web/index.html"));
    assert_null(page_find("/../web/index.html"));
    assert_null(page_find("//index.html"));
    assert_null(page_find("/a\\b"));
    /* Only files given to tools/embed are there: no package.json. */
    assert_null(page_find("/package.json"));
    /* Paths compare as sent: no case folding, no decoding. */
    assert_null(page_find("/INDEX.html"));
    assert_null(page_find("/index%2ehtml"));
}

static void test_if_none_match(void **state)
{
    (void)state;
    const char *tag = "\"00112233aabbccdd\"";
    assert_true(page_etag_matches("\"00112233aabbccdd\"", tag));
    assert_true(page_etag_matches("W/\"00112233aabbccdd\"", tag));
    assert_true(page_etag_matches("\"x\", \"00112233aabbccdd\"", tag));
    assert_true(page_etag_matches("\"x\",W/\"00112233aabbccdd\" ", tag));
    assert_true(page_etag_matches("*", tag));
    assert_false(page_etag_matches(NULL, tag));
    assert_false(page_etag_matches("", tag));
    assert_false(page_etag_matches("\"00112233aabbccde\"", tag));
    assert_false(page_etag_matches("00112233aabbccdd", tag));
    assert_false(page_etag_matches("\"00112233aabbccdd", tag));
    assert_false(page_etag_matches("W/", tag));
    assert_false(page_etag_matches(", ,", tag));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a_known_answers),
        cmocka_unit_test(test_root_is_index),
        cmocka_unit_test(test_etag_is_the_hash_of_the_bytes),
        cmocka_unit_test(test_unknown_and_unsafe_paths),
        cmocka_unit_test(test_if_none_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
