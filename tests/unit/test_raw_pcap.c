/* Unit tests for the pcap writer: the exact bytes of the file and record headers, records
 * written whole, snaplen cuts; and tcpdump reading the file when it is installed is left to
 * tests/integration/test_sniff.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netkit/raw.h>

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint16_t get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static void test_headers(void **state)
{
    (void)state;
    uint8_t h[NK_PCAP_HDR_LEN];
    nk_pcap_file_header(h, 65535, 0);
    assert_int_equal(get32(h), 0xa1b2c3d4u);
    assert_int_equal(get16(h + 4), 2);
    assert_int_equal(get16(h + 6), 4);
    assert_int_equal(get32(h + 8), 0);
    assert_int_equal(get32(h + 16), 65535);
    assert_int_equal(get32(h + 20), 1);
    nk_pcap_file_header(h, 100, NK_PCAP_NSEC);
    assert_int_equal(get32(h), 0xa1b23c4du);

    uint8_t r[NK_PCAP_REC_LEN];
    struct timespec ts = {1700000000, 123456789};
    nk_pcap_record_header(r, &ts, 60, 1514, 0);
    assert_int_equal(get32(r), 1700000000u);
    assert_int_equal(get32(r + 4), 123456);
    assert_int_equal(get32(r + 8), 60);
    assert_int_equal(get32(r + 12), 1514);
    nk_pcap_record_header(r, &ts, 60, 60, NK_PCAP_NSEC);
    assert_int_equal(get32(r + 4), 123456789);
}

static void test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/nk_pcap_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    nk_pcap p;
    assert_int_equal(nk_pcap_init(&p, fd, 64, 0), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, NK_PCAP_HDR_LEN);
    uint8_t pkt[100];
    for (int i = 0; i < 100; i++)
        pkt[i] = (uint8_t)i;
    struct timespec ts = {10, 5000};
    assert_int_equal(nk_pcap_write(&p, &ts, pkt, 40, 40), 0);
    /* After each write the file ends on a whole record. */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, NK_PCAP_HDR_LEN + NK_PCAP_REC_LEN + 40);
    assert_int_equal(nk_pcap_write(&p, &ts, pkt, 100, 1500), 0); /* cut to snaplen 64 */
    assert_int_equal(p.packets, 2);
    assert_int_equal(nk_pcap_close(&p), 0);
    assert_int_equal(nk_pcap_close(&p), -EINVAL);

    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    uint8_t buf[512];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    assert_int_equal(n, NK_PCAP_HDR_LEN + 2 * NK_PCAP_REC_LEN + 40 + 64);
    const uint8_t *r = buf + NK_PCAP_HDR_LEN;
    assert_int_equal(get32(r), 10);
    assert_int_equal(get32(r + 4), 5);
    assert_int_equal(get32(r + 8), 40);
    assert_memory_equal(r + 16, pkt, 40);
    r += 16 + 40;
    assert_int_equal(get32(r + 8), 64);
    assert_int_equal(get32(r + 12), 1500);
    assert_memory_equal(r + 16, pkt, 64);
    unlink(path);

    assert_int_equal(nk_pcap_open(&p, "/nonexistent-dir/x.pcap", 64, 0), -ENOENT);
}

static void test_icmp(void **state)
{
    (void)state;
    /* RFC 1071 section 3 example: the sum of these words is 0xddf2, checksum 0x220d. */
    const uint8_t words[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    assert_int_equal(nk_icmp_checksum(words, 8), 0x220d);
    uint8_t buf[128];
    int n = nk_icmp_echo_build(buf, sizeof buf, 0, 0x1234, 7, 56);
    assert_int_equal(n, 64);
    assert_int_equal(buf[0], 8);
    assert_int_equal(nk_icmp_checksum(buf, 64), 0); /* a valid checksum sums to zero */
    assert_int_equal(nk_icmp_echo_build(buf, 10, 0, 1, 1, 56), -ENOSPC);
    n = nk_icmp_echo_build(buf, sizeof buf, 1, 1, 2, 8);
    assert_int_equal(buf[0], 128);
    nk_icmp_msg m;
    buf[0] = 0; /* turn the request into a reply */
    assert_int_equal(nk_icmp_parse(buf, 16, 0, &m), 0);
    assert_true(m.reply);
    assert_int_equal(m.seq, 2);
    assert_int_equal(m.data_len, 8);
    /* An unreachable error quoting our request: IPv4 header (20) + the echo's 8 bytes. */
    uint8_t err[8 + 20 + 8] = {3, 1, 0, 0, 0, 0, 0, 0, 0x45, [8 + 9] = 1};
    nk_icmp_echo_build(err + 28, 8, 0, 0xbeef, 42, 0);
    assert_int_equal(nk_icmp_parse(err, sizeof err, 0, &m), 0);
    assert_true(m.error);
    assert_int_equal(m.id, 0xbeef);
    assert_int_equal(m.seq, 42);
    assert_int_equal(nk_icmp_parse(err, 7, 0, &m), -EINVAL);
    assert_int_equal(nk_icmp_ipv4_hdr_len(err + 8, 20), 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_icmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
