/*
 * store_usage: budgets per owner and period (docs/owner-budgets.md). The
 * owner_budgets table holds what each owner may use; owner_usage holds,
 * per owner, dimension, period and period start, what was used and what
 * calls in flight hold. A model call reserves before it starts, in one
 * transaction that locks the rows it reads, and settles when it ends.
 */
#include <string.h>

#include "store/store.h"
#include "store/store_int.h"

#define STORE__ROW store_owner_budget
STORE__DEFINE_ROW(store_owner_budget, owner_budget, "owner_budgets", STORE_OWNER_BUDGET_COLUMNS)

#define STORE_USAGE__KEY                                                                           \
    "owner = ? AND dimension = ? AND period = ? AND period_start = chatplane_ts(?)"

int store_owner_budget_list(store *s, const char *owner, store_owner_budget **out, size_t *n)
{
    const char *p[] = {owner};
    return store__rows(s, &store__owner_budget_table,
                       owner ? "WHERE owner = ? ORDER BY dimension, period"
                             : "ORDER BY owner, dimension, period",
                       owner ? 1 : 0, p, (void **)out, n);
}

int store_owner_budget_set(store *s, const char *owner, const owner_budget_spec *b, size_t n)
{
    int rc = store_begin(s);
    if (rc < 0) return rc;
    const char *p[] = {owner};
    rc = store__exec(s, "DELETE FROM owner_budgets WHERE owner = ?", 1, p);
    for (size_t i = 0; rc >= 0 && i < n; i++) {
        store_owner_budget row = {.owner = (char *)owner,
                                  .dimension = (char *)owner_budget_dim_name(b[i].dim),
                                  .period = (char *)period_name(b[i].period),
                                  .limit_amount = b[i].limit};
        rc = store__insert_row(s, &store__owner_budget_table, &row);
    }
    if (rc >= 0) rc = store_commit(s);
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    return 0;
}

/* Fills a state's spec from a budget row. Returns 0, or -1 for a row the
 * table's checks should have kept out. */
static int store_usage__spec(const store_owner_budget *row, owner_budget_state *st, int64_t now_ms)
{
    memset(st, 0, sizeof *st);
    if (owner_budget_dim_parse(row->dimension, &st->spec.dim) != 0 ||
        period_parse(row->period, &st->spec.period) != 0)
        return -1;
    st->spec.limit = row->limit_amount;
    st->period_start_ms = period_start_ms(st->spec.period, now_ms);
    return 0;
}

/* The key of a state's usage row as parameters p[0..4). */
static void store_usage__key(const char *owner, const owner_budget_state *st, store_num *n,
                             const char **p)
{
    p[0] = owner;
    p[1] = owner_budget_dim_name(st->spec.dim);
    p[2] = period_name(st->spec.period);
    p[3] = store__num_i64(n, st->period_start_ms);
}

/* Reads the budgets of owner into states for now_ms; *n of them. */
static int store_usage__budgets(store *s, const char *owner, int64_t now_ms,
                                owner_budget_state *out, size_t max, size_t *n)
{
    store_owner_budget *rows = NULL;
    size_t nrows = 0;
    *n = 0;
    int rc = store_owner_budget_list(s, owner, &rows, &nrows);
    for (size_t i = 0; rc == 0 && i < nrows && *n < max; i++)
        if (store_usage__spec(&rows[i], &out[*n], now_ms) == 0) (*n)++;
    store_owner_budget_list_free(rows, nrows);
    return rc;
}

/* Makes sure the usage row of st exists, then reads its used and reserved
 * with an UPDATE that changes nothing: on PostgreSQL it takes the row's
 * lock, so a second transaction for the same owner waits here until this
 * one ends and then reads what it wrote. */
