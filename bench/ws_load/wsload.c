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
 * --deflate: offer "permessage-deflate; client_max_window_bits" (RFC 7692) and
 * require it in the 101; honour the answer's server_/client_no_context_takeover
 * and client_max_window_bits.  Every message we send is compressed (zlib raw
 * deflate, level --zlevel (1), the 00 00 ff ff tail stripped, RSV1 set);
 * echoes are accepted compressed (RSV1: inflated with the tail appended) or
 * not, and compared with what was sent after inflation.  The messages are then
 * "realistic" instead of one repeated pattern: a pool of distinct messages
 * (1 MiB of them, at least 64, when --size <= 64 KiB; else 2) sent in turn, so
 * that no message repeats within a deflate window; text = JSON-like records of
 * words from a 64-word vocabulary and numbers, binary = 16 random bytes then
 * 16 bytes of that text, alternately (about half incompressible).
 *
 * --tls [--cafile PEM]: TLS (OpenSSL) under the WebSocket (wss://), the
 * server's certificate checked against PEM (for the IP --host) when given.
 *
 * Link with -lz -lssl -lcrypto.
 *
 * Prints one JSON line: messages (echoes completed inside the measured window;
 * handshake: connect-to-close cycles), bytes (payload bytes echoed), elapsed
 * (seconds, up to the last completion), errors, conns (open at the start of
 * the window), client_cpu (our user + system seconds), wall (our lifetime),
 * extensions (the first 101's Sec-WebSocket-Extensions), tls (version and
 * cipher), rx_bytes (every byte read after the 101s), rx_msgs and rx_compressed
 * (every echo received, and those that came compressed).  Exit status 0 unless nothing worked.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <zlib.h>

/* RFC 6455 §1.3's example key and its accept value. */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define READ_SIZE (256 * 1024)
#define IDLE_OPENING 128

enum mode { PINGPONG, PIPELINE, BIG, HANDSHAKE, IDLE };
enum cstate { C_FREE, C_CONNECTING, C_TLS, C_UPGRADING, C_OPEN, C_CLOSING };

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
    long seed, sent;    /* message k sent is pool[(seed + k) % pool_n] */
    /* permessage-deflate, when negotiated */
    int pmd, srv_noctx, cli_noctx, cli_bits, msg_comp;
    z_stream *zd, *zi;
    SSL *ssl;
} conn_t;

static enum mode mode = PINGPONG;
static const char *host = "127.0.0.1", *path = "/ws";
static int port = 0, nconns = 1, text = 0, raw = 0, deflate_on = 0, tls_on = 0, zlevel = 1;
static const char *cafile = NULL;
static SSL_CTX *ssl_ctx;
static char neg_ext[256], tls_info[128];  /* first connection's extension answer, TLS version/cipher */
static long depth = 1;
static size_t size = 32;
static double duration = 5.0, timeout_s = 10.0;

static int epfd;
static conn_t *conns;
static unsigned char *payload;     /* the messages: pool_n of size bytes each */
static long pool_n = 1;
static unsigned char *frame;       /* one masked client frame carrying it */
static size_t frame_len;
static unsigned char mask_key[4] = {0x37, 0xfa, 0x21, 0x3d};
static struct sockaddr_in addr;

static long total_messages = 0, total_errors = 0, window_open = 0;
static long n_live = 0, n_ready = 0; /* connections not FREE; ready ones */
static double t_start = 0, t_end = 0, t_last = 0, t_begin = 0;
static unsigned long long total_bytes = 0, rx_bytes = 0;
static long rx_msgs = 0, rx_compressed = 0;  /* every echo (not only the window's); those with RSV1 */
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

static void zfree(conn_t *c) {
    if (c->zd) deflateEnd(c->zd), free(c->zd), c->zd = NULL;
    if (c->zi) inflateEnd(c->zi), free(c->zi), c->zi = NULL;
}

