/*
 * clock: the two clocks chatplane reads. Budgets and timers use the
 * monotonic clock, which never jumps; timestamps shown to people use the
 * wall clock. Only adapters read clocks; the core takes time as arguments.
 */
#ifndef CHATPLANE_CLOCK_H
#define CHATPLANE_CLOCK_H

#include <stdint.h>

/* Milliseconds of the monotonic clock (arbitrary epoch). */
int64_t clock_mono_ms(void);
/* Nanoseconds of the monotonic clock, for measuring short durations. */
int64_t clock_mono_ns(void);
/* Unix time in milliseconds. */
int64_t clock_wall_ms(void);
/* Blocks the calling thread for ms milliseconds (a worker thread waiting
 * for a database to come back; never the loop thread). */
void clock_sleep_ms(int64_t ms);
/* The same in nanoseconds, for pacing a worker below a millisecond. */
void clock_sleep_ns(int64_t ns);

struct timespec;
/* The wall-clock time ms from now as a timespec: the deadline
 * pthread_cond_timedwait takes (it waits on CLOCK_REALTIME). */
void clock_deadline(struct timespec *out, int64_t ms);

#endif
