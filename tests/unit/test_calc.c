/* Unit tests for core/calc: evaluation, errors, formatting, and finding an
 * expression in free text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/calc.h"

/* Evaluates expr and checks the value formatted as the tool shows it. */
static void check_value(const char *expr, const char *want)
{
    double v = -12345;
    char err[128] = "";
    int rc = calc_eval(expr, &v, err, sizeof err);
    if (rc != 0) fail_msg("calc_eval(\"%s\") failed: %s", expr, err);
    char got[CALC_FORMAT_LEN];
    calc_format(v, got);
    if (strcmp(got, want) != 0) fail_msg("calc_eval(\"%s\") = %s, want %s", expr, got, want);
}

static void check_error(const char *expr, const char *want)
{
    double v = 99;
    char err[128] = "";
    int rc = calc_eval(expr, &v, err, sizeof err);
    if (rc != -1) fail_msg("calc_eval(\"%s\") succeeded, want error \"%s\"", expr, want);
    if (strcmp(err, want) != 0)
        fail_msg("calc_eval(\"%s\") error \"%s\", want \"%s\"", expr, err, want);
    /* A failed evaluation leaves *out alone. */
    assert_true(v == 99);
}

static void check_find(const char *text, const char *want)
{
    char out[256] = "untouched";
    int rc = calc_find_expression(text, out, sizeof out);
    if (!want) {
        if (rc != -1) fail_msg("calc_find_expression(\"%s\") found \"%s\", want none", text, out);
        return;
    }
    if (rc != 0) fail_msg("calc_find_expression(\"%s\") found none, want \"%s\"", text, want);
    if (strcmp(out, want) != 0)
        fail_msg("calc_find_expression(\"%s\") = \"%s\", want \"%s\"", text, out, want);
}

static void test_numbers(void **state)
{
    (void)state;
    check_value("42", "42");
    check_value("  7  ", "7");
    check_value("2.5", "2.5");
    check_value(".5", "0.5");
    check_value("1e3", "1000");
    check_value("1E3", "1000");
    check_value("1.5e-2", "0.015");
    check_value("2e+2", "200");
    check_value("007", "7");
    check_value("0", "0");
}

static void test_precedence_and_associativity(void **state)
{
    (void)state;
    check_value("6*7", "42");
    check_value("1+2*3", "7");
    check_value("(1+2)*3", "9");
    check_value("10-4-3", "3");
    check_value("100/10/5", "2");
    check_value("2^3^2", "512");
    check_value("(2^3)^2", "64");
    check_value("2*3^2", "18");
    check_value("1/3", "0.333333333333");
    check_value("2/3", "0.666666666667");
    check_value("0.1+0.2", "0.3");
    check_value("7 - 2 * 3 + 1", "2");
    check_value("(2+3)^2", "25");
    check_value(" ( 1 + 2 ) * ( 3 + 4 ) ", "21");
    check_value("2026-11-24", "1991");
}

static void test_unary(void **state)
{
    (void)state;
    check_value("-7", "-7");
    check_value("+7", "7");
    check_value("--7", "7");
    check_value("- - -7", "-7");
    check_value("-2^2", "-4");
    check_value("(-2)^2", "4");
    check_value("2^-1", "0.5");
    check_value("2^-2^2", "0.0625");
    check_value("3*-2", "-6");
    check_value("3--2", "5");
    check_value("-(1+2)", "-3");
    check_value("-0", "0");
    check_value("0*-1", "0");
}

static void test_modulo(void **state)
{
    (void)state;
    check_value("10%3", "1");
    check_value("-10%3", "-1");
    check_value("10%-3", "1");
    check_value("5.5%2", "1.5");
    check_value("2+10%4*3", "8");
    check_error("5%0", "modulo by zero");
    check_error("5%(1-1)", "modulo by zero");
}

