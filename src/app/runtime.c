#include "app/runtime.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/holdback.h"
#include "core/search.h"
#include "engine/llm_stream.h"
#include "engine/mcp.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/loopprio.h"
#include "lib/metrics.h"
#include "lib/redact.h"
#include "lib/xmalloc.h"
#include "store/store_journal.h"

#define RUNTIME_POOL_THREADS 2
/* The most active runs at which the loop writes the event log's batches
 * itself while the writer idles: one, whose own writes they are. */
#define RUNTIME_HERE_RUNS_MAX 1
/* How long start-up waits for the model endpoint's list of models. */
#define RUNTIME_MODELS_TIMEOUT_MS 10000

static void runtime__on_log_fd(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    eventlog_drain(arg);
}

/* The event log's work that the loop writes itself (eventlog_set_here). */
static void runtime__on_log_here(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    eventlog_write_here(arg);
}

/* The token journal's pause, timed on the loop (eventlog_set_journal_timer). */
static void runtime__on_journal_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    eventlog_journal_timer_fired(arg);
}

static void runtime__arm_journal_timer(void *ud, int64_t ms)
{
    runtime *rt = ud;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(rt->journal_ev, &tv);
}

/* One run at a time: the loop writes, since its commit holds up no other
 * stream and costs less than the wake-ups it saves; with more, the writer's
 * core takes the commits off the loop's (docs/storage.md, Writing on the
 * loop). */
static bool runtime__kick_log_here(void *ud)
{
    runtime *rt = ud;
    if (rt->engine && engine_active_count(rt->engine) > RUNTIME_HERE_RUNS_MAX) return false;
    event_active(rt->here_ev, EV_TIMEOUT, 0);
    return true;
}

static void runtime__on_pool_fd(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dbpool_drain(arg);
}

static void runtime__publish(void *ud, evt *ev)
{
    runtime *rt = ud;
    if (rt->publish) rt->publish(rt->publish_ud, ev);
}

static void runtime__migrated(void *ud, int version, const char *name)
{
    (void)ud;
    LOG(LOG_INFO, "migration applied", "version=%d name=%s", version, name);
}

/* The secrets of the configuration join the registry (lib/redact.h)
 * before anything can show outside text: the model key and the passwords
 * of the model and database URLs. */
static void runtime__register_secrets(const config *cfg)
{
    if (cfg->llm_api_key) redact_register(cfg->llm_api_key);
    redact_register_url(cfg->llm_base_url);
    redact_register_url(cfg->db);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        if (cfg->providers[i].api_key) redact_register(cfg->providers[i].api_key);
        redact_register_url(cfg->providers[i].base_url);
    }
}

/* The client of one configured provider (its model name already known). */
static llm *runtime__provider(struct event_base *base, const config_provider *p, const char *model)
{
    llm_http_options o = {
        .kind = strcmp(p->kind, "anthropic") == 0 ? LLM_KIND_ANTHROPIC : LLM_KIND_OPENAI,
        .base_url = p->base_url,
        .api_key = p->api_key,
        .model = model,
        .headers = p->headers,
        .anthropic_version = p->anthropic_version,
    };
    return llm_http_new(base, &o);
}

/*
 * The model name sent upstream: llm.model, or else the only model the
 * endpoint lists. A guess ("default") would be refused by most servers at
 * the first message, long after start-up, so start-up refuses instead,
 * naming the setting. Returns a new string or NULL with err set.
 */
static char *runtime__model_name(const config *cfg, const config_provider *primary, char *err,
                                 size_t errlen)
{
    if (cfg->llm_model && *cfg->llm_model) return xstrdup(cfg->llm_model);
    char why[LLM_STREAM_MODELS_ERR_MAX + 160]; /* the URL and the message */
    char *model = llm_openai_only_model(primary ? primary->base_url : cfg->llm_base_url,
                                        primary ? primary->api_key : cfg->llm_api_key,
                                        RUNTIME_MODELS_TIMEOUT_MS, why, sizeof why);
    if (!model)
        snprintf(err, errlen,
                 "no model name: llm.model (CHATPLANE_LLM_MODEL) is not set and %s; set it to "
                 "the model to use",
                 why);
    return model;
}

