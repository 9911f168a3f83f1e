/* SPDX-License-Identifier: MIT */
/*
 * This file contains the read-only queries only the API serves: the
 * applier's state row (for /v1/ruleset, /readyz, /v1/stats, /metrics),
 * the kernel counter table, policy totals and the figures egw-flowlog and
 * egw-natsd publish in their component_status rows.
 *
 * Writers of these rows are elsewhere (the applier writes applier_state and
 * policy_counters, the long-running daemons component_status); the API
 * never writes them.  A component's info JSON is read as typed values: a
 * key that is missing or not an integer (boolean) reads as 0 (false).
 */
#ifndef EGW_STORE_API_H
#define EGW_STORE_API_H

#include "store.h"

#include <stdbool.h>
#include <stdint.h>

struct store_applier_state {
	int64_t desired_generation;
	int64_t applied_generation;
	int dry_run;			/* 1, 0, or -1 when never applied */
	char last_apply_at[32];		/* "" when never */
	bool has_duration;
	double last_duration_ms;
	char *last_error;		/* malloc'd, NULL when none */
	char heartbeat_at[32];		/* "" when never */
	bool stopped;			/* its last report: stopped */
	char *rendered_ruleset;		/* malloc'd, NULL when none or not asked */
};

/**
 * store_api_applier_state() - read the applier_state row
 * @st: connection
 * @with_ruleset: also copy rendered_ruleset (can be large)
 * @out: filled; release with store_api_applier_state_free()
 *
 * Returns: 0, EGW_E_NOMEM, EGW_E_BUSY or EGW_E_DB.
 */
int store_api_applier_state(struct store *st, bool with_ruleset,
    struct store_applier_state *out);

/**
 * store_api_applier_state_free() - release the strings of @s
 */
void store_api_applier_state_free(struct store_applier_state *s);

struct store_policy_totals {
	int64_t total;
	int64_t enabled;
	int64_t pending;
	int64_t applied;
	int64_t failed;
	int64_t audit_mode;
};

/**
 * store_api_policy_totals() - policy counts by state
 *
 * Returns: 0 or EGW_E_DB.
 */
int store_api_policy_totals(struct store *st, struct store_policy_totals *out);

/* One policy_counters row (strings borrowed for the callback only). */
struct store_counter_row {
	const char *scenario_id;
	int64_t allowed_packets, allowed_bytes;
	int64_t denied_packets, denied_bytes;
	const char *updated_at;
};

/**
 * store_api_counters() - kernel counters per scenario, ordered by
 * scenario_id
 * @cb: per row; non-zero stops and is returned
 *
 * Returns: 0, EGW_E_DB or what @cb returned.
 */
int store_api_counters(struct store *st,
    int (*cb)(const struct store_counter_row *row, void *ctx), void *ctx);

/**
 * store_api_egress_per_scenario() - egress_log rows per scenario and action
 * @totals: set to the rows by action over the whole log, rows without a
 *          scenario included: [0] allow, [1] deny, [2] would_deny
 * @cb: per scenario, in scenario_id order: (scenario_id, allow, deny,
 *      would_deny, ctx)
 *
 * One scan of the index on (scenario_id, action, ts) answers both (sql/004).
 *
 * Returns: 0, EGW_E_DB or what @cb returned.
 */
int store_api_egress_per_scenario(struct store *st, int64_t totals[3],
    int (*cb)(const char *scenario_id, int64_t allow, int64_t deny,
    int64_t would_deny, void *ctx), void *ctx);

/*
 * A daemon is live when its last report says it runs and is at most this
 * old (nor this far in the future: a clock set back).  The reports come
 * every 1-2 s; the margin is /readyz's for the applier, for a loaded VM.
 */
#define STORE_API_LIVE_MS 15000

/* egw-flowlog's component_status row (see src/flowlog.c). */
struct store_api_flowlog {
	bool present;			/* false: never reported; rest is 0 */
	bool running;			/* its last report was not its last */
	bool live;			/* running and reported lately */
	int64_t pid;
	char heartbeat_at[32];
	int64_t heartbeat_age_ms;
	int64_t received, written, lost, batches;
	int64_t overruns;		/* info "enobufs": netlink ENOBUFS */
	int64_t seq_lost, queue_dropped, write_dropped;
	int64_t foreign, malformed, unknown_policy, pruned;
	int64_t outbox_pruned;		/* flow events pruned */
	int64_t outbox_dropped;		/* of them, never published */
	int64_t queue_depth, queue_max;
	int64_t group;			/* NFLOG group it is bound to */
};

/**
 * store_api_flowlog() - egw-flowlog's last published figures
 * @st: connection
 * @out: filled (out->present false when the component never reported)
 *
 * The counters restart at 0 when egw-flowlog restarts (its pid changes).
 *
 * Returns: 0 or EGW_E_DB / EGW_E_BUSY.
 */
int store_api_flowlog(struct store *st, struct store_api_flowlog *out);

/* egw-natsd's component_status row (see src/nats_bridge.c). */
struct store_api_natsd {
	bool present;			/* false: never reported; rest is 0 */
	int64_t pid;
	char heartbeat_at[32];
	int64_t heartbeat_age_ms;
	bool running, connected, jetstream;
	bool live;			/* as store_api_flowlog's */
	int64_t published, failed, rejected, events, changes, reconnects;
	int64_t backlog;
};

/**
 * store_api_natsd() - egw-natsd's last published figures
 * @st: connection
 * @out: filled (out->present false when the component never reported)
 *
 * Returns: 0 or EGW_E_DB / EGW_E_BUSY.
 */
int store_api_natsd(struct store *st, struct store_api_natsd *out);

/**
 * store_api_writable() - whether a write can be committed now
 * @commit: false: only take and release the write lock
 *
 * With @commit, commits a real write: this process's component_status row
 * "api" (its pid and the time).  Taking the write lock alone proves
 * nothing on a full or read-only file system, where the lock is granted
 * and the commit fails; but each commit costs a flush and wakes every
 * other connection, so callers make one only now and then.
 *
 * Returns: 0, EGW_E_BUSY, EGW_E_IO or EGW_E_DB.
 */
int store_api_writable(struct store *st, bool commit);

#endif
