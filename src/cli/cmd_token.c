/*
 * chatplane token create|list|revoke|budget: the API tokens of
 * docs/security.md and their owners' budgets (docs/owner-budgets.md).
 * create prints the new token once, alone on the last line of stdout; the
 * database keeps only its SHA-256.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/owner_budget.h"
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

/* The budgets given on the command line, parsed. */
typedef struct cmd_token_budgets {
    owner_budget_spec b[OWNER_BUDGET_MAX];
    size_t n;
} cmd_token_budgets;

/* Parses texts[0..n) ("cost_usd=20/day") into out; one budget per
 * dimension and period. Returns CLI_EXIT_OK or a usage error, printed. */
static int cmd_token__parse_budgets(char **texts, int n, cmd_token_budgets *out)
{
    out->n = 0;
    for (int i = 0; i < n; i++) {
        owner_budget_spec b;
        char err[OWNER_BUDGET_ERR_MAX];
        if (owner_budget_parse(texts[i], &b, err, sizeof err) != 0)
            return cli_fail("token", CLI_EXIT_USAGE, "%s", err);
        for (size_t k = 0; k < out->n; k++) {
            if (out->b[k].dim == b.dim && out->b[k].period == b.period)
                return cli_fail("token", CLI_EXIT_USAGE,
                                "a %s budget per %s is given twice; give one per dimension and "
                                "period",
                                owner_budget_dim_name(b.dim), period_name(b.period));
        }
        out->b[out->n++] = b;
    }
    return CLI_EXIT_OK;
}

static int cmd_token__create(const config *cfg, const char *name, bool admin,
                             const cmd_token_budgets *budgets)
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
    if (store_token_insert(s, &row) < 0 ||
        (budgets->n && store_owner_budget_set(s, name, budgets->b, budgets->n) < 0)) {
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

/* Prints owner's budgets as create takes them, separated by spaces, or
 * "-", and ends the line. */
static void cmd_token__print_budgets(const char *owner, const store_owner_budget *rows, size_t n)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        owner_budget_spec b;
        if (strcmp(rows[i].owner, owner) != 0 ||
            owner_budget_dim_parse(rows[i].dimension, &b.dim) ||
            period_parse(rows[i].period, &b.period))
            continue;
        b.limit = rows[i].limit_amount;
        char text[80];
        owner_budget_format_spec(&b, text, sizeof text);
        printf("%s%s", any ? " " : "", text);
        any = true;
    }
    printf("%s\n", any ? "" : "-");
}

static int cmd_token__list(const config *cfg)
{
    store_owner_budget *budgets = NULL;
    size_t nbudgets = 0;
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
    if (store_owner_budget_list(s, NULL, &budgets, &nbudgets) < 0) {
        rc = cli_fail("token", CLI_EXIT_FAIL, "%s", store_errmsg(s));
        goto out;
    }
    int w = 4;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(rows[i].name) > w) w = (int)strlen(rows[i].name);
    printf("%-*s  %-5s  %-24s  %-24s  %s\n", w, "NAME", "ADMIN", "CREATED", "REVOKED", "BUDGETS");
    for (size_t i = 0; i < n; i++) {
        char created[TIMEFMT_LEN], revoked[TIMEFMT_LEN] = "-";
        timefmt_rfc3339(rows[i].created_ms, created);
        if (rows[i].revoked_ms) timefmt_rfc3339(rows[i].revoked_ms, revoked);
        printf("%-*s  %-5s  %-24s  %-24s  ", w, rows[i].name, rows[i].admin ? "yes" : "no", created,
               revoked);
        cmd_token__print_budgets(rows[i].name, budgets, nbudgets);
    }
    if (fflush(stdout) == EOF) rc = cli_fail("token", CLI_EXIT_FAIL, "cannot write");
out:
    store_token_list_free(rows, n);
    store_owner_budget_list_free(budgets, nbudgets);
    store_close(s);
    return rc;
}

/* token budget NAME BUDGET...|none: replaces the budgets of an active
 * token's owner. */
