#include "core/owner_budget.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timefmt.h"
#include "lib/xmalloc.h"

#define OWNER_BUDGET__MICRO 1000000LL

static const char *const owner_budget__dims[OWNER_BUDGET__DIM_COUNT] = {
    [OWNER_BUDGET_TOKENS] = "tokens", [OWNER_BUDGET_COST] = "cost_usd"};

const char *owner_budget_dim_name(owner_budget_dim d)
{
    return (unsigned)d < OWNER_BUDGET__DIM_COUNT ? owner_budget__dims[d] : "unknown";
}

int owner_budget_dim_parse(const char *name, owner_budget_dim *out)
{
    for (int i = 0; name && i < OWNER_BUDGET__DIM_COUNT; i++) {
        if (strcmp(owner_budget__dims[i], name) == 0) {
            *out = (owner_budget_dim)i;
            return 0;
        }
    }
    return -1;
}

/* Parses the amount of s..end: digits, and for cost a dot and at most six
 * decimals, into tokens or micro-dollars. Returns 0 or -1. */
static int owner_budget__amount(owner_budget_dim d, const char *s, const char *end, int64_t *out)
{
    int64_t whole = 0, frac = 0;
    int ndigits = 0, nfrac = -1;
    for (const char *p = s; p < end; p++) {
        if (*p == '.' && d == OWNER_BUDGET_COST && nfrac < 0 && ndigits > 0) {
            nfrac = 0;
        } else if (*p >= '0' && *p <= '9') {
            if (nfrac >= 0) {
                if (++nfrac > 6) return -1;
                frac = frac * 10 + (*p - '0');
            } else {
                if (++ndigits > 16) return -1;
                whole = whole * 10 + (*p - '0');
            }
        } else {
            return -1;
        }
    }
    if (ndigits == 0 || nfrac == 0) return -1;
    if (d == OWNER_BUDGET_COST) {
        for (int i = nfrac < 0 ? 0 : nfrac; i < 6; i++) frac *= 10;
        if (whole > OWNER_BUDGET_LIMIT_MAX / OWNER_BUDGET__MICRO) return -1;
        whole = whole * OWNER_BUDGET__MICRO + frac;
    }
    if (whole <= 0 || whole > OWNER_BUDGET_LIMIT_MAX) return -1;
    *out = whole;
    return 0;
}

int owner_budget_parse(const char *text, owner_budget_spec *out, char *err, size_t errlen)
{
    const char *eq = strchr(text, '='), *slash = strrchr(text, '/');
    if (!eq || !slash || slash < eq) {
        snprintf(err, errlen,
                 "budget '%.60s' must read DIMENSION=AMOUNT/PERIOD, as in cost_usd=20/day", text);
        return -1;
    }
    char dim[16];
    size_t dlen = (size_t)(eq - text);
    if (dlen >= sizeof dim) dlen = sizeof dim - 1;
    memcpy(dim, text, dlen);
    dim[dlen] = '\0';
    owner_budget_spec b;
    if (owner_budget_dim_parse(dim, &b.dim) != 0) {
        snprintf(err, errlen, "budget '%.60s' names an unknown dimension; use tokens or cost_usd",
                 text);
        return -1;
    }
    if (period_parse(slash + 1, &b.period) != 0) {
        snprintf(err, errlen, "budget '%.60s' names an unknown period; use day, week or month",
                 text);
        return -1;
    }
    if (owner_budget__amount(b.dim, eq + 1, slash, &b.limit) != 0) {
        snprintf(err, errlen,
                 b.dim == OWNER_BUDGET_TOKENS
                     ? "budget '%.60s' needs a whole number of tokens from 1 to 10^15"
                     : "budget '%.60s' needs an amount of dollars above 0 with at most 6 "
                       "decimals, up to 10^9",
                 text);
        return -1;
    }
    *out = b;
    return 0;
}

/* Writes micro-dollars as a decimal number of dollars without trailing
 * zeros ("20", "0.5", "0.000001"). */
static void owner_budget__dollars(int64_t micro, char *out, size_t outlen, int min_decimals)
{
    int64_t whole = micro / OWNER_BUDGET__MICRO, frac = micro % OWNER_BUDGET__MICRO;
    char f[8];
    snprintf(f, sizeof f, "%06lld", (long long)frac);
    int keep = 6;
    while (keep > min_decimals && f[keep - 1] == '0') keep--;
    snprintf(out, outlen, "%lld%s%.*s", (long long)whole, keep ? "." : "", keep, f);
}

void owner_budget_format_spec(const owner_budget_spec *b, char *out, size_t outlen)
{
    char amount[32];
    if (b->dim == OWNER_BUDGET_COST)
        owner_budget__dollars(b->limit, amount, sizeof amount, 0);
    else
        snprintf(amount, sizeof amount, "%lld", (long long)b->limit);
    snprintf(out, outlen, "%s=%s/%s", owner_budget_dim_name(b->dim), amount,
             period_name(b->period));
}

