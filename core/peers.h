/* peers.h -- connections counted per client address.
 *
 * The transport counts every client connection under its client's address
 * from accept to close, to hold each address to --max-conns-per-ip. The
 * table is a hash table keyed by the address (netaddr.h: IPv4 and IPv6
 * alike, IPv4-mapped IPv6 counted as IPv4), O(1) per connection opened
 * and closed; it grows with the addresses connected and shrinks as they
 * leave, and an address's entry is freed when its count drops to 0, so a
 * stranger with many addresses fills nothing fixed. The hash is SipHash
 * under a key the caller draws at random, so that nobody can choose
 * addresses that collide.
 *
 * An entry also remembers when a refusal of its address was last logged,
 * so that an address hammering at its limit costs one log line a minute
 * (peers_refusal_log), not one per attempt. */
#ifndef LUAHUB_PEERS_H
#define LUAHUB_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

typedef struct peers peers_t;

/* key: 16 bytes for the hash, borrowed for the call (draw them at
 * random). */
peers_t *peers_create(const uint8_t key[16]);
void peers_destroy(peers_t *p);

/* One more connection from a. Returns a's count with it. */
uint32_t peers_add(peers_t *p, const netaddr *a);
/* One fewer connection from a (which must have one); its entry is freed
 * when the count drops to 0. */
void peers_remove(peers_t *p, const netaddr *a);
/* a's connections now (0 when it has none). */
uint32_t peers_count(const peers_t *p, const netaddr *a);
/* Addresses with a connection. */
size_t peers_size(const peers_t *p);

/* A refusal of a, which has a connection counted. Returns 1 when it is to
 * be logged (none was for a in the last interval_ms), with *unlogged set
 * to the refusals of a not logged since the last line; 0 when it is only
 * counted. */
int peers_refusal_log(peers_t *p, const netaddr *a, int64_t now_ms,
                      int64_t interval_ms, uint32_t *unlogged);

#endif
