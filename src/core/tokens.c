#include "core/tokens.h"

int64_t tokens_estimate(size_t bytes)
{
    return (int64_t)((bytes + TOKENS_BYTES_PER_TOKEN - 1) / TOKENS_BYTES_PER_TOKEN);
}
