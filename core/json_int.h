/* json_int.h -- what json.c (the parser) and json_write.c (the encoders)
 * share (internal). */
#ifndef LUAHUB_JSON_INT_H
#define LUAHUB_JSON_INT_H

#include <stddef.h>

/* The length of the run at p (at most n bytes) of bytes that stand for
 * themselves inside a JSON string: printable ASCII but '"' and '\\'. */
size_t json__plain_run(const char *p, size_t n);
/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
size_t json__utf8_len(const unsigned char *s, size_t n);

#endif
