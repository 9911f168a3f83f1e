/* SPDX-License-Identifier: MIT */
/*
 * This file contains the prefork master of egw-api.
 *
 * The master opens the FastCGI unix socket (EGW_FCGI_SOCKET) before it
 * forks, so every worker accepts on the same descriptor (libfcgi serialises
 * accept() with a file lock), then forks EGW_WORKERS workers (worker.h)
 * and EGW_SPARE_WORKERS spares, of which only EGW_WORKERS accept at a time
 * (spare.h).
 * A worker that dies is replaced in the same slot; one that dies soon after
 * starting is replaced after a growing delay (100 ms doubling up to 10 s),
 * so a worker that cannot open the database does not spin.  The master
 * keeps its bookkeeping in EGW_RUN_DIR: egw-api.pid (its own PID) and
 * egw-api.workers (one "slot pid" line per live worker, rewritten on every
 * change), which is what operators and tests read to find a worker.
 *
 * SIGTERM/SIGINT: unlink the socket (no new connections), pass SIGTERM to
 * the workers, which finish the request in hand and exit; after
 * POOL_GRACE_MS the rest are killed; one that came while main() was still
 * starting stops the master before it starts the pool (pool_hold_signals()).
 * SIGHUP is forwarded: each worker finishes its request and is replaced at
 * once (fresh connections).
 */
#ifndef EGW_POOL_H
#define EGW_POOL_H

#include <signal.h>

struct config;

#define POOL_GRACE_MS 10000

/**
 * pool_hold_signals() - block the master's signals, before any start-up work
 * @oldmask: out: the signal mask before the call, which the workers get
 *
 * SIGCHLD, SIGTERM, SIGINT and SIGHUP are blocked and given a handler that
 * never runs, so that a stop asked for while the master is still starting
 * (opening and migrating the database) stays pending for pool_run(), also
 * when the master is pid 1 of a pid namespace, which the kernel sends only
 * the signals it has a handler for.  Call it first thing in main().
 *
 * Returns: nothing; blocking a signal and setting a handler cannot fail
 * for these signals.
 */
void pool_hold_signals(sigset_t *oldmask);

/**
 * pool_run() - open the socket, run the workers until SIGTERM
 * @cfg: configuration
 * @child_mask: the signal mask the children get (pool_hold_signals()'s
 *              @oldmask)
 *
 * The master's signals must be held (pool_hold_signals()) already.  A
 * SIGTERM or SIGINT pending when it is called stops the pool before it
 * starts: nothing is locked, opened or forked.
 *
 * Returns: the master's exit status (0 after a clean stop, a stop before
 * the start included; 1 when another pool holds EGW_RUN_DIR's lock, or
 * the run directory, the socket or the shared counters could not be set
 * up).
 */
int pool_run(const struct config *cfg, const sigset_t *child_mask);

#endif
