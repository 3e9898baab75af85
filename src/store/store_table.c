/*
 * store_table: what the store does with a column, written once for every
 * row type and driven by the row lists of store.h: the SELECT and INSERT
 * column lists, a column's parameter text, reading a result into a row,
 * freeing a row, and a row's members in the API object.
 *
 * Times are written as chatplane_ts(?) and read as chatplane_ms(column),
 * functions each dialect defines (see the migration files); booleans are
 * bound as "1"/"0" and JSON as its compact text.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timefmt.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store_int.h"

/* Room for a statement built from a column list: the longest list with
 * every time column wrapped is well under 1 KiB, and the clause a caller
 * adds is a short literal. */
#define STORE_TABLE_SQL_MAX 4096

/* The field of row that col describes. */
static void *store_table__field(const store_col *col, const void *row)
{
    return (char *)row + col->offset;
}

static bool store_table__is_json(store_kind k)
{
    return k == STORE_KIND_JSON || k == STORE_KIND_JSON_OBJECT || k == STORE_KIND_JSON_ARRAY;
}

static bool store_table__is_time(store_kind k)
{
    return k == STORE_KIND_TIME || k == STORE_KIND_TIME_OPT;
}

void store__params_init(store_params *p)
{
    memset(p, 0, sizeof *p);
}

void store__params_cleanup(store_params *p)
{
    for (int i = 0; i < p->n; i++) free(p->owned[i]);
    memset(p, 0, sizeof *p);
}

void store__params_add(store_params *p, const char *text)
{
    if (p->n >= STORE_PARAMS_MAX) {
        LOG(LOG_ERROR, "A statement has more parameters than the store allows.", "max=%d",
            STORE_PARAMS_MAX);
        abort();
    }
    p->v[p->n++] = text;
}

void store__params_col(store_params *p, const store_table *t, size_t i, const void *row)
{
    const store_col *c = &t->cols[i];
    const void *f = store_table__field(c, row);
    store_num *num = &p->num[p->n];
    switch (c->kind) {
    case STORE_KIND_TEXT: {
        const char *v = *(char *const *)f;
        store__params_add(p, v ? v : c->dflt);
        return;
    }
    case STORE_KIND_JSON:
    case STORE_KIND_JSON_OBJECT:
    case STORE_KIND_JSON_ARRAY: {
        const json_t *v = *(json_t *const *)f;
        char *text = v ? store__json_text(v) : c->dflt ? xstrdup(c->dflt) : NULL;
        p->owned[p->n] = text;
        store__params_add(p, text);
        return;
    }
    case STORE_KIND_BOOL:
        store__params_add(p, store__bool_text(*(const bool *)f));
        return;
    case STORE_KIND_INT:
        store__params_add(p, store__num_i64(num, *(const int *)f));
        return;
    case STORE_KIND_I64:
    case STORE_KIND_TIME:
        store__params_add(p, store__num_i64(num, *(const int64_t *)f));
        return;
    case STORE_KIND_TIME_OPT:
        store__params_add(p, store__num_time_opt(num, *(const int64_t *)f));
        return;
    }
}

void store__params_row(store_params *p, const store_table *t, const void *row)
{
    for (size_t i = 0; i < t->ncols; i++) store__params_col(p, t, i, row);
}

void store__row_read(const void *table, const db_result *r, size_t row, void *out)
{
    const store_table *t = table;
    for (size_t i = 0; i < t->ncols; i++) {
        const store_col *c = &t->cols[i];
        void *f = store_table__field(c, out);
        switch (c->kind) {
        case STORE_KIND_TEXT:
            *(char **)f = store__col_str(r, row, i);
            break;
        case STORE_KIND_JSON:
        case STORE_KIND_JSON_OBJECT:
        case STORE_KIND_JSON_ARRAY: {
            const char *v = db_result_get(r, row, i);
            *(json_t **)f = v ? json_loads(v, JSON_DECODE_ANY, NULL) : NULL;
            break;
        }
        case STORE_KIND_BOOL:
            *(bool *)f = db_result_bool(r, row, i);
            break;
        case STORE_KIND_INT:
            *(int *)f = (int)db_result_int(r, row, i, 0);
            break;
        case STORE_KIND_I64:
        case STORE_KIND_TIME:
        case STORE_KIND_TIME_OPT:
            *(int64_t *)f = db_result_int(r, row, i, 0);
            break;
        }
    }
}

