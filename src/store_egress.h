/* SPDX-License-Identifier: MIT */
/*
 * This file contains the egress log: what the kernel decided per flow.
 *
 * egw-flowlog appends rows in batches (one transaction per batch, so the
 * write lock is taken once per batch, not per packet); the API reads them
 * newest first with filters and an id cursor, which stays stable while new
 * rows arrive (an offset would not).  Optionally each inserted row is also
 * queued as an audit.egress "flow" event in the same transaction.
 */
#ifndef EGW_STORE_EGRESS_H
#define EGW_STORE_EGRESS_H

#include "netaddr.h"
#include "policy.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EGRESS_INSERT_MAX 1000	/* rows per store_egress_insert call */
#define EGRESS_QUERY_MAX 1000	/* rows per query page */

/* One egress_log row.  Text fields are "" when unknown (stored as NULL). */
struct egress_entry {
	int64_t id;			/* set by insert */
	char ts[32];			/* RFC 3339 ms UTC; "" = now on insert */
	char scenario_id[POLICY_SCENARIO_ID_MAX + 1];
	char network_id[POLICY_NETWORK_ID_MAX + 1];
	char action[12];		/* "allow" | "deny" | "would_deny" */
	char src_ip[NETADDR_PREFIX_STRLEN];
	char dst_ip[NETADDR_PREFIX_STRLEN];
	bool has_ports;			/* false: the ports are NULL */
	int src_port;			/* 0..65535 when has_ports */
	int dst_port;
	char protocol[16];		/* "tcp", "udp", "icmp", "icmpv6", ... */
	char reason[32];		/* NFLOG reason, e.g. "default" */
};

/* Filters of store_egress_query; NULL/0 fields do not filter. */
struct egress_query {
	const char *scenario_id;
	const char *action;		/* allow | deny | would_deny */
	const char *since;		/* ts >= since (RFC 3339, any offset) */
	const char *until;		/* ts < until */
	int64_t before_id;		/* cursor: only rows with id < before_id */
	size_t limit;			/* 1..EGRESS_QUERY_MAX; 0 means 100 */
};

/**
 * store_egress_valid_action() - "allow", "deny" or "would_deny"
 */
bool store_egress_valid_action(const char *action);

/**
 * store_egress_insert() - append a batch in one transaction
 * @st: connection (not inside a transaction: this begins its own)
 * @e: 1..EGRESS_INSERT_MAX entries; ids (and empty ts) are filled in
 * @n: how many
 * @audit: also queue each row as an audit.egress "flow" event (audit.h)
 *
 * All or nothing.  Retries the transaction while the database is busy.
 *
 * Returns: 0, EGW_E_INVALID (n out of range or a bad action; nothing
 * written), EGW_E_BUSY, EGW_E_NOMEM or EGW_E_DB.
 */
int store_egress_insert(struct store *st, struct egress_entry *e, size_t n,
    bool audit);

/**
 * store_egress_query() - rows matching @q, newest (highest id) first
 * @st: connection
 * @q: filters; since/until are parsed and normalised to UTC
 * @cb: called per row; the entry is only valid during the call; a non-zero
 *      return stops the walk and is returned; must not use @st
 * @ctx: passed to @cb
 * @next_cursor: 0 when no further rows match, else the before_id of the
 *               next page; may be NULL
 *
 * Returns: 0, EGW_E_INVALID (bad action, time or limit), EGW_E_DB, or what
 * @cb returned.
 */
int store_egress_query(struct store *st, const struct egress_query *q,
    int (*cb)(const struct egress_entry *e, void *ctx), void *ctx,
    int64_t *next_cursor);

/**
 * store_egress_prune() - delete rows older than @retention_s
 * @deleted: may be NULL
 *
 * Returns: 0, EGW_E_BUSY or EGW_E_DB.
 */
int store_egress_prune(struct store *st, unsigned retention_s, size_t *deleted);

#endif
