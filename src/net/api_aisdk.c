/* The AI SDK routes (docs/protocols.md, AI SDK): POST /api/chat starts a
 * run for a chat's new user message, or goes on with the run that waits
 * for the approval the last assistant message answers; GET
 * /api/chat/{id}/stream resumes the chat's active run from its start.
 * Both answer the UI message stream made by core/aisdk through the hub. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/aisdk.h"
#include "core/agentproto.h"
#include "lib/xmalloc.h"
#include "net/api_int.h"

/* ---- the translator on the hub ---- */

static int api__aisdk_event(void *ud, const char *json, size_t len, buf *out)
{
    aisdk_xlate *x = ud;
    json_t *ev = json_loadb(json, len, 0, NULL);
    if (!ev) return 0;
    int rc = aisdk_xlate_event(x, ev, out);
    json_decref(ev);
    return rc != 0;
}

static void api__aisdk_unrecorded(void *ud, buf *out)
{
    aisdk_xlate_unrecorded(ud, out);
}

static void api__aisdk_free(void *ud)
{
    aisdk_xlate_cleanup(ud);
    free(ud);
}

static hub_xlate api__aisdk_xlate(const char *wait_approval, const json_t *decided)
{
    aisdk_xlate *st = xcalloc(1, sizeof *st);
    aisdk_xlate_init(st, wait_approval);
    size_t i;
    const json_t *v;
    json_array_foreach(decided, i, v) aisdk_xlate_decided(st, json_string_value(v));
    hub_xlate x = {
        .content_type = "text/event-stream",
        .header_name = "x-vercel-ai-ui-message-stream",
        .header_value = "v1",
        .on_event = api__aisdk_event,
        .on_unrecorded = api__aisdk_unrecorded,
        .on_free = api__aisdk_free,
        .ud = st,
    };
    return x;
}

/* ---- POST /api/chat ---- */

typedef struct api__chat {
    api *a;
    http_req *r;
    aisdk_input in;
    char *session_id;
} api__chat;

static void api__chat_free(api__chat *c)
{
    aisdk_input_cleanup(&c->in);
    free(c->session_id);
    free(c);
}

static void api__chat_decided(void *ud, int status, const json_t *approval)
{
    api__chat *c = ud;
    const char *run_id = json_string_value(json_object_get(approval, "run_id"));
    if (status == ENGINE_ERR_NOT_FOUND) {
        http_reply_error(c->r, 404, "not_found", "no run of chat %s waits for approval %s",
                         c->in.chat_id, c->in.approval_id);
    } else if (status < 0 || !run_id) {
        api__engine_error(c->r, status < 0 ? status : ENGINE_ERR_UNAVAILABLE, c->session_id);
    } else {
        hub_xlate x = api__aisdk_xlate(c->in.approval_id, NULL);
        api__protocol_follow(c->a, c->r, c->session_id, run_id, &x);
    }
    api__chat_free(c);
}

static void api__chat_session(api *a, http_req *r, const api__thread_info *t, void *ud)
{
    api__chat *c = ud;
    if (!r) {
        api__chat_free(c);
        return;
    }
    if (c->in.approval_id) {
        c->session_id = xstrdup(t->session_id);
        api__protocol_decide(a, r, c->session_id, c->in.approval_id, c->in.approved, c->in.reason,
                             api__chat_decided, c);
        return;
    }
    hub_xlate x = api__aisdk_xlate(NULL, NULL);
    /* regenerate-message answers the chat's last user message again, in
     * place (docs/protocols.md): the client dropped the answer it replaces,
     * chatplane marks it superseded. */
    api__protocol_start(a, r, t->session_id, &x, c->in.regenerate ? NULL : c->in.message,
                        c->in.mode, NULL);
    api__chat_free(c);
}

static int api__chat_read(const json_t *in, void *out, char *err, size_t errlen)
{
    return aisdk_input_read(in, out, err, errlen);
}

static void api__chat_post(http_req *r, void *ud)
{
    api *a = ud;
    api__chat *c = xcalloc(1, sizeof *c);
    c->a = a;
    c->r = r;
    if (!api__protocol_read(r, api__chat_read, &c->in) ||
        !api__protocol_request_ok(a, r, NULL, c->in.message, c->in.mode, "mode")) {
        api__chat_free(c);
        return;
    }
    api__thread_session(a, r, c->in.chat_id, c->in.mode, 0, api__chat_session, c);
}

/* ---- GET /api/chat/{id}/stream ---- */

static void api__chat_resume_session(api *a, http_req *r, const api__thread_info *t, void *ud)
{
    (void)ud;
    if (!r) return;
    if (t->missing || !t->active_run_id) {
        http_reply_no_content(r);
        return;
    }
    hub_xlate x = api__aisdk_xlate(NULL, t->decided);
    api__protocol_follow(a, r, t->session_id, t->active_run_id, &x);
}

static void api__chat_resume(http_req *r, void *ud)
{
    api *a = ud;
    const char *id = http_req_param(r, "id");
    if (!agentproto_thread_valid(id)) {
        http_reply_error(r, 400, "bad_request",
                         "the chat id must be 1 to %d characters of "
                         "[A-Za-z0-9._:-]",
                         AGENTPROTO_THREAD_MAX);
        return;
    }
    api__thread_session(a, r, id, NULL, API__THREAD_EXISTING | API__THREAD_DECIDED,
                        api__chat_resume_session, NULL);
}

void api__register_aisdk(http_server *s, api *a)
{
    http_route(s, "POST", "/api/chat", api__chat_post, a);
    http_route(s, "GET", "/api/chat/{id}/stream", api__chat_resume, a);
}
