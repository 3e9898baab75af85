#include "core/guard.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/canon.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

/* The alternating pattern spans this many finished calls: A,B,A,B,A,B. */
#define GUARD__ALT_WINDOW 6
/* Empty turns in a row that stop the run (the first one warns). */
#define GUARD__EMPTY_STOP 2
/* The occurrence of the same trimmed text that stops the run. */
#define GUARD__MONOLOGUE_STOP 3
/* Most bytes of a tool's error text quoted in a detail or nudge. */
#define GUARD__DETAIL_TEXT_CAP 200
/* Most bytes of arguments, results and texts quoted elsewhere. */
#define GUARD__TEXT_CAP 1024
/* First size of a counting table; a power of two. */
#define GUARD__TABLE_MIN 16

/*
 * A counting table keyed by a pair of 64-bit hashes: open addressing with
 * linear probing, doubled when three quarters full. A slot whose count is 0
 * is free. Keys are hashes, not the texts they stand for: two texts with
 * the same 64-bit FNV-1a would share a count, which the few thousand keys
 * of one run make vanishingly unlikely.
 */
typedef struct guard__slot {
    uint64_t a, b;
    int count;
} guard__slot;

typedef struct guard__table {
    guard__slot *slots;
    size_t cap;  /* slots allocated: 0 or a power of two */
    size_t used; /* slots with a count */
} guard__table;

/* One finished call remembered for the alternating check. */
typedef struct guard__call {
    uint64_t fingerprint;
    uint64_t outcome;
    char *tool;   /* owned */
    json_t *args; /* owned reference: a copy of the call's arguments */
} guard__call;

struct guard {
    mode_guard th;
    guard__table pairs;                  /* (fingerprint, outcome) -> calls of this run */
    guard__table outcomes;               /* (outcome, 0) -> times seen in this run */
    guard__table texts;                  /* (hash of trimmed text, 0) -> turns that said it */
    guard__call ring[GUARD__ALT_WINDOW]; /* call k lives in ring[k % window] */
    size_t calls;                        /* calls reported so far */
    int fail_streak;
    int empty_streak;
    int stale_streak;
    /* The step whose tool results are being collected, for the stale rule;
     * open once the step's first result arrives. */
    bool step_open;
    int step;
    bool step_new; /* some result of the step had an outcome not seen before */
};

static size_t guard__slot_index(const guard__table *t, uint64_t a, uint64_t b)
{
    return (size_t)(a ^ (b * UINT64_C(0x9e3779b97f4a7c15))) & (t->cap - 1);
}

static void guard__table_grow(guard__table *t)
{
    guard__slot *old = t->slots;
    size_t old_cap = t->cap;
    t->cap = old_cap ? old_cap * 2 : GUARD__TABLE_MIN;
    t->slots = xcalloc(t->cap, sizeof *t->slots);
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].count == 0) continue;
        size_t j = guard__slot_index(t, old[i].a, old[i].b);
        while (t->slots[j].count != 0) j = (j + 1) & (t->cap - 1);
        t->slots[j] = old[i];
    }
    free(old);
}

/* Counts one more occurrence of the key (a, b); returns its new count. */
static int guard__table_bump(guard__table *t, uint64_t a, uint64_t b)
{
    if ((t->used + 1) * 4 > t->cap * 3) guard__table_grow(t);
    size_t i = guard__slot_index(t, a, b);
    while (t->slots[i].count != 0 && (t->slots[i].a != a || t->slots[i].b != b))
        i = (i + 1) & (t->cap - 1);
    guard__slot *s = &t->slots[i];
    if (s->count == 0) {
        s->a = a;
        s->b = b;
        t->used++;
    }
    if (s->count < INT_MAX) s->count++;
    return s->count;
}

static void guard__table_cleanup(guard__table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->used = 0;
}

/* The outcome hash: status, a NUL byte, the result text. */
static uint64_t guard__outcome(const char *status, const char *result)
{
    uint64_t h = canon_hash(CANON_HASH_SEED, status, strlen(status) + 1);
    return canon_hash(h, result, strlen(result));
}

/*
 * Returns a new string with at most max bytes of s[0..len), cut at a UTF-8
 * character boundary and followed by "…" when something was cut. Text that
 * is not valid UTF-8 has its non-ASCII bytes replaced by '?', so the result
 * can always go into a JSON string.
 */
