/*
 * xmalloc: allocation that never returns NULL.
 *
 * Running out of memory is not a condition chatplane can recover from in a
 * useful way, so every allocation goes through this family, which logs and
 * aborts on failure. That removes hundreds of untestable error branches.
 */
#ifndef CHATPLANE_XMALLOC_H
#define CHATPLANE_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Returns a new string formatted like printf; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
