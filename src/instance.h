/* SPDX-License-Identifier: MIT */
/*
 * This file contains the one-instance guard of the long-running programs
 * (egw-api, egw-applier, egw-flowlog, egw-natsd, egw-supervisor): a lock
 * per program in EGW_RUN_DIR, and the check made before a program takes
 * over a unix socket path.
 *
 * A second copy started with the same settings used to unlink the first
 * one's socket and bind its own: the first kept running unreachable, two
 * appliers could fight over one table, and whichever stopped first removed
 * the socket the other was serving on.  The lock is an flock() on
 * EGW_RUN_DIR/<program>.lock, held for the process's life (a forked child
 * shares it, an exec'd one does not); the kernel drops it when the last
 * holder exits, so a crash leaves nothing stale and the file is never
 * removed (removing a lock file lets two processes hold "the" lock).  A
 * socket path is replaced only when it is a socket nobody serves on, which
 * also covers two instances with different run directories and a setting
 * that names some other file by mistake.
 */
#ifndef EGW_INSTANCE_H
#define EGW_INSTANCE_H

/**
 * instance_lock() - become the only @program of @run_dir
 * @run_dir: EGW_RUN_DIR (must exist)
 * @program: file name stem, e.g. "egw-api"
 *
 * The lock file also records this process's pid, for the message another
 * start prints; it is created readable by all, and one this user cannot
 * write (left by a run as another user, e.g. root) is locked read-only.
 * The descriptor stays open (close-on-exec) until exit.
 *
 * Returns: 0; EGW_E_BUSY when another process holds it (logged with its
 * pid); EGW_E_IO when the file cannot be opened or locked (logged).
 */
int instance_lock(const char *run_dir, const char *program);

/**
 * instance_lock_netns() - become the only @program of this network namespace
 * @program: e.g. "egw-applier"
 *
 * The run-directory lock does not stop a second gateway set up with
 * another EGW_RUN_DIR, whose applier would fight the first over the one
 * table of the namespace.  This lock is an abstract unix socket
 * ("@forge-egress-gateway/<program>"), which exists once per network
 * namespace and goes with the process; an applier in another namespace
 * (a test's, say) is not affected.  Held until exit.  The name has no
 * permissions: whoever holds it, of any user, keeps this start from
 * happening (two appliers over one table is the worse failure); the log
 * names the holder's pid and uid.
 *
 * Returns: 0; EGW_E_BUSY when another process holds it; EGW_E_IO (logged).
 */
int instance_lock_netns(const char *program);

/**
 * instance_held() - whether some process is @program of @run_dir now
 * @run_dir: EGW_RUN_DIR
 * @program: file name stem, e.g. "egw-supervisor"
 * @pid: out: the holder's pid when known, else 0
 *
 * Asks the kernel (/proc/locks; a non-blocking shared flock() when that
 * cannot be read) whether the lock instance_lock() takes is held; takes
 * no lock itself when /proc/locks is readable.  Files in @run_dir are
 * only information: what a process wrote there may outlive it.
 *
 * Returns: 1 held, 0 not held (or no lock file), EGW_E_IO when it cannot
 * be told (errno set: e.g. EACCES, or EINVAL for a lock file that is not
 * a plain file).
 */
int instance_held(const char *run_dir, const char *program, long *pid);

/**
 * instance_claim_socket() - make @path free for bind()
 * @path: a unix socket path from the configuration
 * @type: SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET: what is served there
 *
 * Nothing there: nothing to do.  A socket that refuses a connection is
 * stale (its server died) and is removed.  Anything else is left alone.
 *
 * Returns: 0; EGW_E_BUSY when something answers on @path; EGW_E_CONFIG
 * when @path exists and is not a socket; EGW_E_IO otherwise (all logged).
 */
int instance_claim_socket(const char *path, int type);

/**
 * instance_remove_stale_socket() - remove @path if it is a socket nobody
 * answers on; leave anything else alone, quietly
 *
 * For cleaning up after a stop: what a stopped program's socket setting
 * names may be another program's live socket, or not a socket at all.
 */
void instance_remove_stale_socket(const char *path, int type);

#endif
