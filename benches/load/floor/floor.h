// What floor_epoll.c and floor_uring.c share: their arguments, the fixed
// responses, the listener, and one pinned process per CPU, placed as
// oserver's defaults place their workers on 127.0.0.1.
//
// A floor answers a request for SMALL_URL with SMALL_FILE's bytes behind
// the status line and headers oserver sends (the Server value padded to
// oserver's length; the date fixed: a real server formats it once a second,
// which is nothing per request), a request for LARGE_URL (when it serves
// one) with the same head and LARGE_FILE by sendfile, and closes the
// connection on anything else. It looks at a request only to find its
// target and its blank line: wrk sends one request at a time.
#pragma once
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct floor_args {
    int port;
    const char *small_url, *small_file, *large_url, *large_file; // large_*: NULL when not served
};

enum target { SMALL, LARGE, OTHER };

// The whole response for the small file.
static char response[1024];
static size_t response_len;
// The head for the large file, and its size.
static char large_head[512];
static size_t large_head_len;
static off_t large_size;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static size_t head_for(char *buf, size_t cap, off_t len) {
    int h = snprintf(buf, cap,
                     "HTTP/1.1 200 OK\r\nServer: floor/0.1.000\r\n"
                     "Date: Tue, 01 Dec 2026 12:00:00 GMT\r\nContent-Type: text/html\r\n"
                     "Last-Modified: Tue, 01 Dec 2026 09:56:08 GMT\r\nETag: \"6b0e99b8-64\"\r\n"
                     "Accept-Ranges: bytes\r\nContent-Length: %lld\r\n\r\n",
                     (long long)len);
    if (h < 0 || (size_t)h >= cap) {
        fprintf(stderr, "head too long\n");
        exit(1);
    }
    return (size_t)h;
}

// Parses `PORT SMALL_URL SMALL_FILE [LARGE_URL LARGE_FILE]` (exit 2 on
// anything else) and builds the responses.
static struct floor_args floor_setup(int argc, char **argv, int large_ok) {
    if (argc != 4 && !(large_ok && argc == 6)) {
        fprintf(stderr, "usage: %s PORT SMALL_URL SMALL_FILE%s\n", argv[0],
                large_ok ? " [LARGE_URL LARGE_FILE]" : "");
        exit(2);
    }
    struct floor_args a = {atoi(argv[1]), argv[2], argv[3], argc == 6 ? argv[4] : NULL,
                           argc == 6 ? argv[5] : NULL};
    FILE *f = fopen(a.small_file, "rb");
    if (!f) die(a.small_file);
    char body[512];
    size_t n = fread(body, 1, sizeof body, f);
    fclose(f);
    size_t h = head_for(response, sizeof response, (off_t)n);
    if (h + n > sizeof response) {
        fprintf(stderr, "%s: too large for the fixed response\n", a.small_file);
        exit(1);
    }
    memcpy(response + h, body, n);
    response_len = h + n;
    if (a.large_file) {
        struct stat st;
        if (stat(a.large_file, &st)) die(a.large_file);
        large_size = st.st_size;
        large_head_len = head_for(large_head, sizeof large_head, large_size);
    }
    return a;
}

// What a request asks for: its line must be `GET <url> ...`.
static enum target target_of(const struct floor_args *a, const char *req, size_t len) {
    if (len < 4 || memcmp(req, "GET ", 4) != 0) return OTHER;
    const char *urls[2] = {a->small_url, a->large_url};
    for (int i = 0; i < 2; i++) {
        size_t u = urls[i] ? strlen(urls[i]) : 0;
        if (u && len > 4 + u && memcmp(req + 4, urls[i], u) == 0 && req[4 + u] == ' ')
            return i == 0 ? SMALL : LARGE;
    }
    return OTHER;
}

// This CPU's listener: its own SO_REUSEPORT socket with SO_INCOMING_CPU, so
// the kernel hands it the connections whose SYN this CPU handled (the
// client's CPU), and TCP_NODELAY, which accepted sockets inherit (as
// oserver's).
static int floor_listener(int port, int cpu, int nonblocking) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, sizeof cpu);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 4096)) die("bind/listen");
    return fd;
}

// One process per CPU, as oserver's workers are processes (each floor
// process has one thread, so no other thread shares its file table), pinned
// to it and SCHED_BATCH; the caller's process serves CPU 0. A child dies
// with its parent.
static void floor_run(const struct floor_args *a, void (*serve)(const struct floor_args *, int cpu)) {
    signal(SIGPIPE, SIG_IGN);
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN), cpu = 0;
    pid_t parent = getpid();
    for (int i = 1; i < ncpu; i++) {
        pid_t p = fork();
        if (p < 0) die("fork");
        if (p == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) exit(1);
            cpu = i;
            break;
        }
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set)) perror("sched_setaffinity");
    struct sched_param p = {0};
    if (sched_setscheduler(0, SCHED_BATCH, &p)) perror("SCHED_BATCH");
    serve(a, cpu);
}
