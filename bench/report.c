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

typedef struct target {
    const char *scenario; /* name without "pg-" */
    const char *what;     /* shown in the table */
    const char *path;     /* "a.b.c" into the scenario object */
    bool at_most;         /* true: figure <= limit; false: figure >= limit */
    double limit;
} target;

static const target targets[] = {
    {"relay-full-speed", "CPU-us per relayed token", "server_cpu_us_per_token", true, 5},
    {"first-token-1-run", "added first token p50 (ms)", "added.ttft_ms.p50", true, 1},
    {"100-runs-100tps", "added first token p50 (ms)", "added.ttft_ms.p50", true, 1},
    {"100-runs-100tps", "added first token p99 (ms)", "added.ttft_ms.p99", true, 5},
    {"100-runs-100tps", "added gap p99 (ms)", "added.gap_ms.p99", true, 1},
    {"100-runs-100tps", "CPU-us per relayed token", "server_cpu_us_per_token", true, 5},
    {"1000-runs-50tps", "streams stalled", "through.stalled", true, 0},
    {"1000-runs-50tps", "streams failed", "through.failed", true, 0},
    {"10000-idle-subscribers", "KiB per open stream", "rss_kib_per_stream", true, 8},
    {"replay-100k", "events/s replayed (median)", "events_per_s_median", false, 200000},
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
               "| added gap p99 %7.3f | %6.2f CPU-us/token | %7.0f ev/s\n",
               name, ok ? "ok" : "FAIL", at(s, "through.streams") - at(s, "through.failed"),
               at(s, "runs"), at(s, "through.stalled"), at(s, "added.ttft_ms.p50"),
               at(s, "added.ttft_ms.p99"), at(s, "added.gap_ms.p99"),
               at(s, "server_cpu_us_per_token"), at(s, "through.events_per_s"));
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

/* Prints each target of the scenario and returns a JSON list of them. */
static json_t *check(const json_t *s)
{
    json_t *list = json_array();
    const char *name = json_string_value(json_object_get(s, "scenario"));
    if (!name) return list;
    bool pg = strncmp(name, "pg-", 3) == 0;
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
        const target *t = &targets[i];
        if (strcmp(name + (pg ? 3 : 0), t->scenario) != 0) continue;
        double v = at(s, t->path);
        bool met = !isnan(v) && (t->at_most ? v <= t->limit : v >= t->limit);
        printf("    %-30s %12.3f  target %s %g: %s\n", t->what, v,
               t->at_most ? "<=" : ">=", t->limit, met ? "met" : "MISSED");
        json_t *o = json_object();
        json_object_set_new(o, "what", json_string(t->what));
        json_object_set_new(o, "value", json_real(v));
        json_object_set_new(o, "limit", json_real(t->limit));
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
    json_t *scenarios = json_array();
    char *line = NULL;
    size_t cap = 0;
    printf("\nsummary (added = through chatplane minus direct to the mock, same pacing):\n");
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *s = json_loads(line, 0, &je);
        if (!s) die(in, je.text);
        row(s);
        json_object_set_new(s, "targets", check(s));
        json_array_append_new(scenarios, s);
    }
    free(line);
    fclose(f);

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
