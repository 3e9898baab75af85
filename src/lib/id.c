#include "lib/id.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

void id_new(char out[ID_MAX], const char *prefix, int64_t unix_ms)
{
    unsigned char r[6];
    id_random_bytes(r, sizeof r);
    snprintf(out, ID_MAX, "%.8s_%012llx%02x%02x%02x%02x%02x%02x", prefix,
             (unsigned long long)unix_ms & 0xffffffffffffULL, r[0], r[1], r[2], r[3], r[4], r[5]);
}
