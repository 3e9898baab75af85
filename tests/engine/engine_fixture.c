/*
 * engine_fixture: the set-up of engine_fixture.h, in the order the runtime
 * uses (src/app/runtime.c): store and migrations, writer, read pool, tools,
 * model, engine; torn down in the reverse order.
 */
#include "engine_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <event2/event.h>

#include "lib/loopprio.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/dbpool.h"
#include "store/eventlog.h"

#define EFIX_SYSTEM_PROMPT "You are the test model."

/* The held tool is not read-only, so the default approval policy would
 * ask before every call of it: the suites of other features allow it by a
 * rule, as a configuration would. */
static const approval_rule efix__allow_held[] = {{"hold", APPROVAL_ALLOW}};

engine_options efix_default_options(void)
{
    engine_options o = {.active_runs = 4,
                        .context_tokens = 100000,
                        .system_prompt = EFIX_SYSTEM_PROMPT,
                        .approval_rules = efix__allow_held,
                        .approval_nrules = 1};
    return o;
}

static void efix__on_log_fd(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    eventlog_drain(arg);
}

static void efix__on_pool_fd(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dbpool_drain(arg);
}

/* Keeps each committed event as the JSON text the store holds. */
static void efix__publish(void *ud, evt *ev)
{
    efix *f = ud;
    json_error_t je;
    json_t *o = json_loadb(ev->json, ev->json_len, 0, &je);
    if (!o) fail_msg("a published event is not JSON: %s", je.text);
    json_array_append_new(f->events, o);
}

static void efix__on_finished(void *ud, const char *session_id, const char *run_id, int status)
{
    (void)session_id;
    (void)run_id;
    efix *f = ud;
    f->finished++;
    f->finished_status = status;
}

efix *efix_new(const scripted_step *steps, size_t n, const engine_options *opt)
{
    efix *f = xcalloc(1, sizeof *f);
    /* Every run logs its start and stop; the suites' output stays readable. */
    log_min_level = LOG_WARN;
    snprintf(f->dir, sizeof f->dir, "/tmp/chatplane-engine-XXXXXX");
    if (!mkdtemp(f->dir)) fail_msg("cannot make a temporary directory");
    snprintf(f->url, sizeof f->url, "sqlite:%s/test.db", f->dir);
    char err[512] = "";
    if (store_open(f->url, &f->db, err, sizeof err) != 0) fail_msg("store_open: %s", err);
    if (store_migrate(f->db, NULL, NULL, err, sizeof err) != 0) fail_msg("migrate: %s", err);
    f->events = json_array();
    /* The server's loop, so that runs and calls are ordered as there
     * (lib/loopprio.h). */
    f->base = loopprio_base_new();
    if (!f->base) fail_msg("loopprio_base_new failed");
    if (eventlog_start(f->url, efix__publish, f, &f->log, err, sizeof err) != 0)
        fail_msg("eventlog_start: %s", err);
    if (dbpool_start(f->url, 2, &f->pool, err, sizeof err) != 0) fail_msg("dbpool_start: %s", err);
    f->log_ev =
        event_new(f->base, eventlog_fd(f->log), EV_READ | EV_PERSIST, efix__on_log_fd, f->log);
    f->pool_ev =
        event_new(f->base, dbpool_fd(f->pool), EV_READ | EV_PERSIST, efix__on_pool_fd, f->pool);
    event_add(f->log_ev, NULL);
    event_add(f->pool_ev, NULL);
    f->tools = toolset_new(f->base);
    f->held = scripted_tool_new();
    toolset_add_source(f->tools, scripted_tool_source(f->held));
    f->model = scripted_llm_new(f->base, steps, n);
    engine_deps deps = {.base = f->base,
                        .log = f->log,
                        .pool = f->pool,
                        .model = scripted_llm_base(f->model),
                        .tools = f->tools,
                        .opt = opt ? *opt : efix_default_options(),
                        .instance_id = "ins_test",
                        .on_run_finished = efix__on_finished,
                        .ud = f,
                        /* As the server runs on SQLite. */
                        .start_in_log = true};
    f->e = engine_new(&deps);
    return f;
}

void efix_free(efix *f)
{
    if (!f) return;
    engine_shutdown(f->e);
    dbpool_stop(f->pool);
    engine_free(f->e);
    eventlog_stop(f->log);
    event_free(f->log_ev);
    event_free(f->pool_ev);
    toolset_free(f->tools);
    llm_free(scripted_llm_base(f->model));
    store_close(f->db);
    event_base_free(f->base);
    json_decref(f->events);
    json_decref(f->run);
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) print_error("cannot remove %s\n", f->dir);
    free(f);
}

void efix_set_mode(efix *f, const mode *m)
{
    mode all[MODE_PRESET_COUNT + 1];
    size_t n = MODE_PRESET_COUNT;
    memcpy(all, mode_presets(), sizeof(mode) * MODE_PRESET_COUNT);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i].name, m->name) == 0) {
            all[i] = *m;
            found = true;
        }
    }
    if (!found) all[n++] = *m;
    assert_int_equal(engine_load_modes(f->e, all, n), 0);
}

