#include "core/context.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"
#include "core/tokens.h"
#include "lib/buf.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

const char *const CONTEXT_WRAP_UP_NOTE =
    "The budget for this run is nearly spent: this is the last step, and no tools are "
    "available. Answer the user now with what you have, and say briefly what is left undone.";

int64_t context_estimate_tokens(const json_t *v)
{
    return tokens_estimate(jsonw_length(v, JSON_COMPACT | JSON_ENCODE_ANY));
}

static json_t *context__system(const char *text)
{
    return json_pack("{s:s, s:s}", "role", "system", "content", text);
}

json_t *context_user(const char *content)
{
    return json_pack("{s:s, s:s}", "role", "user", "content", content ? content : "");
}

json_t *context_assistant(const char *text, const json_t *tool_calls)
{
    json_t *m = json_object();
    json_object_set_new(m, "role", json_string("assistant"));
    json_object_set_new(m, "content", text && *text ? json_string(text) : json_null());
    if (tool_calls && json_array_size(tool_calls) > 0)
        json_object_set_new(m, "tool_calls", json_deep_copy(tool_calls));
    return m;
}

json_t *context_tool(const char *tool_call_id, const char *content, size_t len)
{
    json_t *c;
    if (len > CONTEXT_TOOL_RESULT_MAX) {
        size_t cut = utf8_cut(content, len, CONTEXT_TOOL_RESULT_MAX);
        char *t =
            xasprintf("%.*s\n[result cut: %zu of %zu bytes shown]", (int)cut, content, cut, len);
        c = json_string(t);
        free(t);
    } else {
        c = json_stringn(content, len);
    }
    /* Invalid UTF-8 cannot be sent as JSON text; say so instead. */
    if (!c) c = json_string("[the result is not valid UTF-8 text]");
    json_t *m = json_object();
    json_object_set_new(m, "role", json_string("tool"));
    json_object_set_new(m, "tool_call_id", json_string(tool_call_id ? tool_call_id : ""));
    json_object_set_new(m, "content", c);
    return m;
}

char *context_budget_note(const budget *b, int64_t step, int64_t now_ms)
{
    buf out;
    buf_init(&out, 256);
    const mode_limits *l = &b->limits;
    /* Three numbers of at most 20 digits and the words fit in 256 bytes, so
     * the appends cannot fail; rc says so if that ever stops being true. */
    int rc = buf_printf(&out, "step %lld", (long long)step);
    if (l->steps != MODE_UNLIMITED) rc |= buf_printf(&out, " of %lld", (long long)l->steps);
    bool left = false;
    if (l->seconds != MODE_UNLIMITED) {
        int64_t ms = b->started_ms + l->seconds * 1000 - now_ms;
        rc |= buf_printf(&out, ", %lld s", (long long)(ms > 0 ? ms / 1000 : 0));
        left = true;
    }
    if (l->tool_calls != MODE_UNLIMITED) {
        int64_t n = l->tool_calls - b->usage.tool_calls;
        rc |= buf_printf(&out, ", %lld tool call%s", (long long)(n > 0 ? n : 0), n == 1 ? "" : "s");
        left = true;
    }
    if (left) rc |= buf_append_str(&out, " left");
    assert(rc == 0);
    return buf_detach(&out, NULL);
}

/* The end (exclusive) of the group that starts at i: a message and, for an
 * assistant message, the tool results that follow it. */
static size_t context__group_end(const json_t *h, size_t i)
{
    size_t n = json_array_size(h), j = i + 1;
    const char *role = json_string_value(json_object_get(json_array_get(h, i), "role"));
    if (role && strcmp(role, "assistant") == 0) {
        while (j < n) {
            const char *r = json_string_value(json_object_get(json_array_get(h, j), "role"));
            if (!r || strcmp(r, "tool") != 0) break;
            j++;
        }
    }
    return j;
}

