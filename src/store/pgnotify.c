/*
 * pgnotify: LISTEN on a non-blocking libpq connection (see pgnotify.h).
 *
 * The connection moves through four states. WAIT: no connection, the timer
 * runs the backoff. CONNECTING: PQconnectPoll drives the connection, the
 * socket is watched for whatever it asked for. LISTENING: the LISTEN
 * commands are sent and their results awaited. UP: the socket is watched
 * for reading and every notification goes to its handler. The timer bounds
 * CONNECTING and LISTENING together. Any failure closes the connection and
 * goes back to WAIT.
 */
#include "store/pgnotify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/db.h"
#include "store/store.h"

enum { PGN_WAIT, PGN_CONNECTING, PGN_LISTENING, PGN_UP };

struct pgnotify {
    struct event_base *base;
    char *url;       /* owned */
    char *url_shown; /* owned; the password masked */
    pgnotify_handlers h;
    PGconn *conn;
    int state;
    struct event *io;    /* the socket; made anew for each wait, the socket may change */
    struct event *timer; /* the backoff in WAIT, the time-out while connecting */
    int64_t backoff_ms;
    bool down_logged; /* the current outage has been logged */
};

static void pgnotify__on_io(evutil_socket_t fd, short what, void *arg);
static void pgnotify__open_conn(pgnotify *n);

int pgnotify_parse_events(const char *payload, char *session_id, size_t len, int64_t *seq)
{
    const char *colon = strrchr(payload, ':');
    if (!colon || colon == payload || (size_t)(colon - payload) >= len) return -1;
    const char *d = colon + 1;
    if (!*d || *d == '0') return -1;
    int64_t v = 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9' || v > (INT64_MAX - (*d - '0')) / 10) return -1;
        v = v * 10 + (*d - '0');
    }
    memcpy(session_id, payload, (size_t)(colon - payload));
    session_id[colon - payload] = '\0';
    *seq = v;
    return 0;
}

static void pgnotify__arm(struct event *ev, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    event_add(ev, &tv);
}

/* Watches the connection's socket for what (EV_READ, EV_WRITE, with
 * EV_PERSIST once listening). */
static void pgnotify__watch(pgnotify *n, short what)
{
    if (n->io) event_free(n->io);
    n->io = event_new(n->base, PQsocket(n->conn), what, pgnotify__on_io, n);
    event_add(n->io, NULL);
}

/* Drops the connection and schedules the next attempt. */
static void pgnotify__fail(pgnotify *n, const char *why)
{
    char reason[256];
    snprintf(reason, sizeof reason, "%s", why && *why ? why : "unknown error");
    reason[strcspn(reason, "\n")] = '\0';
    if (!n->down_logged) {
        LOG(LOG_WARN, "the notification connection to PostgreSQL is down; reconnecting",
            "url=%s error=\"%s\"", n->url_shown, reason);
        n->down_logged = true;
    } else {
        LOG(LOG_DEBUG, "reconnecting the notification connection failed", "url=%s error=\"%s\"",
            n->url_shown, reason);
    }
    if (n->io) event_free(n->io);
    n->io = NULL;
    PQfinish(n->conn);
    n->conn = NULL;
    n->state = PGN_WAIT;
    event_del(n->timer);
    pgnotify__arm(n->timer, n->backoff_ms);
    n->backoff_ms *= 2;
    if (n->backoff_ms > PGNOTIFY_BACKOFF_MAX_MS) n->backoff_ms = PGNOTIFY_BACKOFF_MAX_MS;
}

static void pgnotify__dispatch(pgnotify *n, const PGnotify *nt)
{
    if (strcmp(nt->relname, STORE_EVENTS_CHANNEL) == 0) {
        char session_id[PGNOTIFY_SESSION_MAX];
        int64_t seq;
        if (pgnotify_parse_events(nt->extra, session_id, sizeof session_id, &seq) != 0) {
            LOG(LOG_WARN, "ignoring a malformed events notification", "payload=\"%.64s\"",
                nt->extra);
            return;
        }
        if (n->h.on_events) n->h.on_events(n->h.ud, session_id, seq);
    } else if (strcmp(nt->relname, STORE_CONTROL_CHANNEL) == 0) {
        if (n->h.on_control) n->h.on_control(n->h.ud, nt->extra);
    }
}

/* Reads what arrived; returns -1 when the connection failed (and has
 * been dropped). */
static int pgnotify__drain_input(pgnotify *n)
{
    if (!PQconsumeInput(n->conn)) {
        pgnotify__fail(n, PQerrorMessage(n->conn));
        return -1;
    }
    while (!PQisBusy(n->conn)) {
        PGresult *r = PQgetResult(n->conn);
        if (!r) break;
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK) {
            char why[256];
            snprintf(why, sizeof why, "%s", PQresultErrorMessage(r));
            PQclear(r);
            pgnotify__fail(n, why);
            return -1;
        }
        PQclear(r);
    }
    return 0;
}

/* The LISTEN results are in: the connection is up. */
static void pgnotify__became_up(pgnotify *n)
{
    n->state = PGN_UP;
    event_del(n->timer);
    n->backoff_ms = PGNOTIFY_BACKOFF_MIN_MS;
    if (n->down_logged)
        LOG(LOG_INFO, "listening to PostgreSQL notifications again", "url=%s", n->url_shown);
    n->down_logged = false;
    pgnotify__watch(n, EV_READ | EV_PERSIST);
    if (n->h.on_up) n->h.on_up(n->h.ud);
}

