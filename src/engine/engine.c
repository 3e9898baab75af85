#include "engine/engine.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "store/objects.h"
#include "core/context.h"
#include "core/health.h"
#include "engine/run.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

#define ENGINE_TITLE_CHARS 60
#define ENGINE__BUCKETS    1024 /* of the registry's two tables, a power of two */

/*
 * One entry of the registry of active runs: in the list every walk over
 * the runs follows, and in two hash tables, by session and by run id, so
 * that a start, a stop, a decision and a run's end find their run without
 * a walk over all the others (a thousand runs at once made each start
 * compare every active run's session: docs/benchmarks.md, fix 62).
 */
typedef struct engine_entry {
    run *r;
    struct engine_entry *next, *prev;
    struct engine_entry *by_session, *by_id; /* the next in the same bucket */
} engine_entry;

struct engine {
    engine_deps d;
    mode *modes;
    size_t nmodes;
    engine_entry *runs;
    engine_entry *sessions[ENGINE__BUCKETS], *ids[ENGINE__BUCKETS];
    size_t active;
    size_t starting; /* start jobs in flight */
    recorder rec;
    bool closing;
    bool beating;              /* a heartbeat is in flight */
    struct engine_stop *waits; /* stop requests waiting for another instance */
    /* Sessions whose run here was stopped on request: its end drops the
     * session's queued run instead of starting it. */
    struct engine_drop *drops;
    /* The runs stopped in the last hour, for GET /api/health
     * (docs/health.md); the model providers keep their own windows. */
    health_stops stops;
    llm_chain *own_chain; /* made around d.model when d.chain was NULL */
};

static void engine__on_taken(void *ud, run *r, bool input, const char *id);

/* ---- modes ---- */

const mode *engine_mode(engine *e, const char *name)
{
    for (size_t i = 0; name && i < e->nmodes; i++)
        if (strcmp(e->modes[i].name, name) == 0) return &e->modes[i];
    return NULL;
}

const char *engine_instance_id(const engine *e)
{
    return e->d.instance_id;
}

bool engine_clustered(const engine *e)
{
    return e->d.cluster;
}

size_t engine_mode_count(const engine *e)
{
    return e->nmodes;
}

const mode *engine_mode_at(const engine *e, size_t i)
{
    return i < e->nmodes ? &e->modes[i] : NULL;
}

int engine_load_modes(engine *e, const mode *modes, size_t n)
{
    mode *copy = xcalloc(n ? n : 1, sizeof *copy);
    memcpy(copy, modes, n * sizeof *copy);
    free(e->modes);
    e->modes = copy;
    e->nmodes = n;
    /* Every active run takes its mode again, as loaded, at once. */
    for (engine_entry *x = e->runs; x; x = x->next) {
        json_t *o = run_to_json(x->r);
        const mode *m = engine_mode(e, json_string_value(json_object_get(o, "mode")));
        json_decref(o);
        if (m) run_set_mode(x->r, m);
    }
    return 0;
}

/* Replaces the mode of m's name; false when there is none. Only the
 * active runs of that mode take it: a run of another mode has nothing new
 * to announce, so it gets no budget event and no row write. */
static bool engine__replace_mode(engine *e, const mode *m)
{
    mode *cur = NULL;
    for (size_t i = 0; !cur && i < e->nmodes; i++)
        if (strcmp(e->modes[i].name, m->name) == 0) cur = &e->modes[i];
    if (!cur) return false;
    *cur = *m;
    for (engine_entry *x = e->runs; x; x = x->next) {
        json_t *o = run_to_json(x->r);
        const char *name = json_string_value(json_object_get(o, "mode"));
        bool same = name && strcmp(name, cur->name) == 0;
        json_decref(o);
        if (same) run_set_mode(x->r, cur);
    }
    return true;
}

static void engine__notify_work(store *st, void *arg)
{
    if (store_notify(st, STORE_CONTROL_CHANNEL, arg) < 0)
        LOG(LOG_WARN, "cannot tell the other instances of a mode change", "error=\"%s\"",
            store_errmsg(st));
}

void engine_put_mode(engine *e, const mode *m)
{
    engine__replace_mode(e, m);
    if (!e->d.cluster || e->closing) return;
    json_t *mj = mode_to_json(m);
    control_msg msg = {
        .kind = CONTROL_PUT_MODE, .instance = CONTROL_EVERY, .from = e->d.instance_id, .mode = mj};
    char *text = control_encode(&msg);
    json_decref(mj);
    if (!text) {
        LOG(LOG_WARN, "cannot tell the other instances of a mode change: the message is too long",
            "mode=%s", m->name);
        return;
    }
    dbpool_submit(e->d.pool, engine__notify_work, free, text);
}

/* A mode another instance stored: the same edit here. */
static void engine__mode_put_from(engine *e, const control_msg *c)
{
    const char *from = c->from;
    const json_t *mj = c->mode;
    const mode *cur = engine_mode(e, c->mode_name);
    if (strcmp(from, e->d.instance_id) == 0 || !cur) return;
    mode m = *cur;
    char err[256];
    const char *desc = json_string_value(json_object_get(mj, "description"));
    if (mode_limits_apply_json(&m.limits, json_object_get(mj, "limits"), "limits", err,
                               sizeof err) != 0 ||
        mode_guard_apply_json(&m.guard, json_object_get(mj, "guard"), "guard", err, sizeof err) !=
            0) {
        LOG(LOG_WARN, "ignoring a mode change from another instance", "error=\"%s\"", err);
        return;
    }
    if (desc) snprintf(m.description, sizeof m.description, "%s", desc);
    /* An instance of an older version sends no approval: the mode keeps
     * its own. */
    approval_policy_parse(json_string_value(json_object_get(mj, "approval")), &m.approval);
    LOG(LOG_INFO, "mode changed by another instance", "mode=%s instance=%s", m.name, from);
    engine__replace_mode(e, &m);
}

/* ---- the registry of active runs ---- */

static size_t engine__bucket(const char *id)
{
    return (size_t)(id_hash(id) & (ENGINE__BUCKETS - 1));
}

static void engine__register(engine *e, run *r)
{
    engine_entry *x = xcalloc(1, sizeof *x);
    x->r = r;
    x->next = e->runs;
    if (e->runs) e->runs->prev = x;
    e->runs = x;
    size_t bs = engine__bucket(run_get_session_id(r)), bi = engine__bucket(run_get_id(r));
    x->by_session = e->sessions[bs];
    e->sessions[bs] = x;
    x->by_id = e->ids[bi];
    e->ids[bi] = x;
    e->active++;
}

/* Takes r's entry out of the list and both tables; false when r has none. */
static bool engine__unregister(engine *e, const run *r)
{
    engine_entry **ps = &e->sessions[engine__bucket(run_get_session_id(r))];
    while (*ps && (*ps)->r != r) ps = &(*ps)->by_session;
    engine_entry *x = *ps;
    if (!x) return false;
    *ps = x->by_session;
    engine_entry **pi = &e->ids[engine__bucket(run_get_id(r))];
    while (*pi != x) pi = &(*pi)->by_id;
    *pi = x->by_id;
    if (x->prev)
        x->prev->next = x->next;
    else
        e->runs = x->next;
    if (x->next) x->next->prev = x->prev;
    free(x);
    e->active--;
    return true;
}

static run *engine__find(const engine *e, const char *session_id)
{
    for (engine_entry *x = e->sessions[engine__bucket(session_id)]; x; x = x->by_session)
        if (strcmp(run_get_session_id(x->r), session_id) == 0) return x->r;
    return NULL;
}

const char *engine_active_run_id(const engine *e, const char *session_id)
{
    run *r = engine__find(e, session_id);
    return r ? run_get_id(r) : NULL;
}

size_t engine_active_count(const engine *e)
{
    return e->active;
}

static void engine__start_queued(engine *e, const char *session_id);
static void engine__drop_queue(engine *e, const char *session_id);

/* One entry of e->drops. */
typedef struct engine_drop {
    char session_id[ID_MAX];
    struct engine_drop *next;
} engine_drop;

