/* SPDX-License-Identifier: MIT */
/*
 * This file contains the statements only egw-flowlog runs: the policy id
 * map it attributes packets with and the egress_log retention that runs in
 * small batches.
 *
 * The rows themselves go through store_egress_insert() (store_egress.h),
 * which already takes a whole batch per transaction and queues the audit
 * "flow" events in the same transaction; the heartbeat goes through
 * store_component_heartbeat() (store_component.h).  Retention lives here because it
 * must honour both an age and a row cap, each in batches small enough that
 * the API's readers and the flow writer never wait long for the lock.
 */
#ifndef EGW_STORE_FLOWLOG_H
#define EGW_STORE_FLOWLOG_H

#include "policy.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* What a packet mark / prefix policy id stands for. */
struct store_flowlog_policy {
	uint32_t id;					/* policies.id */
	char scenario_id[POLICY_SCENARIO_ID_MAX + 1];
	char network_id[POLICY_NETWORK_ID_MAX + 1];
};

/**
 * store_flowlog_tune() - per-connection settings of the flow writer
 * @st: flowlog's own connection
 *
 * Sets synchronous=NORMAL: under WAL a crash of the process loses nothing,
 * a power loss may lose the last commits of sampled log rows, and the
 * writer saves an fsync per batch (LIBRARY_NOTES.md f).  Sets a 64 MiB
 * page cache: the outbox's random event_id index and the egress_log
 * indexes are written at random places, and with SQLite's default 2 MiB
 * cache ingestion fell from ~13,000 to ~2,500 rows/s once the tables held
 * half a million rows.
 *
 * Returns: 0 or EGW_E_DB.
 */
int store_flowlog_tune(struct store *st);

/**
 * store_flowlog_policies() - every policy's id, scenario and network
 * @st: connection
 * @out: a malloc'd array ordered by id (NULL when *n == 0); caller frees
 * @n: its length
 *
 * Returns: 0, EGW_E_NOMEM, EGW_E_BUSY or EGW_E_DB.
 */
int store_flowlog_policies(struct store *st, struct store_flowlog_policy **out,
    size_t *n);

/**
 * store_flowlog_prune_step() - delete at most @batch expired egress_log rows
 * @st: connection (not inside a transaction; one short one per call)
 * @retention_s: rows with ts older than now - @retention_s go first
 * @max_rows: then rows beyond the newest @max_rows ids (0: no cap)
 * @batch: rows per call, 1..10000
 * @deleted: how many were deleted
 *
 * The cap counts ids, not rows: every row with id <= max(id) - @max_rows
 * is beyond the cap, which never leaves more than @max_rows rows and costs
 * one index lookup instead of a count.  Call again while *deleted ==
 * @batch.
 *
 * Returns: 0, EGW_E_INVALID (batch), EGW_E_BUSY or EGW_E_DB.
 */
int store_flowlog_prune_step(struct store *st, unsigned retention_s,
    unsigned max_rows, size_t batch, size_t *deleted);

#endif
