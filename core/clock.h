/* clock.h -- the server's one wall clock. */
#ifndef LUAHUB_CLOCK_H
#define LUAHUB_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME): the timestamps
 * clients see, and hub.now() for scripts. */
int64_t clock_now_ms(void);

#endif
