/* The version has one source, project(VERSION) in CMakeLists.txt: the generated header, the
 * shared library's nk_version() and the project's version (passed in by CMake as
 * NK_PROJECT_VERSION) must all say the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <netkit/netkit.h>

static void test_header_is_project_version(void **state)
{
    (void)state;
    assert_string_equal(NETKIT_VERSION, NK_PROJECT_VERSION);
    char parts[32];
    snprintf(parts, sizeof parts, "%d.%d.%d", NETKIT_VERSION_MAJOR, NETKIT_VERSION_MINOR,
             NETKIT_VERSION_PATCH);
    assert_string_equal(parts, NETKIT_VERSION);
}

static void test_runtime_is_header(void **state)
{
    (void)state;
    assert_string_equal(nk_version(), NETKIT_VERSION);
    assert_int_equal(nk_version_number(), NETKIT_VERSION_NUMBER);
    assert_int_equal(nk_version_number() >> 16, NETKIT_VERSION_MAJOR);
    assert_int_equal((nk_version_number() >> 8) & 0xff, NETKIT_VERSION_MINOR);
    assert_int_equal(nk_version_number() & 0xff, NETKIT_VERSION_PATCH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_is_project_version),
        cmocka_unit_test(test_runtime_is_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
