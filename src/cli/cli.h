/*
 * cli: the commands of the chatplane binary. Each cmd_* function takes the
 * arguments after the command name and returns the process exit code:
 * 0 success, 1 failure, 2 a usage error (a bad flag or value, named in the
 * message on stderr).
 */
#ifndef CHATPLANE_CLI_H
#define CHATPLANE_CLI_H

#include "app/config.h"

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

/* Prints "chatplane NAME: MESSAGE" to stderr and returns code. */
int cli_fail(const char *name, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int cmd_migrate(int argc, char **argv);
int cmd_ask(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
