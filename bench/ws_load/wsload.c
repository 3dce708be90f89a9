/* wsload: a small epoll WebSocket load generator for bench/ws_bench.py.
 *
 * One thread, non-blocking sockets, level-triggered epoll.  Client frames are
 * built (and masked) once per connection, so sending a message costs a
 * memcpy into the output buffer and a write(); every echoed byte is parsed
 * (any fragmentation, Ping answered with Pong) and checked against what was
 * sent: opcode (text stays text, binary stays binary), length and payload.
 *
 *   wsload --port P [--host 127.0.0.1] [--path /ws] --mode MODE
 *          [--conns N] [--size BYTES] [--depth N] [--duration S]
 *          [--text|--binary] [--raw] [--timeout S]
 *
 * MODE:
 *   pingpong   N connections, one message in flight each
 *   pipeline   N connections, --depth messages in flight each
 *   big        like pingpong (use --conns 1 and a large --size)
 *   handshake  N parallel loops of connect, upgrade, one echo, close (wait for EOF)
 *   idle       open N connections (upgrade + one echo each, at most 128 opening
 *              at once), print "READY n" and hold them, answering Pings, until
 *              stdin is closed or gets a line; then close them all
 *
 * --raw: no HTTP upgrade (for a plain TCP echo server): the masked frames come
 * back as they were sent and are parsed and checked the same way.
 *
 * Prints one JSON line: messages (echoes completed inside the measured window;
 * handshake: connect-to-close cycles), bytes (payload bytes echoed), elapsed
 * (seconds, up to the last completion), errors, conns (open at the start of
 * the window), client_cpu (our user + system seconds) and wall (our lifetime).  Exit status 0 unless nothing worked.
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
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* RFC 6455 §1.3's example key and its accept value. */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define READ_SIZE (256 * 1024)
#define IDLE_OPENING 128

enum mode { PINGPONG, PIPELINE, BIG, HANDSHAKE, IDLE };
enum cstate { C_FREE, C_CONNECTING, C_UPGRADING, C_OPEN, C_CLOSING };

typedef struct {
    char *data;
    size_t head, len, cap;
} buf_t;

typedef struct {
    int fd;
    enum cstate state;
    int want_out;       /* EPOLLOUT registered */
    buf_t out;          /* bytes to write */
    buf_t hs;           /* handshake response bytes */
    /* frame parser */
    unsigned char hdr[14];
    size_t hdr_have, hdr_need;
    uint64_t payload_left;
    int opcode, fin, masked;
    unsigned char key[4];
    uint64_t frame_off;
    unsigned char ctrl[125];
    size_t ctrl_len;
    /* message in progress */
    int msg_opcode;
    uint64_t msg_off;
    int msg_bad;
    /* traffic */
    long inflight;
    long echoed;        /* completed echoes on this connection */
    int close_recv;
    int ready;          /* counted in n_ready: open (idle: and echoed once) */
} conn_t;

static enum mode mode = PINGPONG;
static const char *host = "127.0.0.1", *path = "/ws";
static int port = 0, nconns = 1, text = 0, raw = 0;
static long depth = 1;
static size_t size = 32;
static double duration = 5.0, timeout_s = 10.0;

static int epfd;
static conn_t *conns;
static unsigned char *payload;     /* the message */
static unsigned char *frame;       /* one masked client frame carrying it */
static size_t frame_len;
static unsigned char mask_key[4] = {0x37, 0xfa, 0x21, 0x3d};
static struct sockaddr_in addr;

