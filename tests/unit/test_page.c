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

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* A web root with a file, a FIFO and links in and out, under a new
 * temporary directory; returns the directory's path (static). */
static const char *web_tree(void)
{
    static char top[] = "/tmp/chatplane-page-XXXXXX";
    assert_non_null(mkdtemp(top));
    char p[512];
    snprintf(p, sizeof p, "%s/root", top);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/root/index.html", top);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("page", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/secret", top);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs("secret", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/root/fifo", top);
    assert_int_equal(mkfifo(p, 0600), 0);
    char target[512];
    snprintf(target, sizeof target, "%s/secret", top);
    snprintf(p, sizeof p, "%s/root/out", top);
    assert_int_equal(symlink(target, p), 0);
    snprintf(p, sizeof p, "%s/root/in.html", top);
    assert_int_equal(symlink("index.html", p), 0);
    return top;
}

static void web_tree_remove(const char *top)
{
    const char *names[] = {"root/index.html", "root/fifo", "root/out",
                           "root/in.html",    "secret",    "root"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", top, names[i]);
        assert_int_equal(remove(p), 0);
    }
    assert_int_equal(rmdir(top), 0);
}

static void test_web_root_files(void **state)
{
    (void)state;
    const char *top = web_tree();
    char p[512], err[256];
    snprintf(p, sizeof p, "%s/root", top);
    char *root = page_root_resolve(p, err, sizeof err);
    assert_non_null(root);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(page_read_file(root, "/", 100, &data, &len), 0);
    assert_string_equal(data, "page");
    free(data);
    assert_int_equal(page_read_file(root, "/in.html", 100, &data, &len), 0);
    assert_int_equal(len, 4);
    free(data);
    /* A FIFO: refused at once, not waited on. */
    assert_int_equal(page_read_file(root, "/fifo", 100, &data, &len), -1);
    assert_int_equal(page_read_file(root, "/out", 100, &data, &len), -1);
    assert_int_equal(page_read_file(root, "/index.html", 3, &data, &len), -1);
    assert_int_equal(page_read_file(root, "/none", 100, &data, &len), -1);
    free(root);
    snprintf(p, sizeof p, "%s/root/index.html", top);
    assert_null(page_root_resolve(p, err, sizeof err));
    char want[600];
    snprintf(want, sizeof want, "cannot serve the web root %s: it is not a directory", p);
    assert_string_equal(err, want);
    snprintf(p, sizeof p, "%s/nonexistent", top);
    assert_null(page_root_resolve(p, err, sizeof err));
    snprintf(want, sizeof want, "cannot serve the web root %s: No such file or directory", p);
    assert_string_equal(err, want);
    web_tree_remove(top);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a_known_answers),
        cmocka_unit_test(test_root_is_index),
        cmocka_unit_test(test_etag_is_the_hash_of_the_bytes),
        cmocka_unit_test(test_unknown_and_unsafe_paths),
        cmocka_unit_test(test_if_none_match),
        cmocka_unit_test(test_web_root_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
