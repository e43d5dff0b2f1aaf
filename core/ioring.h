/* ioring.h -- socket calls batched through io_uring.
 *
 * A loop pass reads many sockets a little each (a closed loop of small
 * messages) and writes many sockets a little each (a fan-out: one frame to
 * each of thousands). With a system call per socket, the call's entry and
 * exit can cost as much as the work: on a virtual machine with page-table
 * isolation a null system call takes about a microsecond. An io_uring
 * takes a whole batch of reads or writes in one call (docs/benchmarks.md,
 * "The io_uring path").
 *
 * Every call is non-blocking, and stays so inside the ring: each goes with
 * MSG_DONTWAIT, which makes the kernel complete it with -EAGAIN when the
 * socket is full (a send) or empty (a read) instead of waiting (io_uring
 * would otherwise arm a poll and complete it later, and ioring_run, which
 * waits for every call it submitted, would wait with it). ioring_create
 * checks both on the running kernel before the ring is used.
 *
 * The caller owns what the calls point to (messages, buffers); it must
 * stay put until ioring_run returns, and ioring_run returns only when
 * every call it submitted has completed. */
#ifndef LUAHUB_IORING_H
#define LUAHUB_IORING_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct ioring ioring;

/* A ring for batches of up to entries calls, or NULL with the reason in
 * why (built without liburing, io_uring off in this kernel or
 * /proc/sys/kernel/io_uring_disabled, an operation missing, a call on a
 * full or empty socket not answered at once). */
ioring *ioring_create(unsigned entries, char *why, size_t whylen);
void ioring_destroy(ioring *r);
/* The most calls a batch holds. */
unsigned ioring_entries(const ioring *r);
/* Adds sendmsg(fd, mh, MSG_NOSIGNAL | MSG_DONTWAIT) to the batch as its
 * next call (0, 1, ...; at most ioring_entries); one iovec goes as a
 * plain send. */
void ioring_send(ioring *r, int fd, const struct msghdr *mh);
/* Adds recv(fd, buf, len, MSG_DONTWAIT) to the batch as its next call. */
void ioring_recv(ioring *r, int fd, void *buf, size_t len);
/* Submits the batch and waits until every call in it has completed;
 * res[i] is the i-th call's result (bytes, or a negative errno). Returns
 * the number of calls, or a negative errno when the ring failed: res
 * still holds each call's result, -ECANCELED for those that never went,
 * and the ring is of no more use (every later run fails with -EIO). */
int ioring_run(ioring *r, int *res);

#endif
