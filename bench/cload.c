// cload: an epoll websocket load generator in C, cheap enough not to be the bottleneck on a
// 2-core box. Speaks raw websocket frames and the Engine.IO v4 / Socket.IO v5 text protocol
// (websocket transport only), and sends `40{"token":...}` so that an authenticating server
// accepts it. Compiled by bench/run.py at run time.
//
// build: gcc -O2 -o cload cload.c -lz
// usage: ./cload MODE key=value...   MODE = echo | fanout | connect | idle | storm
//   port=3001 token=JWT clients=1 (echo, connect, storm) members=100 (fanout) window=8 duration=5 warmup=1
//   payload=64 rate=N (open loop: p50/p99) spids=PID (the server's CPU% over the measured window)
//   steps=1000,5000 (idle: open that many connections in total, print a line, wait for a line
//   on stdin, go on; the pings the server sends meanwhile are answered)
//   chats=UUID,UUID (echo: send Parley's real `chat:send` instead of bench:ping, client i to
//   conversation i % count, each with a client_msg_id unique across runs)
//   sender_port=P (fanout: the sender connects to another server than the members)
//   marks=1 (print {"mark":"window"} when the measured window starts, for outside meters)
//   deflate=1 (ask for permessage-deflate, as browsers do, and inflate what comes compressed;
//   what the client sends stays uncompressed, which the extension allows)
// Events: bench:ping (acked echo), bench:join (acked), bench:bcast -> bench:msg to the room.
// Prints one JSON line per measurement.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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
#include <zlib.h>

#define BUFSZ (256 * 1024)
typedef struct {
  int fd;
  char *buf;
  size_t len;        // bytes buffered, not yet parsed
  int next_id;       // SIO ack id
  double t_sent;     // echo: send time of the in-flight request (depth 1)
  double ring[1024]; // open-loop echo: send time by ack id % 1024
  const char *chat;  // chats=: this client's conversation id
  z_stream *inflate; // deflate=1 and negotiated: the server's compressed messages, in one context
} conn_t;

static int SENDER_PORT = 0, MARKS = 0;  // fanout: the sender on another server; print the window's start
static int PORT = 3001, SIO = 1, NCLI = 1, NMEM = 100, WINDOW = 8, PAYLOAD = 64;
static int DEFLATE = 0;
static double DURATION = 5, WARMUP = 1, RATE = 0;  // RATE>0: open loop, RATE sends/s in total
static char SPIDS[256] = "", TOKEN[4096] = "", STEPS[256] = "", CHATS[4096] = "";
static char *CHAT_IDS[64]; static int NCHATS = 0; static long NONCE = 0;
static char PAY[4096];

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }
static void die(const char *m) { printf("{\"error\":\"%s: %s\"}\n", m, strerror(errno)); exit(1); }

static long srv_ticks(void) {
  long tot = 0; char tmp[256]; strcpy(tmp, SPIDS);
  for (char *p = strtok(tmp, ","); p; p = strtok(NULL, ",")) {
    char path[64], b[2048]; snprintf(path, sizeof path, "/proc/%s/stat", p);
    FILE *f = fopen(path, "r"); if (!f) continue;
    size_t n = fread(b, 1, sizeof b - 1, f); fclose(f); b[n] = 0;
    char *q = strrchr(b, ')'); if (!q) continue; q += 2;
    long ut = 0, st = 0; int field = 3;  // q points at field 3 (state)
    for (char *s = strtok_r(q, " ", &q); s; s = strtok_r(NULL, " ", &q), field++) {
      if (field == 14) ut = atol(s);
      if (field == 15) { st = atol(s); break; }
    }
    tot += ut + st;
  }
  return tot;
}

