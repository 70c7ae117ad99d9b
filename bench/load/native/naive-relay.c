/*
 * naive-relay: the reference relay of the packet-rate benchmark, "what a straightforward
 * implementation achieves". One UDP socket per leg on 127.0.0.1, one epoll loop, one
 * thread; when a leg's socket is readable it does one recvmmsg and one sendmmsg of those
 * packets out of the peer leg's socket to the peer's signalled remote. No coalescing in
 * time, no batching across sockets, no endpoint learning.
 *
 * Protocol (stdin/stdout), shared with the rtphub target:
 *   prints "ready"; reads lines "callerPort calleePort" (remotes on 127.0.0.1) up to a
 *   line "end"; prints {"ports":[[aPort,bPort],...]} (a faces the caller, b the callee);
 *   forwards until stdin says "quit" or closes, or --max-seconds pass.
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

#define BATCH 32
#define MAX_EVENTS 512
#define BUF_SIZE 2048

struct leg {
	int fd;
	uint16_t local_port;
	struct sockaddr_in remote;
	struct leg *peer;
};

struct relay {
	struct leg *legs; /* 2 per call: a (caller side), b (callee side) */
	long calls, capacity;
	int epoll_fd;
	uint64_t forwarded, send_failures;
};

static void die(const char *what)
{
	fprintf(stderr, "naive-relay: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void open_leg(struct leg *leg, long remote_port)
{
	leg->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (leg->fd < 0)
		die("socket");
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(leg->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind");
	socklen_t len = sizeof sa;
	getsockname(leg->fd, (struct sockaddr *)&sa, &len);
	leg->local_port = ntohs(sa.sin_port);
	leg->remote = (struct sockaddr_in){ .sin_family = AF_INET,
					    .sin_port = htons((uint16_t)remote_port),
					    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
}

static void add_call(struct relay *r, long caller_port, long callee_port)
{
	if (r->calls == r->capacity) {
		r->capacity = r->capacity ? 2 * r->capacity : 1024;
		r->legs = realloc(r->legs, (size_t)(2 * r->capacity) * sizeof *r->legs);
		if (!r->legs)
			die("realloc");
	}
	struct leg *a = &r->legs[2 * r->calls], *b = a + 1;
	open_leg(a, caller_port);
	open_leg(b, callee_port);
	r->calls++;
}

static void read_calls(struct relay *r)
{
	char line[128];
	while (fgets(line, sizeof line, stdin)) {
		long caller, callee;
		if (!strncmp(line, "end", 3))
			return;
		if (sscanf(line, "%ld %ld", &caller, &callee) != 2 || caller <= 0 || caller > 65535 ||
		    callee <= 0 || callee > 65535) {
			fprintf(stderr, "naive-relay: bad call line: %s", line);
			exit(1);
		}
		add_call(r, caller, callee);
	}
	fprintf(stderr, "naive-relay: stdin closed before \"end\"\n");
	exit(1);
}

/* Pointers into legs are taken only now, after the last realloc. */
static void watch_legs(struct relay *r)
{
	r->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epoll_fd < 0)
		die("epoll_create1");
	struct epoll_event ctl = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, STDIN_FILENO, &ctl) < 0)
		die("epoll_ctl stdin");
	for (long i = 0; i < 2 * r->calls; i++) {
		struct leg *leg = &r->legs[i];
		leg->peer = &r->legs[i ^ 1];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = leg };
		if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, leg->fd, &ev) < 0)
			die("epoll_ctl");
	}
}

static void print_ports(const struct relay *r)
{
	printf("{\"ports\":[");
	for (long i = 0; i < r->calls; i++)
		printf("%s[%u,%u]", i ? "," : "", r->legs[2 * i].local_port, r->legs[2 * i + 1].local_port);
	printf("]}\n");
	fflush(stdout);
}

static void forward(struct relay *r, struct leg *from)
{
	static uint8_t bufs[BATCH][BUF_SIZE];
	struct iovec iov[BATCH];
	struct mmsghdr msgs[BATCH];
	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], BUF_SIZE };
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	int n = recvmmsg(from->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return;
	struct leg *to = from->peer;
	for (int i = 0; i < n; i++) {
		iov[i].iov_len = msgs[i].msg_len;
		msgs[i].msg_hdr.msg_name = &to->remote;
		msgs[i].msg_hdr.msg_namelen = sizeof to->remote;
	}
	int sent = sendmmsg(to->fd, msgs, (unsigned)n, MSG_DONTWAIT);
	r->forwarded += sent > 0 ? (uint64_t)sent : 0;
	r->send_failures += (uint64_t)(n - (sent > 0 ? sent : 0));
}

/* Returns 0 when the controller asks to quit or goes away. */
static int handle_control(void)
{
	char buf[256];
	ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
	return n > 0 && memmem(buf, (size_t)n, "quit", 4) == NULL;
}

static void run(struct relay *r, long max_seconds)
{
	time_t deadline = time(NULL) + max_seconds;
	struct epoll_event evs[MAX_EVENTS];
	while (time(NULL) < deadline) {
		int n = epoll_wait(r->epoll_fd, evs, MAX_EVENTS, 1000);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr && !handle_control())
				return;
			if (evs[i].data.ptr)
				forward(r, evs[i].data.ptr);
		}
	}
}

int main(int argc, char **argv)
{
	long max_seconds = 900;
	if (argc == 3 && !strcmp(argv[1], "--max-seconds"))
		max_seconds = atol(argv[2]);
	else if (argc != 1) {
		fprintf(stderr, "usage: naive-relay [--max-seconds 900]\n");
		return 2;
	}
	struct relay r = { 0 };
	printf("ready\n");
	fflush(stdout);
	read_calls(&r);
	watch_legs(&r);
	print_ports(&r);
	run(&r, max_seconds);
	fprintf(stderr, "naive-relay: forwarded %llu, send failures %llu\n",
		(unsigned long long)r.forwarded, (unsigned long long)r.send_failures);
	return 0;
}
