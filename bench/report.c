/*
 * report: the summary of a benchmark run. Reads the JSON lines the load
 * generator wrote (one object per scenario), prints one table row per
 * scenario with its targets met or missed, and writes one JSON file with
 * the machine, the conditions and every scenario.
 *
 *   report --mode M --load-before L --load-after L --seconds S --json OUT LINES
 *
 * The targets are the project's goals for this kind of machine (two cores),
 * recorded in docs/benchmarks.md; a missed one is reported, never an error.
 * Scenarios are matched to targets by name; "pg-" rows get the targets of
 * the SQLite row of the same name.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <jansson.h>

/* Rounds of one scenario a summary takes; more are left out. */
#define ROUNDS_MAX 32

/*
 * How a target is judged over the rounds of a scenario:
 *   T_MEDIAN  the median of the figure at path is at most (or at least) limit
 *   T_VS      the median at path is at most limit times the median at path2
 *             (chatplane against the plain relay measured in the same rounds)
 *   T_ROUNDS  the number of rounds in which the figure at path is above 0
 *             while the one at path2 is 0 is at most limit (a stall chatplane
 *             added in a round where the direct call had none)
 */
typedef enum { T_MEDIAN, T_VS, T_ROUNDS } target_kind;

typedef struct target {
    const char *scenario; /* name without "pg-" */
    const char *what;     /* shown in the table */
    target_kind kind;
    const char *path;  /* "a.b.c" into the scenario object */
    const char *path2; /* T_VS, T_ROUNDS */
    bool at_most;      /* true: figure <= limit; false: figure >= limit */
    double limit;
} target;

static const target targets[] = {
    {"relay-full-speed", "CPU-us per relayed token", T_MEDIAN, "server_cpu_us_per_token", NULL,
     true, 5},
    {"relay-full-speed", "added first token p50 (ms)", T_MEDIAN, "added.ttft_ms.p50", NULL, true,
     5},
    {"first-token-1-run", "added first token p50 (ms)", T_MEDIAN, "added.ttft_ms.p50", NULL, true,
     1},
    /* One run at a time the two programs are compared in turns, not by
     * their phases: a slow stretch of this machine adds the same CPU time
     * per token to whatever runs in it, and the phases of one round fall in
     * different stretches (docs/benchmarks.md, fix 59 and fix 60). */
    {"first-token-1-run", "CPU per token vs nginx, in turns", T_MEDIAN, "paired.ratio", NULL, true,
     2},
    {"100-runs-100tps", "added first token p50 (ms)", T_MEDIAN, "added.ttft_ms.p50", NULL, true, 2},
    {"100-runs-100tps", "added first token p99 (ms)", T_MEDIAN, "added.ttft_ms.p99", NULL, true, 5},
    {"100-runs-100tps", "added gap p99 (ms)", T_MEDIAN, "added.gap_ms.p99", NULL, true, 1},
    {"100-runs-100tps", "CPU per token vs nginx", T_VS, "server_cpu_us_per_token",
     "relay_cpu_us_per_token", true, 2},
    {"100-runs-100tps", "rounds with stalls direct had not", T_ROUNDS, "through.stalled",
     "direct.stalled", true, 0},
    {"100-runs-100tps", "KiB per active run", T_MEDIAN, "rss_kib_per_concurrent_run", NULL, true,
     32},
    {"1000-runs-50tps", "CPU per token vs nginx", T_VS, "server_cpu_us_per_token",
     "relay_cpu_us_per_token", true, 2},
    {"1000-runs-50tps", "streams stalled vs nginx", T_VS, "through.stalled", "relay.stalled", true,
     1},
    {"1000-runs-50tps", "share of the direct rate", T_MEDIAN, "added.rate_of_direct", NULL, false,
     0.99},
    {"1000-runs-50tps", "streams failed", T_MEDIAN, "through.failed", NULL, true, 0},
    {"10000-idle-subscribers", "KiB per open stream", T_MEDIAN, "rss_kib_per_stream", NULL, true,
     4},
    {"replay-100k", "events/s replayed (median)", T_MEDIAN, "events_per_s_median", NULL, false,
     200000},
};

