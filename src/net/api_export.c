/*
 * GET /api/sessions/{id}/export?format=markdown|json (docs/api.md, Export):
 * the conversation as a file to keep, Markdown by default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/transcript.h"
#include "lib/xmalloc.h"
#include "net/api_int.h"
#include "store/objects.h"

static void api_export__work(store *st, api__job *j)
{
    int rc = objects_export(st, j->id, j->owner, &j->body);
    if (rc < 0) {
        api__job_store_error_id(j, st, rc, "session", j->id);
        return;
    }
    j->status = 200;
}

static void api_export__reply(api__job *j)
{
    if (j->code) {
        http_reply_error(j->r, j->status, j->code, "%s", j->msg);
        api__job_free(j);
        return;
    }
    bool md = strcmp(j->arg, "markdown") == 0;
    char disposition[160];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%.80s.%s\"", j->id,
             md ? "md" : "json");
    http_reply_header(j->r, "Content-Disposition", disposition);
    if (md) {
        /* The body is objects_export's document, which always renders. */
        char *text = transcript_markdown(j->body);
        if (text)
            http_reply(j->r, 200, "text/markdown; charset=utf-8", text, strlen(text));
        else
            http_reply_error(j->r, 500, "internal", "the session could not be written as Markdown");
        free(text);
    } else {
        http_reply_json(j->r, 200, j->body);
        j->body = NULL;
    }
    api__job_free(j);
}

static void api_export__get(http_req *r, void *ud)
{
    const char *format = http_req_query(r, "format");
    if (!format) format = "markdown";
    if (strcmp(format, "markdown") != 0 && strcmp(format, "json") != 0) {
        http_reply_error(r, 400, "bad_request", "format must be markdown or json");
        return;
    }
    api__job *j = api__job_new(ud, r, http_req_param(r, "id"), api_export__work);
    j->arg = xstrdup(format);
    j->then = api_export__reply;
    api__job_submit(j);
}

void api__register_export(http_server *s, api *a)
{
    http_route(s, "GET", "/api/sessions/{id}/export", api_export__get, a);
}