/* The modes: the stored ones, with the config file's "modes" overrides. */
static int runtime__load_modes(runtime *rt, char *err, size_t errlen)
{
    mode *modes = NULL;
    size_t n = 0;
    if (store_mode_list(rt->db, &modes, &n) < 0) {
        snprintf(err, errlen, "cannot read the modes: %s", store_errmsg(rt->db));
        return -1;
    }
    const char *name;
    json_t *over;
    json_object_foreach(rt->cfg->modes, name, over)
    {
        mode *m = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp(modes[i].name, name) == 0) m = &modes[i];
        char prefix[MODE_NAME_MAX + 16], msg[256];
        snprintf(prefix, sizeof prefix, "modes.%s", name);
        if (!m || !json_is_object(over) ||
            mode_limits_apply_json(&m->limits, over, prefix, msg, sizeof msg) != 0) {
            snprintf(err, errlen, "config key 'modes.%s': %s", name,
                     !m                      ? "no such mode"
                     : !json_is_object(over) ? "must be an object"
                                             : msg);
            free(modes);
            return -1;
        }
    }
    engine_load_modes(rt->engine, modes, n);
    free(modes);
    return 0;
}

/* How often titles and messages waiting for SQLite's search index are
 * looked for, and how many one job of a pool thread copies (in short
 * transactions) before it lets the others go; a full job is followed by
 * another (docs/storage.md, Search). */
#define RUNTIME_INDEX_MS    200
#define RUNTIME_INDEX_BATCH 32

static void runtime__index_submit(runtime *rt);

/* Titles and messages copied into the index (docs/api.md, Metrics). */
static metrics_family *runtime__indexed, *runtime__checkpoints;

static void runtime__index_work(store *s, void *arg)
{
    runtime *rt = arg;
    rt->indexed = store_session_index_pending(s, RUNTIME_INDEX_BATCH);
    if (rt->indexed < 0)
        LOG(LOG_WARN, "cannot index titles and messages for search; trying again shortly",
            "error=\"%s\"", store_errmsg(s));
}

/* True when a job of the search index may start now: it holds back while
 * runs are starting, waiting since it last caught up (core/holdback.h). */
static bool runtime__index_may_run(const runtime *rt)
{
    return clock_mono_ns() >= holdback_until(db_background_held_ns(), rt->index_caught_up_ns);
}

static void runtime__index_done(void *arg)
{
    runtime *rt = arg;
    rt->indexing = false;
    if (rt->indexed > 0) metrics_add(runtime__indexed, NULL, rt->indexed);
    if (rt->indexed >= 0 && rt->indexed < RUNTIME_INDEX_BATCH)
        rt->index_caught_up_ns = clock_mono_ns();
    if (rt->index_ev && rt->indexed == RUNTIME_INDEX_BATCH && runtime__index_may_run(rt))
        runtime__index_submit(rt);
}

static void runtime__index_submit(runtime *rt)
{
    if (rt->indexing || !rt->pool) return;
    rt->indexing = true;
    dbpool_submit(rt->pool, runtime__index_work, runtime__index_done, rt);
}

/* Brings chatplane_sqlite_checkpoints_total up to the store's counts. */
static void runtime__count_checkpoints(runtime *rt)
{
    unsigned long bg, fb;
    db_checkpoint_counts(&bg, &fb);
    if (bg > rt->ckpt_background)
        metrics_add(runtime__checkpoints, "background", (double)(bg - rt->ckpt_background));
    if (fb > rt->ckpt_fallback)
        metrics_add(runtime__checkpoints, "fallback", (double)(fb - rt->ckpt_fallback));
    rt->ckpt_background = bg;
    rt->ckpt_fallback = fb;
}

static void runtime__on_index_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    runtime__count_checkpoints(arg);
    if (runtime__index_may_run(arg)) runtime__index_submit(arg);
}

