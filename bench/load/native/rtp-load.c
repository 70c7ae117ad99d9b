/*
 * rtp-load: the traffic generator and receiver of the packet-rate benchmark.
 *
 * It emulates N calls, each with a caller and a callee UDP socket on 127.0.0.1. Every
 * call carries two streams (caller->callee and callee->caller) of 172-byte G.711 RTP
 * packets (12-byte header + 160-byte payload), one packet per stream every period
 * (20 ms), with the streams' send instants spread evenly over the period. The first
 * 8 payload bytes hold the CLOCK_MONOTONIC send time in ns, from which the receiver
 * computes one-way latency; per-stream sequence numbers give loss and duplicates.
 *
 * Protocol (stdin/stdout, one process per trial):
 *   1. prints {"ports":[[callerPort,calleePort],...]} once its sockets are bound;
 *   2. reads N lines "aPort bPort" from stdin: the relay's port facing the caller (a)
 *      and the callee (b) for each call; each socket is connect()ed to its relay port,
 *      so a relay must answer from the port it receives on, as RTP endpoints expect;
 *   3. runs warm-up, measurement window and drain, then prints one JSON result line.
 * Only packets sent inside the window count towards loss and latency. At the window's
 * edges it samples the relay's CPU time (utime+stime of --relay-pid, and the scheduler's
 * run time of its threads), its own, and the whole machine's busy time, so that load
 * from unrelated processes shows in the results.
 *
 * Namespace mode (--caller-netns/--callee-netns, root only): the caller sockets are opened in
 * one network namespace and the callee sockets in another (setns between the two batches),
 * bound to --caller-addr/--callee-addr, so the packets cross real veths through a relay in a
 * third namespace; the callee side reaches the relay at --relay-addr-b (default --relay-addr).
 *
 * Single-threaded and epoll-driven. Within SPIN_NS of the next send it polls instead of
 * sleeping: timed waits overshoot by ~100 us on a VM, and a sleeping receiver would make
 * the relay pay a cross-CPU wake-up for every packet it sends, which a far-end host
 * behind a NIC never costs it. So its CPU use says little; the send lag (how late
 * packets leave against their schedule) shows when the generator is the bottleneck.
 * Every phase has a fixed length, so it always ends.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RTP_HEADER 12
#define RTP_PAYLOAD 160
#define RTP_PACKET (RTP_HEADER + RTP_PAYLOAD)
#define RECV_BATCH 16
#define MAX_EVENTS 512
#define MAX_SENDS_PER_TURN 256
#define HIST_BUCKETS 1000000 /* 1 us buckets up to 1 s; the last one holds overflow */
/* The last stretch before a send is polled, not slept (see above). */
#define SPIN_NS 200000ull

struct options {
	long calls;
	long warmup_ms;
	long window_ms;
	long drain_ms;
	long period_us;
	int relay_pid;
	const char *relay_addr;
	const char *relay_addr_b;
	const char *caller_netns; /* NULL: this process's own namespace */
	const char *callee_netns;
	const char *caller_addr;
	const char *callee_addr;
};

struct stream {
	int tx_fd;
	uint32_t ssrc;
	uint16_t seq;
	uint32_t rtp_ts;
	uint16_t win_first_seq;
	uint32_t win_sent;
	uint32_t win_unique;
	uint64_t *seen; /* one bit per window sequence offset */
};

struct histogram {
	uint32_t *buckets;
	uint64_t count;
	uint64_t max_ns;
};

enum phase { WARMUP, WINDOW, DRAIN };

/* CPU counters read at a window edge, all in ns; UINT64_MAX when unreadable. */
struct cpu_sample {
	uint64_t relay_ticks;  /* relay utime+stime, /proc/PID/stat (tick-sampled) */
	uint64_t relay_run;    /* relay sum_exec_runtime over its threads, /proc/PID/task/.../schedstat */
	uint64_t self_ticks;   /* this generator's utime+stime */
	uint64_t machine_busy; /* all CPUs' non-idle time, /proc/stat */
	uint64_t softirqd;     /* utime+stime of the ksoftirqd/N threads (softirq work deferred to them) */
};