static void die(const char *what, const char *why)
{
    fprintf(stderr, "report: %s: %s\n", what, why);
    exit(2);
}

/* The number at a dotted path, NAN when absent. */
static double at(const json_t *o, const char *path)
{
    char key[64];
    const json_t *v = o;
    while (v && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key) return NAN;
        memcpy(key, path, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        path += n + (path[n] == '.');
    }
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *machine(void)
{
    json_t *m = json_object();
    char line[512], model[256] = "unknown";
    long mem_kib = -1;
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *c = strchr(line, ':');
            if (c) snprintf(model, sizeof model, "%s", c + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f) fclose(f);
    f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "MemTotal:", 9) == 0) mem_kib = strtol(line + 9, NULL, 10);
    if (f) fclose(f);
    struct utsname u;
    uname(&u);
    json_object_set_new(m, "nproc", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
    json_object_set_new(m, "cpu", json_string(model));
    json_object_set_new(m, "mem_kib", json_integer(mem_kib));
    json_object_set_new(m, "kernel", json_string(u.release));
    return m;
}

static void row(const json_t *s)
{
    const char *name = json_string_value(json_object_get(s, "scenario"));
    const char *kind = json_string_value(json_object_get(s, "kind"));
    bool ok = json_is_true(json_object_get(s, "ok"));
    if (!name || !kind) return;
    if (strcmp(kind, "runs") == 0) {
        printf("%-26s %-4s %5.0f/%-5.0f streams ok, %4.0f stalled | added ttft p50 %7.3f p99 %7.3f "
               "| added gap p99 %7.3f | %6.2f CPU-us/token (nginx %6.2f) | %7.0f ev/s\n",
               name, ok ? "ok" : "FAIL", at(s, "through.streams") - at(s, "through.failed"),
               at(s, "runs"), at(s, "through.stalled"), at(s, "added.ttft_ms.p50"),
               at(s, "added.ttft_ms.p99"), at(s, "added.gap_ms.p99"),
               at(s, "server_cpu_us_per_token"), at(s, "relay_cpu_us_per_token"),
               at(s, "through.events_per_s"));
    } else if (strcmp(kind, "idle") == 0) {
        printf(
            "%-26s %-4s %5.0f/%-5.0f streams open | %.2f KiB per open stream | RSS KiB idle %.0f "
            "open %.0f after %.0f | fan-out seen by %.0f\n",
            name, ok ? "ok" : "FAIL", at(s, "opened"), at(s, "subscribers"),
            at(s, "rss_kib_per_stream"), at(s, "rss_idle_kib"), at(s, "rss_open_kib"),
            at(s, "rss_after_close_kib"), at(s, "fanout_saw_end"));
    } else {
        printf("%-26s %-4s %.0f events | median %.0f ev/s, best %.0f ev/s | %.2f CPU-us/event\n",
               name, ok ? "ok" : "FAIL", at(s, "events"), at(s, "events_per_s_median"),
               at(s, "events_per_s_best"), at(s, "server_cpu_us_per_event"));
    }
    printf("    %-30s %12.2f\n", "load average (1 min) at end", at(s, "load_average"));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The figure at path in each of the n rounds, sorted, NANs left out;
 * returns how many there are. */
static size_t figures(json_t *const *rounds, size_t n, const char *path, double *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double v = at(rounds[i], path);
        if (!isnan(v)) out[k++] = v;
    }
    qsort(out, k, sizeof *out, cmp_double);
    return k;
}

/* The median of the figure over the rounds (the mean of the middle two
 * for an even count); NAN when no round has it. */
