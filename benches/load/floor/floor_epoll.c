// The cheapest HTTP/1.1 keep-alive server we can write with epoll, to measure
// what case (a) of benches/load.sh costs below any real server: the kernel's
// part of a request on this machine. Not a server: it answers every request
// with one fixed response (the same status line and headers oserver sends for
// httptest/test.html), reads each request with one recv and never parses
// beyond finding the blank line. It places itself as oserver's defaults do on
// 127.0.0.1: one thread per CPU, pinned, SCHED_BATCH, and one SO_REUSEPORT
// listener per thread with SO_INCOMING_CPU, so a connection is accepted by the
// thread on the CPU that handled its SYN (the client's).
//
// usage: floor_epoll PORT BODY_FILE    (benches/load.sh builds and starts it as floor-epoll)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor.h"

static int port;

static int listener(int cpu) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
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

static void *worker(void *arg) {
    int cpu = (int)(long)arg;
    place_thread(cpu);
    int lfd = listener(cpu);
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
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                close(fd);
                continue;
            }
            // wrk sends one request at a time: one blank line, one answer.
            if (memmem(buf, r, "\r\n\r\n", 4) == NULL) continue;
            if (send(fd, response, response_len, 0) != (ssize_t)response_len) close(fd);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: floor_epoll PORT BODY_FILE\n");
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
