#include "core/control.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const control__actions[] = {
    [CONTROL_STOP] = "stop",
    [CONTROL_MODE] = "mode",
    [CONTROL_PUT_MODE] = "put_mode",
    [CONTROL_SESSION_DELETED] = "session_deleted",
    [CONTROL_APPROVAL_DECIDED] = "approval_decided",
    [CONTROL_INPUT_ANSWERED] = "input_answered",
};
#define CONTROL__KINDS (sizeof control__actions / sizeof control__actions[0])

/* Sets o[key] to the string s; false when s is NULL or not UTF-8. */
static bool control__set_str(json_t *o, const char *key, const char *s)
{
    json_t *v = s ? json_string(s) : NULL;
    return v && json_object_set_new(o, key, v) == 0;
}

/* Whether v is a mode object as far as the envelope cares: an object with a
 * string name. Its limits and guard are core/mode's to check. */
static bool control__is_mode(const json_t *v)
{
    return json_is_object(v) && json_is_string(json_object_get(v, "name"));
}

char *control_encode(const control_msg *m)
{
    if ((unsigned)m->kind >= CONTROL__KINDS) return NULL;
    const char *action = control__actions[m->kind];
    json_t *o = json_object();
    bool ok = control__set_str(o, "instance", m->instance);
    switch (m->kind) {
    case CONTROL_STOP:
    case CONTROL_MODE:
        ok =
            ok && control__set_str(o, "run_id", m->run_id) && control__set_str(o, "action", action);
        if (m->kind == CONTROL_MODE) ok = ok && control__set_str(o, "mode", m->mode_name);
        break;
    case CONTROL_PUT_MODE:
        /* jansson's set takes a reference, which changes only the count. */
        ok = ok && control__set_str(o, "from", m->from) && control__set_str(o, "action", action) &&
             control__is_mode(m->mode) && json_object_set(o, "mode", (json_t *)m->mode) == 0;
        break;
    case CONTROL_SESSION_DELETED:
        ok = ok && control__set_str(o, "from", m->from) && control__set_str(o, "action", action) &&
             control__set_str(o, "session_id", m->session_id);
        break;
    case CONTROL_APPROVAL_DECIDED:
    case CONTROL_INPUT_ANSWERED:
        ok = ok && control__set_str(o, "run_id", m->run_id) &&
             control__set_str(o, "action", action) &&
             control__set_str(o, m->kind == CONTROL_APPROVAL_DECIDED ? "approval_id" : "input_id",
                              m->item_id);
        break;
    }
    char *text = ok ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text && strlen(text) > CONTROL_MAX) {
        free(text);
        text = NULL;
    }
    return text;
}

static const char *control__str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Writes an action that is none of ours into err, shown safely: at most 32
 * characters, anything but letters, digits, '_' and '-' as '?'. */
static void control__unknown_action(const char *action, char *err, size_t errlen)
{
    char shown[33];
    size_t n = 0;
    for (; action[n] && n < sizeof shown - 1; n++) {
        char c = action[n];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '-';
        shown[n] = plain ? c : '?';
    }
    shown[n] = '\0';
    snprintf(err, errlen,
             "the control message's action '%s%s' is not one of stop, mode, "
             "put_mode, session_deleted, approval_decided, input_answered",
             shown, action[n] ? "…" : "");
}

int control_decode(const char *text, size_t len, control_msg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len > CONTROL_MAX) {
        snprintf(err, errlen, "the control message is %zu bytes, more than %d", len, CONTROL_MAX);
        return -1;
    }
    json_error_t je;
    json_t *o = json_loadb(text, len, 0, &je);
    if (!o) {
        snprintf(err, errlen, "the control message is not JSON: %s", je.text);
        return -1;
    }
    if (!json_is_object(o)) {
        snprintf(err, errlen, "the control message is not a JSON object");
        json_decref(o);
        return -1;
    }

    control_msg m = {.doc = o};
    const char *action = control__str(o, "action");
    const char *missing = NULL; /* the first field that is missing or not a string */
    m.instance = control__str(o, "instance");
    if (!action) {
        missing = "action";
    } else if (!m.instance) {
        missing = "instance";
    } else if (strcmp(action, "stop") == 0 || strcmp(action, "mode") == 0) {
        m.kind = action[0] == 's' ? CONTROL_STOP : CONTROL_MODE;
        m.run_id = control__str(o, "run_id");
        if (m.kind == CONTROL_MODE) m.mode_name = control__str(o, "mode");
        if (!m.run_id)
            missing = "run_id";
        else if (m.kind == CONTROL_MODE && !m.mode_name)
            missing = "mode";
    } else if (strcmp(action, "put_mode") == 0) {
        m.kind = CONTROL_PUT_MODE;
        m.from = control__str(o, "from");
        m.mode = json_object_get(o, "mode");
        if (!m.from) {
            missing = "from";
        } else if (!control__is_mode(m.mode)) {
            snprintf(err, errlen, "the control message's mode is not an object with a name");
            json_decref(o);
            return -1;
        }
        m.mode_name = control__str(m.mode, "name");
    } else if (strcmp(action, "session_deleted") == 0) {
        m.kind = CONTROL_SESSION_DELETED;
        m.from = control__str(o, "from");
        m.session_id = control__str(o, "session_id");
        if (!m.from)
            missing = "from";
        else if (!m.session_id)
            missing = "session_id";
    } else if (strcmp(action, "approval_decided") == 0 || strcmp(action, "input_answered") == 0) {
        bool apr = action[0] == 'a';
        m.kind = apr ? CONTROL_APPROVAL_DECIDED : CONTROL_INPUT_ANSWERED;
        m.run_id = control__str(o, "run_id");
        m.item_id = control__str(o, apr ? "approval_id" : "input_id");
        if (!m.run_id)
            missing = "run_id";
        else if (!m.item_id)
            missing = apr ? "approval_id" : "input_id";
    } else {
        control__unknown_action(action, err, errlen);
        json_decref(o);
        return -1;
    }
    if (missing) {
        snprintf(err, errlen, "the control message has no string \"%s\"", missing);
        json_decref(o);
        return -1;
    }
    *out = m;
    return 0;
}

void control_msg_cleanup(control_msg *m)
{
    if (!m) return;
    json_decref(m->doc);
    memset(m, 0, sizeof *m);
}
