/* SPDX-License-Identifier: MIT */
/*
 * This file contains a fault injector for api_durability.sh, loaded into
 * egw-api with LD_PRELOAD: while the file named by EGW_TEST_FSYNC_FAULT
 * exists, fdatasync() and fsync() fail with EIO, as they do when the disk
 * reports a write-back error; while the file named by EGW_TEST_WRITE_FAULT
 * exists, pwrite64() and pwrite() fail with ENOSPC, as on a full file
 * system (SQLite on Debian 12 calls pwrite64; log lines use write()).  A
 * disk that fails on demand cannot be had
 * here (no device-mapper in this kernel), so the error is injected at the
 * system call boundary; everything above it (SQLite, the writer, nginx)
 * is the real thing.  Test-only: never installed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

/* Calls the real @name unless the fault is on. */
static int
fault_or_real(const char *name, int fd)
{
	const char *path = getenv("EGW_TEST_FSYNC_FAULT");
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);

	if (path != NULL && access(path, F_OK) == 0) {
		errno = EIO;
		return -1;
	}
	if (real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return real(fd);
}

int
fdatasync(int fd)
{
	return fault_or_real("fdatasync", fd);
}

int
fsync(int fd)
{
	return fault_or_real("fsync", fd);
}

/* Whether the fault named by environment variable @var is on. */
static int
fault_on(const char *var)
{
	const char *path = getenv(var);

	return path != NULL && access(path, F_OK) == 0;
}

/* The real @name (pwrite or pwrite64: one signature on 64-bit Linux),
 * unless the full-disk fault is on. */
static ssize_t
write_or_full(const char *name, int fd, const void *buf, size_t n, off64_t off)
{
	ssize_t (*real)(int, const void *, size_t, off64_t) =
	    (ssize_t (*)(int, const void *, size_t, off64_t))dlsym(RTLD_NEXT, name);

	if (fault_on("EGW_TEST_WRITE_FAULT")) {
		errno = ENOSPC;
		return -1;
	}
	if (real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return real(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	return write_or_full("pwrite64", fd, buf, n, off);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return write_or_full("pwrite", fd, buf, n, off);
}
