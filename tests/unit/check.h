/*
 * check.h - the assertion helper of the unit tests.
 *
 * CHECK(cond) counts a pass or prints file:line and the failed condition;
 * CHECK_STR(a, b) compares two strings and prints both on a mismatch.
 * check_done("test_x") prints "test_x: N passed, M failed" and returns
 * main()'s exit status: non-zero on any failure. Counters are per program
 * (one .c includes this).
 */
#ifndef HFM_TESTS_UNIT_CHECK_H
#define HFM_TESTS_UNIT_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed_n;
static int check_failed_n;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond) {                                                            \
            check_passed_n++;                                                  \
        } else {                                                               \
            check_failed_n++;                                                  \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
        }                                                                      \
    } while (0)

#define CHECK_STR(a, b)                                                        \
    do {                                                                       \
        const char *check_a_ = (a), *check_b_ = (b);                           \
        if (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0) {         \
            check_passed_n++;                                                  \
        } else {                                                               \
            check_failed_n++;                                                  \
            fprintf(                                                           \
                stderr, "%s:%d: CHECK_STR(%s, %s) failed: \"%s\" != \"%s\"\n", \
                __FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",    \
                check_b_ ? check_b_ : "(null)");                               \
        }                                                                      \
    } while (0)

static inline int check_done(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_passed_n, check_failed_n);
    return check_failed_n ? 1 : 0;
}

#endif /* HFM_TESTS_UNIT_CHECK_H */
