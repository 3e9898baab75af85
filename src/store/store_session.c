/*
 * store_session: the chat_sessions table, and the claim that makes a run
 * the one active run of its session.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/search.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store/store_journal.h"

#define STORE_SESSION_PAGE_DEFAULT 50

/* The conditions every page of the list shares: the owner's sessions, older
 * than the cursor (looked up among the owner's sessions only). Six
 * parameters: owner, owner, before_id, before_id, owner, owner. */
#define STORE_SESSION__PAGE_WHERE                                                                  \
    "WHERE (CAST(? AS TEXT) IS NULL OR owner = ?) AND (CAST(? AS TEXT) IS NULL OR (created_at, "   \
    "id) < (SELECT created_at, id FROM chat_sessions WHERE id = ? AND (CAST(? AS TEXT) IS NULL "   \
    "OR owner = ?)))"
#define STORE_SESSION__PAGE_ORDER " ORDER BY created_at DESC, id DESC LIMIT ?"

#define STORE__ROW store_session
STORE__DEFINE_ROW(store_session, session, "chat_sessions", STORE_SESSION_COLUMNS)
enum { STORE_SESSION_COLUMNS(STORE__INDEX) };

int store_session_insert(store *s, const store_session *row)
{
    /* A new session was last updated when it was created. */
    store_session r = *row;
    if (!r.updated_ms) r.updated_ms = r.created_ms;
    return store__insert_row(s, &store__session_table, &r);
}

int store_session_get(store *s, const char *id, const char *owner, store_session *out)
{
    const char *p[] = {id, owner, owner};
    return store__row(s, &store__session_table,
                      "WHERE id = ? AND (CAST(? AS TEXT) IS NULL OR owner = ?)", 3, p, out,
                      "session", id);
}

int store_session_list(store *s, const char *owner, int limit, const char *before_id,
                       store_session **out, size_t *n)
{
    store_num lim;
    /* The cursor is looked up among the owner's sessions only: another
     * owner's id pages like an id that does not exist (an empty page), so
     * the answer never tells that it exists or when it was made. */
    const char *p[] = {owner,
                       owner,
                       before_id,
                       before_id,
                       owner,
                       owner,
                       store__num_i64(&lim, limit > 0 ? limit : STORE_SESSION_PAGE_DEFAULT)};
    return store__rows(s, &store__session_table,
                       STORE_SESSION__PAGE_WHERE STORE_SESSION__PAGE_ORDER, 7, p, (void **)out, n);
}

/*
 * Which sessions match, by dialect and by whether the text is long enough
 * for the index. Each is an SQL condition on a chat_sessions row and the
 * parameters it takes, in order (T: the text as given, P: its LIKE pattern,
 * F: its FTS5 phrase).
 *
 * SQLite folds with lower() (A-Z only, as SQLite is built without ICU),
 * PostgreSQL with chatplane_fold() (migration 11), so both agree whatever
 * the locale. SQLite's index holds every text lowered so and compares
 * case-sensitively, so a match there is a match, with nothing to check
 * again; the titles and messages that wait for it (stored since the last
 * store_session_index_pending, at most about a second's worth: the
 * messages after chat_search_mark, the titles in chat_search_pending,
 * migration 15) are read directly, a title as it is now. PostgreSQL's
 * trigram index finds candidates that LIKE checks. Short text walks the
 * owner's sessions newest first and stops at the page's end, which for
 * short (and so common) text comes early.
 */
static const struct {
    const char *sql, *params;
} STORE_SESSION__MATCH[2][2] = {
    /* [postgres?][indexed?] */
    {{" AND (instr(lower(title), lower(?)) > 0 OR EXISTS (SELECT 1 FROM chat_messages m WHERE "
      "m.session_id = chat_sessions.id AND instr(lower(m.content), lower(?)) > 0))",
      "TT"},
     {" AND (id IN (SELECT d.session_id FROM chat_search f JOIN chat_search_docs d ON d.rowid = "
      "f.rowid WHERE chat_search MATCH ? AND d.indexed = 1) OR id IN (SELECT m.session_id FROM "
      "chat_messages m WHERE m.rowid > (SELECT messages_upto FROM chat_search_mark) AND "
      "instr(lower(m.content), lower(?)) > 0) OR id IN (SELECT t.id FROM chat_search_pending p "
      "JOIN chat_sessions t ON t.id = p.session_id WHERE instr(lower(t.title), lower(?)) > 0))",
      "FTT"}},
    {{" AND (chatplane_fold(title) LIKE ? OR EXISTS (SELECT 1 FROM chat_messages m WHERE "
      "m.session_id = chat_sessions.id AND chatplane_fold(m.content) LIKE ?))",
      "PP"},
     {" AND id IN (SELECT t.id FROM chat_sessions t WHERE chatplane_fold(t.title) LIKE ? UNION "
      "ALL SELECT m.session_id FROM chat_messages m WHERE chatplane_fold(m.content) LIKE ?)",
      "PP"}},
};