void owner_budget_format_amount(owner_budget_dim d, int64_t amount, char *out, size_t outlen)
{
    if (d == OWNER_BUDGET_COST) {
        char num[32];
        owner_budget__dollars(amount < 0 ? 0 : amount, num, sizeof num, 2);
        snprintf(out, outlen, "$%s", num);
    } else {
        snprintf(out, outlen, "%lld token%s", (long long)amount, amount == 1 ? "" : "s");
    }
}

double owner_budget_api_amount(owner_budget_dim d, int64_t amount)
{
    return d == OWNER_BUDGET_COST ? (double)amount / (double)OWNER_BUDGET__MICRO : (double)amount;
}

/* The micro-dollars of n tokens at per_mtok dollars a million tokens:
 * exactly n * per_mtok, rounded up so a reservation never falls short. */
static int64_t owner_budget__micro(int64_t n, double per_mtok)
{
    if (n <= 0 || per_mtok <= 0) return 0;
    return (int64_t)ceil((double)n * per_mtok - 1e-9);
}

int64_t owner_budget_amount(owner_budget_dim d, int64_t prompt, int64_t completion,
                            const budget_price *price)
{
    if (prompt < 0) prompt = 0;
    if (completion < 0) completion = 0;
    if (d == OWNER_BUDGET_TOKENS) return prompt + completion;
    if (!price || !price->set) return 0;
    return owner_budget__micro(prompt, price->input_per_mtok) +
           owner_budget__micro(completion, price->output_per_mtok);
}

owner_budget_plan owner_budget_decide(const owner_budget_state *st, size_t n, int64_t est_prompt,
                                      int64_t max_completion, const budget_price *price)
{
    owner_budget_plan p = {.max_completion_tokens = max_completion};
    bool priced = price && price->set;
    if (est_prompt < 0) est_prompt = 0;
    if (n > OWNER_BUDGET_MAX) n = OWNER_BUDGET_MAX;
    /* First the cap: the completion tokens every budget's room still holds
     * once the prompt is paid for. */
    for (size_t i = 0; i < n; i++) {
        const owner_budget_state *s = &st[i];
        int64_t room = s->spec.limit - s->used - s->reserved, fit = -1;
        if (s->spec.dim == OWNER_BUDGET_TOKENS) {
            fit = room - est_prompt;
        } else if (priced) {
            int64_t after = room - owner_budget__micro(est_prompt, price->input_per_mtok);
            if (after <= 0)
                fit = 0;
            else if (price->output_per_mtok > 0)
                fit = (int64_t)floor((double)after / price->output_per_mtok);
        } else if (room <= 0) {
            fit = 0;
        }
        if (fit < 0 && s->spec.dim == OWNER_BUDGET_TOKENS) fit = 0;
        if (fit == 0) {
            p.stop = true;
            p.over = i;
            return p;
        }
        if (fit > 0 && (p.max_completion_tokens < 0 || fit < p.max_completion_tokens))
            p.max_completion_tokens = fit;
    }
    /* Then what each budget holds back: the call at its most. */
    int64_t completion = p.max_completion_tokens < 0 ? 0 : p.max_completion_tokens;
    for (size_t i = 0; i < n; i++)
        p.reserve[i] = owner_budget_amount(st[i].spec.dim, est_prompt, completion, price);
    return p;
}

json_t *owner_budget_to_json(const owner_budget_state *st)
{
    owner_budget_dim d = st->spec.dim;
    char resets[TIMEFMT_LEN];
    timefmt_rfc3339(period_end_ms(st->spec.period, st->period_start_ms), resets);
    json_t *o = json_object();
    json_object_set_new(o, "dimension", json_string(owner_budget_dim_name(d)));
    json_object_set_new(o, "period", json_string(period_name(st->spec.period)));
    const int64_t v[3] = {st->spec.limit, st->used, st->reserved};
    const char *const k[3] = {"limit", "used", "reserved"};
    for (int i = 0; i < 3; i++)
        json_object_set_new(o, k[i],
                            d == OWNER_BUDGET_COST ? json_real(owner_budget_api_amount(d, v[i]))
                                                   : json_integer((json_int_t)v[i]));
    json_object_set_new(o, "resets_at", json_string(resets));
    return o;
}

char *owner_budget_stop_detail(const char *owner, const owner_budget_state *st)
{
    char used[48], limit[48], held[48], resets[PERIOD_TIME_LEN], more[96] = "";
    owner_budget_format_amount(st->spec.dim, st->used, used, sizeof used);
    owner_budget_format_amount(st->spec.dim, st->spec.limit, limit, sizeof limit);
    if (st->reserved > 0) {
        owner_budget_format_amount(st->spec.dim, st->reserved, held, sizeof held);
        snprintf(more, sizeof more, " (%s more held by calls in flight)", held);
    }
    period_format_time(period_end_ms(st->spec.period, st->period_start_ms), resets);
    /* "used 1500 tokens of 2000 tokens" reads badly: tokens name the unit
     * once, after the limit. */
    if (st->spec.dim == OWNER_BUDGET_TOKENS)
        return xasprintf("%s used %lld of %s%s this %s; it resets at %s", owner,
                         (long long)st->used, limit, more, period_name(st->spec.period), resets);
    return xasprintf("%s used %s of %s%s this %s; it resets at %s", owner, used, limit, more,
                     period_name(st->spec.period), resets);
}