static int store_usage__lock(store *s, const char *owner, owner_budget_state *st)
{
    store_num n;
    const char *p[4];
    store_usage__key(owner, st, &n, p);
    int rc = store__exec(s,
                         "INSERT INTO owner_usage (owner, dimension, period, period_start, used, "
                         "reserved) VALUES (?, ?, ?, chatplane_ts(?), 0, 0) ON CONFLICT DO NOTHING",
                         4, p);
    if (rc < 0) return rc;
    db_result *r = NULL;
    rc = store__query(s,
                      "UPDATE owner_usage SET reserved = reserved WHERE " STORE_USAGE__KEY
                      " RETURNING used, reserved",
                      4, p, &r);
    if (rc == 0 && db_result_rows(r) != 1) rc = store__not_found(s, "owner usage of", owner);
    if (rc == 0) {
        st->used = db_result_int(r, 0, 0, 0);
        st->reserved = db_result_int(r, 0, 1, 0);
    }
    db_result_free(r);
    return rc;
}

/* Adds used to the row of st and takes held off its reservation (never
 * below zero), then reads the row back into st. */
static int store_usage__move(store *s, const char *owner, owner_budget_state *st, int64_t used,
                             int64_t held)
{
    store_num n, u, h1, h2;
    const char *p[7];
    p[0] = store__num_i64(&u, used);
    p[1] = store__num_i64(&h1, held);
    p[2] = store__num_i64(&h2, held);
    store_usage__key(owner, st, &n, p + 3);
    db_result *r = NULL;
    int rc = store__query(s,
                          "UPDATE owner_usage SET used = used + ?, reserved = CASE WHEN reserved "
                          "> ? THEN reserved - ? ELSE 0 END WHERE " STORE_USAGE__KEY
                          " RETURNING used, reserved",
                          7, p, &r);
    if (rc == 0 && db_result_rows(r) == 1) {
        st->used = db_result_int(r, 0, 0, 0);
        st->reserved = db_result_int(r, 0, 1, 0);
    }
    db_result_free(r);
    return rc;
}

int store_usage_reserve(store *s, const char *owner, const char *run_id, int64_t now_ms,
                        int64_t est_prompt, int64_t max_completion, const budget_price *price,
                        owner_budget_plan *plan, store_usage_hold *hold)
{
    memset(hold, 0, sizeof *hold);
    *plan = (owner_budget_plan){.max_completion_tokens = max_completion};
    /* Most owners have no budgets: one read outside a transaction says so
     * without taking SQLite's write lock. A budget set just after it
     * counts from the next call. */
    int rc = store_usage__budgets(s, owner, now_ms, hold->st, OWNER_BUDGET_MAX, &hold->n);
    if (rc < 0 || hold->n == 0) {
        hold->n = 0;
        return rc < 0 ? rc : 0;
    }
    rc = store_begin(s);
    if (rc < 0) return rc;
    rc = store_usage__budgets(s, owner, now_ms, hold->st, OWNER_BUDGET_MAX, &hold->n);
    /* The rows are locked in the order of the list, by every caller, so
     * two transactions of one owner never wait for each other in a
     * circle. */
    for (size_t i = 0; rc == 0 && i < hold->n; i++) rc = store_usage__lock(s, owner, &hold->st[i]);
    if (rc < 0) goto fail;
    if (hold->n == 0) return store_rollback(s) < 0 ? DB_ERR : 0;
    *plan = owner_budget_decide(hold->st, hold->n, est_prompt, max_completion, price);
    if (plan->stop) {
        /* Nothing is held; the rows made for a new period may go too. */
        store_rollback(s);
        return 0;
    }
    id_new(hold->id, "hold", now_ms);
    for (size_t i = 0; i < hold->n; i++) {
        hold->amount[i] = plan->reserve[i];
        store_num n, a;
        const char *p[7];
        p[0] = store__num_i64(&a, hold->amount[i]);
        store_usage__key(owner, &hold->st[i], &n, p + 1);
        rc = store__exec(
            s, "UPDATE owner_usage SET reserved = reserved + ? WHERE " STORE_USAGE__KEY, 5, p);
        if (rc < 0) goto fail;
        const char *h[] = {hold->id, p[2], p[3], run_id, owner, p[4], p[0]};
        rc = store__exec(s,
                         "INSERT INTO owner_holds (id, dimension, period, run_id, owner, "
                         "period_start, amount) VALUES (?, ?, ?, ?, ?, chatplane_ts(?), ?)",
                         7, h);
        if (rc < 0) goto fail;
    }
    rc = store_commit(s);
    if (rc < 0) goto fail;
    return 0;
fail:
    store_rollback(s);
    hold->n = 0;
    return rc;
}

