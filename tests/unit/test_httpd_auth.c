/* Password hashes for --auth-file: hashing, verifying, and malformed hashes refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "netkit/httpd.h"

static void test_round_trip(void **state)
{
    const unsigned char salt[16] = "0123456789abcdef";
    char h[160];
    int n = nk_httpd_auth_hash("s3cret", 6, 1000, salt, sizeof salt, h, sizeof h);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(h));
    /* format: pbkdf2-sha256$ITER$SALT_B64$HASH_B64 */
    assert_string_equal(h, "pbkdf2-sha256$1000$MDEyMzQ1Njc4OWFiY2RlZg==$"
                           "Pz0s4HPO+TyHnyTxIR8Lx+fEZojc3Lc26DQkf4ZOWCk=");
    assert_int_equal(nk_httpd_auth_verify(h, "s3cret", 6), 1);
    assert_int_equal(nk_httpd_auth_verify(h, "s3creT", 6), 0);
    assert_int_equal(nk_httpd_auth_verify(h, "s3cret!", 7), 0);
    assert_int_equal(nk_httpd_auth_verify(h, "", 0), 0);
}

static void test_known_vector(void **state)
{
    /* A value computed independently (Python's hashlib.pbkdf2_hmac). */
    const char *h = "pbkdf2-sha256$1000$c2FsdA==$"
                    "+pwVjmeL/pQYmwsacHoJIWcv3J8R+peIBZad8xLCyO8=";
    assert_int_equal(nk_httpd_auth_verify(h, "passwd", 6), 1);
    assert_int_equal(nk_httpd_auth_verify(h, "passwe", 6), 0);
}

static void test_malformed(void **state)
{
    static const char *bad[] = {
        "",                                                   /* empty */
        "sha256$1000$c2FsdA==$AAAA",                          /* unknown scheme */
        "pbkdf2-sha256$999$c2FsdA==$+pwVjmeL/pQYmwsacHoJIWcv3J8R+peIBZad8xLCyO8=", /* too few */
        "pbkdf2-sha256$x$c2FsdA==$+pwVjmeL/pQYmwsacHoJIWcv3J8R+peIBZad8xLCyO8=",   /* not a number */
        "pbkdf2-sha256$1000$c2FsdA==",                        /* no hash */
        "pbkdf2-sha256$1000$c2FsdA=$+pwVjmeL/pQYmwsacHoJIWcv3J8R+peIBZad8xLCyO8=", /* bad b64 */
        "pbkdf2-sha256$1000$c2FsdA==$+pwVjmeL/pQYmwsacHoJIWcv3J8R+peIBZad8xLC",     /* short */
        "pbkdf2-sha256$1000$$+pwVjmeL/pQYmwsacHoJIWcv3J8R+peIBZad8xLCyO8=",        /* no salt */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (nk_httpd_auth_verify(bad[i], "passwd", 6) != -EINVAL)
            fail_msg("accepted: '%s'", bad[i]);
    char h[16];
    const unsigned char salt[4] = "salt";
    assert_int_equal(nk_httpd_auth_hash("p", 1, 1000, salt, 4, h, sizeof h), -ENOSPC);
    assert_int_equal(nk_httpd_auth_hash("p", 1, 10, salt, 4, h, sizeof h), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_known_vector),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