static char *guard__excerpt(const char *s, size_t len, size_t max)
{
    size_t n = utf8_cut(s, len, max);
    bool cut = n < len;
    char *out = xmalloc(n + sizeof "…");
    memcpy(out, s, n);
    out[n] = '\0';
    if (!utf8_valid(out, n))
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)out[i] >= 0x80) out[i] = '?';
    if (cut) memcpy(out + n, "…", sizeof "…");
    return out;
}

static char *guard__excerpt_str(const char *s, size_t max)
{
    return guard__excerpt(s, strlen(s), max);
}

/* Returns a new JSON string holding an excerpt of s (see guard__excerpt). */
static json_t *guard__json_text(const char *s, size_t len, size_t max)
{
    char *e = guard__excerpt(s, len, max);
    json_t *j = json_string(e);
    free(e);
    return j;
}

/* Returns a new reference to a copy of the arguments; NULL counts as {}. */
static json_t *guard__args_copy(const json_t *arguments)
{
    return arguments ? json_deep_copy(arguments) : json_object();
}

/* Returns a new string: the canonical arguments, capped for a detail. */
static char *guard__args_text(const json_t *arguments)
{
    char *canon = arguments ? canon_json_str(arguments) : xstrdup("{}");
    if (!canon) return xstrdup("…");
    char *s = guard__excerpt_str(canon, GUARD__TEXT_CAP);
    free(canon);
    return s;
}

/* Returns a new string "tool: error" (or just "tool" without an error text)
 * naming the last failure in a detail or nudge. */
static char *guard__last_failure(const char *tool, const char *error)
{
    if (!*error) return xstrdup(tool);
    char *e = guard__excerpt_str(error, GUARD__DETAIL_TEXT_CAP);
    char *s = xasprintf("%s: %s", tool, e);
    free(e);
    return s;
}

/* Fills a verdict; it takes ownership of detail, nudge and evidence. */
static void guard__verdict(guard_verdict *v, guard_check check, guard_action action,
                           stop_reason reason, char *detail, char *nudge, json_t *evidence)
{
    v->check = check;
    v->action = action;
    v->reason = reason;
    v->detail = detail;
    v->nudge = nudge;
    v->evidence = evidence;
}

/* Remembers a finished call in the ring, dropping the one six calls back. */
static void guard__ring_push(guard *g, uint64_t fingerprint, uint64_t outcome, const char *tool,
                             const json_t *arguments)
{
    guard__call *c = &g->ring[g->calls % GUARD__ALT_WINDOW];
    free(c->tool);
    json_decref(c->args);
    c->fingerprint = fingerprint;
    c->outcome = outcome;
    c->tool = xstrdup(tool);
    c->args = guard__args_copy(arguments);
    g->calls++;
}

/* Returns the i-th of the last GUARD__ALT_WINDOW calls, oldest first. */
static const guard__call *guard__ring_at(const guard *g, size_t i)
{
    return &g->ring[(g->calls - GUARD__ALT_WINDOW + i) % GUARD__ALT_WINDOW];
}

/* True when the last calls run A,B,A,B,A,B with A != B, every A with the
 * outcome of the first A and every B with the outcome of the first B. */
static bool guard__alternating(const guard *g)
{
    if (g->calls < GUARD__ALT_WINDOW) return false;
    const guard__call *a = guard__ring_at(g, 0), *b = guard__ring_at(g, 1);
    if (a->fingerprint == b->fingerprint) return false;
    for (size_t i = 2; i < GUARD__ALT_WINDOW; i++) {
        const guard__call *want = i % 2 ? b : a, *c = guard__ring_at(g, i);
        if (c->fingerprint != want->fingerprint || c->outcome != want->outcome) return false;
    }
    return true;
}

/* A repeat verdict: warn with a nudge, or stop; the evidence names the call. */
static void guard__repeat_verdict(guard_verdict *v, guard_action action, int count,
                                  const char *tool, const json_t *arguments, const char *result)
{
    char *args = guard__args_text(arguments);
    char *detail = xasprintf("%s was called %d times with %s", tool, count, args);
    free(args);
    char *nudge = NULL;
    if (action == GUARD_WARN)
        nudge = xasprintf("You have called %s with the same arguments %d times and got the same "
                          "result. Do not repeat it; change approach or answer with what you "
                          "have.",
                          tool, count);
    json_t *ev = json_object();
    json_object_set_new(ev, "tool", guard__json_text(tool, strlen(tool), GUARD__TEXT_CAP));
    json_object_set_new(ev, "arguments", guard__args_copy(arguments));
    json_object_set_new(ev, "count", json_integer(count));
    json_object_set_new(ev, "result", guard__json_text(result, strlen(result), GUARD__TEXT_CAP));
    guard__verdict(v, GUARD_LOOP, action, STOP_LOOP_DETECTED, detail, nudge, ev);
}

