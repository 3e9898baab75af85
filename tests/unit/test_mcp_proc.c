/* Unit tests for engine/mcp_proc: the child's environment, finding the
 * command, spawning on pipes, how a child ended, its process group, and the
 * bounded stop. The children are /bin/sh scripts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/mcp_proc.h"
#include "lib/clock.h"
#include "lib/xmalloc.h"

static const char *fake_env(const char *name)
{
    if (strcmp(name, "PATH") == 0) return "/usr/bin:/bin";
    if (strcmp(name, "LANG") == 0) return "C.UTF-8";
    return NULL; /* HOME unset; anything else never asked for */
}

static void test_env_inherits_little_and_configured_wins(void **state)
{
    (void)state;
    char *configured[] = {"LANG=de_DE.UTF-8", "TOKEN=abc", "EMPTY=", NULL};
    char **env = mcp_proc_env(fake_env, configured);
    assert_string_equal(env[0], "PATH=/usr/bin:/bin");
    assert_string_equal(env[1], "LANG=de_DE.UTF-8");
    assert_string_equal(env[2], "TOKEN=abc");
    assert_string_equal(env[3], "EMPTY=");
    assert_null(env[4]);
    mcp_proc_strv_free(env);

    env = mcp_proc_env(NULL, NULL);
    assert_null(env[0]);
    mcp_proc_strv_free(env);
}

static void test_resolve(void **state)
{
    (void)state;
    char err[256] = "";
    char dir[] = "/tmp/chatplane-proc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *exe = xasprintf("%s/tool", dir), *plain = xasprintf("%s/plain", dir);
    close(open(exe, O_CREAT | O_WRONLY, 0755));
    close(open(plain, O_CREAT | O_WRONLY, 0644));

    char *path = xasprintf("/nonexistent:%s", dir);
    char *got = mcp_proc_resolve("tool", path, err, sizeof err);
    assert_string_equal(got, exe);
    free(got);
    /* Not executable: skipped in PATH, refused when named directly. */
    assert_null(mcp_proc_resolve("plain", path, err, sizeof err));
    assert_string_equal(err, "command 'plain' not found in PATH");
    assert_null(mcp_proc_resolve(plain, NULL, err, sizeof err));
    char *want = xasprintf("cannot run '%s': not an executable file", plain);
    assert_string_equal(err, want);
    free(want);
    assert_null(mcp_proc_resolve("/no/such/file", NULL, err, sizeof err));
    assert_string_equal(err, "cannot run '/no/such/file': No such file or directory");
    assert_null(mcp_proc_resolve("", NULL, err, sizeof err));
    assert_string_equal(err, "the command is empty");
    /* No PATH: the usual directories. */
    got = mcp_proc_resolve("sh", NULL, err, sizeof err);
    assert_non_null(got);
    assert_true(strcmp(got, "/usr/bin/sh") == 0 || strcmp(got, "/bin/sh") == 0);
    free(got);

    unlink(exe);
    unlink(plain);
    rmdir(dir);
    free(exe);
    free(plain);
    free(path);
}

/* Reads fd (non-blocking) until EOF, at most 4 s. */
static void read_all(int fd, char *out, size_t cap)
{
    size_t n = 0;
    int64_t end = clock_mono_ms() + 4000;
    while (clock_mono_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 100);
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r == 0) break;
        if (r > 0) n += (size_t)r;
    }
    out[n] = '\0';
}

/* Reads one line (the grandchild keeps the pipe open, so no EOF comes). */
static void read_line(int fd, char *out, size_t cap)
{
    size_t n = 0;
    int64_t end = clock_mono_ms() + 4000;
    while (clock_mono_ms() < end && n < cap - 1 && (n == 0 || out[n - 1] != '\n')) {
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 100);
        ssize_t r = read(fd, out + n, 1);
        if (r > 0) n++;
    }
    out[n] = '\0';
}

static int wait_end(pid_t pid)
{
    int status = 0;
    int64_t end = clock_mono_ms() + 4000;
    while (!mcp_proc_poll(pid, &status) && clock_mono_ms() < end) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return status;
}

static mcp_proc spawn_sh(const char *script)
{
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", "GREETING=hello", NULL};
    mcp_proc p;
    char err[256] = "";
    if (mcp_proc_spawn("/bin/sh", argv, envp, &p, err, sizeof err) != 0) fail_msg("%s", err);
    return p;
}

