#include "net/validate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/utf8.h"

#define F(name, kind, req)                                                                         \
    {                                                                                              \
        name, kind, req, 0, NULL                                                                   \
    }

static const validate_field validate__session_fields[] = {
    F("title", VALIDATE_TITLE, false),
    F("mode", VALIDATE_MODE, false),
};
/* message is required unless regenerate is given: api_runs checks that. */
static const char *const validate__if_active[] = {"reject", "interrupt", "enqueue", NULL};
static const validate_field validate__run_fields[] = {
    F("message", VALIDATE_MESSAGE, false),
    F("mode", VALIDATE_MODE, false),
    F("regenerate", VALIDATE_TRUE, false),
    {"if_active", VALIDATE_CHOICE, false, 0, validate__if_active},
};
static const validate_field validate__continue_fields[] = {
    F("mode", VALIDATE_MODE, false),
};
static const char *const validate__policies[] = {"never", "risky", "always", NULL};
static const char *const validate__decisions[] = {"approve", "deny", NULL};
static const char *const validate__remembers[] = {"once", "run", "session", NULL};
static const validate_field validate__mode_fields[] = {
    F("limits", VALIDATE_OBJECT, false),
    F("guard", VALIDATE_OBJECT, false),
    {"description", VALIDATE_STRING, false, 511, NULL},
    {"approval", VALIDATE_CHOICE, false, 0, validate__policies},
};
static const validate_field validate__decision_fields[] = {
    {"decision", VALIDATE_CHOICE, true, 0, validate__decisions},
    {"reason", VALIDATE_STRING, false, 1000, NULL},
    {"remember", VALIDATE_CHOICE, false, 0, validate__remembers},
};
static const char *const validate__actions[] = {"accept", "decline", "cancel", NULL};
static const validate_field validate__answer_fields[] = {
    {"action", VALIDATE_CHOICE, true, 0, validate__actions},
    F("content", VALIDATE_OBJECT, false),
};
static const validate_field validate__brain_fields[] = {
    F("session_id", VALIDATE_ID, false),
    F("message", VALIDATE_MESSAGE, true),
    F("mode", VALIDATE_MODE, false),
};
static const validate_field validate__fork_fields[] = {
    F("message_id", VALIDATE_ID, false),
    F("message", VALIDATE_MESSAGE, false),
    F("title", VALIDATE_TITLE, false),
};
static const validate_field validate__login_fields[] = {
    {"token", VALIDATE_STRING, true, 1024, NULL},
};

#define SCHEMA(fields)                                                                             \
    {                                                                                              \
        fields, sizeof(fields) / sizeof(fields[0])                                                 \
    }

const validate_schema validate_session_create = SCHEMA(validate__session_fields);
const validate_schema validate_session_patch = SCHEMA(validate__session_fields);
const validate_schema validate_run_start = SCHEMA(validate__run_fields);
const validate_schema validate_continue = SCHEMA(validate__continue_fields);
const validate_schema validate_stop = {NULL, 0};
const validate_schema validate_mode_put = SCHEMA(validate__mode_fields);
const validate_schema validate_brain_stream = SCHEMA(validate__brain_fields);
const validate_schema validate_decision = SCHEMA(validate__decision_fields);
const validate_schema validate_answer = SCHEMA(validate__answer_fields);
const validate_schema validate_login = SCHEMA(validate__login_fields);
const validate_schema validate_fork = SCHEMA(validate__fork_fields);

/* Writes "mode 'x' is not one of a, b, c" into err. */
static void validate__mode_error(const char *name, const validate_ctx *ctx, char *err,
                                 size_t errlen)
{
    buf b;
    buf_init(&b, errlen > 0 ? errlen - 1 : 0);
    if (buf_printf(&b, "mode '%s' is not one of ", name) != 0) {
        /* The name is too long to repeat: say it without the name. */
        snprintf(err, errlen, "mode is not the name of a known mode");
        buf_cleanup(&b);
        return;
    } else {
        for (size_t i = 0; i < ctx->nmodes; i++)
            if (buf_printf(&b, "%s%s", i ? ", " : "", ctx->modes[i]) != 0) break;
    }
    snprintf(err, errlen, "%s", b.data ? b.data : "");
    buf_cleanup(&b);
}

