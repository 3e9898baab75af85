/*
 * libFuzzer target for evt_parse: the lines of the token journal read at
 * start-up (docs/storage.md, The token journal) and the events
 * `chatplane events` reads.
 *
 * Any input either is refused with a message, or gives an event whose
 * json is exactly the input, with a positive seq, a session and a type
 * that has a name; a refused input leaves nothing allocated (the
 * sanitizers check it).
 *
 *   make O=build/fuzz fuzz-bins && build/fuzz/tests/fuzz/fuzz_evt_parse
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/evt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    evt *e = evt_parse((const char *)data, size, err, sizeof err);
    if (!e) {
        if (err[0] == '\0') abort();
        return 0;
    }
    if (e->json_len != size || memcmp(e->json, data, size) != 0) abort();
    if (e->seq < 1 || !e->session_id || !evt_type_name(e->type)) abort();
    evt_unref(e);
    return 0;
}
