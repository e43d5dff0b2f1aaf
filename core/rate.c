/* rate.c -- see rate.h. */
#include "rate.h"

#include <math.h>

#include "config.h"

rate_limit rate_limit_make(double rate, int burst) {
    rate_limit l = {rate, burst};
    if (!burst) l.burst = (int)fmin(fmax(ceil(rate), 1), RATE_BURST_MAX);
    return l;
}

void rate_bucket_init(rate_bucket *b, const rate_limit *l, uint32_t now_ms) {
    b->tokens = (uint16_t)(l->burst * 16);
    b->over = 0;
    b->stamp = now_ms;
}

int rate_take(rate_bucket *b, const rate_limit *l, uint32_t now_ms) {
    uint32_t cap = (uint32_t)l->burst * 16, t = b->tokens;
    uint32_t add = (uint32_t)((double)(uint32_t)(now_ms - b->stamp) *
                              l->rate * 16 / 1000);
    if (t + (uint64_t)add >= cap) {
        t = cap;
        b->stamp = now_ms;
    } else if (add) {
        /* Keep the part of a token not earned yet. */
        t += add;
        b->stamp += (uint32_t)(add * 1000.0 / (l->rate * 16));
    }
    if (t >= 16) {
        b->tokens = (uint16_t)(t - 16);
        b->over = 0;
        return 1;
    }
    b->tokens = (uint16_t)t;
    if (b->over < UINT16_MAX) b->over++;
    return 0;
}

int rate_flooding(const rate_bucket *b, const rate_limit *l) {
    return b->over > l->burst;
}
