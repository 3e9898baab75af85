/* chatplane serve: the HTTP server. */
#include "app/server.h"
#include "cli/cli.h"

int cmd_serve(int argc, char **argv)
{
    static const char *const allowed[] = {"listen",           "db", "config", "web-root",
                                          "insecure-no-auth", NULL};
    config cfg;
    char *rest[argc > 0 ? argc : 1];
    int nrest, rc = cli_load_config("serve", allowed, argc - 1, argv + 1, &cfg, rest, &nrest);
    if (rc != CLI_EXIT_OK) goto out;
    if (nrest > 0) {
        rc = cli_fail("serve", CLI_EXIT_USAGE, "unexpected argument '%s'", rest[0]);
        goto out;
    }
    rc = server_run(&cfg) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
    config_cleanup(&cfg);
    return rc;
}
