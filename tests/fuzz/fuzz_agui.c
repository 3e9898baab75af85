/*
 * libFuzzer target for core/agui: the RunAgentInput reader, which reads
 * what any AG-UI client posts, and the event translator fed the same bytes
 * as chatplane events.
 *
 * Invariants: a refused body has a message and leaves nothing allocated
 * after cleanup; an accepted one has a valid thread id, a run id, and
 * resume entries with ids. Whatever events come, every frame written is
 * "data: " with one line of JSON holding a string "type", and a blank line.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_agui tests/fuzz/corpus/agui
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/agui.h"
#include "core/agentproto.h"

static void fuzz_check_frames(const buf *out)
{
    size_t pos = 0;
    while (pos < out->len) {
        if (out->len - pos < 8 || memcmp(out->data + pos, "data: ", 6) != 0) abort();
        const char *start = out->data + pos + 6;
        const char *end = memchr(start, '\n', out->len - pos - 6);
        if (!end || (size_t)(end - out->data) + 1 >= out->len || end[1] != '\n') abort();
        json_t *ev = json_loadb(start, (size_t)(end - start), 0, NULL);
        if (!ev || !json_is_string(json_object_get(ev, "type"))) abort();
        json_decref(ev);
        pos = (size_t)(end - out->data) + 2;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agui_input in;
    char err[256];
    err[0] = '\0';
    if (agui_input_parse((const char *)data, size, &in, err, sizeof err) != 0) {
        if (!err[0]) abort();
    } else {
        if (!agentproto_thread_valid(in.thread_id) || !in.run_id || !*in.run_id) abort();
        if (in.nresume > AGUI_RESUME_MAX) abort();
        for (size_t i = 0; i < in.nresume; i++)
            if (!in.resume[i].interrupt_id || !*in.resume[i].interrupt_id) abort();
    }
    agui_input_cleanup(&in);

    /* The same bytes as events: a list of them, or one. */
    json_t *v = json_loadb((const char *)data, size, 0, NULL);
    if (!v) return 0;
    agui_xlate x;
    agui_xlate_init(&x, "t", "r", size % 2 ? "apr_1" : NULL);
    buf out;
    buf_init(&out, 1 << 24);
    if (json_is_array(v)) {
        size_t i;
        json_t *ev;
        json_array_foreach(v, i, ev) if (agui_xlate_event(&x, ev, &out) < 0) break;
    } else {
        agui_xlate_event(&x, v, &out);
    }
    fuzz_check_frames(&out);
    buf_cleanup(&out);
    agui_xlate_cleanup(&x);
    json_decref(v);
    return 0;
}
