#include "net/route.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

typedef struct route {
    char method[8];
    char *segs[ROUTE_MAX_SEGS];
    int nseg;
    void *target;
    struct route *next;
} route;

struct route_table {
    route *head, *tail;
};

/* Splits an absolute path into at most max segments, each a pointer into
 * path with its length. Returns the count, or -1 when path is not
 * absolute or has more segments. */
static int route__split(const char *path, const char **segs, size_t *lens, int max)
{
    if (*path != '/') return -1;
    int n = 0;
    const char *p = path + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (n == max) return -1;
        segs[n] = p;
        lens[n++] = len;
        if (!slash) return n;
        p = slash + 1;
    }
}

route_table *route_table_new(void)
{
    return xcalloc(1, sizeof(route_table));
}

void route_table_free(route_table *t)
{
    if (!t) return;
    route *rt = t->head;
    while (rt) {
        route *next = rt->next;
        for (int i = 0; i < rt->nseg; i++) free(rt->segs[i]);
        free(rt);
        rt = next;
    }
    free(t);
}

int route_add(route_table *t, const char *method, const char *pattern, void *target)
{
    const char *segs[ROUTE_MAX_SEGS];
    size_t lens[ROUTE_MAX_SEGS];
    int n = route__split(pattern, segs, lens, ROUTE_MAX_SEGS);
    if (n < 0 || strlen(method) >= sizeof((route *)0)->method) return -1;
    int params = 0;
    for (int i = 0; i < n; i++)
        if (lens[i] > 0 && segs[i][0] == '{') params++;
    if (params > ROUTE_MAX_PARAMS) return -1;
    route *rt = xcalloc(1, sizeof *rt);
    snprintf(rt->method, sizeof rt->method, "%s", method);
    for (int i = 0; i < n; i++) rt->segs[i] = xstrndup(segs[i], lens[i]);
    rt->nseg = n;
    rt->target = target;
    if (t->tail)
        t->tail->next = rt;
    else
        t->head = rt;
    t->tail = rt;
    return 0;
}

static int route__hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *route_decode(const char *s, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < len) {
            int hi = route__hex(s[i + 1]), lo = route__hex(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = (char)(hi << 4 | lo);
                i += 2;
            }
        }
        if (c == '\0') {
            free(out);
            return NULL;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return out;
}

/* True when rt's pattern matches the segments. */
static bool route__matches(const route *rt, const char **segs, const size_t *lens, int n)
{
    if (rt->nseg != n) return false;
    for (int i = 0; i < n; i++) {
        if (rt->segs[i][0] == '{') {
            if (lens[i] == 0) return false;
        } else if (strlen(rt->segs[i]) != lens[i] || memcmp(rt->segs[i], segs[i], lens[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* Adds method (and HEAD after GET) to the allow list unless it is there. */
static void route__allow(route_match *m, const char *method)
{
    size_t n = strlen(m->allow);
    for (const char *p = m->allow; (p = strstr(p, method)) != NULL; p++) {
        size_t ml = strlen(method);
        if ((p == m->allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0')) return;
    }
    snprintf(m->allow + n, sizeof m->allow - n, "%s%s", n ? ", " : "", method);
    if (strcmp(method, "GET") == 0) route__allow(m, "HEAD");
}

void route_find(const route_table *t, const char *method, const char *path, route_match *m)
{
    memset(m, 0, sizeof *m);
    const char *segs[ROUTE_MAX_SEGS];
    size_t lens[ROUTE_MAX_SEGS];
    int n = route__split(path, segs, lens, ROUTE_MAX_SEGS);
    if (n < 0) return;
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    const route *found = NULL;
    for (const route *rt = t->head; rt; rt = rt->next) {
        if (!route__matches(rt, segs, lens, n)) continue;
        if (strcmp(rt->method, want) == 0) {
            found = rt;
            break;
        }
        route__allow(m, rt->method);
    }
    if (!found) return;
    for (int i = 0; i < n; i++) {
        if (found->segs[i][0] != '{') continue;
        char *v = route_decode(segs[i], lens[i]);
        if (!v) {
            /* A NUL byte in an id is never a real id: no route. */
            route_match_cleanup(m);
            memset(m, 0, sizeof *m);
            return;
        }
        size_t nl = strlen(found->segs[i]);
        m->names[m->nparams] = xstrndup(found->segs[i] + 1, nl >= 2 ? nl - 2 : 0);
        m->values[m->nparams++] = v;
    }
    m->allow[0] = '\0';
    m->target = found->target;
}

void route_match_cleanup(route_match *m)
{
    for (int i = 0; i < m->nparams; i++) {
        free(m->names[i]);
        free(m->values[i]);
    }
    m->nparams = 0;
}

const char *route_param(const route_match *m, const char *name)
{
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->names[i], name) == 0) return m->values[i];
    return NULL;
}
