/* The AG-UI route (docs/protocols.md, AG-UI): POST /api/ag-ui starts a run
 * for a RunAgentInput, or resumes one that waits for an approval, and
 * answers its events translated by core/agui through the hub, like a run
 * stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/agui.h"
#include "lib/xmalloc.h"
#include "net/api_int.h"

/* ---- the translator on the hub ---- */

typedef struct api__agui_stream {
    agui_xlate x;
} api__agui_stream;

static int api__agui_event(void *ud, const char *json, size_t len, buf *out)
{
    api__agui_stream *st = ud;
    json_t *ev = json_loadb(json, len, 0, NULL);
    if (!ev) return 0;
    int rc = agui_xlate_event(&st->x, ev, out);
    json_decref(ev);
    return rc != 0;
}

static void api__agui_unrecorded(void *ud, buf *out)
{
    api__agui_stream *st = ud;
    agui_xlate_unrecorded(&st->x, out);
}

static void api__agui_free(void *ud)
{
    api__agui_stream *st = ud;
    agui_xlate_cleanup(&st->x);
    free(st);
}

static hub_xlate api__agui_xlate(const agui_input *in, const char *resume_approval)
{
    api__agui_stream *st = xcalloc(1, sizeof *st);
    agui_xlate_init(&st->x, in->thread_id, in->run_id, resume_approval);
    hub_xlate x = {
        .content_type = "text/event-stream",
        .on_event = api__agui_event,
        .on_unrecorded = api__agui_unrecorded,
        .on_free = api__agui_free,
        .ud = st,
    };
    return x;
}

/* ---- POST /api/ag-ui ---- */

typedef struct api__agui {
    api *a;
    http_req *r;
    agui_input in;
    char *session_id;
    size_t decided; /* resume entries decided so far */
    char *run_id;   /* the resumed run */
} api__agui;

static void api__agui_free_req(api__agui *g)
{
    agui_input_cleanup(&g->in);
    free(g->session_id);
    free(g->run_id);
    free(g);
}

static void api__agui_decide_next(api__agui *g);

static void api__agui_decided(void *ud, int status, const json_t *approval)
{
    api__agui *g = ud;
    const agui_resume *res = &g->in.resume[g->decided];
    if (status == ENGINE_ERR_NOT_FOUND) {
        http_reply_error(g->r, 404, "not_found", "no run of thread %s waits for interrupt %s",
                         g->in.thread_id, res->interrupt_id);
        api__agui_free_req(g);
        return;
    }
    if (status < 0 || !approval) {
        api__engine_error(g->r, status < 0 ? status : ENGINE_ERR_UNAVAILABLE, g->session_id);
        api__agui_free_req(g);
        return;
    }
    const char *run_id = json_string_value(json_object_get(approval, "run_id"));
    if (run_id) {
        free(g->run_id);
        g->run_id = xstrdup(run_id);
    }
    g->decided++;
    api__agui_decide_next(g);
}

/* Decides the interrupts one after another, then streams the rest of the
 * run from the last decision on. */
static void api__agui_decide_next(api__agui *g)
{
    if (g->decided < g->in.nresume) {
        const agui_resume *res = &g->in.resume[g->decided];
        api__protocol_decide(g->a, g->r, g->session_id, res->interrupt_id, res->approved,
                             res->reason, api__agui_decided, g);
        return;
    }
    const char *run_id =
        g->run_id ? g->run_id : engine_active_run_id(g->a->d.engine, g->session_id);
    if (!run_id) {
        http_reply_error(g->r, 409, "no_active_run", "thread %s has no active run to resume",
                         g->in.thread_id);
        api__agui_free_req(g);
        return;
    }
    hub_xlate x = api__agui_xlate(&g->in, g->in.resume[g->in.nresume - 1].interrupt_id);
    api__protocol_follow(g->a, g->r, g->session_id, run_id, &x);
    api__agui_free_req(g);
}

static void api__agui_session(api *a, http_req *r, const api__thread_info *t, void *ud)
{
    api__agui *g = ud;
    if (!r) {
        api__agui_free_req(g);
        return;
    }
    if (g->in.nresume > 0) {
        g->session_id = xstrdup(t->session_id);
        api__agui_decide_next(g);
        return;
    }
    hub_xlate x = api__agui_xlate(&g->in, NULL);
    api__protocol_start(a, r, t->session_id, &x, g->in.message, g->in.mode, g->in.context);
    api__agui_free_req(g);
}

static int api__agui_read(const json_t *in, void *out, char *err, size_t errlen)
{
    return agui_input_read(in, out, err, errlen);
}

/* Without a new user message, only answers to interrupts give the
 * request something to do. */
static const char *api__agui_refused(const agui_input *in)
{
    if (in->message || in->nresume > 0) return NULL;
    return "messages must end with a new user message when there is no resume";
}

static void api__agui_post(http_req *r, void *ud)
{
    api *a = ud;
    api__agui *g = xcalloc(1, sizeof *g);
    g->a = a;
    g->r = r;
    if (!api__protocol_read(r, api__agui_read, &g->in) ||
        !api__protocol_request_ok(a, r, api__agui_refused(&g->in), g->in.message, g->in.mode,
                                  "forwardedProps.mode")) {
        api__agui_free_req(g);
        return;
    }
    api__thread_session(a, r, g->in.thread_id, g->in.mode, 0, api__agui_session, g);
}

void api__register_agui(http_server *s, api *a)
{
    http_route(s, "POST", "/api/ag-ui", api__agui_post, a);
}
