/* chatplane serve: the HTTP server. */
#include "app/server.h"
#include "cli/cli.h"

int cmd_serve(int argc, char **argv)
{
    static const char *const allowed[] = {"listen",           "db", "config", "web-root",
                                          "insecure-no-auth", NULL};
    config cfg;
    int rc = cli_load_config_only("serve", allowed, argc - 1, argv + 1, &cfg);
    if (rc != CLI_EXIT_OK) goto out;
    rc = server_run(&cfg) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
    config_cleanup(&cfg);
    return rc;
}