/* Pages of the index merged after each batch of messages indexed. The
 * step holds the database's one writer: 64 pages took up to 35 ms at 100
 * runs, and every stream waited; 8 take under a millisecond
 * (docs/benchmarks.md, fix 15). */
#define STORE_SESSION__MERGE_PAGES "8"

static int store_session__search(store *s, const char *owner, const char *text, int limit,
                                 const char *before_id, int indexed, store_session **out, size_t *n)
{
    if (!text || !*text) return store_session_list(s, owner, limit, before_id, out, n);
    int pg = db_get_kind(s->d) != DB_SQLITE;
    const char *match = STORE_SESSION__MATCH[pg][indexed].sql;
    const char *kinds = STORE_SESSION__MATCH[pg][indexed].params;
    char *pattern = search_like_pattern(text), *phrase = search_fts_phrase(text);
    store_num lim;
    const char *p[10] = {owner, owner, before_id, before_id, owner, owner};
    int np = 6;
    for (const char *k = kinds; *k; k++) p[np++] = *k == 'T' ? text : *k == 'P' ? pattern : phrase;
    p[np++] = store__num_i64(&lim, limit > 0 ? limit : STORE_SESSION_PAGE_DEFAULT);
    char sql[2048];
    snprintf(sql, sizeof sql, "%s%s%s", STORE_SESSION__PAGE_WHERE, match,
             STORE_SESSION__PAGE_ORDER);
    int rc = store__rows(s, &store__session_table, sql, np, p, (void **)out, n);
    free(pattern);
    free(phrase);
    return rc;
}

int store_session_search(store *s, const char *owner, const char *text, int limit,
                         const char *before_id, store_session **out, size_t *n)
{
    int indexed = text && search_text_chars(text) >= SEARCH_INDEXED_MIN;
    return store_session__search(s, owner, text, limit, before_id, indexed, out, n);
}

int store_session_search_scan(store *s, const char *owner, const char *text, int limit,
                              const char *before_id, store_session **out, size_t *n)
{
    return store_session__search(s, owner, text, limit, before_id, 0, out, n);
}

/* Characters of text indexed in one transaction at most, unless a single
 * title or message is longer: it then goes alone. A transaction holds the
 * database's one writer while the trigram tokenizer reads its text, so
 * this bounds how long the event log may wait for it; small texts (titles,
 * short answers) share a transaction, and the index gets one segment for
 * them instead of one each (docs/storage.md, Search). */
#define STORE_SESSION__INDEX_CHARS 8192

/* The rows of renamed titles that the index still holds (indexed = 2, the
 * text it holds in forget: migration 14), as rows of the 'delete' command
 * of the full-text table. Named, the index of such rows is used even when
 * the statement orders by rowid (as FTS5 takes rows best): SQLite would
 * otherwise read the whole table in rowid order, holding the database's
 * one writer for it. */
#define STORE_SESSION__FORGET                                                                      \
    "SELECT 'delete', rowid, forget FROM chat_search_docs INDEXED BY chat_search_docs_forget "     \
    "WHERE indexed = 2"

/* The titles waiting in chat_search_pending whose rows are from the first
 * parameter to the second, as rows for chat_search_docs, once each and
 * oldest first: a title waits once for every rename and is indexed as it
 * is now, unless it is empty, its session is gone or it was indexed since
 * the rename. */
