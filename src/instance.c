/* SPDX-License-Identifier: MIT */
/* The one-instance guard: see instance.h. */
#include "instance.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

/*
 * Whether /proc/locks lists an exclusive flock() on @fd's file: 1 (with
 * the holder's pid in @pid, 0 when it is not visible from our pid
 * namespace), 0, or -1 when /proc/locks cannot be read.  Reading the
 * kernel's table takes no lock, so it cannot make a starting instance's
 * LOCK_EX|LOCK_NB fail the way a probing flock() could.
 */
static int
proc_locks_find(int fd, long *pid)
{
	char buf[256];
	struct stat sb;
	int found = 0;
	FILE *f;

	*pid = 0;
	if (fstat(fd, &sb) != 0 || (f = fopen("/proc/locks", "re")) == NULL)
		return -1;
	while (!found && fgets(buf, sizeof(buf), f) != NULL) {
		unsigned maj, min;
		unsigned long ino;
		long p;

		/* "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; a
		 * waiter's line has "->" before FLOCK and does not match. */
		if (sscanf(buf, "%*d: FLOCK %*s WRITE %ld %x:%x:%lu", &p, &maj,
		    &min, &ino) == 4 && ino == (unsigned long)sb.st_ino &&
		    maj == major(sb.st_dev) && min == minor(sb.st_dev)) {
			found = 1;
			*pid = p > 0 ? p : 0;
		}
	}
	fclose(f);
	return found;
}

/*
 * The pid that took the flock on @fd's file, from /proc/locks (exact even
 * when the taker could not write its pid into the file, and after it died
 * while its children keep the lock); else what the file says; 0: unknown.
 */
static long
lock_holder(int fd)
{
	char buf[32], *end;
	long pid = 0;
	ssize_t n;

	if (proc_locks_find(fd, &pid) == 1 && pid > 0)
		return pid;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	return end != buf && pid > 0 ? pid : 0;
}

int
instance_held(const char *run_dir, const char *program, long *pid)
{
	char path[4096];
	struct stat sb;
	int fd, n, rc, saved;

	*pid = 0;
	n = snprintf(path, sizeof(path), "%s/%s.lock", run_dir, program);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return EGW_E_IO;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : EGW_E_IO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		errno = EINVAL;
		return EGW_E_IO;
	}
	rc = proc_locks_find(fd, pid);
	if (rc < 0) {
		/* No /proc: ask flock() itself.  A shared lock is refused
		 * only while someone holds the exclusive one. */
		if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
			flock(fd, LOCK_UN);
			rc = 0;
		} else if (errno == EWOULDBLOCK) {
			rc = 1;
		} else {
			rc = EGW_E_IO;
		}
	}
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* Open (creating) the lock file; -1 with the reason logged. */
static int
lock_open(const char *path)
{
	struct stat sb;
	int fd, first;

	/* Readable by all: flock() needs only a descriptor, and a file left
	 * by a run as another user (root, by hand) must not stop ours. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	first = errno;
	if (fd < 0 && first == EACCES)
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (first == EACCES && errno == ENOENT)
			log_errorx("cannot create %s: EGW_RUN_DIR is not writable"
			    " by this user", path);
		else if (first == ENOENT)
			log_errorx("cannot create %s: EGW_RUN_DIR does not exist",
			    path);
		else if (errno == EACCES)
			log_errorx("cannot open %s: left by another user without"
			    " read permission (remove it)", path);
		else
			log_error("cannot open %s", path);
		return -1;
	}
	/* A plain file of our own making: the directory may be writable by
	 * a less privileged user than us (the supervisor runs as root in
	 * the service user's run directory), who must not point us at
	 * another file through a hard link. */
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
		log_errorx("%s is not a plain file with one link; not using it",
		    path);
		close(fd);
		return -1;
	}
	/* The umask may have cut the mode. */
	if (sb.st_uid == geteuid() && (sb.st_mode & 0777) != 0644)
		(void)fchmod(fd, 0644);
	return fd;
}

int
instance_lock(const char *run_dir, const char *program)
{
	char path[4096], text[24];
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/%s.lock", run_dir, program);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		log_errorx("the lock file path under %s is too long", run_dir);
		return EGW_E_IO;
	}
	if ((fd = lock_open(path)) < 0)
		return EGW_E_IO;
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			long pid = lock_holder(fd);

			if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
				/* e.g. a pool whose master died: its workers
				 * finish their requests, then exit. */
				log_errorx("the previous %s (pid %ld) has exited, but"
				    " processes it started still hold %s; not"
				    " starting until they exit", program, pid, path);
			else if (pid > 0)
				log_errorx("another %s runs with EGW_RUN_DIR=%s (pid"
				    " %ld); not starting a second one", program,
				    run_dir, pid);
			else
				log_errorx("another %s runs with EGW_RUN_DIR=%s;"
				    " not starting a second one", program, run_dir);
			close(fd);
			return EGW_E_BUSY;
		}
		log_error("cannot lock %s", path);
		close(fd);
		return EGW_E_IO;
	}
	/* For people reading the file; lock_holder() asks /proc/locks. */
	n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if ((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR &&
	    (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n))
		log_warn("cannot record the pid in %s", path);
	/* Kept open on purpose: the lock lasts as long as the process. */
	return 0;
}

