/*
 * chatplane ask: runs one turn in-process, with the configured model, tools
 * and database, and no server. This file parses the command line, finds or
 * creates the session, starts the run, handles Ctrl-C and turns the stop
 * reason into the exit code; ask_view.c renders the run's events (JSON
 * lines, plain lines, or the live status line on a terminal).
 */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/runtime.h"
#include "cli/ask_form.h"
#include "cli/ask_view.h"
#include "cli/cli.h"
#include "core/stop.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/loopprio.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* Exit codes of a run's stop (docs/cli.md), by its exit class. */
static const int ask__exit_codes[] = {
    [STOP_EXIT_COMPLETED] = CLI_EXIT_OK,
    [STOP_EXIT_STOPPED] = 3, /* a budget or guardrail stop */
    [STOP_EXIT_USER] = 4,    /* user_stopped (Ctrl-C) */
    [STOP_EXIT_FAILED] = CLI_EXIT_FAIL,
};

typedef struct ask {
    runtime rt;
    struct event_base *base;
    ask_view *view;
    char session_id[ID_MAX];
    char *run_id;
    int exit_code;
    int interrupts;
    bool stop_pending; /* Ctrl-C came before the run had started */
    bool done;
    const char *approve; /* --approve: "all", "none", or NULL to ask or deny */
} ask;

#define ASK__NO_ONE "no one to approve in a non-interactive ask"

/* The exit code after a stop of this reason; a reason this version does not
 * know is a failure. */
static int cmd_ask__exit_for(const char *reason)
{
    stop_reason r;
    if (stop_reason_parse(reason, &r) != 0) return CLI_EXIT_FAIL;
    return ask__exit_codes[stop_reason_exit(r)];
}

static void cmd_ask__stopped(void *ud, int status, const json_t *run);

static void cmd_ask__decided(void *ud, int status, const json_t *approval)
{
    (void)ud;
    (void)approval;
    if (status < 0) LOG(LOG_WARN, "an approval could not be decided", "status=%d", status);
}

/*
 * Asks on the terminal about the call of an approval_requested event.
 * Returns 'y', 'n' or 'a'; end of input counts as 'n'. The loop waits
 * meanwhile, which is what the run does too.
 */
static int cmd_ask__prompt(ask *a, const evt *ev)
{
    const char *server = json_string_value(json_object_get(ev->fields, "server"));
    const char *tool = json_string_value(json_object_get(ev->fields, "tool"));
    const char *reason = json_string_value(json_object_get(ev->fields, "reason"));
    char *args = json_dumps(json_object_get(ev->fields, "arguments"), JSON_COMPACT);
    bool builtin = server && strcmp(server, "builtin") == 0;
    ask_view_end(a->view);
    for (;;) {
        fprintf(stderr, "approve %s%s%s %.200s%s ? [y]es/[n]o/[a]lways (%s) ",
                builtin ? "" : (server ? server : ""), builtin ? "" : "__", tool ? tool : "?",
                args ? args : "{}", args && strlen(args) > 200 ? "…" : "", reason ? reason : "");
        fflush(stderr);
        char line[64];
        if (!fgets(line, sizeof line, stdin)) {
            fputc('\n', stderr);
            free(args);
            return 'n';
        }
        int c = line[0] >= 'A' && line[0] <= 'Z' ? line[0] - 'A' + 'a' : line[0];
        if (c == 'y' || c == 'n' || c == 'a') {
            free(args);
            return c;
        }
    }
}

/* A tool call waits for approval: --approve decides it, else the person at
 * the terminal, else nobody can and it is denied. */
static void cmd_ask__approval(ask *a, const evt *ev)
{
    const char *id = json_string_value(json_object_get(ev->fields, "approval_id"));
    if (!id) return;
    engine_decision d = {.approval_id = id, .remember = APPROVAL_ONCE, .decided_by = "local"};
    if (a->approve) {
        d.approve = strcmp(a->approve, "all") == 0;
        if (!d.approve) d.reason = "ask --approve none";
    } else if (isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
        int c = cmd_ask__prompt(a, ev);
        d.approve = c != 'n';
        if (c == 'a') d.remember = APPROVAL_REMEMBER_RUN;
    } else {
        d.approve = false;
        d.reason = ASK__NO_ONE;
    }
    engine_decide_approval(a->rt.engine, a->session_id, &d, cmd_ask__decided, a);
}

static void cmd_ask__answered(void *ud, int status, const json_t *input)
{
    (void)ud;
    (void)input;
    if (status < 0) LOG(LOG_WARN, "a question could not be answered", "status=%d", status);
}

/* A tool's server asks a question: the person at the terminal fills in its
 * form; without a terminal, or with --approve none, nobody can and it is
 * declined (--approve all approves calls, it answers no question). */
