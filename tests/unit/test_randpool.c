/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of randpool.c: bytes are handed out once,
 * a forked child never gets its parent's leftover bytes, and requests
 * above RANDPOOL_MAX are refused.
 */
#include "err.h"
#include "randpool.h"
#include "tap.h"

#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DRAWS 200

int
main(void)
{
	static uint8_t draws[DRAWS][16];
	uint8_t parent[16], child[16], big[RANDPOOL_MAX + 1];
	size_t same = 0;
	int fds[2], status;
	pid_t pid;
	bool ok_all = true;

	for (int i = 0; i < DRAWS; i++)
		ok_all &= randpool_bytes(draws[i], sizeof(draws[i])) == 0;
	ok(ok_all, "%d draws of 16 bytes", DRAWS);
	for (int i = 0; i < DRAWS; i++)
		for (int j = i + 1; j < DRAWS; j++)
			same += memcmp(draws[i], draws[j], 16) == 0;
	is_int((int)same, 0, "no two draws are equal (bytes are handed out once)");

	/* The pool now holds leftovers; a child must not reuse them. */
	if (pipe(fds) != 0)
		return 99;
	pid = fork();
	if (pid == 0) {
		uint8_t b[16];

		close(fds[0]);
		if (randpool_bytes(b, sizeof(b)) != 0 ||
		    write(fds[1], b, sizeof(b)) != (ssize_t)sizeof(b))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	is_int(randpool_bytes(parent, sizeof(parent)), 0, "parent draws after the fork");
	ok(read(fds[0], child, sizeof(child)) == (ssize_t)sizeof(child),
	    "child drew 16 bytes");
	waitpid(pid, &status, 0);
	ok(memcmp(parent, child, sizeof(child)) != 0,
	    "the child's bytes differ from the parent's next ones");
	is_int(randpool_bytes(big, sizeof(big)), EGW_E_INVALID,
	    "more than RANDPOOL_MAX bytes refused");
	return tap_done();
}
