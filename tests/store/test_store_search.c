/*
 * Finding sessions by text in the store (store_session_search, migration
 * 11): titles and message text, ASCII case folded and nothing else, as a
 * literal substring (LIKE's % and _ and FTS5's quotes are plain text),
 * short text found without the index, paging like the plain list, another
 * owner's sessions never found, deleted and renamed sessions forgotten, and
 * messages stored before migration 11 found after it; on PostgreSQL,
 * migration 11 and search without pg_trgm.
 *
 * CHATPLANE_TEST_DB_URL names the database as for the store suite; every
 * test uses owners of its own, so a shared database is fine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "core/search.h"
#include "lib/id.h"
#include "store/db.h"
#include "store/store.h"

#include "fixture.h"

typedef fixture fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (fixture_start(f, "chatplane-store-search") != 0) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_stop(*state);
    free(*state);
    return 0;
}

static bool on_sqlite(const fx *f)
{
    return strncmp(f->url, "sqlite:", 7) == 0;
}

/* A name no other run of the suite on a shared database uses. */
static char *unique(const char *prefix)
{
    static int counter;
    char id[ID_MAX + 32];
    char base[ID_MAX];
    id_new(base, prefix, 1700000000000 + counter++);
    snprintf(id, sizeof id, "%s-%d", base, (int)getpid());
    return strdup(id);
}

static char *session(store *s, const char *owner, const char *title, int64_t created_ms)
{
    char *id = unique("ses");
    store_session row = {.id = id,
                         .owner = (char *)owner,
                         .title = (char *)title,
                         .mode = "standard",
                         .created_ms = created_ms};
    assert_int_equal(store_session_insert(s, &row), 0);
    return id;
}

static void message(store *s, const char *session_id, const char *role, const char *content,
                    int64_t created_ms)
{
    char *id = unique("msg");
    store_message m = {.id = id,
                       .session_id = (char *)session_id,
                       .role = (char *)role,
                       .content = (char *)content,
                       .created_ms = created_ms};
    assert_int_equal(store_message_insert(s, &m), 0);
    free(id);
}

/* Copies the titles and messages not indexed yet into the index, as the
 * server does a moment after they are stored; returns how many. */
static int index_pending(store *s)
{
    int n = store_session_index_pending(s, 1000);
    if (n < 0) fail_msg("index_pending: %d %s", n, store_errmsg(s));
    return n;
}

static void expect_found_now(store *s, const char *owner, const char *text, int limit,
                             const char *before, const char *const *want);

/* Runs one statement or fails the test, naming it. */
static void run_sql(store *s, const char *sql)
{
    if (db_exec(store_db(s), sql, 0, NULL, NULL) < 0) fail_msg("%s: %s", sql, store_errmsg(s));
}

/* Searches owner's sessions for text and compares the ids found, newest
 * first, with want (NULL-terminated): with the newest messages not indexed
 * yet (read directly), then once they are (on SQLite). */
static void expect_found(store *s, const char *owner, const char *text, int limit,
                         const char *before, const char *const *want)
{
    expect_found_now(s, owner, text, limit, before, want);
    if (db_get_kind(store_db(s)) != DB_SQLITE) return;
    index_pending(s);
    expect_found_now(s, owner, text, limit, before, want);
}

static void expect_found_now(store *s, const char *owner, const char *text, int limit,
                             const char *before, const char *const *want)
{
    store_session *rows = NULL;
    size_t n = 0;
    int rc = store_session_search(s, owner, text, limit, before, &rows, &n);
    if (rc != 0) fail_msg("search \"%s\": %d %s", text, rc, store_errmsg(s));
    size_t k = 0;
    while (want[k]) k++;
    if (n != k) {
        for (size_t i = 0; i < n; i++) print_error("found %s (%s)\n", rows[i].id, rows[i].title);
        fail_msg("search \"%s\": %zu sessions found, %zu expected", text, n, k);
    }
    for (size_t i = 0; i < n; i++) assert_string_equal(rows[i].id, want[i]);
    store_session_list_free(rows, n);
    /* Reading every session instead of the index finds the same. */
    rc = store_session_search_scan(s, owner, text, limit, before, &rows, &n);
    if (rc != 0) fail_msg("scan \"%s\": %d %s", text, rc, store_errmsg(s));
    assert_int_equal(n, k);
    for (size_t i = 0; i < n; i++) assert_string_equal(rows[i].id, want[i]);
    store_session_list_free(rows, n);
}

#define FOUND(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE       ((const char *const[]){NULL})

