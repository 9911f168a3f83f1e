/* SPDX-License-Identifier: MIT */
/*
 * This file contains the policy store: policies, their history and profiles.
 *
 * Every mutation is one BEGIN IMMEDIATE transaction that writes the policy
 * rows, a policy_history row (before/after as the API shows them), an
 * audit.egress outbox event and bumps applier_state.desired_generation, so
 * the kernel, the history and NATS can all catch up from the database.
 * The whole transaction is retried a few times when the database stays
 * busy, which makes the functions safe under many concurrent writer
 * processes (no lost update: the revision is read under the write lock).
 * Policy writers of all processes also queue on flock(2) of the file
 * "<database>-wlock" (created next to the database, mode 0660) so that the
 * turn passes in order instead of by SQLite's sleep-and-poll; without
 * access to that file they still work, only slower under contention.
 * A put that changes nothing writes nothing (NATS redelivery is normal).
 * After a function returns 0 the caller nudges the applier.
 */
#ifndef EGW_STORE_POLICY_H
#define EGW_STORE_POLICY_H

#include "policy.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct printbuf;

#define STORE_POLICY_LIST_MAX 1000	/* largest page of store_policy_list */
#define STORE_TXN_ATTEMPTS 5		/* tries of a busy mutation */

/* A profile and its rules (each rule row has at most one port range). */
struct store_profile {
	char name[POLICY_PROFILE_MAX + 1];
	char description[256];
	bool uses_policy_entries;	/* adds the policy's hosts/ports/rules */
	bool builtin;
	/* Empty when usable; else why its stored rules cannot be used (a
	 * profile added by hand with SQL: the schema does not check
	 * destinations or count rules), and n_rules is 0. */
	char error[160];
	size_t n_rules;
	struct policy_rule rules[POLICY_MAX_RULES];
};

/* One policy_history row; strings are borrowed for the callback only. */
struct store_history_entry {
	int64_t id;
	const char *ts;
	const char *scenario_id;
	const char *operation;		/* create|update|delete|enable|disable|complete|expire */
	const char *actor;
	const char *request_id;		/* NULL when none */
	int64_t revision;		/* 0 when none */
	int64_t generation;
	const char *before_json;	/* NULL for a create */
	const char *after_json;		/* NULL for a delete/expire */
};

/**
 * store_policy_get() - load one scenario's policy
 * @st: connection
 * @scenario_id: the scenario
 * @out: filled completely (input fields and stored metadata)
 *
 * Returns: 0, EGW_E_NOTFOUND, EGW_E_BUSY or EGW_E_DB.
 */
int store_policy_get(struct store *st, const char *scenario_id,
    struct policy *out);

/**
 * store_policy_get_by_id() - load a policy by its row id (= packet mark)
 *
 * Returns: 0, EGW_E_NOTFOUND, EGW_E_BUSY or EGW_E_DB.
 */
int store_policy_get_by_id(struct store *st, int64_t id, struct policy *out);

/**
 * store_policy_list() - policies ordered by scenario_id
 * @st: connection
 * @after_scenario_id: NULL or "" to start at the first; else the cursor
 *                     (the last scenario_id of the previous page)
 * @limit: page size, 1..STORE_POLICY_LIST_MAX; 0 means every policy (for
 *         the applier's full reconcile)
 * @cb: called per policy, in order, inside one read transaction (a
 *      consistent snapshot); the policy is valid only during the call; it
 *      may read but must not write through @st; a non-zero return stops
 *      the walk and is returned
 * @ctx: passed to @cb
 * @more: may be NULL; set true when policies remain after this page
 *
 * Returns: 0, EGW_E_INVALID (limit), EGW_E_NOMEM, EGW_E_BUSY, EGW_E_DB, or
 * what @cb returned.
 */
int store_policy_list(struct store *st, const char *after_scenario_id,
    size_t limit, int (*cb)(const struct policy *p, void *ctx), void *ctx,
    bool *more);

/**
 * store_policy_document() - one policy as the API answers it, as text
 * @st: connection
 * @scenario_id: the scenario
 * @pb: codec_policy_to_json()'s text of the policy is appended here: the
 *      stored document (api_json, sql/002) with the applier's status, or,
 *      for a row whose document was never built, rebuilt from the rows
 *
 * Returns: 0, EGW_E_NOTFOUND, EGW_E_NOMEM, EGW_E_BUSY or EGW_E_DB.
 */
int store_policy_document(struct store *st, const char *scenario_id,
    struct printbuf *pb);

