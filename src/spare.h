/* SPDX-License-Identifier: MIT */
/*
 * This file contains the API pool's spare workers: which workers take
 * part in accept() at any moment.
 *
 * A write waits for the writer's group commit and its disk flush (about
 * a millisecond), and a ?wait waits for the applier: a worker doing
 * either serves nobody meanwhile, so with a fixed pool the writes in
 * flight are capped at the worker count.  More workers lift that cap but
 * cost the reads: every idle worker takes its turn at accept(), each with
 * cold caches (measured: 16 workers instead of 8 gave +26 % upserts and
 * -9 % reads).  So EGW_WORKERS workers accept, and EGW_SPARE_WORKERS more
 * stay parked on a process-shared semaphore until one of the accepting
 * ones steps out to wait (spare_step_out()); the spare that wakes accepts
 * in its place.  Once the waiting worker is back, the first accepting
 * worker to find one too many parks before its next accept
 * (spare_park_if_surplus()).
 *
 * The state lives in one shared anonymous mapping made by the master
 * before it forks: one byte of state per worker slot, counted (not a
 * counter) so that a worker killed in any state is accounted for by the
 * master resetting its slot (spare_slot_gone()).  A worker stepping out
 * posts once for every accepting worker missing, as far as parked ones
 * go; a parked worker also looks again every SPARE_PARK_S.  Which
 * workers accept rotates under a mixed load (the first to find one too
 * many parks), but never more than about EGW_WORKERS at a time.  A parked
 * worker's wait ends on a stop signal in practice (a timed futex wait
 * returns EINTR), but signal(7) lists sem_timedwait() among the calls
 * SA_RESTART restarts, so the master also wakes every parked worker after
 * it signals them (spare_wake_all()).
 */
#ifndef EGW_SPARE_H
#define EGW_SPARE_H

#include <stdbool.h>

struct spare;

/**
 * spare_create() - map the shared state (master, before forking)
 * @accepting: workers that accept at once (EGW_WORKERS)
 * @slots: every worker slot (EGW_WORKERS + EGW_SPARE_WORKERS)
 * @out: the region
 *
 * Returns: 0 or EGW_E_NOMEM.
 */
int spare_create(unsigned accepting, unsigned slots, struct spare **out);

/** spare_destroy() - unmap; NULL is a no-op */
void spare_destroy(struct spare *s);

/** spare_slot_gone() - the master saw the worker of @slot die */
void spare_slot_gone(struct spare *s, unsigned slot);

/** spare_wake_all() - the master, after signalling the workers: every
 * parked one looks at its stop flag (NULL @s: no-op) */
void spare_wake_all(struct spare *s);

/**
 * spare_attach() - a worker starts in @slot (NULL @s: no spares, and
 * every later call is a no-op); it counts as accepting.
 */
void spare_attach(struct spare *s, unsigned slot);

/**
 * spare_park_if_surplus() - before accept(): park while more workers
 * accept than wanted
 * @stopping: polled while parked; returns at once when it turns true
 */
void spare_park_if_surplus(bool (*stopping)(void));

/**
 * spare_step_out() / spare_step_in() - around a wait for the writer or
 * the applier: a parked spare accepts meanwhile.  Nested calls count once.
 * Stepping out also writes the log lines the worker holds (log_flush()),
 * and so does parking.
 */
void spare_step_out(void);
void spare_step_in(void);

/**
 * spare_census() - every worker slot's state right now, as this worker's
 * region shows it (for /metrics)
 * @accepting: workers taking part in accept()
 * @waiting: workers stepped out, waiting for the writer or the applier
 * @parked: spares parked
 *
 * A worker that died counts in its last state until the master has
 * reaped it, and then in none until its replacement starts.
 *
 * Returns: false, and nothing written, when the pool has no spares.
 */
bool spare_census(unsigned *accepting, unsigned *waiting, unsigned *parked);

#endif
