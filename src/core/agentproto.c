#include "core/agentproto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "lib/xmalloc.h"

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

char *agentproto_text(const json_t *parts, const char *where, char *err, size_t errlen)
{
    if (!json_is_array(parts)) {
        if (err && errlen) snprintf(err, errlen, "%s must be a list", where);
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
            if (err && errlen)
                snprintf(err, errlen, "%s[%zu]: only text parts are supported", where, k);
            buf_cleanup(&b);
            return NULL;
        }
        if (buf_append_str(&b, text) != 0) {
            if (err && errlen) snprintf(err, errlen, "%s is too long", where);
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
