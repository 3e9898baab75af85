/*
 * llm_chain: named providers and their shared health. The circuit of each
 * is a count of failed steps in a row and the time its rest ends; nothing
 * else is kept, so a provider is tried again as soon as its rest is over.
 */
#include "engine/llm.h"

#include <stdlib.h>
#include <string.h>

#include "core/health.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xmalloc.h"

typedef struct chain__provider {
    char *name;
    char *label; /* name/model */
    llm *model;
    bool owned;
    bool has_price;
    budget_price price;
    int fails;            /* failed steps in a row */
    int64_t rest_until;   /* monotonic ms; resting while now < rest_until */
    bool open_shown;      /* the circuit gauge shows 1 */
    health_window health; /* its calls of the last five minutes */
} chain__provider;

struct llm_chain {
    chain__provider *p;
    size_t n;
    int64_t rest_ms;
};

/* NULL (nothing counted) until llm_chain_metrics_register. */
static metrics_family *chain__requests, *chain__failures, *chain__open;

void llm_chain_metrics_register(void)
{
    chain__requests = metrics_counter_new("chatplane_llm_requests_total",
                                          "Model requests by provider and outcome (ok or error).",
                                          "provider,outcome");
    chain__failures = metrics_counter_new(
        "chatplane_llm_provider_failures_total",
        "Steps a provider failed (the step moved on or the run stopped).", "provider");
    chain__open = metrics_gauge_labelled_new(
        "chatplane_llm_circuit_open", "1 while a provider rests after failing steps in a row.",
        "provider");
}

llm_chain *llm_chain_new(int64_t rest_ms)
{
    llm_chain *c = xcalloc(1, sizeof *c);
    c->rest_ms = rest_ms >= 0 ? rest_ms : LLM_CHAIN_REST_MS_DEFAULT;
    return c;
}

void llm_chain_free(llm_chain *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        if (c->p[i].owned) llm_free(c->p[i].model);
        free(c->p[i].name);
        free(c->p[i].label);
    }
    free(c->p);
    free(c);
}

void llm_chain_add(llm_chain *c, const char *name, llm *model, bool owned,
                   const budget_price *price)
{
    c->p = xrealloc(c->p, (c->n + 1) * sizeof *c->p);
    chain__provider *p = &c->p[c->n++];
    memset(p, 0, sizeof *p);
    p->name = xstrdup(name);
    p->label = xasprintf("%s/%s", name, model->model ? model->model : "");
    p->model = model;
    p->owned = owned;
    health_window_init(&p->health);
    if (price && price->set) {
        p->has_price = true;
        p->price = *price;
    }
    char *ok = xasprintf("%s,ok", name), *error = xasprintf("%s,error", name);
    metrics_seed(chain__requests, ok);
    metrics_seed(chain__requests, error);
    metrics_seed(chain__failures, name);
    metrics_seed(chain__open, name);
    free(ok);
    free(error);
}

size_t llm_chain_size(const llm_chain *c)
{
    return c->n;
}

llm *llm_chain_model(const llm_chain *c, size_t i)
{
    return c->p[i].model;
}

const char *llm_chain_name(const llm_chain *c, size_t i)
{
    return c->p[i].name;
}

const char *llm_chain_label(const llm_chain *c, size_t i)
{
    return c->p[i].label;
}

const budget_price *llm_chain_price(const llm_chain *c, size_t i)
{
    return c->p[i].has_price ? &c->p[i].price : NULL;
}

bool llm_chain_resting(const llm_chain *c, size_t i, int64_t now_ms)
{
    return c->p[i].fails >= LLM_CHAIN_FAILS_TO_OPEN && now_ms < c->p[i].rest_until;
}

int llm_chain_next(const llm_chain *c, size_t from, int64_t now_ms)
{
    for (size_t i = from; i < c->n; i++)
        if (!llm_chain_resting(c, i, now_ms)) return (int)i;
    return -1;
}

void llm_chain_count_request(llm_chain *c, size_t i, bool ok)
{
    char *v = xasprintf("%s,%s", c->p[i].name, ok ? "ok" : "error");
    metrics_add(chain__requests, v, 1);
    free(v);
}

/* Brings the circuit gauge of provider i in line with its state. */
static void llm_chain__show(chain__provider *p, bool open)
{
    if (p->open_shown == open) return;
    p->open_shown = open;
    metrics_add(chain__open, p->name, open ? 1 : -1);
}

void llm_chain_step_ok(llm_chain *c, size_t i, int64_t now_ms)
{
    (void)now_ms;
    chain__provider *p = &c->p[i];
    if (p->fails >= LLM_CHAIN_FAILS_TO_OPEN)
        LOG(LOG_INFO, "a model provider answers again; its circuit is closed", "provider=%s",
            p->name);
    p->fails = 0;
    p->rest_until = 0;
    llm_chain__show(p, false);
}

bool llm_chain_step_failed(llm_chain *c, size_t i, int64_t now_ms)
{
    chain__provider *p = &c->p[i];
    metrics_add(chain__failures, p->name, 1);
    /* A lone provider has nothing to be skipped for: resting it would only
     * refuse runs that might have worked, so its circuit never opens. */
    if (c->n < 2) return false;
    if (p->fails < LLM_CHAIN_FAILS_TO_OPEN) p->fails++;
    if (p->fails < LLM_CHAIN_FAILS_TO_OPEN) return false;
    p->rest_until = now_ms + c->rest_ms;
    llm_chain__show(p, true);
    LOG(LOG_WARN, "a model provider failed steps in a row and rests", "provider=%s rest_ms=%lld",
        p->name, (long long)c->rest_ms);
    return true;
}

void llm_chain_record(llm_chain *c, size_t i, int64_t now_ms, bool ok, int64_t first_token_ms,
                      const char *error)
{
    health_window_record(&c->p[i].health, now_ms, ok, first_token_ms, error);
}

const health_window *llm_chain_health(const llm_chain *c, size_t i)
{
    return &c->p[i].health;
}
