/* SPDX-License-Identifier: MIT */
/*
 * This file contains the API's read-only status queries (see store_api.h).
 */
#include "store_api.h"
#include "err.h"
#include "store_component.h"

#include <json-c/json.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
store_api_dup(sqlite3_stmt *stmt, int col, char **out)
{
	const unsigned char *v = sqlite3_column_text(stmt, col);

	*out = NULL;
	if (v == NULL)
		return 0;
	*out = strdup((const char *)v);
	return *out ? 0 : EGW_E_NOMEM;
}

int
store_api_applier_state(struct store *st, bool with_ruleset,
    struct store_applier_state *out)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT desired_generation, applied_generation, dry_run,"
	    " last_apply_at, last_duration_ms, last_error, heartbeat_at,"
	    " CASE WHEN ?1 THEN (SELECT rendered_ruleset FROM applier_rendered"
	    " WHERE id = 1) END,"
	    " (SELECT CASE WHEN json_valid(info)"
	    " THEN json_extract(info, '$.running') = 0 END"
	    " FROM component_status WHERE component = 'applier')"
	    " FROM applier_state WHERE id = 1");
	int rc, ret = 0;

	memset(out, 0, sizeof(*out));
	out->dry_run = -1;
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_int(stmt, 1, with_ruleset);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		out->desired_generation = sqlite3_column_int64(stmt, 0);
		out->applied_generation = sqlite3_column_int64(stmt, 1);
		if (sqlite3_column_type(stmt, 2) != SQLITE_NULL)
			out->dry_run = sqlite3_column_int(stmt, 2) != 0;
		store_col_text(stmt, 3, out->last_apply_at, sizeof(out->last_apply_at));
		if (sqlite3_column_type(stmt, 4) != SQLITE_NULL) {
			out->has_duration = true;
			out->last_duration_ms = sqlite3_column_double(stmt, 4);
		}
		store_col_text(stmt, 6, out->heartbeat_at, sizeof(out->heartbeat_at));
		out->stopped = sqlite3_column_int(stmt, 8) != 0;
		if ((ret = store_api_dup(stmt, 5, &out->last_error)) == 0)
			ret = store_api_dup(stmt, 7, &out->rendered_ruleset);
	}
	sqlite3_reset(stmt);
	if (ret != 0) {
		store_api_applier_state_free(out);
		return ret;
	}
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? EGW_E_DB : store_rc_to_err(rc);
}

void
store_api_applier_state_free(struct store_applier_state *s)
{
	free(s->last_error);
	free(s->rendered_ruleset);
	s->last_error = NULL;
	s->rendered_ruleset = NULL;
}

int
store_api_policy_totals(struct store *st, struct store_policy_totals *out)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT count(*), coalesce(sum(enabled), 0),"
	    " coalesce(sum(apply_status = 'pending'), 0),"
	    " coalesce(sum(apply_status = 'applied'), 0),"
	    " coalesce(sum(apply_status = 'failed'), 0),"
	    " coalesce(sum(mode = 'audit'), 0) FROM policies");
	int rc;

	memset(out, 0, sizeof(*out));
	if (stmt == NULL)
		return EGW_E_DB;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		out->total = sqlite3_column_int64(stmt, 0);
		out->enabled = sqlite3_column_int64(stmt, 1);
		out->pending = sqlite3_column_int64(stmt, 2);
		out->applied = sqlite3_column_int64(stmt, 3);
		out->failed = sqlite3_column_int64(stmt, 4);
		out->audit_mode = sqlite3_column_int64(stmt, 5);
	}
	sqlite3_reset(stmt);
	return rc == SQLITE_ROW ? 0 : store_rc_to_err(rc == SQLITE_DONE ? SQLITE_ERROR : rc);
}

int
store_api_counters(struct store *st,
    int (*cb)(const struct store_counter_row *row, void *ctx), void *ctx)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT scenario_id, allowed_packets, allowed_bytes, denied_packets,"
	    " denied_bytes, updated_at FROM policy_counters ORDER BY scenario_id");
	struct store_counter_row row;
	int rc, ret = 0;

	if (stmt == NULL)
		return EGW_E_DB;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		row.scenario_id = (const char *)sqlite3_column_text(stmt, 0);
		row.allowed_packets = sqlite3_column_int64(stmt, 1);
		row.allowed_bytes = sqlite3_column_int64(stmt, 2);
		row.denied_packets = sqlite3_column_int64(stmt, 3);
		row.denied_bytes = sqlite3_column_int64(stmt, 4);
		row.updated_at = (const char *)sqlite3_column_text(stmt, 5);
		if ((ret = cb(&row, ctx)) != 0)
			break;
	}
	sqlite3_reset(stmt);
	if (ret != 0)
		return ret;
	return rc == SQLITE_DONE ? 0 : store_rc_to_err(rc);
}

/* 0 allow, 1 deny, 2 would_deny; -1 for anything else (a hand edit). */
static int
store_api_action_index(const char *action)
{
	static const char *const names[3] = { "allow", "deny", "would_deny" };

	for (int i = 0; i < 3; i++)
		if (action != NULL && strcmp(action, names[i]) == 0)
			return i;
	return -1;
}

