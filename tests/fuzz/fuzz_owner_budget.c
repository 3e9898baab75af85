/*
 * libFuzzer target for the text form of an owner's budget
 * (core/owner_budget.c), which `chatplane token` reads from its command
 * line ("cost_usd=20/day").
 *
 * Any text must either parse to a budget whose limit is within bounds, or
 * fail with an error message. A parsed budget must print as text that
 * parses to the same budget and prints the same again.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_owner_budget tests/fuzz/corpus/owner_budget
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/owner_budget.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The command line hands over NUL-terminated words of at most a few
     * hundred bytes. */
    if (size > 256) return 0;
    char text[257];
    memcpy(text, data, size);
    text[size] = '\0';
    owner_budget_spec b;
    char err[OWNER_BUDGET_ERR_MAX];
    err[0] = '\0';
    if (owner_budget_parse(text, &b, err, sizeof err) != 0) {
        if (!err[0]) abort();
        return 0;
    }
    if (b.limit <= 0 || b.limit > OWNER_BUDGET_LIMIT_MAX ||
        (unsigned)b.dim >= OWNER_BUDGET__DIM_COUNT || (unsigned)b.period >= PERIOD__COUNT)
        abort();
    char out[80], again[80];
    owner_budget_format_spec(&b, out, sizeof out);
    owner_budget_spec back;
    if (owner_budget_parse(out, &back, err, sizeof err) != 0) abort();
    if (back.dim != b.dim || back.period != b.period || back.limit != b.limit) abort();
    owner_budget_format_spec(&back, again, sizeof again);
    if (strcmp(out, again) != 0) abort();
    return 0;
}
