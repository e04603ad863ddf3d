/* Open-loop HTTP load: requests leave on a fixed schedule, whatever pace the server keeps.
 *
 * A closed loop (wrk, Locust) sends a connection's next request only after the reply to its last
 * one, so a slower server is offered less load, and a stall delays the requests that would have
 * met it instead of measuring them ("coordinated omission"). Here request i is due at
 * start + i / rate. It leaves on the first idle connection, and its latency counts from when it
 * was due, so any wait for a free connection counts too. Both apps of a comparison then see the
 * same arrivals, and their p99s compare like with like.
 *
 * The requests are those of benchmarks/wrk/chats.lua, read from the same environment: PLAN,
 * ACCOUNT, WORKSPACE, ACCOUNTS, ACCOUNT_PREFIX, CHATS, CHAT_PREFIX, RUN_ID.
 *
 * usage: openloop HOST PORT RATE SECONDS CONNECTIONS
 * Prints one JSON object: counts, the rate achieved, and latency percentiles in milliseconds,
 * both from the scheduled start ("p99_ms") and from the moment the request was written
 * ("service_p99_ms"). Linux only (epoll, timerfd).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX 1024
#define RESPONSE_MAX 65536
#define DRAIN_NS 5000000000LL /* how long replies still due are awaited after the last send */

enum state { CONNECTING, IDLE, BUSY };

typedef struct {
    int fd;
    enum state state;
    int64_t due_ns, sent_ns; /* of the request in flight */
    char request[REQUEST_MAX];
    size_t request_len, written;
    char response[RESPONSE_MAX];
    size_t received;
} connection;

typedef struct {
    const char *plan, *account, *workspace, *account_prefix, *chat_prefix, *run;
    long accounts, chats;
    const char *host;
    int port;
} requests;

static struct sockaddr_in server;
static int epoll_fd;
static connection *connections;
static int connection_count;
static int *idle; /* a FIFO of idle connections, so that each is used and none times out */
static int idle_head, idle_len;
static uint32_t *latency_us, *service_us, *due_us; /* due_us: from the start, for a trace */
static long completed, non2xx, errors, reconnects, late;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fail(const char *what) {
    fprintf(stderr, "openloop: %s: %s\n", what, strerror(errno));
    exit(2);
}

static const char *env(const char *name, const char *fallback) {
    const char *value = getenv(name);
    return value != NULL ? value : fallback;
}

/* Request n (from 1), as chats.lua formats its n-th. */
static size_t format_request(const requests *r, long n, char *out) {
    char id[256], tenant[256];
    long chat = n;
    if (r->chats > 0) {
        chat = n % r->chats;
        snprintf(id, sizeof id, "%s%ld", r->chat_prefix, chat);
    } else {
        snprintf(id, sizeof id, "%s%s-%ld", r->chat_prefix, r->run, n);
    }
    const char *account = r->account, *workspace = r->workspace;
    if (account[0] == '\0') {
        snprintf(tenant, sizeof tenant, "%s%ld", r->account_prefix, chat % r->accounts);
        account = workspace = tenant;
    }
    static const char body[] = "{\"text\": \"hello\"}";
    int length = snprintf(
        out, REQUEST_MAX,
        "POST /v1/chats/%s/messages HTTP/1.1\r\nHost: %s:%d\r\n"
        "Content-Type: application/json\r\nX-Plan: %s\r\nX-Account-ID: %s\r\n"
        "X-Workspace-ID: %s\r\nContent-Length: %zu\r\n\r\n%s",
        id, r->host, r->port, r->plan, account, workspace, sizeof body - 1, body);
    if (length < 0 || length >= REQUEST_MAX) {
        fprintf(stderr, "openloop: request %ld is longer than %d bytes\n", n, REQUEST_MAX);
        exit(2);
    }
    return (size_t)length;
}

static void watch(connection *c, uint32_t events, int op) {
    struct epoll_event event = {.events = events, .data.ptr = c};
    if (epoll_ctl(epoll_fd, op, c->fd, &event) < 0) fail("epoll_ctl");
}

static void open_connection(connection *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) fail("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS)
        fail("connect");
    c->state = CONNECTING;
    c->received = c->written = 0;
    watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void make_idle(connection *c) {
    c->state = IDLE;
    idle[(idle_head + idle_len++) % connection_count] = (int)(c - connections);
    watch(c, EPOLLIN, EPOLL_CTL_MOD); /* an idle socket that reads: the server closed it */
}

static void reopen(connection *c) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    reconnects++;
    open_connection(c);
}

static void write_some(connection *c) {
    while (c->written < c->request_len) {
        ssize_t n = write(c->fd, c->request + c->written, c->request_len - c->written);
        if (n < 0 && errno == EAGAIN) {
            watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
            return;
        }
        if (n <= 0) {
            errors++;
            reopen(c);
            return;
        }
        c->written += (size_t)n;
    }
    watch(c, EPOLLIN, EPOLL_CTL_MOD);
}