/* Marks the session's queue to be dropped when its run here ends; once. */
static void engine__drop_after(engine *e, const char *session_id)
{
    for (engine_drop *d = e->drops; d; d = d->next)
        if (strcmp(d->session_id, session_id) == 0) return;
    engine_drop *d = xcalloc(1, sizeof *d);
    snprintf(d->session_id, sizeof d->session_id, "%s", session_id);
    d->next = e->drops;
    e->drops = d;
}

/* Whether the session's queue is to be dropped (the mark is taken). */
static bool engine__take_drop(engine *e, const char *session_id)
{
    for (engine_drop **p = &e->drops; *p; p = &(*p)->next) {
        if (strcmp((*p)->session_id, session_id) == 0) {
            engine_drop *d = *p;
            *p = d->next;
            free(d);
            return true;
        }
    }
    return false;
}

static void engine__on_finished(void *ud, run *r, int status)
{
    engine *e = ud;
    char session_id[ID_MAX];
    snprintf(session_id, sizeof session_id, "%s", run_get_session_id(r));
    health_stops_record(&e->stops, clock_wall_ms(), run_get_reason(r));
    /* An unrecorded run was reported when its last write was refused. */
    if (e->d.on_run_finished && !run_is_unrecorded(r))
        e->d.on_run_finished(e->d.ud, run_get_session_id(r), run_get_id(r), status);
    (void)engine__unregister(e, r);
    bool queued = run_queue_waits(r);
    run_free(r);
    /* A run sent while this one worked starts now (docs/runs.md, Queue
     * and interrupt), unless a stop request ended this one; the queue is in
     * the store, so a run queued through another instance starts here
     * too. The run's last write read the queue as it released the
     * session: when it was empty, there is nothing to start or drop, and
     * no transaction is spent finding that out. */
    bool drop = engine__take_drop(e, session_id);
    if (e->closing || !queued) return;
    if (drop)
        engine__drop_queue(e, session_id);
    else
        engine__start_queued(e, session_id);
}

/* The database refused a run's last write: the run is over for its
 * clients (whoever follows it hears so now), while its end waits for the
 * database and the run keeps its place in the registry. */
static void engine__on_unrecorded(void *ud, run *r, int status)
{
    engine *e = ud;
    if (e->d.on_run_finished)
        e->d.on_run_finished(e->d.ud, run_get_session_id(r), run_get_id(r), status);
}

/* ---- starting a run ---- */

/* A start of the queued run that found none to start (a positive status:
 * not an error). */
#define ENGINE__NOTHING_QUEUED 1

/* The work of a start, done on a pool thread in one transaction: check the
 * session, claim it for the run, write the run row and the user message,
 * and read the history the model will see. */
typedef struct engine_start {
    engine *e;
    engine_start_cb cb;
    void *ud;
    /* in */
    char *session_id, *message, *mode_req;
    char *client_note; /* run_init.client_note, or NULL */
    bool regenerate;   /* answer the last user message again */
    bool from_queue;   /* start the session's queued run, if it has one */
    bool brief;        /* cb gets the run's id alone (engine.h) */
    mode *modes;
    size_t nmodes;
    char run_id[ID_MAX], message_id[ID_MAX];
    char *instance_id;
    int64_t now_ms;
    int64_t context_tokens;
    /* out */
    int status;
    bool history_lost; /* the run started but its history could not be read */
    mode mode;
    char *continues;
    char *regen_user_id; /* regenerate: the user message answered again */
    json_t *superseded;  /* regenerate: the ids marked superseded */
    store_message *msgs;
    size_t nmsgs;
    json_t *remembered; /* the session's remembered decisions (run_init) */
    char *owner;        /* the session's owner, or NULL */
    /* A start in the event log: the run's first events (its user message,
     * the superseded ids, run_started), stored by the start's own
     * transaction (engine__start_emitted) rather than by the next one. */
    evt *first[RUN_FIRST_EVENTS_MAX];
    size_t nfirst;
} engine_start;

static const mode *engine__pick(const engine_start *j, const char *name)
{
    for (size_t i = 0; name && i < j->nmodes; i++)
        if (strcmp(j->modes[i].name, name) == 0) return &j->modes[i];
    return NULL;
}

