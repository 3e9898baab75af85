/*
 * id: opaque identifiers such as "ses_0193a4f2c1b0e4d1f0a9c3b2". After the
 * prefix come 12 hex digits of the Unix time in milliseconds and 12 hex
 * digits (48 bits) from the OS random source (read 256 bytes at a time),
 * so ids sort by creation time and do not collide in practice. Within one
 * process each id sorts after the one made before it: one made in the same
 * millisecond (or with a clock set back) takes the previous one's time and
 * random part plus one.
 */
#ifndef CHATPLANE_ID_H
#define CHATPLANE_ID_H

#include <stddef.h>
#include <stdint.h>

#define ID_MAX 40

/* Writes prefix + "_" + 24 hex digits into out (ID_MAX bytes). */
void id_new(char out[ID_MAX], const char *prefix, int64_t unix_ms);

/* Fills buf with n bytes from the OS random source; aborts if it fails,
 * which only happens on a broken system. */
void id_random_bytes(void *buf, size_t n);

/* The same bytes, taken from the pool ids are made from (read from the OS
 * 256 at a time): for values made often, such as request ids, where a
 * system call each would cost more than the rest of the work. */
void id_random_pooled(void *buf, size_t n);

/* A hash of an id (any string) for the tables that find a session by its
 * id: the event log's, the token journal's, the hub's. Kept in memory
 * only, so it may change from one version to the next. */
uint64_t id_hash(const char *id);

#endif
