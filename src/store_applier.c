/* SPDX-License-Identifier: MIT */
/*
 * This file contains the applier's own queries and rows.
 *
 * Scenarios changed after a generation come from policy_history alone:
 * every change that sets a policy's generation appends a row with it, and
 * so do deletes and expiries, whose policies rows are gone
 * (sql/003_changes_from_history.sql).
 */
#include "store_applier.h"
#include "err.h"
#include "log.h"
#include "timefmt.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
step_done(sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);

	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : store_rc_to_err(rc) ? store_rc_to_err(rc) : EGW_E_DB;
}

int
store_applier_changed_since(struct store *st, int64_t generation,
    void (*cb)(const char *scenario_id, void *ctx), void *ctx)
{
	/* Without statistics the planner would meet DISTINCT by walking all
	 * of policy_history_scenario: the whole history on every apply. */
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT DISTINCT scenario_id FROM policy_history"
	    " INDEXED BY policy_history_generation WHERE generation > ?1");
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_int64(stmt, 1, generation);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const unsigned char *s = sqlite3_column_text(stmt, 0);

		if (s != NULL)
			cb((const char *)s, ctx);
	}
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : store_rc_to_err(rc);
}

int
store_applier_record(struct store *st, int64_t applied_generation,
    bool dry_run, double duration_ms, const char *error, const char *rendered)
{
	char now[TIMEFMT_LEN];
	sqlite3_stmt *stmt = store_prepare(st,
	    "UPDATE applier_state SET applied_generation = ?1, dry_run = ?2,"
	    " last_apply_at = ?3, last_duration_ms = ?4, last_error = ?5,"
	    " heartbeat_at = ?3 WHERE id = 1");
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	timefmt_now(now);
	sqlite3_bind_int64(stmt, 1, applied_generation);
	sqlite3_bind_int(stmt, 2, dry_run);
	sqlite3_bind_text(stmt, 3, now, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(stmt, 4, duration_ms);
	/* bindings outlive sqlite3_reset(): always bind, NULL included */
	if (error)
		sqlite3_bind_text(stmt, 5, error, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(stmt, 5);
	if ((rc = step_done(stmt)) != 0 || rendered == NULL)
		return rc;
	stmt = store_prepare(st, "INSERT INTO applier_rendered (id, rendered_ruleset)"
	    " VALUES (1, ?1) ON CONFLICT (id) DO UPDATE"
	    " SET rendered_ruleset = excluded.rendered_ruleset");
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, rendered, -1, SQLITE_STATIC);
	rc = step_done(stmt);
	/* STATIC: the caller's buffer must not stay bound past this call */
	sqlite3_clear_bindings(stmt);
	return rc;
}

int
store_applier_rendered_hash(struct store *st, uint64_t *out)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT substr(rendered_ruleset, 1, 64) FROM applier_rendered WHERE id = 1");
	const char *tag = STORE_APPLIER_CONTENT_TAG;
	int rc;

	*out = 0;
	if (stmt == NULL)
		return EGW_E_DB;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(stmt, 0);
		unsigned long long h;
		char *end;

		if (t != NULL && strncmp(t, tag, strlen(tag)) == 0) {
			h = strtoull(t + strlen(tag), &end, 16);
			if (*end == '\n')
				*out = (uint64_t)h;
		}
		rc = SQLITE_DONE;
	}
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : EGW_E_DB;
}

int
store_applier_set_status(struct store *st, const char *scenario_id,
    int64_t generation, enum policy_apply_status status, const char *error)
{
	sqlite3_stmt *stmt = store_prepare(st, "UPDATE policies SET"
	    " apply_status = ?1, apply_error = substr(?2, 1, ?5),"
	    " applied_generation = ?3"
	    " WHERE scenario_id = ?4 AND generation <= ?3");

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, policy_apply_status_name(status), -1,
	    SQLITE_STATIC);
	if (error != NULL && error[0] != '\0')
		sqlite3_bind_text(stmt, 2, error, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(stmt, 2);
	sqlite3_bind_int64(stmt, 3, generation);
	sqlite3_bind_text(stmt, 4, scenario_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(stmt, 5, POLICY_ERROR_MAX - 1);
	return step_done(stmt);
}

int
store_applier_heartbeat(struct store *st, const char *info)
{
	char now[TIMEFMT_LEN];
	sqlite3_stmt *stmt;
	int rc;

	timefmt_now(now);
	stmt = store_prepare(st, "UPDATE applier_state SET heartbeat_at = ?1"
	    " WHERE id = 1");
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, now, -1, SQLITE_TRANSIENT);
	if ((rc = step_done(stmt)) != 0)
		return rc;
	stmt = store_prepare(st, "INSERT INTO component_status"
	    " (component, pid, heartbeat_at, info) VALUES ('applier', ?1, ?2, ?3)"
	    " ON CONFLICT(component) DO UPDATE SET pid = excluded.pid,"
	    " heartbeat_at = excluded.heartbeat_at, info = excluded.info");
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_int64(stmt, 1, (int64_t)getpid());
	sqlite3_bind_text(stmt, 2, now, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 3, info ? info : "{}", -1, SQLITE_TRANSIENT);
	return step_done(stmt);
}

