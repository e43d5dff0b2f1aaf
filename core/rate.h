/* rate.h -- a token bucket per connection, for --rate-limit.
 *
 * Pure: the caller passes the clock (milliseconds, any origin, allowed to
 * wrap). A bucket is 12 bytes, so that it lives in every connection's
 * state at no cost. Tokens are a float (a fraction of a message earned is
 * kept however often the clock is read, and a burst of at most 4000 keeps
 * a precision far below one message); the stamp moves to each reading. */
#ifndef LUAHUB_RATE_H
#define LUAHUB_RATE_H

#include <stdint.h>

typedef struct rate_limit {
    double rate; /* messages per second; > 0 */
    int burst;   /* messages at once, 1..RATE_BURST_MAX */
} rate_limit;

typedef struct rate_bucket {
    float tokens;   /* messages that may pass now, fractions included */
    uint32_t stamp; /* when tokens were last counted */
    uint16_t over;  /* messages refused since the last one let through */
} rate_bucket;

/* The limit for rate and burst (burst 0: the rate rounded up, clamped to
 * 1..RATE_BURST_MAX). */
rate_limit rate_limit_make(double rate, int burst);
/* A full bucket at now_ms. */
void rate_bucket_init(rate_bucket *b, const rate_limit *l, uint32_t now_ms);
/* Takes one message. Returns 1 when it may pass, 0 when it is over the
 * rate (b->over then counts it). */
int rate_take(rate_bucket *b, const rate_limit *l, uint32_t now_ms);
/* Has the sender gone on for a burst's worth of refused messages: not a
 * client that reads its errors? */
int rate_flooding(const rate_bucket *b, const rate_limit *l);

#endif
