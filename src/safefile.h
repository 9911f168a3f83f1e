/* SPDX-License-Identifier: MIT */
/*
 * This file contains the file operations a privileged process (the
 * supervisor, as root) makes in directories a less privileged user owns
 * (EGW_RUN_DIR, EGW_STATE_DIR and what is under them).
 *
 * That user can put anything under any name there at any moment, a
 * symbolic link to /etc/shadow or a directory of its own included.  So no
 * name in such a directory is ever opened for writing, chmod'ed or chown'ed
 * through a path that could end in a symlink: a file is written under a
 * fresh random name created with O_CREAT|O_EXCL|O_NOFOLLOW (a new inode,
 * ours) and renamed over the final name (rename replaces a symlink, never
 * follows it); a directory is opened with O_DIRECTORY|O_NOFOLLOW relative
 * to its parent and changed through that descriptor, and only if it was
 * just created: one that existed is used as it is or refused.  A symlink is
 * followed only where nobody but root (or this process's own user) could
 * have made it: in a directory they own that nobody else may write.
 */
#ifndef EGW_SAFEFILE_H
#define EGW_SAFEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/**
 * safefile_ensure_dir() - mkdir -p @path for a user; hand it over if new
 * @path: absolute directory path
 * @mode: permissions of the last component when this call creates it
 * @chown_to: whether to chown the last component it creates to @uid:@gid
 * @uid: the user the directory is for (the new owner)
 * @gid: that user's group
 *
 * The path is walked from "/" one component at a time, each opened with
 * O_DIRECTORY|O_NOFOLLOW relative to the one before (missing ones are
 * created 0755 less the umask, and left as they are); a component that
 * is a symlink is followed only when the directory holding it is owned by
 * root or by this process's user and writable by nobody else (an
 * operator's link such as /var/run -> /run), and refused otherwise.  A
 * last component this call created gets @mode (and @uid:@gid) through its
 * descriptor.  One that existed is never changed: it is used as it is when
 * it is owned by root or @uid, no one but its owner and @gid may write to
 * it, and @uid may (through the owner's or @gid's bits; root always
 * may), and refused otherwise.
 *
 * Returns: a descriptor of the directory (O_DIRECTORY, close-on-exec; the
 * caller closes it), or -1 with errno set: EEXIST when the last component
 * existed and is not fit for @uid as it is, ELOOP when a component is a
 * symlink that is refused, ENOTDIR when one is not a directory, EINVAL for
 * a relative path or a "." or ".." component, or what mkdirat(2),
 * openat(2), fchmod(2) or fchown(2) said.
 */
int safefile_ensure_dir(const char *path, mode_t mode, bool chown_to, uid_t uid,
    gid_t gid);

/**
 * safefile_create_tmp() - create a new file under a fresh random name
 * @dirfd: directory to create it in
 * @stem: the name the file will be renamed to; the temporary name is
 *        ".<stem>.<16 random hex digits>"
 * @mode: its permissions (the umask does not cut them)
 * @name: out: the temporary name
 * @size: size of @name (at least strlen(@stem) + 19)
 *
 * The file is created with O_CREAT|O_EXCL|O_NOFOLLOW: it is a new, empty
 * regular file with one link, whatever else the directory holds.
 *
 * Returns: a write-only, close-on-exec descriptor, or -1 with errno set
 * (ENAMETOOLONG when @name is too small).
 */
int safefile_create_tmp(int dirfd, const char *stem, mode_t mode, char *name,
    size_t size);

/**
 * safefile_replace() - atomically replace @dirfd/@name with @len bytes
 * @dirfd: directory
 * @name: file name in it (no '/')
 * @data: the new contents
 * @len: their length
 * @mode: the new file's permissions
 *
 * Writes a temporary file (safefile_create_tmp()) and renames it over
 * @name; whatever @name was (a symlink included) is replaced, never
 * written through.  On failure the temporary file is removed.
 *
 * Returns: 0, or -1 with errno set.
 */
int safefile_replace(int dirfd, const char *name, const void *data, size_t len,
    mode_t mode);

#endif
