/*
 * route: the router's table, without I/O. A method and a path pattern
 * ("/api/sessions/{id}/runs") map to an opaque target; a pattern segment
 * "{name}" matches one non-empty segment, percent-decoded into a
 * parameter. http.c keeps its handlers as targets; the table is apart so
 * it can be unit tested and fuzzed on its own.
 */
#ifndef CHATPLANE_ROUTE_H
#define CHATPLANE_ROUTE_H

#include <stddef.h>

#define ROUTE_MAX_SEGS   8
#define ROUTE_MAX_PARAMS 4
#define ROUTE_ALLOW_MAX  128

typedef struct route_table route_table;

typedef struct route_match {
    void *target; /* the route for this method and path, or NULL */
    /* When target is NULL: the methods the path has, in the order their
     * routes were added, a GET followed by HEAD ("GET, HEAD, POST"); ""
     * when no route has this path. */
    char allow[ROUTE_ALLOW_MAX];
    int nparams;
    char *names[ROUTE_MAX_PARAMS]; /* owned */
    char *values[ROUTE_MAX_PARAMS];
} route_match;

route_table *route_table_new(void);
void route_table_free(route_table *t);

/* Adds a route; method is at most 7 characters ("DELETE"). Returns 0, or
 * -1 for a pattern that does not start with "/" or has more than
 * ROUTE_MAX_SEGS segments or ROUTE_MAX_PARAMS parameters. */
int route_add(route_table *t, const char *method, const char *pattern, void *target);

/*
 * Finds the first route for method and path (the path without its
 * query). HEAD finds GET routes. A path with more than ROUTE_MAX_SEGS
 * segments, or a parameter segment whose decoding holds a NUL byte,
 * matches nothing. Release m with route_match_cleanup.
 */
void route_find(const route_table *t, const char *method, const char *path, route_match *m);
void route_match_cleanup(route_match *m);

/* The value of a matched parameter, or NULL. */
const char *route_param(const route_match *m, const char *name);

/* Percent-decodes s[0..len) ("%2F" → "/"; a "%" not followed by two hex
 * digits stays as it is; "+" stays "+"). Returns a new string, or NULL
 * when the decoding holds a NUL byte. */
char *route_decode(const char *s, size_t len);

#endif