/* The first ENGINE_TITLE_CHARS characters (not bytes) of a message. */
static char *engine__title(const char *message)
{
    char *t = xstrndup(message, utf8_skip(message, strlen(message), ENGINE_TITLE_CHARS));
    for (char *p = t; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
    return t;
}

static int engine__start_tx(store *s, engine_start *j)
{
    store_session ses = {0};
    int rc = store_session_get(s, j->session_id, NULL, &ses);
    if (rc == STORE_NOT_FOUND) return ENGINE_ERR_NOT_FOUND;
    if (rc < 0) return ENGINE_ERR_UNAVAILABLE;

    if (j->from_queue) {
        /* The queued run takes its id, message and mode from the queue. A
         * session whose queue is empty, or that another run holds, has
         * nothing to start now: that run's end starts the queued one. */
        if (!ses.queued_run_id || ses.active_run_id) {
            store_session_cleanup(&ses);
            return ENGINE__NOTHING_QUEUED;
        }
        snprintf(j->run_id, sizeof j->run_id, "%s", ses.queued_run_id);
        j->message = xstrdup(ses.queued_message ? ses.queued_message : "");
        if (ses.queued_mode) j->mode_req = xstrdup(ses.queued_mode);
        if (store_queue_take(s, j->session_id, j->run_id) < 0) goto unavailable;
    }
    const mode *m = engine__pick(j, j->mode_req ? j->mode_req : ses.mode);
    if (!m) m = engine__pick(j, MODE_DEFAULT);
    if (!m) {
        store_session_cleanup(&ses);
        return ENGINE_ERR_BAD_MODE;
    }
    j->mode = *m;
    j->owner = ses.owner ? xstrdup(ses.owner) : NULL;

    if (j->regenerate) {
        rc = store_message_supersede(s, j->session_id, &j->regen_user_id, &j->superseded);
        if (rc < 0) {
            store_session_cleanup(&ses);
            return rc == STORE_NOT_FOUND ? ENGINE_ERR_NOTHING_TO_REGENERATE
                                         : ENGINE_ERR_UNAVAILABLE;
        }
    } else if (!j->message) {
        /* A continue carries on from the newest run, unless it completed. */
        store_run last = {0};
        rc = store_run_latest(s, j->session_id, &last);
        if (rc < 0 && rc != STORE_NOT_FOUND) {
            store_session_cleanup(&ses);
            return ENGINE_ERR_UNAVAILABLE;
        }
        bool can = rc == 0 && !(last.stop_reason && strcmp(last.stop_reason, "completed") == 0);
        if (can) j->continues = xstrdup(last.id);
        store_run_cleanup(&last);
        if (!can && !(ses.active_run_id)) {
            store_session_cleanup(&ses);
            return ENGINE_ERR_NOTHING;
        }
    }

    /* The mode the run uses and a title from the first message, written
     * with the claim. */
    const char *new_mode =
        strcmp(ses.mode ? ses.mode : "", j->mode.name) != 0 ? j->mode.name : NULL;
    char *title = j->message && (!ses.title || !*ses.title) ? engine__title(j->message) : NULL;
    rc = store_session_claim_run_as(s, j->session_id, j->run_id, j->now_ms, title, new_mode);
    free(title);
    if (rc == STORE_CONFLICT) {
        store_session_cleanup(&ses);
        return ENGINE_ERR_RUN_ACTIVE;
    }
    if (rc < 0) goto unavailable;

    budget_usage zero = {0};
    store_run row = {
        .id = j->run_id,
        .session_id = j->session_id,
        .mode = j->mode.name,
        .status = "running",
        .limits = mode_limits_to_json(&j->mode.limits),
        .usage = budget_usage_to_json(&zero),
        .actions = json_array(),
        .owner_instance = j->instance_id,
        .continues = j->continues,
        .heartbeat_ms = j->now_ms,
        .started_ms = j->now_ms,
    };
    rc = store_run_insert(s, &row);
    json_decref(row.limits);
    json_decref(row.usage);
    json_decref(row.actions);
    if (rc < 0) goto unavailable;

    if (j->message) {
        store_message um = {.id = j->message_id,
                            .session_id = j->session_id,
                            .run_id = j->run_id,
                            .role = "user",
                            .content = j->message,
                            .created_ms = j->now_ms};
        if (store_message_insert(s, &um) < 0) goto unavailable;
    }
    store_session_cleanup(&ses);
    return 0;
unavailable:
    store_session_cleanup(&ses);
    return ENGINE_ERR_UNAVAILABLE;
}

/* A stored message as the model sees it (a new reference). */
static json_t *engine__context_message(const store_message *m)
{
    if (strcmp(m->role, "user") == 0) return context_user(m->content);
    if (strcmp(m->role, "assistant") == 0) return context_assistant(m->content, m->tool_calls);
    return context_tool(m->tool_call_id, m->content ? m->content : "",
                        m->content ? strlen(m->content) : 0);
}

/*
 * At most the token estimate that trimming counts for a message
 * (context_estimate_tokens of engine__context_message), without building
 * it: the bytes of its JSON with its texts unescaped, which escaping only
 * lengthens, and of a tool result the part the model sees. Building each
 * message to measure it cost as much again as reading it.
 */
static int64_t engine__message_tokens(const store_message *m, void *ud)
{
    (void)ud;
    size_t len = m->content ? strlen(m->content) : 0, bytes;
    if (strcmp(m->role, "user") == 0) {
        bytes = sizeof "{\"role\":\"user\",\"content\":\"\"}" - 1 + len;
    } else if (strcmp(m->role, "assistant") == 0) {
        bytes = len ? sizeof "{\"role\":\"assistant\",\"content\":\"\"}" - 1 + len
                    : sizeof "{\"role\":\"assistant\",\"content\":null}" - 1;
        if (json_array_size(m->tool_calls) > 0)
            bytes +=
                sizeof ",\"tool_calls\":" - 1 + json_dumpb(m->tool_calls, NULL, 0, JSON_COMPACT);
    } else {
        size_t shown = len < CONTEXT_TOOL_RESULT_MAX - 3 ? len : CONTEXT_TOOL_RESULT_MAX - 3;
        bytes = sizeof "{\"role\":\"tool\",\"tool_call_id\":\"\",\"content\":\"\"}" - 1 + shown +
                (m->tool_call_id ? strlen(m->tool_call_id) : 0);
    }
    return (int64_t)((bytes + 3) / 4);
}

/*
 * Waits (on a pool thread) while the connection is lost: returns false once
 * the database has been away since started_ms for as long as the event log
 * waits for it (EVENTLOG_RECONNECT_MAX_MS), else pauses (doubling *pause_ms)
 * and returns true to try again.
 */
static bool engine__wait_for_database(int64_t started_ms, int64_t *pause_ms)
{
    if (clock_mono_ms() + *pause_ms - started_ms > EVENTLOG_RECONNECT_MAX_MS) return false;
    clock_sleep_ms(*pause_ms);
    *pause_ms = *pause_ms * 2 < EVENTLOG_RECONNECT_PAUSE_MAX_MS ? *pause_ms * 2
                                                                : EVENTLOG_RECONNECT_PAUSE_MAX_MS;
    return true;
}

/* After a start whose COMMIT went unanswered (the connection was lost):
 * the run row is there only if it committed. Returns 1 committed, 0 not,
 * or a negative code when the database did not come back to say. */
static int engine__start_committed(store *s, const char *run_id)
{
    int64_t started = clock_mono_ms(), pause = EVENTLOG_RECONNECT_PAUSE_MS;
    for (;;) {
        store_run row = {0};
        int rc = store_run_get(s, run_id, &row);
        store_run_cleanup(&row);
        if (rc == 0) return 1;
        if (rc == STORE_NOT_FOUND) return 0;
        if (rc != DB_ERR_CONN || !engine__wait_for_database(started, &pause)) return rc;
    }
}

/* Reads the decisions a person made for the rest of the session into
 * the array out, oldest first: {"server", "tool", "approve", "reason"},
 * from the session's approvals read ahead into ahead when it is not NULL
 * (freed here), else read now. */
static int engine__remembered(store *s, const char *session_id, db_result *ahead, json_t *out)
{
    store_approval *rows = NULL;
    size_t n = 0;
    int rc = ahead ? store_approval_list_take(s, ahead, &rows, &n)
                   : store_approval_list(s, session_id, NULL, &rows, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const store_approval *a = &rows[i];
        bool approved = strcmp(a->status, "approved") == 0;
        if (strcmp(a->remember, "session") != 0 || (!approved && strcmp(a->status, "denied") != 0))
            continue;
        json_array_append_new(
            out, json_pack("{s:s, s:s, s:b, s:o}", "server", a->server, "tool", a->tool, "approve",
                           approved, "reason",
                           a->decision_reason ? json_string(a->decision_reason) : json_null()));
    }
    store_approval_list_free(rows, n);
    return rc;
}

/* The session's remembered decisions by the name the model calls each tool
 * now (run_init.remembered), a later decision replacing an earlier one; a
 * tool that is gone is left out. Returns a new object. */
static json_t *engine__remembered_by_name(const toolset *tools, const json_t *rows)
{
    json_t *out = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *server = json_string_value(json_object_get(row, "server"));
        const char *tool = json_string_value(json_object_get(row, "tool"));
        for (size_t k = 0; k < toolset_count(tools); k++) {
            const tool_def *d = toolset_get(tools, k);
            if (strcmp(d->server, server) != 0 || strcmp(d->tool, tool) != 0) continue;
            json_object_set_new(out, d->name,
                                json_pack("{s:O, s:O, s:s}", "approve",
                                          json_object_get(row, "approve"), "reason",
                                          json_object_get(row, "reason"), "remember", "session"));
            break;
        }
    }
    return out;
}

/* Whether the session has a queued run, read outside a transaction: the
 * end of every run asks, and most sessions have none. */
static bool engine__has_queue(store *s, const char *session_id)
{
    store_session ses = {0};
    int rc = store_session_get(s, session_id, NULL, &ses);
    bool queued = rc != 0 || ses.queued_run_id; /* on failure, the start finds out */
    store_session_cleanup(&ses);
    return queued;
}

/* Only the newest messages that trimming to context_tokens can keep
 * (docs/runs.md, Trimming): once the messages read are estimated at
 * context_tokens, with the run's own message besides, an older one could
 * only be dropped again. */
static int64_t engine__history_min(const engine_start *j)
{
    int64_t min = j->context_tokens;
    if (j->message) {
        json_t *own = context_user(j->message);
        min += context_estimate_tokens(own);
        json_decref(own);
    }
    return min;
}

/* One read of the run's history into j->msgs: 0 or a negative code. */
static int engine__history_read(store *s, engine_start *j)
{
    return store_message_list_recent(s, j->session_id, engine__history_min(j),
                                     engine__message_tokens, NULL, &j->msgs, &j->nmsgs);
}

/* Reads what a started run needs: its history, unless have_history, and
 * the session's remembered decisions, from approvals when they were read
 * ahead (freed here). */
static void engine__start_read(store *s, engine_start *j, bool have_history, db_result *approvals)
{
    int rc = 0;
    int64_t started = clock_mono_ms(), pause = EVENTLOG_RECONNECT_PAUSE_MS;
    while (!have_history && (rc = engine__history_read(s, j)) == DB_ERR_CONN &&
           engine__wait_for_database(started, &pause))
        continue;
    if (rc < 0) {
        LOG(LOG_ERROR, "cannot read the history of a run that started; stopping it", "run_id=%s",
            j->run_id);
        j->history_lost = true;
    }
    /* A session's remembered decisions that cannot be read are asked
     * again: safe, if less convenient. */
    j->remembered = json_array();
    if (j->history_lost) {
        db_result_free(approvals);
    } else if (engine__remembered(s, j->session_id, approvals, j->remembered) < 0) {
        LOG(LOG_WARN, "cannot read the session's remembered approvals; they are asked again",
            "run_id=%s", j->run_id);
    }
}

/*
 * The start on a thread of the pool. A start is one transaction; once it
 * committed, the run exists for the database and must reach the engine,
 * whatever fails next, or its session would stay claimed by a run that
 * never logs a run_started. Its COMMIT and the read of the session's
 * approvals travel with the first read of the history: on PostgreSQL all
 * three go in one round trip (docs/storage.md, Round trips on
 * PostgreSQL). When that call fails, the failure may be the COMMIT's or a
 * read's (or the answer was lost), so the run's row says
 * whether the start committed; a history that cannot be read while the
 * connection is lost is read again once it is back, and a run whose
 * history still cannot be read starts and stops at once (history_lost).
 */