/* The alternating stop, naming A and B in the order the pattern began. */
static void guard__alternating_verdict(const guard *g, guard_verdict *v)
{
    const guard__call *a = guard__ring_at(g, 0), *b = guard__ring_at(g, 1);
    char *detail = xasprintf("%s and %s were called alternately %d times with unchanged results",
                             a->tool, b->tool, GUARD__ALT_WINDOW);
    json_t *tools = json_array();
    json_array_append_new(tools, guard__json_text(a->tool, strlen(a->tool), GUARD__TEXT_CAP));
    json_array_append_new(tools, guard__json_text(b->tool, strlen(b->tool), GUARD__TEXT_CAP));
    json_t *args = json_array();
    json_array_append_new(args, json_deep_copy(a->args));
    json_array_append_new(args, json_deep_copy(b->args));
    json_t *ev = json_object();
    json_object_set_new(ev, "tools", tools);
    json_object_set_new(ev, "arguments", args);
    json_object_set_new(ev, "count", json_integer(GUARD__ALT_WINDOW));
    guard__verdict(v, GUARD_LOOP, GUARD_STOP, STOP_LOOP_DETECTED, detail, NULL, ev);
}

/* A repeated-failure verdict for a streak of count failures ending in this one. */
static void guard__failure_verdict(guard_verdict *v, guard_action action, int count,
                                   const char *tool, const json_t *arguments, const char *error)
{
    char *last = guard__last_failure(tool, error);
    char *detail = xasprintf("%d tool calls failed in a row (last: %s)", count, last);
    char *nudge = NULL;
    if (action == GUARD_WARN)
        nudge = xasprintf("The last %d tool calls failed (last: %s). Check the arguments or try "
                          "a different approach instead of repeating the call.",
                          count, last);
    free(last);
    json_t *ev = json_object();
    json_object_set_new(ev, "tool", guard__json_text(tool, strlen(tool), GUARD__TEXT_CAP));
    json_object_set_new(ev, "arguments", guard__args_copy(arguments));
    json_object_set_new(ev, "count", json_integer(count));
    json_object_set_new(ev, "error", guard__json_text(error, strlen(error), GUARD__TEXT_CAP));
    guard__verdict(v, GUARD_REPEATED_FAILURE, action, STOP_REPEATED_FAILURES, detail, nudge, ev);
}

guard *guard_new(const mode_guard *thresholds)
{
    guard *g = xcalloc(1, sizeof *g);
    g->th = *thresholds;
    return g;
}

void guard_free(guard *g)
{
    if (!g) return;
    guard__table_cleanup(&g->pairs);
    guard__table_cleanup(&g->outcomes);
    guard__table_cleanup(&g->texts);
    for (size_t i = 0; i < GUARD__ALT_WINDOW; i++) {
        free(g->ring[i].tool);
        json_decref(g->ring[i].args);
    }
    free(g);
}

void guard_set_thresholds(guard *g, const mode_guard *thresholds)
{
    g->th = *thresholds;
}

const char *guard_check_name(guard_check c)
{
    static const char *const names[] = {
        [GUARD_LOOP] = "loop",
        [GUARD_REPEATED_FAILURE] = "repeated_failure",
        [GUARD_NO_PROGRESS] = "no_progress",
    };
    return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "";
}

const char *guard_action_name(guard_action a)
{
    static const char *const names[] = {[GUARD_WARN] = "warn", [GUARD_STOP] = "stop"};
    return (unsigned)a < sizeof names / sizeof names[0] ? names[a] : "";
}

/* Records the outcome for the stale rule under the step it belongs to. */
static void guard__note_step_outcome(guard *g, int step, uint64_t outcome)
{
    if (!g->step_open || g->step != step) {
        g->step_open = true;
        g->step = step;
        g->step_new = false;
    }
    if (guard__table_bump(&g->outcomes, outcome, 0) == 1) g->step_new = true;
}

/*
 * Runs the loop and failure checks on one finished call. Warnings come
 * first (loop, then failure), then at most one stop: a repeat stop, else an
 * alternating stop, else a failure stop. A loop stop drops the loop warning
 * of the same call, since the stop says more.
 */
