/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of store_outbox.c on a real migrated SQLite
 * file: UUIDv7 event ids (time-ordered), payload stored byte for byte as published, id
 * order, delivery and failure marks (also inside a caller's transaction),
 * backlog and pruning.
 */
#include "err.h"
#include "log.h"
#include "store.h"
#include "store_outbox.h"
#include "tap.h"
#include "timefmt.h"
#include "testdb.h"

#include <json-c/json.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/egw-test-outbox-XXXXXX";

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int
add(struct store *st, const char *type, const char *sid, int n,
    char id[OUTBOX_EVENT_ID_LEN])
{
	struct json_object *o = json_object_new_object();
	int rc;

	json_object_object_add(o, "n", json_object_new_int(n));
	json_object_object_add(o, "text", json_object_new_string("a/b \"q\" \xc3\xa9"));
	rc = store_outbox_add(st, type, sid, o, id);
	json_object_put(o);
	return rc;
}

int
main(void)
{
	static char ids[1000][OUTBOX_EVENT_ID_LEN];
	struct store *st;
	struct outbox_event *ev = NULL;
	char path[128], cmd[160], id[OUTBOX_EVENT_ID_LEN];
	size_t n = 0, dup = 0, pruned = 0;
	int64_t backlog = -1;
	bool shape = true, ordered = true, current = true;
	char hex[13];
	int64_t now_ms = timefmt_now_ms(), id_ms;

	log_init("test", LOG_LEVEL_ERROR);
	if (mkdtemp(dir) == NULL)
		return 99;
	snprintf(path, sizeof(path), "%s/egw.db", dir);
	is_int(store_open(path, &st), 0, "open");

	for (int i = 0; i < 1000; i++) {
		const char *u = ids[i];

		if (store_outbox_uuid(ids[i]) != 0)
			shape = false;
		if (strlen(u) != 36 || u[8] != '-' || u[13] != '-' || u[18] != '-' ||
		    u[23] != '-' || u[14] != '7' || strchr("89ab", u[19]) == NULL)
			shape = false;
		/* the first 48 bits are the time: never decreasing */
		if (i > 0 && strncmp(ids[i - 1], u, 13) > 0)
			ordered = false;
	}
	/* "xxxxxxxx-xxxx" is the clock in milliseconds */
	memcpy(hex, ids[0], 8);
	memcpy(hex + 8, ids[0] + 9, 4);
	hex[12] = '\0';
	id_ms = (int64_t)strtoll(hex, NULL, 16);
	current = id_ms >= now_ms && id_ms - now_ms < 5000;
	ok(shape, "1000 UUIDs have the v7 shape (version 7, RFC 9562 variant)");
	ok(ordered, "their time prefix never decreases");
	ok(current, "the time prefix is the clock (%lld ms, read %lld)",
	    (long long)id_ms, (long long)now_ms);
	qsort(ids, 1000, sizeof(ids[0]), cmp_str);
	for (int i = 1; i < 1000; i++)
		dup += strcmp(ids[i - 1], ids[i]) == 0;
	is_int((int)dup, 0, "1000 UUIDs are distinct");

	is_int(add(st, "policy.created", "s1", 1, id), 0, "add");
	is_int(strlen(id), 36, "event id returned");
	is_int(add(st, "policy.updated", "s1", 2, NULL), 0, "add 2");
	is_int(add(st, "flow", NULL, 3, NULL), 0, "add without scenario");
	{
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "timestamp",
		    json_object_new_string("2020-01-01T00:00:00.000Z"));
		is_int(store_outbox_add(st, "flow", NULL, o, NULL), 0,
		    "add with own timestamp");
		json_object_put(o);
	}
	/* Rolled back with the caller's transaction. */
	store_begin(st);
	add(st, "policy.deleted", "s9", 9, NULL);
	store_rollback(st);
	is_int(testdb_int(st, "SELECT count(*) FROM outbox WHERE scenario_id = 's9'"), 0,
	    "an event rolls back with its transaction");

	is_int(store_outbox_backlog(st, &backlog), 0, "backlog");
	is_int(backlog, 4, "four waiting");
	is_int(store_outbox_fetch(st, 0, 0, &ev, &n), EGW_E_INVALID,
	    "fetch limit 0 refused");
	is_int(store_outbox_fetch(st, 0, 2, &ev, &n), 0, "fetch 2");
	is_int((int)n, 2, "two fetched");
	ok(n == 2 && ev[0].id < ev[1].id, "fetched in id order");
	is_str(ev[0].event_id, id, "first is the first added");
	is_str(ev[0].type, "policy.created", "type kept");
	is_str(ev[0].scenario_id, "s1", "scenario kept");
	is_str(ev[0].subject, "audit.egress", "subject");
	{
		struct json_object *o = json_tokener_parse(ev[0].payload), *v;
		char want[256];

		ok(o && json_object_object_get_ex(o, "event_id", &v) &&
		    strcmp(json_object_get_string(v), id) == 0,
		    "payload carries the same event_id");
		ok(o && json_object_object_get_ex(o, "type", &v) &&
		    strcmp(json_object_get_string(v), "policy.created") == 0,
		    "payload carries the type");
		ok(o && json_object_object_get_ex(o, "timestamp", &v) &&
		    strlen(json_object_get_string(v)) == 24, "payload timestamp");
		snprintf(want, sizeof(want), "{\"n\":1,\"text\":\"a/b \\\"q\\\" \xc3\xa9\","
		    "\"event_id\":\"%s\",\"type\":\"policy.created\",\"timestamp\":\"%s\"}",
		    id, json_object_get_string(v));
		is_str(ev[0].payload, want, "payload text is exactly what is published");
		json_object_put(o);
	}
	{
		int64_t last = ev[1].id;

		store_outbox_events_free(ev, n);
		is_int(store_outbox_fetch(st, last, 10, &ev, &n), 0, "fetch after id");
		is_int((int)n, 2, "the two later ones");
		ok(n == 2 && strstr(ev[1].payload,
		    "\"timestamp\":\"2020-01-01T00:00:00.000Z\"") != NULL,
		    "an existing timestamp is kept");
		store_outbox_events_free(ev, n);
		store_outbox_events_free(NULL, 0);
	}

	is_int(store_outbox_fetch(st, 0, 10, &ev, &n), 0, "fetch all");
	/* A batch marked in one transaction that rolls back stays queued. */
	store_begin(st);
	store_outbox_mark_delivered(st, ev[0].id);
	store_outbox_mark_delivered(st, ev[1].id);
	store_rollback(st);
	store_outbox_backlog(st, &backlog);
	is_int(backlog, 4, "marks join the caller's transaction");
	store_begin(st);
	is_int(store_outbox_mark_delivered(st, ev[0].id), 0, "mark delivered");
	is_int(store_outbox_mark_delivered(st, ev[1].id), 0, "mark delivered 2");
	is_int(store_commit(st), 0, "commit the batch");
	store_outbox_backlog(st, &backlog);
	is_int(backlog, 2, "two left");
	is_int(store_outbox_mark_delivered(st, 99999), EGW_E_NOTFOUND,
	    "mark unknown: not found");
	is_int(store_outbox_mark_failed(st, ev[2].id, "nats: timeout"), 0,
	    "mark failed");
	{
		char big[2000];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		is_int(store_outbox_mark_failed(st, ev[2].id, big), 0,
		    "mark failed with a long error");
	}
	is_int(testdb_int(st, "SELECT attempts * 10000 + length(last_error) FROM outbox"
	    " WHERE delivered_at IS NULL ORDER BY id LIMIT 1"), 2 * 10000 + 512,
	    "attempts counted, error truncated");
	store_outbox_events_free(ev, n);
	is_int(store_outbox_fetch(st, 0, 10, &ev, &n), 0, "fetch skips delivered");
	is_int((int)n, 2, "only undelivered");
	ok(n > 0 && ev[0].attempts == 2, "attempts visible to the publisher");
	store_outbox_events_free(ev, n);

	is_int(store_outbox_prune(st, 3600, &pruned), 0, "prune recent");
	is_int((int)pruned, 0, "recent deliveries kept");
	store_exec(st, "UPDATE outbox SET delivered_at = '2000-01-01T00:00:00.000Z'"
	    " WHERE delivered_at IS NOT NULL");
	store_exec(st, "UPDATE outbox SET created_at = '2000-01-01T00:00:00.000Z'");
	is_int(store_outbox_prune(st, 3600, &pruned), 0, "prune old");
	is_int((int)pruned, 2, "old deliveries pruned");
	is_int(testdb_int(st, "SELECT count(*) FROM outbox"), 2,
	    "undelivered never pruned");

	/* Many due rows: batches of 2,000 until none is left; the two
	 * undelivered rows at the head do not stop those behind them. */
	store_exec(st, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1"
	    " FROM c WHERE i < 4500) INSERT INTO outbox (event_id, type, payload,"
	    " created_at, delivered_at) SELECT printf('bulk-%d', i), 'flow', '{}',"
	    " '2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z' FROM c");
	store_exec(st, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1"
	    " FROM c WHERE i < 10) INSERT INTO outbox (event_id, type, payload,"
	    " created_at, delivered_at) SELECT printf('new-%d', i), 'flow', '{}',"
	    " '2000-01-01T00:00:00.000Z', strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM c");
	is_int(store_outbox_prune(st, 3600, &pruned), 0, "prune 4,500 due rows");
	is_int((int)pruned, 4500, "all of them, in several batches");
	is_int(testdb_int(st, "SELECT count(*) FROM outbox"), 12,
	    "the undelivered and the recently delivered stay");

	/* egw-flowlog's retention may delete a flow event between the
	 * bridge's fetch and its mark: NOTFOUND, which the bridge skips. */
	is_int(store_outbox_fetch(st, 0, 10, &ev, &n), 0, "fetch before a delete");
	ok(n >= 1, "a row to lose");
	store_exec(st, "DELETE FROM outbox");
	if (n >= 1) {
		is_int(store_outbox_mark_delivered(st, ev[0].id), EGW_E_NOTFOUND,
		    "mark delivered after the row went: NOTFOUND");
		is_int(store_outbox_mark_failed(st, ev[0].id, "x"), EGW_E_NOTFOUND,
		    "mark failed after the row went: NOTFOUND");
	}
	store_outbox_events_free(ev, n);

	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return tap_done();
}
