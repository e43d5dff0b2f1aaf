/* ioring.c -- socket calls batched through io_uring (see ioring.h). Built
 * without liburing (LUAHUB_HAVE_LIBURING unset), ioring_create says so and
 * the transport keeps its one system call per socket. */
#include "ioring.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

#ifdef LUAHUB_HAVE_LIBURING
#include <liburing.h>
#include <stdlib.h>
#include <unistd.h>

struct ioring {
    struct io_uring ring;
    unsigned entries;
    unsigned queued; /* calls prepared since the last run */
    int broken;      /* a submit failed: the ring is not used again */
};

static void drain_fd(int fd) {
    char chunk[4096];
    while (read(fd, chunk, sizeof chunk) > 0) {
    }
}

static void feed_fd(int fd) {
    (void)!write(fd, "x", 1);
}

/* Submits the one call prepared on ring, what (a read of an empty socket,
 * a send into a full one), which must complete at once with -EAGAIN.
 * When it waits instead, unblock(arg) lets it complete, and its
 * completion is taken. Returns 0, or -1 with the reason in why. */
static int expect_eagain(struct io_uring *ring, const char *what,
                         void (*unblock)(int), int arg, char *why, size_t len) {
    int rc = io_uring_submit(ring);
    if (rc != 1) {
        snprintf(why, len, "submit: %s", strerror(rc < 0 ? -rc : EIO));
        return -1;
    }
    struct io_uring_cqe *cqe;
    if (io_uring_peek_cqe(ring, &cqe) < 0) {
        unblock(arg);
        if (io_uring_wait_cqe(ring, &cqe) == 0) io_uring_cqe_seen(ring, cqe);
        snprintf(why, len, "%s waited", what);
        return -1;
    }
    int res = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    if (res == -EAGAIN) return 0;
    snprintf(why, len, "%s gave %d, not -EAGAIN", what, res);
    return -1;
}

/* A read from an empty socket and a send into a full one, through the
 * ring with MSG_DONTWAIT, must complete at once with -EAGAIN: a kernel
 * that armed a poll instead would make ioring_run wait for a silent
 * client to speak, or for a slow reader to drain. Returns 0, or -1 with
 * the reason in why. */
static int check_nowait(struct io_uring *ring, char *why, size_t len) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) <
        0) {
        snprintf(why, len, "socketpair: %s", strerror(errno));
        return -1;
    }
    char chunk[4096];
    io_uring_prep_recv(io_uring_get_sqe(ring), sv[0], chunk, sizeof chunk,
                       MSG_DONTWAIT);
    int rc = expect_eagain(ring, "a read of an empty socket", feed_fd, sv[1],
                           why, len);
    if (rc == 0) {
        int small = 4096;
        (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        memset(chunk, 'x', sizeof chunk);
        while (send(sv[0], chunk, sizeof chunk, MSG_DONTWAIT) > 0) {
        }
        struct iovec iov = {.iov_base = chunk, .iov_len = sizeof chunk};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        io_uring_prep_sendmsg(io_uring_get_sqe(ring), sv[0], &mh,
                              MSG_NOSIGNAL | MSG_DONTWAIT);
        rc = expect_eagain(ring, "a send into a full socket", drain_fd, sv[1],
                           why, len);
    }
    close(sv[0]);
    close(sv[1]);
    return rc;
}

