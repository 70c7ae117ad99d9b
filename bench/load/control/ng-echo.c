/*
 * ng-echo: a stand-in relay that answers every ng request at once with
 * `<cookie> d6:result2:oke`, doing no work. Driving it shows the load generator's own
 * ceiling: the most cycles per second the harness can measure on this machine.
 *
 * usage: ng-echo PORT   (binds 127.0.0.1:PORT, prints "ready", runs until killed)
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define MAX_REQUEST 65536
#define MAX_COOKIE 256

static const char reply_body[] = " d6:result2:oke";

int main(int argc, char **argv)
{
	if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
		fprintf(stderr, "usage: ng-echo PORT\n");
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])) };
	local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		perror("ng-echo: bind");
		return 1;
	}
	static char in[BATCH][MAX_REQUEST];
	static char out[BATCH][MAX_COOKIE + sizeof(reply_body)];
	struct sockaddr_in peers[BATCH];
	struct iovec in_iov[BATCH], out_iov[BATCH];
	struct mmsghdr in_msg[BATCH], out_msg[BATCH];
	for (int i = 0; i < BATCH; i++) {
		in_iov[i] = (struct iovec){ in[i], MAX_REQUEST };
		in_msg[i].msg_hdr = (struct msghdr){ .msg_name = &peers[i], .msg_iov = &in_iov[i], .msg_iovlen = 1 };
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		for (int i = 0; i < BATCH; i++)
			in_msg[i].msg_hdr.msg_namelen = sizeof(peers[i]);
		int n = recvmmsg(fd, in_msg, BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;
		int replies = 0;
		for (int i = 0; i < n; i++) {
			const char *space = memchr(in[i], ' ', in_msg[i].msg_len);
			size_t cookie = space ? (size_t)(space - in[i]) : 0;
			if (cookie == 0 || cookie > MAX_COOKIE)
				continue; /* no cookie: no reply, as the ng protocol says */
			memcpy(out[replies], in[i], cookie);
			memcpy(out[replies] + cookie, reply_body, sizeof(reply_body) - 1);
			out_iov[replies] = (struct iovec){ out[replies], cookie + sizeof(reply_body) - 1 };
			out_msg[replies].msg_hdr = (struct msghdr){
				.msg_name = &peers[i], .msg_namelen = in_msg[i].msg_hdr.msg_namelen,
				.msg_iov = &out_iov[replies], .msg_iovlen = 1,
			};
			replies++;
		}
		if (replies > 0)
			sendmmsg(fd, out_msg, (unsigned)replies, 0);
	}
}