void store__row_cleanup(const store_table *t, void *row)
{
    if (!row) return;
    for (size_t i = 0; i < t->ncols; i++) {
        const store_col *c = &t->cols[i];
        if (c->kind == STORE_KIND_TEXT) free(*(char **)store_table__field(c, row));
        if (store_table__is_json(c->kind)) json_decref(*(json_t **)store_table__field(c, row));
    }
    memset(row, 0, t->size);
}

void store__row_copy(const store_table *t, void *dst, const void *src)
{
    memcpy(dst, src, t->size);
    for (size_t i = 0; i < t->ncols; i++) {
        const store_col *c = &t->cols[i];
        void *f = store_table__field(c, dst);
        if (c->kind == STORE_KIND_TEXT && *(char **)f) *(char **)f = xstrdup(*(char **)f);
        if (store_table__is_json(c->kind) && *(json_t **)f)
            *(json_t **)f = json_deep_copy(*(json_t **)f);
    }
}

void store__rows_free(const store_table *t, void *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) store__row_cleanup(t, (char *)rows + i * t->size);
    free(rows);
}

/* The statements are built from the fixed column lists, so one that does
 * not fit STORE_TABLE_SQL_MAX is a mistake in the code: it aborts rather
 * than run a cut statement. */
static void store_table__sql_fits(int rc)
{
    if (rc != 0) abort();
}

/*
 * Appends the strings up to the NULL that ends the list. Statements are
 * put together from names with this rather than buf_printf: they are
 * built for every statement a run makes, and formatting cost more than
 * the rest of the building (docs/benchmarks.md, fix 58).
 */
static int store_table__put(buf *sql, ...)
{
    int rc = 0;
    va_list ap;
    va_start(ap, sql);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;) rc |= buf_append_str(sql, s);
    va_end(ap);
    return rc;
}

/*
 * The statements built from a table's columns, kept per thread: the same
 * table, kind and clauses always give the same text, and building it was
 * tens of appends (and a few allocations) for every insert, update and
 * read a run makes (docs/benchmarks.md, fix 59). A thread keeps the last
 * STORE_TABLE_MEMO texts it built (a server uses about twenty), compared
 * by their clauses' contents, which callers may build; its exit frees
 * them.
 */
#define STORE_TABLE_MEMO 32

typedef struct store_table__text {
    const store_table *t;
    char kind;   /* 'i' insert, 's' select, 'u' update */
    char *a, *b; /* the clauses it was built with, copied; NULL for none */
    char *sql;
} store_table__text;

typedef struct store_table__texts {
    store_table__text e[STORE_TABLE_MEMO];
    size_t n, next;
    bool registered;
} store_table__texts;

static __thread store_table__texts store_table__kept;
static pthread_key_t store_table__key;
static pthread_once_t store_table__once = PTHREAD_ONCE_INIT;

static void store_table__text_free(store_table__text *x)
{
    free(x->a);
    free(x->b);
    free(x->sql);
    memset(x, 0, sizeof *x);
}

static void store_table__texts_free(void *arg)
{
    store_table__texts *k = arg;
    for (size_t i = 0; i < k->n; i++) store_table__text_free(&k->e[i]);
    k->n = k->next = 0;
}

static void store_table__make_key(void)
{
    (void)pthread_key_create(&store_table__key, store_table__texts_free);
}

static bool store_table__same(const char *x, const char *y)
{
    return x == y || (x && y && strcmp(x, y) == 0);
}

/* The kept text of this statement, or NULL. */
static const char *store_table__kept_text(const store_table *t, char kind, const char *a,
                                          const char *b)
{
    store_table__texts *k = &store_table__kept;
    for (size_t i = 0; i < k->n; i++) {
        const store_table__text *x = &k->e[i];
        if (x->t == t && x->kind == kind && store_table__same(x->a, a) &&
            store_table__same(x->b, b))
            return x->sql;
    }
    return NULL;
}

/* Keeps sql (taken) as the text of this statement; returns it. */
static const char *store_table__keep_text(const store_table *t, char kind, const char *a,
                                          const char *b, char *sql)
{
    store_table__texts *k = &store_table__kept;
    if (!k->registered) {
        pthread_once(&store_table__once, store_table__make_key);
        k->registered = pthread_setspecific(store_table__key, k) == 0;
    }
    store_table__text *x;
    if (k->n < STORE_TABLE_MEMO) {
        x = &k->e[k->n++];
    } else {
        x = &k->e[k->next];
        k->next = (k->next + 1) % STORE_TABLE_MEMO;
        store_table__text_free(x);
    }
    x->t = t;
    x->kind = kind;
    x->a = a ? xstrdup(a) : NULL;
    x->b = b ? xstrdup(b) : NULL;
    x->sql = sql;
    return sql;
}

