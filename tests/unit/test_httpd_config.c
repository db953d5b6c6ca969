/* nk_httpd_config as an extensible struct (docs/library.md, "Config structs"): filled by
 * nk_httpd_config_init for the caller's own size, taken by nk_httpd_new from callers compiled
 * with an older (smaller) or a newer (larger) version of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netkit/httpd.h>
#include <netkit/loop.h>

static void test_init_sets_size_and_defaults(void **state)
{
    (void)state;
    nk_httpd_config cfg;
    memset(&cfg, 0xa5, sizeof cfg);
    nk_httpd_config_init(&cfg);
    assert_int_equal(cfg.size, sizeof cfg);
    assert_string_equal(cfg.root, ".");
    assert_string_equal(cfg.index, "index.html");
    assert_int_equal(cfg.access_log_fd, -1);
    assert_true(cfg.max_body_authenticated == UINT64_MAX);
    assert_null(cfg.on_drained);
    assert_int_equal(nk_httpd_config_init_size(&cfg, 0), -EINVAL);
}

/* An older caller's struct, in an allocation of exactly its size (ASan sees any byte written
 * or read past it). */
static void test_init_size_of_an_older_caller(void **state)
{
    (void)state;
    size_t old = offsetof(nk_httpd_config, counters);
    /* Read through memcpy at the fields' offsets: a member access through an
     * nk_httpd_config pointer would claim the whole type's size, which this memory lacks. */
    unsigned char *cfg = malloc(old);
    assert_non_null(cfg);
    assert_int_equal(nk_httpd_config_init_size((nk_httpd_config *)(void *)cfg, old), 0);
    size_t size;
    int log_fd;
    memcpy(&size, cfg + offsetof(nk_httpd_config, size), sizeof size);
    memcpy(&log_fd, cfg + offsetof(nk_httpd_config, access_log_fd), sizeof log_fd);
    assert_int_equal(size, old);
    assert_int_equal(log_fd, -1);
    nk_loop *loop;
    assert_int_equal(nk_loop_new(NULL, &loop), 0);
    nk_httpd *srv = NULL;
    assert_int_equal(nk_httpd_new(loop, (const nk_httpd_config *)(void *)cfg, &srv), 0);
    nk_httpd_free(srv);
    nk_loop_free(loop);
    free(cfg);
}

/* Fields past an older caller's size take their defaults, whatever its memory holds there:
 * the counters slot is one of them, and the engine writes its pid into the slot it uses. */
static void test_new_ignores_what_lies_past_the_size(void **state)
{
    (void)state;
    nk_loop *loop;
    assert_int_equal(nk_loop_new(NULL, &loop), 0);
    nk_httpd_counters mine;
    memset(&mine, 0, sizeof mine);
    nk_httpd_config cfg;
    nk_httpd_config_init(&cfg);
    cfg.counters = &mine;
    cfg.size = offsetof(nk_httpd_config, counters);
    nk_httpd *srv = NULL;
    assert_int_equal(nk_httpd_new(loop, &cfg, &srv), 0);
    assert_true(mine.pid == 0);
    nk_httpd_free(srv);
    cfg.size = sizeof cfg;
    assert_int_equal(nk_httpd_new(loop, &cfg, &srv), 0);
    assert_true(mine.pid == (uint64_t)getpid());
    nk_httpd_free(srv);
    nk_loop_free(loop);
}

static void test_new_refuses_size_zero_and_unknown_fields(void **state)
{
    (void)state;
    nk_loop *loop;
    assert_int_equal(nk_loop_new(NULL, &loop), 0);
    nk_httpd *srv = NULL;
    nk_httpd_config cfg;
    nk_httpd_config_init(&cfg);
    cfg.size = 0; /* a struct nk_httpd_config_init never filled */
    assert_int_equal(nk_httpd_new(loop, &cfg, &srv), -EINVAL);
    assert_null(srv);
    /* A newer caller: this library's struct followed by a field it does not know. */
    struct {
        nk_httpd_config known;
        uint64_t later;
    } newer;
    assert_int_equal(nk_httpd_config_init_size(&newer.known, sizeof newer), 0);
    assert_int_equal(newer.known.size, sizeof newer);
    assert_true(newer.later == 0); /* zeroed by the init of a library that lacks it */
    newer.later = 42;
    assert_int_equal(nk_httpd_new(loop, &newer.known, &srv), -E2BIG);
    assert_null(srv);
    newer.later = 0;
    assert_int_equal(nk_httpd_new(loop, &newer.known, &srv), 0);
    nk_httpd_free(srv);
    nk_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_sets_size_and_defaults),
        cmocka_unit_test(test_init_size_of_an_older_caller),
        cmocka_unit_test(test_new_ignores_what_lies_past_the_size),
        cmocka_unit_test(test_new_refuses_size_zero_and_unknown_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
