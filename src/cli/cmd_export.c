/*
 * chatplane export: a session as a file to keep, on stdout: Markdown by
 * default, or the JSON document of GET /api/sessions/{id}/export
 * (docs/cli.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/transcript.h"
#include "store/objects.h"
#include "store/store.h"

static int cmd_export__write(const char *text)
{
    size_t n = strlen(text);
    if (fwrite(text, 1, n, stdout) != n || fflush(stdout) == EOF)
        return cli_fail("export", CLI_EXIT_FAIL, "cannot write: %s", strerror(errno));
    return CLI_EXIT_OK;
}

int cmd_export(int argc, char **argv)
{
    static const char *const allowed[] = {"db", "config", NULL};
    config cfg;
    char *rest[argc > 0 ? argc : 1], *pos[argc > 0 ? argc : 1];
    int nrest, npos,
        rc = cli_load_config("export", allowed, argc - 1, argv + 1, &cfg, rest, &nrest);
    const char *format = "markdown";
    store *s = NULL;
    json_t *doc = NULL;
    if (rc != CLI_EXIT_OK) goto out;
    const cli_opt opts[] = {{"--format", &format, NULL}, {NULL, NULL, NULL}};
    rc = cli_parse_opts("export", opts, nrest, rest, pos, &npos);
    if (rc != CLI_EXIT_OK) goto out;
    if (npos != 1) {
        rc = npos == 0 ? cli_fail("export", CLI_EXIT_USAGE, "a SESSION id is needed")
                       : cli_fail("export", CLI_EXIT_USAGE, "unexpected argument '%s'", pos[1]);
        goto out;
    }
    if (strcmp(format, "markdown") != 0 && strcmp(format, "json") != 0) {
        rc = cli_fail("export", CLI_EXIT_USAGE, "--format: '%s' is not markdown or json", format);
        goto out;
    }
    if ((rc = cli_open_store("export", cfg.db, &s)) != CLI_EXIT_OK) goto out;
    int found = objects_export(s, pos[0], NULL, &doc);
    if (found < 0) {
        rc = found == STORE_NOT_FOUND ? cli_fail("export", CLI_EXIT_FAIL, "no session '%s'", pos[0])
                                      : cli_fail("export", CLI_EXIT_FAIL, "%s", store_errmsg(s));
        goto out;
    }
    char *text = strcmp(format, "json") == 0 ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                                             : transcript_markdown(doc);
    if (!text) {
        rc = cli_fail("export", CLI_EXIT_FAIL, "the session could not be written");
        goto out;
    }
    rc = cmd_export__write(text);
    if (rc == CLI_EXIT_OK && strcmp(format, "json") == 0) rc = cmd_export__write("\n");
    free(text);
out:
    json_decref(doc);
    store_close(s);
    config_cleanup(&cfg);
    return rc;
}