static double median(json_t *const *rounds, size_t n, const char *path, double *lo, double *hi)
{
    double v[ROUNDS_MAX];
    size_t k = figures(rounds, n, path, v);
    if (k == 0) {
        *lo = *hi = NAN;
        return NAN;
    }
    *lo = v[0];
    *hi = v[k - 1];
    return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

/* Judges one target over the rounds of its scenario; sets *value and
 * *limit to what was compared. */
static bool judge(const target *t, json_t *const *rounds, size_t n, double *value, double *limit)
{
    double lo, hi;
    *limit = t->limit;
    switch (t->kind) {
    case T_MEDIAN:
        *value = median(rounds, n, t->path, &lo, &hi);
        break;
    case T_VS:
        *value = median(rounds, n, t->path, &lo, &hi);
        *limit = t->limit * median(rounds, n, t->path2, &lo, &hi);
        break;
    case T_ROUNDS: {
        size_t bad = 0, seen = 0;
        for (size_t i = 0; i < n; i++) {
            double a = at(rounds[i], t->path), b = at(rounds[i], t->path2);
            if (isnan(a) || isnan(b)) continue;
            seen++;
            if (a > 0 && b == 0) bad++;
        }
        *value = seen ? (double)bad : NAN;
        break;
    }
    }
    if (isnan(*value) || isnan(*limit)) return false;
    return t->at_most ? *value <= *limit : *value >= *limit;
}

/* Prints the median and range of a figure over the rounds. */
static void spread(json_t *const *rounds, size_t n, const char *what, const char *path)
{
    double lo, hi, m = median(rounds, n, path, &lo, &hi);
    if (isnan(m)) return;
    printf("    %-34s median %10.3f  range %10.3f .. %-10.3f\n", what, m, lo, hi);
}

/* The figures of a scenario over its rounds, and its targets judged on
 * them; returns the JSON list of the targets. */
static json_t *summarize(const char *name, json_t *const *rounds, size_t n)
{
    static const struct {
        const char *what, *path;
    } shown[] = {
        {"added first token p50 (ms)", "added.ttft_ms.p50"},
        {"added first token p99 (ms)", "added.ttft_ms.p99"},
        {"added gap p99 (ms)", "added.gap_ms.p99"},
        {"nginx added first token p50 (ms)", "relay_added.ttft_ms.p50"},
        {"nginx added first token p99 (ms)", "relay_added.ttft_ms.p99"},
        {"streams stalled, direct", "direct.stalled"},
        {"streams stalled, nginx", "relay.stalled"},
        {"streams stalled, chatplane", "through.stalled"},
        {"share of the direct rate", "added.rate_of_direct"},
        {"share of the direct rate, nginx", "relay_added.rate_of_direct"},
        {"CPU-us per token, chatplane", "server_cpu_us_per_token"},
        {"CPU-us per token, nginx", "relay_cpu_us_per_token"},
        {"CPU vs nginx in turns (times)", "paired.ratio"},
        {"... in the quietest blocks", "paired.ratio_quietest"},
        {"CPU-us/token quietest, chatplane", "paired.server_cpu_us_per_token_min"},
        {"CPU-us/token quietest, nginx", "paired.relay_cpu_us_per_token_min"},
        {"KiB per active run", "rss_kib_per_concurrent_run"},
        {"KiB per open stream", "rss_kib_per_stream"},
        {"events/s replayed", "events_per_s_median"},
        {"load average (1 min) at end", "load_average"},
    };
    printf("  %s over %zu round%s:\n", name, n, n == 1 ? "" : "s");
    for (size_t i = 0; i < sizeof shown / sizeof *shown; i++)
        spread(rounds, n, shown[i].what, shown[i].path);

    json_t *list = json_array();
    bool pg = strncmp(name, "pg-", 3) == 0;
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
        const target *t = &targets[i];
        if (strcmp(name + (pg ? 3 : 0), t->scenario) != 0) continue;
        /* nginx relays the SQLite rows only: the floor is the same, and
         * the turns with nginx run in the SQLite scenario only. */
        if (pg && t->kind == T_VS && strstr(t->path2, "relay")) continue;
        if (pg && strncmp(t->path, "paired.", 7) == 0) continue;
        double v = NAN, limit = NAN;
        bool met = judge(t, rounds, n, &v, &limit);
        const char *verdict = isnan(v) || isnan(limit) ? "not measured" : met ? "met" : "MISSED";
        printf("    goal: %-34s %10.3f  %s %-10.3f %s\n", t->what, v,
               t->at_most ? "<=" : ">=", limit, verdict);
        json_t *o = json_object();
        json_object_set_new(o, "what", json_string(t->what));
        json_object_set_new(o, "value", json_real(v));
        json_object_set_new(o, "limit", json_real(limit));
        json_object_set_new(o, "at_most", json_boolean(t->at_most));
        json_object_set_new(o, "met", json_boolean(met));
        json_array_append_new(list, o);
    }
    return list;
}