ioring *ioring_create(unsigned entries, char *why, size_t whylen) {
    ioring *r = xcalloc(1, sizeof *r);
    struct io_uring_params p;
    /* SUBMIT_ALL: a call that fails at submission does not hold back the
     * rest of the batch (5.18). SINGLE_ISSUER and DEFER_TASKRUN: only
     * this thread submits, and any completion work waits for its next
     * call into the ring (6.1). Each is dropped on a kernel without it. */
    static const unsigned tries[] = {
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
            IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_SUBMIT_ALL,
        0,
    };
    int rc = -EINVAL;
    for (size_t k = 0; k < sizeof tries / sizeof *tries; k++) {
        memset(&p, 0, sizeof p);
        p.flags = tries[k];
        rc = io_uring_queue_init_params(entries, &r->ring, &p);
        if (rc != -EINVAL) break;
    }
    if (rc < 0) {
        snprintf(why, whylen, "io_uring_setup: %s%s", strerror(-rc),
                 rc == -EPERM ? " (/proc/sys/kernel/io_uring_disabled?)" : "");
        free(r);
        return NULL;
    }
    static const struct {
        int op;
        const char *name;
    } ops[] = {{IORING_OP_SENDMSG, "IORING_OP_SENDMSG"},
               {IORING_OP_SEND, "IORING_OP_SEND"},
               {IORING_OP_RECV, "IORING_OP_RECV"}};
    struct io_uring_probe *probe = io_uring_get_probe_ring(&r->ring);
    const char *missing = probe ? NULL : "io_uring_register_probe";
    for (size_t i = 0; probe && !missing && i < sizeof ops / sizeof *ops; i++)
        if (!io_uring_opcode_supported(probe, ops[i].op)) missing = ops[i].name;
    if (probe) io_uring_free_probe(probe);
    if (missing) {
        snprintf(why, whylen, "no %s in this kernel", missing);
    } else if (check_nowait(&r->ring, why, whylen) == 0) {
        r->entries = entries;
        return r;
    }
    io_uring_queue_exit(&r->ring);
    free(r);
    return NULL;
}

void ioring_destroy(ioring *r) {
    if (!r) return;
    io_uring_queue_exit(&r->ring);
    free(r);
}

unsigned ioring_entries(const ioring *r) {
    return r->entries;
}

/* io_uring_get_sqe is never NULL here: at most entries calls between
 * runs, each run reaps them all. Each call is tagged with its place in the
 * batch. */
void ioring_send(ioring *r, int fd, const struct msghdr *mh) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (mh->msg_iovlen == 1)
        io_uring_prep_send(sqe, fd, mh->msg_iov[0].iov_base,
                           mh->msg_iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    else
        io_uring_prep_sendmsg(sqe, fd, mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    sqe->user_data = r->queued++;
}

void ioring_recv(ioring *r, int fd, void *buf, size_t len) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    io_uring_prep_recv(sqe, fd, buf, len, MSG_DONTWAIT);
    sqe->user_data = r->queued++;
}

int ioring_run(ioring *r, int *res) {
    unsigned n = r->queued, got = 0;
    r->queued = 0;
    for (unsigned i = 0; i < n; i++)
        res[i] = -ECANCELED;
    if (r->broken) return -EIO;
    if (!n) return 0;
    for (;;) {
        struct io_uring_cqe *cqe;
        while (got < n && io_uring_peek_cqe(&r->ring, &cqe) == 0) {
            if (cqe->user_data < n) res[cqe->user_data] = cqe->res;
            io_uring_cqe_seen(&r->ring, cqe);
            got++;
        }
        if (got == n) return (int)n;
        /* One call submits the batch and, the calls being non-blocking,
         * finds every completion posted when it returns. */
        int rc = io_uring_submit_and_wait(&r->ring, n - got);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            /* Not expected. Calls left unsubmitted must never go later,
             * so the ring is not used again; they stay -ECANCELED. */
            r->broken = 1;
            return rc;
        }
    }
}

#else

struct ioring {
    int unused;
};

ioring *ioring_create(unsigned entries, char *why, size_t whylen) {
    (void)entries;
    snprintf(why, whylen, "built without liburing");
    return NULL;
}

void ioring_destroy(ioring *r) {
    (void)r;
}

unsigned ioring_entries(const ioring *r) {
    (void)r;
    return 0;
}

void ioring_send(ioring *r, int fd, const struct msghdr *mh) {
    (void)r;
    (void)fd;
    (void)mh;
}

void ioring_recv(ioring *r, int fd, void *buf, size_t len) {
    (void)r;
    (void)fd;
    (void)buf;
    (void)len;
}

int ioring_run(ioring *r, int *res) {
    (void)r;
    (void)res;
    return -ENOSYS;
}

#endif
