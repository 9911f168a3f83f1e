/* SPDX-License-Identifier: MIT */
/*
 * This file contains the egress_log table's access (see store_egress.h).
 *
 * Pages are cut by id, not by offset: newest first, "id < cursor", so a
 * page boundary does not move while flowlog appends.  With a scenario
 * filter the (scenario_id, id) index serves the order directly; the other
 * filters are checked on the rows walked.  Times from clients are parsed
 * and rewritten in the stored format so text comparison is time
 * comparison.
 */
#include "store_egress.h"
#include "audit.h"
#include "err.h"
#include "log.h"
#include "timefmt.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define EGRESS_PRUNE_CHUNK 10000
#define EGRESS_TXN_ATTEMPTS 5

bool
store_egress_valid_action(const char *action)
{
	return action != NULL && (strcmp(action, "allow") == 0 ||
	    strcmp(action, "deny") == 0 || strcmp(action, "would_deny") == 0);
}

static int
step_err(int rc)
{
	int err = store_rc_to_err(rc);

	return err == 0 ? EGW_E_DB : err;
}

/* RFC 3339 in any offset -> the stored UTC form; false when unparsable. */
static bool
normalise_time(const char *in, char out[TIMEFMT_LEN])
{
	int64_t ms;

	if (timefmt_parse(in, &ms) != 0)
		return false;
	timefmt_from_ms(ms, out);
	return true;
}

