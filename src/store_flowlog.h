/* SPDX-License-Identifier: MIT */
/*
 * This file contains the statements only egw-flowlog runs: the policy id
 * map it attributes packets with and the retention, in small batches, of
 * what it writes: egress_log rows and the outbox's "flow" events.
 *
 * The rows themselves go through store_egress_insert() (store_egress.h),
 * which already takes a whole batch per transaction and queues the audit
 * "flow" events in the same transaction; the heartbeat goes through
 * store_component_heartbeat() (store_component.h).  Retention lives here because it
 * must honour both an age and a row cap, each in batches small enough that
 * the API's readers and the flow writer never wait long for the lock.  The
 * flow events obey the same age and cap as the log, delivered or not: an
 * outbox that NATS does not drain must not fill the disk (a flow event
 * takes about ten times a log row's bytes).  Policy and apply events are
 * never pruned here.
 *
 * The policy map keeps a deleted policy's entry for a grace period
 * (STORE_FLOWLOG_GRACE_MS): packets logged while it existed, or with its
 * mark until the applier removed its elements, may be written after the
 * delete and still name its scenario.  That is safe because policy ids,
 * the packet marks, come from an AUTOINCREMENT key and are never reused.
 */
#ifndef EGW_STORE_FLOWLOG_H
#define EGW_STORE_FLOWLOG_H

#include "policy.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long the map keeps a deleted policy's entry. */
#define STORE_FLOWLOG_GRACE_MS 60000

/* What a packet mark / prefix policy id stands for. */
struct store_flowlog_policy {
	uint32_t id;					/* policies.id */
	bool gone;		/* deleted, kept for the grace period */
	int64_t gone_ms;	/* if gone: the load that first missed it */
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
 * store_flowlog_policies() - every policy's id, scenario and network, and
 * the recently deleted ones'
 * @st: connection
 * @prev: the map this load replaces, ordered by id (NULL when @n_prev is
 *        0); borrowed
 * @n_prev: its length
 * @now_ms: monotonic time of this load (timefmt_monotonic_ms())
 * @out: a malloc'd array ordered by id (NULL when *n == 0); caller frees
 * @n: its length
 *
 * An entry of @prev whose policy is no longer in the table is kept, marked
 * gone with gone_ms = @now_ms by the first load that misses it, and left
 * out by the first load at gone_ms + STORE_FLOWLOG_GRACE_MS or later (so
 * it may stay longer while nothing reloads).  A policy still in the table
 * takes the table's values.  @prev is left as it is.
 *
 * Returns: 0, EGW_E_NOMEM, EGW_E_BUSY or EGW_E_DB (*out NULL, *n 0).
 */
int store_flowlog_policies(struct store *st,
    const struct store_flowlog_policy *prev, size_t n_prev, int64_t now_ms,
    struct store_flowlog_policy **out, size_t *n);

/* What one retention step deleted. */
struct store_flowlog_pruned {
	size_t log_rows;		/* egress_log rows */
	size_t flow_events;		/* outbox rows of type 'flow' */
	size_t flow_undelivered;	/* of those, rows never published */
};

/**
 * store_flowlog_prune_step() - delete a batch of expired log rows and flow
 * events
 * @st: connection (not inside a transaction; one short one per call)
 * @retention_s: egress_log rows with ts, and outbox flow events with
 *               created_at, older than now - @retention_s go first
 * @max_rows: then log rows beyond the newest @max_rows ids, and flow events
 *            beyond the newest @max_rows outbox ids (0: no cap)
 * @batch: at most this many rows of each table per call, 1..10000
 * @out: how many were deleted (zero on failure)
 *
 * The cap counts ids, not rows: every row with id <= max(id) - @max_rows
 * is beyond the cap, which never leaves more than @max_rows rows and costs
 * one index lookup instead of a count.  Flow events are outbox rows of
 * type 'flow' only, delivered or not; the other event types are never
 * deleted.  The flow events by age are taken from the oldest @batch by id,
 * so a step reads at most @batch entries of the outbox_flow index.  Call
 * again while out->log_rows or out->flow_events == @batch.
 *
 * Returns: 0, EGW_E_INVALID (batch), EGW_E_BUSY or EGW_E_DB.
 */
int store_flowlog_prune_step(struct store *st, unsigned retention_s,
    unsigned max_rows, size_t batch, struct store_flowlog_pruned *out);

#endif
