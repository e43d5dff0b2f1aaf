/* origin.h -- which web pages may open a WebSocket here (--allowed-origins).
 *
 * Pure. A browser sends the page's origin ("https://chat.example.com")
 * with every WebSocket upgrade, and sends the site's cookies along
 * whatever page opened it: without a check, any site a user visits could
 * open a connection as that user (cross-site WebSocket hijacking). A
 * client that is not a browser sends no Origin and is let in: the check
 * keeps other sites' pages out, not other programs. */
#ifndef LUAHUB_ORIGIN_H
#define LUAHUB_ORIGIN_H

#include <stddef.h>

/* Checks a --allowed-origins value: comma-separated origins
 * (scheme://host[:port], no path), or "*" for any. Returns 0, or -EINVAL with
 * the entry that is wrong and why in err. */
int origin_list_check(const char *list, char *err, size_t errlen);

/* May an upgrade with Origin origin[0..olen) (NULL: the request had none)
 * and Host host[0..hlen) (NULL: none) come in, under list (a checked
 * --allowed-origins; "" when not given: any origin)? Yes when it has no
 * Origin, when list is "" or holds "*" or the origin (case-insensitive),
 * and when the origin is the server's own page's: http:// or https://
 * followed by exactly the Host the request was sent to. Returns 1 or 0. */
int origin_allowed(const char *list, const char *origin, size_t olen,
                   const char *host, size_t hlen);

#endif