/* Connected: sends the LISTEN commands without waiting for them. */
static void pgnotify__start_listen(pgnotify *n)
{
    if (PQsetnonblocking(n->conn, 1) != 0 ||
        !PQsendQuery(n->conn, "LISTEN " STORE_EVENTS_CHANNEL "; LISTEN " STORE_CONTROL_CHANNEL)) {
        pgnotify__fail(n, PQerrorMessage(n->conn));
        return;
    }
    n->state = PGN_LISTENING;
    int f = PQflush(n->conn);
    if (f < 0) {
        pgnotify__fail(n, PQerrorMessage(n->conn));
        return;
    }
    pgnotify__watch(n, f == 1 ? EV_WRITE : EV_READ);
}

static void pgnotify__step_connect(pgnotify *n)
{
    switch (PQconnectPoll(n->conn)) {
    case PGRES_POLLING_READING:
        pgnotify__watch(n, EV_READ);
        return;
    case PGRES_POLLING_WRITING:
        pgnotify__watch(n, EV_WRITE);
        return;
    case PGRES_POLLING_OK:
        pgnotify__start_listen(n);
        return;
    default:
        pgnotify__fail(n, PQerrorMessage(n->conn));
        return;
    }
}

/* While listening: flushes what is left to send, then waits for the
 * results of both LISTEN commands. */
static void pgnotify__step_listen(pgnotify *n)
{
    int f = PQflush(n->conn);
    if (f < 0) {
        pgnotify__fail(n, PQerrorMessage(n->conn));
        return;
    }
    if (f == 1) {
        pgnotify__watch(n, EV_WRITE);
        return;
    }
    if (!PQconsumeInput(n->conn)) {
        pgnotify__fail(n, PQerrorMessage(n->conn));
        return;
    }
    while (!PQisBusy(n->conn)) {
        PGresult *r = PQgetResult(n->conn);
        if (!r) {
            pgnotify__became_up(n);
            return;
        }
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            char why[256];
            snprintf(why, sizeof why, "LISTEN failed: %s", PQresultErrorMessage(r));
            PQclear(r);
            pgnotify__fail(n, why);
            return;
        }
        PQclear(r);
    }
    pgnotify__watch(n, EV_READ);
}

static void pgnotify__on_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pgnotify *n = arg;
    if (n->state == PGN_CONNECTING) {
        pgnotify__step_connect(n);
    } else if (n->state == PGN_LISTENING) {
        pgnotify__step_listen(n);
    } else if (n->state == PGN_UP) {
        if (pgnotify__drain_input(n) != 0) return;
        PGnotify *nt;
        while (n->state == PGN_UP && (nt = PQnotifies(n->conn)) != NULL) {
            pgnotify__dispatch(n, nt);
            PQfreemem(nt);
        }
        if (n->state == PGN_UP && PQstatus(n->conn) == CONNECTION_BAD)
            pgnotify__fail(n, PQerrorMessage(n->conn));
    }
}

static void pgnotify__on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pgnotify *n = arg;
    if (n->state == PGN_WAIT) {
        pgnotify__open_conn(n);
    } else if (n->state != PGN_UP) {
        pgnotify__fail(n, "timed out connecting");
    }
}

/* libpq prints notices to stderr by default; they go to the log instead. */
static void pgnotify__notice(void *arg, const char *message)
{
    (void)arg;
    char line[256];
    snprintf(line, sizeof line, "%s", message);
    line[strcspn(line, "\n")] = '\0';
    LOG(LOG_DEBUG, "PostgreSQL notice on the notification connection", "text=\"%s\"", line);
}

static void pgnotify__open_conn(pgnotify *n)
{
    /* Entries before dbname are defaults the URL may override: the
     * keepalives notice a server that vanished without closing the
     * connection. */
    const char *const keys[] = {"keepalives_idle",  "keepalives_interval",
                                "keepalives_count", "fallback_application_name",
                                "dbname",           NULL};
    const char *const vals[] = {"10", "5", "3", "chatplane", n->url, NULL};
    n->conn = PQconnectStartParams(keys, vals, 1);
    if (!n->conn || PQstatus(n->conn) == CONNECTION_BAD) {
        pgnotify__fail(n, n->conn ? PQerrorMessage(n->conn) : "out of memory");
        return;
    }
    PQsetNoticeProcessor(n->conn, pgnotify__notice, NULL);
    n->state = PGN_CONNECTING;
    pgnotify__arm(n->timer, PGNOTIFY_CONNECT_TIMEOUT_MS);
    /* The first poll comes once the socket is writable (libpq's rule). */
    pgnotify__watch(n, EV_WRITE);
}

pgnotify *pgnotify_start(struct event_base *base, const char *url, const pgnotify_handlers *h)
{
    pgnotify *n = xcalloc(1, sizeof *n);
    n->base = base;
    n->url = xstrdup(url);
    n->url_shown = db_url_redact(url);
    if (h) n->h = *h;
    n->backoff_ms = PGNOTIFY_BACKOFF_MIN_MS;
    n->timer = evtimer_new(base, pgnotify__on_timer, n);
    pgnotify__open_conn(n);
    return n;
}

void pgnotify_stop(pgnotify *n)
{
    if (!n) return;
    if (n->io) event_free(n->io);
    event_free(n->timer);
    PQfinish(n->conn);
    free(n->url);
    free(n->url_shown);
    free(n);
}

bool pgnotify_is_up(const pgnotify *n)
{
    return n && n->state == PGN_UP;
}