int runtime_start(runtime *rt, const config *cfg, struct event_base *base,
                  const runtime_options *opt, char *err, size_t errlen)
{
    memset(rt, 0, sizeof *rt);
    rt->cfg = cfg;
    rt->base = base;
    rt->publish = opt->publish;
    rt->publish_ud = opt->publish_ud;
    id_new(rt->instance_id, "ins", clock_wall_ms());
    runtime__register_secrets(cfg);
    /* config_load resolved the providers; a config made otherwise has the
     * primary of llm.* alone. */
    const config_provider *primary = cfg->nproviders ? &cfg->providers[0] : NULL;
    char *model_name = NULL;
    if (primary && primary->base_url && primary->model)
        model_name = xstrdup(primary->model);
    else if ((primary ? primary->base_url : cfg->llm_base_url) &&
             !(model_name = runtime__model_name(cfg, primary, err, errlen)))
        return -1;

    if (store_open(cfg->db, &rt->db, err, errlen) != 0) goto fail;
    /* Before migrating or recovering anything: a second process on the same
     * SQLite file would stop the runs of the first as interrupted. */
    if (db_claim_take(cfg->db, &rt->claim, err, errlen) != 0) goto fail;
    if (store_migrate(rt->db, opt->announce ? runtime__migrated : NULL, NULL, err, errlen) != 0)
        goto fail;
    bool shared = db_get_kind(store_db(rt->db)) == DB_POSTGRES;
    int64_t orphan_ms = cfg->orphan_timeout_s * 1000;
    /* Token events a crash left in the journal join the log first, so the
     * recovery of a run below sees all of its text. */
    if (store_journal_recover(rt->db, cfg->db) < 0) {
        snprintf(err, errlen, "cannot recover the token journal: %s", store_errmsg(rt->db));
        goto fail;
    }
    if (opt->recover) {
        /* On SQLite only one server uses the file, so every run still marked
         * running was left by a crash; PostgreSQL instances share the
         * database and only runs whose owner stopped beating are orphans. */
        int64_t stale = shared ? clock_wall_ms() - orphan_ms : INT64_MAX;
        int n = store_recover_interrupted(rt->db, stale, clock_wall_ms());
        if (n < 0) {
            snprintf(err, errlen, "cannot recover interrupted runs: %s", store_errmsg(rt->db));
            goto fail;
        }
        if (n > 0) LOG(LOG_WARN, "runs interrupted by a crash were stopped", "count=%d", n);
    }
    if (eventlog_start(cfg->db, runtime__publish, rt, &rt->log, err, errlen) != 0) goto fail;
    eventlog_set_pace(rt->log, cfg->commit_interval_us * 1000);
    eventlog_set_journal_idle(rt->log, cfg->journal_idle_ms);
    if (dbpool_start(cfg->db, RUNTIME_POOL_THREADS, &rt->pool, err, errlen) != 0) goto fail;
    rt->log_ev =
        event_new(base, eventlog_fd(rt->log), EV_READ | EV_PERSIST, runtime__on_log_fd, rt->log);
    rt->pool_ev =
        event_new(base, dbpool_fd(rt->pool), EV_READ | EV_PERSIST, runtime__on_pool_fd, rt->pool);
    /* The finished batches hand runs' starts back (lib/loopprio.h). */
    (void)event_priority_set(rt->log_ev, LOOPPRIO_START);
    event_add(rt->log_ev, NULL);
    event_add(rt->pool_ev, NULL);
    if (db_get_kind(store_db(rt->db)) == DB_SQLITE) {
        /* A commit to SQLite takes a fraction of a millisecond: while the
         * writer idles, the loop writes it itself rather than pay two
         * wake-ups of the other thread (docs/storage.md, Writing on the
         * loop). On PostgreSQL a commit is a round trip. Of the default
         * priority: a run's first step, of the start's, sends its model
         * request first, and the events that run_begin and the step made
         * meanwhile share one commit while the model works. */
        rt->here_ev = event_new(base, -1, 0, runtime__on_log_here, rt->log);
        (void)event_priority_set(rt->here_ev, LOOPPRIO_DEFAULT);
        eventlog_set_here(rt->log, runtime__kick_log_here, rt);
        /* The journal's pause too: a timer of the loop rather than a
         * wake-up of the writer at each answer's first token. */
        rt->journal_ev = evtimer_new(base, runtime__on_journal_timer, rt->log);
        eventlog_set_journal_timer(rt->log, runtime__arm_journal_timer, rt);
        runtime__indexed =
            metrics_counter_new("chatplane_search_indexed_total",
                                "Titles and messages copied into the search index.", NULL);
        runtime__checkpoints = metrics_counter_new(
            "chatplane_sqlite_checkpoints_total",
            "SQLite WAL checkpoints, by the checkpointer or by a commit at the WAL's hard length.",
            "kind");
        metrics_seed(runtime__checkpoints, "background");
        metrics_seed(runtime__checkpoints, "fallback");
        rt->index_ev = event_new(base, -1, EV_PERSIST, runtime__on_index_timer, rt);
        /* Messages a previous server left waiting count as waiting from
         * now: the first starts are held back from as well. */
        rt->index_caught_up_ns = clock_mono_ns();
        struct timeval every = {RUNTIME_INDEX_MS / 1000, (RUNTIME_INDEX_MS % 1000) * 1000};
        event_add(rt->index_ev, &every);
    }

    rt->chain = llm_chain_new(cfg->llm_circuit_rest_s * 1000);
    if (primary && primary->base_url) {
        rt->model = runtime__provider(base, primary, model_name);
        if (opt->announce) {
            /* The URL's password never reaches a message. */
            char *shown = db_url_redact(primary->base_url);
            LOG(LOG_INFO,
                strcmp(primary->kind, "anthropic") == 0 ? "using an Anthropic model"
                                                        : "using an OpenAI-compatible model",
                "base_url=%s model=%s from=%s", shown, model_name,
                cfg->llm_model && *cfg->llm_model ? "llm.model" : "endpoint");
            free(shown);
        }
    } else if (cfg->llm_base_url) {
        rt->model = llm_openai_new(base, cfg->llm_base_url, cfg->llm_api_key, model_name);
    } else {
        rt->model = llm_demo_new(base, cfg->demo_delay_ms);
        if (opt->announce)
            LOG(LOG_INFO, "using the demo brain: no llm.base_url configured",
                "hint=\"set CHATPLANE_LLM_URL to an OpenAI-compatible endpoint\"");
    }
    llm_chain_add(rt->chain, primary ? primary->name : "primary", rt->model, true, NULL);
    for (size_t i = 1; i < cfg->nproviders; i++) {
        const config_provider *f = &cfg->providers[i];
        llm_chain_add(rt->chain, f->name, runtime__provider(base, f, f->model), true, &f->price);
        if (opt->announce) {
            char *shown = db_url_redact(f->base_url);
            LOG(LOG_INFO, "with a fallback model", "name=%s kind=%s base_url=%s model=%s", f->name,
                f->kind, shown, f->model);
            free(shown);
        }
    }
    rt->tools = toolset_new(base);
    /* The demo brain's own tools let it show an approval and a long call. */
    if (!(primary ? primary->base_url : cfg->llm_base_url)) toolset_add_demo_tools(rt->tools);
    /* The MCP servers start here; start-up waits (bounded) for their first
     * tool lists, so that the first model call already offers their tools. */
    if (mcp_add_servers(rt->tools, base, cfg->mcp_servers, MCP_START_WAIT_MS, err, errlen) != 0)
        goto fail;
    free(model_name);
    model_name = NULL;
    engine_deps deps = {.base = base,
                        .log = rt->log,
                        .pool = rt->pool,
                        .model = rt->model,
                        .chain = rt->chain,
                        .tools = rt->tools,
                        .opt = {.active_runs = cfg->active_runs,
                                .context_tokens = cfg->llm_context_tokens,
                                .system_prompt = cfg->llm_system_prompt,
                                .price = cfg->price,
                                .approval_rules = cfg->approval_rules,
                                .approval_nrules = cfg->approval_nrules,
                                .approval_timeout_ms = cfg->approval_timeout_s * 1000},
                        .instance_id = rt->instance_id,
                        .on_run_finished = opt->on_run_finished,
                        .ud = opt->publish_ud,
                        .cluster = shared,
                        .start_in_log = !shared};
    rt->engine = engine_new(&deps);
    if (runtime__load_modes(rt, err, errlen) != 0) goto fail;
    if (shared) {
        cluster_deps cd = {.base = base,
                           .url = cfg->db,
                           .engine = rt->engine,
                           .instance_id = rt->instance_id,
                           .orphan_timeout_ms = orphan_ms,
                           .sweep = opt->recover,
                           .on_events = opt->on_events,
                           .on_up = opt->on_listening,
                           .on_session_deleted = opt->on_session_deleted,
                           .ud = opt->publish_ud};
        if (cluster_start(&cd, &rt->cluster, err, errlen) != 0) goto fail;
    }
    return 0;
fail:
    free(model_name);
    runtime_stop(rt);
    return -1;
}

