/* Unit tests for lib/id: the format, ids of one process sort in the order
 * they were made, also within one millisecond and when the clock is set
 * back, and each later millisecond takes fresh random bits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/id.h"

static void test_format_is_prefix_time_and_random(void **state)
{
    (void)state;
    char id[ID_MAX];
    id_new(id, "ses", 0x0193a4f2c1b0LL);
    assert_int_equal(strlen(id), strlen("ses_") + 24);
    assert_memory_equal(id, "ses_0193a4f2c1b0", 16);
    for (size_t i = 4; id[i]; i++) assert_non_null(strchr("0123456789abcdef", id[i]));
}

static void test_ids_of_one_millisecond_sort_in_order(void **state)
{
    (void)state;
    const int64_t ms = 0x019400000000LL;
    char prev[ID_MAX], next[ID_MAX];
    id_new(prev, "ses", ms);
    for (int i = 0; i < 1000; i++) {
        id_new(next, "ses", ms);
        assert_true(strcmp(prev, next) < 0);
        assert_memory_equal(next, "ses_019400000000", 16);
        memcpy(prev, next, ID_MAX);
    }
    /* The last random part plus one, time unchanged. (Comparing all but
     * the last digits would fail whenever the increment carries.) */
    id_new(next, "ses", ms);
    assert_memory_equal(prev, next, 16);
    assert_true(strtoull(next + 16, NULL, 16) == strtoull(prev + 16, NULL, 16) + 1);
}

static void test_a_clock_set_back_still_sorts_after(void **state)
{
    (void)state;
    char later[ID_MAX], earlier[ID_MAX], after[ID_MAX];
    id_new(later, "run", 0x019500000000LL);
    id_new(earlier, "run", 0x019400000000LL);
    assert_true(strcmp(later, earlier) < 0);
    assert_memory_equal(earlier, "run_019500000000", 16);
    id_new(after, "run", 0x019500000001LL);
    assert_memory_equal(after, "run_019500000001", 16);
    assert_true(strcmp(earlier, after) < 0);
}

/* Ids of later milliseconds each take fresh random bits: 200 of them
 * (several refills of the pool of random bytes) have 200 different random
 * parts, each of 47 bits. */
static void test_random_parts_are_fresh_across_refills(void **state)
{
    (void)state;
    enum { N = 200 };
    uint64_t seen[N];
    char id[ID_MAX];
    for (int i = 0; i < N; i++) {
        id_new(id, "msg", 0x019600000000LL + 2 * i);
        seen[i] = strtoull(id + 16, NULL, 16);
        assert_true(seen[i] < (UINT64_C(1) << 47));
        for (int j = 0; j < i; j++) assert_true(seen[j] != seen[i]);
    }
}

/* Pooled random bytes are never handed out twice, also between ids made
 * from the same pool, and a request larger than the pool is filled. */
static void test_pooled_bytes_are_fresh(void **state)
{
    (void)state;
    enum { N = 100 };
    uint64_t seen[N];
    char id[ID_MAX];
    for (int i = 0; i < N; i++) {
        id_random_pooled(&seen[i], sizeof seen[i]);
        id_new(id, "req", 0x019700000000LL + i);
        for (int j = 0; j < i; j++) assert_true(seen[j] != seen[i]);
    }
    unsigned char big[1000];
    memset(big, 0, sizeof big);
    id_random_pooled(big, sizeof big);
    /* Eight-byte pieces from every part of it differ: no part was left
     * unfilled (zero) or copied twice. */
    for (size_t a = 0; a + 8 <= sizeof big; a += 8)
        for (size_t b = a + 8; b + 8 <= sizeof big; b += 8)
            assert_true(memcmp(big + a, big + b, 8));
}

/* id_hash tells apart ids that differ in any one byte, at any place, and
 * also by length alone. */
static void test_hash_sees_every_byte(void **state)
{
    (void)state;
    char id[ID_MAX];
    id_new(id, "ses", 1767225600000);
    size_t n = strlen(id);
    uint64_t base = id_hash(id);
    assert_true(id_hash(id) == base);
    for (size_t i = 0; i < n; i++) {
        char saved = id[i];
        for (int d = 1; d < 256; d += 37) {
            id[i] = (char)((unsigned char)saved ^ d);
            if (id[i] == '\0') continue;
            assert_true(id_hash(id) != base);
        }
        id[i] = saved;
    }
    for (size_t k = 0; k < n; k++) {
        char cut[ID_MAX];
        memcpy(cut, id, k);
        cut[k] = '\0';
        assert_true(id_hash(cut) != base);
    }
    assert_true(id_hash("") != id_hash("0"));
}

/* Ids made one after another, which share their time and differ at the
 * end, spread over a table's buckets: none gets three times its share. */
static void test_hash_spreads_ids_over_buckets(void **state)
{
    (void)state;
    enum { IDS = 16384, BUCKETS = 1024 };
    int count[BUCKETS] = {0};
    for (int i = 0; i < IDS; i++) {
        char id[ID_MAX];
        id_new(id, "ses", 1767225600000);
        count[id_hash(id) % BUCKETS]++;
    }
    for (int b = 0; b < BUCKETS; b++) {
        assert_true(count[b] > 0);
        assert_true(count[b] < 3 * IDS / BUCKETS);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_is_prefix_time_and_random),
        cmocka_unit_test(test_ids_of_one_millisecond_sort_in_order),
        cmocka_unit_test(test_a_clock_set_back_still_sorts_after),
        cmocka_unit_test(test_random_parts_are_fresh_across_refills),
        cmocka_unit_test(test_pooled_bytes_are_fresh),
        cmocka_unit_test(test_hash_sees_every_byte),
        cmocka_unit_test(test_hash_spreads_ids_over_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
