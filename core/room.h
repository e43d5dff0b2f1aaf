/* room.h -- rooms: members, sequence numbers, and each user's rooms.
 *
 * Membership belongs to a user, not to one connection: a room holds user
 * pointers (borrowed from the connection registry), and a room send reaches
 * every connection of every member. A room is created by its first join and
 * deleted when its last member leaves, or, with history (rooms_set_history),
 * kept empty for the history's time first. Both directions are indexed (room ->
 * members, user -> rooms), so a room send costs O(its members) and a
 * user's last disconnect costs O(that user's rooms). */
#ifndef LUAHUB_ROOM_H
#define LUAHUB_ROOM_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "frame.h"
#include "history.h"

/* The longest room id, in bytes (hub.limits.room_id_max for scripts). */
#define ROOM_ID_MAX 128

typedef struct rooms rooms_t;
typedef struct room room_t;

/* The longest epoch (rooms make theirs from the node's start and a count). */
#define ROOM_EPOCH_MAX 40

rooms_t *rooms_create(void);
void rooms_destroy(rooms_t *rs);

/* Rooms keep history: each room its newest `size` frames (room_keep) of
 * at most ttl_ms ago; and a room left empty is kept, with its seq, epoch
 * and history, until it has been empty for ttl_ms (rooms_expire deletes
 * it then; a join after that makes it anew). started_ms is the node's
 * start, the first part of every epoch, so that epochs differ between
 * runs. Without this call, nothing is kept and an empty room is deleted at
 * once (a cluster's mirror of its rooms). */
void rooms_set_history(rooms_t *rs, size_t size, int64_t ttl_ms,
                       int64_t started_ms);

room_t *rooms_get(const rooms_t *rs, const char *room_id);
size_t rooms_count(const rooms_t *rs);

/* Makes u a member of room_id, creating the room (created_at = now_ms) if
 * needed. Returns 1 when u joined, 0 when u already was a member. */
int rooms_join(rooms_t *rs, const char *room_id, user_t *u, int64_t now_ms);
/* Ends u's membership. Returns 1 when u was a member, 0 otherwise. The room
 * is deleted if u was its last member (room pointers to it die), unless
 * rooms keep history: then it stays, empty. */
int rooms_leave(rooms_t *rs, const char *room_id, user_t *u);
int rooms_is_member(const rooms_t *rs, const char *room_id, const user_t *u);
/* 1 when u is a member of r, 0 otherwise. */
int room_has_member(const room_t *r, const user_t *u);

/* The rooms of a user, by id: start with *pos = 0; NULL at the end. The
 * list must not change while iterating (copy the ids first to leave). */
const char *rooms_next_of_user(const rooms_t *rs, const char *user_id,
                               size_t *pos);
size_t rooms_count_of_user(const rooms_t *rs, const char *user_id);

const char *room_id(const room_t *r);
int64_t room_created_at(const room_t *r);
uint64_t room_message_count(const room_t *r);
uint64_t room_seq(const room_t *r);
/* Takes the room's next sequence number for a message (1, 2, 3, …) and
 * counts the message. */
uint64_t room_next_seq(room_t *r);
size_t room_member_count(const room_t *r);
/* The name of the room's sequence stream: new for each room made (on each
 * run of the node, and when a room comes back after it expired). */
const char *room_epoch(const room_t *r);

/* Keeps f (a new reference) in r's history as the frame of seq, kept at
 * now_ms; nothing when rooms keep no history. */
void room_keep(rooms_t *rs, room_t *r, frame_t *f, uint64_t seq,
               int64_t now_ms);
/* r's history as of now_ms (frames past the history's time dropped
 * first): borrowed until the rooms change. */
const history_t *room_history(rooms_t *rs, room_t *r, int64_t now_ms);
/* Drops every frame older than the history's time and deletes the rooms
 * empty for that long. Returns how many rooms went. */
size_t rooms_expire(rooms_t *rs, int64_t now_ms);
/* Shrinks the tables of rooms and members once most have gone (a room of
 * 3,000 down to a few; dict_shrink: not while iterating). Returns the
 * bytes freed. */
size_t rooms_shrink(rooms_t *rs);
/* Members, in the order they joined (as far as leaves allow): start with
 * *pos = 0; NULL at the end. Not while members join or leave. */
user_t *room_next_member(const room_t *r, size_t *pos);

typedef void (*room_each_fn)(void *ctx, const char *user_id);
/* A page of r's members in the byte order of their ids: each(ctx, id)
 * for at most limit of them after the id after (NULL: from the first; it
 * need not be a member), in order; returns how many. A room keeps its
 * members in that order as they join and leave (O(log n) each), so that
 * a page costs O(log n + limit) however big the room and however it
 * changed. */
size_t room_members_page(room_t *r, const char *after, size_t limit,
                         room_each_fn each, void *ctx);

#endif