int
store_api_egress_per_scenario(struct store *st, int64_t totals[3],
    int (*cb)(const char *scenario_id, int64_t allow, int64_t deny,
    int64_t would_deny, void *ctx), void *ctx)
{
	/* Grouped in index order: each scenario's rows come together, the
	 * rows without one (NULL) first. */
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT scenario_id, action, count(*) FROM egress_log"
	    " GROUP BY scenario_id, action ORDER BY scenario_id, action");
	char *current = NULL;	/* whole: a hand-edited id may be long */
	int64_t n[3] = { 0, 0, 0 };
	int rc, ret = 0;

	totals[0] = totals[1] = totals[2] = 0;
	if (stmt == NULL)
		return EGW_E_DB;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *sid = (const char *)sqlite3_column_text(stmt, 0);
		int a = store_api_action_index((const char *)sqlite3_column_text(stmt, 1));
		int64_t count = sqlite3_column_int64(stmt, 2);

		if (a < 0)
			continue;
		totals[a] += count;
		if (sid == NULL)
			continue;
		if (current != NULL && strcmp(sid, current) != 0) {
			ret = cb(current, n[0], n[1], n[2], ctx);
			free(current);
			current = NULL;
			n[0] = n[1] = n[2] = 0;
			if (ret != 0)
				break;
		}
		if (current == NULL && (current = strdup(sid)) == NULL) {
			ret = EGW_E_NOMEM;
			break;
		}
		n[a] += count;
	}
	sqlite3_reset(stmt);
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_rc_to_err(rc);
	if (ret == 0 && current != NULL)
		ret = cb(current, n[0], n[1], n[2], ctx);
	free(current);
	return ret;
}

int
store_api_writable(struct store *st, bool commit)
{
	int rc = store_begin(st);

	if (rc != 0)
		return rc;
	if (!commit)
		return store_rollback(st);
	if ((rc = store_component_heartbeat(st, "api", NULL)) != 0) {
		store_rollback(st);
		return rc;
	}
	return store_commit(st);
}

/* An integer figure of a component's info; anything else reads as 0. */
static int64_t
store_api_info_int(struct json_object *info, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(info, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return 0;
	return json_object_get_int64(v);
}

static bool
store_api_info_bool(struct json_object *info, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(info, key, &v) &&
	    json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/* Reports without "running" (from before it was added) ran. */
static bool
store_api_info_running(struct json_object *info)
{
	struct json_object *v;

	return !json_object_object_get_ex(info, "running", &v) ||
	    (json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v));
}

static bool
store_api_live(bool running, int64_t age_ms)
{
	return running && age_ms <= STORE_API_LIVE_MS && age_ms >= -STORE_API_LIVE_MS;
}

/* Read a component row; *found false (and 0) when it never reported. */
static int
store_api_component(struct store *st, const char *name,
    struct component_status *cs, bool *found)
{
	int rc = store_component_get(st, name, cs);

	*found = rc == 0;
	return rc == EGW_E_NOTFOUND ? 0 : rc;
}

int
store_api_flowlog(struct store *st, struct store_api_flowlog *out)
{
	struct component_status cs;
	struct json_object *i;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = store_api_component(st, "flowlog", &cs, &out->present)) != 0 ||
	    !out->present)
		return rc;
	i = cs.info;
	out->pid = cs.pid;
	snprintf(out->heartbeat_at, sizeof(out->heartbeat_at), "%s", cs.heartbeat_at);
	out->heartbeat_age_ms = cs.heartbeat_age_ms;
	out->running = store_api_info_running(i);
	out->live = store_api_live(out->running, cs.heartbeat_age_ms);
	out->received = store_api_info_int(i, "received");
	out->written = store_api_info_int(i, "written");
	out->lost = store_api_info_int(i, "lost");
	out->batches = store_api_info_int(i, "batches");
	out->overruns = store_api_info_int(i, "enobufs");
	out->seq_lost = store_api_info_int(i, "seq_lost");
	out->queue_dropped = store_api_info_int(i, "queue_dropped");
	out->write_dropped = store_api_info_int(i, "write_dropped");
	out->foreign = store_api_info_int(i, "foreign");
	out->malformed = store_api_info_int(i, "malformed");
	out->unknown_policy = store_api_info_int(i, "unknown_policy");
	out->pruned = store_api_info_int(i, "pruned");
	out->outbox_pruned = store_api_info_int(i, "outbox_pruned");
	out->outbox_dropped = store_api_info_int(i, "outbox_dropped");
	out->queue_depth = store_api_info_int(i, "queue_depth");
	out->queue_max = store_api_info_int(i, "queue_max");
	out->group = store_api_info_int(i, "group");
	json_object_put(cs.info);
	return 0;
}

int
store_api_natsd(struct store *st, struct store_api_natsd *out)
{
	struct component_status cs;
	struct json_object *i;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = store_api_component(st, "natsd", &cs, &out->present)) != 0 ||
	    !out->present)
		return rc;
	i = cs.info;
	out->pid = cs.pid;
	snprintf(out->heartbeat_at, sizeof(out->heartbeat_at), "%s", cs.heartbeat_at);
	out->heartbeat_age_ms = cs.heartbeat_age_ms;
	out->running = store_api_info_running(i);
	out->live = store_api_live(out->running, cs.heartbeat_age_ms);
	/* Its last report may say connected and be its last. */
	out->connected = out->live && store_api_info_bool(i, "connected");
	out->jetstream = store_api_info_bool(i, "jetstream");
	out->published = store_api_info_int(i, "published");
	out->failed = store_api_info_int(i, "failed");
	out->rejected = store_api_info_int(i, "rejected");
	out->events = store_api_info_int(i, "events");
	out->changes = store_api_info_int(i, "changes");
	out->reconnects = store_api_info_int(i, "reconnects");
	out->backlog = store_api_info_int(i, "backlog");
	json_object_put(cs.info);
	return 0;
}
