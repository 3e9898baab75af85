/*
 * chatplane token create|list|revoke: the API tokens of docs/security.md.
 * create prints the new token once, alone on the last line of stdout; the
 * database keeps only its SHA-256.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/timefmt.h"
#include "lib/clock.h"
#include "net/auth.h"
#include "store/store.h"

/* True when a token of this name exists, revoked or not (names are never
 * reused, so a session's owner always means the same token). *err is set
 * when the database fails. */
static bool cmd_token__exists(store *s, const char *name, bool *err)
{
    store_token *rows = NULL;
    size_t n = 0;
    *err = store_token_list(s, &rows, &n) < 0;
    bool found = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, name) == 0) found = true;
    store_token_list_free(rows, n);
    return found;
}

/* Opens and migrates the database; unlike the read-only commands, create
 * may make a new SQLite file, since a token is often the first thing set
 * up. */
static int cmd_token__open_create(const char *url, store **out)
{
    char err[512];
    *out = NULL;
    if (store_open(url, out, err, sizeof err) != 0)
        return cli_fail("token", CLI_EXIT_FAIL, "%s", err);
    if (store_migrate(*out, NULL, NULL, err, sizeof err) != 0) {
        store_close(*out);
        *out = NULL;
        return cli_fail("token", CLI_EXIT_FAIL, "%s", err);
    }
    return CLI_EXIT_OK;
}

static int cmd_token__create(const config *cfg, const char *name, bool admin)
{
    if (!auth_name_valid(name))
        return cli_fail("token", CLI_EXIT_USAGE,
                        "token name '%.80s' must be 1 to %d characters of letters, digits and . _ "
                        "@ -",
                        name, AUTH_NAME_MAX);
    store *s = NULL;
    int rc = cmd_token__open_create(cfg->db, &s);
    if (rc != CLI_EXIT_OK) return rc;
    bool err = false;
    if (cmd_token__exists(s, name, &err)) {
        rc = cli_fail("token", CLI_EXIT_FAIL,
                      "a token named '%s' already exists (a revoked token keeps its name)", name);
        goto out;
    }
    if (err) {
        rc = cli_fail("token", CLI_EXIT_FAIL, "%s", store_errmsg(s));
        goto out;
    }
    char token[AUTH_TOKEN_LEN + 1], hash[SHA256_HEX_LEN + 1];
    auth_token_new(token);
    auth_token_hash(token, hash);
    store_token row = {
        .name = (char *)name, .token_sha256 = hash, .admin = admin, .created_ms = clock_wall_ms()};
    if (store_token_insert(s, &row) < 0) {
        rc = cli_fail("token", CLI_EXIT_FAIL, "%s", store_errmsg(s));
        goto out;
    }
    printf("created %stoken '%s'; it is shown only this once, keep it now:\n%s\n",
           admin ? "admin " : "", name, token);
    if (fflush(stdout) == EOF) rc = cli_fail("token", CLI_EXIT_FAIL, "cannot write");
out:
    store_close(s);
    return rc;
}

static int cmd_token__list(const config *cfg)
{
    store *s = NULL;
    int rc = cli_open_store("token", cfg->db, &s);
    if (rc != CLI_EXIT_OK) return rc;
    store_token *rows = NULL;
    size_t n = 0;
    if (store_token_list(s, &rows, &n) < 0) {
        rc = cli_fail("token", CLI_EXIT_FAIL, "%s", store_errmsg(s));
        goto out;
    }
    if (n == 0) {
        fprintf(stderr, "no tokens yet; make one with: chatplane token create NAME\n");
        goto out;
    }
    int w = 4;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(rows[i].name) > w) w = (int)strlen(rows[i].name);
    printf("%-*s  %-5s  %-24s  %s\n", w, "NAME", "ADMIN", "CREATED", "REVOKED");
    for (size_t i = 0; i < n; i++) {
        char created[TIMEFMT_LEN], revoked[TIMEFMT_LEN] = "-";
        timefmt_rfc3339(rows[i].created_ms, created);
        if (rows[i].revoked_ms) timefmt_rfc3339(rows[i].revoked_ms, revoked);
        printf("%-*s  %-5s  %-24s  %s\n", w, rows[i].name, rows[i].admin ? "yes" : "no", created,
               revoked);
    }
    if (fflush(stdout) == EOF) rc = cli_fail("token", CLI_EXIT_FAIL, "cannot write");
out:
    store_token_list_free(rows, n);
    store_close(s);
    return rc;
}

static int cmd_token__revoke(const config *cfg, const char *name)
{
    store *s = NULL;
    int rc = cli_open_store("token", cfg->db, &s);
    if (rc != CLI_EXIT_OK) return rc;
    int r = store_token_revoke(s, name, clock_wall_ms());
    if (r == STORE_NOT_FOUND)
        rc = cli_fail("token", CLI_EXIT_FAIL, "no active token named '%.80s'", name);
    else if (r < 0)
        rc = cli_fail("token", CLI_EXIT_FAIL, "%s", store_errmsg(s));
    else
        printf("revoked token '%s'\n", name);
    store_close(s);
    return rc;
}

int cmd_token(int argc, char **argv)
{
    static const char *const allowed[] = {"db", "config", NULL};
    config cfg;
    char *rest[argc > 0 ? argc : 1], *pos[argc > 0 ? argc : 1];
    int nrest, npos;
    int rc = cli_load_config("token", allowed, argc - 1, argv + 1, &cfg, rest, &nrest);
    if (rc != CLI_EXIT_OK) goto out;
    bool admin = false;
    const cli_opt opts[] = {{"--admin", NULL, &admin}, {NULL, NULL, NULL}};
    rc = cli_parse_opts("token", opts, nrest, rest, pos, &npos);
    if (rc != CLI_EXIT_OK) goto out;
    const char *sub = npos > 0 ? pos[0] : "";
    int want = strcmp(sub, "list") == 0 ? 1 : 2;
    if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "revoke") != 0) {
        rc = cli_fail("token", CLI_EXIT_USAGE, "%s%s%s; use create NAME, list or revoke NAME",
                      *sub ? "unknown subcommand '" : "a subcommand is needed", sub,
                      *sub ? "'" : "");
        goto out;
    }
    if (npos != want) {
        rc = cli_fail("token", CLI_EXIT_USAGE,
                      npos < want ? "%s needs a token NAME" : "%s takes no more arguments", sub);
        goto out;
    }
    if (admin && strcmp(sub, "create") != 0) {
        rc = cli_fail("token", CLI_EXIT_USAGE, "--admin goes with create");
        goto out;
    }
    if (strcmp(sub, "create") == 0)
        rc = cmd_token__create(&cfg, pos[1], admin);
    else if (strcmp(sub, "list") == 0)
        rc = cmd_token__list(&cfg);
    else
        rc = cmd_token__revoke(&cfg, pos[1]);
out:
    config_cleanup(&cfg);
    return rc;
}