struct generator {
	struct options opt;
	long nstreams;
	struct stream *streams;
	int *fds; /* 2 per call: caller, callee */
	int epoll_fd;
	enum phase phase;
	uint64_t t0, window_start, window_end, stop;
	uint64_t next_slot;
	uint32_t seen_bits;
	struct histogram latency, send_lag;
	uint64_t sent_total, send_errors, rx_total, rx_during_window;
	uint64_t bad_packets, misrouted, duplicates;
	struct cpu_sample window_cpu[2]; /* at the window's start and end */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "rtp-load: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: rtp-load --calls N [--warmup-ms 2000] [--window-ms 8000] "
			"[--drain-ms 300] [--period-us 20000] [--relay-pid PID] [--relay-addr 127.0.0.1]\n"
			"       [--relay-addr-b IP] [--caller-netns NAME --caller-addr IP --callee-netns NAME --callee-addr IP]\n");
	exit(2);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	*o = (struct options){ 0, 2000, 8000, 300, 20000, 0, "127.0.0.1", NULL, NULL, NULL, "127.0.0.1", "127.0.0.1" };
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (!strcmp(k, "--calls")) o->calls = atol(v);
		else if (!strcmp(k, "--warmup-ms")) o->warmup_ms = atol(v);
		else if (!strcmp(k, "--window-ms")) o->window_ms = atol(v);
		else if (!strcmp(k, "--drain-ms")) o->drain_ms = atol(v);
		else if (!strcmp(k, "--period-us")) o->period_us = atol(v);
		else if (!strcmp(k, "--relay-pid")) o->relay_pid = atoi(v);
		else if (!strcmp(k, "--relay-addr")) o->relay_addr = v;
		else if (!strcmp(k, "--relay-addr-b")) o->relay_addr_b = v;
		else if (!strcmp(k, "--caller-netns")) o->caller_netns = v;
		else if (!strcmp(k, "--callee-netns")) o->callee_netns = v;
		else if (!strcmp(k, "--caller-addr")) o->caller_addr = v;
		else if (!strcmp(k, "--callee-addr")) o->callee_addr = v;
		else usage();
	}
	if (argc % 2 != 1 || o->calls <= 0 || o->window_ms <= 0 || o->period_us <= 0)
		usage();
}

static void hist_init(struct histogram *h)
{
	h->buckets = calloc(HIST_BUCKETS, sizeof *h->buckets);
	if (!h->buckets)
		die("calloc");
}

static void hist_add(struct histogram *h, uint64_t ns)
{
	uint64_t us = ns / 1000;
	h->buckets[us < HIST_BUCKETS ? us : HIST_BUCKETS - 1]++;
	h->count++;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

/* Upper edge of the bucket holding quantile q, in microseconds. */
static double hist_quantile_us(const struct histogram *h, double q)
{
	if (!h->count)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->count), seen = 0;
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen > rank)
			return i + 1;
	}
	return HIST_BUCKETS;
}

static uint64_t ticks_to_ns(unsigned long long ticks)
{
	return (uint64_t)ticks * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* Reads a small /proc file into buf; returns 0 on failure. */
static int read_proc(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = 0;
	return n > 0;
}

/* utime + stime of a process (all its threads), in ns. */
static uint64_t process_cpu_ns(int pid)
{
	char path[64], buf[4096];
	unsigned long long utime, stime;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if (!read_proc(path, buf, sizeof buf))
		return UINT64_MAX;
	char *p = strrchr(buf, ')');
	/* After "pid (comm)" come fields 3..: state, then 10 fields, then utime (14), stime (15). */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &utime, &stime) != 2)
		return UINT64_MAX;
	return ticks_to_ns(utime + stime);
}

/* Scheduler run time of a process summed over its live threads, in ns. */
static uint64_t process_run_ns(int pid)
{
	char path[300], buf[256];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *dir = opendir(path);
	if (!dir)
		return UINT64_MAX;
	uint64_t total = 0;
	for (struct dirent *e; (e = readdir(dir));) {
		unsigned long long run;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", pid, e->d_name);
		if (read_proc(path, buf, sizeof buf) && sscanf(buf, "%llu", &run) == 1)
			total += run;
	}
	closedir(dir);
	return total;
}

/* Non-idle time of all CPUs (user nice system irq softirq steal), in ns. */
static uint64_t machine_busy_ns(void)
{
	char buf[512];
	unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
	if (!read_proc("/proc/stat", buf, sizeof buf) ||
	    sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle,
		   &iowait, &irq, &softirq, &steal) != 8)
		return UINT64_MAX;
	return ticks_to_ns(user + nice + sys + irq + softirq + steal);
}