#define STORE_SESSION__TAKE_TITLES                                                                 \
    "INSERT INTO chat_search_docs (session_id, message_id, indexed) SELECT p.session_id, NULL, 1 " \
    "FROM chat_search_pending p JOIN chat_sessions t ON t.id = p.session_id WHERE p.rowid "        \
    "BETWEEN ? AND ? AND t.title <> '' AND NOT EXISTS (SELECT 1 FROM chat_search_docs d WHERE "    \
    "d.session_id = p.session_id AND d.message_id IS NULL AND d.indexed = 1) GROUP BY "            \
    "p.session_id ORDER BY min(p.rowid)"

/* The messages whose rowids are from the first parameter to the second,
 * as rows for chat_search_docs, oldest first; those indexed already (after
 * a delete brought the mark back, or after migration 15) are left out. */
#define STORE_SESSION__TAKE_MESSAGES                                                               \
    "INSERT INTO chat_search_docs (session_id, message_id, indexed) SELECT m.session_id, m.id, 1 " \
    "FROM chat_messages m WHERE m.rowid BETWEEN ? AND ? AND NOT EXISTS (SELECT 1 FROM "            \
    "chat_search_docs d WHERE d.message_id = m.id) ORDER BY m.rowid"

/* The rows of chat_search_docs after the first parameter (those the
 * statements above made), as rows for the full-text table. */
#define STORE_SESSION__WAITING                                                                     \
    "SELECT NULL, d.rowid, lower(COALESCE(m.content, t.title)) FROM chat_search_docs d LEFT JOIN " \
    "chat_messages m ON m.id = d.message_id LEFT JOIN chat_sessions t ON d.message_id IS NULL "    \
    "AND t.id = d.session_id WHERE d.rowid > ?"
#define STORE_SESSION__INSERT "INSERT INTO chat_search (chat_search, rowid, body) "

/* What one transaction of the index takes: the rows of chat_search_pending
 * and the rowids of chat_messages from first to last, each NULL for none. */
typedef struct {
    const char *titles[2], *messages[2];
} store_session__take;

/*
 * Copies what take names into the index, in one transaction: each title
 * and message gets its chat_search_docs row, whose rowid is its row in the
 * index, then one statement gives the index all their texts (FTS5 writes
 * what a statement gave it as a segment of its own when the next
 * statement begins), the titles' pending rows go and the mark moves past
 * the messages (never past the newest message, which a delete may have
 * made older meanwhile). With forget, the same statement takes the
 * renamed titles out, and their rows go; with nothing to take it does
 * only that.
 */
static int store_session__index_range(store *s, const store_session__take *take, bool forget)
{
    int rc = store_begin(s);
    if (rc < 0) return rc;
    if (!take->titles[0] && !take->messages[0]) {
        rc = store__exec(s, STORE_SESSION__INSERT STORE_SESSION__FORGET " ORDER BY 2", 0, NULL);
    } else {
        db_result *r = NULL;
        rc = store__query(s, "SELECT COALESCE(MAX(rowid), 0) FROM chat_search_docs", 0, NULL, &r);
        char after[24] = "0";
        if (rc >= 0) snprintf(after, sizeof after, "%lld", (long long)db_result_int(r, 0, 0, 0));
        db_result_free(r);
        const char *made[] = {after};
        if (rc >= 0 && take->titles[0])
            rc = store__exec(s, STORE_SESSION__TAKE_TITLES, 2, take->titles);
        if (rc >= 0 && take->messages[0])
            rc = store__exec(s, STORE_SESSION__TAKE_MESSAGES, 2, take->messages);
        if (rc >= 0)
            rc = store__exec(s,
                             forget ? STORE_SESSION__INSERT STORE_SESSION__FORGET
                                 " UNION ALL " STORE_SESSION__WAITING " ORDER BY 2"
                                    : STORE_SESSION__INSERT STORE_SESSION__WAITING " ORDER BY 2",
                             1, made);
        if (rc >= 0 && take->titles[0])
            rc = store__exec(s, "DELETE FROM chat_search_pending WHERE rowid BETWEEN ? AND ?", 2,
                             take->titles);
        if (rc >= 0 && take->messages[0])
            rc = store__exec(
                s,
                "UPDATE chat_search_mark SET messages_upto = MIN(CAST(? AS INTEGER), (SELECT "
                "COALESCE(MAX(rowid), 0) FROM chat_messages)) WHERE "
                "messages_upto < ?",
                2, (const char *[]){take->messages[1], take->messages[1]});
    }
    if (rc >= 0 && forget)
        rc = store__exec(s, "DELETE FROM chat_search_docs WHERE indexed = 2", 0, NULL);
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    return store_commit(s);
}