static void test_arithmetic_errors(void **state)
{
    (void)state;
    check_error("1/0", "division by zero");
    check_error("1/(2-2)", "division by zero");
    check_error("0/0", "division by zero");
    check_error("1e308*10", "result is not a finite number");
    check_error("1e999", "result is not a finite number");
    check_error("0^-1", "result is not a finite number");
    check_error("(-8)^0.5", "result is not a finite number");
    /* The leftmost arithmetic error wins. */
    check_error("1%0 + 1/0", "modulo by zero");
    check_error("1/0 + 1%0", "division by zero");
    /* A syntax error wins over an arithmetic one. */
    check_error("1/0+", "unexpected end of expression");
    check_error("1/0 x", "unexpected character 'x' at position 5");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    check_error("", "unexpected end of expression");
    check_error("   ", "unexpected end of expression");
    check_error("1+", "unexpected end of expression");
    check_error("-", "unexpected end of expression");
    check_error("2^", "unexpected end of expression");
    check_error("12x", "unexpected character 'x' at position 3");
    check_error("1 + a", "unexpected character 'a' at position 5");
    check_error("1+2)", "unexpected character ')' at position 4");
    check_error("()", "unexpected character ')' at position 2");
    check_error("(1+2", "missing closing parenthesis");
    check_error("((1)", "missing closing parenthesis");
    check_error("(1 2)", "unexpected character '2' at position 4");
    check_error("1 2", "unexpected character '2' at position 3");
    check_error("1..2", "unexpected character '.' at position 2");
    check_error("1.", "unexpected character '.' at position 2");
    check_error(".", "unexpected character '.' at position 1");
    check_error("2e", "unexpected character 'e' at position 2");
    check_error("2e+", "unexpected character 'e' at position 2");
    check_error("1**2", "unexpected character '*' at position 3");
    check_error("1 = 2", "unexpected character '=' at position 3");
    check_error("3 \xc3\xa9", "unexpected character '\xc3\xa9' at position 3");
    check_error("3\x01", "unexpected character '\\x01' at position 2");
    check_error("3\xff", "unexpected character '\\xff' at position 2");
    /* Only a well-formed character is shown as is: a surrogate, an
     * overlong form and a code point above U+10FFFF are not text. */
    check_error("3\xed\xa0\x80", "unexpected character '\\xed' at position 2");
    check_error("3\xe0\x80\xaf", "unexpected character '\\xe0' at position 2");
    check_error("3\xf4\x90\x80\x80", "unexpected character '\\xf4' at position 2");
    check_error("3\xf0\x9f\x98\x80", "unexpected character '\xf0\x9f\x98\x80' at position 2");
    check_error("3'", "unexpected character ''' at position 2");
}

static void test_error_buffer_is_cut(void **state)
{
    (void)state;
    double v;
    char err[9];
    assert_int_equal(calc_eval("1/0", &v, err, sizeof err), -1);
    assert_string_equal(err, "division");
    /* No buffer at all is fine too. */
    assert_int_equal(calc_eval("1/0", &v, NULL, 0), -1);
}

static void test_nesting_cap(void **state)
{
    (void)state;
    char expr[300];
    /* 64 levels of parentheses are accepted, 65 are not. */
    memset(expr, '(', 64);
    expr[64] = '1';
    memset(expr + 65, ')', 64);
    expr[129] = '\0';
    check_value(expr, "1");
    memset(expr, '(', 65);
    expr[65] = '1';
    memset(expr + 66, ')', 65);
    expr[131] = '\0';
    check_error(expr, "expression is nested too deeply");

    /* A chain of ^ nests too: 64 are accepted, 65 are not. */
    size_t n = 0;
    expr[n++] = '1';
    for (int i = 0; i < 64; i++) expr[n++] = '^', expr[n++] = '1';
    expr[n] = '\0';
    check_value(expr, "1");
    expr[n++] = '^';
    expr[n++] = '1';
    expr[n] = '\0';
    check_error(expr, "expression is nested too deeply");
}

