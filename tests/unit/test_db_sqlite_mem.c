/* Unit tests for store/db_sqlite_mem: SQLite's allocator with a cache of
 * freed blocks for each thread. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/db_sqlite_mem.h"

static void test_sizes_round_up_to_the_classes(void **state)
{
    (void)state;
    assert_int_equal(db_sqlite_mem_roundup(1), 32);
    assert_int_equal(db_sqlite_mem_roundup(32), 32);
    assert_int_equal(db_sqlite_mem_roundup(33), 64);
    assert_int_equal(db_sqlite_mem_roundup(1000), 1024);
    assert_int_equal(db_sqlite_mem_roundup(2048), 2048);
    assert_int_equal(db_sqlite_mem_roundup(2049), 3072);
    assert_int_equal(db_sqlite_mem_roundup(4200), DB_SQLITE_MEM_CACHED_MAX);
    /* Past the classes: malloc's own 8-byte steps. */
    assert_int_equal(db_sqlite_mem_roundup(DB_SQLITE_MEM_CACHED_MAX + 1),
                     DB_SQLITE_MEM_CACHED_MAX + 8);
    assert_int_equal(db_sqlite_mem_roundup(100000), 100000);

    void *p = db_sqlite_mem_alloc(100);
    assert_non_null(p);
    assert_int_equal(db_sqlite_mem_size(p), 128);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, 0xAB, 128);
    db_sqlite_mem_free(p);
    void *big = db_sqlite_mem_alloc(10000);
    assert_int_equal(db_sqlite_mem_size(big), 10000);
    db_sqlite_mem_free(big);
    assert_int_equal(db_sqlite_mem_size(NULL), 0);
    db_sqlite_mem_free(NULL);
    assert_null(db_sqlite_mem_alloc(0));
    db_sqlite_mem_flush();
}

static void test_a_freed_block_is_taken_again(void **state)
{
    (void)state;
    db_sqlite_mem_flush();
    void *p = db_sqlite_mem_alloc(200);
    db_sqlite_mem_free(p);
    assert_int_equal(db_sqlite_mem_cached(), 1);
    /* Same class (129 to 256 bytes): the same block. */
    void *q = db_sqlite_mem_alloc(256);
    assert_ptr_equal(q, p);
    assert_int_equal(db_sqlite_mem_cached(), 0);
    /* Another class: not that block. */
    db_sqlite_mem_free(q);
    void *r = db_sqlite_mem_alloc(20);
    assert_ptr_not_equal(r, p);
    assert_int_equal(db_sqlite_mem_cached(), 1);
    db_sqlite_mem_free(r);
    /* Large blocks are never kept. */
    db_sqlite_mem_free(db_sqlite_mem_alloc(DB_SQLITE_MEM_CACHED_MAX + 1));
    assert_int_equal(db_sqlite_mem_cached(), 2);
    db_sqlite_mem_flush();
    assert_int_equal(db_sqlite_mem_cached(), 0);
}

static void test_each_class_keeps_at_most_its_cap(void **state)
{
    (void)state;
    db_sqlite_mem_flush();
    enum { N = 300 };
    void *small[N], *page[N];
    for (int i = 0; i < N; i++) {
        small[i] = db_sqlite_mem_alloc(16);
        page[i] = db_sqlite_mem_alloc(4096 + 200);
        assert_non_null(small[i]);
        assert_non_null(page[i]);
    }
    for (int i = 0; i < N; i++) db_sqlite_mem_free(small[i]);
    assert_int_equal(db_sqlite_mem_cached(), DB_SQLITE_MEM_CLASS_BLOCKS);
    for (int i = 0; i < N; i++) db_sqlite_mem_free(page[i]);
    /* 64 KiB of 4,608-byte blocks is 14. */
    assert_int_equal(db_sqlite_mem_cached(),
                     DB_SQLITE_MEM_CLASS_BLOCKS +
                         DB_SQLITE_MEM_CLASS_BYTES / DB_SQLITE_MEM_CACHED_MAX);
    db_sqlite_mem_flush();
}

static void test_realloc_keeps_the_bytes(void **state)
{
    (void)state;
    db_sqlite_mem_flush();
    char *p = db_sqlite_mem_realloc(NULL, 10);
    assert_int_equal(db_sqlite_mem_size(p), 32);
    memcpy(p, "0123456789", 10);
    /* Room already: the same block. */
    assert_ptr_equal(db_sqlite_mem_realloc(p, 30), p);
    /* Into the next class: a new block with the old bytes, the old one
     * kept for reuse. */
    char *q = db_sqlite_mem_realloc(p, 40);
    assert_ptr_not_equal(q, p);
    assert_int_equal(db_sqlite_mem_size(q), 64);
    assert_memory_equal(q, "0123456789", 10);
    assert_int_equal(db_sqlite_mem_cached(), 1);
    /* From a class to a large block, and a large block grown. */
    char *r = db_sqlite_mem_realloc(q, 6000);
    assert_int_equal(db_sqlite_mem_size(r), 6000);
    assert_memory_equal(r, "0123456789", 10);
    r[5999] = 'z';
    char *s = db_sqlite_mem_realloc(r, 20000);
    assert_int_equal(db_sqlite_mem_size(s), 20000);
    assert_memory_equal(s, "0123456789", 10);
    assert_int_equal(s[5999], 'z');
    db_sqlite_mem_free(s);
    assert_int_equal(db_sqlite_mem_cached(), 2);
    db_sqlite_mem_flush();
}

/* A thread that frees blocks of another thread keeps them, and gives them
 * back when it exits (the sanitizer build's leak check sees a block that
 * is not). */
static void *free_on_a_thread(void *arg)
{
    void **blocks = arg;
    for (int i = 0; i < 10; i++) db_sqlite_mem_free(blocks[i]);
    size_t *kept = malloc(sizeof *kept);
    *kept = db_sqlite_mem_cached();
    return kept;
}

static void test_blocks_freed_on_another_thread(void **state)
{
    (void)state;
    db_sqlite_mem_flush();
    void *blocks[10];
    for (int i = 0; i < 10; i++) blocks[i] = db_sqlite_mem_alloc(64 * (i + 1));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, free_on_a_thread, blocks), 0);
    void *kept = NULL;
    assert_int_equal(pthread_join(t, &kept), 0);
    assert_int_equal(*(size_t *)kept, 10);
    free(kept);
    /* This thread kept none of them. */
    assert_int_equal(db_sqlite_mem_cached(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_round_up_to_the_classes),
        cmocka_unit_test(test_a_freed_block_is_taken_again),
        cmocka_unit_test(test_each_class_keeps_at_most_its_cap),
        cmocka_unit_test(test_realloc_keeps_the_bytes),
        cmocka_unit_test(test_blocks_freed_on_another_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
