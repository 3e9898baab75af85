/*
 * libFuzzer target for core/aisdk: the chat request reader, which reads
 * what any AI SDK client posts, and the event translator fed the same bytes
 * as chatplane events.
 *
 * Invariants: a refused body has a message and leaves nothing allocated
 * after cleanup; an accepted one has a valid chat id and either a message
 * or an approval answer with an id. Whatever events come, every frame
 * written is "data: " with one line of JSON holding a string "type" (or
 * the last one, "[DONE]"), and a blank line.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_aisdk tests/fuzz/corpus/aisdk
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/aisdk.h"
#include "core/agentproto.h"

static void fuzz_check_frames(const buf *out)
{
    size_t pos = 0;
    while (pos < out->len) {
        if (out->len - pos < 8 || memcmp(out->data + pos, "data: ", 6) != 0) abort();
        const char *start = out->data + pos + 6;
        const char *end = memchr(start, '\n', out->len - pos - 6);
        if (!end || (size_t)(end - out->data) + 1 >= out->len || end[1] != '\n') abort();
        size_t len = (size_t)(end - start);
        pos = (size_t)(end - out->data) + 2;
        if (len == 6 && memcmp(start, "[DONE]", 6) == 0) {
            if (pos != out->len) abort();
            continue;
        }
        json_t *ev = json_loadb(start, len, 0, NULL);
        if (!ev || !json_is_string(json_object_get(ev, "type"))) abort();
        json_decref(ev);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aisdk_input in;
    char err[256];
    err[0] = '\0';
    if (aisdk_input_parse((const char *)data, size, &in, err, sizeof err) != 0) {
        if (!err[0]) abort();
    } else {
        if (!agentproto_thread_valid(in.chat_id)) abort();
        if (!in.message == !in.approval_id) abort();
        if (in.approval_id && !*in.approval_id) abort();
    }
    aisdk_input_cleanup(&in);

    /* The same bytes as events: a list of them, or one. */
    json_t *v = json_loadb((const char *)data, size, 0, NULL);
    if (!v) return 0;
    aisdk_xlate x;
    aisdk_xlate_init(&x, size % 2 ? "apr_1" : NULL);
    if (size % 3 == 0) aisdk_xlate_decided(&x, "apr_2");
    buf out;
    buf_init(&out, 1 << 24);
    if (json_is_array(v)) {
        size_t i;
        json_t *ev;
        json_array_foreach(v, i, ev) if (aisdk_xlate_event(&x, ev, &out) < 0) break;
    } else {
        aisdk_xlate_event(&x, v, &out);
    }
    fuzz_check_frames(&out);
    buf_cleanup(&out);
    aisdk_xlate_cleanup(&x);
    json_decref(v);
    return 0;
}
