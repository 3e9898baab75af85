/*
 * chatplane ask: runs one turn in-process, with the configured model, tools
 * and database, and no server. The assistant text goes to stdout as it
 * streams; status, tool lines, guardrail warnings, budget and the stop
 * reason go to stderr as plain lines. With --json every event of the run is
 * printed as one JSON line on stdout instead.
 */
#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/runtime.h"
#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* Exit codes of contract section 1. */
#define ASK_EXIT_STOPPED 3 /* a budget or guardrail stop */
#define ASK_EXIT_USER    4 /* user_stopped (Ctrl-C) */

typedef struct ask {
    runtime rt;
    struct event_base *base;
    bool json;
    char session_id[ID_MAX];
    char *run_id;
    int exit_code;
    int interrupts;
    bool done;
    bool at_line_start; /* stdout's last byte was a newline (or nothing yet) */
} ask;

static const char *ask__str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int ask__exit_for(const char *reason)
{
    if (strcmp(reason, "completed") == 0) return CLI_EXIT_OK;
    if (strcmp(reason, "user_stopped") == 0) return ASK_EXIT_USER;
    if (strncmp(reason, "max_", 4) == 0 || strcmp(reason, "loop_detected") == 0 ||
        strcmp(reason, "repeated_failures") == 0 || strcmp(reason, "no_progress") == 0)
        return ASK_EXIT_STOPPED;
    return CLI_EXIT_FAIL; /* llm_error, interrupted */
}

