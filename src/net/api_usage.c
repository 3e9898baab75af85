/* GET /api/usage: the budgets of an owner with their use in the current
 * period (docs/owner-budgets.md). */
#include <stdio.h>
#include <string.h>

#include "core/owner_budget.h"
#include "lib/clock.h"
#include "lib/xmalloc.h"
#include "net/api_int.h"
#include "net/auth.h"

/* {"owner", "budgets": [...]} of owner at now_ms, or NULL with the job
 * filled with the store's error. */
static json_t *api_usage__owner(store *st, api__job *j, const char *owner)
{
    owner_budget_state states[OWNER_BUDGET_MAX];
    size_t n = 0;
    int rc = store_usage_read(st, owner, j->num, states, OWNER_BUDGET_MAX, &n);
    if (rc < 0) {
        api__job_store_error(j, st, rc, "usage");
        return NULL;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(list, owner_budget_to_json(&states[i]));
    return json_pack("{s:s, s:o}", "owner", owner, "budgets", list);
}

static void api_usage__one(store *st, api__job *j)
{
    j->body = api_usage__owner(st, j, j->arg);
}

/* Every owner with budgets, by name. */
static void api_usage__all(store *st, api__job *j)
{
    store_owner_budget *rows = NULL;
    size_t n = 0;
    int rc = store_owner_budget_list(st, NULL, &rows, &n);
    if (rc < 0) {
        api__job_store_error(j, st, rc, "budgets");
        return;
    }
    json_t *owners = json_array();
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(rows[i].owner, rows[i - 1].owner) == 0) continue;
        json_t *o = api_usage__owner(st, j, rows[i].owner);
        if (!o) {
            json_decref(owners);
            store_owner_budget_list_free(rows, n);
            return;
        }
        json_array_append_new(owners, o);
    }
    store_owner_budget_list_free(rows, n);
    j->body = json_pack("{s:o}", "owners", owners);
}

static void api_usage__get(http_req *r, void *ud)
{
    api *a = ud;
    const char *me = http_req_owner(r), *asked = http_req_query(r, "owner");
    /* Without authentication there is no owner and no owner budget; the
     * one at the console may still look at any owner's, as it may edit
     * modes. */
    bool admin = !http_req_auth_on(r) || http_req_admin(r);
    if (asked && strcmp(asked, "*") != 0 && !auth_name_valid(asked)) {
        http_reply_error(r, 400, "bad_request",
                         "owner must be a token name (letters, digits and . _ @ -) or *");
        return;
    }
    if (asked && !admin && !(me && strcmp(asked, me) == 0)) {
        http_reply_error(r, 403, "forbidden", "only an admin token may read another owner's usage");
        return;
    }
    const char *owner = asked ? asked : me;
    if (!owner) {
        http_reply_json(r, 200, json_pack("{s:n, s:[]}", "owner", "budgets"));
        return;
    }
    bool all = strcmp(owner, "*") == 0;
    api__job *j = api__job_new(a, r, NULL, all ? api_usage__all : api_usage__one);
    j->arg = xstrdup(owner);
    j->num = clock_wall_ms();
    api__job_submit(j);
}

void api__register_usage(http_server *s, api *a)
{
    http_route(s, "GET", "/api/usage", api_usage__get, a);
}
