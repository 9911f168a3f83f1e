/* SPDX-License-Identifier: MIT */
/* The one-instance guard: see instance.h. */
#include "instance.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

/* Whoever holds the lock wrote its pid there; 0 when unreadable. */
static long
lock_holder(int fd)
{
	char buf[24];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	char *end;
	long pid;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	return end != buf && pid > 0 ? pid : 0;
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
	/* Readable by all: flock() needs only a descriptor, and a file left
	 * by a run as another user (root, by hand) must not stop ours. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 && errno == EACCES)
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			log_error("cannot open %s (EGW_RUN_DIR must exist)", path);
		else if (errno == EACCES)
			log_error("cannot open %s (left by another user: remove it,"
			    " or make it readable)", path);
		else
			log_error("cannot open %s", path);
		return EGW_E_IO;
	}
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
	n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if ((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR &&
	    (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n))
		log_warn("cannot record the pid in %s", path);
	/* Kept open on purpose: the lock lasts as long as the process. */
	return 0;
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
	/* EACCES: another user's socket (a crashed run as root); whether it
	 * is served we cannot tell, so it stays (egw-supervisor, as root,
	 * clears such a stale socket before it starts its children). */
	errno = saved;
	return SOCKET_UNKNOWN;
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