size_t guard_on_tool_result(guard *g, int step, const char *tool, const json_t *arguments,
                            const char *status, const char *result, guard_verdict *out)
{
    if (!tool) tool = "";
    if (!status) status = "";
    if (!result) result = "";
    uint64_t fp = canon_fingerprint(tool, arguments);
    uint64_t oc = guard__outcome(status, result);

    int repeats = guard__table_bump(&g->pairs, fp, oc);
    bool repeat_stop = repeats >= g->th.loop_stop;
    guard__ring_push(g, fp, oc, tool, arguments);
    bool alt_stop = !repeat_stop && guard__alternating(g);
    bool repeat_warn = !repeat_stop && !alt_stop && repeats >= g->th.loop_warn;

    bool failed = strcmp(status, "error") == 0 || strcmp(status, "timeout") == 0;
    if (failed) {
        if (g->fail_streak < INT_MAX) g->fail_streak++;
    } else if (strcmp(status, "ok") == 0) {
        g->fail_streak = 0;
    }
    bool fail_stop = failed && g->fail_streak >= g->th.fail_stop;
    bool fail_warn = failed && !fail_stop && g->fail_streak >= g->th.fail_warn;

    guard__note_step_outcome(g, step, oc);

    size_t n = 0;
    if (repeat_warn) guard__repeat_verdict(&out[n++], GUARD_WARN, repeats, tool, arguments, result);
    if (fail_warn)
        guard__failure_verdict(&out[n++], GUARD_WARN, g->fail_streak, tool, arguments, result);
    if (repeat_stop)
        guard__repeat_verdict(&out[n++], GUARD_STOP, repeats, tool, arguments, result);
    else if (alt_stop)
        guard__alternating_verdict(g, &out[n++]);
    else if (fail_stop)
        guard__failure_verdict(&out[n++], GUARD_STOP, g->fail_streak, tool, arguments, result);
    return n;
}

static bool guard__is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * Runs the no-progress checks on one finished model turn. The three rules
 * exclude each other except monologue and stale, where the monologue stop
 * is reported; the counters of all three are updated either way.
 */
size_t guard_on_turn(guard *g, int step, const char *text, size_t tool_calls, guard_verdict *out)
{
    const char *t = text ? text : "";
    size_t len = strlen(t);
    while (len > 0 && guard__is_space(*t)) {
        t++;
        len--;
    }
    while (len > 0 && guard__is_space(t[len - 1])) len--;

    if (len == 0 && tool_calls == 0)
        g->empty_streak++;
    else
        g->empty_streak = 0;

    int said = len > 0 ? guard__table_bump(&g->texts, canon_hash(CANON_HASH_SEED, t, len), 0) : 0;

    bool stale = tool_calls > 0 && g->step_open && g->step == step && !g->step_new;
    if (stale) {
        if (g->stale_streak < INT_MAX) g->stale_streak++;
    } else {
        g->stale_streak = 0;
    }
    g->step_open = false;

    json_t *ev;
    if (g->empty_streak >= GUARD__EMPTY_STOP) {
        ev = json_pack("{s:i}", "count", g->empty_streak);
        guard__verdict(out, GUARD_NO_PROGRESS, GUARD_STOP, STOP_NO_PROGRESS,
                       xasprintf("the model returned %d empty turns in a row", g->empty_streak),
                       NULL, ev);
        return 1;
    }
    if (g->empty_streak == 1) {
        ev = json_pack("{s:i}", "count", 1);
        guard__verdict(
            out, GUARD_NO_PROGRESS, GUARD_WARN, STOP_NO_PROGRESS,
            xstrdup("the model returned an empty turn"),
            xstrdup("Your last reply was empty. Answer the user, or call a tool if you need one."),
            ev);
        return 1;
    }
    if (said >= GUARD__MONOLOGUE_STOP) {
        ev = json_object();
        json_object_set_new(ev, "text", guard__json_text(t, len, GUARD__TEXT_CAP));
        json_object_set_new(ev, "count", json_integer(said));
        guard__verdict(out, GUARD_NO_PROGRESS, GUARD_STOP, STOP_NO_PROGRESS,
                       xasprintf("the model repeated the same answer %d times", said), NULL, ev);
        return 1;
    }
    if (g->stale_streak >= g->th.stale_steps) {
        ev = json_pack("{s:i}", "steps", g->stale_streak);
        guard__verdict(out, GUARD_NO_PROGRESS, GUARD_STOP, STOP_NO_PROGRESS,
                       xasprintf("%d steps in a row produced only results already seen in this run",
                                 g->stale_streak),
                       NULL, ev);
        return 1;
    }
    return 0;
}

void guard_verdict_cleanup(guard_verdict *v)
{
    free(v->detail);
    free(v->nudge);
    json_decref(v->evidence);
    v->detail = NULL;
    v->nudge = NULL;
    v->evidence = NULL;
}
