/*
 * libFuzzer target for the control message codec (core/control.c), which
 * reads what other instances send on the control channel.
 *
 * Any bytes must either decode to a message whose fields its kind needs
 * are all there, or fail with an error message. A decoded message must
 * encode, and its text must decode to the same message and encode to the
 * same text again. The one exception is put_mode: jansson writes the mode
 * object's numbers its own way ("1e2" becomes "100.0"), so its text may
 * outgrow the cap and fail to encode.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_control tests/fuzz/corpus/control
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/control.h"

/* The fields a kind needs are present, and those it does not are NULL. */
static void fuzz_check_fields(const control_msg *m)
{
    if (!m->instance || !m->doc) abort();
    switch (m->kind) {
    case CONTROL_STOP:
        if (!m->run_id || m->mode_name || m->from || m->session_id || m->mode || m->item_id)
            abort();
        break;
    case CONTROL_MODE:
        if (!m->run_id || !m->mode_name || m->from || m->session_id || m->mode || m->item_id)
            abort();
        break;
    case CONTROL_PUT_MODE:
        if (!m->from || !m->mode || !m->mode_name || m->run_id || m->session_id) abort();
        break;
    case CONTROL_SESSION_DELETED:
        if (!m->from || !m->session_id || m->run_id || m->mode_name || m->mode || m->item_id)
            abort();
        break;
    case CONTROL_APPROVAL_DECIDED:
    case CONTROL_INPUT_ANSWERED:
        if (!m->run_id || !m->item_id || m->from || m->session_id || m->mode_name || m->mode)
            abort();
        break;
    default:
        abort();
    }
}

static int fuzz_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    control_msg m;
    char err[160];
    err[0] = '\0';
    if (control_decode((const char *)data, size, &m, err, sizeof err) != 0) {
        if (!err[0] || m.doc) abort();
        return 0;
    }
    fuzz_check_fields(&m);
    char *text = control_encode(&m);
    if (!text) {
        if (m.kind != CONTROL_PUT_MODE) abort();
        control_msg_cleanup(&m);
        return 0;
    }
    control_msg back;
    if (control_decode(text, strlen(text), &back, err, sizeof err) != 0) abort();
    if (back.kind != m.kind || !fuzz_same(back.instance, m.instance) ||
        !fuzz_same(back.from, m.from) || !fuzz_same(back.run_id, m.run_id) ||
        !fuzz_same(back.mode_name, m.mode_name) || !fuzz_same(back.session_id, m.session_id) ||
        !fuzz_same(back.item_id, m.item_id) || (m.mode && !json_equal(back.mode, m.mode)))
        abort();
    char *again = control_encode(&back);
    if (!again || strcmp(again, text) != 0) abort();
    free(again);
    free(text);
    control_msg_cleanup(&back);
    control_msg_cleanup(&m);
    return 0;
}