void runtime_stop(runtime *rt)
{
    /* Messages not indexed yet are indexed by the next start's timer. */
    if (rt->index_ev) event_free(rt->index_ev);
    rt->index_ev = NULL;
    if (rt->engine) engine_shutdown(rt->engine);
    /* Its heartbeat callbacks still reach the engine, which is freed below. */
    cluster_stop(rt->cluster);
    rt->cluster = NULL;
    if (rt->pool) {
        dbpool_stop(rt->pool);
        rt->pool = NULL;
    }
    if (rt->engine) {
        engine_free(rt->engine);
        rt->engine = NULL;
    }
    if (rt->log) {
        /* What the loop was to write goes to the writer, which stops. */
        eventlog_set_here(rt->log, NULL, NULL);
        eventlog_set_journal_timer(rt->log, NULL, NULL);
        eventlog_stop(rt->log);
        rt->log = NULL;
    }
    if (rt->here_ev) event_free(rt->here_ev);
    rt->here_ev = NULL;
    if (rt->journal_ev) event_free(rt->journal_ev);
    rt->journal_ev = NULL;
    if (rt->log_ev) event_free(rt->log_ev);
    if (rt->pool_ev) event_free(rt->pool_ev);
    rt->log_ev = rt->pool_ev = NULL;
    toolset_free(rt->tools);
    rt->tools = NULL;
    llm_chain_free(rt->chain);
    rt->chain = NULL;
    rt->model = NULL;
    store_close(rt->db);
    rt->db = NULL;
    db_claim_release(rt->claim);
    rt->claim = NULL;
}

bool runtime_healthy(const runtime *rt)
{
    return cluster_healthy(rt->cluster);
}

void runtime_session_deleted(runtime *rt, const char *session_id)
{
    cluster_session_deleted(rt->cluster, session_id);
}
