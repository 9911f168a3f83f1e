/* SPDX-License-Identifier: MIT */
/*
 * This file contains the applier's view of the database.
 *
 * Policies and profiles are read through store_policy.h (which parses every
 * stored text into typed values again) and apply results and audit events
 * go through store_policy_set_apply_result() and audit.h.  What is left
 * here: which scenarios changed after a generation, and the applier's own
 * rows (applier_state, policy_counters, component_status).
 */
#ifndef EGW_STORE_APPLIER_H
#define EGW_STORE_APPLIER_H

#include "policy.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * store_applier_changed_since() - scenarios changed after @generation
 * @cb: called once per scenario_id (deleted ones included)
 *
 * Returns: 0 or EGW_E_DB.
 */
int store_applier_changed_since(struct store *st, int64_t generation,
    void (*cb)(const char *scenario_id, void *ctx), void *ctx);

/**
 * store_applier_record() - the applier_state row after an apply
 * @applied_generation: generation now in the kernel (or validated, dry-run)
 * @dry_run: DRY_RUN
 * @duration_ms: the transaction's duration
 * @error: last_error, NULL on success
 * @rendered: the full ruleset text, or NULL to keep the stored one
 *
 * The applier passes a text only when its content hash changed, so the
 * multi-MB text is not rewritten by every reconcile.
 *
 * Returns: 0, EGW_E_DB or EGW_E_BUSY.  Call inside store_begin().
 */
int store_applier_record(struct store *st, int64_t applied_generation,
    bool dry_run, double duration_ms, const char *error, const char *rendered);

/* First line of applier_state.rendered_ruleset: the content hash. */
#define STORE_APPLIER_CONTENT_TAG "# egw-content "

/**
 * store_applier_rendered_hash() - the content hash the stored text carries
 * @out: the hash from the text's first line, 0 when there is none
 *
 * Reads only the first line (substr), never the whole multi-MB text.
 *
 * Returns: 0 or EGW_E_DB.
 */
int store_applier_rendered_hash(struct store *st, uint64_t *out);

/**
 * store_applier_set_status() - one scenario's apply result
 * @scenario_id: the scenario
 * @generation: the applied generation; rows written later are left alone
 * @status: applied or failed
 * @error: apply_error (truncated to POLICY_ERROR_MAX - 1), NULL to clear
 *
 * The same columns as store_policy_set_apply_result(), through the
 * scenario_id index (that function's "scenario_id = ?4 OR ?4 IS NULL"
 * scans the table: milliseconds per call at 10,000 policies).
 *
 * Returns: 0, EGW_E_DB or EGW_E_BUSY.  Call inside store_begin().
 */
int store_applier_set_status(struct store *st, const char *scenario_id,
    int64_t generation, enum policy_apply_status status, const char *error);

/**
 * store_applier_heartbeat() - applier_state.heartbeat_at and component_status
 * @info: JSON text for component_status.info (borrowed)
 *
 * Returns: 0, EGW_E_DB or EGW_E_BUSY.
 */
int store_applier_heartbeat(struct store *st, const char *info);

/* Allowed packets and bytes, denied packets and bytes, in this order. */
#define STORE_COUNTERS 4

/**
 * store_applier_counters_add() - add kernel counter deltas to a scenario
 * @delta: what the kernel counted since the last read
 * @mark: the scenario's packet mark
 * @kernel: the kernel's counter values now (the next baseline)
 *
 * Returns: 0, EGW_E_DB or EGW_E_BUSY.  Call inside store_begin().
 */
int store_applier_counters_add(struct store *st, const char *scenario_id,
    const uint64_t delta[STORE_COUNTERS], uint32_t mark,
    const uint64_t kernel[STORE_COUNTERS]);

/**
 * store_applier_counters_baselines() - the kernel values stored at the
 * last read, for each scenario that has them
 * @cb: called with the scenario, its mark then and the values
 *
 * Returns: 0 or EGW_E_DB.
 */
int store_applier_counters_baselines(struct store *st,
    void (*cb)(const char *scenario_id, uint32_t mark,
    const uint64_t kernel[STORE_COUNTERS], void *ctx), void *ctx);

/**
 * store_applier_counters_forget_kernel() - the table was created anew: no
 * stored kernel value is a baseline any more
 *
 * Returns: 0, EGW_E_DB or EGW_E_BUSY.  Call inside store_begin().
 */
int store_applier_counters_forget_kernel(struct store *st);

#endif
