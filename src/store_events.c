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
store_event_record(struct store *st, const char *scenario_id,
    const char *digest)
{
	char now[TIMEFMT_LEN];
	sqlite3_stmt *stmt = store_prepare(st,
	    "INSERT OR IGNORE INTO scenario_event_digests"
	    " (scenario_id, digest, accepted_at) VALUES (?1, ?2, ?3)");
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, scenario_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, digest, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, timefmt_now(now), -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : store_rc_to_err(rc);
}