void efix_session(efix *f, const char *mode_name, char out[ID_MAX])
{
    int64_t now = clock_wall_ms();
    id_new(out, "ses", now);
    store_session row = {.id = out,
                         .title = "",
                         .mode = (char *)mode_name,
                         .status = "idle",
                         .created_ms = now,
                         .updated_ms = now};
    assert_int_equal(store_session_insert(f->db, &row), 0);
}

static void efix__answer(void *ud, int status, const json_t *run)
{
    efix *f = ud;
    f->answered = true;
    f->status = status;
    json_decref(f->run);
    f->run = run ? json_deep_copy(run) : NULL;
}

static bool efix__answered(efix *f, const void *arg)
{
    (void)arg;
    return f->answered;
}

void efix_start_async(efix *f, const char *session_id, const char *message, const char *mode_name)
{
    f->answered = false;
    engine_start_run(f->e, session_id, message, mode_name, efix__answer, f);
}

int efix_wait_answer(efix *f)
{
    efix_loop_until(f, efix__answered, NULL, 5000, "the answer to a request");
    return f->status;
}

int efix_start(efix *f, const char *session_id, const char *message, const char *mode_name,
               char run_id[ID_MAX])
{
    efix_start_async(f, session_id, message, mode_name);
    efix_wait_answer(f);
    if (f->status == 0 && run_id) {
        const char *id = json_string_value(json_object_get(f->run, "id"));
        assert_non_null(id);
        snprintf(run_id, ID_MAX, "%s", id);
    }
    return f->status;
}

int efix_stop(efix *f, const char *session_id)
{
    f->answered = false;
    engine_stop_run(f->e, session_id, efix__answer, f);
    efix_loop_until(f, efix__answered, NULL, 5000, "the answer to a stop");
    return f->status;
}

static void efix__on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

void efix_loop_until(efix *f, bool (*pred)(efix *f, const void *arg), const void *arg,
                     int64_t timeout_ms, const char *what)
{
    bool expired = false;
    struct event *dog = evtimer_new(f->base, efix__on_watchdog, &expired);
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000 * 1000)};
    evtimer_add(dog, &tv);
    while (!pred(f, arg) && !expired) event_base_loop(f->base, EVLOOP_ONCE);
    event_free(dog);
    if (!pred(f, arg)) fail_msg("waited %lld ms in vain for %s", (long long)timeout_ms, what);
}

static bool efix__stopped(efix *f, const void *arg)
{
    return f->finished > 0 && efix_count(f, arg, "run_stopped") > 0 &&
           !engine_active_run_id(f->e, json_string_value(json_object_get(
                                           efix_event(f, arg, "run_stopped", 0), "session_id")));
}

void efix_wait_stopped(efix *f, const char *run_id)
{
    efix_loop_until(f, efix__stopped, run_id, 5000, "the run to stop");
    /* Whatever the run still had queued commits; a second run_stopped or
     * any late event would be counted by the assertions that follow. */
    eventlog_flush(f->log);
    bool expired = false;
    struct event *dog = evtimer_new(f->base, efix__on_watchdog, &expired);
    struct timeval tv = {0, 20000};
    evtimer_add(dog, &tv);
    while (!expired) event_base_loop(f->base, EVLOOP_ONCE);
    event_free(dog);
    eventlog_flush(f->log);
    eventlog_drain(f->log);
}

static bool efix__model_waits(efix *f, const void *arg)
{
    (void)arg;
    return scripted_llm_waiting(f->model);
}

void efix_wait_model(efix *f)
{
    efix_loop_until(f, efix__model_waits, NULL, 5000, "the model call to wait");
}

static bool efix__tool_runs(efix *f, const void *arg)
{
    (void)arg;
    return scripted_tool_in_flight(f->held) > 0;
}

void efix_wait_tool(efix *f)
{
    efix_loop_until(f, efix__tool_runs, NULL, 5000, "the held tool to be called");
}

static const char *efix__str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "?";
}

static bool efix__of_run(const json_t *ev, const char *run_id)
{
    const char *r = json_string_value(json_object_get(ev, "run_id"));
    return r && strcmp(r, run_id) == 0;
}

