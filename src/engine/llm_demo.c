/*
 * llm_demo: the demo brain, a model provider that needs no model.
 *
 * It is stateless per call: everything it does follows from the request,
 * the way a real model's answer does. It reads the conversation's last user
 * message and what came after it (its own tool calls and their results), and
 * whether tools are offered at all (none offered is the engine's wrap-up
 * step). The behaviours (docs/runs.md, Demo brain):
 *   an arithmetic expression  -> calc, then "6*7 = 42."
 *   the time or the date      -> clock, then "It is …"; in the zone the
 *                                message names ("Europe/Paris") or of a
 *                                well-known city it names ("Tokyo")
 *   "demo loop"               -> calc {"expression":"2+2"} every turn
 *   "demo fail"               -> calc {"expression":"1/0"} every turn
 *   "demo long"               -> calc "1+1", "2+2", "3+3", … one per turn
 *   "demo approve"            -> pretend_delete once, which the default
 *                                policy asks about, then says how it went
 *   "demo sleep"              -> sleep 5 seconds once, then says so
 *   no tools offered          -> a wrap-up answer saying how far it got
 *   anything else             -> a short note on how to connect a model
 * An answer the conversation already holds the start of (a stopped answer,
 * then continued) resumes after that start instead of repeating it.
 * Turns that call tools carry no text, so that the repeated turns of the
 * demo commands are stopped by the loop, failure and step guardrails the
 * commands exist to show, not by the monologue check.
 *
 * Text streams in pieces (a word and the white space after it, long words
 * cut into a few characters), one per delay_ms on a libevent timer; a turn
 * ends with on_done on the timer tick after the last piece. Even with a
 * zero delay nothing is delivered inside start.
 */
#include <ctype.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/calc.h"
#include "core/tokens.h"
#include "engine/llm.h"
#include "lib/buf.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

#define DEMO__TEXT_MAX  (64 * 1024) /* the longest answer it builds */
#define DEMO__QUOTE_MAX 200         /* the most of a tool result it quotes */
#define DEMO__WORD_MAX  12          /* longer words stream in chunks… */
#define DEMO__CHUNK     8           /* …of this many bytes */

typedef struct demo {
    llm base;
    struct event_base *eb;
    int64_t delay_ms;
    unsigned long next_id; /* for the made-up tool call ids */
} demo;

/* A call; handed out as the opaque llm_call. */
typedef struct demo_call {
    demo *p;
    struct event *timer;
    llm_callbacks cb;
    void *ud;
    char *text; /* the whole answer; pieces of it go out one per tick */
    size_t text_len, sent;
    llm_tool_call *calls;
    size_t ncalls;
    const char *finish_reason;
    int64_t prompt_tokens;
    bool in_callback; /* an abort from inside a callback is deferred… */
    bool aborted;     /* …to here, and the call freed once it returns */
} demo_call;

/* What the demo read from the conversation. */
typedef struct demo__view {
    char *user;            /* the last user message's text ("" for none); owned */
    size_t nresults;       /* tool results after it */
    const char *result;    /* the last of them, or NULL */
    const char *call_name; /* the call it answers, when found */
    const char *call_args;
    char *given; /* the assistant text after the last user or tool message: owned */
} demo__view;

/* ---- reading the request ---- */

/* The text of a message's content: a string, or the "text" parts of an
 * array of content parts. Returns a new string. */
static char *llm_demo__content_text(const json_t *content)
{
    if (json_is_string(content)) return xstrdup(json_string_value(content));
    buf b;
    buf_init(&b, DEMO__TEXT_MAX);
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part)
    {
        const char *t = json_string_value(json_object_get(part, "text"));
        if (t && buf_append_str(&b, t) < 0) break;
    }
    return buf_detach(&b, NULL);
}

static const char *llm_demo__role(const json_t *m)
{
    const char *r = json_string_value(json_object_get(m, "role"));
    return r ? r : "";
}

/* Finds the assistant tool call with this id, searching back from message
 * `before`, and sets its function name and arguments text. */