/*
 * Whether a socket is bound to @path in this network namespace
 * (/proc/net/unix lists every bound unix socket with its path; a dead
 * server's socket file is not among them).  -1: cannot tell.
 */
static int
socket_bound(const char *path)
{
	char line[4200];
	int found = 0;
	FILE *f = fopen("/proc/net/unix", "re");

	if (f == NULL)
		return -1;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		int at = -1;
		size_t len;

		/* "Num RefCount Protocol Flags Type St Inode Path": the path
		 * is the rest of the line (it may hold spaces). */
		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %n", &at) != 0 ||
		    at < 0)
			continue;
		len = strcspn(line + at, "\n");
		found = strlen(path) == len && strncmp(line + at, path, len) == 0;
	}
	fclose(f);
	return found;
}

enum socket_state {
	SOCKET_ABSENT,
	SOCKET_STALE,		/* a socket nobody answers on */
	SOCKET_SERVED,
	SOCKET_NOT_A_SOCKET,
	SOCKET_UNKNOWN		/* cannot tell: errno set */
};

static enum socket_state
socket_probe(const char *path, int type)
{
	struct sockaddr_un sun;
	struct stat sb;
	int fd, rc, saved;

	if (lstat(path, &sb) != 0)
		return errno == ENOENT ? SOCKET_ABSENT : SOCKET_UNKNOWN;
	if (!S_ISSOCK(sb.st_mode))
		return SOCKET_NOT_A_SOCKET;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return SOCKET_UNKNOWN;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	/* Non-blocking: a server whose backlog is full must not hold up the
	 * start (EAGAIN then says someone serves there). */
	if ((fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return SOCKET_UNKNOWN;
	do
		rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	while (rc != 0 && errno == EINTR);
	saved = errno;
	close(fd);
	if (rc == 0 || saved == EAGAIN || saved == EPROTOTYPE)
		return SOCKET_SERVED;
	if (saved == ECONNREFUSED)
		return SOCKET_STALE;
	/* EACCES: another user's socket, e.g. left by a crashed run as root.
	 * Served only if something is bound to the path (a server in another
	 * network namespace would not show: a setting shared across
	 * namespaces is not supported). */
	if (saved == EACCES) {
		int bound = socket_bound(path);

		if (bound == 0)
			return SOCKET_STALE;
		if (bound == 1)
			return SOCKET_SERVED;
	}
	errno = saved;
	return SOCKET_UNKNOWN;
}

/*
 * The name is taken.  Say by whom when the holder answers (ours listen);
 * either way this start is refused: two appliers over one table is the
 * worse failure, and whoever took the name is named in the log.
 */
static int
netns_lock_holder(const char *program, const struct sockaddr_un *sa,
    socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct ucred cred = { 0 };
	socklen_t clen = sizeof(cred);
	bool known = false;

	if (fd >= 0 && connect(fd, (const struct sockaddr *)sa, len) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		known = true;
	if (fd >= 0)
		close(fd);
	if (known)
		log_errorx("another %s runs in this network namespace (pid %ld, "
		    "uid %lu; another EGW_RUN_DIR?): not starting a second one "
		    "over its table", program, (long)cred.pid,
		    (unsigned long)cred.uid);
	else
		log_errorx("the namespace lock of %s (@forge-egress-gateway/%s) "
		    "is held by a process that does not answer: not starting "
		    "(find it with ss -xlp)", program, program);
	return EGW_E_BUSY;
}

int
instance_lock_netns(const char *program)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd, n;

	/* sun_path[0] = '\0': an abstract name, no file, per namespace */
	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
	    "forge-egress-gateway/%s", program);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path) - 1)
		return EGW_E_IO;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		log_error("cannot make the namespace lock of %s", program);
		return EGW_E_IO;
	}
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	if (bind(fd, (struct sockaddr *)&sa, len) != 0) {
		int e = errno;

		close(fd);
		if (e == EADDRINUSE)
			return netns_lock_holder(program, &sa, len);
		errno = e;
		log_error("cannot take the namespace lock of %s", program);
		return EGW_E_IO;
	}
	/* Listening, so that a second start can ask who holds it. */
	if (listen(fd, 16) != 0)
		log_warn("the namespace lock of %s cannot be asked", program);
	/* Kept open on purpose: the lock lasts as long as the process. */
	return 0;
}

int
instance_claim_socket(const char *path, int type)
{
	switch (socket_probe(path, type)) {
	case SOCKET_ABSENT:
		return 0;
	case SOCKET_SERVED:
		log_errorx("%s is served by another process; not taking it over",
		    path);
		return EGW_E_BUSY;
	case SOCKET_NOT_A_SOCKET:
		log_errorx("%s exists and is not a socket; not replacing it (check"
		    " the socket settings)", path);
		return EGW_E_CONFIG;
	case SOCKET_UNKNOWN:
		log_error("cannot check whether %s is in use", path);
		return EGW_E_IO;
	case SOCKET_STALE:
		break;
	}
	/* Nobody listens: a crashed run's socket, which would make bind()
	 * fail. */
	if (unlink(path) != 0 && errno != ENOENT) {
		log_error("cannot remove the stale socket %s", path);
		return EGW_E_IO;
	}
	return 0;
}

void
instance_remove_stale_socket(const char *path, int type)
{
	if (socket_probe(path, type) == SOCKET_STALE)
		unlink(path);
}
