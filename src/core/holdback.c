#include "core/holdback.h"

int64_t holdback_until(int64_t start_ns, int64_t waiting_ns)
{
    if (!start_ns) return 0;
    int64_t quiet = start_ns + HOLDBACK_QUIET_MS * 1000000LL;
    int64_t latest = waiting_ns + HOLDBACK_LATEST_MS * 1000000LL;
    return quiet < latest ? quiet : latest;
}
