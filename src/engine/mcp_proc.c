/*
 * mcp_proc: spawning and stopping the child processes of MCP servers; see
 * mcp_proc.h.
 *
 * The child is made with fork and execve rather than posix_spawn because it
 * must ask for PR_SET_PDEATHSIG, which posix_spawn cannot. chatplane has
 * other threads (the store writer, the read pool), so between fork and exec
 * the child calls only async-signal-safe functions: everything it needs
 * (the file to run, argv, envp, the descriptor limit) is prepared before the
 * fork. An exec failure travels back on a close-on-exec pipe, so the parent
 * knows at once whether the program started.
 */
#define _GNU_SOURCE /* pipe2 */

#include "engine/mcp_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/xmalloc.h"

#define PROC__DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define PROC__HIGH_FD      10 /* child: pipe ends are moved at or above this first */
#define PROC__POLL_NS      10000000L

/* ---- environment and command ---- */

/* Index of the entry of v[0..n) named like "K=…" for pair "K=V", or n. */
static size_t mcp_proc__env_find(char **v, size_t n, const char *pair)
{
    const char *eq = strchr(pair, '=');
    size_t klen = eq ? (size_t)(eq - pair) : strlen(pair);
    for (size_t i = 0; i < n; i++)
        if (strncmp(v[i], pair, klen) == 0 && v[i][klen] == '=') return i;
    return n;
}

char **mcp_proc_env(const char *(*get)(const char *name), char *const *configured)
{
    static const char *const inherited[] = {MCP_PROC_INHERITED};
    size_t ninh = sizeof inherited / sizeof inherited[0], ncfg = 0;
    while (configured && configured[ncfg]) ncfg++;
    char **v = xcalloc(ninh + ncfg + 1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < ninh; i++) {
        const char *val = get ? get(inherited[i]) : NULL;
        if (val) v[n++] = xasprintf("%s=%s", inherited[i], val);
    }
    for (size_t i = 0; i < ncfg; i++) {
        size_t at = mcp_proc__env_find(v, n, configured[i]);
        if (at < n) {
            free(v[at]);
            v[at] = xstrdup(configured[i]);
        } else {
            v[n++] = xstrdup(configured[i]);
        }
    }
    v[n] = NULL;
    return v;
}

void mcp_proc_strv_free(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}

static bool mcp_proc__executable(const char *file)
{
    struct stat st;
    return stat(file, &st) == 0 && S_ISREG(st.st_mode) && access(file, X_OK) == 0;
}

char *mcp_proc_resolve(const char *command, const char *path, char *err, size_t errlen)
{
    if (!command || !*command) {
        snprintf(err, errlen, "the command is empty");
        return NULL;
    }
    if (strchr(command, '/')) {
        if (mcp_proc__executable(command)) return xstrdup(command);
        snprintf(err, errlen, "cannot run '%s': %s", command,
                 access(command, F_OK) == 0 ? "not an executable file" : strerror(ENOENT));
        return NULL;
    }
    if (!path || !*path) path = PROC__DEFAULT_PATH;
    const char *p = path;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
        /* An empty entry means the working directory, as in execvp. */
        char *file = dlen ? xasprintf("%.*s/%s", (int)dlen, p, command) : xstrdup(command);
        if (mcp_proc__executable(file)) return file;
        free(file);
        if (!colon) break;
        p = colon + 1;
    }
    snprintf(err, errlen, "command '%s' not found in PATH", command);
    return NULL;
}

/* ---- spawning ---- */

static void mcp_proc__close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/*
 * The child between fork and exec: async-signal-safe calls only. fds holds
 * the child's ends of stdin, stdout, stderr and the exec-status pipe.
 */
static void mcp_proc__child(const char *file, char *const argv[], char *const envp[], int fds[4],
                            pid_t parent, long max_fd)
{
    /* Its own process group, so that stopping it reaches whatever it starts,
     * and a Ctrl-C at chatplane's terminal does not reach it directly. */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* chatplane may have died between fork and prctl. */
    if (getppid() != parent) _exit(127);

    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    static const int sigs[] = {SIGPIPE, SIGINT,  SIGTERM, SIGHUP,
                               SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Move the four ends out of the way first: one of them may be a low
     * descriptor that a dup2 below would overwrite. */
    int high[4];
    for (int i = 0; i < 4; i++) {
        high[i] = fcntl(fds[i], F_DUPFD, PROC__HIGH_FD);
        if (high[i] < 0) _exit(127);
    }
    if (dup2(high[0], 0) < 0 || dup2(high[1], 1) < 0 || dup2(high[2], 2) < 0 ||
        dup2(high[3], 3) < 0)
        _exit(127);
    fcntl(3, F_SETFD, FD_CLOEXEC);
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0)
#endif
        for (long fd = 4; fd < max_fd; fd++) close((int)fd);

    execve(file, argv, envp);
    int e = errno;
    ssize_t w = write(3, &e, sizeof e);
    (void)w;
    _exit(127);
}

