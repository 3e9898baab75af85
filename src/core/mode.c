#include "core/mode.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/*
 * The largest limit accepted from JSON. Budgets compute with milliseconds and
 * add usage to limits, so a bound far below INT64_MAX keeps that arithmetic
 * free of overflow while being larger than any budget anyone would set.
 */
#define MODE_LIMIT_MAX INT64_C(1000000000000000)
#define MODE_GUARD_MIN 1
#define MODE_GUARD_MAX 1000

const char *const MODE_DEFAULT = "standard";

#define MODE_GUARD_DEFAULTS                                                                        \
    {                                                                                              \
        .loop_warn = 3, .loop_stop = 4, .fail_warn = 2, .fail_stop = 3, .stale_steps = 4           \
    }

/* The modes of docs/runs.md, smallest first; mode_next_larger relies on the order. */
static const mode mode__presets[MODE_PRESET_COUNT] = {
    {
        .name = "quick",
        .description = "Short answers: a few steps and tool calls.",
        .limits = {.steps = 3,
                   .seconds = 30,
                   .tokens = 8000,
                   .tool_calls = 3,
                   .retries = 1,
                   .cost_usd = MODE_UNLIMITED},
        .guard = MODE_GUARD_DEFAULTS,
        .approval = APPROVAL_RISKY,
    },
    {
        .name = "standard",
        .description = "Everyday tasks: room for several tool calls.",
        .limits = {.steps = 10,
                   .seconds = 120,
                   .tokens = 50000,
                   .tool_calls = 15,
                   .retries = 3,
                   .cost_usd = MODE_UNLIMITED},
        .guard = MODE_GUARD_DEFAULTS,
        .approval = APPROVAL_RISKY,
    },
    {
        .name = "deep",
        .description = "Long investigations: many steps, tools and tokens.",
        .limits = {.steps = 40,
                   .seconds = 900,
                   .tokens = 400000,
                   .tool_calls = 80,
                   .retries = 6,
                   .cost_usd = MODE_UNLIMITED},
        .guard = MODE_GUARD_DEFAULTS,
        .approval = APPROVAL_RISKY,
    },
};

const mode *mode_presets(void)
{
    return mode__presets;
}

const mode *mode_preset(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < MODE_PRESET_COUNT; i++)
        if (strcmp(mode__presets[i].name, name) == 0) return &mode__presets[i];
    return NULL;
}

const char *mode_next_larger(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i + 1 < MODE_PRESET_COUNT; i++)
        if (strcmp(mode__presets[i].name, name) == 0) return mode__presets[i + 1].name;
    return NULL;
}

static json_t *mode__limit_json(int64_t v)
{
    return v < 0 ? json_null() : json_integer((json_int_t)v);
}

json_t *mode_limits_to_json(const mode_limits *l)
{
    json_t *o = json_object();
    json_object_set_new(o, "steps", mode__limit_json(l->steps));
    json_object_set_new(o, "seconds", mode__limit_json(l->seconds));
    json_object_set_new(o, "tokens", mode__limit_json(l->tokens));
    json_object_set_new(o, "tool_calls", mode__limit_json(l->tool_calls));
    json_object_set_new(o, "retries", mode__limit_json(l->retries));
    json_object_set_new(o, "cost_usd", l->cost_usd < 0 ? json_null() : json_real(l->cost_usd));
    return o;
}

json_t *mode_guard_to_json(const mode_guard *g)
{
    json_t *o = json_object();
    json_object_set_new(o, "loop_warn", json_integer(g->loop_warn));
    json_object_set_new(o, "loop_stop", json_integer(g->loop_stop));
    json_object_set_new(o, "fail_warn", json_integer(g->fail_warn));
    json_object_set_new(o, "fail_stop", json_integer(g->fail_stop));
    json_object_set_new(o, "stale_steps", json_integer(g->stale_steps));
    return o;
}

json_t *mode_to_json(const mode *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(m->name));
    json_object_set_new(o, "description", json_string(m->description));
    json_object_set_new(o, "limits", mode_limits_to_json(&m->limits));
    json_object_set_new(o, "guard", mode_guard_to_json(&m->guard));
    json_object_set_new(o, "approval", json_string(approval_policy_name(m->approval)));
    return o;
}

/* Writes "<prefix>.<key>" (or the bare key without a prefix) into out. */
static void mode__field(const char *prefix, const char *key, char *out, size_t outlen)
{
    if (prefix && *prefix)
        snprintf(out, outlen, "%s.%s", prefix, key);
    else
        snprintf(out, outlen, "%s", key);
}

/* Reports that obj itself is not an object, naming it by its prefix. */
static int mode__not_object(const char *prefix, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s must be an object", prefix && *prefix ? prefix : what);
    return -1;
}

