// The cheapest HTTP/1.1 keep-alive server we can write with epoll, to
// measure what load.sh's keep-alive cases cost below any real server: the
// kernel's part on this machine. Not a server: it knows two files (see
// floor.h). Level-triggered epoll, one recv per request, the small file in
// one send, the large one as a head sent with MSG_MORE and sendfile in turns
// of SEND_TURN bytes (oserver's turn), waiting for EPOLLOUT when the socket
// is full.
//
// usage: floor_epoll PORT SMALL_URL SMALL_FILE [LARGE_URL LARGE_FILE]
//        (benches/load.sh builds and starts it as floor-epoll)
#include "floor.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>

// Bytes of a large body sent to one connection before the others get a turn.
#define SEND_TURN (512 * 1024)
// File descriptors this process may have: the per-connection table's size.
#define MAX_FDS 65536

// A connection, by file descriptor: where its large body is.
struct conn {
    off_t off;    // bytes of the large body sent
    bool sending; // a large body is being sent
    bool out;     // EPOLLOUT is in the connection's interest set
};

// Sends the next turn of the large body: 1 when it is all sent, 0 when more
// is to come, -1 on an error.
static int send_turn(int fd, int file, struct conn *c) {
    size_t budget = SEND_TURN;
    while (c->off < large_size && budget > 0) {
        size_t want = (size_t)(large_size - c->off) < budget ? (size_t)(large_size - c->off) : budget;
        ssize_t n = sendfile(fd, file, &c->off, want);
        if (n < 0) return errno == EAGAIN ? 0 : -1;
        if (n == 0) return -1; // the file shrank
        budget -= (size_t)n;
    }
    return c->off == large_size;
}

static void interest(int ep, int fd, struct conn *c, bool out) {
    if (c->out == out) return;
    struct epoll_event e = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
    c->out = out;
}

static void serve(const struct floor_args *a, int cpu) {
    int lfd = floor_listener(a->port, cpu, 1);
    int file = a->large_file ? open(a->large_file, O_RDONLY | O_CLOEXEC) : -1;
    if (a->large_file && file < 0) die(a->large_file);
    struct conn *conns = calloc(MAX_FDS, sizeof *conns);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[256];
    char buf[4096];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    if (c >= MAX_FDS) {
                        close(c);
                        continue;
                    }
                    conns[c] = (struct conn){0};
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            struct conn *c = &conns[fd];
            int done = 1;
            if (c->sending) {
                done = send_turn(fd, file, c);
            } else {
                ssize_t r = recv(fd, buf, sizeof buf, 0);
                if (r < 0 && errno == EAGAIN) continue;
                if (r <= 0) goto close;
                if (memmem(buf, (size_t)r, "\r\n\r\n", 4) == NULL) continue;
                switch (target_of(a, buf, (size_t)r)) {
                case SMALL:
                    if (send(fd, response, response_len, MSG_NOSIGNAL) != (ssize_t)response_len) goto close;
                    continue;
                case LARGE:
                    if (send(fd, large_head, large_head_len, MSG_NOSIGNAL | MSG_MORE) != (ssize_t)large_head_len)
                        goto close;
                    c->off = 0;
                    c->sending = true;
                    done = send_turn(fd, file, c);
                    break;
                case OTHER:
                    goto close;
                }
            }
            if (done < 0) goto close;
            c->sending = !done;
            interest(ep, fd, c, !done);
            continue;
        close:
            close(fd);
        }
    }
}

int main(int argc, char **argv) {
    struct floor_args a = floor_setup(argc, argv, 1);
    floor_run(&a, serve);
    return 0;
}
