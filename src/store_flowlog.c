/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-flowlog's own statements: policy id map and
 * batched egress_log retention.
 *
 * Each write is its own BEGIN IMMEDIATE transaction and touches at most a
 * few hundred rows, so it holds the write lock for about a millisecond.
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

int
store_flowlog_policies(struct store *st, struct store_flowlog_policy **out,
    size_t *n)
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
	*out = v;
	*n = len;
	return 0;
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

int
store_flowlog_prune_step(struct store *st, unsigned retention_s,
    unsigned max_rows, size_t batch, size_t *deleted)
{
	char cutoff[TIMEFMT_LEN];
	sqlite3_stmt *stmt;
	size_t n = 0;
	int rc;

	*deleted = 0;
	if (batch < 1 || batch > 10000)
		return EGW_E_INVALID;
	timefmt_from_ms(timefmt_now_ms() - (int64_t)retention_s * 1000, cutoff);
	if ((rc = store_begin(st)) != 0)
		return rc;
	/* Oldest first through the ts index. */
	stmt = store_prepare(st,
	    "DELETE FROM egress_log WHERE id IN (SELECT id FROM egress_log"
	    " WHERE ts < ?1 ORDER BY ts LIMIT ?2)");
	if (stmt == NULL) {
		rc = EGW_E_DB;
		goto fail;
	}
	sqlite3_bind_text(stmt, 1, cutoff, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)batch);
	if ((rc = store_flowlog_delete(st, stmt, &n)) != 0)
		goto fail;
	if (max_rows > 0 && n < batch) {
		size_t m = 0;

		stmt = store_prepare(st,
		    "DELETE FROM egress_log WHERE id IN (SELECT id FROM egress_log"
		    " WHERE id <= (SELECT max(id) FROM egress_log) - ?1"
		    " ORDER BY id LIMIT ?2)");
		if (stmt == NULL) {
			rc = EGW_E_DB;
			goto fail;
		}
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)max_rows);
		sqlite3_bind_int64(stmt, 2, (sqlite3_int64)(batch - n));
		if ((rc = store_flowlog_delete(st, stmt, &m)) != 0)
			goto fail;
		n += m;
	}
	if ((rc = store_commit(st)) != 0)
		return rc;
	*deleted = n;
	return 0;
fail:
	store_rollback(st);
	return rc;
}