static void engine__start_work(store *s, void *arg)
{
    engine_start *j = arg;
    if (j->from_queue && !engine__has_queue(s, j->session_id)) {
        j->status = ENGINE__NOTHING_QUEUED;
        return;
    }
    if (store_begin(s) < 0) {
        j->status = ENGINE_ERR_UNAVAILABLE;
        return;
    }
    j->status = engine__start_tx(s, j);
    if (j->status != 0) {
        store_rollback(s);
        return;
    }
    /* The session's approvals go ahead too, after the COMMIT: the
     * history's first read answers for all three. */
    db_result *approvals = NULL;
    int rc = store_commit_later(s);
    if (rc == 0) rc = store_approval_list_later(s, j->session_id, &approvals);
    if (rc == 0) rc = engine__history_read(s, j);
    if (rc < 0) {
        db_result_free(approvals);
        approvals = NULL;
        store_rollback(s);
        if (engine__start_committed(s, j->run_id) != 1) {
            j->status = ENGINE_ERR_UNAVAILABLE;
            return;
        }
        if (rc == DB_ERR_CONN)
            LOG(LOG_WARN, "a run start committed although its answer was lost", "run_id=%s",
                j->run_id);
    }
    engine__start_read(s, j, rc == 0, approvals);
}

/* Drops what an earlier try of a start set, before it is written again. */
static void engine__start_reset(engine_start *j)
{
    j->status = 0;
    j->history_lost = false;
    if (j->from_queue) {
        free(j->message);
        free(j->mode_req);
        j->message = j->mode_req = NULL;
    }
    free(j->owner);
    free(j->continues);
    free(j->regen_user_id);
    j->owner = j->continues = j->regen_user_id = NULL;
    json_decref(j->superseded);
    json_decref(j->remembered);
    j->superseded = j->remembered = NULL;
    store_message_list_free(j->msgs, j->nmsgs);
    j->msgs = NULL;
    j->nmsgs = 0;
    for (size_t i = 0; i < j->nfirst; i++) evt_unref(j->first[i]);
    j->nfirst = 0;
}

/*
 * The start as an operation of the event log (engine_deps.start_in_log):
 * the writer runs it inside a batch, so it shares that batch's commit and
 * never waits for the write lock. A start that is refused (no such
 * session, a run active, nothing queued) undoes its own writes through a
 * savepoint and leaves the batch's other operations alone; only a failure
 * of the database fails the batch. The batch may be written again, so an
 * earlier try's results are dropped first.
 */
static int engine__start_apply(store *s, void *arg)
{
    engine_start *j = arg;
    engine__start_reset(j);
    if (store_savepoint(s) < 0) return -1;
    if (j->from_queue && !engine__has_queue(s, j->session_id))
        j->status = ENGINE__NOTHING_QUEUED;
    else
        j->status = engine__start_tx(s, j);
    if (j->status != 0) return store_savepoint_undo(s) < 0 ? -1 : 0;
    if (store_savepoint_release(s) < 0) return -1;
    engine__start_read(s, j, false, NULL);
    /* The events run_begin would emit, made here so that this transaction
     * stores them: the next one then has only the run's "thinking" status,
     * which the token journal takes (docs/benchmarks.md, fix 59). */
    evt_origin o = {j->session_id, j->run_id, clock_wall_ms()};
    j->nfirst = run_first_events(&o, j->message ? j->message_id : NULL, j->message, j->superseded,
                                 j->mode.name, &j->mode.limits, j->continues, j->first);
    return 0;
}

static size_t engine__start_emitted(void *arg, evt *const **evs)
{
    engine_start *j = arg;
    *evs = j->first;
    return j->nfirst;
}

static void engine__start_done(void *arg);

/* On the loop once the batch that held the start committed (or failed). */
static void engine__start_logged(void *arg, evt *ev, int status)
{
    (void)ev;
    engine_start *j = arg;
    if (status < 0) j->status = ENGINE_ERR_UNAVAILABLE;
    engine__start_done(j);
}

/* The session's stored messages as the model sees them. Sets *keep_from to
 * the index of the message with id keep_id (the run's user message), else
 * to the length of the history. */
static json_t *engine__history(const store_message *msgs, size_t n, const char *keep_id,
                               size_t *keep_from)
{
    json_t *h = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(h, engine__context_message(&msgs[i]));
    context_repair(h);
    *keep_from = json_array_size(h);
    if (keep_id) {
        /* The run's user message is the last user message of the history. */
        for (size_t i = json_array_size(h); i-- > 0;) {
            const char *role = json_string_value(json_object_get(json_array_get(h, i), "role"));
            if (role && strcmp(role, "user") == 0) {
                *keep_from = i;
                break;
            }
        }
    }
    return h;
}

static void engine__start_free(engine_start *j)
{
    engine__start_reset(j);
    free(j->session_id);
    free(j->message);
    free(j->mode_req);
    free(j->client_note);
    free(j->modes);
    free(j->instance_id);
    free(j);
}

static void engine__start_done(void *arg)
{
    engine_start *j = arg;
    engine *e = j->e;
    e->starting--;
    if (j->status != 0) {
        j->cb(j->ud, j->status, NULL);
        engine__start_free(j);
        return;
    }
    size_t keep_from = 0;
    json_t *history = engine__history(j->msgs, j->nmsgs,
                                      j->message ? j->message_id : j->regen_user_id, &keep_from);
    run_env env = {.base = e->d.base,
                   .rec = &e->rec,
                   .model = e->d.model,
                   .chain = e->d.chain,
                   .tools = e->d.tools,
                   .opt = &e->d.opt,
                   .instance_id = e->d.instance_id,
                   .pool = e->d.pool,
                   .on_finished = engine__on_finished,
                   .on_unrecorded = engine__on_unrecorded,
                   .on_taken = engine__on_taken,
                   .ud = e};
    run_init init = {
        .id = j->run_id,
        .session_id = j->session_id,
        .continues = j->continues,
        .mode = &j->mode,
        .history = history,
        .keep_from = keep_from,
        .user_message_id = j->message ? j->message_id : NULL,
        .user_message = j->message,
        .client_note = j->client_note,
        .superseded = j->superseded,
        .started_wall_ms = j->now_ms,
        .owner = j->owner,
        .remembered = engine__remembered_by_name(e->d.tools, j->remembered),
        .begun = j->nfirst > 0,
    };
    run *r = run_new(&env, &init);
    engine__register(e, r);
    run_begin(r);
    json_t *obj = j->brief ? json_pack("{s:s}", "id", run_get_id(r)) : run_to_json(r);
    j->cb(j->ud, 0, obj);
    json_decref(obj);
    /* A run that started while the server was closing ends at once, and so
     * does one whose history could not be read. */
    if (e->closing)
        run_stop(r, STOP_INTERRUPTED, "the server shut down during the run", NULL, NULL);
    else if (j->history_lost)
        run_stop(r, STOP_INTERRUPTED, "the database did not answer, so the run stopped", NULL,
                 NULL);
    engine__start_free(j);
}

void engine_start_run(engine *e, const char *session_id, const char *message, const char *mode_name,
                      engine_start_cb cb, void *ud)
{
    engine_start_run_noted(e, session_id, message, mode_name, NULL, false, cb, ud);
}

/* What a start answers: a message, the last user message again, or the
 * session's queued run. */
typedef enum engine__how {
    ENGINE__MESSAGE,
    ENGINE__REGENERATE,
    ENGINE__FROM_QUEUE,
} engine__how;

static void engine__start(engine *e, const char *session_id, const char *message,
                          const char *mode_name, const char *client_note, engine__how how,
                          bool brief, engine_start_cb cb, void *ud);

void engine_start_run_noted(engine *e, const char *session_id, const char *message,
                            const char *mode_name, const char *client_note, bool brief,
                            engine_start_cb cb, void *ud)
{
    engine__start(e, session_id, message, mode_name, client_note, ENGINE__MESSAGE, brief, cb, ud);
}

void engine_regenerate_run(engine *e, const char *session_id, const char *mode_name, bool brief,
                           engine_start_cb cb, void *ud)
{
    engine__start(e, session_id, NULL, mode_name, NULL, ENGINE__REGENERATE, brief, cb, ud);
}

