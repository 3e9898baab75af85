/*
 * chatplane sessions: the sessions, newest first, as a table: id, title,
 * mode, status, the stop reason of the newest stopped run, and when the
 * session last changed. On a terminal the title takes the width that is
 * left and times are relative ("5 min ago"); otherwise (a pipe, a file) the
 * title is cut at a fixed width and times are RFC 3339, so that scripts
 * read the same text whatever the terminal.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/term.h"
#include "core/timefmt.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define SESSIONS_PAGE       200 /* sessions read per query */
#define SESSIONS_TITLE_COLS 40  /* the title's width when not on a terminal */
#define SESSIONS_TITLE_MIN  10  /* ... and its least width on a terminal */
#define SESSIONS_CELL_MAX   4096

enum { COL_ID, COL_TITLE, COL_MODE, COL_STATUS, COL_STOP, COL_UPDATED, COL__COUNT };
static const char *const col_head[COL__COUNT] = {"ID",     "TITLE",     "MODE",
                                                 "STATUS", "LAST STOP", "UPDATED"};

typedef struct sessions_row {
    char *cell[COL__COUNT]; /* owned, control characters removed */
} sessions_row;

typedef struct sessions_table {
    sessions_row *rows;
    size_t n, alloc;
    bool tty;
} sessions_table;

/* A cell's text: control characters (a title may hold any text) become
 * spaces. Returns a new string. */
static char *cmd_sessions__cell(const char *s)
{
    buf b;
    buf_init(&b, SESSIONS_CELL_MAX);
    term_clean(&b, s, strlen(s), "", " ");
    return buf_detach(&b, NULL);
}

/* "just now", "42 s ago", "5 min ago", "3 h ago", "12 d ago", then the
 * date. */
static char *cmd_sessions__relative(int64_t then_ms, int64_t now_ms)
{
    int64_t s = (now_ms - then_ms) / 1000;
    if (s < 5) return xstrdup("just now");
    if (s < 60) return xasprintf("%lld s ago", (long long)s);
    if (s < 3600) return xasprintf("%lld min ago", (long long)(s / 60));
    if (s < 86400) return xasprintf("%lld h ago", (long long)(s / 3600));
    if (s < 30 * 86400) return xasprintf("%lld d ago", (long long)(s / 86400));
    char t[TIMEFMT_LEN];
    timefmt_rfc3339(then_ms, t);
    return xstrndup(t, 10);
}

/* The stop reason of the session's newest stopped run, or "-". */
static int cmd_sessions__last_stop(store *s, const char *session_id, char **out)
{
    store_run *runs = NULL;
    size_t n = 0;
    int rc = store_run_list(s, session_id, &runs, &n);
    if (rc < 0) return rc;
    const char *reason = "-";
    for (size_t i = 0; i < n; i++) {
        if (runs[i].stop_reason) {
            reason = runs[i].stop_reason;
            break;
        }
    }
    *out = cmd_sessions__cell(reason);
    store_run_list_free(runs, n);
    return 0;
}

static int cmd_sessions__add(sessions_table *t, store *s, const store_session *ses, int64_t now_ms)
{
    if (t->n == t->alloc) {
        t->alloc = t->alloc ? t->alloc * 2 : 64;
        t->rows = xrealloc(t->rows, t->alloc * sizeof *t->rows);
    }
    sessions_row *r = &t->rows[t->n];
    memset(r, 0, sizeof *r);
    int rc = cmd_sessions__last_stop(s, ses->id, &r->cell[COL_STOP]);
    if (rc < 0) return rc;
    r->cell[COL_ID] = cmd_sessions__cell(ses->id);
    r->cell[COL_TITLE] = cmd_sessions__cell(ses->title && *ses->title ? ses->title : "-");
    r->cell[COL_MODE] = cmd_sessions__cell(ses->mode ? ses->mode : "-");
    r->cell[COL_STATUS] = cmd_sessions__cell(ses->status ? ses->status : "-");
    if (t->tty) {
        r->cell[COL_UPDATED] = cmd_sessions__relative(ses->updated_ms, now_ms);
    } else {
        char ts[TIMEFMT_LEN];
        timefmt_rfc3339(ses->updated_ms, ts);
        r->cell[COL_UPDATED] = xstrdup(ts);
    }
    t->n++;
    return 0;
}

/* Reads every session, newest first, page by page. */
static int cmd_sessions__read(sessions_table *t, store *s)
{
    int64_t now = clock_wall_ms();
    char *before = NULL;
    int rc = 0;
    for (;;) {
        store_session *page = NULL;
        size_t n = 0;
        rc = store_session_list(s, NULL, SESSIONS_PAGE, before, &page, &n);
        if (rc < 0) break;
        for (size_t i = 0; i < n && rc >= 0; i++) rc = cmd_sessions__add(t, s, &page[i], now);
        free(before);
        before = n > 0 ? xstrdup(page[n - 1].id) : NULL;
        store_session_list_free(page, n);
        if (rc < 0 || n < SESSIONS_PAGE) break;
    }
    free(before);
    return rc < 0 ? rc : 0;
}

