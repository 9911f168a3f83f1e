/* SPDX-License-Identifier: MIT */
/*
 * This file contains one API worker: the FastCGI accept loop.
 *
 * A worker is forked by the pool (pool.h) with the listening socket already
 * open.  It opens its own SQLite connection after the fork, then serves one
 * request at a time: parse, route, authenticate, read the body, call the
 * handler, write the response, count it, log one line.  Everything a
 * request allocates is freed before the next accept; the only things kept
 * are the database connection (with its prepared statements) and the
 * configuration.  SIGTERM, SIGINT or SIGHUP make it finish the request in
 * hand and exit 0.
 */
#ifndef EGW_WORKER_H
#define EGW_WORKER_H

#include <stdbool.h>
#include <stdint.h>

struct config;
struct metrics;
struct spare;

/**
 * worker_run() - serve requests until told to stop
 * @cfg: configuration (borrowed for the process lifetime)
 * @listen_fd: the FastCGI listening socket
 * @slot: this worker's index in the pool (metrics slot)
 * @metrics: shared counters, or NULL
 * @spare: which workers accept (spare.h), or NULL: this one always does
 *
 * Returns: the process exit status: 0 after a requested stop, 1 when the
 * database or libfcgi could not be set up.
 */
int worker_run(const struct config *cfg, int listen_fd, unsigned slot,
    struct metrics *metrics, struct spare *spare);

/**
 * worker_stopping() - whether a stop was requested (handlers that wait,
 * such as ?wait=, give up early)
 */
bool worker_stopping(void);

/**
 * worker_pool_stopping() - whether the pool itself is stopping (SIGTERM,
 * SIGINT): a ?wait= gives up at once then, and runs to its end when the
 * worker is only being replaced (SIGHUP), which no kill follows
 */
bool worker_pool_stopping(void);

#endif