static void send_request(const requests *r, long index, int64_t due_ns) {
    connection *c = &connections[idle[idle_head]];
    idle_head = (idle_head + 1) % connection_count;
    idle_len--;
    c->request_len = format_request(r, index + 1, c->request);
    c->due_ns = due_ns;
    c->sent_ns = now_ns();
    if (c->sent_ns - due_ns > 1000000) late++;
    c->state = BUSY;
    c->written = c->received = 0;
    write_some(c);
}

/* Bytes the response needs in all, once its head is in; 0 while the head is incomplete. */
static size_t response_length(connection *c, int *status, int *closing) {
    c->response[c->received] = '\0';
    char *end = strstr(c->response, "\r\n\r\n");
    if (end == NULL) return 0;
    *status = atoi(c->response + 9); /* "HTTP/1.1 200" */
    long body = -1;
    for (char *line = strstr(c->response, "\r\n"); line != NULL && line < end;
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "content-length:", 15) == 0) body = atol(line + 17);
        if (strncasecmp(line + 2, "connection: close", 17) == 0) *closing = 1;
    }
    if (body < 0) {
        fprintf(stderr, "openloop: a response without Content-Length:\n%s\n", c->response);
        exit(2);
    }
    return (size_t)(end + 4 - c->response) + (size_t)body;
}

static void on_readable(connection *c, int64_t start_ns, int64_t end_ns) {
    ssize_t n = read(c->fd, c->response + c->received, RESPONSE_MAX - 1 - c->received);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0 || c->state != BUSY) { /* closed, or bytes nobody asked for */
        if (c->state == BUSY) errors++;
        if (c->state == IDLE) { /* take it out of the idle queue: rebuild without it */
            int kept = 0, self = (int)(c - connections);
            for (int i = 0; i < idle_len; i++) {
                int index = idle[(idle_head + i) % connection_count];
                if (index != self) idle[(idle_head + kept++) % connection_count] = index;
            }
            idle_len = kept;
        }
        reopen(c);
        return;
    }
    c->received += (size_t)n;
    int status = 0, closing = 0;
    size_t needed = response_length(c, &status, &closing);
    if (needed == 0 || c->received < needed) {
        if (c->received >= RESPONSE_MAX - 1) {
            fprintf(stderr, "openloop: a response longer than %d bytes\n", RESPONSE_MAX);
            exit(2);
        }
        return;
    }
    int64_t done = now_ns();
    if (c->due_ns >= start_ns && c->due_ns < end_ns) { /* counted: due inside the window */
        latency_us[completed] = (uint32_t)((done - c->due_ns) / 1000);
        service_us[completed] = (uint32_t)((done - c->sent_ns) / 1000);
        due_us[completed] = (uint32_t)((c->due_ns - start_ns) / 1000);
        completed++;
        if (status < 200 || status > 399) non2xx++;
    }
    if (closing) { /* the server closes it after this reply: open the next one now */
        reopen(c);
        return;
    }
    make_idle(c);
}