static void cmd_ask__input(ask *a, const evt *ev)
{
    const char *id = json_string_value(json_object_get(ev->fields, "input_id"));
    if (!id) return;
    engine_answer ans = {.input_id = id, .action = ELICIT_DECLINE, .answered_by = "local"};
    json_t *content = NULL;
    bool none = a->approve && strcmp(a->approve, "none") == 0;
    if (!none && isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
        ask_view_end(a->view);
        const char *message = json_string_value(json_object_get(ev->fields, "message"));
        content = ask_form_prompt(stdin, stderr, message ? message : "",
                                  json_object_get(ev->fields, "schema"));
        if (content) {
            ans.action = ELICIT_ACCEPT;
            ans.content = content;
        }
    }
    engine_answer_input(a->rt.engine, a->session_id, &ans, cmd_ask__answered, a);
    json_decref(content);
}

static void cmd_ask__publish(void *ud, evt *ev)
{
    ask *a = ud;
    if (strcmp(ev->session_id, a->session_id) != 0) return;
    if (!a->run_id || !ev->run_id || strcmp(ev->run_id, a->run_id) != 0) return;
    ask_view_event(a->view, ev);
    if (ev->type == EVT_APPROVAL_REQUESTED && a->interrupts == 0) cmd_ask__approval(a, ev);
    if (ev->type == EVT_INPUT_REQUESTED && a->interrupts == 0) cmd_ask__input(a, ev);
    /* Whoever read the answer is gone (`ask … | head`): stop the run
     * cleanly, as Ctrl-C does, instead of leaving it running. */
    if (ferror(stdout) && a->interrupts == 0 && ev->type != EVT_RUN_STOPPED) {
        a->interrupts = 1;
        engine_stop_run(a->rt.engine, a->session_id, cmd_ask__stopped, a);
    }
    if (ev->type == EVT_RUN_STOPPED) {
        const char *reason = json_string_value(json_object_get(ev->fields, "reason"));
        a->exit_code = cmd_ask__exit_for(reason ? reason : "");
        a->done = true;
        event_base_loopbreak(a->base);
    }
}

/* The run ended; when its last events could not be written, the published
 * run_stopped never comes, so this ends the wait. */
static void cmd_ask__finished(void *ud, const char *session_id, const char *run_id, int status)
{
    ask *a = ud;
    (void)session_id;
    if (!a->run_id || strcmp(run_id, a->run_id) != 0 || status >= 0) return;
    ask_view_end(a->view);
    cli_fail("ask", CLI_EXIT_FAIL, "the run's last events could not be written to the database");
    a->exit_code = CLI_EXIT_FAIL;
    a->done = true;
    event_base_loopbreak(a->base);
}

static void cmd_ask__stopped(void *ud, int status, const json_t *run)
{
    (void)ud;
    (void)status;
    (void)run;
}

static void cmd_ask__started(void *ud, int status, const json_t *run)
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
    const char *id = json_string_value(json_object_get(run, "id"));
    a->run_id = xstrdup(id ? id : "");
    if (a->stop_pending) engine_stop_run(a->rt.engine, a->session_id, cmd_ask__stopped, a);
}

/* SIGINT and SIGTERM. The first stops the run cleanly (it ends
 * user_stopped, exit 4); a second one leaves at once. */
static void cmd_ask__on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ask *a = arg;
    if (++a->interrupts > 1) {
        ask_view_end(a->view);
        _exit(ask__exit_codes[STOP_EXIT_USER]);
    }
    ask_view_interrupted(a->view);
    if (a->run_id)
        engine_stop_run(a->rt.engine, a->session_id, cmd_ask__stopped, a);
    else
        a->stop_pending = true;
}

/* Reads all of standard input (the message "-"), at most max bytes. */
static char *cmd_ask__read_stdin(size_t max)
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

/* A --mode the engine does not know is a usage error listing the modes
 * (the engine itself would fall back to the default mode). */
static int cmd_ask__check_mode(ask *a, const char *mode_name)
{
    if (!mode_name || engine_mode(a->rt.engine, mode_name)) return CLI_EXIT_OK;
    buf names;
    buf_init(&names, 4096);
    for (size_t i = 0; i < engine_mode_count(a->rt.engine); i++)
        buf_printf(&names, "%s%s", i ? ", " : "", engine_mode_at(a->rt.engine, i)->name);
    cli_fail("ask", CLI_EXIT_USAGE, "--mode: no mode '%s' (the modes are %s)", mode_name,
             names.data ? names.data : "none");
    buf_cleanup(&names);
    return CLI_EXIT_USAGE;
}

