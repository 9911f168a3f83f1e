/* SPDX-License-Identifier: MIT */
/*
 * This file contains applier_client_nudge(): one datagram, never blocking.
 *
 * A fresh socket per call keeps the API workers free of long-lived state
 * (they fork; see STYLE.md) and costs a few microseconds.
 */
#include "applier_client.h"
#include "applier_proto.h"
#include "err.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
applier_client_nudge_generation(const char *socket_path, int64_t generation)
{
	struct sockaddr_un sun;
	struct applier_msg msg;
	ssize_t n;
	int fd, saved;

	if (socket_path == NULL || strlen(socket_path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return EGW_E_UNAVAILABLE;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, socket_path, strlen(socket_path));
	memset(&msg, 0, sizeof(msg));
	msg.magic = APPLIER_MSG_MAGIC;
	msg.version = APPLIER_MSG_VERSION;
	msg.type = APPLIER_MSG_NUDGE;
	msg.generation = generation;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return EGW_E_UNAVAILABLE;
	n = sendto(fd, &msg, sizeof(msg), MSG_DONTWAIT | MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, sizeof(sun));
	saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)sizeof(msg) ? 0 : EGW_E_UNAVAILABLE;
}

int
applier_client_nudge(const char *socket_path)
{
	return applier_client_nudge_generation(socket_path, 0);
}
