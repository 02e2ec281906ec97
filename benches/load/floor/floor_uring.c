// floor_epoll's twin on io_uring: the same fixed response, placement and
// listeners, but the requests are read and the answers sent through one
// io_uring per thread (single issuer, deferred task work), with the accepted
// sockets as registered files (no file-table lookup per operation) and one
// io_uring_enter per batch of completions. It shows what a completion-based
// runtime would save on case (a) against the epoll floor.
//
// usage: floor_uring PORT BODY_FILE    (benches/load.sh builds and starts it as floor-uring)
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor.h"

enum { OP_ACCEPT, OP_RECV, OP_SEND, OP_CLOSE };
// Registered-file slots per thread: more than the 5,000 connections of the
// largest load case.
#define SLOTS 16384
#define BUF 4096

static int port;
// One receive buffer per file slot, indexed by slot.
static char *bufs;

static int listener(int cpu) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, sizeof cpu);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4096)) {
        perror("bind/listen");
        exit(1);
    }
    return fd;
}

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
        io_uring_prep_send(s, slot, response, response_len, 0);
        break;
    case OP_CLOSE:
        io_uring_prep_close_direct(s, slot);
        break;
    }
    if (op != OP_CLOSE) s->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(s, ((unsigned long long)slot << 2) | op);
}

static void *worker(void *arg) {
    int cpu = (int)(long)arg;
    place_thread(cpu);
    int lfd = listener(cpu);
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
            switch (op) {
            case OP_ACCEPT:
                accepting = cqe->flags & IORING_CQE_F_MORE;
                if (res >= 0) post(&ring, OP_RECV, res); // res is the new file slot
                break;
            case OP_RECV:
                if (res <= 0)
                    post(&ring, OP_CLOSE, slot);
                // wrk sends one request at a time: one blank line, one answer.
                else if (memmem(bufs + (size_t)slot * BUF, res, "\r\n\r\n", 4))
                    post(&ring, OP_SEND, slot);
                else
                    post(&ring, OP_RECV, slot);
                break;
            case OP_SEND:
                post(&ring, res == (int)response_len ? OP_RECV : OP_CLOSE, slot);
                break;
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: floor_uring PORT BODY_FILE\n");
        return 2;
    }
    port = atoi(argv[1]);
    build_response(argv[2]);
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    pthread_t t[64];
    for (long i = 0; i < ncpu && i < 64; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    pthread_join(t[0], NULL);
    return 0;
}
