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
#include <stdarg.h>
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

int store__rows(store *s, const store_table *t, const char *rest, int np, const char *const *p,
                void **out, size_t *n)
{
    buf sql;
    buf_init(&sql, STORE_TABLE_SQL_MAX);
    store_table__select_sql(&sql, t, rest);
    int rc = store__select(s, sql.data, np, p, t->size, store__row_read, t, out, n);
    buf_cleanup(&sql);
    return rc;
}

int store__row(store *s, const store_table *t, const char *rest, int np, const char *const *p,
               void *out, const char *what, const char *id)
{
    buf sql;
    buf_init(&sql, STORE_TABLE_SQL_MAX);
    store_table__select_sql(&sql, t, rest);
    int rc = store__select_one(s, sql.data, np, p, t->size, store__row_read, t, out, what, id);
    buf_cleanup(&sql);
    return rc;
}

int store__insert(store *s, const store_table *t, const store_params *p, const char *extra_cols,
                  const char *extra_values)
{
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
        bad |=
            buf_append_str(&sql, store_table__is_time(t->cols[i].kind) ? "chatplane_ts(?)" : "?");
    }
    bad |= store_table__put(&sql, extra_values ? extra_values : "", ")", NULL);
    store_table__sql_fits(bad);
    int rc = store__exec(s, sql.data, p->n, p->v);
    buf_cleanup(&sql);
    return rc < 0 ? rc : 0;
}

int store__insert_row(store *s, const store_table *t, const void *row)
{
    store_params p;
    store__params_init(&p);
    store__params_row(&p, t, row);
    int rc = store__insert(s, t, &p, NULL, NULL);
    store__params_cleanup(&p);
    return rc;
}

int store__update(store *s, const store_table *t, const void *row, const int *set, size_t nset,
                  const char *where, int nw, const char *const *wp)
{
    store_params p;
    store__params_init(&p);
    buf sql;
    buf_init(&sql, STORE_TABLE_SQL_MAX);
    int bad = store_table__put(&sql, "UPDATE ", t->name, " SET ", NULL);
    for (size_t i = 0; i < nset; i++) {
        const store_col *c = &t->cols[set[i]];
        bad |= store_table__put(&sql, i ? ", " : "", c->column, " = ",
                                store_table__is_time(c->kind) ? "chatplane_ts(?)" : "?", NULL);
        store__params_col(&p, t, (size_t)set[i], row);
    }
    bad |= store_table__put(&sql, " ", where, NULL);
    store_table__sql_fits(bad);
    for (int i = 0; i < nw; i++) store__params_add(&p, wp[i]);
    int rc = store__exec(s, sql.data, p.n, p.v);
    buf_cleanup(&sql);
    store__params_cleanup(&p);
    return rc;
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
