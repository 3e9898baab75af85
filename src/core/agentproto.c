#include "core/agentproto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "lib/xmalloc.h"

void agentproto_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int agentproto_string_opt(const json_t *v, char **out)
{
    if (v && !json_is_null(v) && !json_is_string(v)) return -1;
    *out = json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
    return 0;
}

int agentproto_decision(const json_t *o, bool need_approved, bool *approved, char **reason)
{
    const json_t *a = json_object_get(o, "approved");
    if (need_approved && !json_is_boolean(a)) return AGENTPROTO_BAD_APPROVED;
    if (agentproto_string_opt(json_object_get(o, "reason"), reason) != 0)
        return AGENTPROTO_BAD_REASON;
    *approved = json_is_true(a);
    return 0;
}

bool agentproto_thread_valid(const char *s)
{
    if (!s) return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok || n >= AGENTPROTO_THREAD_MAX) return false;
    }
    return n > 0;
}

void agentproto_session_id(const char *owner, const char *thread_id, char out[ID_MAX])
{
    /* The owner is NUL-terminated inside the hashed text, so "ab"+"c" and
     * "a"+"bc" never meet. */
    sha256_ctx c;
    unsigned char d[SHA256_DIGEST_BYTES];
    const char *o = owner ? owner : "";
    sha256_init(&c);
    sha256_update(&c, "thread\n", 7);
    sha256_update(&c, o, strlen(o) + 1);
    sha256_update(&c, thread_id, strlen(thread_id));
    sha256_final(&c, d);
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "ses_", 4);
    for (int i = 0; i < 12; i++) {
        out[4 + 2 * i] = hex[d[i] >> 4];
        out[5 + 2 * i] = hex[d[i] & 15];
    }
    out[28] = '\0';
}

json_t *agentproto_load(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!v && err && errlen)
        snprintf(err, errlen, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
    return v;
}

int agentproto_emit(buf *out, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(v);
    if (!s) return BUF_TOOBIG;
    int rc = buf_append_str(out, "data: ");
    if (rc == 0) rc = buf_append_str(out, s);
    if (rc == 0) rc = buf_append_str(out, "\n\n");
    free(s);
    return rc;
}

int agentproto_parse(const char *text, size_t len, agentproto_read_fn read, void *out, char *err,
                     size_t errlen)
{
    json_t *in = agentproto_load(text, len, err, errlen);
    if (!in) return -1;
    int rc = read(in, out, err, errlen);
    json_decref(in);
    return rc;
}

int agentproto_list(const json_t *v, const char *where, size_t max, const char *items, char *err,
                    size_t errlen)
{
    if (!json_is_array(v)) {
        agentproto_err(err, errlen, "%s must be a list", where);
        return -1;
    }
    if (json_array_size(v) > max) {
        agentproto_err(err, errlen, "%s holds more than %zu %s", where, max, items);
        return -1;
    }
    return 0;
}

char *agentproto_text(const json_t *parts, const char *where, char *err, size_t errlen)
{
    if (!json_is_array(parts)) {
        agentproto_err(err, errlen, "%s must be a list", where);
        return NULL;
    }
    buf b;
    buf_init(&b, AGENTPROTO_TEXT_MAX);
    size_t k;
    const json_t *p;
    json_array_foreach(parts, k, p)
    {
        const char *type = json_string_value(json_object_get(p, "type"));
        const char *text = json_string_value(json_object_get(p, "text"));
        if (!type || strcmp(type, "text") != 0 || !text) {
            agentproto_err(err, errlen, "%s[%zu]: only text parts are supported", where, k);
            buf_cleanup(&b);
            return NULL;
        }
        if (buf_append_str(&b, text) != 0) {
            agentproto_err(err, errlen, "%s is too long", where);
            buf_cleanup(&b);
            return NULL;
        }
    }
    return buf_detach(&b, NULL);
}

bool agentproto_ids_has(const json_t *ids, const char *id)
{
    size_t i;
    const json_t *v;
    json_array_foreach(ids, i, v) if (strcmp(json_string_value(v), id) == 0) return true;
    return false;
}

void agentproto_ids_drop(json_t *ids, const char *id)
{
    size_t i;
    const json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (strcmp(json_string_value(v), id) == 0) {
            json_array_remove(ids, i);
            return;
        }
    }
}

void agentproto_ids_add_calls(json_t *ids, const json_t *tool_calls)
{
    size_t i;
    const json_t *c;
    json_array_foreach(tool_calls, i, c)
    {
        const json_t *id = json_object_get(c, "id");
        if (json_is_string(id)) json_array_append(ids, (json_t *)id);
    }
}