static void llm_demo__find_call(const json_t *messages, size_t before, const char *id,
                                demo__view *v)
{
    for (size_t i = before; id && i-- > 0;) {
        const json_t *calls = json_object_get(json_array_get(messages, i), "tool_calls");
        size_t j;
        const json_t *c;
        json_array_foreach(calls, j, c)
        {
            const char *cid = json_string_value(json_object_get(c, "id"));
            if (!cid || strcmp(cid, id) != 0) continue;
            const json_t *fn = json_object_get(c, "function");
            v->call_name = json_string_value(json_object_get(fn, "name"));
            v->call_args = json_string_value(json_object_get(fn, "arguments"));
            return;
        }
    }
}

static void llm_demo__read(const json_t *messages, demo__view *v)
{
    memset(v, 0, sizeof *v);
    size_t n = json_array_size(messages), user = n;
    for (size_t i = n; i-- > 0;) {
        if (strcmp(llm_demo__role(json_array_get(messages, i)), "user") == 0) {
            user = i;
            break;
        }
    }
    v->user =
        user < n
            ? llm_demo__content_text(json_object_get(json_array_get(messages, user), "content"))
            : xstrdup("");
    for (size_t i = user < n ? user + 1 : n; i < n; i++) {
        const json_t *m = json_array_get(messages, i);
        if (strcmp(llm_demo__role(m), "tool") != 0) continue;
        v->nresults++;
        v->result = json_string_value(json_object_get(m, "content"));
        if (!v->result) v->result = "";
        v->call_name = v->call_args = NULL;
        llm_demo__find_call(messages, i, json_string_value(json_object_get(m, "tool_call_id")), v);
    }
    /* The answer given so far: the assistant text at the end of the
     * conversation, after its last user or tool message (a stopped answer
     * and any continuations of it). */
    size_t from = n;
    while (from > 0 && from - 1 > user && user < n &&
           strcmp(llm_demo__role(json_array_get(messages, from - 1)), "assistant") == 0)
        from--;
    buf given;
    buf_init(&given, DEMO__TEXT_MAX);
    for (size_t i = from; i < n; i++) {
        char *t = llm_demo__content_text(json_object_get(json_array_get(messages, i), "content"));
        int rc = buf_append_str(&given, t);
        free(t);
        if (rc < 0) break;
    }
    v->given = buf_detach(&given, NULL);
}

static bool llm_demo__offers(const json_t *tools, const char *name)
{
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        const char *fn = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        if (fn && strcmp(fn, name) == 0) return true;
    }
    return false;
}

/* Whether word occurs in the lower-cased text with no letter right before
 * or after it ("date" is in "what date is it", not in "update"). */
static bool llm_demo__has_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
        bool before = p > text && isalpha((unsigned char)p[-1]);
        bool after = isalpha((unsigned char)p[n]);
        if (!before && !after) return true;
    }
    return false;
}

static bool llm_demo__asks_time(const char *lower)
{
    return llm_demo__has_word(lower, "time") || llm_demo__has_word(lower, "date") ||
           llm_demo__has_word(lower, "clock") || llm_demo__has_word(lower, "what day");
}

/* Well-known cities and their zones, for questions like "what time is it in
 * Tokyo?". The list is in docs/cli.md. Names are lower case; a name matches
 * as whole words. */
static const struct {
    const char *city, *zone;
} demo__cities[] = {
    {"tokyo", "Asia/Tokyo"},
    {"osaka", "Asia/Tokyo"},
    {"seoul", "Asia/Seoul"},
    {"beijing", "Asia/Shanghai"},
    {"shanghai", "Asia/Shanghai"},
    {"hong kong", "Asia/Hong_Kong"},
    {"singapore", "Asia/Singapore"},
    {"mumbai", "Asia/Kolkata"},
    {"delhi", "Asia/Kolkata"},
    {"dubai", "Asia/Dubai"},
    {"moscow", "Europe/Moscow"},
    {"istanbul", "Europe/Istanbul"},
    {"cairo", "Africa/Cairo"},
    {"johannesburg", "Africa/Johannesburg"},
    {"london", "Europe/London"},
    {"paris", "Europe/Paris"},
    {"berlin", "Europe/Berlin"},
    {"madrid", "Europe/Madrid"},
    {"rome", "Europe/Rome"},
    {"amsterdam", "Europe/Amsterdam"},
    {"new york", "America/New_York"},
    {"toronto", "America/Toronto"},
    {"chicago", "America/Chicago"},
    {"denver", "America/Denver"},
    {"los angeles", "America/Los_Angeles"},
    {"san francisco", "America/Los_Angeles"},
    {"mexico city", "America/Mexico_City"},
    {"sao paulo", "America/Sao_Paulo"},
    {"sydney", "Australia/Sydney"},
    {"auckland", "Pacific/Auckland"},
};

