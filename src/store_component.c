/* SPDX-License-Identifier: MIT */
/*
 * This file contains the component_status upsert and read (see
 * store_component.h).
 */
#include "store_component.h"
#include "err.h"

#include <json-c/json.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
store_component_heartbeat(struct store *st, const char *component,
    struct json_object *info)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "INSERT INTO component_status (component, pid, heartbeat_at, info)"
	    " VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT(component) DO UPDATE SET pid = excluded.pid,"
	    " heartbeat_at = excluded.heartbeat_at, info = excluded.info");
	char now[TIMEFMT_LEN];
	const char *text = info ? json_object_to_json_string_ext(info,
	    JSON_C_TO_STRING_PLAIN) : "{}";
	/* Outside the caller's transaction, one of its own through
	 * store_begin(): its lock wait ends before a stopping process's
	 * deadline, where the statement alone would wait the full busy
	 * timeout (a stopping egw-flowlog outlived the supervisor's grace). */
	bool own = sqlite3_get_autocommit(store_db(st)) != 0;
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	if (own && (rc = store_begin(st)) != 0)
		return rc;
	sqlite3_bind_text(stmt, 1, component, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)getpid());
	sqlite3_bind_text(stmt, 3, timefmt_now(now), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, text, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	rc = rc == SQLITE_DONE ? 0 : store_rc_to_err(rc);
	if (own) {
		if (rc == 0)
			return store_commit(st);
		store_rollback(st);
	}
	return rc;
}

int
store_component_get(struct store *st, const char *component,
    struct component_status *out)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT pid, heartbeat_at, info FROM component_status WHERE component = ?1");
	int64_t beat_ms;
	int rc;

	memset(out, 0, sizeof(*out));
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, component, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(stmt);
		return rc == SQLITE_DONE ? EGW_E_NOTFOUND : store_rc_to_err(rc);
	}
	snprintf(out->component, sizeof(out->component), "%s", component);
	out->pid = sqlite3_column_int64(stmt, 0);
	snprintf(out->heartbeat_at, sizeof(out->heartbeat_at), "%s",
	    (const char *)sqlite3_column_text(stmt, 1));
	out->info = json_tokener_parse((const char *)sqlite3_column_text(stmt, 2));
	if (out->info == NULL)
		out->info = json_object_new_object();
	sqlite3_reset(stmt);
	out->heartbeat_age_ms = timefmt_parse(out->heartbeat_at, &beat_ms) == 0 ?
	    timefmt_now_ms() - beat_ms : INT64_MAX;
	return 0;
}