static long total_messages = 0, total_errors = 0, window_open = 0;
static long n_live = 0, n_ready = 0; /* connections not FREE; ready ones */
static double t_start = 0, t_end = 0, t_last = 0, t_begin = 0;
static unsigned long long total_bytes = 0;
/* 0: opening (echo, do not count), 1: in the window, 2: draining (no new messages) */
static int phase = 0;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void buf_reserve(buf_t *b, size_t extra) {
    if (b->head && b->head == b->len) b->head = b->len = 0;
    if (b->len + extra <= b->cap) return;
    if (b->head) {  /* compact first */
        memmove(b->data, b->data + b->head, b->len - b->head);
        b->len -= b->head;
        b->head = 0;
        if (b->len + extra <= b->cap) return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    b->data = realloc(b->data, cap);
    if (!b->data) die("realloc");
    b->cap = cap;
}

static void buf_append(buf_t *b, const void *p, size_t n) {
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_free(buf_t *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* A masked client frame: header + payload ^ key. */
static size_t build_frame(unsigned char *dst, int opcode, const unsigned char *p, size_t n) {
    size_t h = 0;
    dst[h++] = 0x80 | opcode;
    if (n < 126) {
        dst[h++] = 0x80 | n;
    } else if (n < 65536) {
        dst[h++] = 0x80 | 126;
        dst[h++] = n >> 8;
        dst[h++] = n & 0xff;
    } else {
        dst[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) dst[h++] = ((uint64_t)n >> (8 * i)) & 0xff;
    }
    memcpy(dst + h, mask_key, 4);
    h += 4;
    for (size_t i = 0; i < n; i++) dst[h + i] = p[i] ^ mask_key[i & 3];
    return h + n;
}

static void set_events(conn_t *c, int want_out) {
    if (c->want_out == want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl mod");
    c->want_out = want_out;
}

static void conn_reset(conn_t *c) {
    buf_free(&c->out);
    buf_free(&c->hs);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->state = C_FREE;
}

static void conn_drop(conn_t *c) {
    if (c->state != C_FREE) n_live--;
    if (c->ready) n_ready--;
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    conn_reset(c);
}

static void conn_error(conn_t *c, const char *why) {
    if (total_errors < 5) fprintf(stderr, "wsload: connection error: %s\n", why);
    total_errors++;
    conn_drop(c);
}

/* Write what we can; 0 on success, -1 if the connection failed. */
static int flush_out(conn_t *c) {
    buf_t *b = &c->out;
    while (b->head < b->len) {
        ssize_t n = write(c->fd, b->data + b->head, b->len - b->head);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            return -1;
        }
        b->head += (size_t)n;
    }
    if (b->head == b->len) b->head = b->len = 0;
    set_events(c, b->len > 0);
    return 0;
}

static void send_messages(conn_t *c, long k) {
    if (k <= 0) return;
    buf_reserve(&c->out, frame_len * (size_t)k);
    for (long i = 0; i < k; i++) {
        memcpy(c->out.data + c->out.len, frame, frame_len);
        c->out.len += frame_len;
    }
    c->inflight += k;
}

static void send_close(conn_t *c) {
    c->state = C_CLOSING;
    if (raw) {
        flush_out(c);
        shutdown(c->fd, SHUT_WR);
        return;
    }
    unsigned char body[2] = {0x03, 0xe8}, f[16];
    size_t n = build_frame(f, 0x8, body, 2);
    buf_append(&c->out, f, n);
}

static int conn_open(conn_t *c) {
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        c->fd = -1;
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->state = C_CONNECTING;
    c->hdr_need = 2;
    n_live++;
    int r = connect(c->fd, (struct sockaddr *)&addr, sizeof addr);
    if (r < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        c->state = C_FREE;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl add");
    c->want_out = 1;
    return 0;
}

/* The connection is usable: first messages. */
static void on_open(conn_t *c) {
    c->state = C_OPEN;
    c->hdr_need = 2;
    if (mode != IDLE) c->ready = 1, n_ready++;
    long first = mode == PIPELINE ? depth : 1;
    send_messages(c, first);
}

static void on_connected(conn_t *c) {
    if (raw) {
        on_open(c);
        return;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, host, port);
    buf_append(&c->out, req, (size_t)n);
    c->state = C_UPGRADING;
}

/* A whole echoed message arrived. Returns -1 if the connection was dropped. */
static int on_message(conn_t *c, double t) {
    c->inflight--;
    c->echoed++;
    if (mode == HANDSHAKE) {  /* counted when the closing handshake is over */
        send_close(c);
        return 0;
    }
    if (phase == 1 && t <= t_end) {
        total_messages++;
        total_bytes += size;
        t_last = t;
    }
    switch (mode) {
    case PINGPONG:
    case BIG:
    case PIPELINE:
        if (phase == 0 || (phase == 1 && t < t_end)) send_messages(c, 1);
        else if (c->inflight == 0) send_close(c);
        break;
    case HANDSHAKE:
        break;
    case IDLE:
        if (!c->ready) c->ready = 1, n_ready++;
        break;  /* hold it */
    }
    return 0;
}

/* XOR with the mask key, 8 bytes at a time; off is the offset in the frame's payload. */
static void unmask(unsigned char *p, size_t n, const unsigned char key[4], uint64_t off) {
    size_t i = 0;
    for (; i < n && ((off + i) & 3); i++) p[i] ^= key[(off + i) & 3];
    unsigned char kk[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    uint64_t k, w;
    memcpy(&k, kk, 8);
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        w ^= k;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++) p[i] ^= key[(off + i) & 3];
}

/* Parse echoed bytes. Returns -1 on a protocol/echo error (connection dropped). */
static int parse(conn_t *c, unsigned char *p, size_t n, double t) {
    while (n > 0) {
        if (c->hdr_have < c->hdr_need) {
            size_t take = c->hdr_need - c->hdr_have;
            if (take > n) take = n;
            memcpy(c->hdr + c->hdr_have, p, take);
            c->hdr_have += take;
            p += take;
            n -= take;
            if (c->hdr_have < c->hdr_need) return 0;
            if (c->hdr_need == 2) {
                int len7 = c->hdr[1] & 0x7f;
                c->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((c->hdr[1] & 0x80) ? 4 : 0);
                if (c->hdr_have < c->hdr_need) continue;
            }
            /* full header */
            c->fin = c->hdr[0] >> 7;
            c->opcode = c->hdr[0] & 0x0f;
            c->masked = c->hdr[1] >> 7;
            int len7 = c->hdr[1] & 0x7f;
            size_t h = 2;
            uint64_t len = len7;
            if (len7 == 126) {
                len = ((uint64_t)c->hdr[2] << 8) | c->hdr[3];
                h = 4;
            } else if (len7 == 127) {
                len = 0;
                for (int i = 0; i < 8; i++) len = (len << 8) | c->hdr[2 + i];
                h = 10;
            }
            if (c->masked) memcpy(c->key, c->hdr + h, 4);
            if (c->masked != raw) {
                conn_error(c, raw ? "echo lost the mask bit" : "server frame is masked");
                return -1;
            }
            c->payload_left = len;
            c->frame_off = 0;
            c->ctrl_len = 0;
            if (c->opcode >= 8) {
                if (len > 125 || !c->fin) {
                    conn_error(c, "bad control frame");
                    return -1;
                }
            } else if (c->opcode == 0) {
                if (!c->msg_opcode) {
                    conn_error(c, "continuation without a message");
                    return -1;
                }
            } else {
                if (c->msg_opcode) {
                    conn_error(c, "new message inside a message");
                    return -1;
                }
                c->msg_opcode = c->opcode;
                c->msg_off = 0;
                c->msg_bad = (c->opcode != (text ? 1 : 2));
            }
        }
        /* payload */
        size_t take = c->payload_left < n ? (size_t)c->payload_left : n;
        if (c->masked) unmask(p, take, c->key, c->frame_off);
        if (c->opcode >= 8) {
            memcpy(c->ctrl + c->ctrl_len, p, take);
            c->ctrl_len += take;
        } else {
            if (c->msg_off + take > size || memcmp(p, payload + c->msg_off, take) != 0) c->msg_bad = 1;
            c->msg_off += take;
        }
        c->frame_off += take;
        c->payload_left -= take;
        p += take;
        n -= take;
        if (c->payload_left > 0) return 0;
        /* frame complete */
        c->hdr_have = 0;
        c->hdr_need = 2;
        if (c->opcode == 0x9 && !raw) {  /* Ping → Pong */
            if (c->state != C_CLOSING) {
                unsigned char f[140];
                size_t fl = build_frame(f, 0xA, c->ctrl, c->ctrl_len);
                buf_append(&c->out, f, fl);
            }
        } else if (c->opcode == 0x8) {
            c->close_recv = 1;
            if (!raw && c->state != C_CLOSING) {  /* the server closes first: echo its Close */
                unsigned char f[140];
                size_t fl = build_frame(f, 0x8, c->ctrl, c->ctrl_len >= 2 ? 2 : 0);
                buf_append(&c->out, f, fl);
                c->state = C_CLOSING;
                if (mode != HANDSHAKE || c->echoed == 0) {
                    conn_error(c, "server sent Close");
                    return -1;
                }
            }
        } else if (c->opcode < 8 && c->fin) {
            int bad = c->msg_bad || c->msg_off != size;
            c->msg_opcode = 0;
            if (bad) {
                conn_error(c, "echo differs from the message sent (opcode, length or payload)");
                return -1;
            }
            if (on_message(c, t) < 0) return -1;
        }
    }
    return 0;
}

/* Read the 101; returns bytes of the buffer after the head (moved to *rest), or -1. */
static int handle_upgrade(conn_t *c, unsigned char *p, size_t n, size_t *consumed) {
    buf_append(&c->hs, p, n);
    c->hs.data[c->hs.len] = 0;  /* buf has room: reserve below */
    char *s = c->hs.data;
    char *end = memmem(s, c->hs.len, "\r\n\r\n", 4);
    if (!end) {
        if (c->hs.len > 8192) return -1;
        *consumed = n;
        return 0;
    }
    size_t head_len = (size_t)(end - s) + 4;
    if (strncmp(s, "HTTP/1.1 101", 12) != 0 || !memmem(s, head_len, WS_ACCEPT, strlen(WS_ACCEPT))) return -1;
    if (strcasestr(s, "sec-websocket-extensions") && (size_t)(strcasestr(s, "sec-websocket-extensions") - s) < head_len)
        return -1;  /* we offered none */
    size_t before = c->hs.len - n;  /* bytes of hs from earlier reads */
    *consumed = head_len - before;
    buf_free(&c->hs);
    on_open(c);
    return 1;
}

static unsigned char rbuf[READ_SIZE + 1];

static void handle_event(conn_t *c, uint32_t events, double t) {
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            conn_error(c, strerror(err));
            return;
        }
        if (!(events & (EPOLLOUT | EPOLLIN))) return;
        on_connected(c);
        if (flush_out(c) < 0) conn_error(c, "write failed");
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t n = read(c->fd, rbuf, READ_SIZE);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                if (c->state == C_CLOSING) {
                    conn_drop(c);
                    return;
                }
                conn_error(c, strerror(errno));
            }
            return;
        }
        if (n == 0) {  /* EOF */
            if (c->state == C_CLOSING) {
                conn_drop(c);
                if (mode == HANDSHAKE && phase == 1 && t <= t_end) {
                    total_messages++;
                    total_bytes += size;
                    t_last = t;
                }
            } else {
                conn_error(c, "server closed the connection");
            }
            return;
        }
        unsigned char *p = rbuf;
        size_t len = (size_t)n;
        if (c->state == C_UPGRADING) {
            size_t used = 0;
            buf_reserve(&c->hs, len + 1);
            int r = handle_upgrade(c, p, len, &used);
            if (r < 0) {
                conn_error(c, "bad upgrade response");
                return;
            }
            p += used;
            len -= used;
        }
        if (len && c->state != C_UPGRADING && parse(c, p, len, t) < 0) return;
    }
    if (c->fd >= 0 && flush_out(c) < 0) {
        if (c->state == C_CLOSING) conn_drop(c);
        else conn_error(c, "write failed");
    }
}