static int mcp_proc__nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int mcp_proc_spawn(const char *file, char *const argv[], char *const envp[], mcp_proc *p, char *err,
                   size_t errlen)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, st[2] = {-1, -1};
    p->pid = 0;
    p->in_fd = p->out_fd = p->err_fd = -1;
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 ||
        pipe2(st, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot make pipes: %s", strerror(errno));
        goto fail;
    }
    long max_fd = sysconf(_SC_OPEN_MAX);
    if (max_fd < 0 || max_fd > 65536) max_fd = 65536;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        int fds[4] = {in[0], out[1], errp[1], st[1]};
        mcp_proc__child(file, argv, envp, fds, parent, max_fd);
    }
    /* Also here, so the group exists before anyone signals it. */
    setpgid(pid, pid);
    mcp_proc__close_fd(&in[0]);
    mcp_proc__close_fd(&out[1]);
    mcp_proc__close_fd(&errp[1]);
    mcp_proc__close_fd(&st[1]);

    int child_errno = 0;
    ssize_t n;
    do {
        n = read(st[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    mcp_proc__close_fd(&st[0]);
    if (n == (ssize_t)sizeof child_errno) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        snprintf(err, errlen, "cannot run '%s': %s", file, strerror(child_errno));
        goto fail;
    }
    if (mcp_proc__nonblock(in[1]) != 0 || mcp_proc__nonblock(out[0]) != 0 ||
        mcp_proc__nonblock(errp[0]) != 0) {
        snprintf(err, errlen, "cannot set up the pipes: %s", strerror(errno));
        mcp_proc_kill(pid);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        goto fail;
    }
    p->pid = pid;
    p->in_fd = in[1];
    p->out_fd = out[0];
    p->err_fd = errp[0];
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        mcp_proc__close_fd(&in[i]);
        mcp_proc__close_fd(&out[i]);
        mcp_proc__close_fd(&errp[i]);
        mcp_proc__close_fd(&st[i]);
    }
    return -1;
}

void mcp_proc_close_stdin(mcp_proc *p)
{
    mcp_proc__close_fd(&p->in_fd);
}

void mcp_proc_close(mcp_proc *p)
{
    mcp_proc__close_fd(&p->in_fd);
    mcp_proc__close_fd(&p->out_fd);
    mcp_proc__close_fd(&p->err_fd);
}

/* ---- ending ---- */

void mcp_proc_kill(pid_t pid)
{
    if (pid > 0) kill(-pid, SIGKILL);
}

int mcp_proc_poll(pid_t pid, int *status)
{
    /* Look without reaping first: while the child is an unreaped zombie its
     * process group id cannot be reused, so killing the group is safe. */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
        if (errno == EINTR) return 0;
        *status = -1;
        return 1;
    }
    if (si.si_pid == 0) return 0;
    kill(-pid, SIGKILL);
    int ws = 0;
    pid_t r;
    do {
        r = waitpid(pid, &ws, 0);
    } while (r < 0 && errno == EINTR);
    *status = r == pid ? ws : -1;
    return 1;
}

char *mcp_proc_status_text(int status)
{
    if (status == -1) return xstrdup("ended");
    if (WIFEXITED(status)) return xasprintf("exited (status %d)", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return xasprintf("was killed by signal %d", WTERMSIG(status));
    return xstrdup("ended");
}

/* Reaps every child of pids that has ended; returns how many still run. */
static size_t mcp_proc__reap_ended(pid_t *pids, size_t n)
{
    size_t left = 0;
    for (size_t i = 0; i < n; i++) {
        int status;
        if (pids[i] <= 0) continue;
        if (mcp_proc_poll(pids[i], &status))
            pids[i] = 0;
        else
            left++;
    }
    return left;
}

/* Polls until every child ended or ms passed; returns how many still run. */
static size_t mcp_proc__wait(pid_t *pids, size_t n, int64_t ms)
{
    int64_t deadline = clock_mono_ms() + ms;
    for (;;) {
        size_t left = mcp_proc__reap_ended(pids, n);
        if (left == 0 || clock_mono_ms() >= deadline) return left;
        struct timespec ts = {0, PROC__POLL_NS};
        nanosleep(&ts, NULL);
    }
}

void mcp_proc_stop_all(pid_t *pids, size_t n, int64_t grace_ms, int64_t term_ms)
{
    if (mcp_proc__wait(pids, n, grace_ms) == 0) return;
    for (size_t i = 0; i < n; i++)
        if (pids[i] > 0) kill(-pids[i], SIGTERM);
    if (mcp_proc__wait(pids, n, term_ms) == 0) return;
    for (size_t i = 0; i < n; i++) mcp_proc_kill(pids[i]);
    mcp_proc__wait(pids, n, 1000);
}
