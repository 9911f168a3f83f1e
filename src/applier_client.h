/* SPDX-License-Identifier: MIT */
/*
 * This file contains the unprivileged side of the applier socket.
 *
 * Callers commit to SQLite first and nudge afterwards; the nudge is only a
 * hint (see applier_proto.h), so it never blocks and never fails a request.
 */
#ifndef EGW_APPLIER_CLIENT_H
#define EGW_APPLIER_CLIENT_H

#include <stdint.h>

/**
 * applier_client_nudge() - tell the applier the desired state changed
 * @socket_path: EGW_APPLIER_SOCKET
 *
 * Sends one non-blocking datagram.  Best effort: a missing socket, a full
 * queue or a stopped applier only delay enforcement until the applier's
 * data_version poll notices the change.
 *
 * Returns: 0 when the datagram was queued, EGW_E_UNAVAILABLE otherwise
 * (errno describes why).
 */
int applier_client_nudge(const char *socket_path);

/**
 * applier_client_nudge_generation() - applier_client_nudge() that also
 * names the committed generation
 * @socket_path: EGW_APPLIER_SOCKET
 * @generation: the desired generation just committed (0 = unknown)
 *
 * Returns: as applier_client_nudge().
 */
int applier_client_nudge_generation(const char *socket_path, int64_t generation);

#endif