static void engine__start(engine *e, const char *session_id, const char *message,
                          const char *mode_name, const char *client_note, engine__how how,
                          bool brief, engine_start_cb cb, void *ud)
{
    if (e->closing) {
        cb(ud, ENGINE_ERR_UNAVAILABLE, NULL);
        return;
    }
    if (mode_name && !engine_mode(e, mode_name)) {
        cb(ud, ENGINE_ERR_BAD_MODE, NULL);
        return;
    }
    if (engine__find(e, session_id)) {
        cb(ud, ENGINE_ERR_RUN_ACTIVE, NULL);
        return;
    }
    /* A queued run takes the place of the run whose end starts it, so the
     * limit of runs does not leave it waiting behind a run that is over. */
    if (how != ENGINE__FROM_QUEUE && e->active + e->starting >= (size_t)e->d.opt.active_runs) {
        cb(ud, ENGINE_ERR_TOO_MANY, NULL);
        return;
    }
    db_hold_background();
    engine_start *j = xcalloc(1, sizeof *j);
    j->e = e;
    j->cb = cb;
    j->ud = ud;
    j->session_id = xstrdup(session_id);
    j->message = message ? xstrdup(message) : NULL;
    j->mode_req = mode_name ? xstrdup(mode_name) : NULL;
    j->client_note = client_note ? xstrdup(client_note) : NULL;
    j->regenerate = how == ENGINE__REGENERATE;
    j->from_queue = how == ENGINE__FROM_QUEUE;
    j->brief = brief;
    j->modes = xcalloc(e->nmodes ? e->nmodes : 1, sizeof *j->modes);
    memcpy(j->modes, e->modes, e->nmodes * sizeof *j->modes);
    j->nmodes = e->nmodes;
    j->instance_id = xstrdup(e->d.instance_id);
    j->now_ms = clock_wall_ms();
    j->context_tokens = e->d.opt.context_tokens;
    id_new(j->run_id, "run", j->now_ms);
    id_new(j->message_id, "msg", j->now_ms);
    e->starting++;
    if (e->d.start_in_log) {
        eventlog_op op = {.apply = engine__start_apply,
                          .done = engine__start_logged,
                          .arg = j,
                          .session_id = j->session_id,
                          .emitted = engine__start_emitted};
        /* Urgent: the run's first token waits on it. */
        eventlog_submit_urgent(e->d.log, &op);
        return;
    }
    dbpool_submit(e->d.pool, engine__start_work, engine__start_done, j);
}

/* ---- the queue (docs/runs.md, Queue and interrupt) ---- */

static void engine__queued_started(void *ud, int status, const json_t *obj)
{
    (void)ud;
    /* A session deleted with its run has no queue left to start. */
    if (status < 0 && status != ENGINE_ERR_NOT_FOUND)
        LOG(LOG_WARN, "a queued run could not start; it stays queued", "status=%d", status);
    else if (status == 0)
        LOG(LOG_INFO, "a queued run started", "run_id=%s",
            json_string_value(json_object_get(obj, "id")));
}

static void engine__start_queued(engine *e, const char *session_id)
{
    engine__start(e, session_id, NULL, NULL, NULL, ENGINE__FROM_QUEUE, false,
                  engine__queued_started, NULL);
}

/* How often a queue request looks at the session again when the active
 * run stopped between its look and its write. */
#define ENGINE__QUEUE_TRIES 3

/* A run sent while another may be active (engine_submit_run). */
typedef struct engine_queue {
    engine *e;
    engine_start_cb cb;
    void *ud;
    char *session_id, *message, *mode_req;
    bool interrupt;
    bool brief; /* a run started at once: as engine_submit_run's brief */
    int tries;
    char run_id[ID_MAX];
    int64_t now_ms;
    /* out of the look, on a pool thread */
    int status;         /* 0: a run is active, 1: none is, else ENGINE_ERR_* */
    char *session_mode; /* the session's mode */
    int put_rc;         /* what the queue write answered */
} engine_queue;

static void engine__queue_free(engine_queue *q)
{
    free(q->session_id);
    free(q->message);
    free(q->mode_req);
    free(q->session_mode);
    free(q);
}

static void engine__queue_look(engine_queue *q);

static void engine__queue_look_work(store *st, void *arg)
{
    engine_queue *q = arg;
    store_session ses = {0};
    int rc = store_session_get(st, q->session_id, NULL, &ses);
    if (rc < 0)
        q->status = rc == STORE_NOT_FOUND ? ENGINE_ERR_NOT_FOUND : ENGINE_ERR_UNAVAILABLE;
    else if (ses.queued_run_id)
        q->status = ENGINE_ERR_QUEUE_FULL;
    else
        q->status = ses.active_run_id ? 0 : 1;
    free(q->session_mode);
    q->session_mode = rc == 0 && ses.mode ? xstrdup(ses.mode) : NULL;
    store_session_cleanup(&ses);
}

/* The queue write, on the writer thread: it fails (and the request looks
 * again) when the active run stopped or another run was queued since the
 * look, so that no run is ever left queued behind a run that is over. */
static int engine__queue_apply(store *st, void *arg)
{
    engine_queue *q = arg;
    q->put_rc = store_queue_put(st, q->session_id, q->run_id, q->message, q->mode_req, q->now_ms);
    return q->put_rc;
}

/* The queued run's object: what GET /api/runs/{id} answers for it. */
static json_t *engine__queue_object(engine_queue *q)
{
    const mode *m = engine_mode(q->e, q->mode_req ? q->mode_req : q->session_mode);
    if (!m) m = engine_mode(q->e, MODE_DEFAULT);
    store_session ses = {.id = q->session_id,
                         .mode = q->mode_req ? q->mode_req : q->session_mode,
                         .queued_run_id = q->run_id,
                         .queued_ms = q->now_ms};
    store_run row = {0};
    json_t *obj = NULL;
    if (m && store_queue_row(NULL, &ses, &m->limits, &row) == 0) obj = objects_run(&row);
    store_run_cleanup(&row);
    return obj;
}

/* On a pool thread: tells the instance that runs the session's active run
 * to stop it (an interrupt sent to another instance). */
static int engine__notify_owner(store *st, const char *session_id, const char *instance,
                                control_kind kind, const char *mode_name, store_run *out);

typedef struct engine_interrupt {
    char *session_id;
    const char *instance_id; /* the engine's, which outlives the job */
} engine_interrupt;

static void engine__interrupt_work(store *st, void *arg)
{
    engine_interrupt *x = arg;
    if (engine__notify_owner(st, x->session_id, x->instance_id, CONTROL_STOP, NULL, NULL) < 0)
        LOG(LOG_WARN, "cannot pass an interrupt to the run's instance",
            "session_id=%s error=\"%s\"", x->session_id, store_errmsg(st));
}

static void engine__interrupt_done(void *arg)
{
    engine_interrupt *x = arg;
    free(x->session_id);
    free(x);
}

static void engine__stop_local(run *r, run_object_cb cb, void *ud);

/* Stops the session's active run for the run queued behind it: here, or
 * through its own instance. Its end then starts the queued run. */
static void engine__interrupt(engine *e, const char *session_id)
{
    run *r = engine__find(e, session_id);
    if (r) {
        if (!run_is_finishing(r)) engine__stop_local(r, NULL, NULL);
        return;
    }
    if (!e->d.cluster || e->closing) return;
    engine_interrupt *x = xcalloc(1, sizeof *x);
    x->session_id = xstrdup(session_id);
    x->instance_id = e->d.instance_id;
    dbpool_submit(e->d.pool, engine__interrupt_work, engine__interrupt_done, x);
}

static void engine__queue_applied(void *arg, evt *ev, int status)
{
    (void)ev;
    engine_queue *q = arg;
    engine *e = q->e;
    if (status < 0 && q->put_rc == STORE_CONFLICT && ++q->tries < ENGINE__QUEUE_TRIES &&
        !e->closing) {
        engine__queue_look(q);
        return;
    }
    if (status < 0) {
        q->cb(q->ud, ENGINE_ERR_UNAVAILABLE, NULL);
        engine__queue_free(q);
        return;
    }
    LOG(LOG_INFO, "a run was queued", "session_id=%s run_id=%s interrupt=%d", q->session_id,
        q->run_id, q->interrupt);
    json_t *obj = engine__queue_object(q);
    q->cb(q->ud, obj ? 0 : ENGINE_ERR_BAD_MODE, obj);
    json_decref(obj);
    if (q->interrupt) engine__interrupt(e, q->session_id);
    engine__queue_free(q);
}

