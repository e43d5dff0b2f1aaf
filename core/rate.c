/* rate.c -- see rate.h. */
#include "rate.h"

#include <math.h>

#include "config.h" /* RATE_BURST_MAX */

rate_limit rate_limit_make(double rate, int burst) {
    rate_limit l = {rate, burst};
    if (!burst) l.burst = (int)fmin(fmax(ceil(rate), 1), RATE_BURST_MAX);
    return l;
}

void rate_bucket_init(rate_bucket *b, const rate_limit *l, uint32_t now_ms) {
    b->tokens = (float)l->burst;
    b->over = 0;
    b->stamp = now_ms;
}

int rate_take(rate_bucket *b, const rate_limit *l, uint32_t now_ms) {
    /* In double until clamped: a long silence at a high rate earns more
     * than any integer of the bucket could hold. */
    double t =
        b->tokens + (double)(uint32_t)(now_ms - b->stamp) * l->rate / 1000;
    if (t > l->burst) t = l->burst;
    b->stamp = now_ms;
    if (t >= 1) {
        b->tokens = (float)(t - 1);
        b->over = 0;
        return 1;
    }
    b->tokens = (float)t;
    if (b->over < UINT16_MAX) b->over++;
    return 0;
}

int rate_flooding(const rate_bucket *b, const rate_limit *l) {
    return b->over > l->burst;
}
