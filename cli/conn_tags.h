/* Numbers for the connections `http serve -v` shows: the engine names a connection by an
 * identity that is only valid while it is open, and says when a head is a connection's first;
 * this table turns that into "#1", "#2", ... in order of first requests (conn_tags.c). */
#ifndef NETKIT_CONN_TAGS_H
#define NETKIT_CONN_TAGS_H

#include <stddef.h>

typedef struct conn_tag_slot {
    const void *conn;
    unsigned long number;
} conn_tag_slot;

typedef struct conn_tags {
    conn_tag_slot *slots; /* open addressing, linear probing; NULL until the first use */
    size_t cap, used;
    unsigned long last;   /* the last number given */
} conn_tags;

/* The number of conn: a new one when first (its first request: an identity may be reused
 * after the connection closed), else the one it got then; 0 when out of memory. */
unsigned long conn_tags_number(conn_tags *t, const void *conn, int first);
void conn_tags_free(conn_tags *t);

#endif
