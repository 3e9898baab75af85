/*
 * store_message: the chat_messages table, the conversation a run reads
 * back as its model context.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "lib/xmalloc.h"
#include "store/store.h"
#include "store/store_int.h"

#define STORE__ROW store_message
STORE__DEFINE_ROW(store_message, message, "chat_messages", STORE_MESSAGE_COLUMNS)

/* position numbers the session's messages in the order they are stored,
 * which is their order whenever created_at ties. As store_run_insert: a
 * new id, sent with the next statement. Called inside a transaction (as
 * every write of a message is, with its event), which on SQLite keeps
 * the position read and the insert together. */
int store_message_insert(store *s, const store_message *row)
{
    store_params p;
    store__params_init(&p);
    store__params_row(&p, &store__message_table, row);
    int rc;
    if (db_get_kind(s->d) == DB_SQLITE) {
        /* SQLite copies a row whose VALUES read the table it goes into
         * to a temporary table first, with a page cache of its own: the
         * insert took three times as long as the run's other inserts
         * (docs/benchmarks.md, fix 82). The position is read first. */
        const char *id[] = {row->session_id};
        db_result *r = NULL;
        rc = store__query(s,
                          "SELECT COALESCE(MAX(position), 0) + 1 FROM chat_messages WHERE "
                          "session_id = ?",
                          1, id, &r);
        store_num next;
        if (rc >= 0) {
            store__params_add(&p, store__num_i64(&next, db_result_int(r, 0, 0, 1)));
            rc = store__insert_later(s, &store__message_table, &p, ", position",
                                     ", CAST(? AS INTEGER)");
        }
        db_result_free(r);
    } else {
        store__params_add(&p, row->session_id);
        rc = store__insert_later(s, &store__message_table, &p, ", position",
                                 ", (SELECT COALESCE(MAX(position), 0) + 1 FROM chat_messages "
                                 "WHERE session_id = ?)");
    }
    store__params_cleanup(&p);
    return rc;
}

int store_message_list(store *s, const char *session_id, store_message **out, size_t *n)
{
    const char *p[] = {session_id};
    return store__rows(s, &store__message_table,
                       "WHERE session_id = ? ORDER BY created_at, position", 1, p, (void **)out, n);
}

int store_message_supersede(store *s, const char *session_id, char **user_id, json_t **ids)
{
    store_message *ms = NULL;
    size_t n = 0;
    int rc = store_message_list(s, session_id, &ms, &n);
    if (rc < 0) return rc;
    size_t last = n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ms[i].role, "user") == 0 && !ms[i].superseded) last = i;
    if (last == n) {
        store_message_list_free(ms, n);
        return store__not_found(s, "user message in session", session_id);
    }
    json_t *marked = json_array();
    for (size_t i = last + 1; rc >= 0 && i < n; i++) {
        if (ms[i].superseded) continue;
        const char *p[] = {ms[i].id};
        rc = store__exec(s, "UPDATE chat_messages SET superseded = TRUE WHERE id = ?", 1, p);
        if (rc >= 0) json_array_append_new(marked, json_string(ms[i].id));
    }
    if (rc >= 0) {
        *user_id = xstrdup(ms[last].id);
        *ids = marked;
    } else {
        json_decref(marked);
    }
    store_message_list_free(ms, n);
    return rc < 0 ? rc : 0;
}

/* The first page of a backward read, and the largest. */
#define STORE_MESSAGE_PAGE_FIRST 32
#define STORE_MESSAGE_PAGE_MAX   1024

/*
 * The size of the next page: the rows that, at the cost per row read so
 * far, cover what is still missing, and a quarter more. Doubling instead
 * read up to twice the rows needed (every row is copied and decoded), and
 * a fixed small page cost a query per few rows.
 */
static int store_message__next_page(int64_t counted, size_t rows, int64_t min)
{
    int64_t per_row = rows && counted > 0 ? counted / (int64_t)rows : 0;
    if (per_row < 1) per_row = 1;
    int64_t want = (min - counted) / per_row;
    want += want / 4 + 8;
    if (want < STORE_MESSAGE_PAGE_FIRST) want = STORE_MESSAGE_PAGE_FIRST;
    return want > STORE_MESSAGE_PAGE_MAX ? STORE_MESSAGE_PAGE_MAX : (int)want;
}

