/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-connrate, the new-connections-per-second probe
 * of bench/applier/bench_forward.sh.
 *
 *   egw-connrate serve ADDR PORT           accept and close, forever
 *   egw-connrate connect SRC DST PORT SECONDS [PARALLEL]
 *       open and close TCP connections from SRC for SECONDS with PARALLEL
 *       processes (default 2); prints "<connections per second> <failures>"
 *
 * The client closes with SO_LINGER 0 (a reset) so that TIME_WAIT does not
 * exhaust the source ports; every connection still makes the full
 * SYN / SYN-ACK / ACK round trip through the gateway, and only its first
 * packet walks the whole classification (the rest are established).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
serve(const char *addr, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0 || inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 4096) != 0) {
		perror("bind/listen");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept(fd, NULL, NULL);

		if (c >= 0)
			close(c);
	}
}

static void
client(const char *src, const char *dst, int port, double secs, int out)
{
	struct sockaddr_in s = { .sin_family = AF_INET };
	struct sockaddr_in d = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct linger lg = { 1, 0 };
	struct timeval tv = { 1, 0 };
	long n = 0, fail = 0;
	double end;

	inet_pton(AF_INET, src, &s.sin_addr);
	inet_pton(AF_INET, dst, &d.sin_addr);
	end = now_s() + secs;
	while (now_s() < end) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (fd < 0) {
			fail++;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (bind(fd, (struct sockaddr *)&s, sizeof(s)) == 0 &&
		    connect(fd, (struct sockaddr *)&d, sizeof(d)) == 0)
			n++;
		else
			fail++;
		close(fd);
	}
	dprintf(out, "%ld %ld\n", n, fail);
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2], atoi(argv[3]));
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "connect") == 0) {
		int par = argc == 7 ? atoi(argv[6]) : 2, p[2];
		double secs = atof(argv[5]);
		long total = 0, fails = 0;
		FILE *f;

		if (par < 1 || par > 16 || pipe(p) != 0)
			return 2;
		for (int i = 0; i < par; i++)
			if (fork() == 0) {
				close(p[0]);
				client(argv[2], argv[3], atoi(argv[4]), secs, p[1]);
				_exit(0);
			}
		close(p[1]);
		f = fdopen(p[0], "r");
		for (int i = 0; i < par; i++) {
			long n, fl;

			if (fscanf(f, "%ld %ld", &n, &fl) == 2) {
				total += n;
				fails += fl;
			}
		}
		while (wait(NULL) > 0)
			;
		printf("%.0f %ld\n", (double)total / secs, fails);
		return 0;
	}
	fprintf(stderr, "usage: egw-connrate serve ADDR PORT | "
	    "connect SRC DST PORT SECONDS [PARALLEL]\n");
	return 2;
}
