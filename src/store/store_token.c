/*
 * store_token: the api_tokens table. Only a token's SHA-256 is stored, so
 * a token is found by hashing what a client presents.
 */
#include "store/store.h"
#include "store/store_int.h"

#define COL(field, kind, column, json, dflt)                                                       \
    STORE__COL(store_token, field, kind, column, json, dflt)
static const store_col cols[] = {STORE_TOKEN_COLUMNS(COL)};
#undef COL
const store_table store__token_table = STORE__TABLE("api_tokens", store_token, cols);

void store_token_cleanup(store_token *x)
{
    store__row_cleanup(&store__token_table, x);
}

void store_token_list_free(store_token *rows, size_t n)
{
    store__rows_free(&store__token_table, rows, n);
}

int store_token_insert(store *s, const store_token *row)
{
    store_params p;
    store__params_init(&p);
    store__params_row(&p, &store__token_table, row);
    int rc = store__insert(s, &store__token_table, &p, NULL, NULL);
    store__params_cleanup(&p);
    return rc;
}

int store_token_find(store *s, const char *token_sha256, store_token *out)
{
    const char *p[] = {token_sha256};
    return store__row(s, &store__token_table, "WHERE token_sha256 = ? AND revoked_at IS NULL", 1, p,
                      out, "token", "with that hash");
}

int store_token_list(store *s, store_token **out, size_t *n)
{
    return store__rows(s, &store__token_table, "ORDER BY created_at, name", 0, NULL, (void **)out,
                       n);
}

int store_token_revoke(store *s, const char *name, int64_t now_ms)
{
    store_num t;
    const char *p[] = {store__num_i64(&t, now_ms), name};
    int rc = store__exec(s,
                         "UPDATE api_tokens SET revoked_at = chatplane_ts(?) WHERE name = ? AND "
                         "revoked_at IS NULL",
                         2, p);
    return store__changed_one(s, rc, "active token", name);
}

int store_token_count(store *s)
{
    db_result *r = NULL;
    int rc =
        store__query(s, "SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL", 0, NULL, &r);
    if (rc == 0) rc = (int)db_result_int(r, 0, 0, 0);
    db_result_free(r);
    return rc;
}