/* Titles and message text of every role, long text through the index and
 * short text without it, folded for A-Z only; another owner's matching
 * sessions are never found. */
static void test_finds_title_and_message_text(void **state)
{
    fx *f = *state;
    char *me = unique("own"), *them = unique("own");
    char *trip = session(f->s, me, "Trip to Lisbon", 1000);
    char *zebra = session(f->s, me, "New chat", 2000);
    message(f->s, zebra, "user", "Where is the nearest ZEBRA crossing?", 2001);
    message(f->s, zebra, "assistant", "Two blocks north.", 2002);
    char *tool = session(f->s, me, "New chat", 3000);
    message(f->s, tool, "tool", "{\"result\": \"Quartz\"}", 3001);
    char *ecole = session(f->s, me, "New chat", 4000);
    message(f->s, ecole, "user", "L'École est fermée", 4001);
    /* U+212A KELVIN SIGN, which Unicode folds to k. */
    message(f->s, ecole, "assistant",
            "Use the \xE2\x84\xAA"
            "elvin scale",
            4002);
    char *theirs = session(f->s, them, "Lisbon zebra quartz", 5000);
    message(f->s, theirs, "user", "zebra crossing in Lisbon", 5001);

    expect_found(f->s, me, "Lisbon", 0, NULL, FOUND(trip));
    expect_found(f->s, me, "lISBOn", 0, NULL, FOUND(trip));
    expect_found(f->s, me, "zebra cross", 0, NULL, FOUND(zebra));
    expect_found(f->s, me, "NORTH.", 0, NULL, FOUND(zebra));
    expect_found(f->s, me, "quartz", 0, NULL, FOUND(tool));
    expect_found(f->s, me, "\"result\"", 0, NULL, FOUND(tool));
    expect_found(f->s, me, "okapi", 0, NULL, NONE);
    /* Short text: no trigram to look up, found all the same. */
    expect_found(f->s, me, "zE", 0, NULL, FOUND(zebra));
    expect_found(f->s, me, "Q", 0, NULL, FOUND(tool));
    expect_found(f->s, me, "?", 0, NULL, FOUND(zebra));
    /* Only A-Z fold: É is not é, whatever the index folds. */
    expect_found(f->s, me, "École", 0, NULL, FOUND(ecole));
    expect_found(f->s, me, "ÉCOLE EST", 0, NULL, FOUND(ecole));
    expect_found(f->s, me, "école", 0, NULL, NONE);
    expect_found(f->s, me, "FERMÉE", 0, NULL, NONE);
    expect_found(f->s, me, "fermée", 0, NULL, FOUND(ecole));
    expect_found(f->s, me, "é", 0, NULL, FOUND(ecole));
    expect_found(f->s, me, "É", 0, NULL, FOUND(ecole));
    expect_found(f->s, me, "kelvin", 0, NULL, NONE);
    expect_found(f->s, me,
                 "\xE2\x84\xAA"
                 "ELVIN",
                 0, NULL, FOUND(ecole));
    /* Every title has a t ("New chat", "Trip to Lisbon"). */
    expect_found(f->s, me, "T", 0, NULL, FOUND(ecole, tool, zebra, trip));
    /* The other owner's session is there to be found by it alone. */
    expect_found(f->s, them, "lisbon", 0, NULL, FOUND(theirs));
    /* Empty text is the plain list. */
    expect_found(f->s, me, "", 0, NULL, FOUND(ecole, tool, zebra, trip));
    expect_found(f->s, me, NULL, 2, NULL, FOUND(ecole, tool));
    free(trip);
    free(zebra);
    free(tool);
    free(ecole);
    free(theirs);
    free(me);
    free(them);
}

/* No character of the text means anything but itself: LIKE's % and _, its
 * escape \, and FTS5's quotes and operators. */
