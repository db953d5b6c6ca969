/* A pcap writer (the classic libpcap file format, readable by tcpdump -r and Wireshark).
 *
 * Fields are written in host byte order: readers tell the order from the magic number. Each
 * record (header + data) goes out in one writev so that the file never ends in the middle of a
 * record, short of the disk filling up; nothing is buffered, so there is nothing to flush when
 * the capture is interrupted.
 */
#include <netkit/raw.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

void nk_pcap_file_header(uint8_t out[NK_PCAP_HDR_LEN], uint32_t snaplen, int flags)
{
    put32(out, (flags & NK_PCAP_NSEC) ? 0xa1b23c4du : 0xa1b2c3d4u);
    put16(out + 4, 2); /* version 2.4 */
    put16(out + 6, 4);
    put32(out + 8, 0);  /* thiszone: timestamps are UTC */
    put32(out + 12, 0); /* sigfigs */
    put32(out + 16, snaplen);
    put32(out + 20, NK_PCAP_LINKTYPE_ETHERNET);
}

void nk_pcap_record_header(uint8_t out[NK_PCAP_REC_LEN], const struct timespec *ts,
                           uint32_t caplen, uint32_t origlen, int flags)
{
    uint32_t frac = (uint32_t)ts->tv_nsec;
    if (!(flags & NK_PCAP_NSEC))
        frac /= 1000;
    put32(out, (uint32_t)ts->tv_sec);
    put32(out + 4, frac);
    put32(out + 8, caplen);
    put32(out + 12, origlen);
}

/* Write all of iov; a short write is continued (regular files rarely do that, pipes may). */
static int write_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        size_t left = (size_t)n;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

int nk_pcap_init(nk_pcap *p, int fd, uint32_t snaplen, int flags)
{
    if (!p || fd < 0 || snaplen == 0)
        return -EINVAL;
    p->fd = fd;
    p->snaplen = snaplen;
    p->flags = flags;
    p->packets = 0;
    uint8_t hdr[NK_PCAP_HDR_LEN];
    nk_pcap_file_header(hdr, snaplen, flags);
    struct iovec iov = {hdr, sizeof hdr};
    return write_all(fd, &iov, 1);
}

int nk_pcap_open(nk_pcap *p, const char *path, uint32_t snaplen, int flags)
{
    if (!p || !path)
        return -EINVAL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = nk_pcap_init(p, fd, snaplen, flags);
    if (rc < 0) {
        close(fd);
        p->fd = -1;
    }
    return rc;
}

int nk_pcap_write(nk_pcap *p, const struct timespec *ts, const void *data, size_t len,
                  size_t origlen)
{
    if (!p || p->fd < 0 || !ts || (!data && len))
        return -EINVAL;
    if (origlen < len)
        origlen = len;
    if (origlen > UINT32_MAX)
        origlen = UINT32_MAX;
    size_t cap = len < p->snaplen ? len : p->snaplen;
    uint8_t hdr[NK_PCAP_REC_LEN];
    nk_pcap_record_header(hdr, ts, (uint32_t)cap, (uint32_t)origlen, p->flags);
    /* iov_base is not const, but writev only reads through it. */
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)data, cap}};
    int rc = write_all(p->fd, iov, 2);
    if (rc == 0)
        p->packets++;
    return rc;
}

int nk_pcap_close(nk_pcap *p)
{
    if (!p || p->fd < 0)
        return -EINVAL;
    int rc = close(p->fd);
    p->fd = -1;
    return rc < 0 && errno != EINTR ? -errno : 0;
}
