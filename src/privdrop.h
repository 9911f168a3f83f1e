/* SPDX-License-Identifier: MIT */
/*
 * This file contains privilege dropping for the supervisor's children.
 *
 * Started as root, the supervisor runs every component as EGW_USER.  The
 * API pool, the NATS bridge and nginx's workers keep no capability at all;
 * the applier and the flow-log reader keep exactly CAP_NET_ADMIN (as an
 * ambient capability, so it survives execve of the component's binary).
 * Every drop ends with no_new_privs set and a check that root cannot be
 * regained.
 */
#ifndef EGW_PRIVDROP_H
#define EGW_PRIVDROP_H

#include <stdbool.h>
#include <sys/types.h>

/**
 * privdrop_lookup() - resolve a user name
 * @user: the name
 * @uid: its uid
 * @gid: its primary gid
 *
 * Returns: 0, or EGW_E_NOTFOUND when no such user exists.
 */
int privdrop_lookup(const char *user, uid_t *uid, gid_t *gid);

/**
 * privdrop_apply() - become @uid/@gid, keeping CAP_NET_ADMIN or nothing
 * @uid: target user
 * @gid: target group (supplementary groups are cleared)
 * @keep_net_admin: whether CAP_NET_ADMIN stays (effective, permitted,
 *                  inheritable and ambient); every other capability and
 *                  bounding-set entry is dropped either way
 *
 * Call in a forked child before execve.
 *
 * Returns: 0, or EGW_E_IO with errno set (the caller must not exec then).
 */
int privdrop_apply(uid_t uid, gid_t gid, bool keep_net_admin);

#endif