static void test_wildcards_are_literal(void **state)
{
    fx *f = *state;
    char *me = unique("own");
    char *pct = session(f->s, me, "New chat", 1000);
    message(f->s, pct, "user", "I am 100% sure", 1001);
    char *zeros = session(f->s, me, "New chat", 2000);
    message(f->s, zeros, "user", "I am 1000 sure", 2001);
    char *snake = session(f->s, me, "snake_case names", 3000);
    char *snakex = session(f->s, me, "snakeXcase names", 4000);
    char *slash = session(f->s, me, "New chat", 5000);
    message(f->s, slash, "user", "C:\\temp\\x and \"quoted\" AND NOT OR *", 5001);

    expect_found(f->s, me, "0% s", 0, NULL, FOUND(pct));
    expect_found(f->s, me, "%", 0, NULL, FOUND(pct));
    expect_found(f->s, me, "100%", 0, NULL, FOUND(pct));
    expect_found(f->s, me, "e_c", 0, NULL, FOUND(snake));
    expect_found(f->s, me, "_", 0, NULL, FOUND(snake));
    expect_found(f->s, me, "e%c", 0, NULL, NONE);
    expect_found(f->s, me, "\\temp\\", 0, NULL, FOUND(slash));
    expect_found(f->s, me, "\\", 0, NULL, FOUND(slash));
    expect_found(f->s, me, "\\t", 0, NULL, FOUND(slash));
    expect_found(f->s, me, "\"quoted\"", 0, NULL, FOUND(slash));
    expect_found(f->s, me, "\"", 0, NULL, FOUND(slash));
    expect_found(f->s, me, "AND NOT", 0, NULL, FOUND(slash));
    expect_found(f->s, me, "OR *", 0, NULL, FOUND(slash));
    expect_found(f->s, me, "NEAR(", 0, NULL, NONE);
    free(pct);
    free(zeros);
    free(snake);
    free(snakex);
    free(slash);
    free(me);
}

/* Pages of matches, newest first, before= a match or a session that does
 * not match; before= another owner's session or an unknown id is an empty
 * page, as for the plain list. */
static void test_pages_like_the_list(void **state)
{
    fx *f = *state;
    char *me = unique("own"), *them = unique("own");
    char *hits[5], *misses[5];
    for (int i = 0; i < 5; i++) {
        hits[i] = session(f->s, me, "New chat", 1000 + 20 * i);
        message(f->s, hits[i], "user", "find the walrus", 1001 + 20 * i);
        misses[i] = session(f->s, me, "New chat", 1010 + 20 * i);
        message(f->s, misses[i], "user", "nothing to see", 1011 + 20 * i);
    }
    char *other = session(f->s, them, "walrus", 1050);
    for (int round = 0; round < 2; round++) {
        /* Long text through the index, then short text without it. */
        const char *text = round ? "wA" : "WALRUS";
        expect_found(f->s, me, text, 2, NULL, FOUND(hits[4], hits[3]));
        expect_found(f->s, me, text, 2, hits[3], FOUND(hits[2], hits[1]));
        expect_found(f->s, me, text, 2, hits[1], FOUND(hits[0]));
        expect_found(f->s, me, text, 2, hits[0], NONE);
        expect_found(f->s, me, text, 10, misses[2], FOUND(hits[2], hits[1], hits[0]));
        expect_found(f->s, me, text, 10, other, NONE);
        expect_found(f->s, me, text, 10, "ses_no_such_session", NONE);
        expect_found(f->s, them, text, 10, hits[4], NONE);
    }
    for (int i = 0; i < 5; i++) {
        free(hits[i]);
        free(misses[i]);
    }
    free(other);
    free(me);
    free(them);
}

/* A deleted session and its messages are not found; a renamed one is found
 * by its new title only; a message added later is found. */
static void test_follows_deletes_and_renames(void **state)
{
    fx *f = *state;
    char *me = unique("own");
    char *gone = session(f->s, me, "Capybara facts", 1000);
    message(f->s, gone, "user", "tell me about the axolotl", 1001);
    char *kept = session(f->s, me, "Old name", 2000);
    message(f->s, kept, "user", "the narwhal", 2001);
    expect_found(f->s, me, "axolotl", 0, NULL, FOUND(gone));
    expect_found(f->s, me, "capybara", 0, NULL, FOUND(gone));

    assert_int_equal(store_session_delete(f->s, gone), 0);
    expect_found(f->s, me, "axolotl", 0, NULL, NONE);
    expect_found(f->s, me, "capybara", 0, NULL, NONE);
    expect_found(f->s, me, "ax", 0, NULL, NONE);

    store_session upd = {
        .id = kept, .title = "Sea unicorns", .mode = "standard", .updated_ms = 3000};
    assert_int_equal(store_session_update(f->s, &upd), 0);
    expect_found(f->s, me, "old name", 0, NULL, NONE);
    expect_found(f->s, me, "unicorn", 0, NULL, FOUND(kept));
    expect_found(f->s, me, "narwhal", 0, NULL, FOUND(kept));
    message(f->s, kept, "assistant", "a pangolin too", 3001);
    expect_found(f->s, me, "pangolin", 0, NULL, FOUND(kept));
    if (on_sqlite(f)) {
        /* The index holds the title and the two messages of the session
         * left, and nothing of the deleted one. */
        const char *p[] = {kept, gone};
        db_result *r = NULL;
        assert_int_equal(db_exec(store_db(f->s),
                                 "SELECT (SELECT COUNT(*) FROM chat_search_docs WHERE session_id "
                                 "= ?), (SELECT COUNT(*) FROM chat_search_docs WHERE session_id "
                                 "= ?)",
                                 2, p, &r),
                         0);
        assert_int_equal(db_result_int(r, 0, 0, -1), 3);
        assert_int_equal(db_result_int(r, 0, 1, -1), 0);
        db_result_free(r);
    }
    free(gone);
    free(kept);
    free(me);
}

