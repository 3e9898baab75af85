/*
 * store_journal: token events kept in a file beside the SQLite database
 * until the event log's next transaction stores them (store_journal.h,
 * docs/storage.md).
 */
#include "store/store_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/id.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store_int.h"

#define STORE_JOURNAL__BUCKETS 1024
/* Where the file's second half begins (store_journal.h). */
#define STORE_JOURNAL__HALF ((off_t)STORE_JOURNAL_HALF)
/* The most a journal file read at start-up may hold: far more than the
 * limits let it grow to (STORE_JOURNAL_BYTES_MAX for each session). */
#define STORE_JOURNAL__FILE_MAX (256u << 20)

/* A session the journal knows: its last seq and the events it holds. */
typedef struct journal_session {
    struct journal_session *next;
    /* id_hash of the id, compared before the id itself: a token's lookup
     * then reads one other session's record at most, not its id too
     * (docs/benchmarks.md, fix 65). */
    uint64_t hash;
    int64_t last; /* the last seq given, the held events' included */
    /* The held events, the first under seq last - nheld + 1: their lines
     * in the mapped file, whose half is written over only once nothing
     * held lives in it (docs/benchmarks.md, fixes 41 and 61). Grown as needed, up to
     * STORE_JOURNAL_EVENTS_MAX. */
    store_line *held;
    size_t nheld, held_bytes, cap_held;
    char *run_id;  /* of every held event (NULL: a null run id) */
    int64_t ts_ms; /* the last held event's time */
    bool stored;   /* the open transaction stores its events, and only it appends to it */
    bool marked;   /* in the journal's list of sessions the open transaction marked */
    /* The open transaction is a flush that stores the first `storing` held
     * events; the loop may append more behind them meanwhile, which stay
     * held when it commits. */
    size_t storing;
    int64_t loop_ns; /* when the loop last appended one (monotonic) */
    /* A batch being appended: its events and bytes for this session, and
     * whether they pass its limits (store_journal_append_part). */
    size_t adding, adding_bytes;
    const char *adding_run; /* borrowed from the batch's first event of it */
    bool refused;
    char id[]; /* the session's id, in the record itself */
} journal_session;

/* A last seq learned in the open transaction. */
typedef struct journal_learned {
    char *id;
    int64_t last;
} journal_learned;

struct store_journal {
    /* Held by the writer around each call, but never while a statement
     * runs (a statement that stores a session's events learns its last
     * seq under it: store_journal_learn), and by the loop's thread while
     * it appends a token itself (store_journal_try_append), which waits
     * for it. */
    pthread_mutex_t mu;
    int fd;
    char *path;
    /* The file, mapped shared: a line is copied into it rather than
     * written with a system call per batch (docs/benchmarks.md, fix 29).
     * The copy is in the operating system's cache of the file at once, so
     * it survives a crash of the process as a returned write(2) does. The
     * file is filled to its size before it is mapped, so no copy lands
     * past its end or needs a block allocated. */
    char *map;
    journal_session *buckets[STORE_JOURNAL__BUCKETS];
    size_t nsessions, nheld;
    size_t adding; /* events of the batch being numbered, all sessions */
    journal_learned *learned;
    size_t nlearned, cap_learned;
    /* The sessions the open transaction marked `stored` or `storing`: its
     * end clears those alone rather than walking every session the
     * journal knows, thousands of them, at each commit (docs/benchmarks.md,
     * fix 66). A session leaves the journal only at a transaction's end,
     * after this list is cleared. */
    journal_session **marked;
    size_t nmarked, cap_marked;
    bool forget; /* the open transaction dropped a session's events */
    bool in_op;  /* that operation is running */
    /* The file is used as two halves: lines go into one until it is
     * full, then into the other once nothing held lives there, so that a
     * journal that always holds something (a hundred runs streaming) still
     * starts over (docs/storage.md, The token journal). */
    off_t at;       /* where the next line is written */
    off_t end;      /* the end of the half being written */
    size_t live[2]; /* held events whose lines are in each half */
    bool full;      /* a batch fitted neither half: nothing more until nothing waits */
    /* The last transaction did not commit (the disk full, the database
     * read-only): nothing more until one does, so that a run whose writes
     * the database refuses learns it at its next token, not once its
     * session's room is used up (docs/storage.md). */
    bool failed;
};

char *store_journal_path(const char *url)
{
    if (!url || strncmp(url, "sqlite:", 7) != 0) return NULL;
    const char *path = url + 7;
    if (!*path || strcmp(path, ":memory:") == 0) return NULL;
    size_t n = strlen(path);
    char *out = xmalloc(n + sizeof "-tokens");
    memcpy(out, path, n);
    memcpy(out + n, "-tokens", sizeof "-tokens");
    return out;
}

/* ------------------------------------------------------------------------
 * Recovery
 */

static void store_journal__free_evts(evt **evs, size_t n)
{
    for (size_t i = 0; i < n; i++) evt_unref(evs[i]);
    free(evs);
}