json_t *context_build(const context_params *p, int64_t *est_tokens)
{
    json_t *out = json_array();
    if (p->system_prompt && *p->system_prompt)
        json_array_append_new(out, context__system(p->system_prompt));
    if (p->budget_note || p->client_note) {
        /* One system note: the budget left, then what the frontend says
         * about where the person is (docs/protocols.md, AG-UI). */
        char *t = p->budget_note && p->client_note
                      ? xasprintf("Budget: %s.\n\n%s", p->budget_note, p->client_note)
                  : p->budget_note ? xasprintf("Budget: %s.", p->budget_note)
                                   : xstrdup(p->client_note);
        json_array_append_new(out, context__system(t));
        free(t);
    }
    json_t *notes = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(p->notes, i, v)
    {
        if (json_is_string(v)) json_array_append_new(notes, context__system(json_string_value(v)));
    }

    /* Estimate each history message once, then drop whole groups from the
     * front while the total is over the limit. */
    size_t n = json_array_size(p->history);
    int64_t *cost = xcalloc(n ? n : 1, sizeof *cost);
    int64_t total =
        p->reserved_tokens + context_estimate_tokens(out) + context_estimate_tokens(notes);
    for (i = 0; i < n; i++) {
        cost[i] = context_estimate_tokens(json_array_get(p->history, i));
        total += cost[i];
    }
    size_t start = 0;
    /* Tool results with no assistant message before them cannot be sent. */
    while (start < n && start < p->keep_from) {
        const char *r =
            json_string_value(json_object_get(json_array_get(p->history, start), "role"));
        if (!r || strcmp(r, "tool") != 0) break;
        total -= cost[start++];
    }
    while (total > p->context_tokens && start < p->keep_from) {
        size_t end = context__group_end(p->history, start);
        if (end > p->keep_from) break;
        for (; start < end; start++) total -= cost[start];
    }
    free(cost);
    for (i = start; i < n; i++) json_array_append(out, json_array_get(p->history, i));
    json_array_extend(out, notes);
    json_decref(notes);
    if (est_tokens) *est_tokens = total;
    return out;
}

/* True when the array of tool calls has a call with this id. */
static bool context__has_call(const json_t *calls, const char *id)
{
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        const char *cid = json_string_value(json_object_get(c, "id"));
        if (cid && id && strcmp(cid, id) == 0) return true;
    }
    return false;
}

size_t context_repair(json_t *h)
{
    size_t changes = 0, i = 0;
    const json_t *calls = NULL; /* the tool calls of the assistant message being answered */
    while (i <= json_array_size(h)) {
        json_t *m = json_array_get(h, i); /* NULL past the end */
        const char *role = m ? json_string_value(json_object_get(m, "role")) : NULL;
        bool is_tool = role && strcmp(role, "tool") == 0;
        if (is_tool) {
            const char *id = json_string_value(json_object_get(m, "tool_call_id"));
            if (!calls || !context__has_call(calls, id)) {
                json_array_remove(h, i);
                changes++;
                continue;
            }
            i++;
            continue;
        }
        /* The group of the previous assistant message ends here: add a
         * result for every call that has none. */
        if (calls) {
            size_t first = i, k;
            json_t *c;
            while (first > 0) {
                const char *r =
                    json_string_value(json_object_get(json_array_get(h, first - 1), "role"));
                if (!r || strcmp(r, "tool") != 0) break;
                first--;
            }
            json_array_foreach(calls, k, c)
            {
                const char *id = json_string_value(json_object_get(c, "id"));
                bool answered = false;
                for (size_t j = first; j < i && !answered; j++) {
                    const char *tid =
                        json_string_value(json_object_get(json_array_get(h, j), "tool_call_id"));
                    answered = tid && id && strcmp(tid, id) == 0;
                }
                if (answered) continue;
                static const char missing[] = "not executed: the run stopped before this call";
                json_array_insert_new(h, i, context_tool(id, missing, sizeof missing - 1));
                i++;
                changes++;
            }
            calls = NULL;
        }
        if (!m) break;
        if (role && strcmp(role, "assistant") == 0) {
            const json_t *tc = json_object_get(m, "tool_calls");
            if (json_array_size(tc) > 0) calls = tc;
        }
        i++;
    }
    return changes;
}