/*
 * SQLite indexes a message a moment after storing it: a new message waits
 * (indexed = 0), is found all the same, and a call copies the waiting
 * messages into the index, oldest first, each exactly once and at most as
 * many as asked. A message deleted or changed before it is copied leaves
 * nothing behind, and the full-text index stays consistent throughout.
 */
static void test_sqlite_indexes_messages_in_batches(void **state)
{
    fx *f = *state;
    if (!on_sqlite(f)) skip();
    char *me = unique("own");
    char *a = session(f->s, me, "New chat", 1000);
    index_pending(f->s);
    message(f->s, a, "user", "the first wombat", 1001);
    message(f->s, a, "assistant", "a second wombat", 1002);
    message(f->s, a, "user", "a quokka, briefly", 1003);
    expect_found_now(f->s, me, "wombat", 0, NULL, FOUND(a));
    /* The last one goes before its batch: the trigger must not ask the
     * index to forget text it never held. */
    assert_int_equal(db_exec(store_db(f->s),
                             "DELETE FROM chat_messages WHERE content = 'a quokka, briefly'", 0,
                             NULL, NULL),
                     1);
    expect_found_now(f->s, me, "quokka", 0, NULL, NONE);
    assert_int_equal(store_session_index_pending(f->s, 1), 1);
    expect_found_now(f->s, me, "wombat", 0, NULL, FOUND(a));
    assert_int_equal(index_pending(f->s), 1);
    assert_int_equal(index_pending(f->s), 0);
    expect_found_now(f->s, me, "wombat", 0, NULL, FOUND(a));
    expect_found_now(f->s, me, "quokka", 0, NULL, NONE);
    /* Changed after its batch: the index forgets the old text. */
    assert_int_equal(db_exec(store_db(f->s),
                             "UPDATE chat_messages SET content = 'a second koala' WHERE content = "
                             "'a second wombat'",
                             0, NULL, NULL),
                     1);
    expect_found_now(f->s, me, "koala", 0, NULL, FOUND(a));
    assert_int_equal(db_exec(store_db(f->s),
                             "INSERT INTO chat_search (chat_search, rank) VALUES "
                             "('integrity-check', 0)",
                             0, NULL, NULL) >= 0,
                     1);
    assert_int_equal(store_session_delete(f->s, a), 0);
    expect_found_now(f->s, me, "wombat", 0, NULL, NONE);
    assert_int_equal(db_exec(store_db(f->s),
                             "INSERT INTO chat_search (chat_search, rank) VALUES "
                             "('integrity-check', 0)",
                             0, NULL, NULL) >= 0,
                     1);
    free(a);
    free(me);
}

/* One number of the database, or fails the test naming the query. */
static int64_t sql_int(store *s, const char *sql, int n, const char *const *p)
{
    db_result *r = NULL;
    if (db_exec(store_db(s), sql, n, p, &r) < 0) fail_msg("%s: %s", sql, store_errmsg(s));
    int64_t v = db_result_int(r, 0, 0, -1);
    db_result_free(r);
    return v;
}

/* Rows of the full-text index that hold a phrase. */
static int64_t fts_rows(store *s, const char *phrase)
{
    const char *p[] = {phrase};
    return sql_int(s, "SELECT COUNT(*) FROM chat_search WHERE chat_search MATCH ?", 1, p);
}

/* Whether the session's title waits for the index. */
static int64_t title_waits(store *s, const char *session_id)
{
    const char *p[] = {session_id};
    return sql_int(s, "SELECT COUNT(*) FROM chat_search_pending WHERE session_id = ?", 1, p);
}

/* How many of the session's old titles wait to leave the index. */
static int64_t titles_to_forget(store *s, const char *session_id)
{
    const char *p[] = {session_id};
    return sql_int(s,
                   "SELECT COUNT(*) FROM chat_search_docs WHERE session_id = ? AND message_id "
                   "IS NULL AND indexed = 2",
                   1, p);
}