/* Reads the file into *data; 0 with *len 0 when there is none. */
static int store_journal__read_file(store *s, const char *path, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        snprintf(s->err, sizeof s->err, "cannot open the token journal %s: %s", path,
                 strerror(errno));
        return DB_ERR;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size > STORE_JOURNAL__FILE_MAX) {
        snprintf(s->err, sizeof s->err, "cannot read the token journal %s: %s", path,
                 errno ? strerror(errno) : "larger than 256 MiB");
        rc = DB_ERR;
    }
    size_t size = rc == 0 ? (size_t)st.st_size : 0;
    char *text = xmalloc(size + 1);
    size_t got = 0;
    while (rc == 0 && got < size) {
        ssize_t k = read(fd, text + got, size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (rc < 0) {
        free(text);
        return rc;
    }
    *data = text;
    *len = got;
    return 0;
}

/* Adds to evs the events of the file's lines from offset `at` up to the
 * first that does not parse: zeros past the last line written, what is
 * left of a longer line of an earlier round, or a write cut short by the
 * crash. */
static evt **store_journal__parse(char *data, size_t len, size_t at, evt **evs, size_t *n,
                                  size_t *cap)
{
    for (; at < len;) {
        char *nl = memchr(data + at, '\n', len - at);
        if (!nl) break;
        evt *e = evt_parse(data + at, (size_t)(nl - (data + at)), NULL, 0);
        if (!e) break;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            evs = xrealloc(evs, *cap * sizeof *evs);
        }
        evs[(*n)++] = e;
        at = (size_t)(nl - data) + 1;
    }
    return evs;
}

/* Orders events by seq, then session, then place in the file. */
typedef struct journal_found {
    evt *e;
    size_t at;
} journal_found;

static int store_journal__cmp_found(const void *a, const void *b)
{
    const journal_found *x = a, *y = b;
    if (x->e->seq != y->e->seq) return x->e->seq < y->e->seq ? -1 : 1;
    int c = strcmp(x->e->session_id, y->e->session_id);
    if (c) return c;
    return x->at < y->at ? -1 : x->at > y->at;
}

/*
 * Puts the events of both halves in the order they were written, which is
 * seq order within each session (a session's events may sit in either
 * half), and drops a line read twice: a file written before the halves
 * were used may hold a line across the middle, which the first half's
 * read takes and the second's reads again.
 */
static void store_journal__order(evt **evs, size_t *n)
{
    if (*n < 2) return;
    journal_found *f = xmalloc(*n * sizeof *f);
    for (size_t i = 0; i < *n; i++) f[i] = (journal_found){evs[i], i};
    qsort(f, *n, sizeof *f, store_journal__cmp_found);
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        if (kept > 0 && evs[kept - 1]->seq == f[i].e->seq &&
            strcmp(evs[kept - 1]->session_id, f[i].e->session_id) == 0) {
            evt_unref(f[i].e);
            continue;
        }
        evs[kept++] = f[i].e;
    }
    free(f);
    *n = kept;
}

/* Keeps the events past their session's stored last seq; drops the rest. */
static int store_journal__unstored(store *s, evt **evs, size_t *n)
{
    size_t kept = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < *n; i++) {
        const char *p[] = {evs[i]->session_id};
        db_result *r = NULL;
        rc = store__query(s, "SELECT last_seq FROM chat_sessions WHERE id = ?", 1, p, &r);
        bool keep = rc == 0 && db_result_rows(r) == 1 && evs[i]->seq > db_result_int(r, 0, 0, 0);
        db_result_free(r);
        if (keep)
            evs[kept++] = evs[i];
        else
            evt_unref(evs[i]);
    }
    for (size_t i = kept; rc < 0 && i < *n; i++) evt_unref(evs[i]);
    *n = kept;
    return rc;
}

static bool store_journal__db_down(int rc)
{
    return rc == DB_ERR_BUSY || rc == DB_ERR_FULL || rc == DB_ERR_CONN;
}

/* Stores the recovered events; *stored counts them. When they do not go in
 * together, each goes on its own, and one that does not follow its
 * session's stored ones (which the journal never writes) is dropped with
 * an error in the log rather than keeping the server from starting. */
static int store_journal__store_recovered(store *s, evt **evs, size_t n, size_t *stored)
{
    *stored = 0;
    int rc = store_savepoint(s);
    if (rc == 0) rc = store_event_put(s, evs, n);
    if (rc == 0) {
        *stored = n;
        return store_savepoint_release(s);
    }
    if (store_journal__db_down(rc) || store_savepoint_undo(s) != 0) return rc;
    for (size_t i = 0; i < n; i++) {
        rc = store_savepoint(s);
        if (rc == 0) rc = store_event_put(s, &evs[i], 1);
        if (rc == 0) {
            rc = store_savepoint_release(s);
            if (rc < 0) return rc;
            (*stored)++;
            continue;
        }
        if (store_journal__db_down(rc)) return rc;
        LOG(LOG_ERROR, "A token event of the journal cannot be stored and is dropped.",
            "session_id=%s seq=%" PRId64 " error=\"%s\"", evs[i]->session_id, evs[i]->seq,
            store_errmsg(s));
        rc = store_savepoint_undo(s);
        if (rc < 0) return rc;
    }
    return 0;
}

static int store_journal__empty(store *s, const char *path)
{
    if (truncate(path, 0) == 0 || errno == ENOENT) return 0;
    snprintf(s->err, sizeof s->err, "cannot empty the token journal %s: %s", path, strerror(errno));
    return DB_ERR;
}