static void conn_reset(conn_t *c) {
    zfree(c);
    if (c->ssl) SSL_free(c->ssl);
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
        if (c->ssl && c->state >= C_UPGRADING) SSL_shutdown(c->ssl);  /* close_notify, best effort */
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

/* write()/read() or their TLS equivalents: -1 with errno EAGAIN when they would block. */
static ssize_t io_write(conn_t *c, const void *p, size_t n) {
    if (!c->ssl) return write(c->fd, p, n);
    int r = SSL_write(c->ssl, p, n > (1 << 30) ? (1 << 30) : (int)n);
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    errno = (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) ? EAGAIN : EPIPE;
    return -1;
}

static ssize_t io_read(conn_t *c, void *p, size_t n) {
    if (!c->ssl) return read(c->fd, p, n);
    ERR_clear_error();
    int r = SSL_read(c->ssl, p, (int)n);
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) return 0;
    errno = (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) ? EAGAIN : ECONNRESET;
    return -1;
}

/* Write what we can; 0 on success, -1 if the connection failed. */
static int flush_out(conn_t *c) {
    buf_t *b = &c->out;
    while (b->head < b->len) {
        ssize_t n = io_write(c, b->data + b->head, b->len - b->head);
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

static void unmask(unsigned char *p, size_t n, const unsigned char key[4], uint64_t off);

static const unsigned char *message(long seed, long k) { return payload + ((seed + k) % pool_n) * size; }

/* A frame head (FIN, first byte's low bits = rsv_opcode) with our mask key. */
static size_t build_head(unsigned char *dst, int rsv_opcode, size_t n) {
    size_t h = 0;
    dst[h++] = 0x80 | rsv_opcode;
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
    return h + 4;
}

static unsigned char *zbuf;
static size_t zbuf_cap;

/* Message k of this connection, compressed (RFC 7692 §7.2.1) into one masked frame with RSV1. */
static void send_compressed(conn_t *c, const unsigned char *msg) {
    z_stream *z = c->zd;
    size_t need = size + size / 8 + 1024;
    if (zbuf_cap < need) {
        zbuf = realloc(zbuf, need);
        if (!zbuf) die("realloc");
        zbuf_cap = need;
    }
    z->next_in = (unsigned char *)msg;
    z->avail_in = (uInt)size;
    size_t n = 0;
    for (;;) {
        z->next_out = zbuf + n;
        z->avail_out = (uInt)(zbuf_cap - n);
        if (deflate(z, Z_SYNC_FLUSH) == Z_STREAM_ERROR) die("deflate");
        n = zbuf_cap - z->avail_out;
        if (z->avail_out > 0 && z->avail_in == 0) break;
        zbuf_cap *= 2;
        zbuf = realloc(zbuf, zbuf_cap);
        if (!zbuf) die("realloc");
    }
    if (n < 4 || memcmp(zbuf + n - 4, "\x00\x00\xff\xff", 4) != 0) {
        fprintf(stderr, "wsload: deflate output does not end with 00 00 ff ff\n");
        exit(2);
    }
    n -= 4;
    if (c->cli_noctx) deflateReset(z);
    buf_reserve(&c->out, n + 14);
    unsigned char *dst = (unsigned char *)c->out.data + c->out.len;
    size_t h = build_head(dst, 0x40 | (text ? 1 : 2), n);
    memcpy(dst + h, zbuf, n);
    unmask(dst + h, n, mask_key, 0);  /* XOR: masks as well */
    c->out.len += h + n;
}

static void send_messages(conn_t *c, long k) {
    if (k <= 0) return;
    if (c->pmd) {
        for (long i = 0; i < k; i++) send_compressed(c, message(c->seed, c->sent++));
    } else if (pool_n == 1) {  /* the same frame every time, built once */
        buf_reserve(&c->out, frame_len * (size_t)k);
        for (long i = 0; i < k; i++) {
            memcpy(c->out.data + c->out.len, frame, frame_len);
            c->out.len += frame_len;
        }
        c->sent += k;
    } else {
        buf_reserve(&c->out, (size + 14) * (size_t)k);
        for (long i = 0; i < k; i++) {
            unsigned char *dst = (unsigned char *)c->out.data + c->out.len;
            size_t h = build_head(dst, text ? 1 : 2, size);
            memcpy(dst + h, message(c->seed, c->sent++), size);
            unmask(dst + h, size, mask_key, 0);
            c->out.len += h + size;
        }
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
    c->seed = c - conns;
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
    char req[640];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_KEY "\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     path, host, port,
                     deflate_on ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "");
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
        zfree(c);  /* never sends or receives another message: keep our memory small */
        c->pmd = 0;
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

static unsigned char ibuf[64 * 1024];

/* Inflate compressed payload bytes and compare them with the message expected; -1 if they differ. */
static int inflate_feed(conn_t *c, const unsigned char *p, size_t n) {
    z_stream *z = c->zi;
    const unsigned char *expected = message(c->seed, c->echoed);
    z->next_in = (unsigned char *)p;
    z->avail_in = (uInt)n;
    for (;;) {
        z->next_out = ibuf;
        z->avail_out = sizeof ibuf;
        uInt in_before = z->avail_in;
        int r = inflate(z, Z_SYNC_FLUSH);
        if (r != Z_OK && r != Z_BUF_ERROR) return -1;
        size_t got = sizeof ibuf - z->avail_out;
        if (got) {
            if (c->msg_off + got > size || memcmp(ibuf, expected + c->msg_off, got) != 0) return -1;
            c->msg_off += got;
        }
        if (z->avail_in == 0 && z->avail_out > 0) return 0;
        if (!got && z->avail_in == in_before) return -1;  /* no progress */
    }
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
            int rsv1 = (c->hdr[0] & 0x40) != 0;
            if ((c->hdr[0] & 0x30) || (rsv1 && (!c->pmd || c->opcode == 0 || c->opcode >= 8))) {
                conn_error(c, "unexpected RSV bits");
                return -1;
            }
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
                c->msg_comp = rsv1;
                c->msg_bad = (c->opcode != (text ? 1 : 2));
            }
        }
        /* payload */
        size_t take = c->payload_left < n ? (size_t)c->payload_left : n;
        if (c->masked) unmask(p, take, c->key, c->frame_off);
        if (c->opcode >= 8) {
            memcpy(c->ctrl + c->ctrl_len, p, take);
            c->ctrl_len += take;
        } else if (c->msg_comp) {
            if (inflate_feed(c, p, take) < 0) c->msg_bad = 1;
        } else {
            if (c->msg_off + take > size || memcmp(p, message(c->seed, c->echoed) + c->msg_off, take) != 0)
                c->msg_bad = 1;
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
            if (c->msg_comp) {
                if (inflate_feed(c, (const unsigned char *)"\x00\x00\xff\xff", 4) < 0) c->msg_bad = 1;
                if (c->srv_noctx) inflateReset(c->zi);
            }
            int bad = c->msg_bad || c->msg_off != size;
            rx_msgs++;
            rx_compressed += c->msg_comp;
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

/* The server's Sec-WebSocket-Extensions line (at ext, or NULL): permessage-deflate and its parameters. */
static int negotiate(conn_t *c, const char *ext) {
    if (!ext) {
        fprintf(stderr, "wsload: the 101 has no Sec-WebSocket-Extensions (permessage-deflate offered)\n");
        return -1;
    }
    ext += strlen("\r\nsec-websocket-extensions:");
    const char *eol = strstr(ext, "\r\n");
    char v[256];
    size_t n = (size_t)(eol - ext) < sizeof v - 1 ? (size_t)(eol - ext) : sizeof v - 1;
    while (n && *ext == ' ') ext++, n--;
    for (size_t i = 0; i < n; i++) v[i] = ext[i] == '"' || ext[i] == '\\' ? '\'' : ext[i];
    v[n] = 0;
    if (!neg_ext[0]) memcpy(neg_ext, v, n + 1);
    for (size_t i = 0; i < n; i++) v[i] = (char)tolower((unsigned char)v[i]);
    if (strncmp(v, "permessage-deflate", 18) != 0 || strchr(v, ',')) {
        fprintf(stderr, "wsload: unexpected extensions in the 101: %s\n", v);
        return -1;
    }
    c->pmd = 1;
    c->srv_noctx = strstr(v, "server_no_context_takeover") != NULL;
    c->cli_noctx = strstr(v, "client_no_context_takeover") != NULL;
    c->cli_bits = 15;
    const char *b = strstr(v, "client_max_window_bits=");
    if (b) c->cli_bits = atoi(b + 23 + (b[23] == '\''));
    if (c->cli_bits < 9 || c->cli_bits > 15) {  /* zlib cannot deflate with 8 */
        fprintf(stderr, "wsload: unsupported client_max_window_bits in %s\n", v);
        return -1;
    }
    c->zd = calloc(1, sizeof *c->zd);
    c->zi = calloc(1, sizeof *c->zi);
    if (!c->zd || !c->zi) die("calloc");
    if (deflateInit2(c->zd, zlevel, Z_DEFLATED, -c->cli_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK ||
        inflateInit2(c->zi, -15) != Z_OK)
        die("zlib init");
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
    char *ext = strcasestr(s, "\r\nsec-websocket-extensions:");
    if (ext && (size_t)(ext - s) >= head_len) ext = NULL;
    if (!deflate_on && ext) return -1;  /* we offered none */
    if (deflate_on && negotiate(c, ext) < 0) return -1;
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
        if (tls_on) {
            c->ssl = SSL_new(ssl_ctx);
            if (!c->ssl) die("SSL_new");
            SSL_set_fd(c->ssl, c->fd);
            SSL_set_connect_state(c->ssl);
            if (cafile) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host);
            c->state = C_TLS;
        } else {
            on_connected(c);
            if (flush_out(c) < 0) conn_error(c, "write failed");
            return;
        }
    }
    if (c->state == C_TLS) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r == 1) {
            if (!tls_info[0])
                snprintf(tls_info, sizeof tls_info, "%s %s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
            on_connected(c);
            if (flush_out(c) < 0) conn_error(c, "write failed");
            return;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            set_events(c, e == SSL_ERROR_WANT_WRITE);
            return;
        }
        char why[256];
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        conn_error(c, why);
        return;
    }
    /* TLS: read until OpenSSL has nothing buffered (epoll cannot see its buffer). */
    for (int more = (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0; more; more = c->ssl != NULL) {
        ssize_t n = io_read(c, rbuf, READ_SIZE);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                if (c->state == C_CLOSING) {
                    conn_drop(c);
                    return;
                }
                conn_error(c, strerror(errno));
                return;
            }
            break;
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
        rx_bytes += len;
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
           "\"client_cpu\": %.3f, \"wall\": %.3f, \"extensions\": \"%s\", \"tls\": \"%s\", "
           "\"rx_bytes\": %llu, \"rx_msgs\": %ld, \"rx_compressed\": %ld}\n",
           total_messages, total_bytes, elapsed, total_errors, window_open, cpu, now() - t_begin, neg_ext,
           tls_info, rx_bytes, rx_msgs, rx_compressed);
    fflush(stdout);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void) {  /* xorshift64*: reproducible across runs */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

/* JSON-like ASCII text of words and numbers: what chat or API traffic looks like. */
static void make_text(unsigned char *dst, size_t n) {
    static const char *words[64] = {
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "alpha", "beta", "gamma", "delta",
        "status", "online", "offline", "message", "user", "channel", "hello", "world", "price", "volume",
        "order", "buy", "sell", "market", "limit", "update", "event", "value", "count", "total", "error",
        "ok", "true", "false", "null", "name", "alice", "bob", "carol", "dave", "room", "lobby", "game",
        "score", "level", "player", "ready", "start", "stop", "time", "date", "id", "type", "data", "text",
        "payload", "server", "client", "request", "response", "trio", "socket"};
    size_t i = 0;
    char rec[512];
    while (i < n) {
        uint64_t r = next_rand();
        int len = snprintf(rec, sizeof rec,
                           "{\"id\":%llu,\"type\":\"%s\",\"user\":\"%s\",\"text\":\"%s %s %s %s %s\","
                           "\"ts\":%llu,\"ok\":%s},",
                           (unsigned long long)(r % 100000), words[r & 63], words[(r >> 6) & 63],
                           words[(r >> 12) & 63], words[(r >> 18) & 63], words[(r >> 24) & 63],
                           words[(r >> 30) & 63], words[(r >> 36) & 63],
                           (unsigned long long)(1700000000000ULL + (r >> 40)), (r >> 63) ? "true" : "false");
        size_t take = (size_t)len < n - i ? (size_t)len : n - i;
        memcpy(dst + i, rec, take);
        i += take;
    }
}

static void make_realistic(unsigned char *dst, size_t n) {
    make_text(dst, n);
    if (text) return;
    for (size_t i = 0; i < n; i += 32)  /* binary: 16 random bytes, 16 bytes of text, ... */
        for (size_t j = 0; j < 16 && i + j < n; j += 8) {
            uint64_t r = next_rand();
            memcpy(dst + i + j, &r, i + j + 8 <= n ? 8 : n - i - j);
        }
}

static void usage(void) {
    fprintf(stderr, "usage: wsload --port P --mode pingpong|pipeline|big|handshake|idle [--conns N] "
                    "[--size B] [--depth N] [--duration S] [--text|--binary] [--raw] [--path P] "
                    "[--deflate [--zlevel N]] [--tls [--cafile PEM]]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--text")) text = 1;
        else if (!strcmp(a, "--binary")) text = 0;
        else if (!strcmp(a, "--raw")) raw = 1;
        else if (!strcmp(a, "--deflate")) deflate_on = 1;
        else if (!strcmp(a, "--tls")) tls_on = 1;
        else if (!strcmp(a, "--cafile") && v) cafile = v, i++;
        else if (!strcmp(a, "--zlevel") && v) zlevel = atoi(v), i++;
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
    signal(SIGPIPE, SIG_IGN);  /* a peer gone: EPIPE, not death */
    if (raw && (mode == HANDSHAKE || mode == IDLE || deflate_on || tls_on)) {
        fprintf(stderr, "wsload: --raw has no handshake to measure, nothing to negotiate, no TLS\n");
        return 2;
    }
    if (tls_on) {
        ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (!ssl_ctx) die("SSL_CTX_new");
        SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
        SSL_CTX_set_options(ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
        if (cafile) {
            if (SSL_CTX_load_verify_locations(ssl_ctx, cafile, NULL) != 1) {
                fprintf(stderr, "wsload: cannot load --cafile %s\n", cafile);
                return 2;
            }
            SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
        }
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) usage();

    if (deflate_on) {  /* realistic, distinct messages (see the top of this file) */
        /* >= 1 MiB of distinct messages: a message never repeats inside a 32 KiB window */
        pool_n = size <= 64 * 1024 ? (long)((1 << 20) / (size ? size : 1)) : 2;
        if (pool_n < 64) pool_n = 64;
        payload = malloc(size * pool_n + 1);
        make_realistic(payload, size * pool_n);
    } else {  /* the message: printable ASCII (valid UTF-8 for text), a pattern that shows offsets. */
        payload = malloc(size ? size : 1);
        for (size_t i = 0; i < size; i++) payload[i] = (unsigned char)('a' + (i * 7 + i / 251) % 26);
    }
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