/* A start that the look sent ahead (no run was active): when a run
 * became active in between, the request looks again and queues. */
static void engine__queue_started(void *ud, int status, const json_t *obj)
{
    engine_queue *q = ud;
    if (status == ENGINE_ERR_RUN_ACTIVE && ++q->tries < ENGINE__QUEUE_TRIES && !q->e->closing) {
        engine__queue_look(q);
        return;
    }
    q->cb(q->ud, status, obj);
    engine__queue_free(q);
}

static void engine__queue_looked(void *arg)
{
    engine_queue *q = arg;
    engine *e = q->e;
    if (q->status < 0 || e->closing) {
        q->cb(q->ud, e->closing ? ENGINE_ERR_UNAVAILABLE : q->status, NULL);
        engine__queue_free(q);
        return;
    }
    if (q->status == 1) {
        engine__start(e, q->session_id, q->message, q->mode_req, NULL, ENGINE__MESSAGE, q->brief,
                      engine__queue_started, q);
        return;
    }
    q->now_ms = clock_wall_ms();
    id_new(q->run_id, "run", q->now_ms);
    evt_origin o = {q->session_id, q->run_id, q->now_ms};
    eventlog_op op = {engine__queue_apply,
                      engine__queue_applied,
                      q,
                      evt_run_queued(&o, q->message, q->mode_req, q->interrupt),
                      NULL,
                      NULL};
    eventlog_submit(e->d.log, &op);
}

static void engine__queue_look(engine_queue *q)
{
    dbpool_submit(q->e->d.pool, engine__queue_look_work, engine__queue_looked, q);
}

void engine_submit_run(engine *e, const char *session_id, const char *message,
                       const char *mode_name, engine_if_active how, bool brief, engine_start_cb cb,
                       void *ud)
{
    if (how == ENGINE_IF_ACTIVE_REJECT) {
        engine_start_run_noted(e, session_id, message, mode_name, NULL, brief, cb, ud);
        return;
    }
    if (e->closing) {
        cb(ud, ENGINE_ERR_UNAVAILABLE, NULL);
        return;
    }
    if (mode_name && !engine_mode(e, mode_name)) {
        cb(ud, ENGINE_ERR_BAD_MODE, NULL);
        return;
    }
    engine_queue *q = xcalloc(1, sizeof *q);
    q->e = e;
    q->cb = cb;
    q->ud = ud;
    q->session_id = xstrdup(session_id);
    q->message = xstrdup(message);
    q->mode_req = mode_name ? xstrdup(mode_name) : NULL;
    q->interrupt = how == ENGINE_IF_ACTIVE_INTERRUPT;
    q->brief = brief;
    engine__queue_look(q);
}

/* ---- stopping ---- */

/*
 * A stop request. With no run of the session here, a pool job looks at the
 * session: it does not exist, it has no active run, or (deps.cluster) its
 * active run belongs to another instance, which is then sent a control
 * message; the request waits for that run to stop (polling its row) for at
 * most ENGINE_REMOTE_WAIT_MS before it answers.
 */
typedef struct engine_stop {
    engine *e;
    engine_start_cb cb;
    void *ud;
    char *session_id;
    int status;
    bool remote;          /* the run is another instance's */
    bool reading;         /* a read of its row is in flight */
    store_run row;        /* the remote run as last read */
    store_session queued; /* the session as read, when it had a queued run */
    store_run dropped;    /* that queued run, dropped */
    json_t *dropped_obj;  /* its object once the drop is written, else NULL */
    int64_t deadline;     /* monotonic ms */
    struct event *timer;
    struct engine_stop *next; /* in e->waits */
} engine_stop;

#define ENGINE_REMOTE_POLL_MS 50

static void engine__stop_free(engine_stop *s)
{
    if (s->timer) event_free(s->timer);
    store_run_cleanup(&s->row);
    store_session_cleanup(&s->queued);
    store_run_cleanup(&s->dropped);
    json_decref(s->dropped_obj);
    free(s->session_id);
    free(s);
}

static void engine__stop_reply(void *ud, const json_t *obj)
{
    engine_stop *s = ud;
    s->cb(s->ud, 0, obj);
    engine__stop_free(s);
}

/*
 * On a pool thread: when the session's active run is running on another
 * instance, sends that instance a control message and returns 1 with the
 * run in *out; 0 when there is nothing to send; negative on failure.
 */
static int engine__notify_owner(store *st, const char *session_id, const char *instance,
                                control_kind kind, const char *mode_name, store_run *out)
{
    store_session ses = {0};
    int rc = store_session_get(st, session_id, NULL, &ses);
    if (rc < 0 || !ses.active_run_id) {
        store_session_cleanup(&ses);
        return rc < 0 ? rc : 0;
    }
    store_run row = {0};
    rc = store_run_get(st, ses.active_run_id, &row);
    store_session_cleanup(&ses);
    if (rc == STORE_NOT_FOUND) return 0;
    if (rc < 0) return rc;
    int sent = 0;
    if (strcmp(row.status, "running") == 0 && row.owner_instance &&
        strcmp(row.owner_instance, instance) != 0) {
        control_msg msg = {
            .kind = kind, .instance = row.owner_instance, .run_id = row.id, .mode_name = mode_name};
        char *text = control_encode(&msg);
        sent = !text || store_notify(st, STORE_CONTROL_CHANNEL, text) < 0 ? DB_ERR : 1;
        free(text);
    }
    if (sent == 1 && out) {
        *out = row;
    } else {
        store_run_cleanup(&row);
    }
    return sent;
}

/* With no run here, the answer depends on the session. */
static void engine__stop_check(store *st, void *arg)
{
    engine_stop *s = arg;
    store_session ses = {0};
    int rc = store_session_get(st, s->session_id, NULL, &ses);
    s->status = rc == STORE_NOT_FOUND ? ENGINE_ERR_NOT_FOUND
                : rc < 0              ? ENGINE_ERR_UNAVAILABLE
                                      : ENGINE_ERR_NO_RUN;
    bool active = rc == 0 && ses.active_run_id;
    store_session_cleanup(&ses);
    if (!active || !s->e->d.cluster) return;
    rc = engine__notify_owner(st, s->session_id, s->e->d.instance_id, CONTROL_STOP, NULL, &s->row);
    if (rc < 0) s->status = ENGINE_ERR_UNAVAILABLE;
    if (rc == 1) {
        s->remote = true;
        s->status = 0;
    }
}

static void engine__wait_unlink(engine_stop *s)
{
    for (engine_stop **pp = &s->e->waits; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
}

/* Answers a remote stop with the run as last read. */
static void engine__wait_answer(engine_stop *s)
{
    engine__wait_unlink(s);
    json_t *obj = objects_run(&s->row);
    s->cb(s->ud, 0, obj);
    json_decref(obj);
    engine__stop_free(s);
}

static void engine__wait_read(store *st, void *arg)
{
    engine_stop *s = arg;
    store_run row = {0};
    if (store_run_get(st, s->row.id, &row) == 0) {
        store_run_cleanup(&s->row);
        s->row = row;
    }
}

static void engine__wait_read_done(void *arg)
{
    engine_stop *s = arg;
    s->reading = false;
    if (s->e->closing || strcmp(s->row.status, "running") != 0 || clock_mono_ms() >= s->deadline) {
        engine__wait_answer(s);
        return;
    }
    struct timeval tv = {0, ENGINE_REMOTE_POLL_MS * 1000};
    evtimer_add(s->timer, &tv);
}

static void engine__wait_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    engine_stop *s = arg;
    s->reading = true;
    dbpool_submit(s->e->d.pool, engine__wait_read, engine__wait_read_done, s);
}

