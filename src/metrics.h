/* SPDX-License-Identifier: MIT */
/*
 * This file contains the API pool's request metrics.
 *
 * The pool master maps one shared anonymous region before it forks; each
 * worker slot owns one row of counters (requests by route and status, a
 * latency histogram per route) and is its only writer, so no lock is
 * needed: a reader sums the slots with relaxed atomic loads.  A replacement
 * worker inherits its slot, so counters only ever grow, as Prometheus
 * expects of a counter.  Nothing is written to SQLite per request.
 * metrics_write_one() formats the figures /metrics reads from SQLite at
 * scrape time (other processes' component rows, kernel counters).
 */
#ifndef EGW_METRICS_H
#define EGW_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define METRICS_MAX_ROUTES 24	/* route_table() entries + "unmatched" */
#define METRICS_N_BUCKETS 12

struct metrics;

/**
 * metrics_create() - map the shared counters (call before forking)
 * @workers: number of worker slots
 * @n_routes: number of named routes; index @n_routes means "unmatched"
 * @out: the region, shared with every child forked afterwards
 *
 * Returns: 0, EGW_E_INVALID (too many routes) or EGW_E_NOMEM.
 */
int metrics_create(unsigned workers, size_t n_routes, struct metrics **out);

/**
 * metrics_destroy() - unmap; NULL is a no-op
 */
void metrics_destroy(struct metrics *m);

/**
 * metrics_observe() - count one finished request
 * @m: the region (NULL: no-op)
 * @slot: the worker's slot
 * @route: route index, or n_routes for a request no route matched
 * @status: HTTP status sent
 * @usec: time spent in microseconds
 */
void metrics_observe(struct metrics *m, unsigned slot, size_t route,
    int status, uint64_t usec);

/**
 * metrics_worker_spawned() - the master counts a (re)started worker
 * @m: the region
 * @replacement: true when it replaces a worker that died
 */
void metrics_worker_spawned(struct metrics *m, int replacement);

/**
 * metrics_writer_batch() - the writer committed (or tried) @ops operations
 * as one batch; NULL @m is a no-op
 */
void metrics_writer_batch(struct metrics *m, size_t ops);

/**
 * metrics_write_direct() - a worker wrote a mutation itself (no writer
 * could be reached); NULL @m is a no-op
 */
void metrics_write_direct(struct metrics *m);

/**
 * metrics_write() - the request metrics in Prometheus text format
 * @m: the region
 * @route_names: labels, n_routes entries
 * @out: stream to write to
 *
 * Writes egw_api_requests_total{route,code}, the
 * egw_api_request_duration_seconds histogram per route, the worker spawn
 * counters and the writer's (groups, operations in them, direct writes).
 */
void metrics_write(const struct metrics *m, const char *const *route_names,
    FILE *out);

/**
 * metrics_write_one() - one unlabelled sample with its HELP and TYPE lines
 * @out: stream to write to
 * @name: metric name (a counter's name ends in "_total")
 * @type: "counter" or "gauge"
 * @help: one line of text, no newline or backslash
 * @value: the sample
 *
 * For the figures the API reads from SQLite at scrape time (component
 * status rows, kernel counters), which have exactly one sample each.
 */
void metrics_write_one(FILE *out, const char *name, const char *type,
    const char *help, int64_t value);

#endif