/**
 * store_policy_documents() - store_policy_list() as API text
 * @cb: called per policy in scenario_id order with its scenario_id and
 *      its whole text (@doc, @len bytes, NUL-terminated), both valid only
 *      during the call; the rest as for store_policy_list()
 *
 * Returns: as store_policy_list().
 */
int store_policy_documents(struct store *st, const char *after_scenario_id,
    size_t limit, int (*cb)(const char *scenario_id, const char *doc,
    size_t len, void *ctx), void *ctx, bool *more);

/**
 * store_policy_fill_documents() - build every document not yet stored
 * @st: connection
 * @filled: may be NULL; how many were built
 *
 * Every policy whose document is NULL (rows from before migration 002,
 * or changed by hand and reset) or stale (built at another generation
 * than the row's), in transactions of a few hundred rows.  A row that
 * does not load is logged and left.  Reads serve all of these from the
 * rows anyway, only slower; the pool's writer runs this when it starts.
 *
 * Returns: 0, EGW_E_NOMEM, EGW_E_BUSY or EGW_E_DB.
 */
int store_policy_fill_documents(struct store *st, size_t *filled);

/**
 * store_policy_fill_derived_ifaces() - compute every policy's derived
 * interface again (the column policies.derived_iface)
 * @st: connection, with its deriver set (store_set_iface_deriver)
 * @changed: may be NULL; how many rows changed
 *
 * EGW_IFACE_TEMPLATE is configuration: rows written before migration 008
 * or under another template are brought in line, in one transaction, so
 * that puts check their claims against what the applier enforces.  Two
 * claims on one interface found there are logged, not refused.
 *
 * Returns: 0, EGW_E_NOMEM, EGW_E_BUSY or EGW_E_DB.
 */
int store_policy_fill_derived_ifaces(struct store *st, size_t *changed);

/**
 * store_policy_count() - how many policies are stored
 * @st: connection; inside store_read_begin() the count belongs to that
 *      snapshot, as does every store_policy_list() page read in it
 * @out: the count
 *
 * Returns: 0, EGW_E_BUSY or EGW_E_DB.
 */
int store_policy_count(struct store *st, size_t *out);

/**
 * store_policy_batch_begin() / store_policy_batch_end() - group commit
 * @st: connection
 * @queued: set when the writers' queue is held for the batch
 * @commit: false rolls every operation of the batch back
 *
 * store_batch_begin() / store_batch_end() (store.h) plus the writers' queue
 * lock, held once for the whole batch.  The mutations below run inside as
 * usual, each on its own savepoint.
 *
 * Returns: as store_batch_begin() / store_batch_end().
 */
int store_policy_batch_begin(struct store *st, bool *queued);
int store_policy_batch_end(struct store *st, bool queued, bool commit);

/**
 * store_policy_put() - create or replace a scenario's policy
 * @st: connection (not inside a transaction)
 * @p: the policy's input fields and p->revision (0: no check; else it must
 *     equal the stored revision, and a create with a non-zero revision is a
 *     conflict); on return 0 the stored metadata is filled in (id,
 *     revision, generation, times, apply status)
 * @actor: who, for history and audit; may be NULL
 * @created: may be NULL; true when the scenario had no policy
 * @errs: may be NULL; gets the problems of EGW_E_INVALID
 *
 * Validates @p again (policy_validate), checks that the profile exists
 * ("/profile") and that no other scenario claims one of its sources or
 * interfaces ("/sources/N", "/interfaces/N").  A policy equal to the stored
 * one (same canonical input JSON) is not written: 0, *created = false, @p
 * gets the stored metadata.  Otherwise the revision grows by one (1 on
 * create), the desired generation is bumped and stored in p->generation,
 * apply status becomes pending; enabling a completed policy clears
 * completed_at.
 *
 * An actor with a check (struct store_actor) passes it first, inside the
 * transaction, here and in delete and set_enabled: its error (e.g.
 * EGW_E_UNAUTHORIZED, EGW_E_FORBIDDEN; EGW_E_INTERNAL for a check that
 * answers anything but 0 or an error) is returned and nothing is written.
 *
 * Returns: 0, EGW_E_INVALID, EGW_E_CONFLICT (revision mismatch),
 * EGW_E_BUSY (still locked after STORE_TXN_ATTEMPTS), EGW_E_NOMEM,
 * EGW_E_IO (no randomness for the event id), EGW_E_DB, or the actor
 * check's error.
 */
int store_policy_put(struct store *st, struct policy *p,
    const struct store_actor *actor, bool *created,
    struct policy_errors *errs);

/**
 * store_policy_delete() - delete a scenario's policy
 * @generation: may be NULL; the desired generation after the delete
 *
 * Returns: 0, EGW_E_NOTFOUND, EGW_E_BUSY, EGW_E_IO, EGW_E_DB or the actor
 * check's error (store_policy_put()).
 */
