/*
 * run_owner_budget: a run's model calls against the budgets of the
 * session's owner (docs/owner-budgets.md). Before each call a job on the
 * read pool reserves what the call may use, in the transaction that reads
 * the owner's usage (store_usage_reserve); the call then goes with its
 * completion capped by what the owner has left, or the run stops with
 * owner_budget. When the call ends its real use is settled; when it fails
 * or the run stops, what it held is released. Settling and releasing run
 * on the pool without the run waiting for them.
 */
#include "engine/run_int.h"

#include "store/store.h"

/* The owner's use of each budget on /metrics, as this instance last saw
 * it; NULL until run__owner_metrics_register. */
static metrics_family *run_owner__used;

void run__owner_metrics_register(void)
{
    run_owner__used = metrics_gauge_labelled_new(
        "chatplane_owner_budget_used",
        "What each owner used of a budget in its current period (tokens or US dollars), as "
        "this instance last saw it.",
        "owner,dimension,period");
}

/* A reservation being made. r is NULL once the run is freed. */
typedef struct run_owner_job {
    run *r;
    dbpool *pool;
    char *owner;
    char run_id[ID_MAX];
    int64_t now_ms, est_prompt, max_completion;
    budget_price price;
    json_t *messages;
    run_owner_go go;
    /* out */
    int rc;
    char err[160];
    owner_budget_plan plan;
    store_usage_hold hold;
} run_owner_job;

/* Settling or releasing a hold. */
typedef struct run_owner_end {
    char *owner;
    bool settle;
    int64_t prompt, completion;
    budget_price price;
    store_usage_hold hold;
    int rc;
} run_owner_end;

static void run_owner__show(const char *owner, const store_usage_hold *hold)
{
    for (size_t i = 0; i < hold->n; i++) {
        const owner_budget_state *st = &hold->st[i];
        char labels[160];
        snprintf(labels, sizeof labels, "%s,%s,%s", owner, owner_budget_dim_name(st->spec.dim),
                 period_name(st->spec.period));
        metrics_set(run_owner__used, labels, owner_budget_api_amount(st->spec.dim, st->used));
    }
}

static void run_owner__end_work(store *s, void *arg)
{
    run_owner_end *e = arg;
    e->rc = e->settle
                ? store_usage_settle(s, e->owner, &e->hold, e->prompt, e->completion, &e->price)
                : store_usage_release(s, e->owner, &e->hold);
    if (e->rc < 0)
        LOG(LOG_ERROR, "an owner's budget could not be settled; its hold stays counted",
            "owner=%s error=\"%s\"", e->owner, store_errmsg(s));
}

static void run_owner__end_done(void *arg)
{
    run_owner_end *e = arg;
    if (e->rc == 0) run_owner__show(e->owner, &e->hold);
    free(e->owner);
    free(e);
}

/* Hands a hold to the pool to be settled (settle) or released; takes it. */
static void run_owner__end(dbpool *pool, const char *owner, store_usage_hold *hold, bool settle,
                           int64_t prompt, int64_t completion, const budget_price *price)
{
    run_owner_end *e = xcalloc(1, sizeof *e);
    e->owner = xstrdup(owner);
    e->settle = settle;
    e->prompt = prompt;
    e->completion = completion;
    if (price) e->price = *price;
    e->hold = *hold;
    free(hold);
    dbpool_submit(pool, run_owner__end_work, run_owner__end_done, e);
}

static void run_owner__reserve_work(store *s, void *arg)
{
    run_owner_job *j = arg;
    j->rc = store_usage_reserve(s, j->owner, j->run_id, j->now_ms, j->est_prompt, j->max_completion,
                                &j->price, &j->plan, &j->hold);
    if (j->rc < 0) snprintf(j->err, sizeof j->err, "%s", store_errmsg(s));
}

static void run_owner__job_free(run_owner_job *j)
{
    json_decref(j->messages);
    free(j->owner);
    free(j);
}

static void run_owner__reserve_done(void *arg)
{
    run_owner_job *j = arg;
    run *r = j->r;
    if (r) r->owner_job = NULL;
    bool held = j->rc == 0 && !j->plan.stop && j->hold.n > 0;
    /* The run stopped (or is gone) while the reservation was made: it is
     * given back at once. */
    if (!r || r->phase != PHASE_MODEL) {
        if (held) {
            store_usage_hold *h = xmalloc(sizeof *h);
            *h = j->hold;
            run_owner__end(j->pool, j->owner, h, false, 0, 0, NULL);
        }
        run_owner__job_free(j);
        return;
    }
    if (j->rc < 0) {
        LOG(LOG_ERROR, "an owner's budget could not be read; the run stops",
            "run_id=%s error=\"%s\"", r->id, j->err);
        run__finish(r, STOP_INTERRUPTED,
                    xasprintf("the budget of %s could not be checked, so the run stopped: %s",
                              j->owner, j->err),
                    false);
        run_owner__job_free(j);
        return;
    }
    run_owner__show(j->owner, &j->hold);
    if (j->plan.stop) {
        /* The budget that was used up is the evidence of the diagnosis. */
        json_t *ev = owner_budget_to_json(&j->hold.st[j->plan.over]);
        json_object_set_new(ev, "owner", json_string(j->owner));
        json_decref(r->stop_evidence);
        r->stop_evidence = ev;
        run__finish(r, STOP_OWNER_BUDGET,
                    owner_budget_stop_detail(j->owner, &j->hold.st[j->plan.over]), false);
        run_owner__job_free(j);
        return;
    }
    if (held) {
        r->owner_hold = xmalloc(sizeof *r->owner_hold);
        *r->owner_hold = j->hold;
    }
    json_t *messages = j->messages;
    j->messages = NULL;
    run_owner_go go = j->go;
    int64_t cap = j->plan.max_completion_tokens;
    run_owner__job_free(j);
    go(r, messages, cap);
}

void run__owner_reserve(run *r, json_t *messages, int64_t est_prompt, int64_t max_completion,
                        run_owner_go go)
{
    if (!r->owner || !r->env.pool) {
        go(r, messages, max_completion);
        return;
    }
    run_owner_job *j = xcalloc(1, sizeof *j);
    j->r = r;
    j->pool = r->env.pool;
    j->owner = xstrdup(r->owner);
    snprintf(j->run_id, sizeof j->run_id, "%s", r->id);
    j->now_ms = clock_wall_ms();
    j->est_prompt = est_prompt;
    j->max_completion = max_completion;
    /* The call goes to the step's provider, at its own price if it has
     * one. */
    const budget_price *own = llm_chain_price(r->env.chain, r->prov);
    j->price = own ? *own : r->budget.price;
    j->messages = messages;
    j->go = go;
    r->owner_job = j;
    dbpool_submit(r->env.pool, run_owner__reserve_work, run_owner__reserve_done, j);
}

void run__owner_settle(run *r, int64_t prompt_tokens, int64_t completion_tokens)
{
    if (!r->owner_hold) return;
    run_owner__end(r->env.pool, r->owner, r->owner_hold, true, prompt_tokens, completion_tokens,
                   &r->budget.price);
    r->owner_hold = NULL;
}

void run__owner_release(run *r)
{
    if (!r->owner_hold) return;
    run_owner__end(r->env.pool, r->owner, r->owner_hold, false, 0, 0, NULL);
    r->owner_hold = NULL;
}

void run__owner_detach(run *r)
{
    run__owner_release(r);
    if (r->owner_job) r->owner_job->r = NULL;
    r->owner_job = NULL;
    free(r->owner);
    r->owner = NULL;
}
