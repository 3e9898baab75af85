/*
 * chatplane: the command line. Each command is one row of the table below;
 * `help` lists exactly these rows, so help never names a command that does
 * not exist.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "version.h"

typedef struct command {
    const char *name;
    const char *usage;
    const char *summary;
    const char *help; /* the long text of `chatplane help NAME` */
    int (*run)(int argc, char **argv);
    const char *const *config_flags; /* settings it takes, printed from the option table */
} command;

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const char *const flags_db[] = {"db", "config", NULL};
static const char *const flags_serve[] = {"listen",           "db",        "config", "web-root",
                                          "insecure-no-auth", "log-level", NULL};

static const command commands[] = {
    {"help", "chatplane help [COMMAND]", "show help for chatplane or one command",
     "Without a command, lists every command. With one, shows its usage and\n"
     "options.\n\nExample:\n  chatplane help help\n",
     cmd_help, NULL},
    {"migrate", "chatplane migrate [--db URL]", "apply pending database migrations",
     "Applies every migration the database lacks, each in its own transaction,\n"
     "and prints each version applied. `serve` does this by itself at start.\n\n"
     "Example:\n  chatplane migrate --db postgres://chatplane@127.0.0.1/chatplane\n",
     cmd_migrate, flags_db},
    {"serve", "chatplane serve [--listen HOST:PORT] [--db URL] [--config FILE]",
     "run the HTTP server",
     "Migrates the database, stops runs a crash left running, and serves the\n"
     "API, the live event streams and the page until SIGTERM or SIGINT, which\n"
     "stop active runs as `interrupted` and exit 0. Without llm.base_url it\n"
     "answers with the built-in demo brain. It refuses a non-loopback listen\n"
     "address while no API token exists (see `chatplane help token`) unless\n"
     "given --insecure-no-auth. It logs to stderr, a line per request and\n"
     "per run at level info; --log-level warn keeps the warnings and errors\n"
     "(and the line that says where it listens).\n\n"
     "Example:\n  chatplane serve --listen 127.0.0.1:8080 --db sqlite:chatplane.db\n",
     cmd_serve, flags_serve},
    {"ask", "chatplane ask [--mode M] [--session ID] [--json] MESSAGE",
     "run one turn in-process and print the answer",
     "Runs one turn with the configured model, tools and database, without a\n"
     "server. The answer streams to stdout; status, tool calls, guardrail\n"
     "warnings, budget and the stop reason go to stderr. MESSAGE - reads the\n"
     "message from stdin.\n\n"
     "  --mode M       quick, standard or deep (default: the session's mode)\n"
     "  --session ID   continue this session: the model sees its messages\n"
     "  --json         print every event of the run as one JSON line on stdout\n\n"
     "On a terminal, stderr shows one status line redrawn in place (status,\n"
     "elapsed time, steps, tool calls and tokens against the mode's limits),\n"
     "a line per tool call and guardrail warning, and at the end the stop\n"
     "reason, what to do next and the command that continues the session.\n"
     "NO_COLOR=1 turns colours off. Otherwise stderr gets plain lines:\n"
     "  status: thinking\n"
     "  tool: calc ok 0ms\n"
     "  budget: steps 1/10, tokens 238/50000, tool_calls 1/15, retries 0/3, seconds 0.0\n"
     "  guardrail: loop warn: calc was called 3 times with {\"expression\":\"2+2\"}\n"
     "  stopped: completed: answered in 2 steps with 1 tool call\n"
     "  suggestion: The run finished with an answer. Send a new message to go on.\n\n"
     "Ctrl-C (or SIGTERM) stops the run cleanly: the partial answer is kept and\n"
     "the run ends user_stopped; a second Ctrl-C quits at once.\n\n"
     "Exit status: 0 completed, 3 stopped by a budget or guardrail, 4 stopped\n"
     "by Ctrl-C (user_stopped), 1 any other error, 2 a usage error.\n\n"
     "Examples:\n  chatplane ask 'what is 6*7?'\n"
     "  chatplane ask --mode quick --session ses_0193a4f2c1b0e4d1f0a9c3b2 'and times 2?'\n"
     "  echo 'demo loop' | chatplane ask --json -\n",
     cmd_ask, flags_db},
    {"events", "chatplane events SESSION [--after N] [--follow]",
     "print a session's events as JSON lines",
     "Prints every stored event of the session, oldest first, one JSON object\n"
     "per line, exactly as stored (docs/events.md).\n\n"
     "  --after N   only events with seq greater than N\n"
     "  --follow    keep printing new events as they are written (by a serve\n"
     "              or an ask on the same database) until Ctrl-C or SIGTERM\n\n"
     "Exit status: 0, also when --follow is stopped or the reader of stdout\n"
     "goes away; 1 when the session does not exist or the database fails;\n"
     "2 a usage error.\n\n"
     "Examples:\n  chatplane events ses_0193a4f2c1b0e4d1f0a9c3b2\n"
     "  chatplane events ses_0193a4f2c1b0e4d1f0a9c3b2 --after 40 --follow | jq -c 'select(.type == "
     "\"tool_finished\")'\n",
     cmd_events, flags_db},
    {"export", "chatplane export SESSION [--format markdown|json]",
     "print a session as Markdown or JSON",
     "Prints the whole conversation of the session: its messages, the tool\n"
     "calls with their arguments and results, and how each run stopped.\n\n"
     "  --format markdown   a Markdown document (the default)\n"
     "  --format json       {\"session\", \"messages\", \"runs\", \"tool_executions\"},\n"
     "                      each list oldest first, as GET /api/sessions/{id}/export\n\n"
     "Exit status: 0; 1 when the session does not exist or the database fails;\n"
     "2 a usage error.\n\n"
     "Examples:\n  chatplane export ses_0193a4f2c1b0e4d1f0a9c3b2 > chat.md\n"
     "  chatplane export ses_0193a4f2c1b0e4d1f0a9c3b2 --format json | jq '.runs[].stop_reason'\n",
     cmd_export, flags_db},
    {"sessions", "chatplane sessions", "list sessions, newest first",
     "Prints a table of the sessions, newest first: id, title, mode, status,\n"
     "the stop reason of the newest stopped run, and when the session last\n"
     "changed. On a terminal the title takes the width left and times are\n"
     "relative; otherwise titles are cut at 40 characters and times are\n"
     "RFC 3339 UTC, for scripts.\n\n"
     "Examples:\n  chatplane sessions\n  chatplane sessions --db "
     "sqlite:/var/lib/chatplane/chat.db\n",
     cmd_sessions, flags_db},
    {"token",
     "chatplane token create NAME [--admin] [--budget B]... | list | revoke NAME | budget NAME "
     "B...|none",
     "make, list and revoke API tokens and set their budgets",
     "API tokens let clients in once authentication is on: as soon as one\n"
     "token exists, or when serve listens on a non-loopback address, every\n"
     "/api/ request needs `Authorization: Bearer TOKEN` or the cookie that\n"
     "POST /api/login sets. Each token's name owns the sessions made with it;\n"
     "another token gets 404 for them. A running server notices a new token\n"
     "within a second and a revoked one at once.\n\n"
     "  create NAME   make a token (256 random bits) and print it alone on the\n"
     "                last line of stdout; only its SHA-256 is stored, so it\n"
     "                is shown this once. NAME: letters, digits and . _ @ -\n"
     "  --admin       with create: the token may also edit modes\n"
     "  --budget B    with create, repeatable: a budget of the token's owner\n"
     "                per UTC period, DIMENSION=AMOUNT/PERIOD: tokens or\n"
     "                cost_usd, per day, week (from Monday) or month\n"
     "  list          name, admin, created and revoked times and budgets of\n"
     "                every token\n"
     "  revoke NAME   the token stops working at once; its name stays taken\n"
     "  budget NAME B...  replaces the owner's budgets; `none` clears them\n\n"
     "Exit status: 0; 1 when the name is taken, no such active token exists\n"
     "or the database fails; 2 a usage error.\n\n"
     "Examples:\n  chatplane token create alice\n"
     "  chatplane token create ops --admin --db sqlite:/var/lib/chatplane/chat.db\n"
     "  chatplane token create alice --budget cost_usd=20/day --budget tokens=2000000/month\n"
     "  chatplane token budget alice cost_usd=50/week\n"
     "  chatplane token revoke alice\n",
     cmd_token, flags_db},
    {"--version", "chatplane --version", "print the version and exit",
     "Prints \"chatplane VERSION\" on standard output.\n", cmd_version, NULL},
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static const command *command_find(const char *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void usage_all(FILE *f)
{
    fprintf(f, "chatplane %s: a control plane for AI agent chats\n\n", CHATPLANE_VERSION);
    fprintf(f, "Usage:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        /* A usage too long for its column puts the summary on a line of its own. */
        if (strlen(commands[i].usage) > 34)
            fprintf(f, "  %s\n  %-34s %s\n", commands[i].usage, "", commands[i].summary);
        else
            fprintf(f, "  %-34s %s\n", commands[i].usage, commands[i].summary);
    }
    fprintf(f, "\nRun 'chatplane help COMMAND' for the options of one command.\n");
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage_all(stdout);
        return 0;
    }
    const command *c = command_find(argv[1]);
    if (!c) {
        fprintf(stderr, "chatplane: no command named '%s'; run 'chatplane help'\n", argv[1]);
        return 2;
    }
    printf("Usage: %s\n\n%s.\n\n%s", c->usage, c->summary, c->help);
    if (c->config_flags) {
        printf("\nOptions:\n");
        config_print_flags(stdout, c->config_flags);
    }
    return 0;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("chatplane %s\n", CHATPLANE_VERSION);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage_all(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) name = "help";
    if (strcmp(name, "-V") == 0 || strcmp(name, "version") == 0) name = "--version";
    const command *c = command_find(name);
    if (!c) {
        fprintf(stderr, "chatplane: unknown command '%s'; run 'chatplane help'\n", argv[1]);
        return 2;
    }
    /* "chatplane ask --help" is "chatplane help ask"; after "--" the words
     * belong to the command. */
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            char *help_argv[] = {"help", (char *)c->name, NULL};
            return cmd_help(2, help_argv);
        }
    }
    return c->run(argc - 1, argv + 1);
}