int store_policy_delete(struct store *st, const char *scenario_id,
    const struct store_actor *actor, int64_t *generation);

/**
 * store_policy_set_enabled() - enable or disable a policy
 * @out: may be NULL; the policy after the call
 *
 * Setting the current value again writes nothing and returns 0.  A change
 * bumps revision and generation (history "enable"/"disable"; enabling
 * clears completed_at).
 *
 * Returns: 0, EGW_E_NOTFOUND, EGW_E_BUSY, EGW_E_IO, EGW_E_DB or the actor
 * check's error (store_policy_put()).
 */
int store_policy_set_enabled(struct store *st, const char *scenario_id,
    bool enabled, const struct store_actor *actor, struct policy *out);

/**
 * store_policy_complete() - scenario.completed: disable and stamp
 * completed_at (history "complete", event "policy.completed")
 *
 * Completing an already completed policy writes nothing and returns 0.
 *
 * Returns: 0, EGW_E_NOTFOUND, EGW_E_BUSY, EGW_E_IO or EGW_E_DB.
 */
int store_policy_complete(struct store *st, const char *scenario_id,
    const struct store_actor *actor);

/**
 * store_policy_expire_completed() - delete disabled policies completed more
 * than @retention_s ago, in one transaction (history "expire", event
 * "policy.expired" each, one generation bump)
 * @deleted: may be NULL
 *
 * Returns: 0, EGW_E_BUSY, EGW_E_IO or EGW_E_DB.
 */
int store_policy_expire_completed(struct store *st, unsigned retention_s,
    size_t *deleted);

/**
 * store_policy_set_apply_result() - the applier records an apply's outcome
 * @st: connection
 * @scenario_id: the policy; NULL for every policy whose generation is at
 *               most @generation
 * @generation: the desired generation that was applied; a policy changed
 *              after it (higher generation) is left pending
 * @status: applied or failed
 * @error: NULL, or the failure text (truncated to POLICY_ERROR_MAX - 1)
 *
 * Does not bump the generation and writes no history (it is not a policy
 * change); sets applied_generation on the rows it updates.
 *
 * Returns: 0, EGW_E_BUSY or EGW_E_DB.
 */
int store_policy_set_apply_result(struct store *st, const char *scenario_id,
    int64_t generation, enum policy_apply_status status, const char *error);

/**
 * store_policy_history() - history rows, newest first
 * @scenario_id: NULL for every scenario
 * @before_id: 0, or the cursor (only rows with id < before_id)
 * @limit: 1..STORE_POLICY_LIST_MAX
 * @cb: per row (borrowed strings); non-zero stops and is returned
 * @next_cursor: may be NULL; 0 when nothing further matches
 *
 * Returns: 0, EGW_E_INVALID (limit), EGW_E_DB, or what @cb returned.
 */
int store_policy_history(struct store *st, const char *scenario_id,
    int64_t before_id, size_t limit,
    int (*cb)(const struct store_history_entry *h, void *ctx), void *ctx,
    int64_t *next_cursor);

/**
 * store_profile_get() - whether a profile exists
 * @uses_policy_entries: may be NULL; whether the policy's own
 *                       hosts/ports/custom_rules apply
 *
 * Returns: 0, EGW_E_NOTFOUND or EGW_E_DB.
 */
int store_profile_get(struct store *st, const char *name,
    bool *uses_policy_entries);

/**
 * store_profile_load() - a profile with its rules (in position order)
 * @out: filled
 *
 * A profile whose stored rules cannot be used is still loaded, with
 * out->error set and no rules: one bad profile must not hide the others.
 *
 * Returns: 0, EGW_E_NOTFOUND or EGW_E_DB.
 */
int store_profile_load(struct store *st, const char *name,
    struct store_profile *out);

/**
 * store_profile_list() - every profile with its rules, ordered by name
 * @cb: per profile (valid during the call only); non-zero stops and is
 *      returned
 *
 * Returns: 0, EGW_E_NOMEM, EGW_E_DB, or what @cb returned.
 */
int store_profile_list(struct store *st,
    int (*cb)(const struct store_profile *pr, void *ctx), void *ctx);

/**
 * store_track_profile() - the profile for a scenario.created track
 * @track: the track (NULL or unknown: the '*' row; no '*' row: "none")
 * @out: the profile name
 *
 * Returns: 0 or EGW_E_DB.
 */
int store_track_profile(struct store *st, const char *track,
    char out[POLICY_PROFILE_MAX + 1]);

#endif
