/* SPDX-License-Identifier: MIT */
/*
 * This file contains the scenario_event_digests table's access (see
 * store_events.h).
 */
#include "store_events.h"
#include "err.h"
#include "timefmt.h"

#include <sqlite3.h>

int
store_event_seen(struct store *st, const char *scenario_id,
    const char *digest, bool *seen)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT 1 FROM scenario_event_digests"
	    " WHERE scenario_id = ?1 AND digest = ?2");
	int rc;

	*seen = false;
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, scenario_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, digest, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc == SQLITE_ROW) {
		*seen = true;
		return 0;
	}
	return rc == SQLITE_DONE ? 0 : store_rc_to_err(rc);
}

int
store_event_returned(struct store *st, const char *scenario_id,
    const char *digest, const struct store_event_pos *pos, bool *returned)
{
	/* Both are one range of the primary key (scenario_id, digest). */
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT 1 FROM scenario_event_digests AS d"
	    " JOIN scenario_event_digests AS o ON o.scenario_id = d.scenario_id"
	    " WHERE d.scenario_id = ?1 AND d.digest = ?2 AND d.stream = ?3"
	    " AND o.digest <> d.digest AND o.stream = ?3"
	    " AND o.stream_seq > d.stream_seq AND o.stream_ts > d.stream_ts"
	    " AND o.stream_seq < ?4 AND o.stream_ts < ?5 LIMIT 1");
	int rc;

	*returned = false;
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, scenario_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, digest, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, pos->stream, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, pos->seq);
	sqlite3_bind_int64(stmt, 5, pos->ts_ns);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc == SQLITE_ROW) {
		*returned = true;
		return 0;
	}
	return rc == SQLITE_DONE ? 0 : store_rc_to_err(rc);
}

int
store_event_superseded(struct store *st, const char *scenario_id,
    const struct store_event_pos *pos, bool *superseded)
{
	/* The scenario's rows are one range of the primary key. */
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT 1 FROM scenario_event_digests WHERE scenario_id = ?1"
	    " AND stream = ?2 AND stream_seq > ?3 AND stream_ts > ?4 LIMIT 1");
	int rc;

	*superseded = false;
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, scenario_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, pos->stream, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, pos->seq);
	sqlite3_bind_int64(stmt, 4, pos->ts_ns);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc == SQLITE_ROW) {
		*superseded = true;
		return 0;
	}
	return rc == SQLITE_DONE ? 0 : store_rc_to_err(rc);
}

int
store_event_record(struct store *st, const char *scenario_id,
    const char *digest, const struct store_event_pos *pos)
{
	char now[TIMEFMT_LEN];
	/* A body seen before keeps its first acceptance, but its place in
	 * the stream moves on to the latest message that carried it: the
	 * producer's latest word, which an older redelivery must not undo. */
	sqlite3_stmt *stmt = store_prepare(st,
	    "INSERT INTO scenario_event_digests"
	    " (scenario_id, digest, accepted_at, stream, stream_seq, stream_ts)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	    " ON CONFLICT (scenario_id, digest) DO UPDATE SET"
	    " stream = excluded.stream, stream_seq = excluded.stream_seq,"
	    " stream_ts = excluded.stream_ts"
	    " WHERE excluded.stream_seq IS NOT NULL AND (stream_seq IS NULL"
	    " OR stream <> excluded.stream"
	    " OR stream_seq < excluded.stream_seq)");
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, scenario_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, digest, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, timefmt_now(now), -1, SQLITE_TRANSIENT);
	if (pos != NULL) {
		sqlite3_bind_text(stmt, 4, pos->stream, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 5, pos->seq);
		sqlite3_bind_int64(stmt, 6, pos->ts_ns);
	} else {
		for (int i = 4; i <= 6; i++)
			sqlite3_bind_null(stmt, i);
	}
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : store_rc_to_err(rc);
}
