/* A latency histogram of fixed size: exact below 128, then 64 buckets per power of two
 * (at most 1/64 = 1.6% relative error) up to 2^64. Zero-initialise it before use. */
#ifndef NETKIT_CLI_LATENCY_HIST_H
#define NETKIT_CLI_LATENCY_HIST_H

#include <stddef.h>
#include <stdint.h>

/* 3776 counters whatever the number of samples. */
#define LAT_HIST_LINEAR 128
#define LAT_HIST_PER_OCTAVE 64
#define LAT_HIST_BUCKETS (LAT_HIST_LINEAR + (64 - 7) * LAT_HIST_PER_OCTAVE)

typedef struct lat_hist {
    uint64_t count[LAT_HIST_BUCKETS];
    uint64_t n, min, max;
} lat_hist;

void lat_hist_add(lat_hist *h, uint64_t v);
/* The q-quantile (nearest rank), kept within [min, max] so p50 <= p99 <= max always holds;
 * 0 when empty. */
uint64_t lat_hist_quantile(const lat_hist *h, double q);

#endif