char *efix_signature(const efix *f, const char *run_id)
{
    buf b;
    buf_init(&b, 1u << 20);
    size_t i;
    json_t *ev;
    json_array_foreach(f->events, i, ev)
    {
        if (!efix__of_run(ev, run_id)) continue;
        const char *type = efix__str(ev, "type");
        if (b.len) buf_append_str(&b, " ");
        if (strcmp(type, "message") == 0) {
            buf_printf(&b, "message:%s%s%s", efix__str(ev, "role"),
                       json_is_array(json_object_get(ev, "tool_calls")) ? "+calls" : "",
                       json_is_true(json_object_get(ev, "partial")) ? ":partial" : "");
        } else if (strcmp(type, "status") == 0) {
            buf_printf(&b, "status:%s", efix__str(ev, "status"));
        } else if (strcmp(type, "tool_started") == 0) {
            buf_printf(&b, "tool_started:%s", efix__str(ev, "tool"));
        } else if (strcmp(type, "tool_finished") == 0) {
            buf_printf(&b, "tool_finished:%s:%s", efix__str(ev, "tool"), efix__str(ev, "status"));
        } else if (strcmp(type, "guardrail") == 0) {
            buf_printf(&b, "guardrail:%s:%s", efix__str(ev, "check"), efix__str(ev, "action"));
        } else if (strcmp(type, "error") == 0) {
            buf_printf(&b, "error:%s", efix__str(ev, "code"));
        } else if (strcmp(type, "run_stopped") == 0) {
            buf_printf(&b, "run_stopped:%s", efix__str(ev, "reason"));
        } else if (strcmp(type, "input_requested") == 0) {
            buf_printf(&b, "input_requested:%s", efix__str(ev, "server"));
        } else if (strcmp(type, "input_answered") == 0) {
            buf_printf(&b, "input_answered:%s:%s", efix__str(ev, "action"),
                       efix__str(ev, "answered_by"));
        } else if (strcmp(type, "approval_requested") == 0) {
            buf_printf(&b, "approval_requested:%s", efix__str(ev, "tool"));
        } else if (strcmp(type, "approval_decided") == 0) {
            buf_printf(&b, "approval_decided:%s:%s", efix__str(ev, "decision"),
                       efix__str(ev, "decided_by"));
        } else {
            buf_append_str(&b, type);
        }
    }
    if (!b.data) return xstrdup("");
    return buf_detach(&b, NULL);
}

void efix_assert_events(const efix *f, const char *run_id, const char *want)
{
    char *got = efix_signature(f, run_id);
    if (strcmp(got, want) != 0) {
        print_error("events of %s:\n  got:  %s\n  want: %s\n", run_id, got, want);
        free(got);
        fail_msg("the run's events differ");
    }
    free(got);
}

json_t *efix_event(const efix *f, const char *run_id, const char *type, size_t n)
{
    size_t i;
    json_t *ev;
    json_array_foreach(f->events, i, ev)
    {
        if (!efix__of_run(ev, run_id) || strcmp(efix__str(ev, "type"), type) != 0) continue;
        if (n-- == 0) return ev;
    }
    return NULL;
}

size_t efix_count(const efix *f, const char *run_id, const char *type)
{
    size_t n = 0, i;
    json_t *ev;
    json_array_foreach(f->events, i, ev)
    {
        if (efix__of_run(ev, run_id) && strcmp(efix__str(ev, "type"), type) == 0) n++;
    }
    return n;
}

typedef struct efix_stored {
    const efix *f;
    const char *session_id;
    size_t next; /* index into f->events of the next event of the session */
    int64_t seq;
} efix_stored;

static int efix__stored_event(void *ud, int64_t seq, const char *type, const char *json, size_t len)
{
    efix_stored *s = ud;
    json_t *ev = NULL;
    while (s->next < json_array_size(s->f->events)) {
        json_t *x = json_array_get(s->f->events, s->next++);
        if (strcmp(efix__str(x, "session_id"), s->session_id) == 0) {
            ev = x;
            break;
        }
    }
    if (!ev)
        fail_msg("the store holds event %lld (%s) that was never published", (long long)seq, type);
    assert_int_equal(seq, ++s->seq);
    assert_int_equal(json_integer_value(json_object_get(ev, "seq")), seq);
    json_t *stored = json_loadb(json, len, 0, NULL);
    assert_non_null(stored);
    assert_true(json_equal(stored, ev));
    json_decref(stored);
    return 0;
}

void efix_assert_stored_events(efix *f, const char *session_id)
{
    efix_stored s = {.f = f, .session_id = session_id};
    assert_true(store_event_after(f->db, session_id, 0, 100000, efix__stored_event, &s) >= 0);
    /* Nothing was published that the store does not hold. */
    while (s.next < json_array_size(f->events)) {
        json_t *x = json_array_get(f->events, s.next++);
        if (strcmp(efix__str(x, "session_id"), session_id) == 0)
            fail_msg("event seq %lld was published but is not stored",
                     (long long)json_integer_value(json_object_get(x, "seq")));
    }
}

void efix_run_row(efix *f, const char *run_id, store_run *out)
{
    memset(out, 0, sizeof *out);
    assert_int_equal(store_run_get(f->db, run_id, out), 0);
}

void efix_messages(efix *f, const char *session_id, store_message **out, size_t *n)
{
    assert_int_equal(store_message_list(f->db, session_id, out, n), 0);
}