static void engine__stop_checked(void *arg)
{
    engine_stop *s = arg;
    engine *e = s->e;
    if (!s->remote && s->status == ENGINE_ERR_NO_RUN && s->dropped_obj) {
        /* Only a queued run was there to stop. */
        s->cb(s->ud, 0, s->dropped_obj);
        engine__stop_free(s);
        return;
    }
    if (!s->remote) {
        s->cb(s->ud, s->status, NULL);
        engine__stop_free(s);
        return;
    }
    LOG(LOG_INFO, "stop sent to the run's instance", "run_id=%s instance=%s", s->row.id,
        s->row.owner_instance);
    s->next = e->waits;
    e->waits = s;
    if (e->closing) {
        engine__wait_answer(s);
        return;
    }
    s->deadline = clock_mono_ms() + ENGINE_REMOTE_WAIT_MS;
    s->timer = evtimer_new(e->d.base, engine__wait_tick, s);
    struct timeval tv = {0, ENGINE_REMOTE_POLL_MS * 1000};
    evtimer_add(s->timer, &tv);
}

/* Stops a run of this instance on request; cb (may be NULL) gets the run
 * once its run_stopped is committed. */
static void engine__stop_local(run *r, run_object_cb cb, void *ud)
{
    char detail[128];
    json_t *o = run_to_json(r);
    json_t *usage = json_object_get(o, "usage");
    snprintf(detail, sizeof detail, "stopped on request after %lld step%s",
             (long long)json_integer_value(json_object_get(usage, "steps")),
             json_integer_value(json_object_get(usage, "steps")) == 1 ? "" : "s");
    json_decref(o);
    run_stop(r, STOP_USER_STOPPED, detail, cb, ud);
}

/* The stop itself, once the session's queued run is dropped. */
static void engine__stop_go(engine_stop *s)
{
    run *r = engine__find(s->e, s->session_id);
    if (!r) {
        dbpool_submit(s->e->d.pool, engine__stop_check, engine__stop_checked, s);
        return;
    }
    engine__stop_local(r, engine__stop_reply, s);
}

#define ENGINE__DROP_DETAIL "dropped from the queue by a stop request before it started"

/* On a pool thread: the session's queued run, if it has one. */
static void engine__drop_look(store *st, void *arg)
{
    engine_stop *s = arg;
    store_session ses = {0};
    if (store_session_get(st, s->session_id, NULL, &ses) == 0 && ses.queued_run_id)
        store_session_copy(&s->queued, &ses);
    store_session_cleanup(&ses);
}

/* The drop's write: it changes nothing (and fails) when the queued run
 * started or was dropped since the look. */
static int engine__drop_apply(store *st, void *arg)
{
    engine_stop *s = arg;
    return store_queue_drop(st, &s->dropped);
}

/* After a drop: the stop goes on, or, for a drop at a run's end (no cb),
 * all is done. */
static void engine__drop_next(engine_stop *s)
{
    if (!s->cb) {
        engine__stop_free(s);
        return;
    }
    engine__stop_go(s);
}

static void engine__drop_done(void *arg, evt *ev, int status)
{
    (void)ev;
    engine_stop *s = arg;
    if (status == 0) {
        LOG(LOG_INFO, "a queued run was dropped by a stop", "run_id=%s", s->dropped.id);
        s->dropped_obj = objects_run(&s->dropped);
    }
    engine__drop_next(s);
}

/*
 * A stop drops the session's queued run: the dropped run gets a runs row
 * (stopped, user_stopped) and its run_stopped event. For a run of this
 * instance, the stop reaches the run at once (a run that is finishing
 * answers with its end) and the run's end drops the queue instead of
 * starting it; otherwise the queue is dropped first, then the stop goes
 * to the run's instance, whose end then finds nothing to start.
 */
static void engine__drop_looked(void *arg)
{
    engine_stop *s = arg;
    engine *e = s->e;
    const mode *m =
        s->queued.queued_run_id
            ? engine_mode(e, s->queued.queued_mode ? s->queued.queued_mode : s->queued.mode)
            : NULL;
    if (!m && s->queued.queued_run_id) m = engine_mode(e, MODE_DEFAULT);
    if (!m || e->closing || store_queue_row(NULL, &s->queued, &m->limits, &s->dropped) != 0) {
        engine__drop_next(s);
        return;
    }
    store_queue_row_dropped(&s->dropped, STOP_USER_STOPPED, ENGINE__DROP_DETAIL, clock_wall_ms());
    eventlog_op op = {engine__drop_apply,
                      engine__drop_done,
                      s,
                      store_queue_dropped_event(&s->dropped),
                      NULL,
                      NULL};
    eventlog_submit(e->d.log, &op);
}

void engine_stop_run(engine *e, const char *session_id, engine_start_cb cb, void *ud)
{
    engine_stop *s = xcalloc(1, sizeof *s);
    s->e = e;
    s->cb = cb;
    s->ud = ud;
    s->session_id = xstrdup(session_id);
    run *r = engine__find(e, session_id);
    if (r) {
        engine__drop_after(e, session_id);
        engine__stop_local(r, engine__stop_reply, s);
        return;
    }
    dbpool_submit(e->d.pool, engine__drop_look, engine__drop_looked, s);
}

static void engine__drop_queue(engine *e, const char *session_id)
{
    engine_stop *s = xcalloc(1, sizeof *s);
    s->e = e;
    s->session_id = xstrdup(session_id);
    dbpool_submit(e->d.pool, engine__drop_look, engine__drop_looked, s);
}

/* ---- approvals and questions ---- */

void engine_decide_approval(engine *e, const char *session_id, const engine_decision *d,
                            engine_approval_cb cb, void *ud)
{
    run *r = engine__find(e, session_id);
    if (!r || run_decide(r, d, cb, ud) != 0) cb(ud, ENGINE_ERR_NOT_FOUND, NULL);
}

void engine_answer_input(engine *e, const char *session_id, const engine_answer *a,
                         engine_input_cb cb, void *ud)
{
    run *r = engine__find(e, session_id);
    if (!r || run_answer_input(r, a, cb, ud) != 0) cb(ud, ENGINE_ERR_NOT_FOUND, NULL);
}

static run *engine__find_id(const engine *e, const char *run_id);

/* A decision stored already (by another instance, or before the run's own
 * write), read on a pool thread and applied to the run on the loop. */
typedef struct engine_fetch {
    engine *e;
    bool input;
    char run_id[ID_MAX], session_id[ID_MAX], id[ID_MAX];
    int rc;
    store_approval apr;
    store_input inp;
} engine_fetch;

static void engine__fetch_work(store *st, void *arg)
{
    engine_fetch *f = arg;
    f->rc = f->input ? store_input_get(st, f->session_id, f->id, &f->inp)
                     : store_approval_get(st, f->session_id, f->id, &f->apr);
}

static void engine__fetch_done(void *arg)
{
    engine_fetch *f = arg;
    run *r = f->rc == 0 && !f->e->closing ? engine__find_id(f->e, f->run_id) : NULL;
    if (r && f->input)
        run_apply_input(r, &f->inp);
    else if (r)
        run_apply_approval(r, &f->apr);
    if (f->rc < 0)
        LOG(LOG_WARN, "cannot read a decision stored elsewhere", "run_id=%s id=%s status=%d",
            f->run_id, f->id, f->rc);
    store_approval_cleanup(&f->apr);
    store_input_cleanup(&f->inp);
    free(f);
}

static void engine__fetch(engine *e, const char *run_id, const char *session_id, bool input,
                          const char *id)
{
    engine_fetch *f = xcalloc(1, sizeof *f);
    f->e = e;
    f->input = input;
    snprintf(f->run_id, sizeof f->run_id, "%s", run_id);
    snprintf(f->session_id, sizeof f->session_id, "%s", session_id);
    snprintf(f->id, sizeof f->id, "%s", id);
    dbpool_submit(e->d.pool, engine__fetch_work, engine__fetch_done, f);
}

static void engine__on_taken(void *ud, run *r, bool input, const char *id)
{
    engine__fetch(ud, run_get_id(r), run_get_session_id(r), input, id);
}

int engine_owner_elsewhere(store *st, const char *instance, const char *run_id, char **owner)
{
    store_run row = {0};
    int rc = store_run_get(st, run_id, &row);
    if (rc == STORE_NOT_FOUND) return 0;
    if (rc < 0) return rc;
    int elsewhere = strcmp(row.status, "running") == 0 && row.owner_instance &&
                    strcmp(row.owner_instance, instance) != 0;
    if (elsewhere) *owner = xstrdup(row.owner_instance);
    store_run_cleanup(&row);
    return elsewhere;
}

