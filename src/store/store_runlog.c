/*
 * store_runlog: a run's assistant text in its log, the token, message and
 * error events that both compaction (store_event.c) and crash recovery
 * (store_recover.c) read to learn which streamed messages were stored.
 */
#include <stdlib.h>
#include <string.h>

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

static void store_runlog__log_item_read(const void *ctx, const db_result *r, size_t i, void *out)
{
    (void)ctx;
    store_log_item *it = out;
    const char *type = db_result_get(r, i, 1);
    const char *payload = db_result_get(r, i, 2);
    it->seq = db_result_int(r, i, 0, 0);
    if (!type || evt_type_parse(type, &it->type) < 0) it->type = EVT__COUNT;
    json_t *obj = payload ? json_loads(payload, 0, NULL) : NULL;
    it->message_id = store_runlog__json_str_field(obj, "message_id");
    if (it->type == EVT_TOKEN) it->text = store_runlog__json_str_field(obj, "text");
    json_decref(obj);
}

void store__name_add(const char ***names, size_t *n, const char *name)
{
    *names = xrealloc(*names, (*n + 1) * sizeof **names);
    (*names)[(*n)++] = name;
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
    int rc = store__select(s,
                           "SELECT seq, type, payload FROM stream_events WHERE session_id = ? AND "
                           "run_id = ? AND type IN ('token', 'message', 'error') ORDER BY seq",
                           2, p, sizeof *l->items, store_runlog__log_item_read, NULL, (void **)&l->items, &l->n);
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        const store_log_item *it = &l->items[i];
        if (it->type == EVT_MESSAGE && it->message_id)
            store__name_add(&l->stored, &l->nstored, it->message_id);
        if (it->type == EVT_ERROR && it->message_id)
            store__name_add(&l->discarded, &l->ndiscarded, it->message_id);
    }
    return rc;
}
