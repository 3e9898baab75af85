/*
 * kill_writer: the two halves of the crash test (tests/store/test_eventlog_kill.sh).
 *
 *   kill_writer write URL [N]    creates a session and a running run, then
 *                                streams token events through an eventlog,
 *                                N waiting at a time (512), until killed;
 *                                the first line of stdout is
 *                                "SESSION RUN", then one line per committed
 *                                seq, printed from the publish callback
 *   kill_writer check URL FILE   reads what `write` printed before it was
 *                                killed and checks that every printed seq
 *                                is stored, that the stored seqs have no
 *                                gap, and that recovery stops the run as
 *                                interrupted with its text saved as a
 *                                partial message
 *
 * check exits 0 and prints one line saying what held, or exits 1 naming
 * what did not.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/id.h"
#include "store/eventlog.h"
#include "store/store.h"
#include "store/store_journal.h"

/* Runs are stopped by the check with a heartbeat cut-off just above this,
 * so that on a shared PostgreSQL database it leaves other runs alone. */
#define KW_HEARTBEAT_MS 5000
/* The most appends waiting for their commit at any time, unless given:
 * with 1, each batch is one token event, which the token journal takes. */
#define KW_IN_FLIGHT 512
/* A writer nobody kills stops by itself after this long. */
#define KW_MAX_SECONDS 120

static int kw_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int kw_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kill_writer: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int64_t kw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static store *kw_open(const char *url)
{
    store *s = NULL;
    char err[512];
    if (store_open(url, &s, err, sizeof err) != 0 ||
        store_migrate(s, NULL, NULL, err, sizeof err) != 0) {
        kw_fail("%s", err);
        exit(1);
    }
    return s;
}

/* Creates the session and its running run. */
static int kw_setup(store *s, const char *sid, const char *rid)
{
    int64_t now = kw_now_ms();
    store_session ses = {.id = (char *)sid,
                         .owner = "kill-test",
                         .title = "kill test",
                         .mode = "standard",
                         .created_ms = now,
                         .updated_ms = now};
    json_t *usage = json_pack("{s:i,s:f,s:i,s:i,s:i,s:f}", "steps", 1, "seconds", 0.0, "tokens", 0,
                              "tool_calls", 0, "retries", 0, "cost_usd", 0.0);
    store_run run = {.id = (char *)rid,
                     .session_id = (char *)sid,
                     .mode = "standard",
                     .status = "running",
                     .usage = usage,
                     .owner_instance = "kill-writer",
                     .heartbeat_ms = KW_HEARTBEAT_MS,
                     .started_ms = now};
    int rc = store_session_insert(s, &ses);
    if (rc == 0) rc = store_run_insert(s, &run);
    if (rc == 0) rc = store_session_claim_run(s, sid, rid, now);
    json_decref(usage);
    return rc;
}

static void kw_publish(void *ud, evt *ev)
{
    (void)ud;
    printf("%" PRId64 "\n", ev->seq);
    fflush(stdout);
}

static int kw_write(const char *url, uint64_t in_flight)
{
    char sid[ID_MAX], rid[ID_MAX], mid[ID_MAX], err[512];
    id_new(sid, "ses", kw_now_ms());
    id_new(rid, "run", kw_now_ms());
    id_new(mid, "msg", kw_now_ms());
    store *s = kw_open(url);
    if (kw_setup(s, sid, rid) != 0) return kw_fail("setup: %s", store_errmsg(s));
    store_close(s);
    printf("%s %s\n", sid, rid);
    fflush(stdout);

    eventlog *log = NULL;
    if (eventlog_start(url, kw_publish, NULL, &log, err, sizeof err) != 0)
        return kw_fail("%s", err);
    uint64_t sent = 0;
    int64_t deadline = kw_now_ms() + KW_MAX_SECONDS * 1000;
    while (kw_now_ms() < deadline) {
        eventlog_stats st;
        eventlog_get_stats(log, &st);
        while (sent - st.events - st.failures < in_flight) {
            char text[32];
            int len = snprintf(text, sizeof text, "t%" PRIu64 " ", sent++);
            evt_origin o = {sid, rid, kw_now_ms()};
            eventlog_append(log, evt_token(&o, mid, text, (size_t)len));
        }
        /* A lone token the loop wrote itself was published already and
         * wakes nothing: wait briefly, so one at a time stays quick. */
        struct pollfd pfd = {.fd = eventlog_fd(log), .events = POLLIN};
        if (poll(&pfd, 1, 1) > 0) eventlog_drain(log);
    }
    eventlog_stop(log);
    return kw_fail("nobody killed the writer within %d seconds", KW_MAX_SECONDS);
}

/* ---- check ---- */

typedef struct kw_stored {
    int64_t count, last; /* events seen and the last seq */
    int gap;             /* the first seq that broke the 1, 2, 3 … order */
    buf text;            /* the token texts, joined */
} kw_stored;

