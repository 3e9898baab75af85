/*
 * scripted_llm: the test model provider of scripted_llm.h. A call walks
 * its step on a zero timer: one text piece per tick, then the end the step
 * names. Calls and recorded requests are freed with the provider.
 */
#include "scripted_llm.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/xmalloc.h"

typedef struct scripted_call scripted_call;

struct scripted_llm {
    llm base;
    struct event_base *eb;
    scripted_step *steps;
    size_t nsteps;
    scripted_request *reqs;
    size_t nreqs;
    scripted_call *flying; /* calls in flight */
    void (*after_done)(void *ud);
    void *after_done_ud;
};

struct scripted_call {
    scripted_llm *p;
    const scripted_step *step; /* NULL: past the end of the script */
    size_t index;              /* the call's number */
    struct event *timer;
    llm_callbacks cb;
    void *ud;
    size_t sent; /* pieces streamed */
    bool waiting, released;
    bool in_callback, aborted;
    scripted_call *next;
};

static void scripted__unlink(scripted_call *c)
{
    for (scripted_call **pp = &c->p->flying; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            return;
        }
    }
}

static void scripted__call_free(scripted_call *c)
{
    scripted__unlink(c);
    event_free(c->timer);
    free(c);
}

static void scripted__arm(scripted_call *c)
{
    struct timeval tv = {0, 0};
    evtimer_add(c->timer, &tv);
}

/* Ends the call as its step says; the call is freed afterwards. */
static void scripted__finish(scripted_call *c)
{
    const scripted_step *st = c->step;
    llm_result r = {.prompt_tokens = -1, .completion_tokens = -1, .retry_after_ms = -1};
    buf text;
    buf_init(&text, 1u << 20);
    llm_tool_call calls[SCRIPTED_CALLS_MAX];
    char *missing = NULL;
    if (!st) {
        missing = xasprintf("the script has no step %zu", c->index + 1);
        r.ok = false;
        r.error_message = missing;
    } else if (st->end == SCRIPTED_TURN) {
        for (size_t i = 0; i < SCRIPTED_PIECES_MAX && st->pieces[i]; i++)
            buf_append_str(&text, st->pieces[i]);
        r.ok = true;
        r.text = text.data ? text.data : "";
        r.text_len = text.len;
        for (size_t i = 0; i < SCRIPTED_CALLS_MAX && st->calls[i].name; i++) {
            calls[i].id = (char *)(st->calls[i].id ? st->calls[i].id : "");
            calls[i].name = (char *)st->calls[i].name;
            calls[i].arguments = (char *)(st->calls[i].arguments ? st->calls[i].arguments : "");
            r.ncalls = i + 1;
        }
        r.calls = r.ncalls ? calls : NULL;
        r.finish_reason = r.ncalls ? "tool_calls" : "stop";
        if (st->usage) {
            r.prompt_tokens = st->prompt_tokens;
            r.completion_tokens = st->completion_tokens;
        }
    } else {
        r.ok = false;
        r.retryable = st->end == SCRIPTED_RETRYABLE;
        r.http_status = st->http_status ? st->http_status : r.retryable ? 503 : 400;
        r.error_code = (char *)st->error_code;
        r.error_message = (char *)(st->error ? st->error : "scripted failure");
        r.retry_after_ms = r.retryable ? st->retry_after_ms : -1;
    }
    c->in_callback = true;
    c->cb.on_done(c->ud, &r);
    buf_cleanup(&text);
    free(missing);
    scripted_llm *p = c->p;
    scripted__call_free(c);
    if (p->after_done) p->after_done(p->after_done_ud);
}

static void scripted__on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    scripted_call *c = arg;
    const scripted_step *st = c->step;
    if (st && c->sent < SCRIPTED_PIECES_MAX && st->pieces[c->sent]) {
        const char *piece = st->pieces[c->sent++];
        c->in_callback = true;
        c->cb.on_text(c->ud, piece, strlen(piece));
        c->in_callback = false;
        if (c->aborted) {
            scripted__call_free(c);
            return;
        }
        scripted__arm(c);
        return;
    }
    if (st && ((st->hold && !c->released) || st->end == SCRIPTED_STALL)) {
        c->waiting = true;
        return;
    }
    scripted__finish(c);
}

static llm_call *scripted__start(llm *base, const llm_request *req, const llm_callbacks *cb,
                                 void *ud)
{
    scripted_llm *p = (scripted_llm *)base;
    p->reqs = xrealloc(p->reqs, (p->nreqs + 1) * sizeof *p->reqs);
    scripted_request *rq = &p->reqs[p->nreqs];
    rq->messages = json_deep_copy(req->messages);
    rq->tools = req->tools != NULL;
    rq->ntools = req->tools ? json_array_size(req->tools) : 0;
    rq->max_completion_tokens = req->max_completion_tokens;
    rq->aborted = false;
    rq->started_ms = clock_mono_ms();

    scripted_call *c = xcalloc(1, sizeof *c);
    c->p = p;
    c->index = p->nreqs++;
    c->step = c->index < p->nsteps ? &p->steps[c->index] : NULL;
    c->cb = *cb;
    c->ud = ud;
    c->timer = evtimer_new(p->eb, scripted__on_timer, c);
    c->next = p->flying;
    p->flying = c;
    scripted__arm(c);
    return (llm_call *)c;
}

static void scripted__abort(llm_call *lc)
{
    scripted_call *c = (scripted_call *)lc;
    c->p->reqs[c->index].aborted = true;
    if (c->in_callback)
        c->aborted = true;
    else
        scripted__call_free(c);
}

static void scripted__free(llm *base)
{
    scripted_llm *p = (scripted_llm *)base;
    while (p->flying) scripted__call_free(p->flying);
    for (size_t i = 0; i < p->nreqs; i++) json_decref(p->reqs[i].messages);
    free(p->reqs);
    free(p->steps);
    free(p);
}

static const llm_ops scripted__ops = {
    .start = scripted__start,
    .abort = scripted__abort,
    .free = scripted__free,
};

scripted_llm *scripted_llm_new(struct event_base *base, const scripted_step *steps, size_t n)
{
    scripted_llm *p = xcalloc(1, sizeof *p);
    p->base.ops = &scripted__ops;
    p->base.provider = "scripted";
    p->base.model = "scripted";
    p->eb = base;
    p->steps = xcalloc(n ? n : 1, sizeof *p->steps);
    if (n) memcpy(p->steps, steps, n * sizeof *steps);
    p->nsteps = n;
    return p;
}

llm *scripted_llm_base(scripted_llm *s)
{
    return &s->base;
}

size_t scripted_llm_calls(const scripted_llm *s)
{
    return s->nreqs;
}

const scripted_request *scripted_llm_request(const scripted_llm *s, size_t i)
{
    return i < s->nreqs ? &s->reqs[i] : NULL;
}

bool scripted_llm_waiting(const scripted_llm *s)
{
    for (const scripted_call *c = s->flying; c; c = c->next)
        if (c->waiting) return true;
    return false;
}

void scripted_llm_release(scripted_llm *s)
{
    for (scripted_call *c = s->flying; c; c = c->next) {
        if (!c->released) {
            c->released = true;
            c->waiting = false;
            scripted__arm(c);
        }
    }
}

void scripted_llm_after_done(scripted_llm *s, void (*fn)(void *ud), void *ud)
{
    s->after_done = fn;
    s->after_done_ud = ud;
}

size_t scripted_llm_in_flight(const scripted_llm *s)
{
    size_t n = 0;
    for (const scripted_call *c = s->flying; c; c = c->next) n++;
    return n;
}
