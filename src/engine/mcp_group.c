/*
 * mcp_group: the servers of one mcp_add_servers, the public entry of the
 * MCP client (mcp.h). The group builds each server with the transport its
 * configuration asks for, starts them together, waits for their first
 * listings, and at shutdown stops every connection in one bounded wait.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mcp.h"
#include "engine/mcp_http.h"
#include "engine/mcp_int.h"
#include "engine/mcp_stdio.h"
#include "lib/xmalloc.h"

mcp_group *mcp__group_new(void)
{
    return xcalloc(1, sizeof(mcp_group));
}

/* The first server freed stops the connections of the whole group at once:
 * the transports of each kind together (stdio: every stdin closed, one
 * bounded wait, then SIGTERM and SIGKILL). */
void mcp__group_stop(mcp_group *g)
{
    if (g->stopped) return;
    g->stopped = true;
    size_t n = g->nservers;
    mcp_transport **kind = xcalloc(n + 1, sizeof *kind);
    bool *done = xcalloc(n + 1, sizeof *done);
    for (size_t i = 0; i < n; i++) {
        if (done[i]) continue;
        const mcp_transport_ops *ops = g->servers[i]->tr->ops;
        size_t k = 0;
        for (size_t j = i; j < n; j++) {
            if (done[j] || g->servers[j]->tr->ops != ops) continue;
            done[j] = true;
            kind[k++] = g->servers[j]->tr;
        }
        ops->stop_all(kind, k);
    }
    free(done);
    free(kind);
}

void mcp__group_leave(mcp_group *g, mcp_server *s)
{
    for (size_t i = 0; i < g->nservers; i++)
        if (g->servers[i] == s) g->servers[i] = g->servers[--g->nservers];
    if (--g->refs > 0) return;
    free(g->servers);
    free(g);
}

static bool mcp_group__settled(const mcp_group *g)
{
    for (size_t i = 0; i < g->nservers; i++)
        if (!g->servers[i]->settled) return false;
    return true;
}

static void mcp_group__on_wait_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

int mcp_add_servers(toolset *ts, struct event_base *base, const json_t *servers, int64_t wait_ms,
                    char *err, size_t errlen)
{
    mcp_server_config *cfgs;
    size_t n;
    if (mcp_config_parse(servers, &cfgs, &n, err, errlen) != 0) return -1;
    size_t enabled = 0;
    for (size_t i = 0; i < n; i++) enabled += !cfgs[i].disabled;
    if (enabled == 0) {
        mcp_config_free(cfgs, n);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);

    mcp_group *g = mcp__group_new();
    mcp_stdio_reaper *reaper = mcp_stdio_reaper_new(base);
    for (size_t i = 0; i < n; i++) {
        if (cfgs[i].disabled) continue;
        mcp_config_register_secrets(&cfgs[i]);
        mcp_transport *t = cfgs[i].transport != MCP_TRANSPORT_STDIO
                               ? mcp_http_new(base, &cfgs[i])
                               : mcp_stdio_new(base, &cfgs[i], reaper);
        mcp_server *s = mcp__server_new(g, base, &cfgs[i], t);
        toolset_add_source(ts, &s->base);
    }
    mcp_stdio_reaper_release(reaper);
    mcp_config_free(cfgs, n);
    /* Started after all are added, so a failure callback finds a complete
     * group; the copy of the list guards against a change while starting. */
    size_t count = g->nservers;
    mcp_server **list = xcalloc(count, sizeof *list);
    memcpy(list, g->servers, count * sizeof *list);
    for (size_t i = 0; i < count; i++) mcp__server_start(list[i]);
    free(list);

    if (wait_ms > 0) {
        bool over = false;
        struct event *deadline = evtimer_new(base, mcp_group__on_wait_over, &over);
        mcp__timer(deadline, wait_ms);
        while (!over && !mcp_group__settled(g)) event_base_loop(base, EVLOOP_ONCE);
        event_free(deadline);
    }
    return 0;
}