/*
 * SQLite indexes a title a moment after it is written, as it does a
 * message (migration 13): the write that sets it (a run's start) leaves
 * the index alone, the title is found meanwhile, and indexing copies it
 * with the messages. A rename leaves the index alone too (migration 14):
 * the old title is no longer found at once, and indexing takes it out in
 * the statement that puts the waiting texts in. A write that leaves the
 * title as it was touches nothing. Small texts share one transaction: one
 * new segment of the index for three of them and the old title.
 */
static void test_sqlite_indexes_titles_later(void **state)
{
    fx *f = *state;
    if (!on_sqlite(f)) skip();
    /* No merging of segments behind the test's back. */
    run_sql(f->s, "INSERT INTO chat_search (chat_search, rank) VALUES ('usermerge', 16)");
    char *me = unique("own");
    char *a = session(f->s, me, "Giraffe notes", 1000);
    assert_int_equal(title_waits(f->s, a), 1);
    assert_int_equal(fts_rows(f->s, "giraffe"), 0);
    expect_found_now(f->s, me, "giraffe", 0, NULL, FOUND(a));
    assert_int_equal(index_pending(f->s), 1);
    assert_int_equal(title_waits(f->s, a), 0);
    assert_int_equal(fts_rows(f->s, "giraffe"), 1);
    expect_found_now(f->s, me, "giraffe", 0, NULL, FOUND(a));

    store_session same = {.id = a, .title = "Giraffe notes", .mode = "quick", .updated_ms = 2000};
    assert_int_equal(store_session_update(f->s, &same), 0);
    assert_int_equal(title_waits(f->s, a), 0);
    assert_int_equal(fts_rows(f->s, "giraffe"), 1);

    store_session renamed = {.id = a, .title = "Okapi notes", .mode = "quick", .updated_ms = 3000};
    assert_int_equal(store_session_update(f->s, &renamed), 0);
    assert_int_equal(title_waits(f->s, a), 1);
    assert_int_equal(titles_to_forget(f->s, a), 1);
    assert_int_equal(fts_rows(f->s, "giraffe"), 1);
    expect_found_now(f->s, me, "giraffe", 0, NULL, NONE);
    expect_found_now(f->s, me, "okapi", 0, NULL, FOUND(a));

    message(f->s, a, "user", "what does an okapi eat", 3001);
    message(f->s, a, "assistant", "leaves, mostly", 3002);
    const char *segs = "SELECT COUNT(DISTINCT segid) FROM chat_search_idx";
    int64_t before = sql_int(f->s, segs, 0, NULL);
    assert_int_equal(index_pending(f->s), 3);
    assert_int_equal(sql_int(f->s, segs, 0, NULL), before + 1);
    assert_int_equal(titles_to_forget(f->s, a), 0);
    assert_int_equal(fts_rows(f->s, "giraffe"), 0);
    assert_int_equal(fts_rows(f->s, "okapi"), 2);
    expect_found_now(f->s, me, "giraffe", 0, NULL, NONE);
    expect_found_now(f->s, me, "okapi", 0, NULL, FOUND(a));
    expect_found_now(f->s, me, "leaves", 0, NULL, FOUND(a));

    /* Renamed to nothing: no text waits, and the old title still leaves,
     * in a transaction of its own. */
    store_session cleared = {.id = a, .title = "", .mode = "quick", .updated_ms = 3500};
    assert_int_equal(store_session_update(f->s, &cleared), 0);
    assert_int_equal(title_waits(f->s, a), 0);
    assert_int_equal(titles_to_forget(f->s, a), 1);
    expect_found_now(f->s, me, "okapi", 0, NULL, FOUND(a)); /* its messages */
    expect_found_now(f->s, me, "notes", 0, NULL, NONE);
    assert_int_equal(index_pending(f->s), 0);
    assert_int_equal(titles_to_forget(f->s, a), 0);
    assert_int_equal(fts_rows(f->s, "okapi notes"), 0);
    assert_int_equal(fts_rows(f->s, "okapi"), 1);

    /* Deleted while its title waits: nothing is left behind. */
    char *b = session(f->s, me, "Tapir notes", 4000);
    assert_int_equal(store_session_delete(f->s, b), 0);
    assert_int_equal(index_pending(f->s), 0);
    expect_found_now(f->s, me, "tapir", 0, NULL, NONE);

    /* Deleted while its old title waits to leave the index: the delete
     * takes it out with the text it was indexed with. */
    char *c = session(f->s, me, "Capybara notes", 5000);
    assert_int_equal(index_pending(f->s), 1);
    store_session moved = {.id = c, .title = "Coati notes", .mode = "quick", .updated_ms = 5001};
    assert_int_equal(store_session_update(f->s, &moved), 0);
    assert_int_equal(fts_rows(f->s, "capybara"), 1);
    assert_int_equal(store_session_delete(f->s, c), 0);
    assert_int_equal(fts_rows(f->s, "capybara"), 0);
    assert_int_equal(titles_to_forget(f->s, c), 0);
    assert_int_equal(index_pending(f->s), 0);
    expect_found_now(f->s, me, "capybara", 0, NULL, NONE);
    expect_found_now(f->s, me, "coati", 0, NULL, NONE);
    run_sql(f->s, "INSERT INTO chat_search (chat_search, rank) VALUES ('integrity-check', 0)");
    free(a);
    free(b);
    free(c);
    free(me);
}

