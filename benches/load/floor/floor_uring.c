// floor_epoll's twin on io_uring, for the small file only: the same
// response, placement and listeners, but each process accepts, reads and
// sends through one io_uring (single issuer, deferred task work), with the
// accepted sockets as registered files (no file-table lookup per operation)
// and one io_uring_enter per batch of completions. It shows what a
// completion-based runtime would save against the epoll floor.
//
// usage: floor_uring PORT SMALL_URL SMALL_FILE
//        (benches/load.sh builds and starts it as floor-uring)
#include "floor.h"

#include <liburing.h>
#include <stdbool.h>

enum { OP_ACCEPT, OP_RECV, OP_SEND, OP_CLOSE };
// Registered-file slots per process: well over the 5,000 connections of the
// largest load case.
#define SLOTS 16384
// Receive buffer per slot.
#define BUF 4096

static char *bufs; // SLOTS buffers of BUF bytes, one per file slot

static void post(struct io_uring *ring, int op, int slot) {
    struct io_uring_sqe *s = io_uring_get_sqe(ring);
    if (!s) { // the submission queue is full: hand it to the kernel first
        io_uring_submit(ring);
        s = io_uring_get_sqe(ring);
    }
    switch (op) {
    case OP_RECV:
        io_uring_prep_recv(s, slot, bufs + (size_t)slot * BUF, BUF, 0);
        break;
    case OP_SEND:
        io_uring_prep_send(s, slot, response, response_len, MSG_NOSIGNAL);
        break;
    case OP_CLOSE:
        io_uring_prep_close_direct(s, (unsigned)slot);
        break;
    }
    if (op != OP_CLOSE) s->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(s, ((unsigned long long)slot << 2) | (unsigned)op);
}

static void serve(const struct floor_args *a, int cpu) {
    int lfd = floor_listener(a->port, cpu, 0);
    struct io_uring ring;
    struct io_uring_params p = {
        .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE,
        .cq_entries = 2 * SLOTS};
    int e = io_uring_queue_init_params(4096, &ring, &p);
    if (!e) e = io_uring_register_files_sparse(&ring, SLOTS);
    if (e) {
        fprintf(stderr, "io_uring setup: %s\n", strerror(-e));
        exit(1);
    }
    bufs = malloc((size_t)SLOTS * BUF);
    if (!bufs) die("malloc");
    bool accepting = false;
    for (;;) {
        if (!accepting) { // (re)arm the multishot accept
            struct io_uring_sqe *s = io_uring_get_sqe(&ring);
            io_uring_prep_multishot_accept_direct(s, lfd, NULL, NULL, 0);
            io_uring_sqe_set_data64(s, OP_ACCEPT);
            accepting = true;
        }
        io_uring_submit_and_wait(&ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            seen++;
            int op = (int)(cqe->user_data & 3), slot = (int)(cqe->user_data >> 2), res = cqe->res;
            char *req = bufs + (size_t)slot * BUF;
            switch (op) {
            case OP_ACCEPT:
                accepting = cqe->flags & IORING_CQE_F_MORE;
                if (res >= 0) post(&ring, OP_RECV, res); // res is the new file slot
                break;
            case OP_RECV:
                if (res <= 0)
                    post(&ring, OP_CLOSE, slot);
                else if (memmem(req, (size_t)res, "\r\n\r\n", 4) == NULL)
                    post(&ring, OP_RECV, slot);
                else
                    post(&ring, target_of(a, req, (size_t)res) == SMALL ? OP_SEND : OP_CLOSE, slot);
                break;
            case OP_SEND:
                post(&ring, res == (int)response_len ? OP_RECV : OP_CLOSE, slot);
                break;
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
}

int main(int argc, char **argv) {
    struct floor_args a = floor_setup(argc, argv, 0);
    floor_run(&a, serve);
    return 0;
}
