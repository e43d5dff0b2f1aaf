/* sendring.h -- sendmsg() calls batched through io_uring.
 *
 * A flush pass writes many sockets a little each (a fan-out: one frame to
 * each of thousands). With a system call per socket, the entry and exit
 * cost as much as the send; an io_uring submits a whole batch in one call
 * (docs/benchmarks.md, "The io_uring flush path").
 *
 * Every send is non-blocking, and stays so inside the ring: each goes
 * with MSG_DONTWAIT, which makes the kernel complete it with -EAGAIN when
 * the socket is full instead of waiting for room (io_uring would
 * otherwise arm a poll and complete it later, and sendring_run, which
 * waits for every send it submitted, would wait with it). sendring_create
 * checks that on the running kernel before the ring is used: a send into a
 * full socket must complete at once.
 *
 * The caller owns what the messages point to; it must stay put until
 * sendring_run returns, and sendring_run returns only when every send it
 * submitted has completed. */
#ifndef LUAHUB_SENDRING_H
#define LUAHUB_SENDRING_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct sendring sendring;

/* A ring for batches of up to entries sends, or NULL with the reason in
 * why (built without liburing, io_uring off in this kernel or
 * /proc/sys/kernel/io_uring_disabled, no IORING_OP_SENDMSG, a full
 * socket not answered at once). */
sendring *sendring_create(unsigned entries, char *why, size_t whylen);
void sendring_destroy(sendring *r);
/* The most sends a batch holds. */
unsigned sendring_entries(const sendring *r);
/* Adds sendmsg(fd, mh, MSG_NOSIGNAL | MSG_DONTWAIT) to the batch, as its
 * next send (0, 1, ...; at most sendring_entries). */
void sendring_prep(sendring *r, int fd, const struct msghdr *mh);
/* Submits the batch and waits until every send in it has completed;
 * res[i] is the i-th send's result (bytes, or a negative errno). Returns
 * the number of sends, or a negative errno when the ring failed: res still
 * holds each send's result, -ECANCELED for those that never went, and the
 * ring is of no more use (every later run fails with -EIO). */
int sendring_run(sendring *r, int *res);

#endif
