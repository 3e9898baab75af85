/* chatplane serve: the HTTP server. */
#include "app/server.h"
#include "cli/cli.h"
#include "lib/log.h"

#include <malloc.h>

int cmd_serve(int argc, char **argv)
{
    /* The server's threads share two malloc arenas rather than one each,
     * so that the free space of an arena serves several threads: about 3
     * KiB less per active run at 100 runs, for no CPU the rounds could
     * tell apart (docs/architecture.md, docs/benchmarks.md fix 44). */
    mallopt(M_ARENA_MAX, 2);
    static const char *const allowed[] = {"listen",           "db",        "config", "web-root",
                                          "insecure-no-auth", "log-level", NULL};
    config cfg;
    int rc = cli_load_config_only("serve", allowed, argc - 1, argv + 1, &cfg);
    if (rc != CLI_EXIT_OK) goto out;
    log_min_level = cfg.log_min;
    rc = server_run(&cfg) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
    config_cleanup(&cfg);
    return rc;
}