/* "SELECT <columns> FROM <table> <rest>" into sql. */
static void store_table__select_sql(buf *sql, const store_table *t, const char *rest)
{
    int rc = buf_append_str(sql, "SELECT ");
    for (size_t i = 0; i < t->ncols; i++) {
        const store_col *c = &t->cols[i];
        if (i) rc |= buf_append_str(sql, ", ");
        if (store_table__is_time(c->kind))
            rc |= store_table__put(sql, "chatplane_ms(", c->column, ")", NULL);
        else
            rc |= buf_append_str(sql, c->column);
    }
    rc |= store_table__put(sql, " FROM ", t->name, " ", rest, NULL);
    store_table__sql_fits(rc);
}

/* The text of "SELECT <columns> FROM <table> <rest>", kept. */
static const char *store_table__select_text(const store_table *t, const char *rest)
{
    const char *kept = store_table__kept_text(t, 's', rest, NULL);
    if (kept) return kept;
    buf sql;
    buf_init(&sql, STORE_TABLE_SQL_MAX);
    store_table__select_sql(&sql, t, rest);
    return store_table__keep_text(t, 's', rest, NULL, buf_detach(&sql, NULL));
}

int store__rows(store *s, const store_table *t, const char *rest, int np, const char *const *p,
                void **out, size_t *n)
{
    return store__select(s, store_table__select_text(t, rest), np, p, t->size, store__row_read, t,
                         out, n);
}

int store__rows_later(store *s, const store_table *t, const char *rest, int np,
                      const char *const *p, db_result **slot)
{
    int rc = db_exec_later_rows(s->d, store_table__select_text(t, rest), np, p, slot);
    return rc < 0 ? store__fail(s, rc) : 0;
}

int store__rows_take(store *s, const store_table *t, db_result *slot, void **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!slot) {
        snprintf(s->err, sizeof s->err, "the rows of %s read ahead did not come", t->name);
        return DB_ERR;
    }
    store__select_read(slot, t->size, store__row_read, t, out, n);
    return 0;
}

int store__row(store *s, const store_table *t, const char *rest, int np, const char *const *p,
               void *out, const char *what, const char *id)
{
    return store__select_one(s, store_table__select_text(t, rest), np, p, t->size, store__row_read,
                             t, out, what, id);
}

static int store_table__insert(store *s, const store_table *t, const store_params *p,
                               const char *extra_cols, const char *extra_values, bool later)
{
    const char *text = store_table__kept_text(t, 'i', extra_cols, extra_values);
    if (!text) {
        buf sql;
        buf_init(&sql, STORE_TABLE_SQL_MAX);
        int bad = store_table__put(&sql, "INSERT INTO ", t->name, " (", NULL);
        for (size_t i = 0; i < t->ncols; i++) {
            if (i) bad |= buf_append_str(&sql, ", ");
            bad |= buf_append_str(&sql, t->cols[i].column);
        }
        bad |= store_table__put(&sql, extra_cols ? extra_cols : "", ") VALUES (", NULL);
        for (size_t i = 0; i < t->ncols; i++) {
            if (i) bad |= buf_append_str(&sql, ", ");
            bad |= buf_append_str(&sql,
                                  store_table__is_time(t->cols[i].kind) ? "chatplane_ts(?)" : "?");
        }
        bad |= store_table__put(&sql, extra_values ? extra_values : "", ")", NULL);
        store_table__sql_fits(bad);
        text = store_table__keep_text(t, 'i', extra_cols, extra_values, buf_detach(&sql, NULL));
    }
    int rc = later ? store__exec_later(s, text, p->n, p->v) : store__exec(s, text, p->n, p->v);
    return rc < 0 ? rc : 0;
}

int store__insert(store *s, const store_table *t, const store_params *p, const char *extra_cols,
                  const char *extra_values)
{
    return store_table__insert(s, t, p, extra_cols, extra_values, false);
}

int store__insert_later(store *s, const store_table *t, const store_params *p,
                        const char *extra_cols, const char *extra_values)
{
    return store_table__insert(s, t, p, extra_cols, extra_values, true);
}

static int store_table__insert_row(store *s, const store_table *t, const void *row, bool later)
{
    store_params p;
    store__params_init(&p);
    store__params_row(&p, t, row);
    int rc = store_table__insert(s, t, &p, NULL, NULL, later);
    store__params_cleanup(&p);
    return rc;
}