// send one masked frame (mask key 0 => payload unchanged, still RFC-valid)
static void ws_send_op(conn_t *c, int opcode, const char *p, size_t n) {
  unsigned char h[14]; size_t hl;
  h[0] = 0x80 | opcode;
  if (n < 126) { h[1] = 0x80 | n; hl = 2; }
  else if (n < 65536) { h[1] = 0x80 | 126; h[2] = n >> 8; h[3] = n & 255; hl = 4; }
  else { h[1] = 0x80 | 127; for (int i = 0; i < 8; i++) h[2 + i] = (uint64_t)n >> (56 - 8 * i); hl = 10; }
  memset(h + hl, 0, 4); hl += 4;
  char out[8192]; if (n > sizeof out - 14) { errno = EMSGSIZE; die("frame too big"); }
  memcpy(out, h, hl); memcpy(out + hl, p, n);
  size_t off = 0, tot = hl + n;
  while (off < tot) {
    ssize_t w = send(c->fd, out + off, tot - off, MSG_NOSIGNAL);
    if (w < 0) { if (errno == EAGAIN || errno == EINTR) continue; die("send"); }
    off += w;
  }
}
static void ws_send(conn_t *c, const char *p, size_t n) { ws_send_op(c, 1, p, n); }
static void ws_sends(conn_t *c, const char *s) { ws_send(c, s, strlen(s)); }
// a websocket-level ping (opcode 9) is answered with a pong carrying its payload, as RFC 6455 asks
static void ws_pong(conn_t *c, const char *p, size_t n) { char b[126]; memcpy(b, p, n > 125 ? 125 : n); ws_send_op(c, 10, b, n > 125 ? 125 : n); }

// a compressed message's payload (RFC 7692: append 00 00 ff ff, inflate); valid until the next call
static char INFLATED[BUFSZ];
static void inflate_payload(conn_t *c, char **pl, size_t *plen) {
  static unsigned char tail[4] = {0, 0, 0xff, 0xff};
  z_stream *z = c->inflate;
  if (!z) { errno = EPROTO; die("a compressed frame without permessage-deflate"); }
  z->next_out = (unsigned char *)INFLATED; z->avail_out = sizeof INFLATED;
  z->next_in = (unsigned char *)*pl; z->avail_in = *plen;
  if (inflate(z, Z_SYNC_FLUSH) < 0) { errno = EPROTO; die("inflate"); }
  z->next_in = tail; z->avail_in = 4;
  if (inflate(z, Z_SYNC_FLUSH) < 0 && z->avail_in) { errno = EPROTO; die("inflate tail"); }
  *pl = INFLATED; *plen = sizeof INFLATED - z->avail_out;
}

// extract one complete frame from c->buf; returns payload ptr/len via args, consumed bytes, 0 if incomplete
static size_t ws_frame(conn_t *c, char **pl, size_t *plen, int *op) {
  unsigned char *b = (unsigned char *)c->buf;
  if (c->len < 2) return 0;
  size_t n = b[1] & 127, hl = 2;
  if (n == 126) { if (c->len < 4) return 0; n = (b[2] << 8) | b[3]; hl = 4; }
  else if (n == 127) { if (c->len < 10) return 0; n = 0; for (int i = 0; i < 8; i++) n = (n << 8) | b[2 + i]; hl = 10; }
  if (b[1] & 128) hl += 4;  // server frames are not masked, but tolerate
  if (c->len < hl + n) return 0;
  *op = b[0] & 15; *pl = c->buf + hl; *plen = n;
  if (b[0] & 0x40) inflate_payload(c, pl, plen);  // RSV1: a compressed message
  return hl + n;
}

// a socket with the websocket upgrade request sent; its response is read by take_upgrade_head
static conn_t *start_conn(void) {
  conn_t *c = calloc(1, sizeof *c); c->buf = malloc(BUFSZ); c->next_id = 1;
  c->fd = socket(AF_INET, SOCK_STREAM, 0); if (c->fd < 0) die("socket");
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)}; a.sin_addr.s_addr = htonl(0x7f000001);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
  int one = 1; setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char req[512];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                   SIO ? "/socket.io/?EIO=4&transport=websocket" : "/", PORT,
                   DEFLATE ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "");
  if (send(c->fd, req, n, 0) != n) die("send upgrade");
  return c;
}

