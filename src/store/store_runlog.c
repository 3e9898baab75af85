/*
 * store_runlog: a run's assistant text in its log, the token, message and
 * error events that both compaction (store_event.c) and crash recovery
 * (store_recover.c) read to learn which streamed messages were stored.
 */
#include <stdlib.h>
#include <string.h>

#include "core/evtpack.h"
#include "lib/xmalloc.h"
#include "store/store.h"
#include "store/store_int.h"

void store__run_log_cleanup(store_run_log *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].message_id);
        free(l->items[i].text);
    }
    free(l->items);
    free(l->stored);
    free(l->discarded);
    memset(l, 0, sizeof *l);
}

static char *store_runlog__json_str_field(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? xstrdup(v) : NULL;
}

/* Adds the event seq of the given type and encoding to l's items. */
static void store_runlog__add(store_run_log *l, size_t *cap, int64_t seq, const char *type,
                              const char *json, size_t len)
{
    if (l->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        l->items = xrealloc(l->items, *cap * sizeof *l->items);
    }
    store_log_item *it = &l->items[l->n++];
    memset(it, 0, sizeof *it);
    it->seq = seq;
    if (!type || evt_type_parse(type, &it->type) < 0) it->type = EVT__COUNT;
    json_t *obj = json ? json_loadb(json, len, 0, NULL) : NULL;
    it->message_id = store_runlog__json_str_field(obj, "message_id");
    if (it->type == EVT_TOKEN) it->text = store_runlog__json_str_field(obj, "text");
    json_decref(obj);
}

void store__name_add(const char ***names, size_t *n, const char *name)
{
    *names = xrealloc(*names, (*n + 1) * sizeof **names);
    (*names)[(*n)++] = name;
}

bool store__same_name(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

bool store__name_in(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return true;
    return false;
}

int store__run_log_read(store *s, const char *session_id, const char *run_id, store_run_log *l)
{
    const char *p[] = {session_id, run_id};
    db_result *r = NULL;
    int rc = store__query(s,
                          "SELECT seq, type, payload FROM stream_events WHERE session_id = ? AND "
                          "run_id = ? AND type IN ('token', 'message', 'error', '" STORE_TOKEN_ROW
                          "') ORDER BY seq",
                          2, p, &r);
    size_t cap = 0;
    for (size_t i = 0; rc == 0 && i < db_result_rows(r); i++) {
        const char *type = db_result_get(r, i, 1), *payload = db_result_get(r, i, 2);
        if (!payload || strcmp(type, STORE_TOKEN_ROW) != 0) {
            store_runlog__add(l, &cap, db_result_int(r, i, 0, 0), type, payload,
                              payload ? strlen(payload) : 0);
            continue;
        }
        /* A token row: its token events, in order. */
        const char *at = payload, *end = payload + strlen(payload);
        evtpack_item it;
        while (evtpack_next(&at, end, &it))
            if (strcmp(it.type, evt_type_name(EVT_TOKEN)) == 0)
                store_runlog__add(l, &cap, it.seq, it.type, it.json, it.json_len);
    }
    db_result_free(r);
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        const store_log_item *it = &l->items[i];
        if (it->type == EVT_MESSAGE && it->message_id)
            store__name_add(&l->stored, &l->nstored, it->message_id);
        if (it->type == EVT_ERROR && it->message_id)
            store__name_add(&l->discarded, &l->ndiscarded, it->message_id);
    }
    return rc;
}
