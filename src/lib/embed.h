/*
 * embed: files compiled into the binary. tools/embed turns files into a C
 * source holding a table of these (migrations now, the web page later);
 * each module that owns such a table declares it with EMBED_TABLE.
 */
#ifndef CHATPLANE_EMBED_H
#define CHATPLANE_EMBED_H

#include <stddef.h>

typedef struct embed_file {
    const char *path;          /* as given to tools/embed, e.g. "migrations/sqlite/0001_init.sql" */
    const unsigned char *data; /* len bytes followed by a NUL, so text can be used as a string */
    size_t len;
} embed_file;

/* Declares the table NAME and its length NAME_count made by `embed NAME …`. */
#define EMBED_TABLE(name)                                                                          \
    extern const embed_file name[];                                                                \
    extern const size_t name##_count

#endif
