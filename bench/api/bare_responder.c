/* SPDX-License-Identifier: MIT */
/*
 * This file contains the benchmark's bare libfcgi responder: the same
 * prefork shape as egw-api (socket opened before fork, N workers accepting
 * on it, one request at a time, FCGI_FAIL_ACCEPT_ON_INTR, the same way of
 * closing a connection) answering every request with GET /health's fixed
 * body.  It is the ceiling of the design:
 * what nginx + FastCGI + prefork cost with no application work at all.
 *
 * usage: bare_responder SOCKET WORKERS   (runs until SIGTERM)
 */
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const char reply[] =
    "Status: 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 63\r\n"
    "\r\n"
    "{\"status\":\"ok\",\"service\":\"forge_egress_gateway\",\"dry_run\":true}";

static void
serve(int fd)
{
	FCGX_Request r;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	FCGX_Init();
	FCGX_InitRequest(&r, fd, FCGI_FAIL_ACCEPT_ON_INTR);
	while (FCGX_Accept_r(&r) >= 0) {
		FCGX_PutStr(reply, (int)sizeof(reply) - 1, r.out);
		/* Closed as egw-api's worker_close_quickly() closes: with stdin
		 * read to its end, a plain close() without libfcgi's wait for
		 * nginx to close first. */
		if (FCGX_GetChar(r.in) == EOF && FCGX_HasSeenEOF(r.in) == EOF)
			FCGX_Detach(&r);
		FCGX_Finish_r(&r);
	}
	_exit(0);
}

int
main(int argc, char **argv)
{
	int fd, n;
	pid_t *pids;
	sigset_t set;
	int sig;

	if (argc != 3 || (n = atoi(argv[2])) < 1 || n > 256) {
		fprintf(stderr, "usage: bare_responder SOCKET WORKERS\n");
		return 2;
	}
	unlink(argv[1]);
	if ((fd = FCGX_OpenSocket(argv[1], 1024)) < 0) {
		perror("FCGX_OpenSocket");
		return 1;
	}
	pids = calloc((size_t)n, sizeof(*pids));
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < n; i++) {
		if ((pids[i] = fork()) == 0) {
			sigprocmask(SIG_UNBLOCK, &set, NULL);
			serve(fd);
		}
	}
	sigwait(&set, &sig);
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGTERM);
	for (int i = 0; i < n; i++)
		waitpid(pids[i], NULL, 0);
	unlink(argv[1]);
	return 0;
}