int
store_applier_counters_add(struct store *st, const char *scenario_id,
    const uint64_t delta[STORE_COUNTERS], uint32_t mark,
    const uint64_t kernel[STORE_COUNTERS])
{
	char now[TIMEFMT_LEN];
	sqlite3_stmt *stmt = store_prepare(st,
	    "INSERT INTO policy_counters (scenario_id, allowed_packets,"
	    " allowed_bytes, denied_packets, denied_bytes, updated_at,"
	    " kernel_mark, kernel_allowed_packets, kernel_allowed_bytes,"
	    " kernel_denied_packets, kernel_denied_bytes)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
	    " ON CONFLICT(scenario_id) DO UPDATE"
	    " SET allowed_packets = allowed_packets + excluded.allowed_packets,"
	    " allowed_bytes = allowed_bytes + excluded.allowed_bytes,"
	    " denied_packets = denied_packets + excluded.denied_packets,"
	    " denied_bytes = denied_bytes + excluded.denied_bytes,"
	    " updated_at = excluded.updated_at,"
	    " kernel_mark = excluded.kernel_mark,"
	    " kernel_allowed_packets = excluded.kernel_allowed_packets,"
	    " kernel_allowed_bytes = excluded.kernel_allowed_bytes,"
	    " kernel_denied_packets = excluded.kernel_denied_packets,"
	    " kernel_denied_bytes = excluded.kernel_denied_bytes");

	if (stmt == NULL)
		return EGW_E_DB;
	timefmt_now(now);
	sqlite3_bind_text(stmt, 1, scenario_id, -1, SQLITE_TRANSIENT);
	for (int i = 0; i < STORE_COUNTERS; i++) {
		sqlite3_bind_int64(stmt, 2 + i, (int64_t)delta[i]);
		sqlite3_bind_int64(stmt, 8 + i, (int64_t)kernel[i]);
	}
	sqlite3_bind_text(stmt, 6, now, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 7, mark);
	return step_done(stmt);
}

int
store_applier_counters_baselines(struct store *st,
    void (*cb)(const char *scenario_id, uint32_t mark,
    const uint64_t kernel[STORE_COUNTERS], void *ctx), void *ctx)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT scenario_id, kernel_mark, kernel_allowed_packets,"
	    " kernel_allowed_bytes, kernel_denied_packets, kernel_denied_bytes"
	    " FROM policy_counters WHERE kernel_mark IS NOT NULL");
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *sid = (const char *)sqlite3_column_text(stmt, 0);
		sqlite3_int64 mark = sqlite3_column_int64(stmt, 1);
		uint64_t k[STORE_COUNTERS];

		if (sid == NULL || mark <= 0 || mark > UINT32_MAX)
			continue;
		for (int i = 0; i < STORE_COUNTERS; i++)
			k[i] = (uint64_t)sqlite3_column_int64(stmt, 2 + i);
		cb(sid, (uint32_t)mark, k, ctx);
	}
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : store_rc_to_err(rc);
}

int
store_applier_counters_forget_kernel(struct store *st)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "UPDATE policy_counters SET kernel_mark = NULL,"
	    " kernel_allowed_packets = 0, kernel_allowed_bytes = 0,"
	    " kernel_denied_packets = 0, kernel_denied_bytes = 0"
	    " WHERE kernel_mark IS NOT NULL");

	if (stmt == NULL)
		return EGW_E_DB;
	return step_done(stmt);
}