/* CPU time of the kernel's ksoftirqd threads: packet processing that no process pays for. */
static uint64_t softirqd_ns(void)
{
	DIR *dir = opendir("/proc");
	if (!dir)
		return UINT64_MAX;
	uint64_t total = 0;
	struct dirent *e;
	while ((e = readdir(dir))) {
		char path[64], comm[64];
		int pid = atoi(e->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/%d/comm", pid);
		if (!read_proc(path, comm, sizeof comm) || strncmp(comm, "ksoftirqd/", 10) != 0)
			continue;
		uint64_t ns = process_cpu_ns(pid);
		if (ns != UINT64_MAX)
			total += ns;
	}
	closedir(dir);
	return total;
}

static struct cpu_sample sample_cpu(int relay_pid)
{
	return (struct cpu_sample){
		.relay_ticks = relay_pid > 0 ? process_cpu_ns(relay_pid) : UINT64_MAX,
		.relay_run = relay_pid > 0 ? process_run_ns(relay_pid) : UINT64_MAX,
		.self_ticks = process_cpu_ns(getpid()),
		.machine_busy = machine_busy_ns(),
		.softirqd = softirqd_ns(),
	};
}

/* end - start as a JSON number, or -1 when either reading failed. */
static double delta(uint64_t start, uint64_t end)
{
	return start == UINT64_MAX || end == UINT64_MAX ? -1.0 : (double)(end - start);
}

static int bind_socket(uint16_t *port, const char *addr)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket (is the open-file limit high enough?)");
	struct sockaddr_in sa = { .sin_family = AF_INET };
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "rtp-load: bad local address %s\n", addr);
		exit(1);
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind");
	socklen_t len = sizeof sa;
	getsockname(fd, (struct sockaddr *)&sa, &len);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Sockets opened after this live in the named namespace (/run/netns/NAME); NULL: stay. */
static void enter_netns(const char *name)
{
	if (!name)
		return;
	char path[256];
	snprintf(path, sizeof path, "/run/netns/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		die(path);
	close(fd);
}

static void open_sockets(struct generator *g)
{
	long n = g->opt.calls;
	g->fds = calloc((size_t)(2 * n), sizeof *g->fds);
	uint16_t *ports = calloc((size_t)(2 * n), sizeof *ports);
	if (!g->fds || !ports)
		die("calloc");
	/* Callers first (even indexes), then callees: one namespace switch per side. */
	for (int side = 0; side < 2; side++) {
		enter_netns(side ? g->opt.callee_netns : g->opt.caller_netns);
		for (long i = side; i < 2 * n; i += 2)
			g->fds[i] = bind_socket(&ports[i], side ? g->opt.callee_addr : g->opt.caller_addr);
	}
	printf("{\"ports\":[");
	for (long i = 0; i < n; i++)
		printf("%s[%u,%u]", i ? "," : "", ports[2 * i], ports[2 * i + 1]);
	printf("]}\n");
	fflush(stdout);
	free(ports);
}

static void connect_socket(int fd, const char *addr, long port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (port <= 0 || port > 65535 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "rtp-load: bad relay endpoint %s:%ld\n", addr, port);
		exit(1);
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect");
}

/* Stream 2i goes caller -> relay a -> callee; stream 2i+1 callee -> relay b -> caller. */
static void read_relay_ports(struct generator *g)
{
	char line[128];
	for (long i = 0; i < g->opt.calls; i++) {
		long a, b;
		if (!fgets(line, sizeof line, stdin) || sscanf(line, "%ld %ld", &a, &b) != 2) {
			fprintf(stderr, "rtp-load: expected %ld lines \"aPort bPort\", got %ld\n",
				g->opt.calls, i);
			exit(1);
		}
		connect_socket(g->fds[2 * i], g->opt.relay_addr, a);
		connect_socket(g->fds[2 * i + 1], g->opt.relay_addr_b ? g->opt.relay_addr_b : g->opt.relay_addr, b);
	}
}

static void init_streams(struct generator *g)
{
	g->nstreams = 2 * g->opt.calls;
	g->streams = calloc((size_t)g->nstreams, sizeof *g->streams);
	g->seen_bits = (uint32_t)(g->opt.window_ms * 1000 / g->opt.period_us + 64);
	if (!g->streams)
		die("calloc");
	for (long k = 0; k < g->nstreams; k++) {
		struct stream *s = &g->streams[k];
		s->tx_fd = g->fds[k];
		s->ssrc = 0x10000000u + (uint32_t)k;
		s->seq = (uint16_t)(k * 7919);
		s->rtp_ts = (uint32_t)k * 160u;
		s->seen = calloc(g->seen_bits / 64 + 1, sizeof(uint64_t));
		if (!s->seen)
			die("calloc");
	}
}

static void watch_sockets(struct generator *g)
{
	g->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (g->epoll_fd < 0)
		die("epoll_create1");
	for (long k = 0; k < g->nstreams; k++) {
		/* A packet arriving on socket k belongs to the stream sent from its peer socket. */
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)(k ^ 1) };
		if (epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, g->fds[k], &ev) < 0)
			die("epoll_ctl");
	}
}

