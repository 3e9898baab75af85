/*
 * loopprio: the server's event loop, as lib/loopprio.h describes it.
 */
#include "lib/loopprio.h"

#include <stddef.h>

#include <event2/event.h>

struct event_base *loopprio_base_new(void)
{
    struct event_config *c = event_config_new();
    if (!c) return NULL;
    /* libevent warns against the changelist for descriptors that share an
     * open file (dup()), which the server does not watch
     * (docs/architecture.md, The loop's priorities). */
    (void)event_config_set_flag(c, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    /* The limit leaves the start's priority alone: its callbacks are few
     * and each is what somebody waits on. */
    (void)event_config_set_max_dispatch_interval(c, NULL, LOOPPRIO_PASS, LOOPPRIO_DEFAULT);
    struct event_base *base = event_base_new_with_config(c);
    event_config_free(c);
    if (base && event_base_priority_init(base, LOOPPRIO_LEVELS) != 0) {
        event_base_free(base);
        return NULL;
    }
    return base;
}
