#include "cli/ask_view.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/term.h"
#include "core/stop.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/xmalloc.h"

#define VIEW_TICK_MS       100     /* the spinner's pace: ten frames a second */
#define VIEW_LINE_MAX      1048576 /* the cap of one rendered line */
#define VIEW_ARGS_COLS     60      /* tool arguments shown on a tool line */
#define VIEW_WIDTH_DEFAULT 80      /* a terminal that does not say its width */

/* SGR parameters of the colours used. */
#define SGR_BOLD   "1"
#define SGR_DIM    "2"
#define SGR_RED    "31"
#define SGR_GREEN  "32"
#define SGR_YELLOW "33"
#define SGR_CYAN   "36"

/* The budget dimensions of the status line, in the order shown. */
enum { DIM_STEPS, DIM_TOOLS, DIM_TOKENS, DIM__COUNT };
static const char *const dim_key[DIM__COUNT] = {"steps", "tool_calls", "tokens"};
static const char *const dim_label[DIM__COUNT] = {"steps", "tools", "tokens"};

/* The marks of the tty view, in UTF-8 and in ASCII. */
typedef struct glyphs {
    const char *sep, *ok, *fail, *cancel, *warn, *stop, *arrow, *ell, *repl;
    const char *const *spin;
    size_t nspin;
} glyphs;

