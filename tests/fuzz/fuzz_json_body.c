/*
 * libFuzzer target for JSON request bodies: jansson's parser as the server
 * calls it (duplicate keys rejected), then the body checks of every route
 * (validate_body), and for a mode edit the limits and guard objects
 * applied to a mode.
 *
 * The first input byte picks the schema; the rest is the body. Invariants:
 * a refused body has a message; an accepted body's required fields are
 * there and its strings are what validate_get_string returns; an applied
 * mode keeps limits that are unlimited or positive.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_json_body -max_total_time=20
 * tests/fuzz/corpus/json_body
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mode.h"
#include "net/validate.h"

static const validate_schema *const fuzz_schemas[] = {
    &validate_session_create, &validate_session_patch, &validate_run_start,    &validate_continue,
    &validate_stop,           &validate_mode_put,      &validate_brain_stream, &validate_login,
};
#define FUZZ_NSCHEMAS (sizeof fuzz_schemas / sizeof fuzz_schemas[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536) return 0;
    const validate_schema *schema = fuzz_schemas[data[0] % FUZZ_NSCHEMAS];
    json_error_t je;
    json_t *body = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, &je);
    if (!body) {
        if (je.line < -1 || je.column < -1) abort();
        return 0;
    }
    static const char *const modes[] = {"quick", "standard", "deep"};
    validate_ctx ctx = {.message_bytes = 64, .modes = modes, .nmodes = 3};
    char err[512];
    if (validate_body(schema, body, &ctx, err, sizeof err) != 0) {
        if (!err[0]) abort();
        json_decref(body);
        return 0;
    }
    if (!json_is_object(body)) abort();
    for (size_t i = 0; i < schema->n; i++) {
        const validate_field *f = &schema->fields[i];
        const json_t *v = json_object_get(body, f->name);
        if (f->required && (!v || json_is_null(v))) abort();
        const char *s = validate_get_string(body, f->name);
        if (s && f->kind == VALIDATE_MESSAGE && (!*s || strlen(s) > ctx.message_bytes)) abort();
        if (s && f->kind == VALIDATE_ID && (!*s || strlen(s) > 64)) abort();
    }
    if (schema == &validate_mode_put) {
        mode m = *mode_preset("standard");
        const json_t *limits = json_object_get(body, "limits");
        const json_t *guard = json_object_get(body, "guard");
        if (json_is_object(limits) &&
            mode_limits_apply_json(&m.limits, limits, "limits", err, sizeof err) == 0) {
            if (m.limits.steps != MODE_UNLIMITED && m.limits.steps < 0) abort();
            json_decref(mode_limits_to_json(&m.limits));
        }
        if (json_is_object(guard) &&
            mode_guard_apply_json(&m.guard, guard, "guard", err, sizeof err) == 0)
            json_decref(mode_guard_to_json(&m.guard));
    }
    json_decref(body);
    return 0;
}
