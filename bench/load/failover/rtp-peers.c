/*
 * rtp-peers: one side of N calls for the failover tests and benchmark (run inside a caller's or
 * a callee's network namespace). It binds N UDP sockets on --bind, sends one 172-byte G.711 RTP
 * packet (12-byte header + 160-byte payload) per socket every --period-us to the relay port it
 * is given, with the sockets' send instants spread evenly over the period, and records when
 * packets arrive on each socket, so that the longest silence per stream around a failover can
 * be read out.
 *
 * Protocol (stdin/stdout, one line each):
 *   prints  {"ports":[p0,p1,...]}          once its sockets are bound
 *   reads   to IP q0 q1 ...                the relay's port for each socket (0: send nothing);
 *                                           sending starts
 *   reads   mark                           starts a measurement interval; prints {"marked":1}
 *   reads   report                         prints {"now_ms":..,"sent":..,"send_errors":..,
 *                                           "behind":..,"rx":[..],"gap_us":[..],"silent_us":[..]}:
 *                                           per socket, packets received since the mark, the
 *                                           longest interval without a packet since the mark
 *                                           (the current silence included) and the current one
 *   reads   quit (or end of input)         exits
 * A generator that falls more than a period behind skips the missed sends (counted in
 * `behind`) rather than bursting. Single-threaded, epoll-driven, every loop bounded.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RTP_HEADER 12
#define RTP_PAYLOAD 160
#define RTP_PACKET (RTP_HEADER + RTP_PAYLOAD)
#define MAX_EVENTS 1024
#define MAX_SENDS_PER_TURN 512
#define RECV_BATCH 8
#define STDIN_TOKEN UINT32_MAX

struct peer {
	int fd;
	uint16_t port;       /* local */
	uint16_t target;     /* relay port, 0: none */
	uint16_t seq;
	uint32_t ts;
	uint32_t ssrc;
	uint32_t rx;         /* since the mark */
	uint64_t prev_ns;    /* last arrival, or the mark */
	uint64_t max_gap_ns; /* since the mark */
};

struct state {
	long count;
	uint64_t period_ns;
	struct peer *peers;
	int epoll_fd;
	struct sockaddr_in target;
	int sending;
	uint64_t start_ns;
	uint64_t next;       /* index of the next send in the global schedule */
	uint64_t sent, send_errors, behind;
	char *line;
	size_t line_len, line_cap;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "rtp-peers: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void bind_peers(struct state *s, const char *address)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	if (inet_pton(AF_INET, address, &sa.sin_addr) != 1) {
		fprintf(stderr, "rtp-peers: bad --bind address %s\n", address);
		exit(2);
	}
	for (long i = 0; i < s->count; i++) {
		struct peer *p = &s->peers[i];
		p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (p->fd < 0)
			die("socket");
		if (bind(p->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
			die("bind");
		struct sockaddr_in local;
		socklen_t len = sizeof local;
		if (getsockname(p->fd, (struct sockaddr *)&local, &len) < 0)
			die("getsockname");
		p->port = ntohs(local.sin_port);
		p->ssrc = (uint32_t)random();
		p->seq = (uint16_t)random();
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, p->fd, &ev) < 0)
			die("epoll_ctl");
	}
}

static void print_ports(const struct state *s)
{
	fputs("{\"ports\":[", stdout);
	for (long i = 0; i < s->count; i++)
		printf("%s%u", i ? "," : "", s->peers[i].port);
	fputs("]}\n", stdout);
	fflush(stdout);
}

