/*
 * store_int: what the files of the store share and nothing outside the
 * store may use: the store struct, the helpers that run statements and
 * turn their errors into store errors, the text forms of parameters, and
 * the column tables that store.h's row lists expand into (store_table.c).
 */
#ifndef CHATPLANE_STORE_INT_H
#define CHATPLANE_STORE_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "store/store.h"

#define STORE_ERRMSG_MAX 512

typedef struct store_journal store_journal;
typedef struct seqcache seqcache;

struct store {
    db *d;
    char err[STORE_ERRMSG_MAX];
    store_journal *journal; /* the event log's connection on a SQLite file (store_journal.h) */
    /* store_event_seq_memo: the last_seq this transaction gave a session */
    bool seq_memo, seq_known;
    char seq_session[64];
    int64_t seq_last;
    /* PostgreSQL: the last_seq of the sessions this connection appended
     * to (seqcache.h), made at the first append. */
    seqcache *seqs;
};

/* ---- errors and statements (store.c) ---- */

/* Records the db's message for a failed call and maps its code: a unique
 * constraint becomes STORE_CONFLICT; other codes pass through. */
int store__fail(store *s, int rc);
/* Sets the message "<what> <id> not found" and returns STORE_NOT_FOUND. */
int store__not_found(store *s, const char *what, const char *id);
/* Runs a statement; returns the rows changed or a store error. */
int store__exec(store *s, const char *sql, int n, const char *const *p);
/* store__exec through db_exec_later: inside a transaction, for a statement
 * whose failure is the transaction's; returns 0 or a negative code. */
int store__exec_later(store *s, const char *sql, int n, const char *const *p);
/* Runs a statement whose two parameters are a time (chatplane_ts(?)) and
 * an id, in that order: marking one row at a moment. */
int store__exec_at(store *s, const char *sql, int64_t at_ms, const char *id);
/* Runs a query; on success *r is a new result the caller frees. */
int store__query(store *s, const char *sql, int n, const char *const *p, db_result **r);
/* For the rc of a statement that changes one row: 0 when it changed one,
 * STORE_NOT_FOUND (naming what and id) when none, else rc. */
int store__changed_one(store *s, int rc, const char *what, const char *id);

/* Reads row `row` of a result into the struct at out; ctx is what the
 * caller of store__select passed along. */
typedef void (*store_reader)(const void *ctx, const db_result *r, size_t row, void *out);

/* Runs a query and reads every row with read into a new array of elements
 * of size bytes (*out, *n; an empty result gives an allocated empty array). */
int store__select(store *s, const char *sql, int np, const char *const *p, size_t size,
                  store_reader read, const void *ctx, void **out, size_t *n);
/* The reading half of store__select: every row of r into a new array;
 * frees r. */
void store__select_read(db_result *r, size_t size, store_reader read, const void *ctx, void **out,
                        size_t *n);
/* Like store__select for one row: reads it into out (size bytes, zeroed
 * first), or returns STORE_NOT_FOUND naming what and id. */
int store__select_one(store *s, const char *sql, int np, const char *const *p, size_t size,
                      store_reader read, const void *ctx, void *out, const char *what,
                      const char *id);

/* ---- parameters and columns (store.c) ---- */

/* The text form of a number for a parameter: a small buffer on the
 * caller's stack, so no parameter list needs freeing. */
typedef struct store_num {
    char text[32];
} store_num;

const char *store__num_i64(store_num *n, int64_t v);
/* An optional time: 0 is NULL. */
const char *store__num_time_opt(store_num *n, int64_t ms);
const char *store__bool_text(bool b);
/* Returns a new compact JSON text of v (NULL for NULL); caller frees. */
char *store__json_text(const json_t *v);
/* A new copy of a text column, NULL for NULL. */
char *store__col_str(const db_result *r, size_t row, size_t col);

/* ---- column tables (store_table.c) ---- */

typedef enum store_kind {
    STORE_KIND_TEXT,
    STORE_KIND_JSON,
    STORE_KIND_JSON_OBJECT,
    STORE_KIND_JSON_ARRAY,
    STORE_KIND_BOOL,
    STORE_KIND_INT,
    STORE_KIND_I64,
    STORE_KIND_TIME,
    STORE_KIND_TIME_OPT,
} store_kind;

/* One column of a row type, as its list in store.h describes it. */
typedef struct store_col {
    const char *column;
    const char *json; /* NULL: not in the API object */
    store_kind kind;
    size_t offset; /* of the field in the row struct */
    const char *dflt;
} store_col;

