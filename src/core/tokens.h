/*
 * tokens: the one estimate of how many tokens a text takes when the model
 * does not say: a token per four bytes, rounded up. It is used for the
 * prompt chatplane builds (to stay under the context window), for a reply
 * whose usage the endpoint left out (to charge the token budget) and by the
 * demo model, which counts the way the budget does.
 */
#ifndef CHATPLANE_TOKENS_H
#define CHATPLANE_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#define TOKENS_BYTES_PER_TOKEN 4

/* The tokens of a text of `bytes` bytes: bytes / 4, rounded up. */
int64_t tokens_estimate(size_t bytes);

#endif