int store_journal_recover(store *s, const char *url)
{
    char *path = store_journal_path(url);
    if (!path) return 0;
    char *data = NULL;
    size_t len = 0, n = 0, stored = 0;
    int rc = store_journal__read_file(s, path, &data, &len);
    evt **evs = NULL;
    size_t cap = 0;
    if (rc == 0) {
        evs = store_journal__parse(data, len, 0, evs, &n, &cap);
        evs = store_journal__parse(data, len, (size_t)STORE_JOURNAL__HALF, evs, &n, &cap);
        store_journal__order(evs, &n);
    }
    free(data);
    if (rc == 0 && n > 0) {
        rc = store_begin(s);
        if (rc == 0) rc = store_journal__unstored(s, evs, &n);
        if (rc == 0) rc = store_journal__store_recovered(s, evs, n, &stored);
        if (rc == 0) rc = store_commit(s);
        if (rc < 0) store_rollback(s);
    }
    if (rc == 0) rc = store_journal__empty(s, path);
    if (rc == 0 && stored > 0)
        LOG(LOG_WARN, "Token events the journal held at a crash were stored.", "path=%s events=%zu",
            path, stored);
    store_journal__free_evts(evs, n);
    free(path);
    return rc < 0 ? rc : (int)stored;
}

/*
 * Writes STORE_JOURNAL_FILE_MAX zero bytes into the empty file. The journal
 * then writes over them from the start, and again each time nothing it
 * holds waits for the tables (or over a half in which nothing held lives
 * any more, store_journal.h): writing over blocks the file has changes no
 * size and allocates nothing, where appending made every write a change of
 * the file system's own metadata, which waits behind its journal commits
 * while other files are written out (docs/benchmarks.md, fix 20). A zero
 * byte ends the read at start-up, as does a line left from an earlier
 * round (stored already, told apart by its seq).
 */
static int store_journal__fill(int fd)
{
    static const char zeros[64 * 1024];
    for (off_t at = 0; at < (off_t)STORE_JOURNAL_FILE_MAX; at += (off_t)sizeof zeros)
        if (pwrite(fd, zeros, sizeof zeros, at) != (ssize_t)sizeof zeros) return -1;
    return 0;
}

int store_journal_attach(store *s, const char *url)
{
    char *path = store_journal_path(url);
    if (!path) return 0;
    int rc = store_journal_recover(s, url);
    int fd = rc < 0 ? -1 : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (rc >= 0 && fd < 0) {
        snprintf(s->err, sizeof s->err, "cannot open the token journal %s: %s", path,
                 strerror(errno));
        rc = DB_ERR;
    }
    if (rc >= 0 && store_journal__fill(fd) != 0) {
        snprintf(s->err, sizeof s->err, "cannot write the token journal %s: %s", path,
                 strerror(errno));
        close(fd);
        rc = DB_ERR;
    }
    void *map = MAP_FAILED;
    if (rc >= 0) {
        map = mmap(NULL, STORE_JOURNAL_FILE_MAX, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                   fd, 0);
        if (map == MAP_FAILED) {
            snprintf(s->err, sizeof s->err, "cannot map the token journal %s: %s", path,
                     strerror(errno));
            close(fd);
            rc = DB_ERR;
        }
    }
    if (rc < 0) {
        free(path);
        return rc;
    }
    store_journal *j = xcalloc(1, sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    j->map = map;
    j->end = STORE_JOURNAL__HALF;
    j->fd = fd;
    j->path = path;
    s->journal = j;
    return 0;
}

/* ------------------------------------------------------------------------
 * Sessions
 */

/* Where the session id (of hash h) is linked in its bucket's chain, or the
 * chain's end when the journal does not know it. */
static journal_session **store_journal__slot(store_journal *j, const char *id, uint64_t h)
{
    journal_session **pp = &j->buckets[h % STORE_JOURNAL__BUCKETS];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->id, id) != 0)) pp = &(*pp)->next;
    return pp;
}

static journal_session *store_journal__find_hashed(store_journal *j, const char *id, uint64_t h)
{
    return *store_journal__slot(j, id, h);
}

static journal_session *store_journal__find(store_journal *j, const char *id)
{
    return store_journal__find_hashed(j, id, id_hash(id));
}

/* The session of an event, by the hash the event carries. */
static journal_session *store_journal__find_of(store_journal *j, const evt *e)
{
    return store_journal__find_hashed(j, e->session_id, e->session_hash);
}

/* Notes that the open transaction marked x (`stored` or `storing`). */
static void store_journal__mark(store_journal *j, journal_session *x)
{
    if (x->marked) return;
    if (j->nmarked == j->cap_marked) {
        j->cap_marked = j->cap_marked ? j->cap_marked * 2 : 64;
        j->marked = xrealloc(j->marked, j->cap_marked * sizeof *j->marked);
    }
    j->marked[j->nmarked++] = x;
    x->marked = true;
}

/* The half of the file a held line is in. */
static size_t store_journal__half(const store_journal *j, const store_line *l)
{
    return l->json - j->map >= STORE_JOURNAL__HALF;
}

/* Lets go of a session's first k held events (stored, or dropped). */
static void store_journal__release(store_journal *j, journal_session *x, size_t k)
{
    if (k == 0) return;
    for (size_t i = 0; i < k; i++) {
        j->live[store_journal__half(j, &x->held[i])]--;
        x->held_bytes -= x->held[i].len;
    }
    memmove(x->held, x->held + k, (x->nheld - k) * sizeof *x->held);
    x->nheld -= k;
    j->nheld -= k;
}