int store_session_index_pending(store *s, int max)
{
    if (db_get_kind(s->d) != DB_SQLITE) return 0;
    store_num lim;
    const char *p[] = {store__num_i64(&lim, max)};
    db_result *r = NULL;
    int rc =
        store__query(s, "SELECT 1 FROM chat_search_docs WHERE indexed = 2 LIMIT 1", 0, NULL, &r);
    if (rc < 0) return rc;
    bool forget = db_result_rows(r) > 0, forgot = forget;
    db_result_free(r);
    r = NULL;
    /* What waits, titles first, then messages, oldest first: its kind (0
     * for a title), its row, the length of its text and whether it has
     * text to index (a title not emptied and whose session is there; a
     * message not indexed already). */
    rc = store__query(s,
                      "SELECT * FROM (SELECT 0, p.rowid, length(COALESCE(t.title, '')), "
                      "COALESCE(t.title <> '', 0) FROM chat_search_pending p LEFT JOIN "
                      "chat_sessions t ON t.id = p.session_id ORDER BY p.rowid LIMIT ?1) UNION ALL "
                      "SELECT * FROM (SELECT 1, m.rowid, length(m.content), NOT EXISTS (SELECT 1 "
                      "FROM chat_search_docs d WHERE d.message_id = m.id) FROM chat_messages m "
                      "WHERE m.rowid > (SELECT messages_upto FROM chat_search_mark) ORDER BY "
                      "m.rowid LIMIT ?1) ORDER BY 1, 2 LIMIT ?1",
                      1, p, &r);
    if (rc < 0) return rc;
    /* Up to STORE_SESSION__INDEX_CHARS of text a transaction (at least one
     * title or message); the renamed titles go out in the first, or in one
     * of their own when nothing waits. What has no text to index goes with
     * the rest and is not counted. */
    size_t i = 0, rows = db_result_rows(r);
    int n = 0;
    if (rows == 0 && forget) rc = store_session__index_range(s, &(store_session__take){0}, true);
    while (rc >= 0 && i < rows) {
        store_session__take take = {0};
        int64_t chars = 0;
        do {
            const char **range = db_result_int(r, i, 0, 0) ? take.messages : take.titles;
            if (!range[0]) range[0] = db_result_get(r, i, 1);
            range[1] = db_result_get(r, i, 1);
            n += db_result_int(r, i, 3, 0) != 0;
            chars += db_result_int(r, i++, 2, 0);
        } while (i < rows && chars + db_result_int(r, i, 2, 0) <= STORE_SESSION__INDEX_CHARS);
        rc = store_session__index_range(s, &take, forget);
        forget = false;
    }
    db_result_free(r);
    if (rc < 0) return rc;
    /* A bounded step of merging, in a transaction of its own, so that no
     * write waits for a long merge. */
    if (n > 0 || forgot)
        rc = store__exec(s,
                         "INSERT INTO chat_search (chat_search, rank) VALUES "
                         "('merge', " STORE_SESSION__MERGE_PAGES ")",
                         0, NULL);
    return rc < 0 ? rc : n;
}

int store_session_update(store *s, const store_session *row)
{
    static const int set[] = {COL_title, COL_mode, COL_updated_ms};
    const char *p[] = {row->id};
    int rc = store__update(s, &store__session_table, row, set, sizeof set / sizeof set[0],
                           "WHERE id = ?", 1, p);
    return store__changed_one(s, rc, "session", row->id);
}

int store_session_delete(store *s, const char *id)
{
    store_journal_forget(s, id);
    const char *p[] = {id};
    int rc = store__exec(s, "DELETE FROM chat_sessions WHERE id = ?", 1, p);
    return store__changed_one(s, rc, "session", id);
}

static int store_session__session_exists(store *s, const char *id)
{
    const char *p[] = {id};
    db_result *r = NULL;
    int rc = store__query(s, "SELECT 1 FROM chat_sessions WHERE id = ?", 1, p, &r);
    if (rc == 0 && db_result_rows(r) == 0) rc = store__not_found(s, "session", id);
    db_result_free(r);
    return rc;
}

/*
 * The conditional UPDATE is the whole claim: the database applies it to
 * the row atomically, so of two runs claiming one session at once exactly
 * one changes the row. Claiming the run that is already active succeeds.
 */
