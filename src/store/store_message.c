/*
 * store_message: the chat_messages table, the conversation a run reads
 * back as its model context.
 */
#include "store/store.h"
#include "store/store_int.h"

#define STORE__ROW store_message
STORE__DEFINE_ROW(store_message, message, "chat_messages", STORE_MESSAGE_COLUMNS)

/* position numbers the session's messages in the order they are stored,
 * which is their order whenever created_at ties. */
int store_message_insert(store *s, const store_message *row)
{
    store_params p;
    store__params_init(&p);
    store__params_row(&p, &store__message_table, row);
    store__params_add(&p, row->session_id);
    int rc = store__insert(s, &store__message_table, &p, ", position",
                           ", (SELECT COALESCE(MAX(position), 0) + 1 FROM chat_messages WHERE "
                           "session_id = ?)");
    store__params_cleanup(&p);
    return rc;
}

int store_message_list(store *s, const char *session_id, store_message **out, size_t *n)
{
    const char *p[] = {session_id};
    return store__rows(s, &store__message_table,
                       "WHERE session_id = ? ORDER BY created_at, position", 1, p, (void **)out, n);
}