static void print_report(const struct state *s)
{
	const uint64_t now = now_ns();
	printf("{\"now_ms\":%.3f,\"sent\":%llu,\"send_errors\":%llu,\"behind\":%llu,\"rx\":[", now / 1e6,
	       (unsigned long long)s->sent, (unsigned long long)s->send_errors, (unsigned long long)s->behind);
	for (long i = 0; i < s->count; i++)
		printf("%s%u", i ? "," : "", s->peers[i].rx);
	fputs("],\"gap_us\":[", stdout);
	for (long i = 0; i < s->count; i++) {
		const struct peer *p = &s->peers[i];
		uint64_t gap = p->max_gap_ns;
		if (now - p->prev_ns > gap)
			gap = now - p->prev_ns;
		printf("%s%llu", i ? "," : "", (unsigned long long)(gap / 1000));
	}
	fputs("],\"silent_us\":[", stdout);
	for (long i = 0; i < s->count; i++)
		printf("%s%llu", i ? "," : "", (unsigned long long)((now - s->peers[i].prev_ns) / 1000));
	fputs("]}\n", stdout);
	fflush(stdout);
}

static void mark(struct state *s)
{
	const uint64_t now = now_ns();
	for (long i = 0; i < s->count; i++) {
		s->peers[i].rx = 0;
		s->peers[i].max_gap_ns = 0;
		s->peers[i].prev_ns = now;
	}
	puts("{\"marked\":1}");
	fflush(stdout);
}

/* "to IP q0 q1 ...": the relay's address and one port per socket; starts sending. */
static void set_targets(struct state *s, char *args)
{
	char *save = NULL;
	char *address = strtok_r(args, " ", &save);
	if (!address || inet_pton(AF_INET, address, &s->target.sin_addr) != 1) {
		fprintf(stderr, "rtp-peers: bad 'to' line\n");
		exit(2);
	}
	s->target.sin_family = AF_INET;
	for (long i = 0; i < s->count; i++) {
		char *port = strtok_r(NULL, " ", &save);
		s->peers[i].target = port ? (uint16_t)atoi(port) : 0;
	}
	s->sending = 1;
	s->start_ns = now_ns();
	s->next = 0;
	puts("{\"sending\":1}");
	fflush(stdout);
}

static int command(struct state *s, char *line)
{
	if (!strncmp(line, "to ", 3))
		set_targets(s, line + 3);
	else if (!strcmp(line, "mark"))
		mark(s);
	else if (!strcmp(line, "report"))
		print_report(s);
	else if (!strcmp(line, "quit"))
		return 0;
	else
		fprintf(stderr, "rtp-peers: unknown command '%s'\n", line);
	return 1;
}

/* Reads what stdin has; runs each complete line. Returns 0 at end of input or on quit. */
static int read_stdin(struct state *s)
{
	char chunk[65536];
	const ssize_t n = read(0, chunk, sizeof chunk);
	if (n == 0)
		return 0;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (s->line_len + (size_t)n + 1 > s->line_cap) {
		s->line_cap = (s->line_len + (size_t)n + 1) * 2;
		s->line = realloc(s->line, s->line_cap);
		if (!s->line)
			die("realloc");
	}
	memcpy(s->line + s->line_len, chunk, (size_t)n);
	s->line_len += (size_t)n;
	size_t start = 0;
	for (size_t i = 0; i < s->line_len; i++) {
		if (s->line[i] != '\n')
			continue;
		s->line[i] = '\0';
		if (!command(s, s->line + start))
			return 0;
		start = i + 1;
	}
	memmove(s->line, s->line + start, s->line_len - start);
	s->line_len -= start;
	return 1;
}

static void send_one(struct state *s, struct peer *p)
{
	if (p->target == 0)
		return;
	uint8_t packet[RTP_PACKET];
	packet[0] = 0x80;
	packet[1] = 0; /* PCMU */
	packet[2] = (uint8_t)(p->seq >> 8), packet[3] = (uint8_t)p->seq;
	packet[4] = (uint8_t)(p->ts >> 24), packet[5] = (uint8_t)(p->ts >> 16);
	packet[6] = (uint8_t)(p->ts >> 8), packet[7] = (uint8_t)p->ts;
	packet[8] = (uint8_t)(p->ssrc >> 24), packet[9] = (uint8_t)(p->ssrc >> 16);
	packet[10] = (uint8_t)(p->ssrc >> 8), packet[11] = (uint8_t)p->ssrc;
	memset(packet + RTP_HEADER, 0xff, RTP_PAYLOAD);
	p->seq++;
	p->ts += RTP_PAYLOAD;
	s->target.sin_port = htons(p->target);
	if (sendto(p->fd, packet, sizeof packet, 0, (struct sockaddr *)&s->target, sizeof s->target) < 0)
		s->send_errors++;
	else
		s->sent++;
}

