/* SPDX-License-Identifier: MIT */
/*
 * This file contains a fault injector for api_symlinks.sh, loaded into
 * egw-api with LD_PRELOAD.  It plays the user who owns the run directory
 * and wins the race between a socket's bind() and a chmod() by its name:
 * when chmod() is called on the path EGW_TEST_CHMOD_PATH, that path is
 * first replaced by a symbolic link to EGW_TEST_CHMOD_TARGET, as that
 * user could do at any moment, and then the real chmod() runs.  A program
 * that gives its socket a mode without a chmod by name is not affected.
 * Test-only: never installed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
chmod(const char *path, mode_t mode)
{
	const char *name = getenv("EGW_TEST_CHMOD_PATH");
	const char *target = getenv("EGW_TEST_CHMOD_TARGET");
	int (*real)(const char *, mode_t) =
	    (int (*)(const char *, mode_t))dlsym(RTLD_NEXT, "chmod");

	if (name != NULL && target != NULL && strcmp(path, name) == 0 &&
	    unlink(path) == 0)
		(void)symlink(target, path);
	if (real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return real(path, mode);
}