// 1 once c->buf holds the whole HTTP response head (a 101, or die), which is then dropped
static int take_upgrade_head(conn_t *c) {
  c->buf[c->len] = 0;
  char *e = strstr(c->buf, "\r\n\r\n");
  if (!e) return 0;
  if (strncmp(c->buf, "HTTP/1.1 101", 12)) { errno = EPROTO; die("no 101"); }
  *e = 0;
  if (DEFLATE && strcasestr(c->buf, "permessage-deflate")) {
    c->inflate = calloc(1, sizeof *c->inflate);
    if (inflateInit2(c->inflate, -15) != Z_OK) die("inflateInit2");
  }
  size_t hl = e + 4 - c->buf; memmove(c->buf, c->buf + hl, c->len - hl); c->len -= hl;
  return 1;
}

static conn_t *open_conn(void) {
  conn_t *c = start_conn();
  do {  // read the HTTP response head; keep any bytes after it
    ssize_t r = recv(c->fd, c->buf + c->len, BUFSZ - c->len - 1, 0); if (r <= 0) die("recv upgrade");
    c->len += r;
  } while (!take_upgrade_head(c));
  return c;
}

// blocking: read frames until one whose payload starts with prefix (answers EIO pings)
static void wait_for(conn_t *c, const char *prefix) {
  size_t pl = strlen(prefix);
  for (;;) {
    char *p; size_t n; int op; size_t used;
    while ((used = ws_frame(c, &p, &n, &op))) {
      int hit = n >= pl && !memcmp(p, prefix, pl);
      int ping = SIO && n == 1 && p[0] == '2';
      if (op == 9) ws_pong(c, p, n);
      memmove(c->buf, c->buf + used, c->len - used); c->len -= used;
      if (ping) ws_sends(c, "3");
      if (hit) return;
      if (SIO && n >= 2 && p[0] == '4' && p[1] == '4') { errno = EACCES; die("connect refused"); }
    }
    ssize_t r = recv(c->fd, c->buf + c->len, BUFSZ - c->len, 0); if (r <= 0) die("recv handshake");
    c->len += r;
  }
}

// the hello a client sends once Engine.IO is open: the namespace connect, with the token if given
static void send_hello(conn_t *c) {
  char hello[4200];
  if (TOKEN[0]) snprintf(hello, sizeof hello, "40{\"token\":\"%s\"}", TOKEN); else strcpy(hello, "40");
  ws_sends(c, hello);
}

static conn_t *connect_client(void) {
  conn_t *c = open_conn();
  if (SIO) {
    wait_for(c, "0{");
    send_hello(c); wait_for(c, "40");
  }
  return c;
}

// sequential handshakes (upgrade, Engine.IO open, namespace connect with the token) per second
static int connect_rate(void) {
  conn_t **cs = calloc(NCLI, sizeof *cs);
  double t0 = now();
  for (int i = 0; i < NCLI; i++) cs[i] = connect_client();
  double el = now() - t0;
  printf("{\"mode\":\"connect\",\"gen\":\"cload\",\"clients\":%d,\"conns_per_s\":%.0f}\n", NCLI, NCLI / el);
  fflush(stdout);
  return 0;
}

// a reconnect storm: `clients` connections opened at once, each through the upgrade, Engine.IO open,
// namespace connect and the `session:ready` event; the time from the first connect until each is ready
enum { STORM_UPGRADE, STORM_OPEN, STORM_CONNECT, STORM_READY, STORM_DONE };
static int storm_frames(conn_t *c, int *state) {  // 1 when this frame batch made the client ready
  char *p; size_t n; int op; size_t used;
  while (*state != STORM_DONE && (used = ws_frame(c, &p, &n, &op))) {
    int ping = n == 1 && p[0] == '2';
    int refused = n >= 2 && p[0] == '4' && p[1] == '4';
    int hit = (*state == STORM_OPEN && n >= 2 && !memcmp(p, "0{", 2)) ||
              (*state == STORM_CONNECT && n >= 2 && !memcmp(p, "40", 2)) ||
              (*state == STORM_READY && n >= 18 && !memcmp(p, "42[\"session:ready\"", 18));
    if (op == 9) ws_pong(c, p, n);
    memmove(c->buf, c->buf + used, c->len - used); c->len -= used;
    if (refused) { errno = EACCES; die("connect refused"); }
    if (ping) ws_sends(c, "3");
    if (!hit) continue;
    if (*state == STORM_OPEN) send_hello(c);
    if (++*state == STORM_DONE) return 1;
  }
  return 0;
}

