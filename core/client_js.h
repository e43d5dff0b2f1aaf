/* client_js.h -- the JavaScript client (clients/js/luahub.js), built into
 * the binary (cmake/embed.cmake writes client_js.c) and served by server.c
 * at GET /luahub.js, so a page always gets the client of its server. */
#ifndef LUAHUB_CLIENT_JS_H
#define LUAHUB_CLIENT_JS_H

#include <stddef.h>

extern const unsigned char client_js[]; /* client_js_len bytes, then a NUL */
extern const size_t client_js_len;

#endif
