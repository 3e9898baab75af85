/*
 * fixture: the database every store suite runs against. The URL comes from
 * CHATPLANE_TEST_DB_URL (a shared PostgreSQL database) or, when it is unset,
 * a new SQLite file in a temporary directory of its own. Included by the
 * suites after <cmocka.h>; everything here is static.
 */
#ifndef CHATPLANE_TEST_STORE_FIXTURE_H
#define CHATPLANE_TEST_STORE_FIXTURE_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "store/store.h"

/* Fills url, and dir with the temporary directory of a SQLite run ("" on
 * PostgreSQL). prefix names the directory. Returns 0, or -1 when the
 * directory cannot be made. */
static int fixture_db_url(char *url, size_t urllen, char dir[PATH_MAX], const char *prefix)
{
    const char *env = getenv("CHATPLANE_TEST_DB_URL");
    dir[0] = '\0';
    if (env && *env) {
        snprintf(url, urllen, "%s", env);
        return 0;
    }
    snprintf(dir, PATH_MAX, "/tmp/%s-XXXXXX", prefix);
    if (!mkdtemp(dir)) return -1;
    snprintf(url, urllen, "sqlite:%s/test.db", dir);
    return 0;
}

/* Opens url or fails the test, naming the URL and the reason. */
static store *fixture_open(const char *url)
{
    store *s = NULL;
    char err[512] = "";
    if (store_open(url, &s, err, sizeof err) != 0) fail_msg("store_open(%s): %s", url, err);
    return s;
}

/* Removes a SQLite run's directory, also after a test made it read-only. */
static void fixture_remove_dir(const char *dir)
{
    char cmd[PATH_MAX + 32];
    if (!*dir) return;
    chmod(dir, 0700);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) print_error("cannot remove %s\n", dir);
}

/* A suite's database: dir is the temporary directory of a SQLite run, ""
 * on PostgreSQL. */
typedef struct fixture {
    char dir[PATH_MAX];
    char url[PATH_MAX + 16];
    store *s;
} fixture;

/* Opens and migrates a database of its own into f (prefix names the
 * directory). Returns 0, or -1 after printing why. */
__attribute__((unused)) static int fixture_start(fixture *f, const char *prefix)
{
    if (fixture_db_url(f->url, sizeof f->url, f->dir, prefix) != 0) return -1;
    f->s = fixture_open(f->url);
    char err[512] = "";
    if (store_migrate(f->s, NULL, NULL, err, sizeof err) != 0) {
        print_error("store_migrate: %s\n", err);
        return -1;
    }
    return 0;
}

/* Closes f's store and removes its directory. */
__attribute__((unused)) static void fixture_stop(fixture *f)
{
    store_close(f->s);
    fixture_remove_dir(f->dir);
}

/* Skips the test unless the suite runs on PostgreSQL. */
__attribute__((unused)) static void fixture_skip_unless_postgres(const fixture *f)
{
    if (*f->dir != '\0') {
        print_message("needs PostgreSQL; skipping\n");
        skip();
    }
}

#endif