int engine_send_decided(store *st, const char *owner, const char *run_id, bool input,
                        const char *id)
{
    control_msg msg = {.kind = input ? CONTROL_INPUT_ANSWERED : CONTROL_APPROVAL_DECIDED,
                       .instance = owner,
                       .run_id = run_id,
                       .item_id = id};
    char *text = control_encode(&msg);
    int rc = !text || store_notify(st, STORE_CONTROL_CHANNEL, text) < 0 ? DB_ERR : 0;
    free(text);
    return rc;
}

/* ---- mode changes and control messages ---- */

typedef struct engine_mode_job {
    char *session_id, *mode_name;
    const char *instance_id; /* the engine's, which outlives the job */
} engine_mode_job;

static void engine__mode_work(store *st, void *arg)
{
    engine_mode_job *j = arg;
    int rc =
        engine__notify_owner(st, j->session_id, j->instance_id, CONTROL_MODE, j->mode_name, NULL);
    if (rc < 0)
        LOG(LOG_WARN, "cannot pass a mode change to the run's instance",
            "session_id=%s error=\"%s\"", j->session_id, store_errmsg(st));
}

static void engine__mode_done(void *arg)
{
    engine_mode_job *j = arg;
    free(j->session_id);
    free(j->mode_name);
    free(j);
}

void engine_session_mode_changed(engine *e, const char *session_id, const char *mode_name)
{
    run *r = engine__find(e, session_id);
    const mode *m = engine_mode(e, mode_name);
    if (r && m) {
        run_set_mode(r, m);
        return;
    }
    if (r || !m || !e->d.cluster || e->closing) return;
    engine_mode_job *j = xcalloc(1, sizeof *j);
    j->session_id = xstrdup(session_id);
    j->mode_name = xstrdup(mode_name);
    j->instance_id = e->d.instance_id;
    dbpool_submit(e->d.pool, engine__mode_work, engine__mode_done, j);
}

static run *engine__find_id(const engine *e, const char *run_id)
{
    for (engine_entry *x = e->ids[engine__bucket(run_id)]; x; x = x->by_id)
        if (strcmp(run_get_id(x->r), run_id) == 0) return x->r;
    return NULL;
}

void engine_control(engine *e, const control_msg *m)
{
    if (m->kind == CONTROL_PUT_MODE) {
        if (strcmp(m->instance, CONTROL_EVERY) == 0) engine__mode_put_from(e, m);
        return;
    }
    if (m->kind != CONTROL_STOP && m->kind != CONTROL_MODE && m->kind != CONTROL_APPROVAL_DECIDED &&
        m->kind != CONTROL_INPUT_ANSWERED)
        return;
    if (strcmp(m->instance, e->d.instance_id) != 0) return;
    run *r = engine__find_id(e, m->run_id);
    if (!r || run_is_finishing(r)) return;
    if (m->kind == CONTROL_APPROVAL_DECIDED || m->kind == CONTROL_INPUT_ANSWERED) {
        LOG(LOG_INFO, "a decision stored through another instance", "run_id=%s id=%s", m->run_id,
            m->item_id);
        engine__fetch(e, m->run_id, run_get_session_id(r), m->kind == CONTROL_INPUT_ANSWERED,
                      m->item_id);
    } else if (m->kind == CONTROL_STOP) {
        LOG(LOG_INFO, "stop requested through another instance", "run_id=%s", m->run_id);
        engine__stop_local(r, NULL, NULL);
    } else if (engine_mode(e, m->mode_name)) {
        run_set_mode(r, engine_mode(e, m->mode_name));
    }
}

/* ---- heartbeats ---- */

typedef struct engine_beat {
    engine *e;
    char (*ids)[ID_MAX];
    int *alive; /* per run: 1 still running, 0 stopped elsewhere, < 0 failed */
    size_t n;
    int64_t now_ms;
} engine_beat;

static void engine__beat_work(store *st, void *arg)
{
    engine_beat *b = arg;
    for (size_t i = 0; i < b->n; i++) b->alive[i] = store_run_beat(st, b->ids[i], b->now_ms);
}

static void engine__beat_done(void *arg)
{
    engine_beat *b = arg;
    engine *e = b->e;
    e->beating = false;
    for (size_t i = 0; i < b->n && !e->closing; i++) {
        if (b->alive[i] != 0) continue;
        run *r = engine__find_id(e, b->ids[i]);
        if (r && !run_is_finishing(r))
            run_abandon(r, "another instance stopped the run while this one could not record it");
    }
    free(b->ids);
    free(b->alive);
    free(b);
}

void engine_heartbeat(engine *e, dbpool *pool)
{
    if (e->beating || e->closing || e->active == 0) return;
    engine_beat *b = xcalloc(1, sizeof *b);
    b->e = e;
    b->ids = xcalloc(e->active, sizeof *b->ids);
    b->alive = xcalloc(e->active, sizeof *b->alive);
    b->now_ms = clock_wall_ms();
    for (engine_entry *x = e->runs; x && b->n < e->active; x = x->next)
        if (!run_is_finishing(x->r)) snprintf(b->ids[b->n++], ID_MAX, "%s", run_get_id(x->r));
    e->beating = true;
    dbpool_submit(pool, engine__beat_work, engine__beat_done, b);
}

/* ---- life cycle ---- */

/* A write of a run failed (a read-only or full disk, a lost database): the
 * run cannot go on being recorded, so it stops. Its last write will most
 * likely fail too; the run then waits, unrecorded, until the database
 * takes that write (run.c), so that its session is released with it. */
static void engine__write_failed(void *ud, const char *run_id, int status)
{
    engine *e = ud;
    for (engine_entry *x = e->runs; x; x = x->next) {
        if (strcmp(run_get_id(x->r), run_id) != 0) continue;
        if (!run_is_finishing(x->r)) {
            LOG(LOG_ERROR, "a write of the run failed; stopping it", "run_id=%s status=%d", run_id,
                status);
            run_stop(x->r, STOP_INTERRUPTED, RUN_WRITE_FAILED_DETAIL, NULL, NULL);
        }
        return;
    }
}

void engine_metrics_register(void)
{
    run_metrics_register();
}

engine *engine_new(const engine_deps *deps)
{
    engine *e = xcalloc(1, sizeof *e);
    e->d = *deps;
    e->rec.log = deps->log;
    e->rec.on_fail = engine__write_failed;
    e->rec.ud = e;
    engine_load_modes(e, mode_presets(), MODE_PRESET_COUNT);
    health_stops_init(&e->stops);
    if (!e->d.chain && e->d.model) {
        e->own_chain = llm_chain_new(LLM_CHAIN_REST_MS_DEFAULT);
        llm_chain_add(e->own_chain, "primary", e->d.model, false, NULL);
        e->d.chain = e->own_chain;
    }
    return e;
}

llm_chain *engine_chain(const engine *e)
{
    return e->d.chain;
}

const health_stops *engine_stops(const engine *e)
{
    return &e->stops;
}

void engine_shutdown(engine *e)
{
    e->closing = true;
    /* A run whose end waits for the database gets one last try; if it
     * fails, the next start (or another instance) recovers the run as
     * after a crash. */
    for (engine_entry *x = e->runs; x; x = x->next) {
        run_stop(x->r, STOP_INTERRUPTED, "the server shut down during the run", NULL, NULL);
        run_last_try(x->r);
    }
    /* Stop requests waiting for another instance answer now; one whose
     * read is in flight answers when it returns. */
    for (engine_stop *s = e->waits, *next; s; s = next) {
        next = s->next;
        if (!s->reading) engine__wait_answer(s);
    }
}

void engine_free(engine *e)
{
    if (!e) return;
    engine_shutdown(e);
    /* The runs' last events commit, and their done callbacks free them. */
    eventlog_flush(e->d.log);
    while (e->runs) {
        run *r = e->runs->r;
        (void)engine__unregister(e, r);
        run_free(r);
    }
    while (e->drops) {
        engine_drop *d = e->drops;
        e->drops = d->next;
        free(d);
    }
    free(e->modes);
    llm_chain_free(e->own_chain);
    free(e);
}