static int storm(void) {
  conn_t **cs = calloc(NCLI, sizeof *cs); int *state = calloc(NCLI, sizeof(int));
  double *ready = calloc(NCLI, sizeof(double));
  int ep = epoll_create1(0), left = NCLI;
  double t0 = now();
  for (int i = 0; i < NCLI; i++) {
    cs[i] = start_conn();
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = i}; epoll_ctl(ep, EPOLL_CTL_ADD, cs[i]->fd, &e);
  }
  struct epoll_event evs[256];
  while (left) {
    int ne = epoll_wait(ep, evs, 256, 30000);
    if (ne == 0) { printf("{\"error\":\"%d of %d clients not ready after 30 s\"}\n", left, NCLI); return 1; }
    for (int k = 0; k < ne; k++) {
      int i = evs[k].data.u32; conn_t *c = cs[i];
      ssize_t r = recv(c->fd, c->buf + c->len, BUFSZ - c->len - 1, MSG_DONTWAIT);
      if (r == 0) { printf("{\"error\":\"server closed connection %d\"}\n", i); return 1; }
      if (r < 0) { if (errno == EAGAIN) continue; die("recv"); }
      c->len += r;
      if (state[i] == STORM_UPGRADE && take_upgrade_head(c)) state[i] = STORM_OPEN;
      if (state[i] != STORM_UPGRADE && storm_frames(c, &state[i])) { ready[NCLI - left] = now() - t0; left--; }
    }
  }
  printf("{\"mode\":\"storm\",\"gen\":\"cload\",\"clients\":%d,\"all_ready_ms\":%.1f,\"median_ready_ms\":%.1f}\n",
         NCLI, ready[NCLI - 1] * 1e3, ready[NCLI / 2] * 1e3);
  fflush(stdout);
  return 0;
}

// answer the server's pings on every open connection for up to ms milliseconds; 1 if stdin has a line.
// A connection the server closes is dropped and counted in `closed`.
static int closed = 0;
static int serve_pings(int ep, conn_t **cs, int ms) {
  struct epoll_event evs[256];
  int ne, line = 0;
  do {  // drain every ready connection: a full batch means more may be waiting
    ne = epoll_wait(ep, evs, 256, ms); ms = 0;
    for (int k = 0; k < ne; k++) {
      if (evs[k].data.u32 == UINT32_MAX) { char b[256]; if (read(0, b, sizeof b) <= 0) exit(0); line = 1; continue; }
      conn_t *c = cs[evs[k].data.u32];
      ssize_t r = recv(c->fd, c->buf + c->len, BUFSZ - c->len, MSG_DONTWAIT);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        fprintf(stderr, "idle connection %u closed: %s\n", evs[k].data.u32, r ? strerror(errno) : "EOF");
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); closed++;
        continue;
      }
      c->len += r;
      char *p; size_t n; int op; size_t used;
      while ((used = ws_frame(c, &p, &n, &op))) {
        int ping = n == 1 && p[0] == '2';
        if (op == 9) ws_pong(c, p, n);
        memmove(c->buf, c->buf + used, c->len - used); c->len -= used;
        if (ping) ws_sends(c, "3");
      }
    }
  } while (ne == 256);
  return line;
}

// open idle connections in steps; after each step print a line and wait for one on stdin
static int idle(void) {
  int cap = 0; char tmp[256]; strcpy(tmp, STEPS);
  for (char *p = strtok(tmp, ","); p; p = strtok(NULL, ",")) if (atoi(p) > cap) cap = atoi(p);
  conn_t **cs = calloc(cap, sizeof *cs); int open_n = 0;
  int ep = epoll_create1(0);
  struct epoll_event in = {.events = EPOLLIN, .data.u32 = UINT32_MAX}; epoll_ctl(ep, EPOLL_CTL_ADD, 0, &in);
  strcpy(tmp, STEPS);
  for (char *p = strtok(tmp, ","); p; p = strtok(NULL, ",")) {
    double t0 = now();
    for (int target = atoi(p); open_n < target; open_n++) {
      cs[open_n] = connect_client();
      struct epoll_event e = {.events = EPOLLIN, .data.u32 = open_n}; epoll_ctl(ep, EPOLL_CTL_ADD, cs[open_n]->fd, &e);
      if (open_n % 50 == 49) serve_pings(ep, cs, 0);
    }
    serve_pings(ep, cs, 0);
    printf("{\"mode\":\"idle\",\"conns\":%d,\"open\":%d,\"seconds\":%.2f}\n", open_n, open_n - closed, now() - t0);
    fflush(stdout);
    while (!serve_pings(ep, cs, 100)) {}
  }
  return 0;
}