/*
 * A message stored after the newest one was deleted gets its rowid again
 * (SQLite gives a new row one more than the largest). The mark of the
 * messages indexed comes back with the delete (migration 15), so the new
 * message waits, is found meanwhile, and is indexed; the old text is gone
 * from the index.
 */
static void test_sqlite_indexes_a_message_that_reuses_a_rowid(void **state)
{
    fx *f = *state;
    if (!on_sqlite(f)) skip();
    char *me = unique("own");
    char *a = session(f->s, me, "New chat", 1000);
    message(f->s, a, "user", "a lemur", 1001);
    message(f->s, a, "assistant", "a tarsier", 1002);
    assert_int_equal(index_pending(f->s), 3);
    int64_t newest = sql_int(f->s, "SELECT MAX(rowid) FROM chat_messages", 0, NULL);
    run_sql(f->s, "DELETE FROM chat_messages WHERE content = 'a tarsier'");
    message(f->s, a, "assistant", "a slow loris", 1003);
    assert_int_equal(sql_int(f->s, "SELECT MAX(rowid) FROM chat_messages", 0, NULL), newest);
    expect_found_now(f->s, me, "slow loris", 0, NULL, FOUND(a));
    expect_found_now(f->s, me, "tarsier", 0, NULL, NONE);
    assert_int_equal(index_pending(f->s), 1);
    assert_int_equal(index_pending(f->s), 0);
    assert_int_equal(fts_rows(f->s, "slow loris"), 1);
    assert_int_equal(fts_rows(f->s, "tarsier"), 0);
    assert_int_equal(fts_rows(f->s, "lemur"), 1);
    expect_found_now(f->s, me, "slow loris", 0, NULL, FOUND(a));
    /* A delete that is not of the newest leaves the mark where it is:
     * nothing is indexed twice. */
    run_sql(f->s, "DELETE FROM chat_messages WHERE content = 'a lemur'");
    assert_int_equal(index_pending(f->s), 0);
    assert_int_equal(fts_rows(f->s, "slow loris"), 1);
    run_sql(f->s, "INSERT INTO chat_search (chat_search, rank) VALUES ('integrity-check', 0)");
    free(a);
    free(me);
}

/*
 * What waited for the index in a database of version 14 (rows of
 * chat_search_docs with indexed = 0) waits after migration 15 in its new
 * places: found meanwhile, indexed once, and the writes after the
 * migration are indexed too.
 */