/* A session that held more than its first room gives the rest back: the
 * journal knows thousands of sessions, most of them between runs
 * (docs/benchmarks.md, fix 44). */
static void store_journal__drop_held(store_journal *j, journal_session *x)
{
    store_journal__release(j, x, x->nheld);
    if (x->cap_held > STORE_JOURNAL_EVENTS) {
        x->cap_held = STORE_JOURNAL_EVENTS;
        x->held = xrealloc(x->held, x->cap_held * sizeof *x->held);
    }
}

static void store_journal__free_session(journal_session *x)
{
    free(x->held);
    free(x->run_id);
    free(x);
}

/* The seq of a session's first held event. */
static int64_t store_journal__first(const journal_session *x)
{
    return x->last - (int64_t)x->nheld + 1;
}

/* Forgets every session, or those holding nothing with idle_only. */
static void store_journal__forget(store_journal *j, bool idle_only)
{
    for (size_t b = 0; b < STORE_JOURNAL__BUCKETS; b++) {
        journal_session **pp = &j->buckets[b];
        while (*pp) {
            journal_session *x = *pp;
            if (idle_only && x->nheld > 0) {
                pp = &x->next;
                continue;
            }
            store_journal__drop_held(j, x);
            *pp = x->next;
            store_journal__free_session(x);
            j->nsessions--;
        }
    }
}

/* Forgets one session and what it holds (the transaction stored that, or
 * deleted the session). */
static void store_journal__drop_session(store_journal *j, const char *id)
{
    journal_session **pp = store_journal__slot(j, id, id_hash(id));
    journal_session *x = *pp;
    if (!x) return;
    store_journal__drop_held(j, x);
    *pp = x->next;
    store_journal__free_session(x);
    j->nsessions--;
}

static void store_journal__set_last(store_journal *j, const char *id, int64_t last)
{
    uint64_t h = id_hash(id);
    journal_session *x = store_journal__find_hashed(j, id, h);
    /* Events the loop appended while a flush stored those before them:
     * the session's last seq is theirs. */
    if (x && x->nheld > 0 && store_journal__first(x) == last + 1) return;
    if (!x) {
        if (j->nsessions >= STORE_JOURNAL_SESSIONS) store_journal__forget(j, true);
        if (j->nsessions >= STORE_JOURNAL_SESSIONS) return;
        size_t b = h % STORE_JOURNAL__BUCKETS, n = strlen(id) + 1;
        x = xcalloc(1, sizeof *x + n);
        memcpy(x->id, id, n);
        x->hash = h;
        x->next = j->buckets[b];
        j->buckets[b] = x;
        j->nsessions++;
    }
    x->last = last;
}

/* ------------------------------------------------------------------------
 * Appending
 */

/* Undoes the counts of a batch that is not appended. */
static void store_journal__unadd(store_journal *j, evt *const *evs, size_t n)
{
    j->adding = 0;
    for (size_t i = 0; i < n; i++) {
        journal_session *x = store_journal__find_of(j, evs[i]);
        if (x) {
            x->adding = x->adding_bytes = 0;
            x->adding_run = NULL;
        }
    }
}

/* Gives each event its seq and encoding, counting it against its session's
 * limits; false when one is not for the journal. */
static bool store_journal__number_one(store_journal *j, journal_session *x, evt *e);

static bool store_journal__number(store_journal *j, evt *const *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        journal_session *x = store_journal_takes(evs[i]) ? store_journal__find_of(j, evs[i]) : NULL;
        if (!x || !store_journal__number_one(j, x, evs[i])) return false;
    }
    return true;
}

bool store_journal_takes(const evt *e)
{
    if (e->type == EVT_TOKEN) return true;
    if (e->type != EVT_STATUS || !e->fields) return false;
    const char *status = json_string_value(json_object_get(e->fields, "status"));
    return status && (strcmp(status, status_name(STATUS_RESPONDING)) == 0 ||
                      strcmp(status, status_name(STATUS_THINKING)) == 0);
}

/*
 * Copies the lines of the events of evs that taken marks (every one when
 * taken is NULL) into the file, then holds them: each becomes the next
 * held event of its session, xs[i] (found by id when xs is NULL), kept as
 * its line in the file. Their seqs and encodings are given already.
 * Returns 1, and takes none, when they do not fit in what is left of the
 * file: it is full until nothing in it waits.
 */
static int store_journal__write_held(store *s, evt *const *evs, size_t n,
                                     journal_session *const *xs, const bool *taken)
{
    store_journal *j = s->journal;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        if (!taken || taken[i]) bytes += evs[i]->json_len + 1;
    if (bytes > (size_t)(j->end - j->at)) {
        /* The other half, once nothing held lives there. */
        size_t other = j->end == STORE_JOURNAL__HALF;
        if (j->live[other] > 0 || bytes > (size_t)STORE_JOURNAL__HALF) {
            j->full = true;
            return 1;
        }
        j->at = (off_t)other * STORE_JOURNAL__HALF;
        j->end = j->at + STORE_JOURNAL__HALF;
    }
    char *to = j->map + j->at;
    for (size_t i = 0; i < n; i++) {
        if (taken && !taken[i]) continue;
        const evt *e = evs[i];
        memcpy(to, e->json, e->json_len);
        to[e->json_len] = '\n';
        journal_session *x = xs ? xs[i] : store_journal__find_of(j, e);
        if (x->nheld == x->cap_held) {
            x->cap_held = x->cap_held ? x->cap_held * 2 : STORE_JOURNAL_EVENTS;
            x->held = xrealloc(x->held, x->cap_held * sizeof *x->held);
        }
        if (x->nheld == 0 && !store__same_name(x->run_id, e->run_id)) {
            free(x->run_id);
            x->run_id = e->run_id ? xstrdup(e->run_id) : NULL;
        }
        x->held[x->nheld] = (store_line){to, (uint32_t)e->json_len, e->type};
        j->live[store_journal__half(j, &x->held[x->nheld])]++;
        x->nheld++;
        x->held_bytes += e->json_len;
        x->last = e->seq;
        x->ts_ms = e->ts_ms;
        j->nheld++;
        to += e->json_len + 1;
    }
    j->at += (off_t)bytes;
    return 0;
}

