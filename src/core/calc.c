/*
 * calc: a recursive-descent evaluator for arithmetic expressions.
 *
 * Grammar, loosest binding first:
 *   expr    := term (('+' | '-') term)*
 *   term    := unary (('*' | '/' | '%') unary)*
 *   unary   := ('+' | '-')* power
 *   power   := primary ('^' unary)?
 *   primary := number | '(' expr ')'
 * so ^ is right-associative, binds tighter than unary minus, and takes a
 * signed exponent (2^-1).
 *
 * The same parser serves two purposes. In strict mode (calc_eval) the whole
 * input must be one expression. In prefix mode (calc_find_expression) it
 * reads the longest valid expression at the start of the input: where an
 * operator is not followed by a valid operand, it rewinds to just before the
 * operator and stops there, so "6*7?" and "6*7+" both give "6*7".
 *
 * Syntax errors stop the parse at once. Arithmetic errors (division by zero,
 * an overflow) are only noted, and parsing goes on with a NaN, so that a
 * syntax error later in the input still wins over them.
 */
#include "core/calc.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/utf8.h"

typedef struct calc__parser {
    const char *s;
    size_t len;
    size_t pos;      /* next byte to read */
    size_t last_end; /* just after the last number or ')' consumed */
    int depth;
    int nbinops;      /* binary operators applied so far */
    bool prefix;      /* prefix mode: stop before what does not parse */
    char err[96];     /* the syntax error, when a parse function failed */
    const char *math; /* the first arithmetic error, or NULL */
} calc__parser;

/* What prefix mode rewinds to when an operand fails to parse. */
typedef struct calc__mark {
    size_t pos, last_end;
    int depth, nbinops;
} calc__mark;

static calc__mark calc__save(const calc__parser *p)
{
    return (calc__mark){p->pos, p->last_end, p->depth, p->nbinops};
}

static void calc__restore(calc__parser *p, calc__mark m)
{
    p->pos = m.pos;
    p->last_end = m.last_end;
    p->depth = m.depth;
    p->nbinops = m.nbinops;
    p->err[0] = '\0';
}

static void calc__skip_ws(calc__parser *p)
{
    while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos] != '\0') p->pos++;
}

static bool calc__is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Notes "unexpected character" at the current position. The character is
 * shown as is when printable (a whole UTF-8 sequence counts as one), else as
 * a \xNN escape, so the message stays readable and valid text. */
static int calc__unexpected(calc__parser *p)
{
    const unsigned char *c = (const unsigned char *)p->s + p->pos;
    size_t u = *c >= 0x80 ? utf8_seq((const char *)c, p->len - p->pos) : 0;
    char shown[8];
    if (*c > 0x20 && *c < 0x7f)
        snprintf(shown, sizeof shown, "%c", *c);
    else if (u > 0)
        snprintf(shown, sizeof shown, "%.*s", (int)u, (const char *)c);
    else
        snprintf(shown, sizeof shown, "\\x%02x", *c);
    snprintf(p->err, sizeof p->err, "unexpected character '%s' at position %zu", shown, p->pos + 1);
    return -1;
}

static int calc__fail(calc__parser *p, const char *msg)
{
    snprintf(p->err, sizeof p->err, "%s", msg);
    return -1;
}

/* Fails with the right message for the byte at pos (which may be the end). */
static int calc__fail_here(calc__parser *p)
{
    if (p->pos >= p->len) return calc__fail(p, "unexpected end of expression");
    return calc__unexpected(p);
}

static void calc__note_math(calc__parser *p, const char *msg)
{
    if (!p->math) p->math = msg;
}

/* Applies a binary operator and notes the first arithmetic error. */
static double calc__apply(calc__parser *p, char op, double a, double b)
{
    p->nbinops++;
    if ((op == '/' || op == '%') && b == 0.0) {
        calc__note_math(p, op == '/' ? "division by zero" : "modulo by zero");
        return NAN;
    }
    double r;
    switch (op) {
    case '+':
        r = a + b;
        break;
    case '-':
        r = a - b;
        break;
    case '*':
        r = a * b;
        break;
    case '/':
        r = a / b;
        break;
    case '%':
        r = fmod(a, b);
        break;
    default:
        r = pow(a, b);
        break;
    }
    if (!isfinite(r)) calc__note_math(p, "result is not a finite number");
    return r;
}