static void test_sqlite_migration_15_keeps_what_waits(void **state)
{
    fx *f = *state;
    if (!on_sqlite(f)) skip();
    char *me = unique("own");
    char *done = session(f->s, me, "Indexed before", 1000);
    message(f->s, done, "user", "an aardvark", 1001);
    index_pending(f->s);
    /* Back to version 14's triggers and index. */
    assert_int_equal(
        db_exec_script(
            store_db(f->s),
            "DROP TABLE chat_search_pending; DROP TABLE chat_search_mark; DROP TRIGGER "
            "chat_search_session_insert; DROP TRIGGER chat_search_session_title; DROP TRIGGER "
            "chat_search_mark_delete; CREATE INDEX chat_search_docs_pending ON "
            "chat_search_docs (session_id) WHERE indexed = 0; CREATE TRIGGER "
            "chat_search_session_insert AFTER INSERT ON chat_sessions BEGIN INSERT INTO "
            "chat_search_docs (session_id, message_id, indexed) SELECT new.id, NULL, 0 WHERE "
            "new.title <> ''; END; CREATE TRIGGER chat_search_session_title AFTER UPDATE OF title "
            "ON chat_sessions WHEN old.title IS NOT new.title BEGIN UPDATE chat_search_docs SET "
            "indexed = 2, forget = lower(old.title) WHERE session_id = old.id AND message_id IS "
            "NULL AND indexed = 1; DELETE FROM chat_search_docs WHERE session_id = old.id AND "
            "message_id IS NULL AND indexed = 0; INSERT INTO chat_search_docs (session_id, "
            "message_id, indexed) SELECT old.id, NULL, 0 WHERE new.title <> ''; END; CREATE "
            "TRIGGER chat_search_message_insert AFTER INSERT ON chat_messages BEGIN INSERT INTO "
            "chat_search_docs (session_id, message_id, indexed) VALUES (new.session_id, new.id, "
            "0); END; DELETE FROM schema_migrations WHERE version = 15"),
        0);
    char *waits = session(f->s, me, "Waiting title", 2000);
    message(f->s, waits, "user", "a pangolin waits", 2001);
    message(f->s, done, "assistant", "a numbat waits", 2002);
    assert_int_equal(
        sql_int(f->s, "SELECT COUNT(*) FROM chat_search_docs WHERE indexed = 0", 0, NULL), 3);
    char err[512] = "";
    assert_int_equal(store_migrate(f->s, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(
        sql_int(f->s, "SELECT COUNT(*) FROM chat_search_docs WHERE indexed = 0", 0, NULL), 0);
    expect_found_now(f->s, me, "pangolin", 0, NULL, FOUND(waits));
    expect_found_now(f->s, me, "waiting title", 0, NULL, FOUND(waits));
    expect_found_now(f->s, me, "numbat", 0, NULL, FOUND(done));
    expect_found_now(f->s, me, "aardvark", 0, NULL, FOUND(done));
    assert_int_equal(index_pending(f->s), 3);
    assert_int_equal(index_pending(f->s), 0);
    assert_int_equal(fts_rows(f->s, "aardvark"), 1);
    assert_int_equal(fts_rows(f->s, "pangolin"), 1);
    assert_int_equal(fts_rows(f->s, "waiting title"), 1);
    message(f->s, waits, "assistant", "and a quoll", 2003);
    expect_found(f->s, me, "quoll", 0, NULL, FOUND(waits));
    assert_int_equal(fts_rows(f->s, "quoll"), 1);
    run_sql(f->s, "INSERT INTO chat_search (chat_search, rank) VALUES ('integrity-check', 0)");
    free(done);
    free(waits);
    free(me);
}

/* Sessions and messages stored before migration 11 are found after it:
 * the migration fills the index from them (on PostgreSQL, building an index
 * reads the rows there). On PostgreSQL both trigram indexes exist after it. */
static void test_migration_fills_the_index(void **state)
{
    fx *f = *state;
    db *d = store_db(f->s);
    const char *undo = on_sqlite(f)
                           ? "DROP TRIGGER chat_search_session_insert; DROP TRIGGER "
                             "chat_search_session_title; DROP TRIGGER chat_search_session_delete; "
                             "DROP TRIGGER chat_search_message_content; DROP TRIGGER "
                             "chat_search_message_delete; DROP TABLE chat_search; DROP TABLE "
                             "chat_search_docs; DROP TABLE chat_search_pending; DROP TABLE "
                             "chat_search_mark; DROP TRIGGER chat_search_mark_delete"
                           : "DROP INDEX chat_sessions_title_search; DROP INDEX "
                             "chat_messages_content_search; DROP FUNCTION chatplane_fold(text)";
    assert_int_equal(db_exec_script(d, undo), 0);
    /* The later versions that change SQLite's index go again after it. */
    assert_true(db_exec(d, "DELETE FROM schema_migrations WHERE version IN (11, 13, 14, 15)", 0,
                        NULL, NULL) >= 0);
    char *me = unique("own");
    char *old = session(f->s, me, "Stored before the index", 1000);
    message(f->s, old, "user", "an ocelot", 1001);
    char err[512] = "";
    assert_int_equal(store_migrate(f->s, NULL, NULL, err, sizeof err), 0);
    expect_found(f->s, me, "ocelot", 0, NULL, FOUND(old));
    expect_found(f->s, me, "before THE", 0, NULL, FOUND(old));
    expect_found(f->s, me, "oc", 0, NULL, FOUND(old));
    /* Writes after the migration are indexed as they happen. */
    message(f->s, old, "assistant", "and a margay", 1002);
    expect_found(f->s, me, "margay", 0, NULL, FOUND(old));
    if (!on_sqlite(f)) {
        db_result *r = NULL;
        assert_int_equal(db_exec(d,
                                 "SELECT indexname FROM pg_indexes WHERE indexname IN "
                                 "('chat_sessions_title_search', 'chat_messages_content_search') "
                                 "AND indexdef LIKE '%gin_trgm_ops%' ORDER BY indexname",
                                 0, NULL, &r),
                         0);
        assert_int_equal(db_result_rows(r), 2);
        assert_string_equal(db_result_get(r, 0, 0), "chat_messages_content_search");
        assert_string_equal(db_result_get(r, 1, 0), "chat_sessions_title_search");
        db_result_free(r);
    }
    free(old);
    free(me);
}

/*
 * A PostgreSQL database where pg_trgm may not be installed: migration 11
 * still succeeds, without the two indexes, and search answers the same.
 * The role that migrates may create tables but not extensions (no CREATE
 * on the database), in a database of its own made for the test.
 */
static void test_postgres_without_pg_trgm(void **state)
{
    fx *f = *state;
    if (on_sqlite(f)) {
        print_message("needs PostgreSQL; skipping\n");
        skip();
    }
    /* The test URL is postgres[ql]://USER@HOST:PORT/DB: the same server,
     * another role and database. */
    const char *at = strchr(f->url, '@'), *slash = at ? strchr(at, '/') : NULL;
    assert_non_null(slash);
    char name[64], url[sizeof f->url + 64], sql[512];
    snprintf(name, sizeof name, "chatplane_notrgm_%d", (int)getpid());
    snprintf(url, sizeof url, "postgresql://%s%.*s/%s", name, (int)(slash - at), at, name);
    /* One statement at a time: CREATE DATABASE runs outside a transaction. */
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN", name);
    run_sql(f->s, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    run_sql(f->s, sql);
    snprintf(sql, sizeof sql, "REVOKE CREATE ON DATABASE %s FROM PUBLIC", name);
    run_sql(f->s, sql);
    /* Its schema public is the database owner's; the role may create in it. */
    char admin[sizeof f->url + 64];
    snprintf(admin, sizeof admin, "%.*s/%s", (int)(slash - f->url), f->url, name);
    store *a = fixture_open(admin);
    snprintf(sql, sizeof sql, "GRANT CREATE, USAGE ON SCHEMA public TO %s", name);
    run_sql(a, sql);
    store_close(a);

    store *s = fixture_open(url);
    char err[512] = "";
    assert_int_equal(store_migrate(s, NULL, NULL, err, sizeof err), 0);
    db_result *r = NULL;
    assert_int_equal(db_exec(store_db(s),
                             "SELECT (SELECT COUNT(*) FROM pg_extension WHERE extname = "
                             "'pg_trgm'), (SELECT COUNT(*) FROM pg_indexes WHERE indexname LIKE "
                             "'%_search'), (SELECT MAX(version) FROM schema_migrations)",
                             0, NULL, &r),
                     0);
    assert_int_equal(db_result_int(r, 0, 0, -1), 0);
    assert_int_equal(db_result_int(r, 0, 1, -1), 0);
    assert_true(db_result_int(r, 0, 2, -1) >= 11);
    db_result_free(r);
    char *trip = session(s, "me", "Trip to Lisbon", 1000);
    char *zebra = session(s, "me", "New chat", 2000);
    message(s, zebra, "user", "the ZEBRA crossing, 100% sure", 2001);
    expect_found(s, "me", "lisbon", 0, NULL, FOUND(trip));
    expect_found(s, "me", "zebra CROSS", 0, NULL, FOUND(zebra));
    expect_found(s, "me", "0% s", 0, NULL, FOUND(zebra));
    expect_found(s, "me", "école", 0, NULL, NONE);
    expect_found(s, "me", "t", 1, NULL, FOUND(zebra));
    store_close(s);
    free(trip);
    free(zebra);

    snprintf(sql, sizeof sql, "DROP DATABASE %s", name);
    run_sql(f->s, sql);
    snprintf(sql, sizeof sql, "DROP ROLE %s", name);
    run_sql(f->s, sql);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_finds_title_and_message_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wildcards_are_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pages_like_the_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follows_deletes_and_renames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_indexes_messages_in_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_indexes_titles_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_indexes_a_message_that_reuses_a_rowid, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_migration_15_keeps_what_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_fills_the_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_postgres_without_pg_trgm, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
