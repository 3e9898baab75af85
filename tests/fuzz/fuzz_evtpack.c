/*
 * libFuzzer target for core/evtpack, the lines of a token row.
 *
 * Every line the reader accepts lies inside the input, carries a positive
 * seq, a type name and a JSON object with no newline, and written again
 * with evtpack_append gives back exactly the bytes it was read from.
 *
 *   make O=build/fuzz fuzz-bins && build/fuzz/tests/fuzz/fuzz_evtpack
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/evtpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data, *end = text + size;
    const char *at = text;
    evtpack_item it;
    buf again;
    buf_init(&again, 1u << 20);
    while (evtpack_next(&at, end, &it)) {
        if (it.seq <= 0 || !it.type[0] || strlen(it.type) > EVTPACK_TYPE_MAX) abort();
        if (it.json < text || it.json + it.json_len > end || it.json_len < 2) abort();
        if (it.json[0] != '{' || it.json[it.json_len - 1] != '}') abort();
        if (memchr(it.json, '\n', it.json_len)) abort();
        buf_reset(&again);
        if (evtpack_append(&again, it.seq, it.type, it.json, it.json_len) != 0) abort();
        /* The line just read ends right before at. */
        if (again.len > (size_t)(at - text)) abort();
        if (memcmp(at - again.len, again.data, again.len) != 0) abort();
    }
    buf_cleanup(&again);
    return 0;
}