static size_t cmd_sessions__cols(const char *s)
{
    return term_cols(s, strlen(s));
}

/* One cell padded (or, for the title, cut) to width; the last column is
 * not padded, so lines carry no trailing blanks. Returns 0 or BUF_TOOBIG. */
static int cmd_sessions__put(buf *line, const char *text, size_t width, bool last, const char *ell)
{
    size_t cols = cmd_sessions__cols(text), len = strlen(text);
    int rc;
    if (cols > width) {
        size_t ell_cols = cmd_sessions__cols(ell);
        len = term_fit(text, len, width > ell_cols ? width - ell_cols : 0);
        rc = buf_append(line, text, len);
        rc |= buf_append_str(line, ell);
        cols = term_cols(text, len) + ell_cols;
    } else {
        rc = buf_append(line, text, len);
    }
    if (last) return rc;
    for (size_t i = cols; i < width + 2; i++) rc |= buf_append_char(line, ' ');
    return rc;
}

static void cmd_sessions__print(const sessions_table *t)
{
    size_t w[COL__COUNT];
    for (int c = 0; c < COL__COUNT; c++) {
        w[c] = cmd_sessions__cols(col_head[c]);
        for (size_t i = 0; i < t->n; i++) {
            size_t cols = cmd_sessions__cols(t->rows[i].cell[c]);
            if (cols > w[c]) w[c] = cols;
        }
    }
    size_t title = SESSIONS_TITLE_COLS;
    if (t->tty) {
        size_t others = 0, width = (size_t)term_width(STDOUT_FILENO, 80);
        for (int c = 0; c < COL__COUNT; c++)
            if (c != COL_TITLE) others += w[c] + 2;
        title = width > others + 2 + SESSIONS_TITLE_MIN ? width - others - 2 : SESSIONS_TITLE_MIN;
    }
    if (w[COL_TITLE] > title) w[COL_TITLE] = title;
    const char *ell = t->tty && term_env_utf8() ? "…" : "...";

    /* A cell holds at most SESSIONS_CELL_MAX bytes (and an ellipsis) and is
     * padded by at most as many columns again, so a line always fits. */
    buf line;
    buf_init(&line, (size_t)COL__COUNT * 3 * SESSIONS_CELL_MAX + 1);
    for (size_t i = 0; i <= t->n; i++) {
        buf_reset(&line);
        int rc = 0;
        for (int c = 0; c < COL__COUNT; c++)
            rc |= cmd_sessions__put(&line, i == 0 ? col_head[c] : t->rows[i - 1].cell[c], w[c],
                                    c == COL__COUNT - 1, ell);
        rc |= buf_append_char(&line, '\n');
        assert(rc == 0);
        fwrite(line.data, 1, line.len, stdout);
    }
    buf_cleanup(&line);
}

static void cmd_sessions__free(sessions_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        for (int c = 0; c < COL__COUNT; c++) free(t->rows[i].cell[c]);
    free(t->rows);
}

int cmd_sessions(int argc, char **argv)
{
    static const char *const allowed[] = {"db", "config", NULL};
    config cfg;
    char *rest[argc > 0 ? argc : 1], *pos[argc > 0 ? argc : 1];
    int nrest, npos;
    int rc = cli_load_config("sessions", allowed, argc - 1, argv + 1, &cfg, rest, &nrest);
    store *s = NULL;
    sessions_table t = {.tty = isatty(STDOUT_FILENO) != 0};
    if (rc != CLI_EXIT_OK) goto out;
    const cli_opt opts[] = {{NULL, NULL, NULL}};
    rc = cli_parse_opts("sessions", opts, nrest, rest, pos, &npos);
    if (rc != CLI_EXIT_OK) goto out;
    if (npos > 0) {
        rc = cli_fail("sessions", CLI_EXIT_USAGE, "unexpected argument '%s'", pos[0]);
        goto out;
    }
    if ((rc = cli_open_store("sessions", cfg.db, &s)) != CLI_EXIT_OK) goto out;
    if (cmd_sessions__read(&t, s) < 0) {
        rc = cli_fail("sessions", CLI_EXIT_FAIL, "%s", store_errmsg(s));
        goto out;
    }
    if (t.n == 0)
        fprintf(stderr, "no sessions yet; start one with: chatplane ask MESSAGE\n");
    else
        cmd_sessions__print(&t);
    if (fflush(stdout) == EOF) rc = cli_fail("sessions", CLI_EXIT_FAIL, "cannot write");
out:
    cmd_sessions__free(&t);
    store_close(s);
    config_cleanup(&cfg);
    return rc;
}
