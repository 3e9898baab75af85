/*
 * store_fork: a new session that starts with another session's history
 * (docs/api.md, Fork). The source is only read.
 */
#include <string.h>

#include "core/evt.h"
#include "lib/id.h"
#include "store/store.h"
#include "store/store_int.h"

int store_session_fork(store *s, const store_session *row)
{
    store_message *ms = NULL;
    size_t n = 0;
    int rc = store_message_list(s, row->forked_from_session, &ms, &n);
    if (rc < 0) return rc;
    size_t cut = n;
    if (row->forked_from_message) {
        for (cut = 0; cut < n && strcmp(ms[cut].id, row->forked_from_message) != 0; cut++)
            ;
        if (cut == n || strcmp(ms[cut].role, "user") != 0) {
            store_message_list_free(ms, n);
            return store__not_found(s, "user message", row->forked_from_message);
        }
    }
    rc = store_session_insert(s, row);
    for (size_t i = 0; rc >= 0 && i < cut; i++) {
        store_message m = ms[i];
        char id[ID_MAX];
        id_new(id, "msg", m.created_ms);
        m.id = id;
        m.session_id = row->id;
        m.run_id = NULL;
        rc = store_message_insert(s, &m);
        if (rc < 0) break;
        evt_origin o = {row->id, NULL, m.created_ms};
        evt *ev = evt_message(&o, id, m.role, m.content, m.tool_calls, m.tool_call_id, m.partial);
        rc = store_event_append(s, &ev, 1);
        evt_unref(ev);
    }
    store_message_list_free(ms, n);
    return rc < 0 ? rc : (int)cut;
}