/* A time zone named in the text: the first word with a '/' made of zone
 * name characters ("Europe/Paris", "America/New_York"), else the zone of a
 * well-known city named in the lower-cased text, else "UTC" when the word
 * appears. Returns a new string, or NULL. */
static char *llm_demo__zone_in(const char *text, const char *lower)
{
    const char *chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-/";
    for (const char *p = text; *p;) {
        size_t n = strspn(p, chars);
        if (n == 0) {
            p++;
            continue;
        }
        if (memchr(p, '/', n) && p[0] != '/' && p[n - 1] != '/') return xstrndup(p, n);
        p += n;
    }
    for (size_t i = 0; i < sizeof demo__cities / sizeof demo__cities[0]; i++)
        if (llm_demo__has_word(lower, demo__cities[i].city)) return xstrdup(demo__cities[i].zone);
    return llm_demo__has_word(text, "UTC") ? xstrdup("UTC") : NULL;
}

/* ---- building the turn ---- */

static void llm_demo__add_call(demo *p, demo_call *c, const char *name, json_t *args)
{
    c->calls = xrealloc(c->calls, (c->ncalls + 1) * sizeof *c->calls);
    llm_tool_call *tc = &c->calls[c->ncalls++];
    tc->id = xasprintf("call_demo_%lu", ++p->next_id);
    tc->name = xstrdup(name);
    tc->arguments = json_dumps(args, JSON_COMPACT);
    json_decref(args);
}

static bool llm_demo__is_number(const char *s)
{
    char *end;
    if (!*s || isspace((unsigned char)*s)) return false;
    strtod(s, &end);
    return *end == '\0';
}

/* The answer to the last tool result, by the tool that produced it. */
static void llm_demo__answer_result(const demo__view *v, buf *out)
{
    const char *name = v->call_name ? v->call_name : "the";
    if (strcmp(name, "calc") == 0) {
        json_t *args = json_loads(v->call_args ? v->call_args : "", 0, NULL);
        const char *expr = json_string_value(json_object_get(args, "expression"));
        if (!expr) expr = "that";
        if (llm_demo__is_number(v->result))
            buf_printf(out, "%s = %s.", expr, v->result);
        else
            buf_printf(out, "I could not compute %s: %s.", expr, v->result);
        json_decref(args);
    } else if (strcmp(name, "pretend_delete") == 0) {
        if (strncmp(v->result, "deleted ", 8) == 0)
            buf_printf(out, "Done: %.*s. Nothing was really touched.", DEMO__QUOTE_MAX, v->result);
        else
            buf_printf(out, "I did not delete it: %.*s", DEMO__QUOTE_MAX, v->result);
    } else if (strcmp(name, "clock") == 0) {
        if (isdigit((unsigned char)v->result[0]))
            buf_printf(out, "It is %s.", v->result);
        else
            buf_printf(out, "I could not read the clock: %s.", v->result);
    } else {
        buf_printf(out, "The %s tool returned: %.*s", name, DEMO__QUOTE_MAX, v->result);
    }
}

/* The wrap-up answer, given when no tools are offered. */
static void llm_demo__wrap_up(const demo__view *v, buf *out)
{
    buf_append_str(out, "I have to stop here: the budget for this run is nearly spent. So far: ");
    if (v->nresults == 0) {
        buf_append_str(out, "I had not run any tools yet.");
        return;
    }
    buf_printf(out, "I ran %zu tool call%s; the last one, %s with %s, returned \"%.*s\".",
               v->nresults, v->nresults == 1 ? "" : "s", v->call_name ? v->call_name : "a tool",
               v->call_args ? v->call_args : "{}", DEMO__QUOTE_MAX, v->result);
}