int main(int argc, char **argv)
{
    const char *mode = "?", *out = NULL, *in = NULL;
    double load_before = NAN, load_after = NAN, seconds = NAN;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
            mode = argv[++i];
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--load-before") == 0 && i + 1 < argc)
            load_before = atof(argv[++i]);
        else if (strcmp(argv[i], "--load-after") == 0 && i + 1 < argc)
            load_after = atof(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else
            in = argv[i];
    }
    if (!in || !out) die("usage", "report --mode M --json OUT [--load-before L] LINES");
    FILE *f = fopen(in, "r");
    if (!f) die(in, "cannot open");
    json_t *lines = json_array();
    char *line = NULL;
    size_t cap = 0;
    printf("\nsummary (added = through chatplane, or nginx, minus direct to the mock, same "
           "pacing):\n");
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *s = json_loads(line, 0, &je);
        if (!s) die(in, je.text);
        row(s);
        json_array_append_new(lines, s);
    }
    free(line);
    fclose(f);

    /* One entry per scenario, in the order they first ran, with every
     * round of it and its targets judged on the medians. */
    printf("\ngoals (medians over the rounds):\n");
    json_t *scenarios = json_array();
    size_t nlines = json_array_size(lines);
    bool *taken = calloc(nlines ? nlines : 1, sizeof *taken);
    if (!taken) die("report", "out of memory");
    for (size_t i = 0; i < nlines; i++) {
        if (taken[i]) continue;
        const char *name = json_string_value(json_object_get(json_array_get(lines, i), "scenario"));
        if (!name) continue;
        json_t *rounds[ROUNDS_MAX];
        size_t n = 0;
        json_t *list = json_array();
        for (size_t j = i; j < nlines; j++) {
            json_t *s = json_array_get(lines, j);
            const char *nm = json_string_value(json_object_get(s, "scenario"));
            if (taken[j] || !nm || strcmp(nm, name) != 0 || n == ROUNDS_MAX) continue;
            taken[j] = true;
            rounds[n++] = s;
            json_array_append(list, s);
        }
        json_t *entry = json_object();
        json_object_set_new(entry, "scenario", json_string(name));
        json_object_set_new(entry, "targets", summarize(name, rounds, n));
        json_object_set_new(entry, "rounds", list);
        json_array_append_new(scenarios, entry);
    }
    free(taken);
    json_decref(lines);

    json_t *doc = json_object();
    json_object_set_new(doc, "mode", json_string(mode));
    json_object_set_new(doc, "machine", machine());
    json_object_set_new(doc, "load_average_before", json_real(load_before));
    json_object_set_new(doc, "load_average_after", json_real(load_after));
    json_object_set_new(doc, "seconds", json_real(seconds));
    json_object_set_new(doc, "scenarios", scenarios);
    if (json_dump_file(doc, out, JSON_INDENT(2)) != 0) die(out, "cannot write");
    json_decref(doc);
    return 0;
}
