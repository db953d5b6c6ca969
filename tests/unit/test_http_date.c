/* HTTP dates: IMF-fixdate formatting, parsing of the three formats, and strictness. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "netkit/http.h"

static void test_format_known(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *want;
        const char *why;
    } t[] = {
        {784111777, "Sun, 06 Nov 1994 08:49:37 GMT", "the RFC's example"},
        {0, "Thu, 01 Jan 1970 00:00:00 GMT", "the epoch"},
        {-1, "Wed, 31 Dec 1969 23:59:59 GMT", "before the epoch"},
        {951782400, "Tue, 29 Feb 2000 00:00:00 GMT", "a leap day in a year divisible by 400"},
        {2147483648LL, "Tue, 19 Jan 2038 03:14:08 GMT", "past the 32-bit limit"},
        {253402300799LL, "Fri, 31 Dec 9999 23:59:59 GMT", "the last four-digit year"},
        {253402300800LL, "Fri, 31 Dec 9999 23:59:59 GMT", "later times clamp to fit the format"},
        {INT64_MAX, "Fri, 31 Dec 9999 23:59:59 GMT", "far later clamps too"},
        {INT64_MIN, "Sat, 01 Jan 0000 00:00:00 GMT", "far earlier clamps to year 0000"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char out[NK_HTTP_DATE_LEN + 1];
        memset(out, 'X', sizeof(out));
        nk_http_date_format((time_t)t[i].t, out);
        if (strcmp(out, t[i].want) != 0)
            fail_msg("format case %zu (%s): got '%s'", i, t[i].why, out);
    }
}

/* Format then parse gives the same time, for a spread of times over four centuries. */
static void test_round_trip(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ULL; /* xorshift: deterministic, no global state */
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t t = (int64_t)(x % 12622780800ULL) - 2208988800LL; /* 1900 .. 2300 */
        char out[NK_HTTP_DATE_LEN + 1];
        time_t back = 0;
        nk_http_date_format((time_t)t, out);
        assert_int_equal(strlen(out), NK_HTTP_DATE_LEN);
        assert_int_equal(nk_http_date_parse(out, NK_HTTP_DATE_LEN, &back), 0);
        if ((int64_t)back != t)
            fail_msg("round trip of %lld gave %lld (%s)", (long long)t, (long long)back, out);
    }
}

typedef struct parse_case {
    const char *s;
    int64_t want; /* when ok */
    int ok;
    const char *why;
} parse_case;

