/*
 * loopprio: the priorities of the server's event loop (docs/architecture.md,
 * The loop's priorities). The server's base has LOOPPRIO_LEVELS of them;
 * libevent runs every ready callback of a higher priority (a lower number)
 * before any of a lower one.
 *
 * Under load one turn of the loop reads and writes for every stream at
 * work, tens of milliseconds of it, and each step of a run's start that
 * waited for a turn waited behind all of that: the request's read, the
 * event log handing the start back, the run's next step, the model's first
 * piece. A token of a stream at work that goes out a few milliseconds later
 * is late once, but a start that waits shifts its whole stream, since the
 * model's answer begins only once its request arrives. So the start's steps
 * go first, the streams' relaying last, and everything else between.
 */
#ifndef CHATPLANE_LOOPPRIO_H
#define CHATPLANE_LOOPPRIO_H

#define LOOPPRIO_LEVELS 3
/* What a run's start waits on: a client's request, the event log's
 * finished batches, a run's next step, a model call before its first
 * piece. */
#define LOOPPRIO_START 0
/* libevent's default with three levels: timers, the listener, the read
 * pool's answers, the event log's writes on the loop and the rest. */
#define LOOPPRIO_DEFAULT 1
/* The streams at work: a model call's pieces after its first, and the
 * writes of the streams' frames to their clients. */
#define LOOPPRIO_STREAM 2
/*
 * The most callbacks of the default and stream priorities the loop runs
 * before it asks the kernel again what is ready. libevent otherwise runs
 * every ready callback of a priority before it waits again, so a
 * descriptor that became ready meanwhile (the event log's eventfd handing
 * a run's start back, a client's request) waited for the whole pass over
 * a thousand streams: 20 to 50 ms under load (docs/benchmarks.md, fix 63).
 */
#define LOOPPRIO_PASS 32

struct event_base;

/*
 * A new base for the server's loop (NULL when libevent cannot make one):
 * LOOPPRIO_LEVELS priorities, at most LOOPPRIO_PASS callbacks of the
 * default and stream priorities between two looks at what is ready, and
 * the changes a turn makes to what it watches applied together, just
 * before it waits (libevent's epoll changelist; docs/architecture.md, The
 * loop's priorities).
 */
struct event_base *loopprio_base_new(void);

#endif
