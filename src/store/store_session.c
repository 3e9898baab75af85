/*
 * store_session: the chat_sessions table, and the claim that makes a run
 * the one active run of its session.
 */
#include <stdio.h>

#include "store/store.h"
#include "store/store_int.h"

#define STORE_SESSION_PAGE_DEFAULT 50

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
                       "WHERE (CAST(? AS TEXT) IS NULL OR owner = ?) AND (CAST(? AS TEXT) IS NULL "
                       "OR (created_at, id) < (SELECT created_at, id FROM chat_sessions WHERE id "
                       "= ? AND (CAST(? AS TEXT) IS NULL OR owner = ?))) ORDER BY created_at "
                       "DESC, id DESC LIMIT ?",
                       7, p, (void **)out, n);
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
    store_num u;
    const char *p[] = {run_id, store__num_i64(&u, now_ms), session_id, run_id};
    int rc = store__exec(s,
                         "UPDATE chat_sessions SET active_run_id = ?, status = 'running', "
                         "updated_at = chatplane_ts(?) WHERE id = ? AND (active_run_id IS NULL "
                         "OR active_run_id = ?)",
                         4, p);
    if (rc != 0) return rc < 0 ? rc : 0;
    rc = store_session__session_exists(s, session_id);
    if (rc < 0) return rc;
    snprintf(s->err, sizeof s->err, "a run is already active in session %s", session_id);
    return STORE_CONFLICT;
}

int store_session_release_run(store *s, const char *session_id, const char *run_id, int64_t now_ms)
{
    store_num u;
    const char *p[] = {store__num_i64(&u, now_ms), session_id, run_id};
    int rc = store__exec(s,
                         "UPDATE chat_sessions SET active_run_id = NULL, status = 'idle', "
                         "updated_at = chatplane_ts(?) WHERE id = ? AND active_run_id = ?",
                         3, p);
    return rc < 0 ? rc : 0;
}