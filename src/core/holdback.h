/*
 * holdback: when background work that can wait gives way to runs that are
 * starting (docs/storage.md, Holding back while runs start).
 *
 * The search index's jobs and SQLite's checkpoints each take a core for
 * milliseconds, and on a busy machine the runs of a burst of starts wait
 * for them while they wait for their first tokens. So such work holds back
 * until no run has started for HOLDBACK_QUIET_MS, but no longer than
 * HOLDBACK_LATEST_MS after it began to wait, so that a steady stream of
 * starts delays it by at most that much. One rule for both, on one clock:
 * the caller passes the times and compares the answer with its own now.
 */
#ifndef CHATPLANE_HOLDBACK_H
#define CHATPLANE_HOLDBACK_H

#include <stdint.h>

#define HOLDBACK_QUIET_MS  100
#define HOLDBACK_LATEST_MS 1000

/*
 * The earliest time, in nanoseconds of the caller's monotonic clock, at
 * which work that has waited since waiting_ns may run, when the latest run
 * start was at start_ns (0: none yet, and nothing holds the work back,
 * which the answer 0 says).
 */
int64_t holdback_until(int64_t start_ns, int64_t waiting_ns);

#endif
