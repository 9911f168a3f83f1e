/* SPDX-License-Identifier: MIT */
/*
 * This file contains the wire format of the applier's nudge socket.
 *
 * The API workers and the NATS bridge commit a policy change to SQLite and
 * then send one datagram to the applier's unix socket (EGW_APPLIER_SOCKET,
 * SOCK_DGRAM).  A nudge carries no rule text and no policy: it only says
 * "the desired state changed, generation N is committed".  The applier reads
 * the state itself from SQLite, so a lost, duplicated, forged or reordered
 * nudge can at most cost latency or one extra look at the database (the
 * applier also polls PRAGMA data_version).  Anything that is not exactly
 * sizeof(struct applier_msg) bytes with the right magic and version is
 * dropped and counted.
 *
 *  0               4       6       8                              16
 *  +---------------+-------+-------+-------------------------------+
 *  | magic "EGWA"  | vers. | type  | generation (int64, host order)|
 *  +---------------+-------+-------+-------------------------------+
 *
 * Both ends are on the same host, so host byte order is used throughout.
 */
#ifndef EGW_APPLIER_PROTO_H
#define EGW_APPLIER_PROTO_H

#include <stdint.h>

#define APPLIER_MSG_MAGIC 0x41574745u	/* "EGWA" read as little-endian bytes */
#define APPLIER_MSG_VERSION 1

enum applier_msg_type {
	APPLIER_MSG_NUDGE = 1		/* desired state changed */
};

struct applier_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t type;			/* enum applier_msg_type */
	int64_t generation;		/* committed desired generation, 0 = unknown */
};

_Static_assert(sizeof(struct applier_msg) == 16, "applier_msg is 16 bytes");

#endif
