/*
 * mcp_proc: the child processes of MCP servers, at the level of system
 * calls: finding the command, building its environment, starting it on
 * three pipes in its own process group, learning how it ended, and the
 * bounded stop at shutdown. The event loop side is in mcp_stdio.c.
 *
 * Children never outlive chatplane: each one asks the kernel for SIGKILL
 * when chatplane dies (PR_SET_PDEATHSIG), is stopped with its whole process
 * group at shutdown, and when it ends on its own whatever it left behind in
 * its group is killed before it is reaped.
 */
#ifndef CHATPLANE_MCP_PROC_H
#define CHATPLANE_MCP_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The variables a child inherits from chatplane's environment, when set,
 * before the configured ones are put on top: what a program needs to start
 * (find its interpreter, its home, its locale) and nothing that could carry
 * chatplane's own secrets. */
#define MCP_PROC_INHERITED "PATH", "HOME", "LANG"

typedef struct mcp_proc {
    pid_t pid;  /* also the id of its process group; 0 when none */
    int in_fd;  /* our end of its stdin, or -1 */
    int out_fd; /* our end of its stdout, or -1 */
    int err_fd; /* our end of its stderr, or -1 */
} mcp_proc;

/*
 * The child's environment: the MCP_PROC_INHERITED variables that get()
 * returns, then each configured "K=V" pair, which replaces an inherited
 * variable of the same name. Returns a new NULL-terminated array; free it
 * with mcp_proc_strv_free.
 */
char **mcp_proc_env(const char *(*get)(const char *name), char *const *configured);
void mcp_proc_strv_free(char **v);

/*
 * The file to run for command: as given when it contains a '/', else the
 * first executable regular file of that name in path (a PATH value; NULL or
 * empty: "/usr/local/bin:/usr/bin:/bin"). Returns a new string, or NULL with
 * err saying why ("command 'x' not found in PATH").
 */
char *mcp_proc_resolve(const char *command, const char *path, char *err, size_t errlen);

/*
 * Starts file with argv and envp on three new pipes, in a new process
 * group. Our ends are non-blocking and close-on-exec. Every other descriptor
 * is closed in the child; signal dispositions and the signal mask are reset.
 * An exec failure is reported here, not as an exit later. Returns 0, or -1
 * with err filled and nothing left open.
 */
int mcp_proc_spawn(const char *file, char *const argv[], char *const envp[], mcp_proc *p, char *err,
                   size_t errlen);

/* Closes our ends of the pipes that are still open (-1 afterwards). */
void mcp_proc_close(mcp_proc *p);
void mcp_proc_close_stdin(mcp_proc *p);

/*
 * Whether the child has ended, without waiting. When it has, what is left of
 * its process group is killed, the child is reaped, *status gets the wait
 * status and 1 is returned; 0 while it runs. A child that is already gone
 * (reaped elsewhere) counts as ended with status -1.
 */
int mcp_proc_poll(pid_t pid, int *status);

/* SIGKILL to the child's process group. */
void mcp_proc_kill(pid_t pid);

/* "exited (status 1)", "was killed by signal 9", or "ended" for status -1;
 * caller frees. */
char *mcp_proc_status_text(int status);

/*
 * Stops children whose stdin is already closed: waits up to grace_ms for
 * them to end, sends SIGTERM to the process groups of those left, waits up
 * to term_ms, then SIGKILL, and reaps them all (waiting at most one more
 * second for a child stuck in the kernel). Blocks, so it is for shutdown.
 * Sets pids[i] to 0 for each child reaped.
 */
void mcp_proc_stop_all(pid_t *pids, size_t n, int64_t grace_ms, int64_t term_ms);

#endif
