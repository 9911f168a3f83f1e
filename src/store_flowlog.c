/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-flowlog's own statements: policy id map and
 * batched retention of egress_log and of the outbox's flow events.
 *
 * Each write is its own BEGIN IMMEDIATE transaction and touches at most a
 * batch of rows per table: 0.1 ms with nothing due, about 45 ms deleting
 * 500 log rows and 500 flow events at 1,000,000 rows, mostly in the log's
 * indexes (bench/flowlog/prune.sh on the 2-core development VM).
 */
#include "store_flowlog.h"
#include "err.h"
#include "log.h"
#include "timefmt.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

int
store_flowlog_tune(struct store *st)
{
	return store_exec(st, "PRAGMA synchronous = NORMAL;"
	    "PRAGMA cache_size = -65536");
}

/*
 * Merge the live policies @v (ordered by id) with the deleted ones of
 * @prev still within the grace period, into a new array.
 */
static int
store_flowlog_keep_gone(const struct store_flowlog_policy *v, size_t len,
    const struct store_flowlog_policy *prev, size_t n_prev, int64_t now_ms,
    struct store_flowlog_policy **out, size_t *n)
{
	struct store_flowlog_policy *m;
	size_t i = 0, j = 0, k = 0;

	m = malloc((len + n_prev) * sizeof(*m));
	if (m == NULL)
		return EGW_E_NOMEM;
	while (i < len || j < n_prev) {
		if (j == n_prev || (i < len && v[i].id <= prev[j].id)) {
			if (j < n_prev && v[i].id == prev[j].id)
				j++;
			m[k++] = v[i++];
			continue;
		}
		/* prev[j] is no longer in the table. */
		if (!prev[j].gone) {
			m[k] = prev[j];
			m[k].gone = true;
			m[k++].gone_ms = now_ms;
		} else if (now_ms - prev[j].gone_ms < STORE_FLOWLOG_GRACE_MS) {
			m[k++] = prev[j];
		}
		j++;
	}
	*out = m;
	*n = k;
	return 0;
}

int
store_flowlog_policies(struct store *st,
    const struct store_flowlog_policy *prev, size_t n_prev, int64_t now_ms,
    struct store_flowlog_policy **out, size_t *n)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT id, scenario_id, network_id FROM policies"
	    " WHERE id BETWEEN 1 AND 2147483647 ORDER BY id");
	struct store_flowlog_policy *v = NULL, *nv;
	size_t len = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (stmt == NULL)
		return EGW_E_DB;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				sqlite3_reset(stmt);
				free(v);
				return EGW_E_NOMEM;
			}
			v = nv;
		}
		v[len].id = (uint32_t)sqlite3_column_int64(stmt, 0);
		v[len].gone = false;
		v[len].gone_ms = 0;
		store_col_text(stmt, 1, v[len].scenario_id, sizeof(v[len].scenario_id));
		store_col_text(stmt, 2, v[len].network_id, sizeof(v[len].network_id));
		len++;
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		log_warnx("policies: %s", sqlite3_errstr(rc));
		free(v);
		return store_rc_to_err(rc);
	}
	if (n_prev == 0) {
		*out = v;
		*n = len;
		return 0;
	}
	rc = store_flowlog_keep_gone(v, len, prev, n_prev, now_ms, out, n);
	free(v);
	if (*n == 0) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

/* Run one bound DELETE; @deleted gets sqlite3_changes(). */
static int
store_flowlog_delete(struct store *st, sqlite3_stmt *stmt, size_t *deleted)
{
	int rc = sqlite3_step(stmt);

	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		log_warnx("egress_log prune: %s", sqlite3_errstr(rc));
		return store_rc_to_err(rc);
	}
	*deleted = (size_t)sqlite3_changes(store_db(st));
	return 0;
}

/*
 * Run one bound "DELETE FROM outbox ... RETURNING delivered_at IS NULL":
 * adds the rows it deleted to @deleted and the undelivered ones among
 * them to @undelivered.  SQLite makes every change at the first step; the
 * rows returned only report them.
 */
static int
store_flowlog_delete_events(sqlite3_stmt *stmt, size_t *deleted,
    size_t *undelivered)
{
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		(*deleted)++;
		if (sqlite3_column_int(stmt, 0) != 0)
			(*undelivered)++;
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		log_warnx("outbox flow prune: %s", sqlite3_errstr(rc));
		return store_rc_to_err(rc);
	}
	return 0;
}

