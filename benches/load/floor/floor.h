// Shared by floor_epoll.c and floor_uring.c: the fixed response, and the
// thread placement oserver's defaults choose on 127.0.0.1.
#pragma once
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char response[1024];
static size_t response_len;

// The status line and headers oserver sends for a ~100 B file (the Server
// value padded to oserver's length), then the file. The date is fixed: a
// real server formats it once a second, which is nothing per request.
static void build_response(const char *body_path) {
    FILE *f = fopen(body_path, "rb");
    if (!f) {
        perror(body_path);
        exit(1);
    }
    char body[512];
    size_t n = fread(body, 1, sizeof body, f);
    fclose(f);
    int h = snprintf(response, sizeof response,
                     "HTTP/1.1 200 OK\r\nServer: floor/0.1.000\r\n"
                     "Date: Tue, 01 Dec 2026 12:00:00 GMT\r\nContent-Type: text/html\r\n"
                     "Last-Modified: Tue, 01 Dec 2026 09:56:08 GMT\r\nETag: \"6b0e99b8-64\"\r\n"
                     "Accept-Ranges: bytes\r\nContent-Length: %zu\r\n\r\n",
                     n);
    if (h < 0 || (size_t)h + n > sizeof response) {
        fprintf(stderr, "body too large\n");
        exit(1);
    }
    memcpy(response + h, body, n);
    response_len = (size_t)h + n;
}

static void place_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set)) perror("sched_setaffinity");
    struct sched_param p = {0};
    if (sched_setscheduler(0, SCHED_BATCH, &p)) perror("SCHED_BATCH");
}
