/*
 * store_token: the api_tokens table. Only a token's SHA-256 is stored, so
 * a token is found by hashing what a client presents.
 */
#include "store/store.h"
#include "store/store_int.h"

#define STORE__ROW store_token
STORE__DEFINE_ROW(store_token, token, "api_tokens", STORE_TOKEN_COLUMNS)

int store_token_insert(store *s, const store_token *row)
{
    return store__insert_row(s, &store__token_table, row);
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
    int rc = store__exec_at(s,
                            "UPDATE api_tokens SET revoked_at = chatplane_ts(?) WHERE name = ? AND "
                            "revoked_at IS NULL",
                            now_ms, name);
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