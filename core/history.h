/* history.h -- a room's newest chat frames: a ring of frame references.
 *
 * The very frames delivered live are kept (a reference each: no copy, no
 * re-encode), each with its seq and the time it was kept, so that a
 * client that reconnects gets them exactly as they were sent. The ring
 * holds at most `cap` frames (the oldest goes first) and drops frames
 * kept up to a time the caller gives (history_expire), so its cost is one
 * reference and one slot per message, whoever receives it. Frames are
 * added in seq order, so the seqs kept are increasing. Pure: the clock is
 * passed in. */
#ifndef LUAHUB_HISTORY_H
#define LUAHUB_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

typedef struct history_entry {
    frame_t *frame;
    uint64_t seq;
    int64_t at; /* when it was kept, ms */
} history_entry;

/* Embedded in its room; the slots are allocated with the first frame. */
typedef struct history {
    history_entry *slots;
    size_t cap, head, len; /* head: the oldest entry's slot */
} history_t;

void history_init(history_t *h);
/* Drops every frame and the slots. */
void history_close(history_t *h);

/* Keeps f (takes a new reference) as the newest entry, with seq (greater
 * than every seq kept) and the time at. With cap frames already kept the
 * oldest is dropped; cap 0 keeps nothing. cap must not change over the
 * ring's life. */
void history_add(history_t *h, frame_t *f, uint64_t seq, int64_t at,
                 size_t cap);
/* Drops the frames kept at or before `until` (ms). Returns how many. */
size_t history_expire(history_t *h, int64_t until);

size_t history_len(const history_t *h);
/* The i-th oldest entry kept (i < history_len), borrowed until the ring
 * changes. */
const history_entry *history_at(const history_t *h, size_t i);
/* The index of the oldest entry whose seq is greater than since
 * (history_len when there is none). */
size_t history_after(const history_t *h, uint64_t since);

#endif