static uint64_t due_ns(const struct state *s, uint64_t k)
{
	const uint64_t cycle = k / (uint64_t)s->count, slot = k % (uint64_t)s->count;
	return s->start_ns + cycle * s->period_ns + slot * s->period_ns / (uint64_t)s->count;
}

/* Sends what is due (at most MAX_SENDS_PER_TURN); returns ms until the next send, or -1. */
static int send_due(struct state *s)
{
	if (!s->sending)
		return -1;
	uint64_t now = now_ns();
	if (now > due_ns(s, s->next) + s->period_ns) {
		const uint64_t skip = (now - due_ns(s, s->next)) / s->period_ns * (uint64_t)s->count;
		s->behind += skip;
		s->next += skip;
	}
	for (int i = 0; i < MAX_SENDS_PER_TURN && due_ns(s, s->next) <= now; i++) {
		send_one(s, &s->peers[s->next % (uint64_t)s->count]);
		s->next++;
	}
	now = now_ns();
	const uint64_t due = due_ns(s, s->next);
	return due <= now ? 0 : (int)((due - now + 999999) / 1000000);
}

static void receive(struct state *s, uint32_t index, uint64_t now)
{
	struct peer *p = &s->peers[index];
	uint8_t buffers[RECV_BATCH][RTP_PACKET + 64];
	struct iovec iov[RECV_BATCH];
	struct mmsghdr msgs[RECV_BATCH];
	for (int i = 0; i < RECV_BATCH; i++) {
		iov[i] = (struct iovec){ buffers[i], sizeof buffers[i] };
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	for (int round = 0; round < 4; round++) {
		const int n = recvmmsg(p->fd, msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		p->rx += (uint32_t)n;
		/* a mark in the same batch may be newer than this batch's time */
		if (now > p->prev_ns) {
			if (now - p->prev_ns > p->max_gap_ns)
				p->max_gap_ns = now - p->prev_ns;
			p->prev_ns = now;
		}
		if (n < RECV_BATCH)
			return;
	}
}

int main(int argc, char **argv)
{
	struct state s = { .period_ns = 20000000ull };
	const char *address = "127.0.0.1";
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--bind"))
			address = argv[i + 1];
		else if (!strcmp(argv[i], "--count"))
			s.count = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--period-us"))
			s.period_ns = (uint64_t)atol(argv[i + 1]) * 1000ull;
	}
	if (s.count <= 0 || s.count > 1000000 || s.period_ns == 0) {
		fprintf(stderr, "usage: rtp-peers --bind IP --count N [--period-us 20000]\n");
		return 2;
	}
	srandom((unsigned)(now_ns() ^ (uint64_t)getpid()));
	s.peers = calloc((size_t)s.count, sizeof *s.peers);
	s.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (!s.peers || s.epoll_fd < 0)
		die("setup");
	bind_peers(&s, address);
	const uint64_t start = now_ns();
	for (long i = 0; i < s.count; i++)
		s.peers[i].prev_ns = start;
	struct epoll_event in = { .events = EPOLLIN, .data.u32 = STDIN_TOKEN };
	if (epoll_ctl(s.epoll_fd, EPOLL_CTL_ADD, 0, &in) < 0)
		die("epoll_ctl stdin");
	print_ports(&s);
	struct epoll_event events[MAX_EVENTS];
	for (;;) {
		const int timeout = send_due(&s);
		const int n = epoll_wait(s.epoll_fd, events, MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		const uint64_t now = now_ns();
		for (int i = 0; i < n; i++) {
			if (events[i].data.u32 == STDIN_TOKEN) {
				if (!read_stdin(&s))
					return 0;
				continue;
			}
			receive(&s, events[i].data.u32, now);
		}
	}
}
