/* Latency histogram (latency_hist.h): log-linear buckets, nearest-rank quantiles. */
#include "latency_hist.h"

static size_t h_index(uint64_t v)
{
    if (v < LAT_HIST_LINEAR)
        return (size_t)v;
    int e = 63 - __builtin_clzll(v); /* 7 .. 63 */
    uint64_t m = (v >> (e - 6)) & (LAT_HIST_PER_OCTAVE - 1);
    return LAT_HIST_LINEAR + (size_t)(e - 7) * LAT_HIST_PER_OCTAVE + (size_t)m;
}

/* The middle of bucket i. */
static uint64_t h_value(size_t i)
{
    if (i < LAT_HIST_LINEAR)
        return i;
    size_t e = (i - LAT_HIST_LINEAR) / LAT_HIST_PER_OCTAVE + 7, m = (i - LAT_HIST_LINEAR) % LAT_HIST_PER_OCTAVE;
    uint64_t lo = (uint64_t)(LAT_HIST_PER_OCTAVE + m) << (e - 6);
    return lo + ((uint64_t)1 << (e - 6)) / 2;
}

void lat_hist_add(lat_hist *h, uint64_t v)
{
    h->count[h_index(v)]++;
    if (h->n == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->n++;
}

uint64_t lat_hist_quantile(const lat_hist *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < LAT_HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank) {
            uint64_t v = h_value(i);
            return v < h->min ? h->min : v > h->max ? h->max : v;
        }
    }
    return h->max;
}
