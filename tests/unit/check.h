/* check.h - the tiny assertion kit of o7's C unit tests.
 *
 * A test file defines test functions with TEST(name), lists them in main with
 * RUN(name), and returns check_summary(). Failed checks print both sides and
 * the place; the summary line is "N passed, N failed" and a run with no test
 * executed fails. */
#ifndef O7_CHECK_H
#define O7_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed, check_current_failed;

#define TEST(name) static void test_##name(void)

#define RUN(name)                                                           \
    do {                                                                    \
        check_current_failed = 0;                                           \
        test_##name();                                                      \
        if (check_current_failed) {                                         \
            check_failed++;                                                 \
            printf("FAIL %s\n", #name);                                     \
        } else {                                                            \
            check_passed++;                                                 \
            printf("ok   %s\n", #name);                                     \
        }                                                                   \
    } while (0)

#define CHECK_FAILED_AT()                                                   \
    (check_current_failed = 1,                                              \
     fprintf(stderr, "  at %s:%d: ", __FILE__, __LINE__))

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            CHECK_FAILED_AT();                                              \
            fprintf(stderr, "expected %s\n", #cond);                        \
        }                                                                   \
    } while (0)

#define CHECK_INT(a, b)                                                     \
    do {                                                                    \
        intmax_t check_a = (intmax_t)(a), check_b = (intmax_t)(b);          \
        if (check_a != check_b) {                                           \
            CHECK_FAILED_AT();                                              \
            fprintf(stderr, "%s == %s: %jd != %jd\n", #a, #b, check_a,      \
                    check_b);                                               \
        }                                                                   \
    } while (0)

#define CHECK_STR(a, b)                                                     \
    do {                                                                    \
        const char *check_a = (a), *check_b = (b);                          \
        if (check_a == NULL || check_b == NULL ||                           \
            strcmp(check_a, check_b) != 0) {                                \
            CHECK_FAILED_AT();                                              \
            fprintf(stderr, "%s == %s:\n    \"%s\"\n != \"%s\"\n", #a, #b,  \
                    check_a ? check_a : "(null)",                           \
                    check_b ? check_b : "(null)");                          \
        }                                                                   \
    } while (0)

#define CHECK_MEM(a, alen, b, blen)                                         \
    do {                                                                    \
        size_t check_al = (alen), check_bl = (blen);                        \
        if (check_al != check_bl || memcmp((a), (b), check_al) != 0) {      \
            CHECK_FAILED_AT();                                              \
            fprintf(stderr, "%s (%zu bytes) != %s (%zu bytes)\n", #a,       \
                    check_al, #b, check_bl);                                \
        }                                                                   \
    } while (0)

static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    if (check_passed + check_failed == 0)
        return 1;
    return check_failed ? 1 : 0;
}

#endif
