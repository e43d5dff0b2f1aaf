/* natives.h -- the shipped ping and chat handlers written again in C, for
 * measuring what running a message through Lua costs: the same hub path
 * (envelope, handler, fan-out), the handler the only difference.
 *
 * native_chat does what scripts/chat.lua does for a message to a room
 * (the path the benchmarks use): the same checks in the same order, seq,
 * the same frame to every member, the same ack. It does not do `to`
 * (user-to-user) messages. */
#ifndef LUAHUB_BENCH_NATIVES_H
#define LUAHUB_BENCH_NATIVES_H

#include "hub.h"

void native_ping(hub_t *h, const hub_call *call);
void native_chat(hub_t *h, const hub_call *call);
/* Routes ping and chat to the functions above. */
void natives_install(hub_t *h);

#endif