static uint64_t slot_due(const struct generator *g, uint64_t slot)
{
	return g->t0 + slot * (uint64_t)g->opt.period_us * 1000ull / (uint64_t)g->nstreams;
}

static void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put_be32(uint8_t *p, uint32_t v) { put_be16(p, (uint16_t)(v >> 16)); put_be16(p + 2, (uint16_t)v); }
static uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get_be32(const uint8_t *p) { return (uint32_t)get_be16(p) << 16 | get_be16(p + 2); }

static void send_packet(struct generator *g, struct stream *s, uint64_t due)
{
	uint8_t pkt[RTP_PACKET];
	memset(pkt + RTP_HEADER, 0xff, RTP_PAYLOAD); /* mu-law silence */
	pkt[0] = 0x80;
	pkt[1] = 0; /* PT 0, PCMU */
	put_be16(pkt + 2, s->seq);
	put_be32(pkt + 4, s->rtp_ts);
	put_be32(pkt + 8, s->ssrc);
	uint64_t t = now_ns();
	memcpy(pkt + RTP_HEADER, &t, sizeof t);
	if (g->phase == WINDOW)
		hist_add(&g->send_lag, t > due ? t - due : 0);
	if (send(s->tx_fd, pkt, sizeof pkt, 0) != (ssize_t)sizeof pkt) {
		g->send_errors++;
	} else {
		g->sent_total++;
		if (g->phase == WINDOW)
			s->win_sent++;
	}
	s->seq++;
	s->rtp_ts += RTP_PAYLOAD;
}

static void send_due(struct generator *g, uint64_t now)
{
	for (int n = 0; n < MAX_SENDS_PER_TURN; n++) {
		uint64_t due = slot_due(g, g->next_slot);
		if (due > now)
			return;
		send_packet(g, &g->streams[g->next_slot % (uint64_t)g->nstreams], due);
		g->next_slot++;
	}
}

static void receive_packet(struct generator *g, struct stream *s, const uint8_t *p,
			   unsigned len, uint64_t now)
{
	if (len != RTP_PACKET || (p[0] & 0xc0) != 0x80) {
		g->bad_packets++;
		return;
	}
	if (get_be32(p + 8) != s->ssrc) {
		g->misrouted++;
		return;
	}
	g->rx_total++;
	if (now >= g->window_start && now < g->window_end)
		g->rx_during_window++;
	uint16_t offset = (uint16_t)(get_be16(p + 2) - s->win_first_seq);
	if (offset >= s->win_sent || offset >= g->seen_bits)
		return; /* sent outside the measurement window */
	uint64_t bit = 1ull << (offset % 64);
	if (s->seen[offset / 64] & bit) {
		g->duplicates++;
		return;
	}
	s->seen[offset / 64] |= bit;
	s->win_unique++;
	uint64_t sent_at;
	memcpy(&sent_at, p + RTP_HEADER, sizeof sent_at);
	hist_add(&g->latency, now > sent_at ? now - sent_at : 0);
}

static void drain_socket(struct generator *g, long fd_index, long stream_index)
{
	static uint8_t bufs[RECV_BATCH][RTP_PACKET + 64];
	struct iovec iov[RECV_BATCH];
	struct mmsghdr msgs[RECV_BATCH];
	for (int i = 0; i < RECV_BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], sizeof bufs[i] };
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	int n = recvmmsg(g->fds[fd_index], msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
	uint64_t now = now_ns();
	for (int i = 0; i < n; i++)
		receive_packet(g, &g->streams[stream_index], bufs[i], msgs[i].msg_len, now);
}

static void poll_and_receive(struct generator *g, uint64_t timeout_ns)
{
	struct epoll_event evs[MAX_EVENTS];
	struct timespec ts = { (time_t)(timeout_ns / 1000000000ull), (long)(timeout_ns % 1000000000ull) };
	int n = epoll_pwait2(g->epoll_fd, evs, MAX_EVENTS, &ts, NULL);
	if (n < 0 && errno != EINTR)
		die("epoll_pwait2");
	for (int i = 0; i < n; i++) {
		long stream_index = (long)evs[i].data.u64;
		drain_socket(g, stream_index ^ 1, stream_index);
	}
}