/* The default cost: the bytes of the content, of a tool result what the
 * model sees (context_tool cuts it to CONTEXT_TOOL_RESULT_MAX at a
 * character boundary, up to 3 bytes less). */
static int64_t store_message__bytes(const store_message *m, void *ud)
{
    (void)ud;
    int64_t len = m->content ? (int64_t)strlen(m->content) : 0;
    if (strcmp(m->role, "tool") != 0) return len;
    return len < CONTEXT_TOOL_RESULT_MAX - 3 ? len : CONTEXT_TOOL_RESULT_MAX - 3;
}

/* True when the assistant message m made the call that tool result t
 * answers. */
static bool store_message__answers(const store_message *m, const store_message *t)
{
    size_t i;
    json_t *c;
    json_array_foreach(m->tool_calls, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "id"));
        if (id && t->tool_call_id && strcmp(id, t->tool_call_id) == 0) return true;
    }
    return false;
}

/* One page of the session's messages, newest first, older than the
 * message before_id (NULL: the newest). */
static int store_message__page(store *s, const char *session_id, const char *before_id, int limit,
                               store_message **out, size_t *n)
{
    store_num lim;
    const char *p[] = {session_id, before_id, store__num_i64(&lim, limit)};
    if (!before_id) {
        p[1] = p[2];
        return store__rows(s, &store__message_table,
                           "WHERE session_id = ? AND NOT superseded ORDER BY created_at DESC, "
                           "position DESC LIMIT ?",
                           2, p, (void **)out, n);
    }
    return store__rows(s, &store__message_table,
                       "WHERE session_id = ? AND NOT superseded AND (created_at, position) < "
                       "(SELECT created_at, position FROM chat_messages WHERE id = ?) ORDER BY "
                       "created_at DESC, position DESC LIMIT ?",
                       3, p, (void **)out, n);
}

/*
 * Walks the session's messages newest first, page by page, moving each
 * row into a growing array. Tool results wait (from first_tool on) until
 * the message before them is read: only an assistant message that made
 * their calls lets them count. The walk may stop only after a message that
 * is not a tool result, once the count reaches min.
 */
int store_message_list_recent(store *s, const char *session_id, int64_t min,
                              store_message_cost_fn cost, void *ud, store_message **out, size_t *n)
{
    if (!cost) cost = store_message__bytes;
    store_message *all = NULL;
    size_t nall = 0, cap = 0, first_tool = 0;
    int64_t counted = 0;
    bool done = false;
    int limit = STORE_MESSAGE_PAGE_FIRST, rc = 0;
    while (!done) {
        store_message *page = NULL;
        size_t np = 0;
        rc = store_message__page(s, session_id, nall ? all[nall - 1].id : NULL, limit, &page, &np);
        if (rc < 0) break;
        size_t i = 0;
        for (; i < np && !done; i++) {
            if (nall == cap) {
                cap = cap ? 2 * cap : STORE_MESSAGE_PAGE_FIRST;
                all = xrealloc(all, cap * sizeof *all);
            }
            store_message *m = &all[nall++];
            *m = page[i];
            if (strcmp(m->role, "tool") == 0) continue;
            if (strcmp(m->role, "assistant") == 0) {
                for (size_t k = first_tool; k < nall - 1; k++)
                    if (store_message__answers(m, &all[k])) counted += cost(&all[k], ud);
            }
            first_tool = nall;
            counted += cost(m, ud);
            done = counted >= min;
        }
        /* The rows not moved (the walk stopped inside the page) are freed. */
        for (size_t k = i; k < np; k++) store_message_cleanup(&page[k]);
        free(page);
        if (np < (size_t)limit) break;
        limit = store_message__next_page(counted, nall, min);
    }
    if (rc < 0) {
        store_message_list_free(all, nall);
        return rc;
    }
    for (size_t i = 0; i < nall / 2; i++) {
        store_message t = all[i];
        all[i] = all[nall - 1 - i];
        all[nall - 1 - i] = t;
    }
    *out = all ? all : xcalloc(1, sizeof *all);
    *n = nall;
    return 0;
}
