/* HTTP dates (RFC 9110 section 5.6.7).
 *
 * We always send IMF-fixdate; we accept IMF-fixdate and, because "recipients of timestamp
 * values are encouraged to be robust in parsing timestamps unless otherwise restricted by the
 * field definition" and "a recipient that parses a timestamp value in an HTTP field MUST
 * accept all three HTTP-date formats", also the obsolete RFC 850 and asctime forms.
 *
 * Parsing is strict: exact field widths, case-sensitive names (the grammar uses %s"..."),
 * "GMT" only, and every field range-checked, including the day against the month's length
 * (leap years by the Gregorian rule). A second of 60 is accepted, as the grammar allows for
 * leap seconds; time_t has none, so it becomes second 0 of the next minute. The day name must
 * be a valid one but is not checked against the date: RFC 9110 does not make a mismatch a
 * parse error, and the date itself is what we compare.
 *
 * Nothing here depends on the locale: names come from our own tables and digits are written
 * by hand.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "netkit/http.h"

static const char wkday[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const weekday[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday"};
static const char month[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* The 4DIGIT year of IMF-fixdate bounds what can be written: 0000-01-01T00:00:00Z and
 * 9999-12-31T23:59:59Z. Times outside are clamped so the output keeps its fixed width. */
#define DATE_MIN INT64_C(-62167219200)
#define DATE_MAX INT64_C(253402300799)

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

void nk_http_date_format(time_t t, char *out)
{
    int64_t v = (int64_t)t;
    struct tm tm;

    if (v < DATE_MIN)
        v = DATE_MIN;
    if (v > DATE_MAX)
        v = DATE_MAX;
    t = (time_t)v;
    if (!gmtime_r(&t, &tm)) {
        /* Cannot happen within the clamped range; still write a valid date, the epoch. */
        memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", NK_HTTP_DATE_LEN + 1);
        return;
    }
    int year = tm.tm_year + 1900;
    /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    memcpy(out, wkday[tm.tm_wday], 3);
    out[3] = ',';
    out[4] = ' ';
    put2(out + 5, tm.tm_mday);
    out[7] = ' ';
    memcpy(out + 8, month[tm.tm_mon], 3);
    out[11] = ' ';
    put2(out + 12, year / 100);
    put2(out + 14, year % 100);
    out[16] = ' ';
    put2(out + 17, tm.tm_hour);
    out[19] = ':';
    put2(out + 20, tm.tm_min);
    out[22] = ':';
    put2(out + 23, tm.tm_sec);
    memcpy(out + 25, " GMT", 5); /* with the terminating NUL */
}

/* n digits at s, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int find_name(const char *s, const char tab[][4], int count)
{
    for (int i = 0; i < count; i++) {
        if (memcmp(s, tab[i], 3) == 0)
            return i;
    }
    return -1;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int mon, int year)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return mon == 1 && is_leap(year) ? 29 : days[mon];
}

/* "HH:MM:SS" (time-of-day = hour ":" minute ":" second). */
static int parse_time(const char *s, struct tm *tm)
{
    if (s[2] != ':' || s[5] != ':')
        return -EINVAL;
    int h = digits(s, 2), m = digits(s + 3, 2), sec = digits(s + 6, 2);
    if (h < 0 || m < 0 || sec < 0 || h > 23 || m > 59 || sec > 60)
        return -EINVAL;
    tm->tm_hour = h;
    tm->tm_min = m;
    tm->tm_sec = sec;
    return 0;
}

static int finish(struct tm *tm, int year, int mon, int day, time_t *out)
{
    if (mon < 0 || day < 1 || day > month_days(mon, year))
        return -EINVAL;
    tm->tm_year = year - 1900;
    tm->tm_mon = mon;
    tm->tm_mday = day;
    tm->tm_isdst = 0;
    *out = timegm(tm);
    return 0;
}

/* RFC 9110 section 5.6.7: "Recipients of a timestamp value in rfc850-date format, which uses
 * a two-digit year, MUST interpret a timestamp that appears to be more than 50 years in the
 * future as representing the most recent year in the past that had the same last two
 * digits." We choose, among the years ending in yy, the one in (now - 50, now + 50], judged
 * by the year alone. */
static int rfc850_year(int yy)
{
    time_t now = time(NULL);
    struct tm tm;
    int cur = 2000;
    if (gmtime_r(&now, &tm))
        cur = tm.tm_year + 1900;
    int y = cur - cur % 100 + yy;
    if (y > cur + 50)
        y -= 100;
    else if (y <= cur - 50)
        y += 100;
    return y;
}

/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
static int parse_imf(const char *s, time_t *out)
{
    struct tm tm = {0};
    if (find_name(s, wkday, 7) < 0 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' ||
        s[11] != ' ' || s[16] != ' ' || memcmp(s + 25, " GMT", 4) != 0)
        return -EINVAL;
    int day = digits(s + 5, 2), mon = find_name(s + 8, month, 12), year = digits(s + 12, 4);
    if (day < 0 || year < 0 || parse_time(s + 17, &tm) < 0)
        return -EINVAL;
    return finish(&tm, year, mon, day, out);
}

/* rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT" (day-name-l "," SP date2 SP time SP "GMT") */
static int parse_rfc850(const char *s, size_t len, time_t *out)
{
    struct tm tm = {0};
    size_t nl = 0;
    for (int i = 0; i < 7; i++) {
        size_t l = strlen(weekday[i]);
        if (len > l && memcmp(s, weekday[i], l) == 0 && s[l] == ',') {
            nl = l;
            break;
        }
    }
    /* ", " + "06-Nov-94" + " " + "08:49:37" + " GMT" is 24 bytes after the name. */
    if (nl == 0 || len != nl + 24)
        return -EINVAL;
    s += nl;
    if (s[1] != ' ' || s[4] != '-' || s[8] != '-' || s[11] != ' ' || memcmp(s + 20, " GMT", 4) != 0)
        return -EINVAL;
    int day = digits(s + 2, 2), mon = find_name(s + 5, month, 12), yy = digits(s + 9, 2);
    if (day < 0 || yy < 0 || parse_time(s + 12, &tm) < 0)
        return -EINVAL;
    return finish(&tm, rfc850_year(yy), mon, day, out);
}

/* asctime-date: "Sun Nov  6 08:49:37 1994" (day-name SP date3 SP time SP year, where
 * date3 = month SP ( 2DIGIT / ( SP DIGIT ) )) */
static int parse_asctime(const char *s, time_t *out)
{
    struct tm tm = {0};
    if (find_name(s, wkday, 7) < 0 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' ||
        s[19] != ' ')
        return -EINVAL;
    int mon = find_name(s + 4, month, 12), day;
    if (s[8] == ' ')
        day = digits(s + 9, 1);
    else
        day = digits(s + 8, 2);
    int year = digits(s + 20, 4);
    if (day < 0 || year < 0 || parse_time(s + 11, &tm) < 0)
        return -EINVAL;
    return finish(&tm, year, mon, day, out);
}

int nk_http_date_parse(const char *s, size_t len, time_t *out)
{
    time_t t;
    int r;

    if (!s || !out)
        return -EINVAL;
    if (len == NK_HTTP_DATE_LEN && s[3] == ',')
        r = parse_imf(s, &t);
    else if (len == 24 && s[3] == ' ')
        r = parse_asctime(s, &t);
    else if (len > 24)
        r = parse_rfc850(s, len, &t);
    else
        r = -EINVAL;
    if (r == 0)
        *out = t;
    return r;
}