static const char demo__intro[] =
    "This is the demo brain of chatplane: no language model is connected, so it follows a few "
    "scripts. Ask it to compute something like 6*7 or for the time, or send \"demo loop\", "
    "\"demo fail\" or \"demo long\" to watch the guardrails and budgets stop a run, \"demo "
    "approve\" "
    "to be asked before a tool call, or \"demo sleep\" for a call to stop half way. To connect "
    "a real model, set CHATPLANE_LLM_URL (or llm.base_url) to an OpenAI-compatible endpoint, "
    "e.g. http://127.0.0.1:11434/v1 for Ollama, and CHATPLANE_LLM_MODEL to the model's name.";

/* An answer whose start was already given (a stopped answer, continued)
 * goes on after that start. An answer given whole already is not repeated:
 * a short line says so, as the turn must carry some text. */
static void llm_demo__resume(const demo__view *v, buf *out)
{
    size_t n = strlen(v->given);
    if (n == 0 || out->len < n || memcmp(out->data, v->given, n) != 0) return;
    if (n == out->len) {
        buf_reset(out);
        buf_append_str(out, "That was the whole answer.");
        return;
    }
    buf_consume(out, n);
}

/*
 * Decides the turn: tool calls into c->calls, or answer text into out. A
 * demo command whose tool is not offered (a toolset without calc) falls
 * through to a text answer, so the turn is never empty.
 */
static void llm_demo__decide(demo *p, demo_call *c, const llm_request *req, buf *out)
{
    demo__view v;
    llm_demo__read(req->messages, &v);
    char *lower = xstrdup(v.user);
    for (char *q = lower; *q; q++) *q = (char)tolower((unsigned char)*q);
    char expr[CALC_MAX_LEN + 1];
    bool tools = json_array_size(req->tools) > 0;
    bool calc = llm_demo__offers(req->tools, "calc");

    if (!tools) {
        llm_demo__wrap_up(&v, out);
    } else if (calc && strstr(lower, "demo loop")) {
        llm_demo__add_call(p, c, "calc", json_pack("{s:s}", "expression", "2+2"));
    } else if (calc && strstr(lower, "demo fail")) {
        llm_demo__add_call(p, c, "calc", json_pack("{s:s}", "expression", "1/0"));
    } else if (calc && strstr(lower, "demo long")) {
        char *e = xasprintf("%zu+%zu", v.nresults + 1, v.nresults + 1);
        llm_demo__add_call(p, c, "calc", json_pack("{s:s}", "expression", e));
        free(e);
    } else if (v.result) {
        llm_demo__answer_result(&v, out);
    } else if (llm_demo__offers(req->tools, "pretend_delete") && strstr(lower, "demo approve")) {
        llm_demo__add_call(p, c, "pretend_delete",
                           json_pack("{s:s}", "path", "notes/old-draft.txt"));
    } else if (llm_demo__offers(req->tools, "sleep") && strstr(lower, "demo sleep")) {
        llm_demo__add_call(p, c, "sleep", json_pack("{s:i}", "seconds", 5));
    } else if (calc && calc_find_expression(v.user, expr, sizeof expr) == 0) {
        llm_demo__add_call(p, c, "calc", json_pack("{s:s}", "expression", expr));
    } else if (llm_demo__offers(req->tools, "clock") && llm_demo__asks_time(lower)) {
        char *zone = llm_demo__zone_in(v.user, lower);
        llm_demo__add_call(p, c, "clock",
                           zone ? json_pack("{s:s}", "timezone", zone) : json_object());
        free(zone);
    } else {
        buf_append_str(out, demo__intro);
    }
    llm_demo__resume(&v, out);
    free(lower);
    free(v.user);
    free(v.given);
}

/* ---- streaming ---- */

/* The length of the next piece of text at s (len bytes left): a word and the
 * white space after it, or the first few bytes of a long word, never ending
 * inside a UTF-8 sequence. */
static size_t llm_demo__piece_len(const char *s, size_t len)
{
    size_t word = 0;
    while (word < len && !isspace((unsigned char)s[word])) word++;
    if (word > DEMO__WORD_MAX) {
        /* The cut before the chunk's end, then the whole character there. */
        size_t n = utf8_cut(s, word, DEMO__CHUNK);
        return n < DEMO__CHUNK ? n + utf8_next(s + n, word - n) : n;
    }
    while (word < len && isspace((unsigned char)s[word])) word++;
    return word;
}

