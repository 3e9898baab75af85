/*
 * Tests of store/seqcache.c: the last_seq a connection remembers per
 * session, pending until its transaction commits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store/seqcache.h"

static void assert_known(const seqcache *c, const char *id, int64_t want)
{
    int64_t got = -1;
    assert_true(seqcache_get(c, id, &got));
    assert_int_equal(got, want);
}

static void assert_unknown(const seqcache *c, const char *id)
{
    int64_t got = -1;
    assert_false(seqcache_get(c, id, &got));
    assert_int_equal(got, -1);
}

static void test_pending_until_commit(void **state)
{
    (void)state;
    seqcache *c = seqcache_new();
    assert_unknown(c, "ses_a");
    seqcache_set(c, "ses_a", 5);
    /* Its own transaction sees the value it set. */
    assert_known(c, "ses_a", 5);
    seqcache_set(c, "ses_a", 9);
    assert_known(c, "ses_a", 9);
    seqcache_commit(c);
    assert_known(c, "ses_a", 9);
    assert_int_equal(seqcache_count(c), 1);
    /* A new pending value over a committed one, then undone: nothing is
     * known any more, not even the committed value. */
    seqcache_set(c, "ses_a", 12);
    seqcache_set(c, "ses_b", 3);
    assert_known(c, "ses_a", 12);
    seqcache_clear(c);
    assert_unknown(c, "ses_a");
    assert_unknown(c, "ses_b");
    assert_int_equal(seqcache_count(c), 0);
    seqcache_free(c);
}

/* A session set in a transaction that never commits is known to that
 * transaction only as long as it lasts; the commit makes only the
 * sessions set since the last one known. */
static void test_commit_keeps_earlier_values(void **state)
{
    (void)state;
    seqcache *c = seqcache_new();
    seqcache_set(c, "ses_a", 1);
    seqcache_commit(c);
    seqcache_set(c, "ses_b", 2);
    seqcache_commit(c);
    assert_known(c, "ses_a", 1);
    assert_known(c, "ses_b", 2);
    seqcache_set(c, "ses_a", 7);
    seqcache_commit(c);
    assert_known(c, "ses_a", 7);
    assert_known(c, "ses_b", 2);
    seqcache_free(c);
}

static void test_long_ids_are_never_known(void **state)
{
    (void)state;
    seqcache *c = seqcache_new();
    char id[SEQCACHE_ID_MAX + 2];
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    seqcache_set(c, id, 4);
    assert_unknown(c, id);
    assert_int_equal(seqcache_count(c), 0);
    id[SEQCACHE_ID_MAX] = '\0'; /* the longest kept */
    seqcache_set(c, id, 4);
    assert_known(c, id, 4);
    seqcache_free(c);
}

/* Past three quarters of the slots the cache empties itself and goes on
 * with the session being set; every value kept is still right. */
static void test_full_cache_empties_and_goes_on(void **state)
{
    (void)state;
    seqcache *c = seqcache_new();
    unsigned cap = SEQCACHE_SLOTS / 4 * 3;
    char id[32];
    for (unsigned i = 0; i < cap; i++) {
        snprintf(id, sizeof id, "ses_%u", i);
        seqcache_set(c, id, (int64_t)i + 100);
    }
    seqcache_commit(c);
    assert_int_equal(seqcache_count(c), cap);
    for (unsigned i = 0; i < cap; i++) {
        snprintf(id, sizeof id, "ses_%u", i);
        assert_known(c, id, (int64_t)i + 100);
    }
    seqcache_set(c, "ses_new", 1);
    assert_int_equal(seqcache_count(c), 1);
    assert_known(c, "ses_new", 1);
    assert_unknown(c, "ses_0");
    seqcache_commit(c);
    assert_known(c, "ses_new", 1);
    seqcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_until_commit),
        cmocka_unit_test(test_commit_keeps_earlier_values),
        cmocka_unit_test(test_long_ids_are_never_known),
        cmocka_unit_test(test_full_cache_empties_and_goes_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
