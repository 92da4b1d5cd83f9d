/* Load generator for the echo benchmark: CONNS connections in ping-pong.
 *
 * usage: echo_load PORT CONNS SIZE WARMUP DURATION
 * Each connection sends SIZE bytes, waits until all SIZE bytes have come
 * back, and sends again (one message in flight per connection). After
 * WARMUP seconds it prints "START", after DURATION more seconds
 * "STOP <round trips> <seconds>", then keeps the load on until its stdin is
 * closed, so that the caller can read the server's CPU time at both marks.
 * One thread, edge-triggered epoll, non-blocking sockets.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    size_t sent, got; /* bytes of the current message */
};

static char *msg, *rbuf;
static size_t size;
static long long trips;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Push the rest of the current message; -1 on error. */
static int pump_send(struct conn *c) {
    while (c->sent < size) {
        ssize_t n = send(c->fd, msg + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->sent += (size_t)n;
    }
    return 0;
}

/* Read until EAGAIN; each complete echo starts the next message. */
static int pump_recv(struct conn *c) {
    for (;;) {
        ssize_t n = recv(c->fd, rbuf, size, 0);
        if (n == 0) return -1;
        if (n < 0) return errno == EAGAIN ? 0 : errno == EINTR ? 0 : -1;
        c->got += (size_t)n;
        if (c->got > c->sent) return -1; /* more than we sent: a broken server */
        if (c->got == size) {
            trips++;
            c->got = c->sent = 0;
            if (pump_send(c) < 0) return -1;
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: echo_load PORT CONNS SIZE WARMUP DURATION\n");
        return 2;
    }
    int port = atoi(argv[1]), nconn = atoi(argv[2]);
    size = (size_t)atol(argv[3]);
    double warmup = atof(argv[4]), duration = atof(argv[5]);
    msg = malloc(size);
    rbuf = malloc(size);
    memset(msg, 'x', size);
    int ep = epoll_create1(0);
    struct conn *cs = calloc((size_t)nconn, sizeof *cs);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    for (int i = 0; i < nconn; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
            perror("echo_load: connect");
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        cs[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = NULL}; /* stdin: EOF ends the run */
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev);
    double t0 = now(), start = t0 + warmup, stop = start + duration, began = 0;
    long long trips0 = 0;
    int phase = 0;
    struct epoll_event evs[1024];
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                char b[64];
                if (read(0, b, sizeof b) <= 0) return 0;
                continue;
            }
            if ((evs[i].events & EPOLLOUT) && pump_send(c) < 0) goto broken;
            if ((evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && pump_recv(c) < 0) goto broken;
            continue;
        broken:
            fprintf(stderr, "echo_load: connection %d failed (%s)\n", (int)(c - cs), strerror(errno));
            return 1;
        }
        double t = now();
        if (phase == 0 && t >= start) {
            phase = 1;
            began = t;
            trips0 = trips;
            printf("START\n");
            fflush(stdout);
        } else if (phase == 1 && t >= stop) {
            phase = 2;
            printf("STOP %lld %.6f\n", trips - trips0, t - began);
            fflush(stdout);
        }
    }
}