/* Deletes the owner_holds row of one budget of hold id; *held is its
 * amount, or 0 when it was given back already (the DELETE of whoever came
 * second finds nothing). */
static int store_usage__unhold(store *s, const char *id, const owner_budget_state *st,
                               int64_t *held)
{
    const char *p[] = {id, owner_budget_dim_name(st->spec.dim), period_name(st->spec.period)};
    db_result *r = NULL;
    int rc = store__query(s,
                          "DELETE FROM owner_holds WHERE id = ? AND dimension = ? AND period = ? "
                          "RETURNING amount",
                          3, p, &r);
    *held = rc == 0 && db_result_rows(r) == 1 ? db_result_int(r, 0, 0, 0) : 0;
    db_result_free(r);
    return rc;
}

int store_usage_release_stale(store *s)
{
    db_result *r = NULL;
    int rc = store__query(s,
                          "SELECT id, owner, dimension, period, chatplane_ms(period_start) FROM "
                          "owner_holds WHERE run_id NOT IN (SELECT id FROM runs WHERE status = "
                          "'running') ORDER BY owner, dimension, period",
                          0, NULL, &r);
    if (rc < 0 || db_result_rows(r) == 0) {
        db_result_free(r);
        return rc;
    }
    rc = store_begin(s);
    int released = 0;
    for (size_t i = 0; rc >= 0 && i < db_result_rows(r); i++) {
        owner_budget_state st = {0};
        if (owner_budget_dim_parse(db_result_get(r, i, 2), &st.spec.dim) != 0 ||
            period_parse(db_result_get(r, i, 3), &st.spec.period) != 0)
            continue;
        st.period_start_ms = db_result_int(r, i, 4, 0);
        int64_t held = 0;
        rc = store_usage__unhold(s, db_result_get(r, i, 0), &st, &held);
        if (rc >= 0 && held > 0) {
            rc = store_usage__move(s, db_result_get(r, i, 1), &st, 0, held);
            released++;
        }
    }
    db_result_free(r);
    if (rc >= 0) rc = store_commit(s);
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    return released;
}

/* Settles or releases a hold in one transaction. */
static int store_usage__end(store *s, const char *owner, store_usage_hold *hold, bool settle,
                            int64_t prompt, int64_t completion, const budget_price *price)
{
    if (hold->n == 0) return 0;
    int rc = store_begin(s);
    if (rc < 0) return rc;
    for (size_t i = 0; rc >= 0 && i < hold->n; i++) {
        int64_t used =
            settle ? owner_budget_amount(hold->st[i].spec.dim, prompt, completion, price) : 0;
        int64_t held = 0;
        rc = store_usage__unhold(s, hold->id, &hold->st[i], &held);
        if (rc >= 0) rc = store_usage__move(s, owner, &hold->st[i], used, held);
    }
    if (rc >= 0) rc = store_commit(s);
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    return 0;
}

int store_usage_settle(store *s, const char *owner, store_usage_hold *hold, int64_t prompt,
                       int64_t completion, const budget_price *price)
{
    return store_usage__end(s, owner, hold, true, prompt, completion, price);
}

int store_usage_release(store *s, const char *owner, store_usage_hold *hold)
{
    return store_usage__end(s, owner, hold, false, 0, 0, NULL);
}

int store_usage_read(store *s, const char *owner, int64_t now_ms, owner_budget_state *out,
                     size_t max, size_t *n)
{
    int rc = store_usage__budgets(s, owner, now_ms, out, max, n);
    for (size_t i = 0; rc == 0 && i < *n; i++) {
        store_num num;
        const char *p[4];
        store_usage__key(owner, &out[i], &num, p);
        db_result *r = NULL;
        rc = store__query(s, "SELECT used, reserved FROM owner_usage WHERE " STORE_USAGE__KEY, 4, p,
                          &r);
        if (rc == 0 && db_result_rows(r) == 1) {
            out[i].used = db_result_int(r, 0, 0, 0);
            out[i].reserved = db_result_int(r, 0, 1, 0);
        }
        db_result_free(r);
    }
    return rc;
}