static int store_journal__append(store *s, evt *const *evs, size_t n)
{
    store_journal *j = s->journal;
    /* A long batch shares its commit among many events already, and many
     * sessions filling the journal at once would empty it all at once. */
    if (!j || n == 0 || n > STORE_JOURNAL_EVENTS_MAX || j->full || j->failed) return 0;
    bool numbered = store_journal__number(j, evs, n);
    store_journal__unadd(j, evs, n);
    if (!numbered) return 0;
    int rc = store_journal__write_held(s, evs, n, NULL, NULL);
    return rc < 0 ? rc : rc == 0;
}

/* Encodes e as the next event of x in the batch being appended; false
 * when x has no room left for it: past STORE_JOURNAL_EVENTS and
 * STORE_JOURNAL_BYTES, a session has room, up to the _MAX limits, while
 * the journal would hold at most STORE_JOURNAL_SHARED events in all. */
static bool store_journal__number_one(store_journal *j, journal_session *x, evt *e)
{
    if (x->nheld + x->adding >= STORE_JOURNAL_EVENTS_MAX) return false;
    /* A session's held events are of one run: they are stored as one row
     * of it. Another run's event goes to a transaction, which stores them
     * first. */
    const char *run = x->nheld ? x->run_id : x->adding ? x->adding_run : e->run_id;
    if (!store__same_name(run, e->run_id)) return false;
    if (x->adding == 0) x->adding_run = e->run_id;
    free(e->json);
    e->json = NULL;
    e->json_len = 0;
    e->seq = x->last + (int64_t)x->adding + 1;
    if (evt_encode(e) < 0) return false;
    x->adding++;
    x->adding_bytes += e->json_len;
    j->adding++;
    size_t events = x->nheld + x->adding, bytes = x->held_bytes + x->adding_bytes;
    if (events <= STORE_JOURNAL_EVENTS && bytes <= STORE_JOURNAL_BYTES) return true;
    return bytes <= STORE_JOURNAL_BYTES_MAX && j->nheld + j->adding <= STORE_JOURNAL_SHARED;
}

static int store_journal__append_part(store *s, evt *const *evs, size_t n, bool *taken)
{
    store_journal *j = s->journal;
    for (size_t i = 0; i < n; i++) taken[i] = false;
    if (!j || n == 0 || j->full || j->failed) return 0;
    /* Each event's session, looked up once. */
    journal_session **xs = xmalloc(n * sizeof *xs);
    for (size_t i = 0; i < n; i++)
        xs[i] = store_journal_takes(evs[i]) ? store_journal__find_of(j, evs[i]) : NULL;
    /* Numbered in order; a session that runs out of room is refused with
     * every event of it in the batch, so that its events stay in order. */
    for (size_t i = 0; i < n; i++) {
        if (!xs[i] || xs[i]->refused) continue;
        if (!store_journal__number_one(j, xs[i], evs[i])) xs[i]->refused = true;
    }
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        taken[i] = xs[i] && !xs[i]->refused;
        if (taken[i]) k++;
    }
    int rc = k > 0 ? store_journal__write_held(s, evs, n, xs, taken) : 0;
    j->adding = 0;
    for (size_t i = 0; i < n; i++) {
        if (!xs[i]) continue;
        xs[i]->adding = xs[i]->adding_bytes = 0;
        xs[i]->adding_run = NULL;
        xs[i]->refused = false;
    }
    free(xs);
    if (rc != 0) {
        for (size_t i = 0; i < n; i++) taken[i] = false;
        return rc < 0 ? rc : 0;
    }
    return k;
}

/* ------------------------------------------------------------------------
 * Transactions
 */

/* Drops what the open transaction learned after the first keep. */
static void store_journal__unlearn(store_journal *j, size_t keep)
{
    for (size_t i = keep; i < j->nlearned; i++) free(j->learned[i].id);
    j->nlearned = keep;
}

static void store_journal__clear_learned(store_journal *j)
{
    store_journal__unlearn(j, 0);
}

/* True for failures of the database as a whole rather than of one
 * session's events: the transaction fails, and the journal keeps them. */
static bool store_journal__global_failure(int rc)
{
    return rc == DB_ERR_BUSY || rc == DB_ERR_FULL || rc == DB_ERR_CONN;
}

/* Stores what a session holds from its k-th held event on: one row, after
 * checking its seqs. */
static int store_journal__put_from(store *s, const journal_session *x, size_t k)
{
    if (k == x->nheld) return 0;
    return store_event_put_lines(s, x->id, x->run_id, store_journal__first(x) + (int64_t)k,
                                 x->ts_ms, x->held + k, x->nheld - k);
}