/* Reads one integer limit: a non-negative integer up to MODE_LIMIT_MAX, or
 * null for unlimited. Returns 0, or -1 with a message naming the field. */
static int mode__read_limit(const json_t *v, const char *field, int64_t *out, char *err,
                            size_t errlen)
{
    if (json_is_null(v)) {
        *out = MODE_UNLIMITED;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(err, errlen, "%s must be a non-negative integer or null", field);
        return -1;
    }
    if (json_integer_value(v) > MODE_LIMIT_MAX) {
        snprintf(err, errlen, "%s must be at most %lld or null", field, (long long)MODE_LIMIT_MAX);
        return -1;
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/*
 * Applies the keys of obj onto a copy of *l and stores the copy only when
 * every key was valid, so a bad request never leaves half its changes behind.
 */
int mode_limits_apply_json(mode_limits *l, const json_t *obj, const char *prefix, char *err,
                           size_t errlen)
{
    if (!json_is_object(obj)) return mode__not_object(prefix, "limits", err, errlen);
    mode_limits next = *l;
    const char *key;
    json_t *v;
    char field[128];
    /* json_object_foreach takes a non-const object; it only reads it here. */
    json_object_foreach((json_t *)obj, key, v)
    {
        mode__field(prefix, key, field, sizeof field);
        int64_t *slot = NULL;
        if (strcmp(key, "steps") == 0)
            slot = &next.steps;
        else if (strcmp(key, "seconds") == 0)
            slot = &next.seconds;
        else if (strcmp(key, "tokens") == 0)
            slot = &next.tokens;
        else if (strcmp(key, "tool_calls") == 0)
            slot = &next.tool_calls;
        else if (strcmp(key, "retries") == 0)
            slot = &next.retries;
        if (slot) {
            if (mode__read_limit(v, field, slot, err, errlen) != 0) return -1;
        } else if (strcmp(key, "cost_usd") == 0) {
            if (json_is_null(v)) {
                next.cost_usd = MODE_UNLIMITED;
            } else if (json_is_number(v) && json_number_value(v) >= 0) {
                next.cost_usd = json_number_value(v);
            } else {
                snprintf(err, errlen, "%s must be a non-negative number or null", field);
                return -1;
            }
        } else {
            snprintf(err, errlen, "%s is not a known field", field);
            return -1;
        }
    }
    *l = next;
    return 0;
}

/* Checks that a warn threshold is below its stop threshold. */
static int mode__check_order(int warn, int stop, const char *prefix, const char *warn_key,
                             const char *stop_key, char *err, size_t errlen)
{
    if (warn < stop) return 0;
    char wf[128], sf[128];
    mode__field(prefix, warn_key, wf, sizeof wf);
    mode__field(prefix, stop_key, sf, sizeof sf);
    snprintf(err, errlen, "%s must be less than %s", wf, sf);
    return -1;
}

/*
 * Applies the keys of obj onto a copy of *g; the order of warn and stop
 * thresholds is checked on the result, so a request may raise both at once.
 */
int mode_guard_apply_json(mode_guard *g, const json_t *obj, const char *prefix, char *err,
                          size_t errlen)
{
    if (!json_is_object(obj)) return mode__not_object(prefix, "guard", err, errlen);
    mode_guard next = *g;
    const char *key;
    json_t *v;
    char field[128];
    json_object_foreach((json_t *)obj, key, v)
    {
        mode__field(prefix, key, field, sizeof field);
        int *slot = NULL;
        if (strcmp(key, "loop_warn") == 0)
            slot = &next.loop_warn;
        else if (strcmp(key, "loop_stop") == 0)
            slot = &next.loop_stop;
        else if (strcmp(key, "fail_warn") == 0)
            slot = &next.fail_warn;
        else if (strcmp(key, "fail_stop") == 0)
            slot = &next.fail_stop;
        else if (strcmp(key, "stale_steps") == 0)
            slot = &next.stale_steps;
        if (!slot) {
            snprintf(err, errlen, "%s is not a known field", field);
            return -1;
        }
        if (!json_is_integer(v) || json_integer_value(v) < MODE_GUARD_MIN ||
            json_integer_value(v) > MODE_GUARD_MAX) {
            snprintf(err, errlen, "%s must be an integer from %d to %d", field, MODE_GUARD_MIN,
                     MODE_GUARD_MAX);
            return -1;
        }
        *slot = (int)json_integer_value(v);
    }
    if (mode__check_order(next.loop_warn, next.loop_stop, prefix, "loop_warn", "loop_stop", err,
                          errlen) != 0 ||
        mode__check_order(next.fail_warn, next.fail_stop, prefix, "fail_warn", "fail_stop", err,
                          errlen) != 0)
        return -1;
    *g = next;
    return 0;
}