static int poll_once(int ms) {
    struct epoll_event evs[256];
    int n = epoll_wait(epfd, evs, 256, ms);
    if (n < 0) {
        if (errno == EINTR) return 0;
        die("epoll_wait");
    }
    double t = now();
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == NULL) return -1;  /* stdin */
        handle_event((conn_t *)evs[i].data.ptr, evs[i].events, t);
    }
    return n;
}

static void close_idle_open(void) {
    for (int i = 0; i < nconns; i++) {
        conn_t *c = &conns[i];
        if (c->state == C_OPEN && c->inflight == 0) {
            send_close(c);
            if (flush_out(c) < 0) conn_drop(c);
        }
    }
}

static void close_all(double limit) {
    close_idle_open();
    double deadline = now() + limit, next_scan = now() + 0.05;
    while (n_live > 0 && now() < deadline) {
        poll_once(50);
        if (now() >= next_scan) {  /* pipelined echoes drained: close those too */
            close_idle_open();
            next_scan = now() + 0.05;
        }
    }
    for (int i = 0; i < nconns; i++)
        if (conns[i].state != C_FREE) conn_drop(&conns[i]);
}

static void report(void) {
    double elapsed = (mode == BIG ? t_last : t_end) - t_start;
    if (elapsed <= 0) elapsed = t_end - t_start;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("{\"messages\": %ld, \"bytes\": %llu, \"elapsed\": %.6f, \"errors\": %ld, \"conns\": %ld, "
           "\"client_cpu\": %.3f, \"wall\": %.3f}\n",
           total_messages, total_bytes, elapsed, total_errors, window_open, cpu, now() - t_begin);
    fflush(stdout);
}