/* Checks one present, non-null value against its field. */
static int validate__value(const validate_field *f, const json_t *v, const validate_ctx *ctx,
                           char *err, size_t errlen)
{
    switch (f->kind) {
    case VALIDATE_OBJECT:
        if (!json_is_object(v)) {
            snprintf(err, errlen, "%s must be an object", f->name);
            return -1;
        }
        return 0;
    case VALIDATE_MESSAGE:
        if (!json_is_string(v) || json_string_length(v) == 0) {
            snprintf(err, errlen, "%s must be a non-empty string", f->name);
            return -1;
        }
        if (json_string_length(v) > ctx->message_bytes) {
            snprintf(err, errlen, "%s must be at most %zu bytes", f->name, ctx->message_bytes);
            return -1;
        }
        return 0;
    case VALIDATE_TITLE: {
        if (!json_is_string(v)) {
            snprintf(err, errlen, "%s must be a string", f->name);
            return -1;
        }
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (strspn(s, " \t\r\n") == len) {
            snprintf(err, errlen, "%s must not be empty", f->name);
            return -1;
        }
        if (utf8_count(s, len) > VALIDATE_TITLE_MAX) {
            snprintf(err, errlen, "%s must be at most %d characters", f->name, VALIDATE_TITLE_MAX);
            return -1;
        }
        return 0;
    }
    case VALIDATE_MODE: {
        if (!json_is_string(v)) {
            snprintf(err, errlen, "%s must be a string", f->name);
            return -1;
        }
        const char *s = json_string_value(v);
        for (size_t i = 0; i < ctx->nmodes; i++)
            if (strcmp(ctx->modes[i], s) == 0) return 0;
        validate__mode_error(s, ctx, err, errlen);
        return -1;
    }
    case VALIDATE_ID:
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64) {
            snprintf(err, errlen, "%s must be a non-empty string of at most 64 bytes", f->name);
            return -1;
        }
        return 0;
    case VALIDATE_TRUE:
        if (!json_is_true(v)) {
            snprintf(err, errlen, "%s must be true", f->name);
            return -1;
        }
        return 0;
    case VALIDATE_CHOICE: {
        const char *s = json_string_value(v);
        for (size_t i = 0; s && f->choices[i]; i++)
            if (strcmp(f->choices[i], s) == 0) return 0;
        buf b;
        buf_init(&b, errlen > 0 ? errlen - 1 : 0);
        buf_printf(&b, "%s must be one of", f->name);
        for (size_t i = 0; f->choices[i]; i++) buf_printf(&b, "%s %s", i ? "," : "", f->choices[i]);
        snprintf(err, errlen, "%s", b.data ? b.data : "");
        buf_cleanup(&b);
        return -1;
    }
    case VALIDATE_STRING:
        if (!json_is_string(v)) {
            snprintf(err, errlen, "%s must be a string", f->name);
            return -1;
        }
        if (f->max_chars &&
            utf8_count(json_string_value(v), json_string_length(v)) > f->max_chars) {
            snprintf(err, errlen, "%s must be at most %zu characters", f->name, f->max_chars);
            return -1;
        }
        return 0;
    }
    return 0;
}

int validate_body(const validate_schema *schema, const json_t *body, const validate_ctx *ctx,
                  char *err, size_t errlen)
{
    if (!json_is_object(body)) {
        snprintf(err, errlen, "the body must be a JSON object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        size_t i = 0;
        while (i < schema->n && strcmp(schema->fields[i].name, key) != 0) i++;
        if (i == schema->n) {
            snprintf(err, errlen, "unknown field '%.64s'", key);
            return -1;
        }
    }
    for (size_t i = 0; i < schema->n; i++) {
        const validate_field *f = &schema->fields[i];
        const json_t *fv = json_object_get(body, f->name);
        if (!fv || (json_is_null(fv) && !f->required)) {
            if (!f->required) continue;
            if (f->kind == VALIDATE_MESSAGE)
                snprintf(err, errlen, "%s must be a non-empty string", f->name);
            else
                snprintf(err, errlen, "%s is required", f->name);
            return -1;
        }
        if (validate__value(f, fv, ctx, err, errlen) != 0) return -1;
    }
    return 0;
}

const char *validate_get_string(const json_t *body, const char *name)
{
    const json_t *v = json_object_get(body, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int validate_query_int(const char *name, const char *value, int64_t min, int64_t max, int64_t *out,
                       char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    long long v = (value && *value >= '0' && *value <= '9') ? strtoll(value, &end, 10) : 0;
    if (!end || *end || errno || v < min || v > max) {
        if (max == INT64_MAX && min == 0)
            snprintf(err, errlen, "%s must be a non-negative integer", name);
        else
            snprintf(err, errlen, "%s must be an integer from %lld to %lld", name, (long long)min,
                     (long long)max);
        return -1;
    }
    *out = v;
    return 0;
}