int store_session_claim_run(store *s, const char *session_id, const char *run_id, int64_t now_ms)
{
    return store_session_claim_run_as(s, session_id, run_id, now_ms, NULL, NULL);
}

int store_session_claim_run_as(store *s, const char *session_id, const char *run_id, int64_t now_ms,
                               const char *title, const char *new_mode)
{
    store_num u;
    const char *p[] = {run_id, store__num_i64(&u, now_ms), session_id, run_id};
    int rc;
    if (!title && !new_mode) {
        rc = store__exec(s,
                         "UPDATE chat_sessions SET active_run_id = ?, status = 'running', "
                         "updated_at = chatplane_ts(?) WHERE id = ? AND (active_run_id IS NULL "
                         "OR active_run_id = ?)",
                         4, p);
    } else {
        /* One write of the row where a claim and a rename took two. */
        const char *q[] = {run_id, p[1], title, new_mode, session_id, run_id};
        rc = store__exec(s,
                         "UPDATE chat_sessions SET active_run_id = ?, status = 'running', "
                         "updated_at = chatplane_ts(?), title = COALESCE(?, title), mode = "
                         "COALESCE(?, mode) WHERE id = ? AND (active_run_id IS NULL OR "
                         "active_run_id = ?)",
                         6, q);
    }
    if (rc != 0) return rc < 0 ? rc : 0;
    rc = store_session__session_exists(s, session_id);
    if (rc < 0) return rc;
    snprintf(s->err, sizeof s->err, "a run is already active in session %s", session_id);
    return STORE_CONFLICT;
}

/* PostgreSQL's release, which reads the queued run's flag in the same
 * statement. */
#define STORE_SESSION_RELEASE_PG                                                                   \
    "UPDATE chat_sessions SET active_run_id = NULL, status = 'idle', updated_at = "                \
    "chatplane_ts(?) WHERE id = ? AND active_run_id = ? RETURNING CASE WHEN queued_run_id IS "     \
    "NULL THEN 0 ELSE 1 END"

int store_session_release_run(store *s, const char *session_id, const char *run_id, int64_t now_ms,
                              bool *queued)
{
    store_num u;
    const char *p[] = {store__num_i64(&u, now_ms), session_id, run_id};
    db_result *r = NULL;
    if (db_get_kind(s->d) == DB_SQLITE) {
        /* SQLite keeps the rows of a RETURNING clause in a temporary
         * table with a page cache of its own, more work than reading the
         * row again in the same transaction (docs/benchmarks.md, fix 82). */
        int changed = store__exec(s,
                                  "UPDATE chat_sessions SET active_run_id = NULL, status = 'idle', "
                                  "updated_at = chatplane_ts(?) WHERE id = ? AND active_run_id = ?",
                                  3, p);
        if (changed < 0) return changed;
        if (!queued) return 0;
        *queued = true;
        if (changed == 0) return 0;
        const char *id[] = {session_id};
        int rc = store__query(s, "SELECT queued_run_id IS NOT NULL FROM chat_sessions WHERE id = ?",
                              1, id, &r);
        if (rc < 0) return rc;
        *queued = db_result_rows(r) == 0 || db_result_int(r, 0, 0, 1) != 0;
        db_result_free(r);
        return 0;
    }
    int rc = store__query(s, STORE_SESSION_RELEASE_PG, 3, p, &r);
    if (rc < 0) return rc;
    if (queued) *queued = db_result_rows(r) == 0 || db_result_int(r, 0, 0, 1) != 0;
    db_result_free(r);
    return 0;
}

int store_session_release_run_later(store *s, const char *session_id, const char *run_id,
                                    int64_t now_ms, int64_t *queued)
{
    if (db_get_kind(s->d) == DB_SQLITE) {
        bool q = true;
        int rc = store_session_release_run(s, session_id, run_id, now_ms, &q);
        *queued = q;
        return rc;
    }
    /* No row (run_id was not the active run) leaves the 1 that says to
     * look at the queue. */
    *queued = 1;
    store_num u;
    const char *p[] = {store__num_i64(&u, now_ms), session_id, run_id};
    int rc = db_exec_later_int(s->d, STORE_SESSION_RELEASE_PG, 3, p, queued);
    return rc < 0 ? store__fail(s, rc) : 0;
}
