/*
 * calc: the arithmetic of the built-in `calc` tool, and the search for an
 * arithmetic expression in free text that the demo brain uses.
 *
 * The language: decimal numbers (42, 2.5, .5, 1e3, 1.5E-2), the binary
 * operators + - * / % ^, unary minus and plus, parentheses and white space.
 * ^ is right-associative and binds tighter than unary minus (-2^2 = -4,
 * 2^3^2 = 512, 2^-1 = 0.5); * / % bind tighter than + -; % is fmod.
 */
#ifndef CHATPLANE_CALC_H
#define CHATPLANE_CALC_H

#include <stddef.h>

#define CALC_MAX_LEN    1024 /* the longest expression accepted, in bytes */
#define CALC_MAX_DEPTH  64   /* the deepest nesting of parentheses and ^ */
#define CALC_FORMAT_LEN 32

/*
 * Evaluates expr. Returns 0 and sets *out, or -1 and writes one of these
 * messages into err (cut to errlen; err may be NULL):
 *   "division by zero", "modulo by zero",
 *   "unexpected character 'x' at position 3" (1-based byte position),
 *   "unexpected end of expression", "missing closing parenthesis",
 *   "result is not a finite number", "expression is too long",
 *   "expression is nested too deeply".
 * A syntax error anywhere wins over an arithmetic error (so "1/0+" reports
 * the missing operand); of several arithmetic errors the leftmost wins.
 */
int calc_eval(const char *expr, double *out, char *err, size_t errlen);

/* Writes v as the calc tool shows it: integers below 1e15 in magnitude as
 * integers ("42", "-7", "0"), anything else with up to 12 significant digits
 * and no trailing zeros ("0.333333333333", "2.5", "1e+20"). */
void calc_format(double v, char out[CALC_FORMAT_LEN]);

/*
 * Finds the longest arithmetic expression in free text ("what is 6*7?" gives
 * "6*7", "compute (2+3)^2 please" gives "(2+3)^2"): a syntactically valid
 * expression with at least one binary operator, without surrounding white
 * space. Returns 0 and writes it into out, or -1 when the text holds none or
 * it does not fit in outlen.
 */
int calc_find_expression(const char *text, char *out, size_t outlen);

#endif