static void llm_demo__call_free(demo_call *c)
{
    event_free(c->timer);
    free(c->text);
    for (size_t i = 0; i < c->ncalls; i++) {
        free(c->calls[i].id);
        free(c->calls[i].name);
        free(c->calls[i].arguments);
    }
    free(c->calls);
    free(c);
}

static void llm_demo__arm(demo_call *c)
{
    struct timeval tv = {(time_t)(c->p->delay_ms / 1000),
                         (suseconds_t)(c->p->delay_ms % 1000 * 1000)};
    evtimer_add(c->timer, &tv);
}

/* Ends the turn; the call is freed afterwards whatever the callback did. */
static void llm_demo__finish(demo_call *c)
{
    size_t out_bytes = c->text_len;
    for (size_t i = 0; i < c->ncalls; i++)
        out_bytes += strlen(c->calls[i].name) + strlen(c->calls[i].arguments);
    llm_result r = {
        .ok = true,
        .text = c->text,
        .text_len = c->text_len,
        .calls = c->calls,
        .ncalls = c->ncalls,
        .finish_reason = (char *)c->finish_reason,
        .prompt_tokens = c->prompt_tokens,
        .completion_tokens = tokens_estimate(out_bytes),
        .retry_after_ms = -1,
    };
    c->in_callback = true;
    c->cb.on_done(c->ud, &r);
    llm_demo__call_free(c);
}

static void llm_demo__on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    demo_call *c = arg;
    if (c->sent >= c->text_len) {
        llm_demo__finish(c);
        return;
    }
    size_t n = llm_demo__piece_len(c->text + c->sent, c->text_len - c->sent);
    c->in_callback = true;
    c->cb.on_text(c->ud, c->text + c->sent, n);
    c->in_callback = false;
    if (c->aborted) {
        llm_demo__call_free(c);
        return;
    }
    c->sent += n;
    llm_demo__arm(c);
}

/* Cuts the answer to what max_completion_tokens allows (the estimate's
 * bytes a token), at a UTF-8 boundary, as a model stops at its limit. */
static void llm_demo__limit(demo_call *c, int64_t max_tokens)
{
    if (max_tokens < 0 || c->ncalls > 0 || tokens_estimate(c->text_len) <= max_tokens) return;
    size_t n = utf8_cut(c->text, c->text_len, (size_t)max_tokens * TOKENS_BYTES_PER_TOKEN);
    c->text[n] = '\0';
    c->text_len = n;
    c->finish_reason = "length";
}

static llm_call *llm_demo__start(llm *base, const llm_request *req, const llm_callbacks *cb,
                                 void *ud)
{
    demo *p = (demo *)base;
    demo_call *c = xcalloc(1, sizeof *c);
    c->p = p;
    c->cb = *cb;
    c->ud = ud;
    c->timer = evtimer_new(p->eb, llm_demo__on_timer, c);

    buf out;
    buf_init(&out, DEMO__TEXT_MAX);
    llm_demo__decide(p, c, req, &out);
    c->text = buf_detach(&out, &c->text_len);
    c->finish_reason = c->ncalls > 0 ? "tool_calls" : "stop";
    llm_demo__limit(c, req->max_completion_tokens);

    char *prompt = json_dumps(req->messages, JSON_COMPACT);
    char *tools = req->tools ? json_dumps(req->tools, JSON_COMPACT) : NULL;
    c->prompt_tokens = tokens_estimate((prompt ? strlen(prompt) : 0) + (tools ? strlen(tools) : 0));
    free(prompt);
    free(tools);

    llm_demo__arm(c);
    return (llm_call *)c;
}

static void llm_demo__abort(llm_call *lc)
{
    demo_call *c = (demo_call *)lc;
    if (c->in_callback)
        c->aborted = true;
    else
        llm_demo__call_free(c);
}

static void llm_demo__free(llm *base)
{
    free(base);
}

static const llm_ops demo__ops = {
    .start = llm_demo__start,
    .abort = llm_demo__abort,
    .free = llm_demo__free,
};

llm *llm_demo_new(struct event_base *base, int64_t delay_ms)
{
    demo *p = xcalloc(1, sizeof *p);
    p->base.ops = &demo__ops;
    p->base.provider = "demo";
    p->base.model = "demo";
    p->eb = base;
    p->delay_ms = delay_ms < 0 ? 0 : delay_ms;
    return &p->base;
}
