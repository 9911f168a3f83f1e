/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of safefile.c: a symlink planted in a
 * directory another user may write is never followed (neither for a
 * directory, at any depth, nor for a file), one in a directory only we
 * may write is, and files replaced through it have exactly the mode asked.
 * A directory that existed is never changed: used as it is when it suits
 * the user it is for, refused (EEXIST) otherwise.
 *
 * "Another user's directory" is a directory of mode 0777: as root or not,
 * anyone could have planted what is in it.
 */
#include "safefile.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[256];

static const char *
at(const char *rel)
{
	static char bufs[4][PATH_MAX];
	static int i;
	char *b = bufs[i++ % 4];

	snprintf(b, PATH_MAX, "%s/%s", top, rel);
	return b;
}

static mode_t
mode_of(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 ? sb.st_mode : 0;
}

static char *
slurp(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

int
main(void)
{
	char tmpl[] = "/tmp/egw-safefile-XXXXXX", name[NAME_MAX + 1];
	uid_t me = geteuid();
	gid_t us = getegid();
	int fd, dirfd, err;

	umask(077);
	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	snprintf(top, sizeof(top), "%s", tmpl);
	mkdir(at("user"), 0777);
	chmod(at("user"), 0777);	/* anyone's: the umask cut it */
	mkdir(at("victim"), 0700);
	mkdir(at("mine"), 0755);
	mkdir(at("target"), 0700);
	fd = open(at("victim.txt"), O_WRONLY | O_CREAT, 0600);
	(void)!write(fd, "precious\n", 9);
	close(fd);

	/* Plain creation, nested, mode set through the descriptor. */
	fd = safefile_ensure_dir(at("user/a/b"), 0750, false, me, us);
	ok(fd >= 0, "ensure_dir creates a nested directory");
	if (fd >= 0)
		close(fd);
	is_int(mode_of(at("user/a/b")) & 07777, 0750, "its mode is the one asked");
	is_int(mode_of(at("user/a")) & 07777, 0755 & ~077, "a parent it made is 0755 less the umask");
	fd = safefile_ensure_dir(at("user/a/b"), 0700, false, me, us);
	ok(fd >= 0, "ensure_dir on an existing directory of ours");
	if (fd >= 0)
		close(fd);
	is_int(mode_of(at("user/a/b")) & 07777, 0750,
	    "used as it is: its mode is not changed");

	/* Existing directories are someone's: used as they are, or refused
	 * (EGW_STATE_DIR=/var/lib by mistake must not become the user's). */
	errno = 0;
	fd = safefile_ensure_dir(at("user"), 0750, false, me, us);
	err = errno;
	ok(fd < 0 && err == EEXIST, "one anyone may write: refused, EEXIST");
	is_int(mode_of(at("user")) & 07777, 0777, "and left as it was");
	mkdir(at("shared"), 0770);
	chmod(at("shared"), 0770);
	fd = safefile_ensure_dir(at("shared"), 0750, false, me, us);
	ok(fd >= 0, "one its group may write, the user's group: used");
	if (fd >= 0)
		close(fd);
	is_int(mode_of(at("shared")) & 07777, 0770, "as it is");
	if (me == 0) {
		uid_t other = 65534;
		gid_t other_gid = 65534;

		/* The /var/lib case: root's, 0755, for an unprivileged user. */
		mkdir(at("system"), 0755);
		chmod(at("system"), 0755);
		errno = 0;
		fd = safefile_ensure_dir(at("system"), 0750, true, other,
		    other_gid);
		err = errno;
		ok(fd < 0 && err == EEXIST,
		    "root's directory the user cannot write: refused, EEXIST");
		is_int(mode_of(at("system")) & 07777, 0755,
		    "its mode unchanged");
		{
			struct stat sb;

			ok(stat(at("system"), &sb) == 0 && sb.st_uid == 0 &&
			    sb.st_gid == 0, "and its owner");
		}
		/* root's, but the user's group may write it: used. */
		mkdir(at("grp"), 0770);
		chmod(at("grp"), 0770);
		(void)!chown(at("grp"), 0, other_gid);
		fd = safefile_ensure_dir(at("grp"), 0750, true, other,
		    other_gid);
		ok(fd >= 0,
		    "root's directory the user's group may write: used");
		if (fd >= 0)
			close(fd);
		/* Another user's. */
		mkdir(at("theirs"), 0700);
		(void)!chown(at("theirs"), 4242, 4242);
		errno = 0;
		fd = safefile_ensure_dir(at("theirs"), 0750, true, other,
		    other_gid);
		err = errno;
		ok(fd < 0 && err == EEXIST,
		    "another user's directory: refused");
		{
			struct stat sb;

			ok(stat(at("theirs"), &sb) == 0 && sb.st_uid == 4242 &&
			    (sb.st_mode & 07777) == 0700, "and left as it was");
		}
		/* The user's own, but another group may write it. */
		mkdir(at("leaky"), 0770);
		chmod(at("leaky"), 0770);
		(void)!chown(at("leaky"), other, 4242);
		errno = 0;
		fd = safefile_ensure_dir(at("leaky"), 0750, true, other,
		    other_gid);
		err = errno;
		ok(fd < 0 && err == EEXIST,
		    "the user's own, writable by another group: refused");
		/* Created by the call: handed over. */
		fd = safefile_ensure_dir(at("system/new"), 0750, true, other,
		    other_gid);
		ok(fd >= 0, "a directory it creates");
		if (fd >= 0)
			close(fd);
		{
			struct stat sb;

			ok(stat(at("system/new"), &sb) == 0 &&
			    sb.st_uid == other && sb.st_gid == other_gid &&
			    (sb.st_mode & 07777) == 0750,
			    "is handed over with the mode asked");
		}
	} else {
		tap_skip("the other users' directories need root");
	}

	/* The last component a symlink in another user's directory. */
	(void)!symlink(at("victim"), at("user/nats"));
	errno = 0;
	fd = safefile_ensure_dir(at("user/nats"), 0755, false, me, us);
	err = errno;
	ok(fd < 0 && err == ELOOP, "a planted symlink as the directory: refused, ELOOP");
	is_int(mode_of(at("victim")) & 07777, 0700, "the directory it names is unchanged");

	/* A symlink on the way: nothing is created where it points. */
	(void)!symlink(at("victim"), at("user/mid"));
	errno = 0;
	fd = safefile_ensure_dir(at("user/mid/x"), 0755, false, me, us);
	err = errno;
	ok(fd < 0 && err == ELOOP, "a planted symlink on the way: refused, ELOOP");
	ok(access(at("victim/x"), F_OK) != 0, "nothing created through it");

	/* A symlink in a directory only we can write: the operator's. */
	(void)!symlink(at("target"), at("mine/link"));
	fd = safefile_ensure_dir(at("mine/link"), 0750, false, me, us);
	ok(fd >= 0, "a symlink in a directory only we may write is followed");
	if (fd >= 0)
		close(fd);
	is_int(mode_of(at("target")) & 07777, 0700,
	    "its target (which existed) is used as it is");

	fd = safefile_ensure_dir(at("victim.txt"), 0755, false, me, us);
	err = errno;
	ok(fd < 0 && err == ENOTDIR, "a file is not a directory: ENOTDIR");
	fd = safefile_ensure_dir("relative/dir", 0755, false, me, us);
	err = errno;
	ok(fd < 0 && err == EINVAL, "a relative path: EINVAL");
	fd = safefile_ensure_dir(at("user/../victim"), 0755, false, me, us);
	err = errno;
	ok(fd < 0 && err == EINVAL, "a .. component: EINVAL");
	is_int(mode_of(at("victim")) & 07777, 0700, "and the directory is unchanged");

	/* Files: a planted symlink at the final name is replaced, not
	 * written through. */
	dirfd = open(at("user"), O_RDONLY | O_DIRECTORY);
	(void)!symlink(at("victim.txt"), at("user/supervisor.json"));
	ok(safefile_replace(dirfd, "supervisor.json", "{}\n", 3, 0644) == 0,
	    "replace over a planted symlink");
	is_str(slurp(at("victim.txt")), "precious\n", "the file it named is unchanged");
	ok(S_ISREG(mode_of(at("user/supervisor.json"))), "the name is a regular file now");
	is_int(mode_of(at("user/supervisor.json")) & 07777, 0644,
	    "with the mode asked (the umask does not cut it)");
	is_str(slurp(at("user/supervisor.json")), "{}\n", "and the new contents");
	ok(safefile_replace(dirfd, "supervisor.json", "[]\n", 3, 0644) == 0 &&
	    strcmp(slurp(at("user/supervisor.json")), "[]\n") == 0,
	    "replace over our own file");

	/* Temporary names: fresh each time, never an existing name. */
	fd = safefile_create_tmp(dirfd, "nginx.conf", 0640, name, sizeof(name));
	ok(fd >= 0 && strncmp(name, ".nginx.conf.", 12) == 0 && strlen(name) == 28,
	    "a temporary name is .<stem>.<16 hex digits> (%s)", name);
	if (fd >= 0)
		close(fd);
	{
		char path[sizeof(top) + sizeof(name) + 8];

		snprintf(path, sizeof(path), "%s/user/%s", top, name);
		is_int(mode_of(path) & 07777, 0640, "created with the mode asked");
	}
	ok(safefile_create_tmp(dirfd, "nginx.conf", 0640, name, 10) < 0 &&
	    errno == ENAMETOOLONG, "too small a name buffer: ENAMETOOLONG");
	close(dirfd);

	{
		char cmd[sizeof(top) + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
		(void)!system(cmd);
	}
	return tap_done();
}