int store__insert_row(store *s, const store_table *t, const void *row)
{
    return store_table__insert_row(s, t, row, false);
}

int store__insert_row_later(store *s, const store_table *t, const void *row)
{
    return store_table__insert_row(s, t, row, true);
}

static int store_table__update(store *s, const store_table *t, const void *row, const int *set,
                               size_t nset, const char *where, int nw, const char *const *wp,
                               const char *check)
{
    store_params p;
    store__params_init(&p);
    /* The columns set, one byte each (a table has far fewer than 255),
     * name the statement with where. */
    char cols[256];
    size_t ncols = 0;
    for (size_t i = 0; i < nset && i < sizeof cols - 1; i++) cols[ncols++] = (char)(set[i] + 1);
    cols[ncols] = '\0';
    char kind = check ? 'c' : 'u';
    const char *text = nset < sizeof cols ? store_table__kept_text(t, kind, where, cols) : NULL;
    buf sql;
    buf_init(&sql, STORE_TABLE_SQL_MAX);
    int bad = text ? 0
                   : store_table__put(&sql, check ? "WITH changed AS (UPDATE " : "UPDATE ", t->name,
                                      " SET ", NULL);
    for (size_t i = 0; i < nset; i++) {
        const store_col *c = &t->cols[set[i]];
        if (!text)
            bad |= store_table__put(&sql, i ? ", " : "", c->column, " = ",
                                    store_table__is_time(c->kind) ? "chatplane_ts(?)" : "?", NULL);
        store__params_col(&p, t, (size_t)set[i], row);
    }
    if (!text) {
        bad |= store_table__put(&sql, " ", where, NULL);
        if (check)
            bad |= store_table__put(&sql, " RETURNING 1) SELECT ", check,
                                    " WHERE NOT EXISTS (SELECT 1 FROM changed)", NULL);
        store_table__sql_fits(bad);
        text = nset < sizeof cols
                   ? store_table__keep_text(t, kind, where, cols, buf_detach(&sql, NULL))
                   : sql.data;
    }
    for (int i = 0; i < nw; i++) store__params_add(&p, wp[i]);
    int rc = check ? store__exec_later(s, text, p.n, p.v) : store__exec(s, text, p.n, p.v);
    buf_cleanup(&sql);
    store__params_cleanup(&p);
    return rc;
}

int store__update(store *s, const store_table *t, const void *row, const int *set, size_t nset,
                  const char *where, int nw, const char *const *wp)
{
    return store_table__update(s, t, row, set, nset, where, nw, wp, NULL);
}

int store__update_checked(store *s, const store_table *t, const void *row, const int *set,
                          size_t nset, const char *where, int nw, const char *const *wp,
                          const char *check)
{
    return store_table__update(s, t, row, set, nset, where, nw, wp, check);
}

/* A time as an RFC 3339 string, or null for 0 (not set). */
static json_t *store_table__json_time(int64_t ms)
{
    if (ms == 0) return json_null();
    char t[TIMEFMT_LEN];
    timefmt_rfc3339(ms, t);
    return json_string(t);
}

/* A JSON field as a new reference, or the kind's value for NULL. */
static json_t *store_table__json_value(store_kind k, json_t *v)
{
    if (v) return json_incref(v);
    if (k == STORE_KIND_JSON_OBJECT) return json_object();
    if (k == STORE_KIND_JSON_ARRAY) return json_array();
    return json_null();
}

void store__row_json(const store_table *t, const void *row, json_t *o)
{
    for (size_t i = 0; i < t->ncols; i++) {
        const store_col *c = &t->cols[i];
        if (!c->json) continue;
        const void *f = store_table__field(c, row);
        json_t *v = NULL;
        switch (c->kind) {
        case STORE_KIND_TEXT: {
            const char *str = *(char *const *)f;
            v = str ? json_string(str) : json_null();
            break;
        }
        case STORE_KIND_JSON:
        case STORE_KIND_JSON_OBJECT:
        case STORE_KIND_JSON_ARRAY:
            v = store_table__json_value(c->kind, *(json_t *const *)f);
            break;
        case STORE_KIND_BOOL:
            v = json_boolean(*(const bool *)f);
            break;
        case STORE_KIND_INT:
            v = json_integer(*(const int *)f);
            break;
        case STORE_KIND_I64:
            v = json_integer(*(const int64_t *)f);
            break;
        case STORE_KIND_TIME:
        case STORE_KIND_TIME_OPT:
            v = store_table__json_time(*(const int64_t *)f);
            break;
        }
        json_object_set_new(o, c->json, v);
    }
}