static int by_value(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double percentile_ms(uint32_t *sorted, long count, double share) {
    if (count == 0) return -1.0;
    long index = (long)(share * (double)count);
    return sorted[index < count ? index : count - 1] / 1000.0;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: openloop HOST PORT RATE SECONDS CONNECTIONS\n");
        return 2;
    }
    requests r = {
        .plan = env("PLAN", "unlimited"),
        .account = env("ACCOUNT", ""),
        .account_prefix = env("ACCOUNT_PREFIX", "a"),
        .chat_prefix = env("CHAT_PREFIX", "c"),
        .run = env("RUN_ID", "0"),
        .accounts = atol(env("ACCOUNTS", "1")),
        .chats = atol(env("CHATS", "0")),
        .host = argv[1],
        .port = atoi(argv[2]),
    };
    r.workspace = env("WORKSPACE", r.account);
    double rate = atof(argv[3]), seconds = atof(argv[4]);
    connection_count = atoi(argv[5]);
    if (rate <= 0 || seconds <= 0 || connection_count <= 0 || r.accounts <= 0) {
        fprintf(stderr, "openloop: RATE, SECONDS, CONNECTIONS and ACCOUNTS must be positive\n");
        return 2;
    }
    prctl(PR_SET_TIMERSLACK, 1UL); /* wake on the schedule, not up to 50 us after it */
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)r.port);
    if (inet_pton(AF_INET, r.host, &server.sin_addr) != 1) {
        fprintf(stderr, "openloop: HOST must be an IPv4 address: %s\n", r.host);
        return 2;
    }
    long total = (long)(rate * seconds);
    int64_t interval_ns = (int64_t)(1e9 / rate);
    connections = calloc((size_t)connection_count, sizeof *connections);
    idle = calloc((size_t)connection_count, sizeof *idle);
    latency_us = calloc((size_t)total + 1, sizeof *latency_us);
    service_us = calloc((size_t)total + 1, sizeof *service_us);
    due_us = calloc((size_t)total + 1, sizeof *due_us);
    if (!connections || !idle || !latency_us || !service_us || !due_us) fail("calloc");
    epoll_fd = epoll_create1(0);
    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (epoll_fd < 0 || timer < 0) fail("epoll or timerfd");
    struct epoll_event timer_event = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, timer, &timer_event);
    for (int i = 0; i < connection_count; i++) open_connection(&connections[i]);

    int64_t connect_by = now_ns() + 5000000000LL;
    while (idle_len < connection_count) { /* every connection open before the clock starts */
        struct epoll_event events[64];
        int ready = epoll_wait(epoll_fd, events, 64, 100);
        for (int i = 0; i < ready; i++) {
            connection *c = events[i].data.ptr;
            int error = 0;
            socklen_t size = sizeof error;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
            if (error != 0) {
                errno = error;
                fail("connect");
            }
            if (c->state == CONNECTING) make_idle(c);
        }
        if (now_ns() > connect_by) {
            errno = ETIMEDOUT;
            fail("connect");
        }
    }
    reconnects = 0;

    int64_t start_ns = now_ns() + 1000000, end_ns = start_ns + (int64_t)(seconds * 1e9);
    long next = 0; /* the next request to send; it is due at start + next * interval */
    int64_t stop_ns = end_ns + DRAIN_NS;
    while (1) {
        int64_t now = now_ns();
        while (next < total && start_ns + next * interval_ns <= now && idle_len > 0) {
            send_request(&r, next, start_ns + next * interval_ns);
            next++;
        }
        int outstanding = connection_count - idle_len;
        if ((next == total && outstanding == 0) || now > stop_ns) break;
        if (next < total && idle_len > 0) { /* wake when the next one is due */
            int64_t due = start_ns + next * interval_ns;
            struct itimerspec when = {.it_value = {due / 1000000000LL, due % 1000000000LL}};
            timerfd_settime(timer, TFD_TIMER_ABSTIME, &when, NULL);
        }
        struct epoll_event events[64];
        int ready = epoll_wait(epoll_fd, events, 64, 100);
        for (int i = 0; i < ready; i++) {
            connection *c = events[i].data.ptr;
            if (c == NULL) {
                uint64_t expirations;
                if (read(timer, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
                    fail("timerfd");
                continue;
            }
            if (c->state == CONNECTING) {
                if (events[i].events & (EPOLLERR | EPOLLHUP)) fail("reconnect");
                make_idle(c);
            } else if (c->state == BUSY && (events[i].events & EPOLLOUT) &&
                       c->written < c->request_len) {
                write_some(c);
            } else if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                on_readable(c, start_ns, end_ns);
            }
        }
    }

    const char *trace = getenv("OPENLOOP_TRACE");
    if (trace != NULL) { /* every counted request, in the order answered: when due, how long */
        FILE *out = fopen(trace, "w");
        if (out == NULL) fail(trace);
        fprintf(out, "due_us latency_us service_us\n");
        for (long i = 0; i < completed; i++)
            fprintf(out, "%u %u %u\n", due_us[i], latency_us[i], service_us[i]);
        fclose(out);
    }
    long unanswered = (next - completed) > 0 ? next - completed : 0;
    double window = (double)(end_ns - start_ns) / 1e9;
    qsort(latency_us, (size_t)completed, sizeof *latency_us, by_value);
    qsort(service_us, (size_t)completed, sizeof *service_us, by_value);
    printf("{\"scheduled\": %ld, \"sent\": %ld, \"completed\": %ld, \"unanswered\": %ld, "
           "\"non2xx\": %ld, \"errors\": %ld, \"reconnects\": %ld, \"late_sends\": %ld, "
           "\"rate\": %.1f, \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, "
           "\"p999_ms\": %.3f, \"max_ms\": %.3f, \"service_p50_ms\": %.3f, "
           "\"service_p99_ms\": %.3f}\n",
           total, next, completed, unanswered, non2xx, errors, reconnects, late,
           (double)completed / window, percentile_ms(latency_us, completed, 0.50),
           percentile_ms(latency_us, completed, 0.90), percentile_ms(latency_us, completed, 0.99),
           percentile_ms(latency_us, completed, 0.999),
           percentile_ms(latency_us, completed, 1.0), percentile_ms(service_us, completed, 0.50),
           percentile_ms(service_us, completed, 0.99));
    return 0;
}
