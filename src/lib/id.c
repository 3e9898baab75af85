#include "lib/id.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void id_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "level=fatal msg=\"the OS random source failed\"\n");
            abort();
        }
        p += got;
        n -= (size_t)got;
    }
}

#define ID__RANDOM_MAX 0xffffffffffffULL /* 48 bits */

/* The time and random part of the last id made, so that the next one in
 * the same millisecond sorts after it. */
static pthread_mutex_t id__mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t id__last_ms, id__last_random;

/* Random bytes for ids, read from the OS 256 at a time: a run makes
 * several ids, and one system call each cost more than the rest of making
 * them. Taken under id__mu. */
#define ID__POOL_BYTES 256
static unsigned char id__pool[ID__POOL_BYTES];
static size_t id__pool_used = ID__POOL_BYTES;

/* Copies n (at most ID__POOL_BYTES) bytes of the pool to out, refilling
 * it first when fewer are left. Used bytes are cleared, so no id's random
 * part stays in memory. id__mu is held. */
static void id__pool_take(unsigned char *out, size_t n)
{
    if (id__pool_used + n > ID__POOL_BYTES) {
        id_random_bytes(id__pool, sizeof id__pool);
        id__pool_used = 0;
    }
    memcpy(out, id__pool + id__pool_used, n);
    memset(id__pool + id__pool_used, 0, n);
    id__pool_used += n;
}

/* 47 random bits: the top one stays clear, so that the ids that follow in
 * the same millisecond (each one more) do not run out. id__mu is held. */
static uint64_t id__random47(void)
{
    unsigned char r[6];
    id__pool_take(r, sizeof r);
    uint64_t v = 0;
    for (size_t i = 0; i < 6; i++) v = v << 8 | r[i];
    return v >> 1;
}

void id_random_pooled(void *buf, size_t n)
{
    unsigned char *p = buf;
    pthread_mutex_lock(&id__mu);
    while (n > 0) {
        size_t k = n < ID__POOL_BYTES ? n : ID__POOL_BYTES;
        id__pool_take(p, k);
        p += k;
        n -= k;
    }
    pthread_mutex_unlock(&id__mu);
}

void id_new(char out[ID_MAX], const char *prefix, int64_t unix_ms)
{
    uint64_t ms = (uint64_t)unix_ms & ID__RANDOM_MAX;
    pthread_mutex_lock(&id__mu);
    uint64_t random = id__random47();
    /* Two ids of one millisecond (or of a clock set back) would otherwise
     * sort by chance, and lists ordered by time then id would show things
     * made one after the other in either order. */
    if (ms <= id__last_ms) {
        ms = id__last_ms;
        random = id__last_random + 1;
        if (random > ID__RANDOM_MAX) {
            ms++;
            random = id__random47();
        }
    }
    id__last_ms = ms;
    id__last_random = random;
    pthread_mutex_unlock(&id__mu);
    snprintf(out, ID_MAX, "%.8s_%012llx%012llx", prefix, (unsigned long long)ms,
             (unsigned long long)random);
}

/* Eight bytes a step, each step multiplied and folded so that every byte
 * reaches the low bits that pick a bucket: the byte-at-a-time FNV-1a this
 * replaces took about 1 % of a run's instructions (docs/benchmarks.md,
 * fix 60). The length goes in first, so "a" and "a\0" could never meet. */
uint64_t id_hash(const char *id)
{
    size_t n = strlen(id);
    uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)n;
    const unsigned char *p = (const unsigned char *)id;
    do {
        uint64_t w = 0;
        if (n >= 8) {
            memcpy(&w, p, 8);
        } else {
            for (size_t i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
        }
        h = (h ^ w) * UINT64_C(0xbf58476d1ce4e5b9);
        h ^= h >> 31;
        p += 8;
        n = n > 8 ? n - 8 : 0;
    } while (n > 0);
    h *= UINT64_C(0x94d049bb133111eb);
    return h ^ (h >> 29);
}