/*
 * A flush stores what every session holds, and the loop may go on
 * appending to these sessions meanwhile, since nothing else in the
 * transaction takes seqs of theirs: a token that comes during a flush is
 * journaled and published at once rather than held back until the flush
 * commits (docs/benchmarks.md, fix 61). So the flush takes what it stores
 * under the lock (each session marked `storing` that many events) and
 * writes it without the lock; the held lines stay where they are until
 * the commit lets go of them.
 */
typedef struct journal_part {
    journal_session *x;
    int64_t first, ts_ms;
    store_line *lines;
    size_t n;
} journal_part;

/* Orders parts by their session's id, which is the order of the event
 * table's key and, ids sorting by creation time, nearly that of the
 * sessions' rows (qsort's comparison). */
static int store_journal__part_cmp(const void *a, const void *b)
{
    return strcmp(((const journal_part *)a)->x->id, ((const journal_part *)b)->x->id);
}

/* Under the lock: what each session holds that the open transaction does
 * not store yet, in the order of the sessions' ids. A store in the hash
 * table's order visited the pages of the event table's key and of the
 * sessions' rows at random: at a thousand sessions more of them than the
 * writer's page cache holds, so SQLite wrote pages out to the WAL in the
 * middle of the transaction, changed them again, and at the commit read
 * back every frame after the first one changed to write its checksum
 * anew. In the key's order most pages are done with before they leave the
 * cache, and the writer reads and writes about a third as many
 * (docs/benchmarks.md, fix 88). */
static journal_part *store_journal__take_parts(store_journal *j, size_t *n)
{
    journal_part *parts = NULL;
    size_t cap = 0;
    *n = 0;
    for (size_t b = 0; b < STORE_JOURNAL__BUCKETS; b++)
        for (journal_session *x = j->buckets[b]; x; x = x->next) {
            if (x->stored || x->storing || x->nheld == 0) continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                parts = xrealloc(parts, cap * sizeof *parts);
            }
            store_line *lines = xmalloc(x->nheld * sizeof *lines);
            memcpy(lines, x->held, x->nheld * sizeof *lines);
            parts[(*n)++] = (journal_part){x, store_journal__first(x), x->ts_ms, lines, x->nheld};
            x->storing = x->nheld;
            store_journal__mark(j, x);
        }
    if (*n > 1) qsort(parts, *n, sizeof *parts, store_journal__part_cmp);
    return parts;
}

/* A session's id and run id do not change while it holds events. */
static int store_journal__put_part(store *s, const journal_part *p)
{
    return store_event_put_lines(s, p->x->id, p->x->run_id, p->first, p->ts_ms, p->lines, p->n);
}

/* One part in a savepoint of its own: the events of a session that is
 * gone, or that do not follow its stored seq, are dropped with an error in
 * the log rather than failing the others. */
static int store_journal__flush_part(store *s, const journal_part *p)
{
    store_journal *j = s->journal;
    size_t learned = j->nlearned;
    int rc = store_savepoint(s);
    if (rc < 0) return rc;
    rc = store_journal__put_part(s, p);
    if (rc == 0) return store_savepoint_release(s);
    if (store_journal__global_failure(rc)) {
        store_savepoint_undo(s);
        return rc;
    }
    LOG(LOG_ERROR, "Token events of the journal cannot be stored and are dropped.",
        "session_id=%s events=%zu first_seq=%" PRId64 " error=\"%s\"", p->x->id, p->n, p->first,
        store_errmsg(s));
    pthread_mutex_lock(&j->mu);
    store_journal__unlearn(j, learned);
    store_journal__drop_held(j, p->x);
    /* Its last seq is the stored one again: learned anew from its next
     * transaction. Until this one ends, the loop leaves it alone. */
    p->x->storing = 0;
    p->x->stored = true;
    store_journal__mark(j, p->x);
    j->forget = true;
    pthread_mutex_unlock(&j->mu);
    return store_savepoint_undo(s);
}

static int store_journal__put_parts(store *s, const journal_part *parts, size_t n, size_t learned)
{
    store_journal *j = s->journal;
    int rc = store_savepoint(s);
    if (rc < 0) return rc;
    for (size_t i = 0; rc == 0 && i < n; i++) rc = store_journal__put_part(s, &parts[i]);
    if (rc == 0) return store_savepoint_release(s);
    if (store_journal__global_failure(rc) || store_savepoint_undo(s) != 0) return rc;
    pthread_mutex_lock(&j->mu);
    store_journal__unlearn(j, learned);
    pthread_mutex_unlock(&j->mu);
    /* One session's events failed them all: each goes on its own. */
    rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) rc = store_journal__flush_part(s, &parts[i]);
    return rc;
}

/*
 * Under the lock: marks the sessions whose held events store_journal_settle
 * stores, in xs (room for n + STORE_JOURNAL_FULL_SESSIONS), and returns
 * how many of them are evs' own (*nx is all of them). Each is marked
 * `stored` here, so the loop leaves it alone from now on, and its held
 * events stay as they are while they are written without the lock.
 */