static const char *const spin_utf8[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
static const char *const spin_ascii[] = {"|", "/", "-", "\\"};
static const glyphs glyphs_utf8 = {" · ",          "✓",       "✗", "–", "⚠", "■", "→", "…",
                                   "\xEF\xBF\xBD", spin_utf8, 10};
static const glyphs glyphs_ascii = {" | ", "+",   "x", "-",        "!", "#",
                                    "->",  "...", "?", spin_ascii, 4};

/* A tool execution that started and has not finished: its arguments are
 * shown on the line of its end. */
typedef struct view_tool {
    char *id, *args;
    struct view_tool *next;
} view_tool;

struct ask_view {
    ask_view_opts o;
    bool at_line_start; /* out's last byte was a newline (or nothing yet) */
    /* The tty view's state. */
    const glyphs *g;
    struct event *timer;
    bool shown;   /* the status line is on the screen */
    bool stopped; /* run_stopped came: the status line is gone for good */
    unsigned frame;
    char *status; /* the status line's words: "thinking", "running calc" */
    int64_t t0_ms;
    json_t *limits, *usage, *warnings; /* of the newest budget event; owned */
    json_t *announced;                 /* budget warnings already printed */
    view_tool *tools;
};

static const char *ask_view__str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long ask_view__int(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static int64_t ask_view__now(const ask_view *v)
{
    return v->o.now_ms ? v->o.now_ms() : clock_mono_ms();
}

/* ------------------------------------------------------------------------
 * The json view.
 */

static void ask_view__json_event(ask_view *v, const evt *ev)
{
    fwrite(ev->json, 1, ev->json_len, v->o.out);
    fputc('\n', v->o.out);
    fflush(v->o.out);
}

/* ------------------------------------------------------------------------
 * The plain view: the lines `chatplane help ask` documents.
 */

/* Ends the answer's line on out before a line on err, so that the two
 * streams read well when they go to the same place. */
static void ask_view__end_text_line(ask_view *v)
{
    if (v->at_line_start) return;
    fputc('\n', v->o.out);
    fflush(v->o.out);
    v->at_line_start = true;
}

/* One line on err. Text from models and tools may hold control
 * characters; they become spaces, so a line stays one plain line. */
static void ask_view__plain_line(ask_view *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ask_view__plain_line(ask_view *v, const char *fmt, ...)
{
    ask_view__end_text_line(v);
    buf raw, clean;
    buf_init(&raw, VIEW_LINE_MAX);
    buf_init(&clean, VIEW_LINE_MAX);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&raw, fmt, ap);
    va_end(ap);
    term_clean(&clean, raw.data ? raw.data : "", raw.len, "", " ");
    buf_append_char(&clean, '\n');
    fwrite(clean.data, 1, clean.len, v->o.err);
    fflush(v->o.err);
    buf_cleanup(&raw);
    buf_cleanup(&clean);
}

static void ask_view__plain_budget(ask_view *v, const json_t *f)
{
    const json_t *l = json_object_get(f, "limits"), *u = json_object_get(f, "usage");
    static const char *const dims[] = {"steps", "tokens", "tool_calls", "retries"};
    buf b;
    buf_init(&b, 512);
    for (size_t i = 0; i < 4; i++) {
        const json_t *lim = json_object_get(l, dims[i]);
        buf_printf(&b, "%s%s %lld", i ? ", " : "", dims[i], ask_view__int(u, dims[i]));
        if (json_is_integer(lim)) buf_printf(&b, "/%lld", (long long)json_integer_value(lim));
    }
    buf_printf(&b, ", seconds %.1f", json_number_value(json_object_get(u, "seconds")));
    ask_view__plain_line(v, "budget: %s", b.data);
    buf_cleanup(&b);
}

static void ask_view__plain_event(ask_view *v, const evt *ev)
{
    const json_t *f = ev->fields;
    switch (ev->type) {
    case EVT_TOKEN: {
        json_t *tf = evt_fields(ev);
        const char *t = ask_view__str(tf, "text");
        size_t n = strlen(t);
        fwrite(t, 1, n, v->o.out);
        fflush(v->o.out);
        if (n) v->at_line_start = t[n - 1] == '\n';
        json_decref(tf);
        break;
    }
    case EVT_STATUS:
        if (json_is_string(json_object_get(f, "detail")))
            ask_view__plain_line(v, "status: %s (%s)", ask_view__str(f, "status"),
                                 ask_view__str(f, "detail"));
        else
            ask_view__plain_line(v, "status: %s", ask_view__str(f, "status"));
        break;
    case EVT_TOOL_FINISHED:
        ask_view__plain_line(v, "tool: %s %s %lldms%s%s", ask_view__str(f, "tool"),
                             ask_view__str(f, "status"), ask_view__int(f, "duration_ms"),
                             json_is_string(json_object_get(f, "error")) ? ": " : "",
                             ask_view__str(f, "error"));
        break;
    case EVT_BUDGET:
        ask_view__plain_budget(v, f);
        break;
    case EVT_GUARDRAIL:
        ask_view__plain_line(v, "guardrail: %s %s: %s", ask_view__str(f, "check"),
                             ask_view__str(f, "action"), ask_view__str(f, "detail"));
        break;
    case EVT_REPAIR:
        ask_view__plain_line(v, "repair: %s: %s", ask_view__str(f, "action"),
                             ask_view__str(f, "detail"));
        break;
    case EVT_ERROR:
        ask_view__plain_line(v, "error: %s%s", ask_view__str(f, "message"),
                             json_is_true(json_object_get(f, "retryable")) ? " (retrying)" : "");
        break;
    case EVT_RUN_STOPPED:
        ask_view__plain_line(v, "stopped: %s: %s%s", ask_view__str(f, "reason"),
                             ask_view__str(f, "detail"),
                             json_is_true(json_object_get(f, "wrapped_up")) ? " (wrapped up)" : "");
        if (*ask_view__str(f, "recovery_suggestion"))
            ask_view__plain_line(v, "suggestion: %s", ask_view__str(f, "recovery_suggestion"));
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------------
 * The tty view. Lines are built in a vline: pieces of text, each with an
 * optional colour, cut to a number of columns with an ellipsis.
 */

typedef struct vline {
    const ask_view *v;
    buf b;
    size_t cols, max; /* max 0: no limit */
    bool full;
} vline;

static void ask_view__vline_init(vline *l, const ask_view *v, size_t max)
{
    l->v = v;
    buf_init(&l->b, VIEW_LINE_MAX);
    l->cols = 0;
    l->max = max;
    l->full = false;
}

/* Appends s in colour sgr (NULL: none), control characters made spaces,
 * cut with an ellipsis where the line is full. */
static void ask_view__vline_put(vline *l, const char *sgr, const char *s)
{
    if (l->full || !*s) return;
    buf t;
    buf_init(&t, VIEW_LINE_MAX);
    term_clean(&t, s, strlen(s), "", " ");
    size_t n = t.len, cols = term_cols(t.data, t.len);
    const char *ell = l->v->g->ell;
    bool cut = l->max && l->cols + cols > l->max;
    if (cut) {
        size_t room = l->max - l->cols, ell_cols = term_cols(ell, strlen(ell));
        n = room > ell_cols ? term_fit(t.data, t.len, room - ell_cols) : 0;
        cols = term_cols(t.data, n) + (room >= ell_cols ? ell_cols : 0);
        l->full = true;
    }
    bool color = sgr && l->v->o.color;
    if (color) buf_printf(&l->b, "\033[%sm", sgr);
    buf_append(&l->b, t.data, n);
    if (cut && l->max - l->cols >= term_cols(ell, strlen(ell))) buf_append_str(&l->b, ell);
    if (color) buf_append_str(&l->b, "\033[0m");
    l->cols += cols;
    buf_cleanup(&t);
}

static void ask_view__vline_printf(vline *l, const char *sgr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ask_view__vline_printf(vline *l, const char *sgr, const char *fmt, ...)
{
    buf t;
    buf_init(&t, VIEW_LINE_MAX);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&t, fmt, ap);
    va_end(ap);
    ask_view__vline_put(l, sgr, t.data ? t.data : "");
    buf_cleanup(&t);
}

/* A number of the budget objects as people write it: 120, 0.25. */
static void ask_view__vline_num(vline *l, const char *sgr, const json_t *n)
{
    if (json_is_integer(n))
        ask_view__vline_printf(l, sgr, "%lld", (long long)json_integer_value(n));
    else
        ask_view__vline_printf(l, sgr, "%g", json_number_value(n));
}

static bool ask_view__tty_warned(const json_t *names, const char *name)
{
    size_t i;
    const json_t *x;
    json_array_foreach(names, i, x) if (strcmp(json_string_value(x), name) == 0) return true;
    return false;
}

/* "steps 2/10 · tools 1/15 · tokens 523/50000"; a dimension past 80 % in
 * yellow, an unlimited one without its limit. */
static void ask_view__tty_usage(ask_view *v, vline *l, const json_t *usage)
{
    for (int i = 0; i < DIM__COUNT; i++) {
        const char *sgr = ask_view__tty_warned(v->warnings, dim_key[i]) ? SGR_YELLOW : NULL;
        ask_view__vline_put(l, NULL, v->g->sep);
        ask_view__vline_printf(l, sgr, "%s ", dim_label[i]);
        ask_view__vline_num(l, sgr, json_object_get(usage, dim_key[i]));
        const json_t *lim = json_object_get(v->limits, dim_key[i]);
        if (json_is_number(lim)) {
            ask_view__vline_put(l, sgr, "/");
            ask_view__vline_num(l, sgr, lim);
        }
    }
}

/* Seconds since the run started, with the limit: "3.2s/120s". */
static void ask_view__tty_elapsed(ask_view *v, vline *l, double seconds)
{
    ask_view__vline_printf(l, NULL, "%.1fs", seconds);
    const json_t *lim = json_object_get(v->limits, "seconds");
    if (json_is_number(lim)) {
        ask_view__vline_put(l, NULL, "/");
        ask_view__vline_num(l, NULL, lim);
        ask_view__vline_put(l, NULL, "s");
    }
}

static void ask_view__tty_hide(ask_view *v)
{
    if (!v->shown) return;
    fputs("\r\033[K", v->o.err);
    fflush(v->o.err);
    v->shown = false;
}

/* Draws the status line over the current line of err: the cursor goes back
 * to column 0, the line is written, the rest of the old one is cleared. It
 * is one column narrower than the terminal, so it never wraps. */
static void ask_view__tty_draw(ask_view *v)
{
    if (v->stopped || (v->o.shared && !v->at_line_start)) return;
    int width = v->o.width > 0 ? v->o.width : term_width(fileno(v->o.err), VIEW_WIDTH_DEFAULT);
    vline l;
    ask_view__vline_init(&l, v, width > 1 ? (size_t)width - 1 : 1);
    ask_view__vline_put(&l, SGR_CYAN, v->g->spin[v->frame % v->g->nspin]);
    ask_view__vline_put(&l, NULL, " ");
    ask_view__vline_put(&l, SGR_BOLD, v->status ? v->status : "starting");
    ask_view__vline_put(&l, NULL, v->g->sep);
    ask_view__tty_elapsed(v, &l, (double)(ask_view__now(v) - v->t0_ms) / 1000.0);
    ask_view__tty_usage(v, &l, v->usage);
    fputc('\r', v->o.err);
    fwrite(l.b.data, 1, l.b.len, v->o.err);
    fputs("\033[K", v->o.err);
    fflush(v->o.err);
    v->shown = true;
    buf_cleanup(&l.b);
}

/* Prints a permanent line above the status line: the status line is
 * cleared, the answer's line ended, the line printed, the status line
 * drawn again below it. */
static void ask_view__tty_permanent(ask_view *v, vline *l)
{
    ask_view__tty_hide(v);
    ask_view__end_text_line(v);
    fwrite(l->b.data, 1, l->b.len, v->o.err);
    fputc('\n', v->o.err);
    fflush(v->o.err);
    buf_cleanup(&l->b);
    ask_view__tty_draw(v);
}

static int ask_view__tty_width(const ask_view *v)
{
    return v->o.width > 0 ? v->o.width : term_width(fileno(v->o.err), VIEW_WIDTH_DEFAULT);
}

/* The assistant's text, with control characters other than newlines and
 * tabs replaced: a model must not be able to drive the terminal. */
static void ask_view__tty_text(ask_view *v, const char *t)
{
    size_t n = strlen(t);
    if (!n) return;
    if (v->o.shared) ask_view__tty_hide(v);
    buf clean;
    buf_init(&clean, VIEW_LINE_MAX);
    term_clean(&clean, t, n, "\n\t", v->g->repl);
    fwrite(clean.data, 1, clean.len, v->o.out);
    fflush(v->o.out);
    if (clean.len) v->at_line_start = clean.data[clean.len - 1] == '\n';
    buf_cleanup(&clean);
}

static void ask_view__tty_set_status(ask_view *v, const json_t *f)
{
    const char *st = ask_view__str(f, "status");
    const json_t *detail = json_object_get(f, "detail");
    free(v->status);
    if (strcmp(st, "tool_running") == 0 && json_is_string(detail))
        v->status = xstrdup(json_string_value(detail));
    else if (json_is_string(detail))
        v->status = xasprintf("%s (%s)", st, json_string_value(detail));
    else
        v->status = xstrdup(st);
}

static void ask_view__tty_set_budget(ask_view *v, const json_t *f)
{
    json_t *limits = json_object_get(f, "limits"), *usage = json_object_get(f, "usage");
    json_t *warnings = json_object_get(f, "warnings");
    if (json_is_object(limits)) {
        json_decref(v->limits);
        v->limits = json_incref(limits);
    }
    if (json_is_object(usage)) {
        json_decref(v->usage);
        v->usage = json_incref(usage);
    }
    if (json_is_array(warnings)) {
        json_decref(v->warnings);
        v->warnings = json_incref(warnings);
    }
}

/* A permanent line for each budget dimension that newly crossed 80 %. */
static void ask_view__tty_budget_warnings(ask_view *v)
{
    size_t i;
    const json_t *w;
    json_array_foreach(v->warnings, i, w)
    {
        const char *name = json_string_value(w);
        if (!name || ask_view__tty_warned(v->announced, name)) continue;
        json_array_append_new(v->announced, json_string(name));
        vline l;
        ask_view__vline_init(&l, v, 0);
        ask_view__vline_put(&l, SGR_YELLOW, v->g->warn);
        ask_view__vline_printf(&l, SGR_YELLOW, " budget: %s past 80 %% (", name);
        ask_view__vline_num(&l, SGR_YELLOW, json_object_get(v->usage, name));
        ask_view__vline_put(&l, SGR_YELLOW, " of ");
        ask_view__vline_num(&l, SGR_YELLOW, json_object_get(v->limits, name));
        ask_view__vline_put(&l, SGR_YELLOW, ")");
        ask_view__tty_permanent(v, &l);
    }
}

static void ask_view__tty_tool_started(ask_view *v, const json_t *f)
{
    view_tool *t = xcalloc(1, sizeof *t);
    t->id = xstrdup(ask_view__str(f, "execution_id"));
    t->args = json_dumps(json_object_get(f, "arguments"), JSON_COMPACT | JSON_ENCODE_ANY);
    if (!t->args) t->args = xstrdup("");
    t->next = v->tools;
    v->tools = t;
}

/* Takes the arguments remembered for an execution (the caller frees them),
 * or NULL. */
static char *ask_view__tty_tool_args(ask_view *v, const char *id)
{
    for (view_tool **p = &v->tools; *p; p = &(*p)->next) {
        view_tool *t = *p;
        if (strcmp(t->id, id) != 0) continue;
        *p = t->next;
        char *args = t->args;
        free(t->id);
        free(t);
        return args;
    }
    return NULL;
}

/* "✓ calc ok 3 ms  {"expression":"6*7"}", or with the error at the end. */
static void ask_view__tty_tool_finished(ask_view *v, const json_t *f)
{
    const char *status = ask_view__str(f, "status"), *server = ask_view__str(f, "server");
    /* A denied call did not fail: it is shown as one that did not run. */
    bool ok = strcmp(status, "ok") == 0,
         cancelled = strcmp(status, "cancelled") == 0 || strcmp(status, "denied") == 0;
    vline l;
    ask_view__vline_init(&l, v, (size_t)ask_view__tty_width(v) - 1);
    ask_view__vline_put(&l,
                        ok          ? SGR_GREEN
                        : cancelled ? SGR_YELLOW
                                    : SGR_RED,
                        ok          ? v->g->ok
                        : cancelled ? v->g->cancel
                                    : v->g->fail);
    ask_view__vline_put(&l, NULL, " ");
    if (*server && strcmp(server, "builtin") != 0)
        ask_view__vline_printf(&l, SGR_BOLD, "%s/", server);
    ask_view__vline_put(&l, SGR_BOLD, ask_view__str(f, "tool"));
    ask_view__vline_printf(&l, NULL, " %s ", status);
    long long ms = ask_view__int(f, "duration_ms");
    if (ms < 1000)
        ask_view__vline_printf(&l, NULL, "%lld ms", ms);
    else
        ask_view__vline_printf(&l, NULL, "%.1f s", (double)ms / 1000.0);
    char *args = ask_view__tty_tool_args(v, ask_view__str(f, "execution_id"));
    if (args && *args) {
        vline a;
        ask_view__vline_init(&a, v, VIEW_ARGS_COLS);
        ask_view__vline_put(&a, NULL, args);
        ask_view__vline_put(&l, NULL, "  ");
        ask_view__vline_put(&l, SGR_DIM, a.b.data);
        buf_cleanup(&a.b);
    }
    free(args);
    if (json_is_string(json_object_get(f, "error"))) {
        ask_view__vline_put(&l, NULL, ": ");
        ask_view__vline_put(&l, SGR_RED, ask_view__str(f, "error"));
    }
    ask_view__tty_permanent(v, &l);
}

static void ask_view__tty_guardrail(ask_view *v, const json_t *f)
{
    bool stop = strcmp(ask_view__str(f, "action"), "stop") == 0;
    const char *sgr = stop ? SGR_RED : SGR_YELLOW;
    vline l;
    ask_view__vline_init(&l, v, 0);
    ask_view__vline_put(&l, sgr, v->g->warn);
    ask_view__vline_printf(&l, sgr, " guardrail %s %s: ", ask_view__str(f, "check"),
                           ask_view__str(f, "action"));
    ask_view__vline_put(&l, NULL, ask_view__str(f, "detail"));
    ask_view__tty_permanent(v, &l);
}

/* A repair the engine made (another provider, a condensed context): one
 * permanent line, so the reader sees why the answer comes from elsewhere. */
static void ask_view__tty_repair(ask_view *v, const json_t *f)
{
    vline l;
    ask_view__vline_init(&l, v, 0);
    ask_view__vline_put(&l, SGR_YELLOW, v->g->warn);
    ask_view__vline_printf(&l, SGR_YELLOW, " repair %s: ", ask_view__str(f, "action"));
    ask_view__vline_put(&l, NULL, ask_view__str(f, "detail"));
    ask_view__tty_permanent(v, &l);
}

static void ask_view__tty_error(ask_view *v, const json_t *f)
{
    bool retry = json_is_true(json_object_get(f, "retryable"));
    vline l;
    ask_view__vline_init(&l, v, 0);
    ask_view__vline_put(&l, retry ? SGR_YELLOW : SGR_RED, v->g->warn);
    ask_view__vline_put(&l, retry ? SGR_YELLOW : SGR_RED, " error: ");
    ask_view__vline_put(&l, NULL, ask_view__str(f, "message"));
    if (retry) ask_view__vline_put(&l, SGR_DIM, " (retrying)");
    ask_view__tty_permanent(v, &l);
}

/* The colour of a stop reason, by its tone (core/stop.h): green for an
 * answer, none for a neutral stop, yellow for a spent budget, red for the
 * rest and for a reason this version does not know. */
static const char *ask_view__tty_reason_sgr(const char *reason)
{
    static const char *const sgr[STOP__TONE_COUNT] = {
        [STOP_TONE_GOOD] = SGR_GREEN,
        [STOP_TONE_NEUTRAL] = NULL,
        [STOP_TONE_WARN] = SGR_YELLOW,
        [STOP_TONE_BAD] = SGR_RED,
    };
    stop_reason r;
    return stop_reason_parse(reason, &r) == 0 ? sgr[stop_reason_tone(r)] : SGR_RED;
}

/* The end: the stop reason with its detail, the usage, the recovery
 * suggestion and the command that carries on in this session. */
static void ask_view__tty_stopped(ask_view *v, const evt *ev)
{
    const json_t *f = ev->fields, *usage = json_object_get(f, "usage");
    const char *reason = ask_view__str(f, "reason"), *sgr = ask_view__tty_reason_sgr(reason);
    ask_view__tty_hide(v);
    v->stopped = true;
    if (v->timer) event_del(v->timer);

    vline l;
    ask_view__vline_init(&l, v, 0);
    ask_view__vline_put(&l, sgr, v->g->stop);
    ask_view__vline_put(&l, NULL, " ");
    ask_view__vline_put(&l, sgr, reason);
    ask_view__vline_put(&l, NULL, ": ");
    ask_view__vline_put(&l, NULL, ask_view__str(f, "detail"));
    if (json_is_true(json_object_get(f, "wrapped_up")))
        ask_view__vline_put(&l, NULL, " (wrapped up)");
    ask_view__tty_permanent(v, &l);

    ask_view__vline_init(&l, v, 0);
    ask_view__vline_put(&l, NULL, "  ");
    ask_view__tty_elapsed(v, &l, json_number_value(json_object_get(usage, "seconds")));
    ask_view__tty_usage(v, &l, usage);
    ask_view__tty_permanent(v, &l);

    if (*ask_view__str(f, "recovery_suggestion")) {
        ask_view__vline_init(&l, v, 0);
        ask_view__vline_put(&l, NULL, v->g->arrow);
        ask_view__vline_put(&l, NULL, " ");
        ask_view__vline_put(&l, NULL, ask_view__str(f, "recovery_suggestion"));
        ask_view__tty_permanent(v, &l);
    }

    const char *to_mode = NULL;
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(f, "actions"), i,
                       a) if (strcmp(ask_view__str(a, "kind"), "switch_mode") == 0) to_mode =
        ask_view__str(a, "mode");
    ask_view__vline_init(&l, v, 0);
    ask_view__vline_printf(&l, SGR_DIM, "  chatplane ask --session %s%s%s MESSAGE", ev->session_id,
                           to_mode ? " --mode " : "", to_mode ? to_mode : "");
    ask_view__tty_permanent(v, &l);
}

static void ask_view__tty_event(ask_view *v, const evt *ev)
{
    const json_t *f = ev->fields;
    switch (ev->type) {
    case EVT_RUN_STARTED:
        v->t0_ms = ask_view__now(v);
        ask_view__tty_set_budget(v, f);
        ask_view__tty_draw(v);
        break;
    case EVT_STATUS:
        ask_view__tty_set_status(v, f);
        ask_view__tty_draw(v);
        break;
    case EVT_TOKEN: {
        json_t *tf = evt_fields(ev);
        ask_view__tty_text(v, ask_view__str(tf, "text"));
        json_decref(tf);
        break;
    }
    case EVT_MESSAGE:
        /* The assistant's message is complete: its line ends, and the
         * status line may come back below it. */
        if (strcmp(ask_view__str(f, "role"), "assistant") == 0) {
            ask_view__end_text_line(v);
            ask_view__tty_draw(v);
        }
        break;
    case EVT_TOOL_STARTED:
        ask_view__tty_tool_started(v, f);
        break;
    case EVT_TOOL_FINISHED:
        ask_view__tty_tool_finished(v, f);
        break;
    case EVT_BUDGET:
        ask_view__tty_set_budget(v, f);
        ask_view__tty_budget_warnings(v);
        ask_view__tty_draw(v);
        break;
    case EVT_GUARDRAIL:
        ask_view__tty_guardrail(v, f);
        break;
    case EVT_REPAIR:
        ask_view__tty_repair(v, f);
        break;
    case EVT_ERROR:
        ask_view__tty_error(v, f);
        break;
    case EVT_RUN_STOPPED:
        ask_view__tty_stopped(v, ev);
        break;
    default:
        break;
    }
}

static void ask_view__tty_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ask_view_tick(arg);
}

/* ------------------------------------------------------------------------
 * The public face.
 */

void ask_view_detect(ask_view_opts *o, bool json, struct event_base *base)
{
    memset(o, 0, sizeof *o);
    o->out = stdout;
    o->err = stderr;
    o->base = base;
    if (json)
        o->kind = ASK_VIEW_JSON;
    else if (isatty(STDERR_FILENO) && term_env_capable())
        o->kind = ASK_VIEW_TTY;
    else
        o->kind = ASK_VIEW_PLAIN;
    o->color = term_env_color();
    o->utf8 = term_env_utf8();
    o->shared = term_same(STDOUT_FILENO, STDERR_FILENO);
}

ask_view *ask_view_new(const ask_view_opts *o)
{
    ask_view *v = xcalloc(1, sizeof *v);
    v->o = *o;
    v->at_line_start = true;
    v->g = o->utf8 ? &glyphs_utf8 : &glyphs_ascii;
    v->t0_ms = ask_view__now(v);
    v->limits = json_object();
    v->usage = json_object();
    v->warnings = json_array();
    v->announced = json_array();
    if (o->kind == ASK_VIEW_TTY && o->base) {
        v->timer = event_new(o->base, -1, EV_PERSIST, ask_view__tty_on_timer, v);
        struct timeval tick = {0, VIEW_TICK_MS * 1000};
        event_add(v->timer, &tick);
    }
    return v;
}

void ask_view_free(ask_view *v)
{
    if (!v) return;
    if (v->timer) event_free(v->timer);
    while (v->tools) free(ask_view__tty_tool_args(v, v->tools->id));
    free(v->status);
    json_decref(v->limits);
    json_decref(v->usage);
    json_decref(v->warnings);
    json_decref(v->announced);
    free(v);
}

void ask_view_event(ask_view *v, const evt *ev)
{
    switch (v->o.kind) {
    case ASK_VIEW_JSON:
        ask_view__json_event(v, ev);
        break;
    case ASK_VIEW_PLAIN:
        ask_view__plain_event(v, ev);
        break;
    case ASK_VIEW_TTY:
        ask_view__tty_event(v, ev);
        break;
    }
}

void ask_view_tick(ask_view *v)
{
    if (v->o.kind != ASK_VIEW_TTY || v->stopped) return;
    v->frame++;
    ask_view__tty_draw(v);
}

void ask_view_interrupted(ask_view *v)
{
    if (v->o.kind != ASK_VIEW_TTY || v->stopped) return;
    vline l;
    ask_view__vline_init(&l, v, 0);
    ask_view__vline_put(&l, SGR_DIM, "stopping; press Ctrl-C again to quit at once");
    ask_view__tty_permanent(v, &l);
}

void ask_view_end(ask_view *v)
{
    if (v->o.kind == ASK_VIEW_JSON) return;
    if (v->o.kind == ASK_VIEW_TTY) ask_view__tty_hide(v);
    ask_view__end_text_line(v);
}