static void test_spawn_pipes_env_and_exit_status(void **state)
{
    (void)state;
    mcp_proc p = spawn_sh("read line; echo \"got $line $GREETING\"; echo oops >&2; "
                          "[ -z \"$HOME\" ] && echo nohome >&2; exit 3");
    assert_true(p.pid > 0);
    assert_true(fcntl(p.out_fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(p.in_fd, F_GETFD) & FD_CLOEXEC);
    /* Its own process group. */
    assert_int_equal(getpgid(p.pid), p.pid);
    assert_int_equal(write(p.in_fd, "ping\n", 5), 5);
    mcp_proc_close_stdin(&p);
    assert_int_equal(p.in_fd, -1);
    char out[256], errtext[256];
    read_all(p.out_fd, out, sizeof out);
    read_all(p.err_fd, errtext, sizeof errtext);
    assert_string_equal(out, "got ping hello\n");
    assert_string_equal(errtext, "oops\nnohome\n");
    char *how = mcp_proc_status_text(wait_end(p.pid));
    assert_string_equal(how, "exited (status 3)");
    free(how);
    mcp_proc_close(&p);
    assert_int_equal(p.out_fd, -1);
    assert_int_equal(p.err_fd, -1);
}

static void test_spawn_failure_is_reported_at_once(void **state)
{
    (void)state;
    char *argv[] = {"x", NULL};
    char *envp[] = {NULL};
    mcp_proc p;
    char err[256] = "";
    assert_int_equal(mcp_proc_spawn("/tmp", argv, envp, &p, err, sizeof err), -1);
    assert_string_equal(err, "cannot run '/tmp': Permission denied");
    assert_int_equal(p.pid, 0);
    assert_int_equal(p.in_fd, -1);
}

static void test_signal_status_and_group_cleanup(void **state)
{
    (void)state;
    /* The child leaves a grandchild behind in its group and kills itself. */
    mcp_proc p = spawn_sh("sleep 30 & echo $!; read x; kill -9 $$");
    char out[64];
    read_line(p.out_fd, out, sizeof out);
    assert_int_equal(write(p.in_fd, "go\n", 3), 3);
    pid_t grandchild = (pid_t)atoi(out);
    assert_true(grandchild > 0);
    char *how = mcp_proc_status_text(wait_end(p.pid));
    assert_string_equal(how, "was killed by signal 9");
    free(how);
    /* Ending the child killed what was left of its group. */
    char stat_path[64], stat[256] = "";
    snprintf(stat_path, sizeof stat_path, "/proc/%d/stat", (int)grandchild);
    bool alive = true;
    for (int i = 0; i < 200 && alive; i++) {
        FILE *f = fopen(stat_path, "r");
        alive = f && fgets(stat, sizeof stat, f) && !strstr(stat, ") Z ");
        if (f) fclose(f);
        if (alive) {
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
    }
    assert_false(alive);
    mcp_proc_close(&p);
    how = mcp_proc_status_text(-1);
    assert_string_equal(how, "ended");
    free(how);
}

static void test_stop_all_escalates(void **state)
{
    (void)state;
    /* One child leaves when its stdin closes; one ignores SIGTERM. */
    mcp_proc polite = spawn_sh("cat >/dev/null");
    mcp_proc stubborn = spawn_sh("trap '' TERM; echo ready; while :; do sleep 0.02; done");
    char line[16];
    struct pollfd pf = {stubborn.out_fd, POLLIN, 0};
    poll(&pf, 1, 4000);
    assert_true(read(stubborn.out_fd, line, sizeof line) > 0);
    mcp_proc_close_stdin(&polite);
    mcp_proc_close_stdin(&stubborn);
    pid_t pids[2] = {polite.pid, stubborn.pid};
    int64_t t0 = clock_mono_ms();
    mcp_proc_stop_all(pids, 2, 300, 200);
    int64_t took = clock_mono_ms() - t0;
    assert_int_equal(pids[0], 0);
    assert_int_equal(pids[1], 0);
    /* The grace and the SIGTERM wait passed, then SIGKILL ended it. */
    assert_true(took >= 500 && took < 2000);
    assert_int_equal(kill(stubborn.pid, 0), -1);
    mcp_proc_close(&polite);
    mcp_proc_close(&stubborn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_inherits_little_and_configured_wins),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_spawn_pipes_env_and_exit_status),
        cmocka_unit_test(test_spawn_failure_is_reported_at_once),
        cmocka_unit_test(test_signal_status_and_group_cleanup),
        cmocka_unit_test(test_stop_all_escalates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
