/*
 * exec-guard: runs a command that cannot outlive the benchmark. It asks the kernel to
 * SIGKILL it when the parent (the harness) dies and arms an alarm for a maximum
 * lifetime, then execs the command. Both survive execve, so the command keeps this
 * process's PID, which the harness uses to read /proc and to kill it.
 *
 * usage: exec-guard MAX_SECONDS COMMAND [ARGS...]
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3 || atoi(argv[1]) <= 0) {
		fprintf(stderr, "usage: exec-guard MAX_SECONDS COMMAND [ARGS...]\n");
		return 2;
	}
	pid_t parent = getppid();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
		perror("exec-guard: prctl");
		return 1;
	}
	if (getppid() != parent)
		return 1; /* the parent died before the guard was armed */
	alarm((unsigned)atoi(argv[1]));
	execvp(argv[2], argv + 2);
	perror("exec-guard: exec");
	return 127;
}