static void begin_window(struct generator *g)
{
	for (long k = 0; k < g->nstreams; k++)
		g->streams[k].win_first_seq = g->streams[k].seq;
	g->window_cpu[0] = sample_cpu(g->opt.relay_pid);
	g->phase = WINDOW;
}

static void end_window(struct generator *g)
{
	g->window_cpu[1] = sample_cpu(g->opt.relay_pid);
	g->phase = DRAIN;
}

/* Advances the phase; returns 0 once the drain is over. */
static int advance_phase(struct generator *g, uint64_t now)
{
	if (g->phase == WARMUP && now >= g->window_start)
		begin_window(g);
	if (g->phase == WINDOW && now >= g->window_end)
		end_window(g);
	return now < g->stop;
}

static void run(struct generator *g)
{
	g->t0 = now_ns() + 10000000ull;
	g->window_start = g->t0 + (uint64_t)g->opt.warmup_ms * 1000000ull;
	g->window_end = g->window_start + (uint64_t)g->opt.window_ms * 1000000ull;
	g->stop = g->window_end + (uint64_t)g->opt.drain_ms * 1000000ull;
	for (uint64_t now = now_ns(); advance_phase(g, now); now = now_ns()) {
		uint64_t next = g->stop;
		if (g->phase != DRAIN) {
			send_due(g, now);
			next = slot_due(g, g->next_slot);
		}
		uint64_t t = now_ns();
		poll_and_receive(g, next > t + SPIN_NS ? next - t - SPIN_NS : 0);
	}
}

static void print_result(const struct generator *g)
{
	uint64_t sent = 0, unique = 0;
	for (long k = 0; k < g->nstreams; k++) {
		sent += g->streams[k].win_sent;
		unique += g->streams[k].win_unique;
	}
	double window_s = (double)g->opt.window_ms / 1000.0;
	double loss = sent ? 100.0 * (double)(sent - unique) / (double)sent : 100.0;
	const struct cpu_sample *c = g->window_cpu;
	printf("{\"calls\":%ld,\"windowS\":%.3f,\"sentInWindow\":%llu,\"receivedInWindow\":%llu,"
	       "\"ppsIn\":%.1f,\"ppsOut\":%.1f,\"lossPct\":%.4f,"
	       "\"latencyP50Us\":%.0f,\"latencyP99Us\":%.0f,\"latencyP999Us\":%.0f,\"latencyMaxUs\":%.0f,"
	       "\"sendLagP99Us\":%.0f,\"sendLagMaxUs\":%.0f,\"sendErrors\":%llu,\"badPackets\":%llu,"
	       "\"misrouted\":%llu,\"duplicates\":%llu,\"forwardedDuringWindow\":%llu,"
	       "\"relayCpuNs\":%.0f,\"relayRunNs\":%.0f,\"generatorCpuNs\":%.0f,\"machineBusyNs\":%.0f,\"softirqdCpuNs\":%.0f}\n",
	       g->opt.calls, window_s, (unsigned long long)sent, (unsigned long long)unique,
	       (double)sent / window_s, (double)g->rx_during_window / window_s, loss,
	       hist_quantile_us(&g->latency, 0.5), hist_quantile_us(&g->latency, 0.99),
	       hist_quantile_us(&g->latency, 0.999), (double)g->latency.max_ns / 1000.0,
	       hist_quantile_us(&g->send_lag, 0.99), (double)g->send_lag.max_ns / 1000.0,
	       (unsigned long long)g->send_errors, (unsigned long long)g->bad_packets,
	       (unsigned long long)g->misrouted, (unsigned long long)g->duplicates,
	       (unsigned long long)g->rx_during_window, delta(c[0].relay_ticks, c[1].relay_ticks),
	       delta(c[0].relay_run, c[1].relay_run), delta(c[0].self_ticks, c[1].self_ticks),
	       delta(c[0].machine_busy, c[1].machine_busy), delta(c[0].softirqd, c[1].softirqd));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static struct generator g;
	parse_options(argc, argv, &g.opt);
	prctl(PR_SET_TIMERSLACK, 1UL);
	hist_init(&g.latency);
	hist_init(&g.send_lag);
	open_sockets(&g);
	read_relay_ports(&g);
	init_streams(&g);
	watch_sockets(&g);
	run(&g);
	print_result(&g);
	return 0;
}