static void
bind_text_or_null(sqlite3_stmt *stmt, int idx, const char *s)
{
	if (s != NULL && s[0] != '\0')
		sqlite3_bind_text(stmt, idx, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(stmt, idx);
}

static int
insert_batch(struct store *st, struct egress_entry *e, size_t n, bool audit)
{
	sqlite3_stmt *stmt;
	int rc;

	for (size_t i = 0; i < n; i++) {
		stmt = store_prepare(st, "INSERT INTO egress_log (ts, scenario_id,"
		    " network_id, action, src_ip, dst_ip, src_port, dst_port,"
		    " protocol, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
		    " ?10)");
		if (stmt == NULL)
			return EGW_E_DB;
		sqlite3_bind_text(stmt, 1, e[i].ts, -1, SQLITE_TRANSIENT);
		bind_text_or_null(stmt, 2, e[i].scenario_id);
		bind_text_or_null(stmt, 3, e[i].network_id);
		sqlite3_bind_text(stmt, 4, e[i].action, -1, SQLITE_TRANSIENT);
		bind_text_or_null(stmt, 5, e[i].src_ip);
		bind_text_or_null(stmt, 6, e[i].dst_ip);
		/* port 0 is a port (a scan of it is worth seeing) */
		if (e[i].has_ports) {
			sqlite3_bind_int(stmt, 7, e[i].src_port);
			sqlite3_bind_int(stmt, 8, e[i].dst_port);
		}
		bind_text_or_null(stmt, 9, e[i].protocol);
		sqlite3_bind_text(stmt, 10, e[i].reason, -1, SQLITE_TRANSIENT);
		/* The row's id from the connection, not RETURNING: SQLite
		 * builds a temporary table for every row RETURNING gives. */
		rc = sqlite3_step(stmt);
		sqlite3_reset(stmt);
		if (rc != SQLITE_DONE)
			return step_err(rc);
		e[i].id = sqlite3_last_insert_rowid(store_db(st));
		if (audit && (rc = audit_flow_event(st, &e[i])) != 0)
			return rc;
	}
	return 0;
}

int
store_egress_insert(struct store *st, struct egress_entry *e, size_t n,
    bool audit)
{
	char now[TIMEFMT_LEN], norm[TIMEFMT_LEN];
	int rc = EGW_E_BUSY;

	if (n == 0 || n > EGRESS_INSERT_MAX)
		return EGW_E_INVALID;
	timefmt_now(now);
	for (size_t i = 0; i < n; i++) {
		if (!store_egress_valid_action(e[i].action))
			return EGW_E_INVALID;
		if (e[i].ts[0] == '\0')
			snprintf(e[i].ts, sizeof(e[i].ts), "%s", now);
		else if (!normalise_time(e[i].ts, norm))
			return EGW_E_INVALID;
		else
			snprintf(e[i].ts, sizeof(e[i].ts), "%s", norm);
		e[i].id = 0;
	}
	for (int attempt = 0; attempt < EGRESS_TXN_ATTEMPTS; attempt++) {
		if (attempt > 0)
			usleep((useconds_t)(5000 * attempt));
		if ((rc = store_begin(st)) != 0) {
			if (rc == EGW_E_BUSY)
				continue;
			return rc;
		}
		rc = insert_batch(st, e, n, audit);
		if (rc == 0)
			rc = store_commit(st);
		else
			store_rollback(st);
		if (rc != EGW_E_BUSY)
			break;
	}
	if (rc != 0)
		for (size_t i = 0; i < n; i++)
			e[i].id = 0;
	return rc;
}

#define EGRESS_COLUMNS "id, ts, scenario_id, network_id, action, src_ip," \
	" dst_ip, src_port, dst_port, protocol, reason"
#define EGRESS_REST " AND (?2 IS NULL OR action = ?2)" \
	" AND (?3 IS NULL OR ts >= ?3) AND (?4 IS NULL OR ts < ?4)" \
	" AND id < ?5 ORDER BY id DESC LIMIT ?6"

static const char sql_query_scenario[] = "SELECT " EGRESS_COLUMNS
    " FROM egress_log WHERE scenario_id = ?1" EGRESS_REST;
static const char sql_query_all[] = "SELECT " EGRESS_COLUMNS
    " FROM egress_log WHERE ?1 IS NULL" EGRESS_REST;

int
store_egress_query(struct store *st, const struct egress_query *q,
    int (*cb)(const struct egress_entry *e, void *ctx), void *ctx,
    int64_t *next_cursor)
{
	char since[TIMEFMT_LEN], until[TIMEFMT_LEN];
	struct egress_entry e;
	sqlite3_stmt *stmt;
	size_t limit = q->limit == 0 ? 100 : q->limit, seen = 0;
	int64_t last_id = 0;
	int rc, err = 0;

	if (next_cursor != NULL)
		*next_cursor = 0;
	if (limit > EGRESS_QUERY_MAX || q->before_id < 0 ||
	    (q->action != NULL && !store_egress_valid_action(q->action)) ||
	    (q->since != NULL && !normalise_time(q->since, since)) ||
	    (q->until != NULL && !normalise_time(q->until, until)))
		return EGW_E_INVALID;
	stmt = store_prepare(st, q->scenario_id != NULL ? sql_query_scenario
	    : sql_query_all);
	if (stmt == NULL)
		return EGW_E_DB;
	if (q->scenario_id != NULL)
		sqlite3_bind_text(stmt, 1, q->scenario_id, -1, SQLITE_TRANSIENT);
	if (q->action != NULL)
		sqlite3_bind_text(stmt, 2, q->action, -1, SQLITE_TRANSIENT);
	if (q->since != NULL)
		sqlite3_bind_text(stmt, 3, since, -1, SQLITE_TRANSIENT);
	if (q->until != NULL)
		sqlite3_bind_text(stmt, 4, until, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 5, q->before_id > 0 ? q->before_id : INT64_MAX);
	sqlite3_bind_int64(stmt, 6, (sqlite3_int64)limit + 1);
	while (err == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (seen == limit) {
			if (next_cursor != NULL)
				*next_cursor = last_id;
			break;
		}
		memset(&e, 0, sizeof(e));
		e.id = sqlite3_column_int64(stmt, 0);
		store_col_text(stmt, 1, e.ts, sizeof(e.ts));
		store_col_text(stmt, 2, e.scenario_id, sizeof(e.scenario_id));
		store_col_text(stmt, 3, e.network_id, sizeof(e.network_id));
		store_col_text(stmt, 4, e.action, sizeof(e.action));
		store_col_text(stmt, 5, e.src_ip, sizeof(e.src_ip));
		store_col_text(stmt, 6, e.dst_ip, sizeof(e.dst_ip));
		e.has_ports = sqlite3_column_type(stmt, 8) != SQLITE_NULL;
		e.src_port = sqlite3_column_int(stmt, 7);
		e.dst_port = sqlite3_column_int(stmt, 8);
		store_col_text(stmt, 9, e.protocol, sizeof(e.protocol));
		store_col_text(stmt, 10, e.reason, sizeof(e.reason));
		last_id = e.id;
		seen++;
		err = cb(&e, ctx);
	}
	if (err == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = step_err(rc);
	sqlite3_reset(stmt);
	return err;
}

int
store_egress_prune(struct store *st, unsigned retention_s, size_t *deleted)
{
	char cutoff[TIMEFMT_LEN];
	sqlite3_stmt *stmt;
	size_t total = 0;
	int rc, changed;

	if (deleted != NULL)
		*deleted = 0;
	timefmt_from_ms(timefmt_now_ms() - (int64_t)retention_s * 1000, cutoff);
	/* In chunks, each its own short transaction, so a large prune never
	 * holds the write lock for long. */
	do {
		stmt = store_prepare(st, "DELETE FROM egress_log WHERE id IN"
		    " (SELECT id FROM egress_log WHERE ts < ?1 LIMIT ?2)");
		if (stmt == NULL)
			return EGW_E_DB;
		sqlite3_bind_text(stmt, 1, cutoff, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(stmt, 2, EGRESS_PRUNE_CHUNK);
		rc = sqlite3_step(stmt);
		sqlite3_reset(stmt);
		if (rc != SQLITE_DONE)
			return step_err(rc);
		changed = sqlite3_changes(store_db(st));
		total += (size_t)changed;
		if (deleted != NULL)
			*deleted = total;
	} while (changed == EGRESS_PRUNE_CHUNK);
	return 0;
}