typedef struct store_table {
    const char *name; /* the SQL table */
    size_t size;      /* of the row struct */
    const store_col *cols;
    size_t ncols;
} store_table;

/* One entry of a row list as a store_col of the struct STORE__ROW, which
 * the file defining the row type names first (see STORE__DEFINE_ROW). */
#define STORE__COL(field, kind, column, json, dflt)                                                \
    {column, json, STORE_KIND_##kind, offsetof(STORE__ROW, field), dflt},
/* One entry of a row list as COL_<field>, its index in the table. */
#define STORE__INDEX(field, kind, column, json, dflt) COL_##field,

/*
 * Defines a row type's column table store__<name>_table for the SQL table
 * `table` from the row list LIST, and the type's public <type>_cleanup,
 * <type>_list_free and <type>_copy (store.h). Needs #define STORE__ROW <type> before it.
 */
#define STORE__DEFINE_ROW(type, name, table, LIST)                                                 \
    static const store_col name##_cols[] = {LIST(STORE__COL)};                                     \
    const store_table store__##name##_table = {table, sizeof(type), name##_cols,                   \
                                               sizeof name##_cols / sizeof name##_cols[0]};        \
    void type##_cleanup(type *x)                                                                   \
    {                                                                                              \
        store__row_cleanup(&store__##name##_table, x);                                             \
    }                                                                                              \
    void type##_list_free(type *rows, size_t n)                                                    \
    {                                                                                              \
        store__rows_free(&store__##name##_table, rows, n);                                         \
    }                                                                                              \
    void type##_copy(type *dst, const type *src)                                                   \
    {                                                                                              \
        store__row_copy(&store__##name##_table, dst, src);                                         \
    }

extern const store_table store__session_table;
extern const store_table store__run_table;
extern const store_table store__message_table;
extern const store_table store__tool_exec_table;
extern const store_table store__token_table;
extern const store_table store__approval_table;
extern const store_table store__input_table;
extern const store_table store__owner_budget_table;

/* The most columns a row type has, with room for a statement's extra
 * parameters (a WHERE id = ?, a subquery's key). */
#define STORE_PARAMS_MAX 24

/* Parameters of one statement. Numbers live in num, JSON texts the
 * parameters own in owned; store__params_cleanup frees those. */
typedef struct store_params {
    const char *v[STORE_PARAMS_MAX];
    store_num num[STORE_PARAMS_MAX];
    char *owned[STORE_PARAMS_MAX];
    int n;
} store_params;

void store__params_init(store_params *p);
void store__params_cleanup(store_params *p);
/* Appends a parameter; aborts past STORE_PARAMS_MAX, which only a new
 * row list longer than any today can reach. */
void store__params_add(store_params *p, const char *text);
/* Appends column i of row (its text form, or its default for NULL). */
void store__params_col(store_params *p, const store_table *t, size_t i, const void *row);
/* Appends every column of row, in the order of its list. */
void store__params_row(store_params *p, const store_table *t, const void *row);

/* Reads one result row, whose columns are the table's in order. */
void store__row_read(const void *table, const db_result *r, size_t row, void *out);
/* Frees the owned fields of row and zeroes it. NULL is allowed. */
/* Makes dst a deep copy of src (dst's old contents are not freed). */
void store__row_copy(const store_table *t, void *dst, const void *src);
void store__row_cleanup(const store_table *t, void *row);
/* Cleans up rows[0..n) and frees the array. */
void store__rows_free(const store_table *t, void *rows, size_t n);

/* Selects the rows of table t matching `rest` (the SQL after FROM <table>,
 * with its parameters p) into a new array; see store__select. */
int store__rows(store *s, const store_table *t, const char *rest, int np, const char *const *p,
                void **out, size_t *n);
/* store__rows in two steps: the query sent ahead (db_exec_later_rows),
 * *slot holding its rows once they are read; then store__rows_take reads
 * them into a new array and frees them (a NULL slot: a negative code). */
int store__rows_later(store *s, const store_table *t, const char *rest, int np,
                      const char *const *p, db_result **slot);
int store__rows_take(store *s, const store_table *t, db_result *slot, void **out, size_t *n);
/* Selects one row into out, or STORE_NOT_FOUND naming what and id. */
int store__row(store *s, const store_table *t, const char *rest, int np, const char *const *p,
               void *out, const char *what, const char *id);
/* Inserts the row whose parameters p holds (from store__params_row),
 * followed by extra_cols (", col, ...") with extra_values (", ?, ...")
 * whose parameters follow in p; both may be NULL. */
int store__insert(store *s, const store_table *t, const store_params *p, const char *extra_cols,
                  const char *extra_values);
/* store__insert through store__exec_later: for a row with a new id, inside
 * a transaction, whose failure is the transaction's. */
int store__insert_later(store *s, const store_table *t, const store_params *p,
                        const char *extra_cols, const char *extra_values);
/* Inserts row with every column of its list. */
int store__insert_row(store *s, const store_table *t, const void *row);
/* store__insert_row through store__insert_later. */
int store__insert_row_later(store *s, const store_table *t, const void *row);
/* Writes the columns set[0..nset) of row, "UPDATE <table> SET c = ?, ...
 * <where>", with the where clause's parameters wp[0..nw). Returns the rows
 * changed or a store error. */
int store__update(store *s, const store_table *t, const void *row, const int *set, size_t nset,
                  const char *where, int nw, const char *const *wp);
/*
 * store__update sent ahead (store__exec_later) as "WITH changed AS (UPDATE
 * … <where> RETURNING 1) SELECT <check> WHERE NOT EXISTS (SELECT 1 FROM
 * changed)": check is a call of a schema function that fails the
 * transaction when no row changed, with the error the caller would have
 * reported (PostgreSQL only; docs/storage.md, Round trips on PostgreSQL).
 * wp holds the where clause's parameters and then the check's. One check
 * per table and where clause: the text is kept under those two. Returns 0
 * or a store error.
 */
int store__update_checked(store *s, const store_table *t, const void *row, const int *set,
                          size_t nset, const char *where, int nw, const char *const *wp,
                          const char *check);
/* Adds the members of the API object for row to o, in the list's order. */
void store__row_json(const store_table *t, const void *row, json_t *o);

/* ---- shared between the files of the store ---- */

/* Seeds the built-in modes; rows that exist (edited ones) are kept
 * (store_mode.c). */
int store__mode_seed(store *s, int64_t now_ms);

/* A run that never beat counts from its start (store_run.c). INT64_MAX
 * selects every running run without a time comparison, which PostgreSQL
 * could not even convert to a timestamp. */
#define STORE__RUN_STALE_COND "COALESCE(heartbeat_at, started_at) < chatplane_ts(?)"

/* The type of a row of stream_events that holds a run of the token
 * journal's events (store_event.c, docs/storage.md, Token rows). */
#define STORE_TOKEN_ROW "tokens"

/* An event the token journal holds, as it holds it: the event's JSON as
 * streamed (a line of the journal's file, without its newline) and its
 * type. */
typedef struct store_line {
    const char *json;
    uint32_t len;
    evt_type type;
} store_line;

/* Stores n events the token journal held, of one session and one run, the
 * first under first_seq and each next one under the next seq: checks that
 * they follow the session's stored events, raises its last_seq, and
 * inserts them as one token row (a lone event as a row of its own), ts_ms
 * being the last one's time. Only on the journal's connection
 * (store_event.c, docs/storage.md, Token rows). */
int store_event_put_lines(store *s, const char *session_id, const char *run_id, int64_t first_seq,
                          int64_t ts_ms, const store_line *lines, size_t n);

/* A run's assistant text in its log: the token, message and error events
 * that compaction and recovery both read (store_runlog.c). */
typedef struct store_log_item {
    int64_t seq;
    evt_type type;
    char *message_id; /* owned; NULL when the event has none */
    char *text;       /* owned; token text, else NULL */
} store_log_item;

/* Besides the events in seq order, the message_ids that message events
 * store and that error events discard, kept apart because a run has few of
 * them and many tokens to check against them. */
typedef struct store_run_log {
    store_log_item *items;
    size_t n;
    const char **stored, **discarded; /* borrowed from items */
    size_t nstored, ndiscarded;
} store_run_log;

int store__run_log_read(store *s, const char *session_id, const char *run_id, store_run_log *l);
void store__run_log_cleanup(store_run_log *l);
/* A growable list of borrowed names. */
void store__name_add(const char ***names, size_t *n, const char *name);
bool store__name_in(const char *const *names, size_t n, const char *name);
/* True when a and b are the same name, or both NULL (a run id that may be
 * missing). */
bool store__same_name(const char *a, const char *b);

#endif