static const parse_case cases[] = {
    {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777, 1, "IMF-fixdate"},
    {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777, 1, "RFC 850, 94 is 1994"},
    {"Sun Nov  6 08:49:37 1994", 784111777, 1, "asctime, space-padded day"},
    {"Sun Nov 06 08:49:37 1994", 784111777, 1, "asctime allows a two-digit day"},
    {"Mon, 06 Nov 1994 08:49:37 GMT", 784111777, 1, "wrong weekday is not a parse error"},
    {"Wednesday, 09-Nov-94 08:49:37 GMT", 784370977, 1, "the longest day name"},
    {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400, 1, "leap day of a leap year"},
    {"Thu, 01 Jan 1970 00:00:00 GMT", 0, 1, "the epoch"},
    {"Sat, 31 Dec 2005 23:59:60 GMT", 1136073600, 1, "a leap second becomes the next minute"},
    {"Sun, 06 Nov 1994 08:49:37 UTC", 0, 0, "only GMT"},
    {"Sun, 06 Nov 1994 08:49:37 gmt", 0, 0, "GMT is case-sensitive"},
    {"sun, 06 Nov 1994 08:49:37 GMT", 0, 0, "day names are case-sensitive"},
    {"Sun, 06 nov 1994 08:49:37 GMT", 0, 0, "month names are case-sensitive"},
    {"Sun, 6 Nov 1994 08:49:37 GMT", 0, 0, "IMF-fixdate needs two day digits"},
    {"Sun, 06 Nov 94 08:49:37 GMT", 0, 0, "IMF-fixdate needs four year digits"},
    {"Sun, 06 Nov 1994 8:49:37 GMT", 0, 0, "two hour digits"},
    {"Sun, 06 Nov 1994 08:49:37 GMT ", 0, 0, "trailing space"},
    {" Sun, 06 Nov 1994 08:49:37 GMT", 0, 0, "leading space"},
    {"Sun,  06 Nov 1994 08:49:37 GMT", 0, 0, "double space"},
    {"Xyz, 06 Nov 1994 08:49:37 GMT", 0, 0, "unknown day name"},
    {"Sun, 06 Nox 1994 08:49:37 GMT", 0, 0, "unknown month"},
    {"Sun, 00 Nov 1994 08:49:37 GMT", 0, 0, "day zero"},
    {"Sun, 31 Nov 1994 08:49:37 GMT", 0, 0, "November has 30 days"},
    {"Sun, 29 Feb 1900 08:49:37 GMT", 0, 0, "1900 is not a leap year"},
    {"Sun, 29 Feb 1994 08:49:37 GMT", 0, 0, "1994 is not a leap year"},
    {"Sun, 32 Jan 1994 08:49:37 GMT", 0, 0, "day 32"},
    {"Sun, 06 Nov 1994 24:00:00 GMT", 0, 0, "hour 24"},
    {"Sun, 06 Nov 1994 08:60:00 GMT", 0, 0, "minute 60"},
    {"Sun, 06 Nov 1994 08:49:61 GMT", 0, 0, "second 61"},
    {"Sun, 06 Nov 1994 08-49-37 GMT", 0, 0, "wrong time separators"},
    {"Sun, 06 Nov 1994 08:4a:37 GMT", 0, 0, "a letter in the time"},
    {"Sun, 06 Nov +994 08:49:37 GMT", 0, 0, "a sign in the year"},
    {"Sunday, 06-Nov-1994 08:49:37 GMT", 0, 0, "RFC 850 has a two-digit year"},
    {"Sun, 06-Nov-94 08:49:37 GMT", 0, 0, "RFC 850 needs the full day name"},
    {"Sunday 06-Nov-94 08:49:37 GMT", 0, 0, "RFC 850 needs the comma"},
    {"Sunday, 31-Apr-94 08:49:37 GMT", 0, 0, "April has 30 days"},
    {"Sun Nov  6 08:49:37 94", 0, 0, "asctime has a four-digit year"},
    {"Sun Nov 6 08:49:37 1994 ", 0, 0, "asctime day must be padded"},
    {"Sun Nov  0 08:49:37 1994", 0, 0, "asctime day zero"},
    {"", 0, 0, "empty"},
    {"0", 0, 0, "a number is not a date"},
    {"Sun, 06 Nov 1994 08:49:37 GMT\0", 0, 0, "NUL at the end (length 30)"},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const parse_case *c = &cases[i];
        size_t len = strlen(c->s);
        if (strcmp(c->why, "NUL at the end (length 30)") == 0)
            len = 30;
        time_t t = 12345;
        int r = nk_http_date_parse(c->s, len, &t);
        if (c->ok && (r != 0 || (int64_t)t != c->want))
            fail_msg("case %zu (%s): r=%d t=%lld", i, c->why, r, (long long)t);
        if (!c->ok && (r != -EINVAL || t != 12345))
            fail_msg("case %zu (%s): accepted (r=%d), or wrote the output", i, c->why, r);
    }
}

/* RFC 9110 section 5.6.7: a two-digit year that would be more than 50 years in the future
 * is in the past century. Computed against today's year so the test stays true. */
static void test_rfc850_century(void **state)
{
    (void)state;
    time_t now = time(NULL);
    struct tm tm;
    assert_non_null(gmtime_r(&now, &tm));
    int cur = tm.tm_year + 1900;
    static const int ahead[] = {0, 1, 10, 49, 50, 51, 60, 99, -1, -30, -49};
    for (size_t i = 0; i < sizeof(ahead) / sizeof(ahead[0]); i++) {
        int year = cur + ahead[i];
        /* Within 50 years ahead: that year; further ahead: a century earlier. */
        int want = ahead[i] > 50 ? year - 100 : year;
        char s[64];
        snprintf(s, sizeof(s), "Friday, 01-Jan-%02d 00:00:00 GMT", year % 100);
        time_t t;
        assert_int_equal(nk_http_date_parse(s, strlen(s), &t), 0);
        struct tm got;
        assert_non_null(gmtime_r(&t, &got));
        if (got.tm_year + 1900 != want)
            fail_msg("'%s' gave year %d, want %d (offset %d)", s, got.tm_year + 1900, want,
                     ahead[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_known),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_rfc850_century),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