static int cmpd(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: cload echo|fanout key=value...\n"); return 2; }
  const char *mode = argv[1];
  for (int i = 2; i < argc; i++) {
    char *k = argv[i], *v = strchr(k, '='); if (!v) continue; *v++ = 0;
    if (!strcmp(k, "port")) PORT = atoi(v); else if (!strcmp(k, "proto")) SIO = !strcmp(v, "sio");
    else if (!strcmp(k, "clients")) NCLI = atoi(v); else if (!strcmp(k, "members")) NMEM = atoi(v);
    else if (!strcmp(k, "window")) WINDOW = atoi(v); else if (!strcmp(k, "duration")) DURATION = atof(v);
    else if (!strcmp(k, "warmup")) WARMUP = atof(v); else if (!strcmp(k, "payload")) PAYLOAD = atoi(v);
    else if (!strcmp(k, "spids")) snprintf(SPIDS, sizeof SPIDS, "%s", v);
    else if (!strcmp(k, "rate")) RATE = atof(v);
    else if (!strcmp(k, "deflate")) DEFLATE = atoi(v);
    else if (!strcmp(k, "token")) snprintf(TOKEN, sizeof TOKEN, "%s", v);
    else if (!strcmp(k, "steps")) snprintf(STEPS, sizeof STEPS, "%s", v);
    else if (!strcmp(k, "chats")) snprintf(CHATS, sizeof CHATS, "%s", v);
    else if (!strcmp(k, "sender_port")) SENDER_PORT = atoi(v); else if (!strcmp(k, "marks")) MARKS = atoi(v);
  }
  for (char *p = strtok(CHATS, ","); p && NCHATS < 64; p = strtok(NULL, ",")) CHAT_IDS[NCHATS++] = p;
  NONCE = (long)getpid() ^ (long)(now() * 1e6);
  memset(PAY, 'x', PAYLOAD); PAY[PAYLOAD] = 0;
  if (!strcmp(mode, "connect")) return connect_rate();
  if (!strcmp(mode, "idle")) return idle();
  if (!strcmp(mode, "storm")) return storm();
  int fanout = !strcmp(mode, "fanout");
  int n = fanout ? NMEM + 1 : NCLI;  // fanout: conns[0] is the sender
  conn_t **cs = calloc(n, sizeof *cs);
  for (int i = 0; i < n; i++) {
    int own_port = PORT; if (fanout && i == 0 && SENDER_PORT) PORT = SENDER_PORT;
    cs[i] = connect_client(); cs[i]->chat = NCHATS ? CHAT_IDS[i % NCHATS] : NULL; PORT = own_port;
  }
  if (fanout) {
    for (int i = 1; i < n; i++) { if (SIO) { ws_sends(cs[i], "421[\"bench:join\",{\"room\":\"bench:room1\"}]"); wait_for(cs[i], "431"); } else ws_sends(cs[i], "J"); }
    if (!SIO) usleep(200000);
  }
  int ep = epoll_create1(0);
  for (int i = 0; i < n; i++) { struct epoll_event e = {.events = EPOLLIN, .data.u32 = i}; epoll_ctl(ep, EPOLL_CTL_ADD, cs[i]->fd, &e); }

  char msg[8192];
  // state
  long count = 0; int measuring = 0;
  enum { RING = 1 << 16 };
  int *rcnt = calloc(RING, sizeof(int)); long seq = 0, completed = 0, deliveries = 0;
  double *tsend = calloc(RING, sizeof(double));
  long sent_meas = 0, due = 0; int rr = 0;
  size_t latcap = 4000000, nlat = 0; double *lat = malloc(latcap * sizeof(double));

#define SEND_ECHO(c) do { (c)->ring[(c)->next_id & 1023] = (c)->t_sent = now(); \
                          int _l = (c)->chat ? snprintf(msg, sizeof msg, "42%d[\"chat:send\",{\"conversation_id\":\"%s\",\"body\":\"%s\",\"client_msg_id\":\"%lx-%d-%d\"}]", \
                                                        (c)->next_id, (c)->chat, PAY, NONCE, (c)->fd, (c)->next_id) \
                                     : SIO ? snprintf(msg, sizeof msg, "42%d[\"bench:ping\",{\"s\":0,\"m\":\"%s\"}]", (c)->next_id, PAY) \
                                           : snprintf(msg, sizeof msg, "{\"m\":\"%s\"}", PAY); \
                          (c)->next_id++; ws_send((c), msg, _l); } while (0)
