/* SPDX-License-Identifier: MIT */
/*
 * This file contains the process's pool of random bytes for identifiers
 * (request ids, event ids).
 *
 * getrandom() is a system call, and on this project's virtual machines a
 * system call per request was a measurable share of a request's cost; the
 * pool fetches 512 bytes at a time and hands them out once each.  A forked
 * child drops whatever its parent left in the pool (two processes must
 * never hand out the same bytes).  Not for secrets: bytes sit in memory
 * until used (they are wiped as they are handed out).  Not thread-safe:
 * each process's identifiers are made by one thread.
 */
#ifndef EGW_RANDPOOL_H
#define EGW_RANDPOOL_H

#include <stddef.h>

/* The most one call may take. */
#define RANDPOOL_MAX 64

/**
 * randpool_bytes() - fill @out with @n random bytes (n <= RANDPOOL_MAX)
 *
 * Returns: 0, EGW_E_INVALID (n too large) or EGW_E_IO (no randomness).
 */
int randpool_bytes(void *out, size_t n);

#endif
