#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_fail(const char *name, int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "chatplane %s: ", name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

static const char *cli__getenv(const char *name)
{
    return getenv(name);
}

int cli_load_config(const char *name, const char *const *allowed, int argc, char **argv,
                    config *cfg, char **rest, int *nrest)
{
    config flags;
    memset(&flags, 0, sizeof flags);
    char err[512];
    config_init(cfg);
    if (config_parse_flags(&flags, allowed, argc, argv, rest, nrest, err, sizeof err) != 0) {
        config_cleanup(&flags);
        return cli_fail(name, CLI_EXIT_USAGE, "%s", err);
    }
    int rc = config_load(cfg, &flags, cli__getenv, err, sizeof err);
    config_cleanup(&flags);
    if (rc != 0) return cli_fail(name, CLI_EXIT_USAGE, "%s", err);
    return CLI_EXIT_OK;
}
