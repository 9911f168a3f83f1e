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
 * POOL_GRACE_MS the rest are killed.  SIGHUP is forwarded: each worker
 * finishes its request and is replaced at once (fresh connections).
 */
#ifndef EGW_POOL_H
#define EGW_POOL_H

struct config;

#define POOL_GRACE_MS 10000

/**
 * pool_run() - open the socket, run the workers until SIGTERM
 * @cfg: configuration
 *
 * Returns: the master's exit status (0 after a clean stop, 1 when the
 * socket or the shared counters could not be set up).
 */
int pool_run(const struct config *cfg);

#endif