static int kw_collect(void *ud, int64_t seq, const char *type, const char *json, size_t len)
{
    kw_stored *k = ud;
    if (seq != k->last + 1 && !k->gap) k->gap = (int)seq;
    k->last = seq;
    k->count++;
    if (strcmp(type, "token") == 0) {
        json_t *o = json_loadb(json, len, 0, NULL);
        buf_append_str(&k->text, json_string_value(json_object_get(o, "text")));
        json_decref(o);
    }
    return 0;
}

/* Reads the header and the largest seq printed (a torn last line is
 * ignored: the process may die in the middle of writing it). */
static int kw_read_output(const char *path, char *sid, char *rid, int64_t *printed, int64_t *max)
{
    FILE *f = fopen(path, "r");
    if (!f) return kw_fail("cannot read %s", path);
    char line[128];
    int rc = 0;
    if (!fgets(line, sizeof line, f) || sscanf(line, "%39s %39s", sid, rid) != 2)
        rc = kw_fail("%s has no SESSION RUN line", path);
    *printed = *max = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n')) break;
        int64_t seq = strtoll(line, NULL, 10);
        if (seq != *max + 1) rc = kw_fail("published seq %" PRId64 " after %" PRId64, seq, *max);
        *max = seq;
        (*printed)++;
    }
    fclose(f);
    return rc;
}

static int kw_check_recovery(store *s, const char *url, const char *sid, const char *rid,
                             const char *text)
{
    int64_t stale = strncmp(url, "sqlite:", 7) == 0 ? INT64_MAX : KW_HEARTBEAT_MS + 1;
    int stopped = store_recover_interrupted(s, stale, kw_now_ms());
    if (stopped < 1) return kw_fail("recovery stopped %d runs: %s", stopped, store_errmsg(s));
    store_run run;
    if (store_run_get(s, rid, &run) != 0) return kw_fail("run: %s", store_errmsg(s));
    int rc = 0;
    if (strcmp(run.status, "stopped") != 0 || !run.stop_reason ||
        strcmp(run.stop_reason, "interrupted") != 0)
        rc = kw_fail("run is %s (%s), not stopped as interrupted", run.status,
                     run.stop_reason ? run.stop_reason : "no reason");
    store_run_cleanup(&run);
    store_message *msgs = NULL;
    size_t n = 0;
    if (rc == 0 && store_message_list(s, sid, &msgs, &n) != 0) rc = kw_fail("messages");
    if (rc == 0 && (n != 1 || !msgs[0].partial || strcmp(msgs[0].content, text) != 0))
        rc = kw_fail("the partial message does not hold the committed text");
    store_message_list_free(msgs, n);
    return rc;
}

static int kw_check(const char *url, const char *path)
{
    char sid[ID_MAX], rid[ID_MAX];
    int64_t printed = 0, max = 0;
    if (kw_read_output(path, sid, rid, &printed, &max) != 0) return 1;
    if (printed < 1) return kw_fail("the writer published nothing before it was killed");
    store *s = kw_open(url);
    /* As the server does at start: the token journal's events first. */
    int journaled = store_journal_recover(s, url);
    if (journaled < 0) {
        int failed = kw_fail("token journal: %s", store_errmsg(s));
        store_close(s);
        return failed;
    }
    kw_stored k = {0};
    buf_init(&k.text, 64u * 1024 * 1024);
    int rc = store_event_after(s, sid, 0, 0, kw_collect, &k) < 0;
    if (rc) rc = kw_fail("replay: %s", store_errmsg(s));
    if (!rc && k.gap) rc = kw_fail("stored seqs jump to %d", k.gap);
    if (!rc && k.last < max)
        rc = kw_fail("published seq %" PRId64 " but only %" PRId64 " are stored", max, k.last);
    char *text = buf_detach(&k.text, NULL);
    if (!rc) rc = kw_check_recovery(s, url, sid, rid, text);
    if (!rc)
        printf("kill test: %" PRId64 " published of %" PRId64 " committed events survived "
               "SIGKILL (%d of them from the token journal); the run was stopped as "
               "interrupted\n",
               printed, k.count, journaled);
    free(text);
    store_close(s);
    return rc;
}

int main(int argc, char **argv)
{
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "write") == 0) {
        uint64_t in_flight = argc == 4 ? strtoull(argv[3], NULL, 10) : KW_IN_FLIGHT;
        if (in_flight < 1) return kw_fail("IN_FLIGHT must be a positive number");
        return kw_write(argv[2], in_flight);
    }
    if (argc == 4 && strcmp(argv[1], "check") == 0) return kw_check(argv[2], argv[3]);
    fprintf(stderr, "usage: kill_writer write URL [IN_FLIGHT] | kill_writer check URL FILE\n");
    return 2;
}
