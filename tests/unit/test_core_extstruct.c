/* The extensible-struct rule (src/core/extstruct.h) on a config that grew: a library built
 * with version 2 of a struct meets callers compiled with version 1 (smaller), with version 2,
 * and with a version 3 it does not know (larger). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/extstruct.h"

struct cfg_v1 {
    size_t size;
    int a;
};
struct cfg_v2 { /* what the library knows */
    size_t size;
    int a;
    uint64_t b; /* added in version 2, default 7 */
};
struct cfg_v3 {
    size_t size;
    int a;
    uint64_t b;
    uint64_t c; /* unknown to the library */
};

static struct cfg_v2 defaults(void)
{
    struct cfg_v2 d = {.size = sizeof d, .a = 1, .b = 7};
    return d;
}

/* A caller struct in its own allocation of exactly its size, so that ASan sees any read past
 * what an old caller has. Not inlined: with the allocation's size in view, an optimising
 * build's -Warray-bounds flags the newer-caller branch of nk__ext_copy, which a caller this
 * short never takes. */
__attribute__((noinline)) static void *caller_copy(const void *src, size_t size)
{
    void *p = malloc(size);
    assert_non_null(p);
    memcpy(p, src, size);
    return p;
}

static void test_older_caller_gets_defaults_for_the_rest(void **state)
{
    (void)state;
    struct cfg_v1 old = {.size = sizeof old, .a = 5};
    void *mem = caller_copy(&old, sizeof old);
    struct cfg_v2 got = defaults();
    assert_int_equal(nk__ext_copy(&got, sizeof got, mem), 0);
    assert_int_equal(got.a, 5);
    assert_int_equal(got.b, 7);
    assert_int_equal(got.size, sizeof got);
    free(mem);
}

static void test_same_version_copies_everything(void **state)
{
    (void)state;
    struct cfg_v2 mine = {.size = sizeof mine, .a = 2, .b = 9};
    struct cfg_v2 got = defaults();
    assert_int_equal(nk__ext_copy(&got, sizeof got, &mine), 0);
    assert_int_equal(got.a, 2);
    assert_int_equal(got.b, 9);
}

static void test_newer_caller_with_zero_tail_is_accepted(void **state)
{
    (void)state;
    struct cfg_v3 newer;
    memset(&newer, 0, sizeof newer);
    newer.size = sizeof newer;
    newer.a = 3;
    newer.b = 4;
    struct cfg_v2 got = defaults();
    assert_int_equal(nk__ext_copy(&got, sizeof got, &newer), 0);
    assert_int_equal(got.a, 3);
    assert_int_equal(got.b, 4);
    assert_int_equal(got.size, sizeof got);
}

static void test_newer_caller_setting_an_unknown_field_is_refused(void **state)
{
    (void)state;
    struct cfg_v3 newer;
    memset(&newer, 0, sizeof newer);
    newer.size = sizeof newer;
    newer.c = 1;
    struct cfg_v2 got = defaults();
    assert_int_equal(nk__ext_copy(&got, sizeof got, &newer), -E2BIG);
    assert_int_equal(got.a, 1); /* nothing copied */
    assert_int_equal(got.b, 7);
    /* Only the last byte set: the whole tail is looked at. */
    memset(&newer, 0, sizeof newer);
    newer.size = sizeof newer;
    ((unsigned char *)&newer)[sizeof newer - 1] = 0x80;
    assert_int_equal(nk__ext_copy(&got, sizeof got, &newer), -E2BIG);
}

static void test_size_zero_or_below_the_size_field_is_refused(void **state)
{
    (void)state;
    struct cfg_v2 zero;
    memset(&zero, 0, sizeof zero);
    zero.a = 6;
    struct cfg_v2 got = defaults();
    assert_int_equal(nk__ext_copy(&got, sizeof got, &zero), -EINVAL);
    zero.size = sizeof(size_t) - 1;
    assert_int_equal(nk__ext_copy(&got, sizeof got, &zero), -EINVAL);
    assert_int_equal(got.a, 1);
}

static void test_fill_for_older_same_and_newer_callers(void **state)
{
    (void)state;
    struct cfg_v2 d = defaults();
    /* Older: only its bytes are written (ASan checks the allocation's end). */
    struct cfg_v1 *old = malloc(sizeof *old);
    assert_non_null(old);
    assert_int_equal(nk__ext_fill(old, sizeof *old, &d, sizeof d), 0);
    assert_int_equal(old->size, sizeof *old);
    assert_int_equal(old->a, 1);
    free(old);
    /* Newer: the fields the library does not know come out zero, so a later copy of it is
     * accepted. */
    struct cfg_v3 newer;
    memset(&newer, 0xff, sizeof newer);
    assert_int_equal(nk__ext_fill(&newer, sizeof newer, &d, sizeof d), 0);
    assert_int_equal(newer.size, sizeof newer);
    assert_int_equal(newer.b, 7);
    assert_int_equal(newer.c, 0);
    struct cfg_v2 got;
    memset(&got, 0, sizeof got);
    assert_int_equal(nk__ext_copy(&got, sizeof got, &newer), 0);
    assert_int_equal(got.b, 7);
    assert_int_equal(nk__ext_fill(&newer, 0, &d, sizeof d), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_older_caller_gets_defaults_for_the_rest),
        cmocka_unit_test(test_same_version_copies_everything),
        cmocka_unit_test(test_newer_caller_with_zero_tail_is_accepted),
        cmocka_unit_test(test_newer_caller_setting_an_unknown_field_is_refused),
        cmocka_unit_test(test_size_zero_or_below_the_size_field_is_refused),
        cmocka_unit_test(test_fill_for_older_same_and_newer_callers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
