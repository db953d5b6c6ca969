/* --status is shown to local peers only: the predicate that decides who is local. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "netkit/httpd.h"

static void test_ipv4(void **state)
{
    (void)state;
    const unsigned char lo[4] = {127, 0, 0, 1}, lo2[4] = {127, 9, 8, 7};
    const unsigned char lan[4] = {192, 168, 1, 2}, pub[4] = {8, 8, 8, 8}, zero[4] = {0};
    const unsigned char near[4] = {128, 0, 0, 1};
    assert_int_equal(nk_httpd_peer_is_local(AF_INET, lo), 1);
    assert_int_equal(nk_httpd_peer_is_local(AF_INET, lo2), 1);
    assert_int_equal(nk_httpd_peer_is_local(AF_INET, lan), 0);
    assert_int_equal(nk_httpd_peer_is_local(AF_INET, pub), 0);
    assert_int_equal(nk_httpd_peer_is_local(AF_INET, zero), 0);
    assert_int_equal(nk_httpd_peer_is_local(AF_INET, near), 0);
}

static void test_ipv6(void **state)
{
    (void)state;
    unsigned char a[16] = {0};
    a[15] = 1; /* ::1 */
    assert_int_equal(nk_httpd_peer_is_local(AF_INET6, a), 1);
    a[0] = 0xfe; /* fe00::1 */
    assert_int_equal(nk_httpd_peer_is_local(AF_INET6, a), 0);
    memset(a, 0, sizeof a);
    assert_int_equal(nk_httpd_peer_is_local(AF_INET6, a), 0); /* :: */
    a[10] = a[11] = 0xff;
    a[12] = 127;
    a[15] = 1; /* ::ffff:127.0.0.1 */
    assert_int_equal(nk_httpd_peer_is_local(AF_INET6, a), 1);
    a[12] = 10; /* ::ffff:10.0.0.1 */
    assert_int_equal(nk_httpd_peer_is_local(AF_INET6, a), 0);
}

static void test_other_families(void **state)
{
    (void)state;
    assert_int_equal(nk_httpd_peer_is_local(AF_UNIX, NULL), 1);
    assert_int_equal(nk_httpd_peer_is_local(AF_INET, NULL), 0);
    assert_int_equal(nk_httpd_peer_is_local(0, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_other_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