/* number := digits ['.' digits] | '.' digits, then an optional exponent
 * (e or E, an optional sign, digits) that is only taken when complete, so
 * "2e" is the number 2 followed by an unexpected 'e'. */
static int calc__number(calc__parser *p, double *v)
{
    const char *s = p->s;
    size_t start = p->pos, i = p->pos, digits = 0;
    while (i < p->len && calc__is_digit(s[i])) i++, digits++;
    if (i + 1 < p->len && s[i] == '.' && calc__is_digit(s[i + 1])) {
        i++;
        while (i < p->len && calc__is_digit(s[i])) i++, digits++;
    }
    if (digits == 0) return calc__unexpected(p);
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < p->len && (s[j] == '+' || s[j] == '-')) j++;
        if (j < p->len && calc__is_digit(s[j])) {
            while (j < p->len && calc__is_digit(s[j])) j++;
            i = j;
        }
    }
    /* The span holds only digits, '.', e and signs, so strtod reads all of
     * it; it is copied because the input is not NUL-terminated at i. */
    char text[CALC_MAX_LEN + 1];
    memcpy(text, s + start, i - start);
    text[i - start] = '\0';
    *v = strtod(text, NULL);
    if (!isfinite(*v)) calc__note_math(p, "result is not a finite number");
    p->pos = p->last_end = i;
    return 0;
}

static int calc__expr(calc__parser *p, double *v);
static int calc__unary(calc__parser *p, double *v);

static int calc__primary(calc__parser *p, double *v)
{
    calc__skip_ws(p);
    if (p->pos >= p->len) return calc__fail_here(p);
    if (p->s[p->pos] != '(') return calc__number(p, v);
    if (++p->depth > CALC_MAX_DEPTH) return calc__fail(p, "expression is nested too deeply");
    p->pos++;
    if (calc__expr(p, v) < 0) return -1;
    calc__skip_ws(p);
    if (p->pos >= p->len) return calc__fail(p, "missing closing parenthesis");
    if (p->s[p->pos] != ')') return calc__unexpected(p);
    p->pos++;
    p->last_end = p->pos;
    p->depth--;
    return 0;
}

/*
 * Handles a failed operand after a binary operator at mark m: in prefix mode
 * the parse rewinds to before the operator and ends there successfully; in
 * strict mode the failure stands.
 */
static int calc__operand_failed(calc__parser *p, calc__mark m)
{
    if (!p->prefix) return -1;
    calc__restore(p, m);
    return 1;
}

static int calc__power(calc__parser *p, double *v)
{
    if (calc__primary(p, v) < 0) return -1;
    calc__skip_ws(p);
    if (p->pos >= p->len || p->s[p->pos] != '^') return 0;
    calc__mark m = calc__save(p);
    p->pos++;
    /* The exponent recurses, so a long chain of ^ counts as nesting. */
    if (++p->depth > CALC_MAX_DEPTH) {
        calc__fail(p, "expression is nested too deeply");
        return calc__operand_failed(p, m) > 0 ? 0 : -1;
    }
    double e;
    if (calc__unary(p, &e) < 0) return calc__operand_failed(p, m) > 0 ? 0 : -1;
    p->depth--;
    *v = calc__apply(p, '^', *v, e);
    return 0;
}

static int calc__unary(calc__parser *p, double *v)
{
    bool negate = false;
    for (;;) {
        calc__skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == '-')
            negate = !negate;
        else if (p->pos >= p->len || p->s[p->pos] != '+')
            break;
        p->pos++;
    }
    if (calc__power(p, v) < 0) return -1;
    if (negate) *v = -*v;
    return 0;
}

