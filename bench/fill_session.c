/*
 * fill_session: makes a long session for the replay benchmark. It creates
 * one session and appends N token events to it through the real event log
 * (writer thread, group commit), as a long run would, then prints the
 * session's id. Token texts are the mock model's (" w<i>").
 *
 *   fill_session --db URL [--events N]
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/evt.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "store/eventlog.h"
#include "store/store.h"

#define FILL_WINDOW (4 * EVENTLOG_BATCH_MAX)

static unsigned long fill_committed;

static void fill_die(const char *what, const char *why)
{
    fprintf(stderr, "fill_session: %s: %s\n", what, why);
    exit(1);
}

static void fill_on_publish(void *ud, evt *ev)
{
    (void)ud;
    (void)ev;
    fill_committed++;
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    unsigned long n = 100000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            url = argv[++i];
        else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            n = strtoul(argv[++i], NULL, 10);
        else
            url = NULL, i = argc;
    }
    if (!url || n == 0) {
        fprintf(stderr, "usage: fill_session --db URL [--events N]\n");
        return 2;
    }

    char err[512], sid[ID_MAX];
    store *s = NULL;
    if (store_open(url, &s, err, sizeof err) != 0) fill_die("open", err);
    if (store_migrate(s, NULL, NULL, err, sizeof err) != 0) fill_die("migrate", err);
    int64_t now = clock_wall_ms();
    id_new(sid, "ses", now);
    store_session row = {
        .id = sid, .title = "replay", .mode = "standard", .created_ms = now, .updated_ms = now};
    if (store_session_insert(s, &row) != 0) fill_die("session insert", store_errmsg(s));
    store_close(s);

    eventlog *log = NULL;
    if (eventlog_start(url, fill_on_publish, NULL, &log, err, sizeof err) != 0)
        fill_die("eventlog_start", err);
    unsigned long sent = 0;
    while (fill_committed < n) {
        while (sent < n && sent - fill_committed < FILL_WINDOW) {
            char text[32];
            int len = snprintf(text, sizeof text, " w%lu", sent++);
            evt_origin o = {sid, "run_replay", clock_wall_ms()};
            eventlog_append(log, evt_token(&o, "msg_replay", text, (size_t)len));
        }
        struct pollfd pfd = {.fd = eventlog_fd(log), .events = POLLIN};
        if (poll(&pfd, 1, 1000) < 0 && errno != EINTR) fill_die("poll", strerror(errno));
        eventlog_drain(log);
    }
    eventlog_stats st;
    eventlog_get_stats(log, &st);
    eventlog_stop(log);
    if (st.failures) fill_die("append", "a batch failed");
    printf("%s\n", sid);
    return 0;
}
