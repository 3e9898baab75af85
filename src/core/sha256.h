/*
 * sha256: SHA-256 (FIPS 180-4) and the helpers API tokens need: the digest
 * as lowercase hex, and a comparison of two hex digests whose time does not
 * depend on where they differ.
 *
 * Written here rather than taken from libcrypto so the core stays free of
 * a new build dependency; it is small and checked against the FIPS test
 * vectors. Pure: no I/O.
 */
#ifndef CHATPLANE_SHA256_H
#define CHATPLANE_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_BYTES 32
#define SHA256_HEX_LEN      64

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t total; /* bytes fed so far */
    unsigned char block[64];
    size_t used; /* bytes waiting in block */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
/* Writes the digest; c must be initialised again before reuse. */
void sha256_final(sha256_ctx *c, unsigned char out[SHA256_DIGEST_BYTES]);

/* The digest of data[0..len) as 64 lowercase hex digits and a NUL. */
void sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]);

/* True when a and b are equal strings. The time taken depends only on
 * their lengths, not on their contents, so comparing a secret with a
 * guess tells nothing about where they differ. */
bool sha256_equal_const(const char *a, const char *b);

#endif
