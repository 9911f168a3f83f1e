/* SPDX-License-Identifier: MIT */
/* File operations that never follow another user's symlink: see safefile.h. */
#include "safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Whether a symlink in the directory @dirfd can only have been made by
 * root or by us: the directory is root's or ours and nobody else may
 * write to it.  (Root's /var holds the operator's /var/run -> /run.)
 */
static bool
dir_trusted(int dirfd)
{
	struct stat sb;

	if (fstat(dirfd, &sb) != 0)
		return false;
	return (sb.st_uid == 0 || sb.st_uid == geteuid()) &&
	    (sb.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/*
 * Whether the directory @fd, which we did not create, may be used as it
 * is for @uid:@gid: it is root's or the user's, nobody outside its owner
 * and the user's group may write it, and the user may (through its owner
 * or group bits: the children run with no supplementary groups).
 */
static bool
dir_usable(int fd, uid_t uid, gid_t gid)
{
	const mode_t wx = S_IWUSR | S_IXUSR;
	struct stat sb;

	if (fstat(fd, &sb) != 0)
		return false;
	if (sb.st_uid != 0 && sb.st_uid != uid)
		return false;
	if ((sb.st_mode & S_IWOTH) != 0 ||
	    ((sb.st_mode & S_IWGRP) != 0 && sb.st_gid != gid))
		return false;
	return uid == 0 ||
	    (sb.st_uid == uid && (sb.st_mode & wx) == wx) ||
	    (sb.st_gid == gid && (sb.st_mode & (wx >> 3)) == (wx >> 3));
}

/*
 * One step of the walk: the directory @name in @dirfd, created with @mode
 * when missing (*@created says whether this call made it).  A symlink is
 * followed only out of a trusted directory.  The directories on the way
 * are opened O_PATH (search permission is all a path lookup needs;
 * O_RDONLY would need read permission too), the last one O_RDONLY, for
 * fstat/fchmod/fchown and the caller's *at() calls.
 */
static int
open_step(int dirfd, const char *name, mode_t mode, bool last, bool *created)
{
	int how = (last ? O_RDONLY : O_PATH) | O_DIRECTORY | O_CLOEXEC;
	struct stat sb;
	int fd;

	*created = mkdirat(dirfd, name, mode) == 0;
	if (!*created && errno != EEXIST)
		return -1;
	fd = openat(dirfd, name, how | O_NOFOLLOW);
	if (fd >= 0 || (errno != ELOOP && errno != ENOTDIR))
		return fd;
	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
		return -1;
	if (!S_ISLNK(sb.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	if (!dir_trusted(dirfd)) {
		errno = ELOOP;
		return -1;
	}
	return openat(dirfd, name, how);
}

int
safefile_ensure_dir(const char *path, mode_t mode, bool chown_to, uid_t uid,
    gid_t gid)
{
	char buf[PATH_MAX];
	char *save = NULL, *name, *next;
	bool created = false;
	int fd, saved;

	if (path[0] != '/') {
		errno = EINVAL;
		return -1;
	}
	if (strlen(path) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, strlen(path) + 1);
	if ((fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	/* Component by component from the root, so that no directory on the
	 * way is looked up by a path another user could redirect between
	 * our steps. */
	name = strtok_r(buf, "/", &save);
	if (name == NULL) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	for (; name != NULL; name = next) {
		int child;

		next = strtok_r(NULL, "/", &save);
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
			/* ".." would leave a directory we checked. */
			close(fd);
			errno = EINVAL;
			return -1;
		}
		child = open_step(fd, name, next == NULL ? mode : 0755,
		    next == NULL, &created);
		saved = errno;
		close(fd);
		if (child < 0) {
			errno = saved;
			return -1;
		}
		fd = child;
	}
	/* One that was there is someone's, maybe a system directory named
	 * by mistake (EGW_STATE_DIR=/var/lib): never re-owned or re-moded,
	 * only used when it already suits. */
	if (!created) {
		if (dir_usable(fd, uid, gid))
			return fd;
		close(fd);
		errno = EEXIST;
		return -1;
	}
	/* Through the descriptor: whatever the name points at by now, the
	 * directory we opened is the one changed. */
	if (fchmod(fd, mode) != 0 || (chown_to && fchown(fd, uid, gid) != 0)) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int
safefile_create_tmp(int dirfd, const char *stem, mode_t mode, char *name,
    size_t size)
{
	/* A name taken already (ours from a crash, or planted) is skipped;
	 * a few tries are plenty with 64 random bits. */
	for (int tries = 0; tries < 8; tries++) {
		unsigned char rnd[8];
		int n, fd;

		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return -1;
		n = snprintf(name, size, ".%s.%02x%02x%02x%02x%02x%02x%02x%02x",
		    stem, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6],
		    rnd[7]);
		if (n < 0 || (size_t)n >= size) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, mode);
		if (fd < 0 && errno == EEXIST)
			continue;
		if (fd < 0)
			return -1;
		if (fchmod(fd, mode) != 0) {
			int saved = errno;

			close(fd);
			unlinkat(dirfd, name, 0);
			errno = saved;
			return -1;
		}
		return fd;
	}
	errno = EEXIST;
	return -1;
}

int
safefile_replace(int dirfd, const char *name, const void *data, size_t len,
    mode_t mode)
{
	char tmp[NAME_MAX + 1];
	const char *p = data;
	int fd, saved;

	if ((fd = safefile_create_tmp(dirfd, name, mode, tmp, sizeof(tmp))) < 0)
		return -1;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) != 0)
		goto fail;
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(dirfd, tmp, 0);
	errno = saved;
	return -1;
}
