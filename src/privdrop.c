/* SPDX-License-Identifier: MIT */
/*
 * This file contains the privilege drop (see privdrop.h).
 *
 * The order matters: the bounding set can only be reduced while we still
 * hold CAP_SETPCAP (as root); PR_SET_KEEPCAPS keeps the permitted set across
 * setuid so CAP_NET_ADMIN can then be raised into the ambient set; and
 * no_new_privs comes last so nothing exec'd can gain more.
 */
#include "privdrop.h"
#include "err.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

int
privdrop_lookup(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL)
		return EGW_E_NOTFOUND;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static int
drop_bounding_set(bool keep_net_admin)
{
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
		if (keep_net_admin && c == CAP_NET_ADMIN)
			continue;
		if (cap_drop_bound(c) != 0 && errno != EINVAL)
			return -1;
	}
	return 0;
}

static int
raise_net_admin(void)
{
	cap_value_t net_admin = CAP_NET_ADMIN;
	cap_t caps = cap_init();
	int rc = -1;

	if (caps == NULL)
		return -1;
	if (cap_set_flag(caps, CAP_PERMITTED, 1, &net_admin, CAP_SET) == 0 &&
	    cap_set_flag(caps, CAP_EFFECTIVE, 1, &net_admin, CAP_SET) == 0 &&
	    cap_set_flag(caps, CAP_INHERITABLE, 1, &net_admin, CAP_SET) == 0 &&
	    cap_set_proc(caps) == 0 &&
	    cap_set_ambient(CAP_NET_ADMIN, CAP_SET) == 0)
		rc = 0;
	cap_free(caps);
	return rc;
}

int
privdrop_apply(uid_t uid, gid_t gid, bool keep_net_admin)
{
	if (drop_bounding_set(keep_net_admin) != 0)
		return EGW_E_IO;
	if (keep_net_admin && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
		return EGW_E_IO;
	if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
	    setresuid(uid, uid, uid) != 0)
		return EGW_E_IO;
	if (keep_net_admin) {
		if (raise_net_admin() != 0)
			return EGW_E_IO;
	} else if (cap_reset_ambient() != 0 && errno != EINVAL) {
		return EGW_E_IO;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return EGW_E_IO;
	/* Paranoia, as smcroute does: root must be gone for good. */
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		errno = EPERM;
		return EGW_E_IO;
	}
	return 0;
}