/* egress_log: by age through the ts index, then beyond the cap by id. */
static int
store_flowlog_prune_log(struct store *st, const char *cutoff,
    unsigned max_rows, size_t batch, size_t *deleted)
{
	sqlite3_stmt *stmt;
	size_t n = 0, m = 0;
	int rc;

	stmt = store_prepare(st,
	    "DELETE FROM egress_log WHERE id IN (SELECT id FROM egress_log"
	    " WHERE ts < ?1 ORDER BY ts LIMIT ?2)");
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, cutoff, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)batch);
	if ((rc = store_flowlog_delete(st, stmt, &n)) != 0)
		return rc;
	if (max_rows > 0 && n < batch) {
		stmt = store_prepare(st,
		    "DELETE FROM egress_log WHERE id IN (SELECT id FROM egress_log"
		    " WHERE id <= (SELECT max(id) FROM egress_log) - ?1"
		    " ORDER BY id LIMIT ?2)");
		if (stmt == NULL)
			return EGW_E_DB;
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)max_rows);
		sqlite3_bind_int64(stmt, 2, (sqlite3_int64)(batch - n));
		if ((rc = store_flowlog_delete(st, stmt, &m)) != 0)
			return rc;
	}
	*deleted = n + m;
	return 0;
}

/*
 * The outbox's flow events, through the partial index outbox_flow
 * (sql/005_outbox_flow_index.sql), so neither statement reads a row that
 * is not a flow event nor more than @batch index entries.  Age: of the
 * oldest @batch flow events by id, those created before the cutoff;
 * created_at follows id (one writer stamps and inserts them in order), so
 * this takes the expired head without a created_at index (after the
 * clock was set back, events stamped ahead hold the age back until they
 * expire; the cap still applies).  Cap: as for
 * egress_log, by id distance from the outbox's newest id; the ids between
 * also number the few policy events, so at most @max_rows flow events stay.
 * A policy event ("policy.*", "apply.*", any type but 'flow') is never
 * touched: only egw-natsd removes it, once delivered.
 */
static int
store_flowlog_prune_events(struct store *st, const char *cutoff,
    unsigned max_rows, size_t batch, size_t *deleted, size_t *undelivered)
{
	sqlite3_stmt *stmt;
	size_t n = 0;
	int rc;

	stmt = store_prepare(st,
	    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
	    " WHERE type = 'flow' ORDER BY id LIMIT ?2)"
	    " AND type = 'flow' AND created_at < ?1"
	    " RETURNING delivered_at IS NULL");
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, cutoff, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)batch);
	if ((rc = store_flowlog_delete_events(stmt, &n, undelivered)) != 0)
		return rc;
	if (max_rows > 0 && n < batch) {
		stmt = store_prepare(st,
		    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
		    " WHERE type = 'flow'"
		    " AND id <= (SELECT max(id) FROM outbox) - ?1"
		    " ORDER BY id LIMIT ?2) AND type = 'flow'"
		    " RETURNING delivered_at IS NULL");
		if (stmt == NULL)
			return EGW_E_DB;
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)max_rows);
		sqlite3_bind_int64(stmt, 2, (sqlite3_int64)(batch - n));
		rc = store_flowlog_delete_events(stmt, &n, undelivered);
		if (rc != 0)
			return rc;
	}
	*deleted = n;
	return 0;
}

int
store_flowlog_prune_step(struct store *st, unsigned retention_s,
    unsigned max_rows, size_t batch, struct store_flowlog_pruned *out)
{
	struct store_flowlog_pruned p = { 0 };
	char cutoff[TIMEFMT_LEN];
	int rc;

	memset(out, 0, sizeof(*out));
	if (batch < 1 || batch > 10000)
		return EGW_E_INVALID;
	timefmt_from_ms(timefmt_now_ms() - (int64_t)retention_s * 1000, cutoff);
	if ((rc = store_begin(st)) != 0)
		return rc;
	if ((rc = store_flowlog_prune_log(st, cutoff, max_rows, batch,
	    &p.log_rows)) != 0 ||
	    (rc = store_flowlog_prune_events(st, cutoff, max_rows, batch,
	    &p.flow_events, &p.flow_undelivered)) != 0) {
		store_rollback(st);
		return rc;
	}
	if ((rc = store_commit(st)) != 0)
		return rc;
	*out = p;
	return 0;
}
