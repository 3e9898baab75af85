/*
 * cli: the commands of the chatplane binary. Each cmd_* function takes the
 * arguments after the command name and returns the process exit code:
 * 0 success, 1 failure, 2 a usage error (a bad flag or value, named in the
 * message on stderr).
 */
#ifndef CHATPLANE_CLI_H
#define CHATPLANE_CLI_H

#include <stdbool.h>

#include "app/config.h"
#include "store/store.h"

#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2

/*
 * Loads the configuration for a command that accepts the config flags in
 * allowed: flags from argv, then config file, environment and defaults.
 * Arguments the config does not take are left in rest[0..*nrest) (rest holds
 * argc pointers). Returns CLI_EXIT_OK, or an exit code after printing the
 * error (prefixed with "chatplane NAME: ").
 */
int cli_load_config(const char *name, const char *const *allowed, int argc, char **argv,
                    config *cfg, char **rest, int *nrest);
/* The same for a command that takes nothing but config flags: any other
 * argument is a usage error. cfg needs config_cleanup either way. */
int cli_load_config_only(const char *name, const char *const *allowed, int argc, char **argv,
                         config *cfg);

/* Prints "chatplane NAME: MESSAGE" to stderr and returns code. */
int cli_fail(const char *name, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * An option a command parses itself, after the config flags were taken:
 * with value non-NULL it takes a value ("--mode quick" or "--mode=quick")
 * stored there; otherwise it is a switch and *on becomes true.
 */
typedef struct cli_opt {
    const char *name; /* "--mode" */
    const char **value;
    bool *on;
} cli_opt;

/*
 * Parses args[0..n) against opts (ended by a row with name NULL). "--"
 * ends the options; every other argument is a positional, collected in
 * order in pos[0..*npos) (pos holds n pointers). An unknown option, a
 * missing value or a value given to a switch is a usage error naming it:
 * printed, and CLI_EXIT_USAGE returned. Otherwise CLI_EXIT_OK.
 */
int cli_parse_opts(const char *name, const cli_opt *opts, int n, char **args, char **pos,
                   int *npos);

/*
 * Opens the database of url for a command that reads it, and brings its
 * schema up to date (a schema newer than the binary is refused). A
 * "sqlite:PATH" file that does not exist is an error rather than a new
 * empty database. Returns CLI_EXIT_OK with *out set, or an exit code
 * after printing the error.
 */
int cli_open_store(const char *name, const char *url, store **out);

int cmd_migrate(int argc, char **argv);
int cmd_ask(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_sessions(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_token(int argc, char **argv);

#endif