agentproto_stop agentproto_stop_kind(const char *reason)
{
    static const char *const errors[] = {"llm_error", "max_retries", "interrupted", "owner_budget"};
    for (size_t i = 0; i < sizeof errors / sizeof *errors; i++)
        if (strcmp(reason, errors[i]) == 0) return AGENTPROTO_STOP_ERROR;
    if (strcmp(reason, "user_stopped") == 0 || strcmp(reason, "approval_timeout") == 0)
        return AGENTPROTO_STOP_CANCELLED;
    return AGENTPROTO_STOP_DONE;
}

/* ---- the translators' shared state ---- */

void agentproto_xlate_init(agentproto_xlate *x, const agentproto_dialect *d,
                           const char *wait_approval)
{
    memset(x, 0, sizeof *x);
    x->d = d;
    x->wait_approval = wait_approval ? xstrdup(wait_approval) : NULL;
    x->pending = json_array();
}

void agentproto_xlate_cleanup(agentproto_xlate *x)
{
    free(x->wait_approval);
    free(x->text_id);
    json_decref(x->pending);
    memset(x, 0, sizeof *x);
}

json_t *agentproto_event(const char *type)
{
    return json_pack("{s:s}", "type", type);
}

int agentproto_text_close(agentproto_xlate *x, buf *out)
{
    if (!x->text_id) return 0;
    json_t *e = agentproto_event(x->d->text_end);
    json_object_set_new(e, x->d->text_key, json_string(x->text_id));
    free(x->text_id);
    x->text_id = NULL;
    return agentproto_emit(out, e);
}

int agentproto_text_open(agentproto_xlate *x, const char *id, buf *out)
{
    if (x->text_id && strcmp(x->text_id, id) == 0) return 0;
    int rc = agentproto_text_close(x, out);
    if (rc != 0) return rc;
    x->text_id = xstrdup(id);
    json_t *e = agentproto_event(x->d->text_start);
    json_object_set_new(e, x->d->text_key, json_string(id));
    if (x->d->start_role) json_object_set_new(e, "role", json_string(x->d->start_role));
    return agentproto_emit(out, e);
}

int agentproto_text_delta(agentproto_xlate *x, const char *id, const char *text, buf *out)
{
    if (!text || !*text) return 0;
    json_t *e = agentproto_event(x->d->text_delta);
    json_object_set_new(e, x->d->text_key, json_string(id));
    json_object_set_new(e, "delta", json_string(text));
    return agentproto_emit(out, e);
}

int agentproto_xlate_token(agentproto_xlate *x, const json_t *ev, buf *out)
{
    const char *id = json_string_value(json_object_get(ev, "message_id"));
    if (!id) return 0;
    int rc = agentproto_text_open(x, id, out);
    return rc ? rc
              : agentproto_text_delta(x, id, json_string_value(json_object_get(ev, "text")), out);
}

int agentproto_xlate_error(agentproto_xlate *x, const json_t *ev, buf *out)
{
    const char *id = json_string_value(json_object_get(ev, "message_id"));
    if (id && x->text_id && strcmp(id, x->text_id) == 0) return agentproto_text_close(x, out);
    return 0;
}

int agentproto_xlate_text(agentproto_xlate *x, const char *id, const char *content, buf *out)
{
    if (x->text_id && strcmp(x->text_id, id) == 0) return agentproto_text_close(x, out);
    if (!content || !*content) return 0;
    int rc = agentproto_text_open(x, id, out);
    if (rc == 0) rc = agentproto_text_delta(x, id, content, out);
    if (rc == 0) rc = agentproto_text_close(x, out);
    return rc;
}

int agentproto_xlate_calls(agentproto_xlate *x, const json_t *calls, agentproto_call_fn fn,
                           void *ud, buf *out)
{
    agentproto_ids_add_calls(x->pending, calls);
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "id"));
        const json_t *f = json_object_get(c, "function");
        if (!id) continue;
        int rc = fn(ud, id, json_string_value(json_object_get(f, "name")),
                    json_string_value(json_object_get(f, "arguments")), out);
        if (rc != 0) return rc;
    }
    return 0;
}

int agentproto_xlate_wait(agentproto_xlate *x, const char *type, const json_t *ev)
{
    if (!x->wait_approval) return AGENTPROTO_PASS;
    if (strcmp(type, "message") == 0) {
        const char *role = json_string_value(json_object_get(ev, "role"));
        const char *call = json_string_value(json_object_get(ev, "tool_call_id"));
        if (role && strcmp(role, "assistant") == 0)
            agentproto_ids_add_calls(x->pending, json_object_get(ev, "tool_calls"));
        else if (call)
            agentproto_ids_drop(x->pending, call);
        return AGENTPROTO_HOLD;
    }
    if (strcmp(type, "run_stopped") == 0) return AGENTPROTO_PASS;
    const char *id = json_string_value(json_object_get(ev, "approval_id"));
    if (strcmp(type, "approval_decided") != 0 || !id || strcmp(id, x->wait_approval) != 0)
        return AGENTPROTO_HOLD;
    free(x->wait_approval);
    x->wait_approval = NULL;
    return AGENTPROTO_DECIDED;
}