static void test_length_cap(void **state)
{
    (void)state;
    char expr[CALC_MAX_LEN + 2];
    /* "1+1+…+1" of exactly 1023 bytes, then padded to 1024 with a space. */
    size_t n = 0;
    expr[n++] = '1';
    while (n + 2 <= CALC_MAX_LEN - 1) expr[n++] = '+', expr[n++] = '1';
    expr[n++] = ' ';
    expr[n] = '\0';
    assert_int_equal(n, CALC_MAX_LEN);
    check_value(expr, "512");
    expr[n++] = ' ';
    expr[n] = '\0';
    check_error(expr, "expression is too long");
}

static void test_format(void **state)
{
    (void)state;
    char out[CALC_FORMAT_LEN];
    calc_format(42, out);
    assert_string_equal(out, "42");
    calc_format(-7, out);
    assert_string_equal(out, "-7");
    calc_format(-0.0, out);
    assert_string_equal(out, "0");
    calc_format(2.5, out);
    assert_string_equal(out, "2.5");
    calc_format(1.0 / 3.0, out);
    assert_string_equal(out, "0.333333333333");
    calc_format(-2.0 / 3.0, out);
    assert_string_equal(out, "-0.666666666667");
    calc_format(999999999999999.0, out);
    assert_string_equal(out, "999999999999999");
    calc_format(1e15, out);
    assert_string_equal(out, "1e+15");
    calc_format(1e20, out);
    assert_string_equal(out, "1e+20");
    calc_format(1e-7, out);
    assert_string_equal(out, "1e-07");
    calc_format(123.456, out);
    assert_string_equal(out, "123.456");
    calc_format(-1.7976931348623157e308, out);
    assert_string_equal(out, "-1.79769313486e+308");
}

static void test_find_expression(void **state)
{
    (void)state;
    check_find("what is 6*7?", "6*7");
    check_find("compute (2+3)^2 please", "(2+3)^2");
    check_find("6 * 7", "6 * 7");
    check_find("  1+1  ", "1+1");
    check_find("what is -3 + 4?", "-3 + 4");
    check_find("and 1/0 then", "1/0");
    check_find("2^10.", "2^10");
    check_find("1+2 and also 10*20+30", "10*20+30");
    check_find("first (1+2)*3, then 4-1", "(1+2)*3");
    check_find("a dangling 6*7+", "6*7");
    check_find("unbalanced (2*3", "2*3");
    check_find("x - 2 + 3", "2 + 3");
    check_find("well-known 5%2", "5%2");
    check_find("1e3/4 is what?", "1e3/4");
    check_find("3eggs+2", NULL);
    check_find("no numbers here", NULL);
    check_find("just 42", NULL);
    check_find("version 1.2.3", NULL);
    check_find("", NULL);
    check_find("-", NULL);
    check_find(NULL, NULL);
}

static void test_find_expression_limits(void **state)
{
    (void)state;
    char out[4];
    /* It does not fit in out. */
    assert_int_equal(calc_find_expression("what is 12*34?", out, sizeof out), -1);
    assert_int_equal(calc_find_expression("what is 1*3?", out, sizeof out), 0);
    assert_string_equal(out, "1*3");

    /* A long run of operators is read at most CALC_MAX_LEN bytes at a time. */
    size_t n = 5000;
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++) text[i] = i % 2 ? '+' : '1';
    text[n] = '\0';
    char *big = malloc(CALC_MAX_LEN + 1);
    assert_int_equal(calc_find_expression(text, big, CALC_MAX_LEN + 1), 0);
    assert_int_equal(strlen(big), CALC_MAX_LEN - 1);
    double v;
    assert_int_equal(calc_eval(big, &v, NULL, 0), 0);
    assert_true(v == 512);
    free(big);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_precedence_and_associativity),
        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_modulo),
        cmocka_unit_test(test_arithmetic_errors),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_error_buffer_is_cut),
        cmocka_unit_test(test_nesting_cap),
        cmocka_unit_test(test_length_cap),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_find_expression),
        cmocka_unit_test(test_find_expression_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