static void usage(void) {
    fprintf(stderr, "usage: wsload --port P --mode pingpong|pipeline|big|handshake|idle [--conns N] "
                    "[--size B] [--depth N] [--duration S] [--text|--binary] [--raw] [--path P]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--text")) text = 1;
        else if (!strcmp(a, "--binary")) text = 0;
        else if (!strcmp(a, "--raw")) raw = 1;
        else if (!v) usage();
        else if (!strcmp(a, "--port")) port = atoi(v), i++;
        else if (!strcmp(a, "--host")) host = v, i++;
        else if (!strcmp(a, "--path")) path = v, i++;
        else if (!strcmp(a, "--conns")) nconns = atoi(v), i++;
        else if (!strcmp(a, "--size")) size = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--depth")) depth = atol(v), i++;
        else if (!strcmp(a, "--duration")) duration = atof(v), i++;
        else if (!strcmp(a, "--timeout")) timeout_s = atof(v), i++;
        else if (!strcmp(a, "--mode")) {
            i++;
            if (!strcmp(v, "pingpong")) mode = PINGPONG;
            else if (!strcmp(v, "pipeline")) mode = PIPELINE;
            else if (!strcmp(v, "big")) mode = BIG;
            else if (!strcmp(v, "handshake")) mode = HANDSHAKE;
            else if (!strcmp(v, "idle")) mode = IDLE;
            else usage();
        } else usage();
    }
    if (!port || nconns < 1 || depth < 1) usage();
    t_begin = now();
    if (raw && (mode == HANDSHAKE || mode == IDLE)) {
        fprintf(stderr, "wsload: --raw has no handshake to measure\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) usage();

    /* The message: printable ASCII (valid UTF-8 for text), a pattern that shows offsets. */
    payload = malloc(size ? size : 1);
    for (size_t i = 0; i < size; i++) payload[i] = (unsigned char)('a' + (i * 7 + i / 251) % 26);
    frame = malloc(size + 14);
    frame_len = build_frame(frame, text ? 1 : 2, payload, size);

    epfd = epoll_create1(0);
    if (epfd < 0) die("epoll_create1");
    conns = calloc((size_t)nconns, sizeof *conns);
    for (int i = 0; i < nconns; i++) conns[i].fd = -1;

    if (mode == HANDSHAKE) {
        phase = 1;
        t_start = now();
        t_end = t_start + duration;
        for (int i = 0; i < nconns; i++)
            if (conn_open(&conns[i]) < 0) total_errors++;
        while (now() < t_end) {
            poll_once(10);
            for (int i = 0; i < nconns; i++)
                if (conns[i].state == C_FREE && now() < t_end && conn_open(&conns[i]) < 0) total_errors++;
        }
        window_open = nconns;
        phase = 2;
        close_all(3.0);
        report();
        return total_messages ? 0 : 1;
    }

    /* Open every connection (upgrade; idle: and one echo), at most IDLE_OPENING at once for idle. */
    double deadline = now() + timeout_s;
    int started = 0;
    int limit = mode == IDLE ? IDLE_OPENING : nconns;
    while (now() < deadline) {
        while (started < nconns && n_live - n_ready < limit) {
            if (conn_open(&conns[started]) < 0) total_errors++;
            started++;
        }
        if (started == nconns && n_ready + total_errors >= nconns) break;
        if (started == nconns && n_live == n_ready) break;  /* the rest failed */
        poll_once(10);
    }
    window_open = n_ready;
    if (window_open == 0) {
        fprintf(stderr, "wsload: no connection could be opened\n");
        report();
        return 1;
    }

    if (mode == IDLE) {
        printf("READY %ld\n", n_ready);
        fflush(stdout);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
        double hold_until = now() + 600;
        while (now() < hold_until && poll_once(1000) >= 0) {
        }
        epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
        total_messages = n_ready;  /* still open after the hold */
        close_all(10.0);
        report();
        return 0;
    }

    /* The first messages went out on open: count from here. */
    phase = 1;
    t_start = now();
    t_end = t_start + duration;
    t_last = t_start;
    while (now() < t_end) poll_once(10);
    phase = 2;
    close_all(mode == BIG ? timeout_s : 3.0);
    report();
    return total_messages ? 0 : 1;
}