static size_t store_journal__settle_take(store_journal *j, evt *const *evs, size_t n,
                                         journal_session **xs, size_t *nx)
{
    *nx = 0;
    if (j->nheld == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        journal_session *x = store_journal__find_of(j, evs[i]);
        if (!x || x->nheld == 0 || x->stored) continue;
        x->stored = true; /* also marks it seen, for the sessions that repeat in evs */
        store_journal__mark(j, x);
        xs[(*nx)++] = x;
    }
    size_t own = *nx;
    /* A full file takes nothing more and starts over once nothing in it
     * waits: each transaction meanwhile stores the events of a few more
     * sessions, so that it empties over a few commits rather than in one
     * long one that every stream would wait for. */
    size_t more = j->full ? STORE_JOURNAL_FULL_SESSIONS : 0;
    for (size_t b = 0; more > 0 && b < STORE_JOURNAL__BUCKETS; b++)
        for (journal_session *x = j->buckets[b]; more > 0 && x; x = x->next) {
            if (x->nheld == 0 || x->stored || x->storing) continue;
            x->stored = true;
            store_journal__mark(j, x);
            xs[(*nx)++] = x;
            more--;
        }
    return own;
}

int store_journal_settle(store *s, evt *const *evs, size_t n)
{
    store_journal *j = s->journal;
    if (!j) return 0;
    journal_session **xs = xmalloc((n + STORE_JOURNAL_FULL_SESSIONS) * sizeof *xs);
    size_t nx;
    pthread_mutex_lock(&j->mu);
    size_t own = store_journal__settle_take(j, evs, n, xs, &nx);
    pthread_mutex_unlock(&j->mu);
    /* The statements run without the lock: the loop goes on appending
     * tokens of every other session meanwhile, where it used to find the
     * lock taken and hand its token to the writer, which published it
     * only after this batch and the next (docs/benchmarks.md, fix 80).
     * What each session of evs holds goes in as one row, after one
     * statement that checks and raises its last_seq; a flush earlier in
     * the transaction stored its first `storing` events. */
    int rc = 0;
    size_t done = 0;
    for (; rc == 0 && done < own; done++)
        rc = store_journal__put_from(s, xs[done], xs[done]->storing);
    /* The others each go in a savepoint of their own: a session whose
     * events cannot be stored must not fail the batch's operations, which
     * have nothing to do with it; its events are dropped. */
    if (rc == 0)
        for (; rc == 0 && done < nx; done++) {
            journal_session *x = xs[done];
            journal_part p = {x, store_journal__first(x), x->ts_ms, x->held, x->nheld};
            rc = store_journal__flush_part(s, &p);
        }
    /* Not stored after all: whoever called this undoes what it wrote, so
     * the commit must not let go of any of them. A session whose events
     * were dropped (it holds none now) is left alone until the
     * transaction ends. */
    if (rc != 0) {
        pthread_mutex_lock(&j->mu);
        for (size_t i = 0; i < nx; i++)
            if (xs[i]->nheld > 0) xs[i]->stored = false;
        pthread_mutex_unlock(&j->mu);
    }
    free(xs);
    return rc;
}

static void store_journal__op(store *s, bool running)
{
    s->journal->in_op = running;
}

static void store_journal__forget_one(store *s, const char *session_id)
{
    store_journal *j = s->journal;
    if (!j) return;
    if (j->nlearned == j->cap_learned) {
        j->cap_learned = j->cap_learned ? j->cap_learned * 2 : 64;
        j->learned = xrealloc(j->learned, j->cap_learned * sizeof *j->learned);
    }
    j->learned[j->nlearned++] = (journal_learned){xstrdup(session_id), -1};
}

static void store_journal__learn(store *s, const char *session_id, int64_t last_seq)
{
    store_journal *j = s->journal;
    if (!j) return;
    /* What an operation appends may be undone with its savepoint: its
     * sessions are forgotten instead. */
    if (j->in_op) {
        store_journal__forget_one(s, session_id);
        return;
    }
    if (j->nlearned == j->cap_learned) {
        j->cap_learned = j->cap_learned ? j->cap_learned * 2 : 64;
        j->learned = xrealloc(j->learned, j->cap_learned * sizeof *j->learned);
    }
    j->learned[j->nlearned++] = (journal_learned){xstrdup(session_id), last_seq};
}

static void store_journal__end(store *s, bool committed)
{
    store_journal *j = s->journal;
    if (!j) return;
    for (size_t i = 0; i < j->nmarked; i++) {
        journal_session *x = j->marked[i];
        if (committed && x->stored)
            store_journal__drop_held(j, x);
        else if (committed && x->storing)
            store_journal__release(j, x, x->storing);
        x->stored = false;
        x->storing = 0;
        x->marked = false;
    }
    j->nmarked = 0;
    if (committed) {
        /* The file is the only copy of what is still held. Once nothing
         * is, the next line is written over the first; once nothing held
         * lives in the half being written, over that half's first. */
        if (j->nheld == 0) {
            j->at = 0;
            j->end = STORE_JOURNAL__HALF;
            j->full = false;
        } else if (j->live[j->end > STORE_JOURNAL__HALF] == 0) {
            j->at = j->end - STORE_JOURNAL__HALF;
        }
        /* Sessions whose events are still only in the file are kept. */
        if (j->forget) store_journal__forget(j, true);
        for (size_t i = 0; i < j->nlearned; i++) {
            if (j->learned[i].last >= 0)
                store_journal__set_last(j, j->learned[i].id, j->learned[i].last);
            else
                store_journal__drop_session(j, j->learned[i].id);
        }
    }
    store_journal__clear_learned(j);
    j->forget = j->in_op = false;
    j->failed = !committed;
}

