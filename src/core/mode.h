/*
 * mode: the named budget presets of a run (docs/runs.md, Modes) and their
 * guardrail thresholds (docs/runs.md, Guardrails), with their JSON form.
 *
 * A limit of MODE_UNLIMITED (JSON null) means the dimension is not limited.
 */
#ifndef CHATPLANE_MODE_H
#define CHATPLANE_MODE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/approval.h"

#define MODE_UNLIMITED       (-1)
#define MODE_NAME_MAX        32
#define MODE_DESCRIPTION_MAX 512

typedef struct mode_limits {
    int64_t steps;      /* model turns; MODE_UNLIMITED for none */
    int64_t seconds;    /* wall-clock seconds */
    int64_t tokens;     /* prompt + completion tokens */
    int64_t tool_calls; /* tool executions started */
    int64_t retries;    /* model calls repeated after a retryable error */
    double cost_usd;    /* negative for none (JSON null) */
} mode_limits;

typedef struct mode_guard {
    int loop_warn;   /* identical call+outcome count that warns */
    int loop_stop;   /* ... that stops the run */
    int fail_warn;   /* consecutive failed tool executions that warn */
    int fail_stop;   /* ... that stop the run */
    int stale_steps; /* steps in a row with only already-seen outcomes */
} mode_guard;

typedef struct mode {
    char name[MODE_NAME_MAX];
    char description[MODE_DESCRIPTION_MAX];
    mode_limits limits;
    mode_guard guard;
    approval_policy approval; /* which tool calls are asked of a person */
} mode;

/* The built-in presets, smallest first: quick, standard, deep. */
#define MODE_PRESET_COUNT 3
const mode *mode_presets(void);
/* Returns the preset with this name, or NULL. */
const mode *mode_preset(const char *name);
/* The default mode's name ("standard"). */
extern const char *const MODE_DEFAULT;

/* Returns the name of the next larger preset ("quick" -> "standard" ->
 * "deep"), or NULL for the largest or an unknown name. */
const char *mode_next_larger(const char *name);

/* Returns a new JSON object {"steps":…,…,"cost_usd":…}; null for unlimited. */
json_t *mode_limits_to_json(const mode_limits *l);
/* Returns a new JSON object {"loop_warn":…,…}. */
json_t *mode_guard_to_json(const mode_guard *g);
/* Returns a new JSON object {"name","description","limits","guard","approval"}. */
json_t *mode_to_json(const mode *m);

/*
 * Applies a partial JSON object onto *l (or *g): keys that are present replace
 * the field, absent keys keep it. Limits accept a non-negative integer or null
 * (cost_usd a non-negative number or null); guard thresholds are integers from
 * 1 to 1000, and a warn threshold must be below its stop threshold.
 * On error returns -1, leaves *l unchanged and writes a message naming the
 * field (with prefix, e.g. "limits.steps") into err.
 */
int mode_limits_apply_json(mode_limits *l, const json_t *obj, const char *prefix, char *err,
                           size_t errlen);
int mode_guard_apply_json(mode_guard *g, const json_t *obj, const char *prefix, char *err,
                          size_t errlen);

#endif