static int cmd_token__budget(const config *cfg, const char *name, const cmd_token_budgets *budgets)
{
    store *s = NULL;
    int rc = cli_open_store("token", cfg->db, &s);
    if (rc != CLI_EXIT_OK) return rc;
    store_token *rows = NULL;
    size_t n = 0;
    bool found = false;
    if (store_token_list(s, &rows, &n) < 0) {
        rc = cli_fail("token", CLI_EXIT_FAIL, "%s", store_errmsg(s));
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, name) == 0 && !rows[i].revoked_ms) found = true;
    if (!found) {
        rc = cli_fail("token", CLI_EXIT_FAIL, "no active token named '%.80s'", name);
        goto out;
    }
    if (store_owner_budget_set(s, name, budgets->b, budgets->n) < 0) {
        rc = cli_fail("token", CLI_EXIT_FAIL, "%s", store_errmsg(s));
        goto out;
    }
    if (budgets->n == 0) {
        printf("token '%s' has no budgets now\n", name);
    } else {
        printf("token '%s' has the budgets", name);
        for (size_t i = 0; i < budgets->n; i++) {
            char text[80];
            owner_budget_format_spec(&budgets->b[i], text, sizeof text);
            printf(" %s", text);
        }
        printf("\n");
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

/* Takes every "--budget X" and "--budget=X" out of args[0..*n), which
 * keeps the rest in order, into texts (room for *n); *ntexts of them.
 * Returns CLI_EXIT_OK, or a usage error for a --budget without a value. */
static int cmd_token__take_budgets(char **args, int *n, char **texts, int *ntexts)
{
    int kept = 0;
    *ntexts = 0;
    for (int i = 0; i < *n; i++) {
        if (strcmp(args[i], "--") == 0) {
            while (i < *n) args[kept++] = args[i++];
            break;
        }
        if (strncmp(args[i], "--budget=", 9) == 0) {
            texts[(*ntexts)++] = args[i] + 9;
        } else if (strcmp(args[i], "--budget") == 0) {
            if (i + 1 == *n)
                return cli_fail("token", CLI_EXIT_USAGE,
                                "--budget needs a value, as in --budget cost_usd=20/day");
            texts[(*ntexts)++] = args[++i];
        } else {
            args[kept++] = args[i];
        }
    }
    *n = kept;
    return CLI_EXIT_OK;
}

int cmd_token(int argc, char **argv)
{
    static const char *const allowed[] = {"db", "config", NULL};
    config cfg;
    char *rest[argc > 0 ? argc : 1], *pos[argc > 0 ? argc : 1], *btexts[argc > 0 ? argc : 1];
    int nrest, npos, nb = 0;
    cmd_token_budgets budgets = {.n = 0};
    int rc = cli_load_config("token", allowed, argc - 1, argv + 1, &cfg, rest, &nrest);
    if (rc != CLI_EXIT_OK) goto out;
    rc = cmd_token__take_budgets(rest, &nrest, btexts, &nb);
    if (rc != CLI_EXIT_OK) goto out;
    bool admin = false;
    const cli_opt opts[] = {{"--admin", NULL, &admin}, {NULL, NULL, NULL}};
    rc = cli_parse_opts("token", opts, nrest, rest, pos, &npos);
    if (rc != CLI_EXIT_OK) goto out;
    const char *sub = npos > 0 ? pos[0] : "";
    bool is_create = strcmp(sub, "create") == 0, is_budget = strcmp(sub, "budget") == 0;
    if (!is_create && !is_budget && strcmp(sub, "list") != 0 && strcmp(sub, "revoke") != 0) {
        rc = cli_fail("token", CLI_EXIT_USAGE,
                      "%s%s%s; use create NAME, list, revoke NAME or budget NAME BUDGET...",
                      *sub ? "unknown subcommand '" : "a subcommand is needed", sub,
                      *sub ? "'" : "");
        goto out;
    }
    if (is_budget) {
        if (npos < 3) {
            rc = cli_fail("token", CLI_EXIT_USAGE,
                          npos < 2 ? "budget needs a token NAME"
                                   : "budget needs the budgets (cost_usd=20/day ...) or none");
            goto out;
        }
        bool none = false;
        for (int i = 2; i < npos; i++) none |= strcmp(pos[i], "none") == 0;
        if (none && npos > 3) {
            rc = cli_fail("token", CLI_EXIT_USAGE, "none clears every budget and goes alone");
            goto out;
        }
        if (!none) rc = cmd_token__parse_budgets(pos + 2, npos - 2, &budgets);
        if (rc != CLI_EXIT_OK) goto out;
    } else {
        int want = strcmp(sub, "list") == 0 ? 1 : 2;
        if (npos != want) {
            rc =
                cli_fail("token", CLI_EXIT_USAGE,
                         npos < want ? "%s needs a token NAME" : "%s takes no more arguments", sub);
            goto out;
        }
    }
    if (admin && !is_create) {
        rc = cli_fail("token", CLI_EXIT_USAGE, "--admin goes with create");
        goto out;
    }
    if (nb > 0 && !is_create) {
        rc = cli_fail("token", CLI_EXIT_USAGE,
                      "--budget goes with create; use budget NAME BUDGET... to change them");
        goto out;
    }
    if (is_create) rc = cmd_token__parse_budgets(btexts, nb, &budgets);
    if (rc != CLI_EXIT_OK) goto out;
    if (is_create)
        rc = cmd_token__create(&cfg, pos[1], admin, &budgets);
    else if (is_budget)
        rc = cmd_token__budget(&cfg, pos[1], &budgets);
    else if (strcmp(sub, "list") == 0)
        rc = cmd_token__list(&cfg);
    else
        rc = cmd_token__revoke(&cfg, pos[1]);
out:
    config_cleanup(&cfg);
    return rc;
}
