/* SPDX-License-Identifier: MIT */
/*
 * This file contains the pool of random bytes for identifiers (see
 * randpool.h).
 */
#include "randpool.h"
#include "err.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

static unsigned char randpool[512];
static size_t randpool_left;
static pthread_once_t randpool_once = PTHREAD_ONCE_INIT;

static void
randpool_drop(void)
{
	randpool_left = 0;
}

static void
randpool_setup(void)
{
	pthread_atfork(NULL, NULL, randpool_drop);
}

int
randpool_bytes(void *out, size_t n)
{
	if (n > RANDPOOL_MAX)
		return EGW_E_INVALID;
	pthread_once(&randpool_once, randpool_setup);
	while (randpool_left < n) {
		ssize_t r = getrandom(randpool, sizeof(randpool), 0);

		if (r == (ssize_t)sizeof(randpool))
			randpool_left = sizeof(randpool);
		else if (r >= 0 || errno != EINTR)
			return EGW_E_IO;
	}
	randpool_left -= n;
	memcpy(out, randpool + randpool_left, n);
	explicit_bzero(randpool + randpool_left, n);
	return 0;
}