#define FIRE() do { int _l = SIO ? snprintf(msg, sizeof msg, "42[\"bench:bcast\",{\"room\":\"bench:room1\",\"data\":{\"s\":%ld,\"m\":\"%s\"}}]", seq, PAY) \
                                 : snprintf(msg, sizeof msg, "B{\"s\":%ld,\"m\":\"%s\"}", seq, PAY); \
                    rcnt[seq & (RING - 1)] = 0; tsend[seq & (RING - 1)] = now(); seq++; ws_send(cs[0], msg, _l); } while (0)

  if (RATE <= 0) {
    if (fanout) for (int i = 0; i < WINDOW; i++) FIRE();
    else for (int i = 0; i < n; i++) SEND_ECHO(cs[i]);
  }

  double t_start = now(), t_meas = t_start + WARMUP, t_end = t_meas + DURATION;
  struct rusage ru0; long sv0 = 0; double tm0 = 0, tm_end = 0;
  struct epoll_event evs[512];
  for (;;) {
    double t = now();
    if (!measuring && t >= t_meas) {
      measuring = 1; getrusage(RUSAGE_SELF, &ru0); sv0 = srv_ticks(); tm0 = t;
      if (MARKS) { printf("{\"mark\":\"window\"}\n"); fflush(stdout); }
    }
    if (t >= t_end + (RATE > 0 ? 1.0 : 0)) break;  // open loop: 1 s drain after the last send
    int tmo = 10;
    if (RATE > 0 && t < t_end) {  // open loop: send what is due (echo: round robin over the clients)
      long target = (long)((t - t_start) * RATE);
      while (due < target) {  // a send is expected as its answer is counted: by the time it was sent
        double sent_at;
        if (fanout) { FIRE(); sent_at = tsend[(seq - 1) & (RING - 1)]; }
        else { SEND_ECHO(cs[rr]); sent_at = cs[rr]->t_sent; rr = (rr + 1) % n; }
        if (measuring && sent_at < t_end) sent_meas++;
        due++;
      }
      double next = t_start + (due + 1) / RATE; tmo = (int)((next - now()) * 1000); if (tmo < 0) tmo = 0; if (tmo > 10) tmo = 10;
      if (tmo == 0 && next > now()) tmo = 1;
    }
    if (RATE > 0 && measuring && t >= t_end && !tm_end) tm_end = t;
    int ne = epoll_wait(ep, evs, 512, tmo);
    for (int k = 0; k < ne; k++) {
      int i = evs[k].data.u32; conn_t *c = cs[i];
      ssize_t r = recv(c->fd, c->buf + c->len, BUFSZ - c->len, MSG_DONTWAIT);
      if (r == 0) { printf("{\"error\":\"server closed connection %d\"}\n", i); return 1; }
      if (r < 0) { if (errno == EAGAIN) continue; die("recv"); }
      c->len += r;
      char *p; size_t pn; int op; size_t used, off = 0;
      for (;;) {
        // parse frames in place starting at off
        conn_t tmp = *c; tmp.buf = c->buf + off; tmp.len = c->len - off;
        used = ws_frame(&tmp, &p, &pn, &op); if (!used) break; off += used;
        if (op == 8) { printf("{\"error\":\"close frame on %d\"}\n", i); return 1; }
        if (op == 9) { ws_pong(c, p, pn); continue; }
        if (op != 1) continue;
        if (SIO && pn == 1 && p[0] == '2') { ws_sends(c, "3"); continue; }
        if (!fanout) {
          if (SIO && !(pn > 2 && p[0] == '4' && p[1] == '3')) continue;
          if (SIO && memmem(p, pn, "\"ok\":false", 10)) {  // quotes become ' so that the line stays JSON
            int k = pn > 300 ? 300 : (int)pn; for (int j = 0; j < k; j++) if (p[j] == '"' || p[j] == '\\') p[j] = '\'';
            printf("{\"error\":\"refused: %.*s\"}\n", k, p); return 1;
          }
          if (RATE > 0) {
            int id = SIO ? atoi(p + 2) : 0;
            double ts = SIO ? c->ring[id & 1023] : c->t_sent;
            if (measuring && ts >= tm0 && ts < t_end) { count++; if (nlat < latcap) lat[nlat++] = now() - ts; }
          } else {
            if (measuring) { count++; if (nlat < latcap) lat[nlat++] = now() - c->t_sent; }
            SEND_ECHO(c);
          }
        } else {
          if (i == 0) continue;
          if (SIO && (pn < 14 || memcmp(p, "42[\"bench:msg\"", 14))) continue;
          char *s = memmem(p, pn, "\"s\":", 4); if (!s) continue;
          long sq = strtol(s + 4, NULL, 10);
          double ts = tsend[sq & (RING - 1)];
          if (RATE > 0) {
            if (measuring && ts >= tm0 && ts < t_end) { deliveries++; if (nlat < latcap) lat[nlat++] = now() - ts; }
            ++rcnt[sq & (RING - 1)];
          } else {
            if (measuring) deliveries++;
            if (++rcnt[sq & (RING - 1)] == NMEM) { if (measuring) completed++; FIRE(); }
          }
        }
      }
      memmove(c->buf, c->buf + off, c->len - off); c->len -= off;
    }
  }
  double el = (tm_end ? tm_end : now()) - tm0; struct rusage ru1; getrusage(RUSAGE_SELF, &ru1);
  double ccpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) * 1e-6 +
                (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) * 1e-6;
  long sv1 = srv_ticks();
  char srv[32]; if (SPIDS[0]) snprintf(srv, sizeof srv, "%.1f", (sv1 - sv0) / el); else strcpy(srv, "null");
  qsort(lat, nlat, sizeof(double), cmpd);
  if (RATE > 0) {
    double p50 = nlat ? lat[nlat / 2] * 1e3 : 0, p99 = nlat ? lat[(size_t)(nlat * 0.99)] * 1e3 : 0, mx = nlat ? lat[nlat - 1] * 1e3 : 0;
    long expected = fanout ? sent_meas * NMEM : sent_meas, got = fanout ? deliveries : count;
    printf("{\"mode\":\"%s-lat\",\"gen\":\"cload\",\"conns\":%d,\"rate\":%.0f,\"expected\":%ld,\"received\":%ld,"
           "\"client_cpu_pct\":%.1f,\"server_cpu_pct\":%s,\"lat\":{\"n\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}}\n",
           fanout ? "fanout" : "echo", fanout ? NMEM : NCLI, RATE, expected, got, 100 * ccpu / el, srv, nlat, p50, p99, mx);
  } else if (!fanout) {
    double p50 = nlat ? lat[nlat / 2] * 1e3 : 0, p99 = nlat ? lat[(size_t)(nlat * 0.99)] * 1e3 : 0;
    printf("{\"mode\":\"echo\",\"gen\":\"cload\",\"clients\":%d,\"depth\":1,\"rps\":%.0f,\"client_cpu_pct\":%.1f,\"server_cpu_pct\":%s,"
           "\"lat\":{\"n\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f}}\n", NCLI, count / el, 100 * ccpu / el, srv, nlat, p50, p99);
  } else {
    printf("{\"mode\":\"fanout\",\"gen\":\"cload\",\"members\":%d,\"window\":%d,\"deliveries_per_s\":%.0f,\"bcasts_per_s\":%.0f,"
           "\"client_cpu_pct\":%.1f,\"server_cpu_pct\":%s}\n", NMEM, WINDOW, deliveries / el, completed / el, 100 * ccpu / el, srv);
  }
  fflush(stdout);
  return 0;
}
