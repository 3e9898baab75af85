/*
 * store_mode: the chat_budgets table, where each mode's limits and guard
 * thresholds live, seeded with the built-in modes by the first migration.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mode.h"
#include "store/store.h"
#include "store/store_int.h"

/* A limit: a negative value (unlimited) is NULL. */
static const char *store_mode__limit_text(store_num *n, int64_t v)
{
    return v < 0 ? NULL : store__num_i64(n, v);
}

static const char *store_mode__cost_text(store_num *n, double v)
{
    if (v < 0) return NULL;
    snprintf(n->text, sizeof n->text, "%.17g", v);
    return n->text;
}

#define MODE_INSERT_COLS                                                                           \
    "INSERT INTO chat_budgets (mode, description, steps, seconds, tokens, tool_calls, retries, "   \
    "cost_usd, loop_warn, loop_stop, fail_warn, fail_stop, stale_steps, updated_at"
#define MODE_INSERT_SQL                                                                            \
    MODE_INSERT_COLS                                                                               \
    ", approval) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, chatplane_ts(?), "                 \
    "?) ON CONFLICT (mode) "
/* The seed runs right after the first migration, before the approval
 * column exists; the presets take its default (risky). */
#define MODE_SEED_SQL                                                                              \
    MODE_INSERT_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, chatplane_ts(?)) ON "       \
                     "CONFLICT (mode) DO NOTHING"

/* Writes mode m with sql (MODE_INSERT_SQL and its conflict action, or
 * MODE_SEED_SQL without the approval). */
static int store_mode__mode_write(store *s, const char *sql, bool with_approval, const mode *m,
                                  int64_t now_ms)
{
    store_num n[12];
    const char *p[] = {m->name,
                       m->description,
                       store_mode__limit_text(&n[0], m->limits.steps),
                       store_mode__limit_text(&n[1], m->limits.seconds),
                       store_mode__limit_text(&n[2], m->limits.tokens),
                       store_mode__limit_text(&n[3], m->limits.tool_calls),
                       store_mode__limit_text(&n[4], m->limits.retries),
                       store_mode__cost_text(&n[5], m->limits.cost_usd),
                       store__num_i64(&n[6], m->guard.loop_warn),
                       store__num_i64(&n[7], m->guard.loop_stop),
                       store__num_i64(&n[8], m->guard.fail_warn),
                       store__num_i64(&n[9], m->guard.fail_stop),
                       store__num_i64(&n[10], m->guard.stale_steps),
                       store__num_i64(&n[11], now_ms),
                       approval_policy_name(m->approval)};
    int rc = store__exec(s, sql, with_approval ? 15 : 14, p);
    return rc < 0 ? rc : 0;
}

int store__mode_seed(store *s, int64_t now_ms)
{
    const mode *presets = mode_presets();
    for (size_t i = 0; i < MODE_PRESET_COUNT; i++) {
        int rc = store_mode__mode_write(s, MODE_SEED_SQL, false, &presets[i], now_ms);
        if (rc < 0) return rc;
    }
    return 0;
}

#define MODE_COLS                                                                                  \
    "mode, description, steps, seconds, tokens, tool_calls, retries, cost_usd, loop_warn, "        \
    "loop_stop, fail_warn, fail_stop, stale_steps, approval"

static void store_mode__mode_read(const void *ctx, const db_result *r, size_t i, void *out)
{
    (void)ctx;
    mode *m = out;
    const char *name = db_result_get(r, i, 0);
    const char *desc = db_result_get(r, i, 1);
    const char *cost = db_result_get(r, i, 7);
    snprintf(m->name, sizeof m->name, "%s", name ? name : "");
    snprintf(m->description, sizeof m->description, "%s", desc ? desc : "");
    m->limits.steps = db_result_int(r, i, 2, MODE_UNLIMITED);
    m->limits.seconds = db_result_int(r, i, 3, MODE_UNLIMITED);
    m->limits.tokens = db_result_int(r, i, 4, MODE_UNLIMITED);
    m->limits.tool_calls = db_result_int(r, i, 5, MODE_UNLIMITED);
    m->limits.retries = db_result_int(r, i, 6, MODE_UNLIMITED);
    m->limits.cost_usd = cost ? strtod(cost, NULL) : MODE_UNLIMITED;
    m->guard.loop_warn = (int)db_result_int(r, i, 8, 0);
    m->guard.loop_stop = (int)db_result_int(r, i, 9, 0);
    m->guard.fail_warn = (int)db_result_int(r, i, 10, 0);
    m->guard.fail_stop = (int)db_result_int(r, i, 11, 0);
    m->guard.stale_steps = (int)db_result_int(r, i, 12, 0);
    /* The column's check keeps other values out; the default is the
     * fallback for a row read without it. */
    if (approval_policy_parse(db_result_get(r, i, 13), &m->approval) != 0)
        m->approval = APPROVAL_RISKY;
}

/* Built-in modes first, smallest first, as mode_presets orders them; then
 * the others by name. */
static size_t store_mode__mode_rank(const mode *m)
{
    const mode *p = mode_preset(m->name);
    return p ? (size_t)(p - mode_presets()) : MODE_PRESET_COUNT;
}

static int store_mode__mode_cmp(const void *a, const void *b)
{
    const mode *x = a, *y = b;
    size_t rx = store_mode__mode_rank(x), ry = store_mode__mode_rank(y);
    if (rx != ry) return rx < ry ? -1 : 1;
    return strcmp(x->name, y->name);
}

int store_mode_list(store *s, mode **out, size_t *n)
{
    int rc = store__select(s, "SELECT " MODE_COLS " FROM chat_budgets ORDER BY mode", 0, NULL,
                           sizeof **out, store_mode__mode_read, NULL, (void **)out, n);
    if (rc == 0) qsort(*out, *n, sizeof **out, store_mode__mode_cmp);
    return rc;
}

int store_mode_get(store *s, const char *name, mode *out)
{
    const char *p[] = {name};
    return store__select_one(s, "SELECT " MODE_COLS " FROM chat_budgets WHERE mode = ?", 1, p,
                             sizeof *out, store_mode__mode_read, NULL, out, "mode", name);
}

int store_mode_put(store *s, const mode *m, int64_t now_ms)
{
    return store_mode__mode_write(
        s,
        MODE_INSERT_SQL "DO UPDATE SET description = excluded.description, steps = "
                        "excluded.steps, seconds = excluded.seconds, tokens = "
                        "excluded.tokens, tool_calls = excluded.tool_calls, retries = "
                        "excluded.retries, cost_usd = excluded.cost_usd, loop_warn = "
                        "excluded.loop_warn, loop_stop = excluded.loop_stop, fail_warn = "
                        "excluded.fail_warn, fail_stop = excluded.fail_stop, stale_steps = "
                        "excluded.stale_steps, approval = excluded.approval, updated_at = "
                        "excluded.updated_at",
        true, m, now_ms);
}