/* sendring.c -- sendmsg() calls batched through io_uring (see sendring.h).
 * Built without liburing (LUAHUB_HAVE_LIBURING unset), sendring_create
 * says so and the transport keeps its sendmsg() path. */
#include "sendring.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

#ifdef LUAHUB_HAVE_LIBURING
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <unistd.h>

struct sendring {
    struct io_uring ring;
    unsigned entries;
    unsigned queued; /* sends prepared since the last run */
    int broken;      /* a submit failed: the ring is not used again */
};

/* Sends into a full socket through the ring, with MSG_DONTWAIT, and checks
 * that the send completes at once with -EAGAIN: a kernel that armed a poll
 * instead would make sendring_run wait for a slow reader to drain.
 * Returns 0, or -1 with the reason in why. */
static int check_full_socket(struct io_uring *ring, char *why, size_t len) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) <
        0) {
        snprintf(why, len, "socketpair: %s", strerror(errno));
        return -1;
    }
    int small = 4096;
    (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    while (send(sv[0], chunk, sizeof chunk, MSG_DONTWAIT) > 0) {
    }
    struct iovec iov = {.iov_base = chunk, .iov_len = sizeof chunk};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_sendmsg(sqe, sv[0], &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    int rc = io_uring_submit(ring), res = 0, ok = 0;
    struct io_uring_cqe *cqe = NULL;
    if (rc == 1 && io_uring_peek_cqe(ring, &cqe) == 0) {
        res = cqe->res;
        ok = res == -EAGAIN;
    } else if (rc == 1) {
        /* Waiting for room: drain the other end so that it completes. */
        while (read(sv[1], chunk, sizeof chunk) > 0) {
        }
        if (io_uring_wait_cqe(ring, &cqe) < 0) cqe = NULL;
    }
    if (cqe) io_uring_cqe_seen(ring, cqe);
    close(sv[0]);
    close(sv[1]);
    if (ok) return 0;
    if (rc != 1)
        snprintf(why, len, "submit: %s", strerror(rc < 0 ? -rc : EIO));
    else if (res)
        snprintf(why, len, "a send into a full socket gave %d, not -EAGAIN",
                 res);
    else
        snprintf(why, len, "a send into a full socket waited for room");
    return -1;
}

sendring *sendring_create(unsigned entries, char *why, size_t whylen) {
    sendring *r = xcalloc(1, sizeof *r);
    struct io_uring_params p;
    /* SUBMIT_ALL: a send that fails at submission does not hold back the
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
    const char *env = getenv("LUAHUB_URING_SETUP"); /* TEMP: measuring */
    size_t k0 = env ? (size_t)atoi(env) : 0;
    if (k0 == 3) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
        rc = io_uring_queue_init_params(entries, &r->ring, &p);
    } else
        for (size_t k = k0; k < sizeof tries / sizeof *tries; k++) {
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
    struct io_uring_probe *probe = io_uring_get_probe_ring(&r->ring);
    int has = probe && io_uring_opcode_supported(probe, IORING_OP_SENDMSG);
    if (probe) io_uring_free_probe(probe);
    if (!has) {
        snprintf(why, whylen, "no IORING_OP_SENDMSG in this kernel");
    } else if (check_full_socket(&r->ring, why, whylen) == 0) {
        r->entries = entries;
        return r;
    }
    io_uring_queue_exit(&r->ring);
    free(r);
    return NULL;
}

void sendring_destroy(sendring *r) {
    if (!r) return;
    io_uring_queue_exit(&r->ring);
    free(r);
}

unsigned sendring_entries(const sendring *r) {
    return r->entries;
}

void sendring_prep(sendring *r, int fd, const struct msghdr *mh) {
    /* Never NULL: at most entries sends between runs, each run reaps
     * them all. */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    io_uring_prep_sendmsg(sqe, fd, mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    sqe->user_data = r->queued++;
}

int sendring_run(sendring *r, int *res) {
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
        /* One call submits the batch and, the sends being non-blocking,
         * finds every completion posted when it returns. */
        int rc = io_uring_submit_and_wait(&r->ring, n - got);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            /* Not expected. Sends left unsubmitted must never go later,
             * so the ring is not used again; they stay -ECANCELED. */
            r->broken = 1;
            return rc;
        }
    }
}

#else

struct sendring {
    int unused;
};

sendring *sendring_create(unsigned entries, char *why, size_t whylen) {
    (void)entries;
    snprintf(why, whylen, "built without liburing");
    return NULL;
}

void sendring_destroy(sendring *r) {
    (void)r;
}

unsigned sendring_entries(const sendring *r) {
    (void)r;
    return 0;
}

void sendring_prep(sendring *r, int fd, const struct msghdr *mh) {
    (void)r;
    (void)fd;
    (void)mh;
}

int sendring_run(sendring *r, int *res) {
    (void)r;
    (void)res;
    return -ENOSYS;
}

#endif
