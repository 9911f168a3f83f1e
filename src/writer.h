/* SPDX-License-Identifier: MIT */
/*
 * This file contains the API pool's writer: one process that commits the
 * workers' policy mutations in groups, and the workers' side of it.
 *
 * Each worker keeps its own SQLite connection, and every commit by one
 * connection makes every other one drop its page cache at its next
 * transaction; with each worker committing for itself an upsert spent most
 * of its time re-reading pages and waiting for the lock, one fsync per
 * request.  The writer is forked by the pool master like a worker.  It
 * accepts the workers on a SOCK_SEQPACKET socket (EGW_RUN_DIR/
 * egw-api-writer.sock, mode 0600), collects whatever requests are waiting,
 * runs them in one BEGIN IMMEDIATE transaction, each on its own savepoint
 * (store_policy_batch_begin), commits once, and answers each worker with
 * its own result.  When a batch cannot commit, every operation is run again
 * in a transaction of its own, so a batch never changes an operation's
 * outcome.  Workers validate the body before anything reaches the writer;
 * messages carry typed values only.
 *
 * A worker that cannot reach the writer (not started yet, restarting)
 * writes directly through its own connection, as before the writer
 * existed, and so does one whose request the writer took but will not run
 * (it answers "not run": past its stop deadline, or out of room).  A
 * stopping writer first takes the connections waiting in its backlog and
 * serves them.  When the writer dies after a request was sent, the worker
 * cannot know whether it committed and answers 503 (EGW_E_UNAVAILABLE);
 * repeating the request is safe (an identical upsert writes nothing).
 * Each side checks that the other runs as its own user (SO_PEERCRED).
 * Every request carries a deadline: one the worker may already have
 * given up on is answered "unavailable" and never run.  A failed flush of
 * the WAL refuses writes until a TRUNCATE checkpoint succeeds, also in a
 * writer started later and in a worker writing directly (a mark in
 * EGW_RUN_DIR: the kernel reports the error once).
 */
#ifndef EGW_WRITER_H
#define EGW_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct metrics;
struct policy;
struct policy_errors;
struct store;
struct store_actor;

/**
 * writer_socket_path() - EGW_RUN_DIR/egw-api-writer.sock
 *
 * Returns: 0, or EGW_E_CONFIG when the path does not fit a unix socket.
 */
int writer_socket_path(const struct config *cfg, char *out, size_t size);

/**
 * writer_run() - the writer process: serve batches until told to stop
 * @cfg: configuration
 * @metrics: shared counters (batches and operations), or NULL
 *
 * The writer creates its socket itself and it dies with it: while no
 * writer runs, a worker's connect() is refused and it writes directly,
 * and no request can wait in a backlog for a later writer to run it.
 *
 * SIGTERM makes it finish the batch in hand, then serve the workers still
 * connected until they close (they stop first) or 8 s after the signal
 * (the master kills at 10 s); what is sent later is answered "not run".
 *
 * Returns: the process exit status (0 after a requested stop).
 */
int writer_run(const struct config *cfg, struct metrics *metrics);

/**
 * writer_client_init() - where a worker counts the writes it had to make
 * itself (writer unreachable)
 * @metrics: the pool's shared region (borrowed: it outlives the worker);
 *           NULL counts nothing
 */
void writer_client_init(struct metrics *metrics);

/**
 * writer_put() / writer_delete() / writer_set_enabled() - a worker's
 * mutation, through the writer when it is reachable
 * @cfg: configuration (writer socket path)
 * @st: the worker's own connection (the fallback)
 *
 * Same arguments, results and errors as store_policy_put(),
 * store_policy_delete() and store_policy_set_enabled() (store_policy.h),
 * plus EGW_E_UNAVAILABLE when the writer went away with the request.  A
 * committed change has been announced to the applier (one nudge per
 * flushed group from the writer, or one from the worker when it wrote
 * directly), so callers do not nudge.
 */
int writer_put(const struct config *cfg, struct store *st, struct policy *p,
    const struct store_actor *actor, bool *created, struct policy_errors *errs);
int writer_delete(const struct config *cfg, struct store *st,
    const char *scenario_id, const struct store_actor *actor,
    int64_t *generation);
int writer_set_enabled(const struct config *cfg, struct store *st,
    const char *scenario_id, bool enabled, const struct store_actor *actor,
    struct policy *out);

#endif