static int calc__term(calc__parser *p, double *v)
{
    if (calc__unary(p, v) < 0) return -1;
    for (;;) {
        calc__skip_ws(p);
        if (p->pos >= p->len || !strchr("*/%", p->s[p->pos]) || p->s[p->pos] == '\0') return 0;
        calc__mark m = calc__save(p);
        char op = p->s[p->pos++];
        double r;
        if (calc__unary(p, &r) < 0) return calc__operand_failed(p, m) > 0 ? 0 : -1;
        *v = calc__apply(p, op, *v, r);
    }
}

static int calc__expr(calc__parser *p, double *v)
{
    if (calc__term(p, v) < 0) return -1;
    for (;;) {
        calc__skip_ws(p);
        if (p->pos >= p->len || (p->s[p->pos] != '+' && p->s[p->pos] != '-')) return 0;
        calc__mark m = calc__save(p);
        char op = p->s[p->pos++];
        double r;
        if (calc__term(p, &r) < 0) return calc__operand_failed(p, m) > 0 ? 0 : -1;
        *v = calc__apply(p, op, *v, r);
    }
}

static void calc__set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen > 0) snprintf(err, errlen, "%s", msg);
}

int calc_eval(const char *expr, double *out, char *err, size_t errlen)
{
    if (!expr) expr = "";
    size_t len = strlen(expr);
    if (len > CALC_MAX_LEN) {
        calc__set_err(err, errlen, "expression is too long");
        return -1;
    }
    calc__parser p = {.s = expr, .len = len};
    double v;
    if (calc__expr(&p, &v) < 0) {
        calc__set_err(err, errlen, p.err);
        return -1;
    }
    calc__skip_ws(&p);
    if (p.pos < p.len) {
        calc__unexpected(&p);
        calc__set_err(err, errlen, p.err);
        return -1;
    }
    if (p.math) {
        calc__set_err(err, errlen, p.math);
        return -1;
    }
    *out = v == 0.0 ? 0.0 : v; /* no "-0" */
    return 0;
}

void calc_format(double v, char out[CALC_FORMAT_LEN])
{
    if (v == 0.0)
        snprintf(out, CALC_FORMAT_LEN, "0");
    else if (fabs(v) < 1e15 && v == trunc(v))
        snprintf(out, CALC_FORMAT_LEN, "%.0f", v);
    else
        snprintf(out, CALC_FORMAT_LEN, "%.12g", v);
}

/* Whether an expression may start at text[i]: a digit, '.', '(' or a sign
 * attached to what follows it and not to what precedes it ("is -3" starts
 * one at the '-'; "well-known" and "x - 2" do not). */
static bool calc__may_start(const char *text, size_t i)
{
    char c = text[i];
    if (calc__is_digit(c) || c == '.' || c == '(') return true;
    if (c != '-' && c != '+') return false;
    char next = text[i + 1];
    if (!calc__is_digit(next) && next != '.' && next != '(') return false;
    if (i == 0) return true;
    char b = text[i - 1];
    return !(calc__is_digit(b) || b == ')' || b == '.' || b == '_' || (b >= 'a' && b <= 'z') ||
             (b >= 'A' && b <= 'Z') || (unsigned char)b >= 0x80);
}

/*
 * Tries every position where an expression may start and keeps the longest
 * valid one with a binary operator. After a hit the search goes on after it,
 * which keeps the work linear in the text (each attempt reads at most
 * CALC_MAX_LEN bytes).
 */
int calc_find_expression(const char *text, char *out, size_t outlen)
{
    size_t n = text ? strlen(text) : 0;
    size_t best_start = 0, best_len = 0;
    for (size_t i = 0; i < n;) {
        if (!calc__may_start(text, i)) {
            i++;
            continue;
        }
        size_t len = n - i < CALC_MAX_LEN ? n - i : CALC_MAX_LEN;
        calc__parser p = {.s = text + i, .len = len, .prefix = true};
        double v;
        if (calc__expr(&p, &v) == 0 && p.nbinops > 0) {
            if (p.last_end > best_len) {
                best_start = i;
                best_len = p.last_end;
            }
            i += p.last_end;
        } else {
            i++;
        }
    }
    if (best_len == 0 || best_len + 1 > outlen) return -1;
    memcpy(out, text + best_start, best_len);
    out[best_len] = '\0';
    return 0;
}
