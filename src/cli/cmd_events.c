/*
 * chatplane events: prints a session's stored events as JSON lines, each
 * the stored text exactly, in seq order. With --follow it keeps polling the
 * database for new ones, which a `serve` or an `ask` on the same database
 * writes, until SIGINT or SIGTERM, or until the reader of stdout goes away;
 * each of those ends it with exit 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "store/store.h"

#define EVENTS_PAGE    1000 /* events read per query */
#define EVENTS_POLL_MS 200  /* --follow: the pause between two polls */

static volatile sig_atomic_t events__quit;

static void cmd_events__on_signal(int sig)
{
    (void)sig;
    events__quit = 1;
}

typedef struct events_out {
    int64_t after; /* the seq of the last event printed */
    bool closed;   /* stdout failed: its reader went away (EPIPE) or worse */
    int write_errno;
} events_out;

/* Writes one stored event and its newline; a failed write ends the paging. */
static int cmd_events__print(void *ud, int64_t seq, const char *type, const char *json, size_t len)
{
    events_out *o = ud;
    (void)type;
    if (events__quit) return 1;
    if (fwrite(json, 1, len, stdout) != len || fputc('\n', stdout) == EOF) {
        o->closed = true;
        o->write_errno = errno;
        return 1;
    }
    o->after = seq;
    return 0;
}

/* Parses --after: a whole number >= 0. */
static int cmd_events__parse_after(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || errno || v < 0)
        return cli_fail("events", CLI_EXIT_USAGE, "--after: '%s' is not a whole number >= 0", text);
    *out = v;
    return CLI_EXIT_OK;
}

/* Waits one polling pause. Returns false when the wait should end the
 * follow: a signal came or stdout's reader went away (a pipe whose read end
 * closed reports POLLERR even when no output is asked for). */
static bool cmd_events__pause(void)
{
    struct pollfd p = {.fd = STDOUT_FILENO, .events = 0};
    int rc = poll(&p, 1, EVENTS_POLL_MS);
    if (events__quit) return false;
    return !(rc > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)));
}

/* Prints the session's events after o->after, page by page; with follow,
 * keeps polling. Returns an exit code. */
static int cmd_events__loop(store *s, const char *session, bool follow, events_out *o)
{
    for (;;) {
        int n = store_event_after(s, session, o->after, EVENTS_PAGE, cmd_events__print, o);
        if (!o->closed && fflush(stdout) == EOF) {
            o->closed = true;
            o->write_errno = errno;
        }
        if (events__quit) return CLI_EXIT_OK;
        if (o->closed)
            return o->write_errno == EPIPE ? CLI_EXIT_OK
                                           : cli_fail("events", CLI_EXIT_FAIL, "cannot write: %s",
                                                      strerror(o->write_errno));
        /* A busy database (a writer holding the lock) is tried again at the
         * next poll; any other failure ends the command. */
        if (n < 0 && !(follow && n == DB_ERR_BUSY))
            return cli_fail("events", CLI_EXIT_FAIL, "%s", store_errmsg(s));
        if (n == EVENTS_PAGE) continue;
        if (!follow || !cmd_events__pause()) return CLI_EXIT_OK;
    }
}

int cmd_events(int argc, char **argv)
{
    static const char *const allowed[] = {"db", "config", NULL};
    config cfg;
    char *rest[argc > 0 ? argc : 1], *pos[argc > 0 ? argc : 1];
    int nrest, npos,
        rc = cli_load_config("events", allowed, argc - 1, argv + 1, &cfg, rest, &nrest);
    const char *after_text = NULL;
    bool follow = false;
    events_out o = {0};
    store *s = NULL;
    if (rc != CLI_EXIT_OK) goto out;
    const cli_opt opts[] = {
        {"--after", &after_text, NULL}, {"--follow", NULL, &follow}, {NULL, NULL, NULL}};
    rc = cli_parse_opts("events", opts, nrest, rest, pos, &npos);
    if (rc != CLI_EXIT_OK) goto out;
    if (npos != 1) {
        rc = npos == 0 ? cli_fail("events", CLI_EXIT_USAGE, "a SESSION id is needed")
                       : cli_fail("events", CLI_EXIT_USAGE, "unexpected argument '%s'", pos[1]);
        goto out;
    }
    if (after_text && (rc = cmd_events__parse_after(after_text, &o.after)) != CLI_EXIT_OK) goto out;
    if ((rc = cli_open_store("events", cfg.db, &s)) != CLI_EXIT_OK) goto out;

    store_session ses = {0};
    int found = store_session_get(s, pos[0], NULL, &ses);
    store_session_cleanup(&ses);
    if (found < 0) {
        rc = found == STORE_NOT_FOUND ? cli_fail("events", CLI_EXIT_FAIL, "no session '%s'", pos[0])
                                      : cli_fail("events", CLI_EXIT_FAIL, "%s", store_errmsg(s));
        goto out;
    }
    /* A reader that goes away shows as EPIPE on a write, not as a signal
     * that kills the process; SIGINT and SIGTERM end a follow cleanly. */
    signal(SIGPIPE, SIG_IGN);
    if (follow) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = cmd_events__on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    rc = cmd_events__loop(s, pos[0], follow, &o);
out:
    store_close(s);
    config_cleanup(&cfg);
    return rc;
}
