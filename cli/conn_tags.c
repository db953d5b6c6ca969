/* See conn_tags.h. Closed connections are never reported, so their entries stay until their
 * identity is reused (the allocator hands the same addresses out again) or the table reaches
 * CONN_TAGS_MAX entries and starts over; connections open across a restart then show as new
 * numbers, which only affects how a long -v session reads. */
#include "conn_tags.h"

#include <stdint.h>
#include <stdlib.h>

#define CONN_TAGS_MAX (1u << 20)

static size_t slot_of(const conn_tags *t, const void *conn)
{
    uint64_t h = (uint64_t)(uintptr_t)conn * 0x9e3779b97f4a7c15ull; /* spreads aligned addresses */
    size_t i = (size_t)(h >> 32) & (t->cap - 1);
    while (t->slots[i].conn && t->slots[i].conn != conn)
        i = (i + 1) & (t->cap - 1);
    return i;
}

static int grow(conn_tags *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    if (t->used >= CONN_TAGS_MAX) {
        cap = 64; /* start over rather than grow without end */
        free(t->slots);
        t->slots = NULL;
        t->cap = t->used = 0;
    }
    conn_tags old = *t;
    t->slots = calloc(cap, sizeof *t->slots);
    if (!t->slots) {
        *t = old;
        return -1;
    }
    t->cap = cap;
    t->used = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slots[i].conn) {
            t->slots[slot_of(t, old.slots[i].conn)] = old.slots[i];
            t->used++;
        }
    }
    free(old.slots);
    return 0;
}

unsigned long conn_tags_number(conn_tags *t, const void *conn, int first)
{
    if ((t->used + 1) * 2 > t->cap && grow(t) < 0)
        return 0;
    conn_tag_slot *s = &t->slots[slot_of(t, conn)];
    if (!s->conn) {
        s->conn = conn;
        t->used++;
        first = 1; /* unknown (from before a start-over): give it a number now */
    }
    if (first)
        s->number = ++t->last;
    return s->number;
}

void conn_tags_free(conn_tags *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->used = 0;
}
