#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int cli_load_config_only(const char *name, const char *const *allowed, int argc, char **argv,
                         config *cfg)
{
    char *rest[argc > 0 ? argc : 1];
    int nrest = 0, rc = cli_load_config(name, allowed, argc, argv, cfg, rest, &nrest);
    if (rc == CLI_EXIT_OK && nrest > 0)
        rc = cli_fail(name, CLI_EXIT_USAGE, "unexpected argument '%s'", rest[0]);
    return rc;
}

int cli_parse_opts(const char *name, const cli_opt *opts, int n, char **args, char **pos, int *npos)
{
    *npos = 0;
    bool options = true;
    for (int i = 0; i < n; i++) {
        const char *a = args[i];
        if (!options || strncmp(a, "--", 2) != 0) {
            pos[(*npos)++] = args[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options = false;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const cli_opt *o = opts;
        while (o->name && !(strlen(o->name) == len && strncmp(o->name, a, len) == 0)) o++;
        if (!o->name)
            return cli_fail(name, CLI_EXIT_USAGE, "unknown option '%.*s'; see 'chatplane help %s'",
                            (int)len, a, name);
        if (!o->value) {
            if (eq) return cli_fail(name, CLI_EXIT_USAGE, "%s takes no value", o->name);
            *o->on = true;
        } else if (eq) {
            *o->value = eq + 1;
        } else if (i + 1 < n) {
            *o->value = args[++i];
        } else {
            return cli_fail(name, CLI_EXIT_USAGE, "%s needs a value", o->name);
        }
    }
    return CLI_EXIT_OK;
}

int cli_open_store(const char *name, const char *url, store **out)
{
    *out = NULL;
    const char *path = strncmp(url, "sqlite:", 7) == 0 ? url + 7 : NULL;
    if (path && strcmp(path, ":memory:") != 0 && access(path, F_OK) != 0)
        return cli_fail(name, CLI_EXIT_FAIL,
                        "no database at %s; give --db or run 'chatplane migrate' to create one",
                        path);
    char err[512];
    store *s = NULL;
    if (store_open(url, &s, err, sizeof err) != 0) return cli_fail(name, CLI_EXIT_FAIL, "%s", err);
    if (store_migrate(s, NULL, NULL, err, sizeof err) != 0) {
        store_close(s);
        return cli_fail(name, CLI_EXIT_FAIL, "%s", err);
    }
    *out = s;
    return CLI_EXIT_OK;
}