/* Finds the session of --session, or creates a new one. */
static int cmd_ask__session(ask *a, const char *session, const char *mode_name)
{
    store *s = a->rt.db;
    if (session) {
        store_session ses = {0};
        int rc = store_session_get(s, session, NULL, &ses);
        store_session_cleanup(&ses);
        if (rc == STORE_NOT_FOUND)
            return cli_fail("ask", CLI_EXIT_USAGE, "--session: no session '%s'", session);
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

/* Runs the turn on the loop until its run_stopped event (or a failure to
 * start it) and returns the exit code. */
static int cmd_ask__run(ask *a, const char *message, const char *mode_name, bool json)
{
    ask_view_opts vo;
    /* A closed stdout shows up as a write error (see ask__publish), not as
     * a signal that kills the process mid-run. */
    signal(SIGPIPE, SIG_IGN);
    ask_view_detect(&vo, json, a->base);
    a->view = ask_view_new(&vo);
    struct event *sigint = evsignal_new(a->base, SIGINT, cmd_ask__on_signal, a);
    struct event *sigterm = evsignal_new(a->base, SIGTERM, cmd_ask__on_signal, a);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    engine_start_run(a->rt.engine, a->session_id, message, mode_name, cmd_ask__started, a);
    if (!a->done) event_base_dispatch(a->base);
    event_free(sigint);
    event_free(sigterm);
    ask_view_end(a->view);
    ask_view_free(a->view);
    a->view = NULL;
    return a->exit_code;
}

int cmd_ask(int argc, char **argv)
{
    static const char *const allowed[] = {"db", "config", NULL};
    ask a = {.exit_code = CLI_EXIT_FAIL};
    config cfg;
    char *rest[argc > 0 ? argc : 1], *pos[argc > 0 ? argc : 1];
    int nrest, npos, rc = cli_load_config("ask", allowed, argc - 1, argv + 1, &cfg, rest, &nrest);
    char *message = NULL;
    const char *mode_name = NULL, *session = NULL;
    bool json = false;
    if (rc != CLI_EXIT_OK) goto out;
    const cli_opt opts[] = {{"--json", NULL, &json},
                            {"--mode", &mode_name, NULL},
                            {"--session", &session, NULL},
                            {"--approve", &a.approve, NULL},
                            {NULL, NULL, NULL}};
    rc = cli_parse_opts("ask", opts, nrest, rest, pos, &npos);
    if (rc != CLI_EXIT_OK) goto out;
    if (npos == 0) {
        rc = cli_fail("ask", CLI_EXIT_USAGE, "a MESSAGE is needed (or - to read it from stdin)");
        goto out;
    }
    if (npos > 1) {
        rc =
            cli_fail("ask", CLI_EXIT_USAGE, "unexpected argument '%s' (quote the message)", pos[1]);
        goto out;
    }
    if (mode_name && !*mode_name) {
        rc = cli_fail("ask", CLI_EXIT_USAGE, "--mode needs a value");
        goto out;
    }
    if (a.approve && strcmp(a.approve, "all") != 0 && strcmp(a.approve, "none") != 0) {
        rc = cli_fail("ask", CLI_EXIT_USAGE, "--approve: '%s' is not all or none", a.approve);
        goto out;
    }
    if (session && !*session) {
        rc = cli_fail("ask", CLI_EXIT_USAGE, "--session needs a value");
        goto out;
    }
    message =
        strcmp(pos[0], "-") == 0 ? cmd_ask__read_stdin((size_t)cfg.message_bytes) : xstrdup(pos[0]);
    if (!message || !*message || strlen(message) > (size_t)cfg.message_bytes) {
        rc = cli_fail("ask", CLI_EXIT_USAGE, "the message must be between 1 and %lld bytes",
                      (long long)cfg.message_bytes);
        goto out;
    }

    /* The run itself is the output. With --json, stdout carries every
     * event and stderr stays empty, so a script that reads both sees JSON
     * only: no log line at all, and only a failure that ends ask early
     * writes its one message there. */
    log_min_level = json ? LOG_OFF : LOG_WARN;
    /* The server's loop, so the run goes as it would there. */
    a.base = loopprio_base_new();
    char err[512];
    runtime_options opt = {
        .publish = cmd_ask__publish, .publish_ud = &a, .on_run_finished = cmd_ask__finished};
    if (runtime_start(&a.rt, &cfg, a.base, &opt, err, sizeof err) != 0) {
        rc = cli_fail("ask", CLI_EXIT_FAIL, "%s", err);
        event_base_free(a.base);
        goto out;
    }
    rc = cmd_ask__check_mode(&a, mode_name);
    if (rc == CLI_EXIT_OK) rc = cmd_ask__session(&a, session, mode_name);
    if (rc == CLI_EXIT_OK) rc = cmd_ask__run(&a, message, mode_name, json);
    runtime_stop(&a.rt);
    event_base_free(a.base);
out:
    free(message);
    free(a.run_id);
    config_cleanup(&cfg);
    return rc;
}