void store_journal_free(store *s)
{
    store_journal *j = s->journal;
    if (!j) return;
    store_journal__forget(j, false);
    store_journal__clear_learned(j);
    free(j->learned);
    free(j->marked);
    munmap(j->map, STORE_JOURNAL_FILE_MAX);
    pthread_mutex_destroy(&j->mu);
    close(j->fd);
    free(j->path);
    free(j);
    s->journal = NULL;
}

/* ------------------------------------------------------------------------
 * Locking: the writer's calls, and the loop's own appends
 */

int store_journal_append(store *s, evt *const *evs, size_t n)
{
    store_journal *j = s->journal;
    if (!j) return 0;
    pthread_mutex_lock(&j->mu);
    int rc = store_journal__append(s, evs, n);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int store_journal_try_append(store *s, evt *e, int64_t paced_ns)
{
    store_journal *j = s->journal;
    if (!j) return 0;
    /* Waited for, not tried: nobody holds the lock while a statement runs
     * (store_journal_settle and store_journal_flush store without it), so
     * the wait is for copies in memory (at a thousand runs at most 1.7 ms,
     * when the writer holding it waited for a core). A token that found it
     * taken used to go to the writer and wait for the transaction that
     * took it, 10 to 25 ms at a thousand runs (docs/benchmarks.md, fix 80). */
    pthread_mutex_lock(&j->mu);
    /* A session whose held events the open transaction stores is left to
     * the writer: its last seq is learned again when that commits. */
    journal_session *x = store_journal__find_of(j, e);
    int64_t now = paced_ns > 0 ? clock_mono_ns() : 0;
    bool paced = paced_ns == 0 || !x || now - x->loop_ns >= paced_ns;
    int rc = x && !x->stored && paced ? store_journal__append(s, &e, 1) : 0;
    if (rc == 1) x->loop_ns = now ? now : clock_mono_ns();
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int store_journal_append_part(store *s, evt *const *evs, size_t n, bool *taken)
{
    store_journal *j = s->journal;
    if (!j) return store_journal__append_part(s, evs, n, taken);
    pthread_mutex_lock(&j->mu);
    int rc = store_journal__append_part(s, evs, n, taken);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int store_journal_flush(store *s)
{
    store_journal *j = s->journal;
    if (!j) return 0;
    pthread_mutex_lock(&j->mu);
    size_t n = 0;
    journal_part *parts = j->nheld > 0 ? store_journal__take_parts(j, &n) : NULL;
    /* Run as an operation (eventlog_flush), it still learns its sessions:
     * what it stores is what the journal already knew. */
    bool in_op = j->in_op;
    j->in_op = false;
    size_t learned = j->nlearned;
    pthread_mutex_unlock(&j->mu);
    int rc = n > 0 ? store_journal__put_parts(s, parts, n, learned) : 0;
    pthread_mutex_lock(&j->mu);
    j->in_op = in_op;
    /* Not stored after all: the commit must not let go of them. */
    for (size_t i = 0; rc != 0 && i < n; i++) parts[i].x->storing = 0;
    pthread_mutex_unlock(&j->mu);
    for (size_t i = 0; i < n; i++) free(parts[i].lines);
    free(parts);
    return rc;
}

void store_journal_op(store *s, bool running)
{
    store_journal *j = s->journal;
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    store_journal__op(s, running);
    pthread_mutex_unlock(&j->mu);
}

void store_journal_forget(store *s, const char *session_id)
{
    store_journal *j = s->journal;
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    store_journal__forget_one(s, session_id);
    pthread_mutex_unlock(&j->mu);
}

void store_journal_learn(store *s, const char *session_id, int64_t last_seq)
{
    store_journal *j = s->journal;
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    store_journal__learn(s, session_id, last_seq);
    pthread_mutex_unlock(&j->mu);
}

void store_journal_end(store *s, bool committed)
{
    store_journal *j = s->journal;
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    store_journal__end(s, committed);
    pthread_mutex_unlock(&j->mu);
}

size_t store_journal_pending(const store *s)
{
    store_journal *j = s->journal;
    if (!j) return 0;
    pthread_mutex_lock(&j->mu);
    size_t n = j->nheld;
    pthread_mutex_unlock(&j->mu);
    return n;
}

/* The lines stay where they are while the lock is held: a half of the file
 * is written over only once nothing held lives in it, and held events
 * leave only at a commit's end, under the lock. */
int store_journal_held_after(store *s, const char *session_id, int64_t after, store_event_cb cb,
                             void *ud)
{
    store_journal *j = s->journal;
    if (!j) return 0;
    int n = 0;
    pthread_mutex_lock(&j->mu);
    journal_session *x = store_journal__find(j, session_id);
    /* The held lines carry consecutive seqs from the first one's on. */
    int64_t first = x ? store_journal__first(x) : 0;
    size_t from = x && after >= first ? (size_t)(after - first + 1) : 0;
    for (size_t i = from; x && i < x->nheld; i++) {
        const store_line *l = &x->held[i];
        n++;
        if (cb(ud, first + (int64_t)i, evt_type_name(l->type), l->json, l->len) != 0) break;
    }
    pthread_mutex_unlock(&j->mu);
    return n;
}
