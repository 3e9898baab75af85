/* chatplane migrate: applies pending migrations and prints each one. */
#include <stdio.h>

#include "cli/cli.h"
#include "store/store.h"

static void cmd_migrate__print(void *ud, int version, const char *name)
{
    (void)ud;
    printf("applied %04d %s\n", version, name);
    fflush(stdout);
}

int cmd_migrate(int argc, char **argv)
{
    static const char *const allowed[] = {"db", "config", NULL};
    config cfg;
    int rc = cli_load_config_only("migrate", allowed, argc - 1, argv + 1, &cfg);
    if (rc != CLI_EXIT_OK) goto out;
    char err[512];
    store *s = NULL;
    if (store_open(cfg.db, &s, err, sizeof err) != 0) {
        rc = cli_fail("migrate", CLI_EXIT_FAIL, "%s", err);
        goto out;
    }
    /* Not under a running server: it migrated at its start, and a newer
     * schema under it would not be what it reads and writes. */
    db_claim *claim = NULL;
    if (db_claim_take(cfg.db, &claim, err, sizeof err) != 0) {
        rc = cli_fail("migrate", CLI_EXIT_FAIL, "%s", err);
    } else if (store_migrate(s, cmd_migrate__print, NULL, err, sizeof err) != 0) {
        rc = cli_fail("migrate", CLI_EXIT_FAIL, "%s", err);
    } else {
        printf("schema is at version %d\n", store_schema_latest());
    }
    store_close(s);
    db_claim_release(claim);
out:
    config_cleanup(&cfg);
    return rc;
}