/* One plain line on stderr, after ending the assistant text's line. */
static void ask__line(ask *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ask__line(ask *a, const char *fmt, ...)
{
    if (!a->at_line_start) {
        fputc('\n', stdout);
        fflush(stdout);
        a->at_line_start = true;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void ask__budget_line(ask *a, const json_t *f)
{
    const json_t *l = json_object_get(f, "limits"), *u = json_object_get(f, "usage");
    static const char *const dims[] = {"steps", "tokens", "tool_calls", "retries"};
    buf b;
    buf_init(&b, 512);
    for (size_t i = 0; i < 4; i++) {
        const json_t *lim = json_object_get(l, dims[i]);
        buf_printf(&b, "%s%s %lld", i ? ", " : "", dims[i],
                   (long long)json_integer_value(json_object_get(u, dims[i])));
        if (json_is_integer(lim)) buf_printf(&b, "/%lld", (long long)json_integer_value(lim));
    }
    buf_printf(&b, ", seconds %.1f", json_number_value(json_object_get(u, "seconds")));
    ask__line(a, "budget: %s", b.data);
    buf_cleanup(&b);
}

/* Renders one event of the run in the plain view. */
static void ask__plain(ask *a, const evt *ev)
{
    const json_t *f = ev->fields;
    switch (ev->type) {
    case EVT_TOKEN: {
        const char *t = ask__str(f, "text");
        size_t n = strlen(t);
        fwrite(t, 1, n, stdout);
        fflush(stdout);
        if (n) a->at_line_start = t[n - 1] == '\n';
        break;
    }
    case EVT_STATUS:
        if (json_is_string(json_object_get(f, "detail")))
            ask__line(a, "status: %s (%s)", ask__str(f, "status"), ask__str(f, "detail"));
        else
            ask__line(a, "status: %s", ask__str(f, "status"));
        break;
    case EVT_TOOL_FINISHED:
        ask__line(a, "tool: %s %s %lldms%s%s", ask__str(f, "tool"), ask__str(f, "status"),
                  (long long)json_integer_value(json_object_get(f, "duration_ms")),
                  json_is_string(json_object_get(f, "error")) ? ": " : "", ask__str(f, "error"));
        break;
    case EVT_BUDGET:
        ask__budget_line(a, f);
        break;
    case EVT_GUARDRAIL:
        ask__line(a, "guardrail: %s %s: %s", ask__str(f, "check"), ask__str(f, "action"),
                  ask__str(f, "detail"));
        break;
    case EVT_ERROR:
        ask__line(a, "error: %s%s", ask__str(f, "message"),
                  json_is_true(json_object_get(f, "retryable")) ? " (retrying)" : "");
        break;
    case EVT_RUN_STOPPED:
        ask__line(a, "stopped: %s: %s%s", ask__str(f, "reason"), ask__str(f, "detail"),
                  json_is_true(json_object_get(f, "wrapped_up")) ? " (wrapped up)" : "");
        if (*ask__str(f, "recovery_suggestion"))
            ask__line(a, "suggestion: %s", ask__str(f, "recovery_suggestion"));
        break;
    default:
        break;
    }
}

static void ask__publish(void *ud, evt *ev)
{
    ask *a = ud;
    if (strcmp(ev->session_id, a->session_id) != 0) return;
    if (!a->run_id || !ev->run_id || strcmp(ev->run_id, a->run_id) != 0) return;
    if (a->json) {
        fwrite(ev->json, 1, ev->json_len, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    } else {
        ask__plain(a, ev);
    }
    if (ev->type == EVT_RUN_STOPPED) {
        a->exit_code = ask__exit_for(ask__str(ev->fields, "reason"));
        a->done = true;
        event_base_loopbreak(a->base);
    }
}

/* The run ended; when its last events could not be written, the published
 * run_stopped never comes, so this ends the wait. */
static void ask__finished(void *ud, const char *session_id, const char *run_id, int status)
{
    ask *a = ud;
    (void)session_id;
    if (!a->run_id || strcmp(run_id, a->run_id) != 0 || status >= 0) return;
    cli_fail("ask", CLI_EXIT_FAIL, "the run's last events could not be written to the database");
    a->exit_code = CLI_EXIT_FAIL;
    a->done = true;
    event_base_loopbreak(a->base);
}

static void ask__started(void *ud, int status, const json_t *run)
{
    ask *a = ud;
    if (status < 0) {
        static const char *const why[] = {"",
                                          "a run is already active in this session",
                                          "no active run",
                                          "nothing to continue",
                                          "too many runs",
                                          "the database is unavailable",
                                          "no such session",
                                          "unknown mode"};
        int i = -status;
        cli_fail("ask", CLI_EXIT_FAIL, "cannot start the run: %s",
                 i > 0 && i < (int)(sizeof why / sizeof why[0]) ? why[i] : "unknown error");
        a->exit_code = CLI_EXIT_FAIL;
        a->done = true;
        event_base_loopbreak(a->base);
        return;
    }
    a->run_id = xstrdup(ask__str(run, "id"));
}

static void ask__stopped(void *ud, int status, const json_t *run)
{
    (void)ud;
    (void)status;
    (void)run;
}

static void ask__on_sigint(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ask *a = arg;
    /* The first Ctrl-C stops the run cleanly; a second one leaves at once. */
    if (++a->interrupts > 1) _exit(ASK_EXIT_USER);
    engine_stop_run(a->rt.engine, a->session_id, ask__stopped, a);
}

/* Reads all of standard input (the message "-"), at most max bytes. */
static char *ask__read_stdin(size_t max)
{
    buf b;
    buf_init(&b, max);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        if (buf_append(&b, chunk, n) != 0) {
            buf_cleanup(&b);
            return NULL;
        }
    }
    while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
        b.data[--b.len] = '\0';
    return buf_detach(&b, NULL);
}

/* Finds or creates the session the turn runs in. */
static int ask__session(ask *a, const char *session, const char *mode_name)
{
    store *s = a->rt.db;
    if (session) {
        store_session ses = {0};
        int rc = store_session_get(s, session, NULL, &ses);
        store_session_cleanup(&ses);
        if (rc == STORE_NOT_FOUND)
            return cli_fail("ask", CLI_EXIT_USAGE, "no session '%s'", session);
        if (rc < 0) return cli_fail("ask", CLI_EXIT_FAIL, "%s", store_errmsg(s));
        snprintf(a->session_id, sizeof a->session_id, "%s", session);
        return CLI_EXIT_OK;
    }
    int64_t now = clock_wall_ms();
    id_new(a->session_id, "ses", now);
    store_session row = {.id = a->session_id,
                         .title = "",
                         .owner = NULL,
                         .mode = (char *)(mode_name ? mode_name : MODE_DEFAULT),
                         .status = "idle",
                         .created_ms = now,
                         .updated_ms = now};
    if (store_session_insert(s, &row) < 0)
        return cli_fail("ask", CLI_EXIT_FAIL, "cannot create a session: %s", store_errmsg(s));
    return CLI_EXIT_OK;
}

int cmd_ask(int argc, char **argv)
{
    static const char *const allowed[] = {"db", "config", NULL};
    ask a = {.exit_code = CLI_EXIT_FAIL, .at_line_start = true};
    config cfg;
    char *rest[argc > 0 ? argc : 1];
    int nrest, rc = cli_load_config("ask", allowed, argc - 1, argv + 1, &cfg, rest, &nrest);
    char *message = NULL;
    const char *mode_name = NULL, *session = NULL, *text = NULL;
    if (rc != CLI_EXIT_OK) goto out;
    for (int i = 0; i < nrest; i++) {
        const char *arg = rest[i];
        if (strcmp(arg, "--json") == 0) {
            a.json = true;
        } else if (strcmp(arg, "--mode") == 0 || strcmp(arg, "--session") == 0) {
            if (i + 1 >= nrest) {
                rc = cli_fail("ask", CLI_EXIT_USAGE, "%s needs a value", arg);
                goto out;
            }
            *(arg[2] == 'm' ? &mode_name : &session) = rest[++i];
        } else if (arg[0] == '-' && arg[1] == '-') {
            rc = cli_fail("ask", CLI_EXIT_USAGE, "unknown option '%s'; see 'chatplane help ask'",
                          arg);
            goto out;
        } else if (!text) {
            text = arg;
        } else {
            rc = cli_fail("ask", CLI_EXIT_USAGE, "unexpected argument '%s' (quote the message)",
                          arg);
            goto out;
        }
    }
    if (!text) {
        rc = cli_fail("ask", CLI_EXIT_USAGE, "a MESSAGE is needed (or - to read it from stdin)");
        goto out;
    }
    message = strcmp(text, "-") == 0 ? ask__read_stdin((size_t)cfg.message_bytes) : xstrdup(text);
    if (!message || !*message || strlen(message) > (size_t)cfg.message_bytes) {
        rc = cli_fail("ask", CLI_EXIT_USAGE, "the message must be between 1 and %lld bytes",
                      (long long)cfg.message_bytes);
        goto out;
    }

    log_min_level = LOG_WARN; /* the run itself is the output */
    a.base = event_base_new();
    char err[512];
    runtime_options opt = {
        .publish = ask__publish, .publish_ud = &a, .on_run_finished = ask__finished};
    if (runtime_start(&a.rt, &cfg, a.base, &opt, err, sizeof err) != 0) {
        rc = cli_fail("ask", CLI_EXIT_FAIL, "%s", err);
        event_base_free(a.base);
        goto out;
    }
    rc = ask__session(&a, session, mode_name);
    if (rc == CLI_EXIT_OK) {
        struct event *sig = evsignal_new(a.base, SIGINT, ask__on_sigint, &a);
        event_add(sig, NULL);
        engine_start_run(a.rt.engine, a.session_id, message, mode_name, ask__started, &a);
        if (!a.done) event_base_dispatch(a.base);
        event_free(sig);
        rc = a.exit_code;
        if (!a.json && !a.at_line_start) fputc('\n', stdout);
    }
    runtime_stop(&a.rt);
    event_base_free(a.base);
out:
    free(message);
    free(a.run_id);
    config_cleanup(&cfg);
    return rc;
}
