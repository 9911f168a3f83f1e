/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of store_flowlog.c against a real temporary
 * SQLite file: the policy id map and both retention rules (age and row
 * cap), in batches, for egress_log and for the outbox's flow events.
 */
#include "err.h"
#include "log.h"
#include "store.h"
#include "store_flowlog.h"
#include "tap.h"
#include "testdb.h"
#include "timefmt.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/egw-test-flowlog-XXXXXX";

/* @n rows, the first @old of them two days old. */
static void
fill(struct store *st, int n, int old)
{
	char sql[256], old_ts[TIMEFMT_LEN], now_ts[TIMEFMT_LEN];

	timefmt_from_ms(timefmt_now_ms() - 2 * 86400 * 1000LL, old_ts);
	timefmt_now(now_ts);
	store_exec(st, "BEGIN");
	for (int i = 0; i < n; i++) {
		snprintf(sql, sizeof(sql),
		    "INSERT INTO egress_log (ts, action, reason) VALUES ('%s', 'deny', 'default')",
		    i < old ? old_ts : now_ts);
		store_exec(st, sql);
	}
	store_exec(st, "COMMIT");
}

/*
 * @n outbox events of @type, created two days ago when @old, delivered
 * when @delivered.
 */
static void
events(struct store *st, const char *type, int n, bool old, bool delivered)
{
	char sql[512], ts[TIMEFMT_LEN];

	timefmt_from_ms(timefmt_now_ms() - (old ? 2 * 86400 * 1000LL : 0), ts);
	store_exec(st, "BEGIN");
	for (int i = 0; i < n; i++) {
		snprintf(sql, sizeof(sql),
		    "INSERT INTO outbox (event_id, type, payload, created_at,"
		    " delivered_at) VALUES (lower(hex(randomblob(16))), '%s',"
		    " '{}', '%s', %s)", type, ts,
		    delivered ? "'2026-01-01T00:00:00.000Z'" : "NULL");
		store_exec(st, sql);
	}
	store_exec(st, "COMMIT");
}

/* Every step until none is full; *most: the largest step per table. */
static struct store_flowlog_pruned
prune_all(struct store *st, unsigned retention, unsigned cap, size_t batch,
    int *calls, size_t *most)
{
	struct store_flowlog_pruned total = { 0 }, d;
	size_t dummy;

	if (most == NULL)
		most = &dummy;
	*most = 0;
	*calls = 0;
	do {
		if (store_flowlog_prune_step(st, retention, cap, batch, &d) != 0) {
			total.log_rows = total.flow_events = (size_t)-1;
			return total;
		}
		total.log_rows += d.log_rows;
		total.flow_events += d.flow_events;
		total.flow_undelivered += d.flow_undelivered;
		if (d.log_rows > *most)
			*most = d.log_rows;
		if (d.flow_events > *most)
			*most = d.flow_events;
		(*calls)++;
	} while ((d.log_rows == batch || d.flow_events == batch) &&
	    *calls < 1000);
	return total;
}

/* Virtual machine steps of the outbox DELETEs, counted by a profile hook. */
static int64_t outbox_delete_steps;

static int
count_steps(unsigned type, void *ctx, void *p, void *x)
{
	sqlite3_stmt *stmt = p;
	const char *sql = sqlite3_sql(stmt);

	(void)ctx;
	(void)x;
	if (type == SQLITE_TRACE_PROFILE && sql != NULL &&
	    strncmp(sql, "DELETE FROM outbox", 18) == 0)
		outbox_delete_steps += sqlite3_stmt_status(stmt,
		    SQLITE_STMTSTATUS_VM_STEP, 1);
	return 0;
}

/* reload: the next map from *@pol at @now (the old one is freed) */
static int
reload(struct store *st, struct store_flowlog_policy **pol, size_t *n,
    int64_t now)
{
	struct store_flowlog_policy *next;
	size_t len;
	int rc = store_flowlog_policies(st, *pol, *n, now, &next, &len);

	if (rc == 0) {
		free(*pol);
		*pol = next;
		*n = len;
	}
	return rc;
}

/*
 * A deleted policy stays in the map, marked, for STORE_FLOWLOG_GRACE_MS
 * from the load that first missed it; a live one takes the table's values.
 * Starts from the map of 3 and 7 loaded at 1000; leaves no policy.
 */
static void
test_grace(struct store *st, struct store_flowlog_policy **pol, size_t *n)
{
	const int64_t t = 5000, grace = STORE_FLOWLOG_GRACE_MS;

	store_exec(st, "DELETE FROM policies WHERE id = 3;"
	    "UPDATE policies SET network_id = 'net-b2' WHERE id = 7;"
	    "INSERT INTO policies (id, scenario_id, network_id, profile,"
	    " generation, created_at, updated_at)"
	    " VALUES (5, 'scen-c', 'net-c', 'none', 1, 'x', 'x')");
	is_int(reload(st, pol, n, t), 0, "reload after a delete");
	ok(*n == 3 && (*pol)[0].id == 3 && (*pol)[1].id == 5 &&
	    (*pol)[2].id == 7, "the deleted policy is kept, in id order");
	ok(*n == 3 && (*pol)[0].gone && (*pol)[0].gone_ms == t &&
	    strcmp((*pol)[0].scenario_id, "scen-a") == 0,
	    "marked deleted at this load, with its scenario");
	ok(*n == 3 && !(*pol)[1].gone && !(*pol)[2].gone &&
	    strcmp((*pol)[2].network_id, "net-b2") == 0,
	    "a live policy takes the table's values");
	is_int(reload(st, pol, n, t + grace - 1), 0, "reload within the grace");
	ok(*n == 3 && (*pol)[0].id == 3 && (*pol)[0].gone &&
	    (*pol)[0].gone_ms == t, "still kept, deleted at the first load");
	store_exec(st, "DELETE FROM policies WHERE id = 7");
	is_int(reload(st, pol, n, t + grace), 0, "reload at the grace's end");
	ok(*n == 2 && (*pol)[0].id == 5 && (*pol)[1].id == 7 &&
	    (*pol)[1].gone && (*pol)[1].gone_ms == t + grace,
	    "the first one is gone, the second kept");
	store_exec(st, "DELETE FROM policies WHERE id = 5");
	is_int(reload(st, pol, n, t + 3 * grace), 0, "reload long after");
	ok(*n == 1 && (*pol)[0].id == 5 && (*pol)[0].gone,
	    "only the one deleted since is left");
	is_int(reload(st, pol, n, t + 4 * grace), 0, "and once more");
	ok(*n == 0 && *pol == NULL, "nothing left, no array");
}

int
main(void)
{
	struct store *st = NULL;
	struct store_flowlog_policy *pol = NULL;
	struct store_flowlog_pruned pr;
	size_t n = 99, most;
	char path[128];
	int64_t top;
	int calls;

	log_init("test", LOG_LEVEL_ERROR);
	if (mkdtemp(dir) == NULL)
		return 99;
	snprintf(path, sizeof(path), "%s/egw.db", dir);
	if (store_open(path, &st) != 0)
		return 99;
	/* From the start: the counts are per run of a cached statement. */
	sqlite3_trace_v2(store_db(st), SQLITE_TRACE_PROFILE, count_steps, NULL);
	is_int(store_flowlog_tune(st), 0, "tune");
	is_int(testdb_int(st, "PRAGMA synchronous"), 1, "synchronous is NORMAL");

	is_int(store_flowlog_policies(st, NULL, 0, 1000, &pol, &n), 0,
	    "empty policy map");
	ok(n == 0 && pol == NULL, "no policies, no array");

	store_exec(st,
	    "INSERT INTO policies (id, scenario_id, network_id, profile, generation,"
	    " created_at, updated_at) VALUES"
	    " (7, 'scen-b', 'net-b', 'none', 1, 'x', 'x'),"
	    " (3, 'scen-a', '', 'none', 1, 'x', 'x')");
	is_int(store_flowlog_policies(st, NULL, 0, 1000, &pol, &n), 0,
	    "policy map loads");
	ok(n == 2 && pol[0].id == 3 && pol[1].id == 7, "ordered by id");
	ok(n == 2 && strcmp(pol[0].scenario_id, "scen-a") == 0 &&
	    strcmp(pol[0].network_id, "") == 0 &&
	    strcmp(pol[1].scenario_id, "scen-b") == 0 &&
	    strcmp(pol[1].network_id, "net-b") == 0, "scenario and network ids");
	ok(n == 2 && !pol[0].gone && !pol[1].gone, "none deleted");
	test_grace(st, &pol, &n);
	free(pol);

	is_int(store_flowlog_prune_step(st, 60, 0, 0, &pr), EGW_E_INVALID, "batch 0 rejected");

	/* Age: 1200 of 1500 rows are two days old; retention one day. */
	fill(st, 1500, 1200);
	is_int(prune_all(st, 86400, 0, 500, &calls, NULL).log_rows, 1200, "old rows pruned");
	is_int(calls, 3, "in batches of 500 (500, 500, 200)");
	is_int(testdb_int(st, "SELECT count(*) FROM egress_log"), 300, "recent rows kept");

	/* Cap: 300 rows left, cap 1000 -> nothing; add 1000 -> 300 go. */
	is_int(prune_all(st, 86400, 1000, 500, &calls, NULL).log_rows, 0, "under the cap: nothing");
	fill(st, 1000, 0);
	is_int(prune_all(st, 86400, 1000, 128, &calls, NULL).log_rows, 300, "beyond the cap pruned");
	is_int(testdb_int(st, "SELECT count(*) FROM egress_log"), 1000, "cap rows kept");
	is_int(testdb_int(st, "SELECT min(id) FROM egress_log"),
	    testdb_int(st, "SELECT max(id) FROM egress_log") - 999, "the newest are kept");

	/*
	 * Flow events in the outbox: the same age and cap, delivered or
	 * not; policy and apply events are never touched, however old and
	 * however far beyond the cap.
	 */
	store_exec(st, "DELETE FROM egress_log");
	is_int(testdb_int(st, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
	    " AND name = 'outbox_flow' AND sql LIKE '%WHERE type = ''flow''%'"), 1,
	    "migration 005: the partial index outbox_flow");
	events(st, "policy.created", 1, true, false);
	events(st, "flow", 300, true, true);
	events(st, "apply.succeeded", 1, true, true);
	events(st, "flow", 300, true, false);
	events(st, "policy.deleted", 1, true, false);
	events(st, "flow", 400, false, false);
	pr = prune_all(st, 86400, 0, 256, &calls, &most);
	is_int(pr.flow_events, 600, "age: the 600 flow events two days old pruned");
	is_int(pr.flow_undelivered, 300, "age: the 300 never delivered counted");
	is_int(pr.log_rows, 0, "age: no log rows to prune");
	is_int(calls, 3, "age: in batches of 256 (256, 256, 88)");
	ok(most <= 256, "age: no step deletes more than the batch (%zu)", most);
	is_int(testdb_int(st, "SELECT count(*) FROM outbox WHERE type = 'flow'"), 400,
	    "age: recent flow events kept");
	is_int(testdb_int(st, "SELECT count(*) FROM outbox WHERE type <> 'flow'"), 3,
	    "age: old policy and apply events kept (delivered or not)");

	/* Cap 1000 outbox ids: 400 + 1000 flow events, the 400 go. */
	pr = prune_all(st, 86400, 1000, 500, &calls, NULL);
	is_int(pr.flow_events, 0, "cap: under the cap nothing goes");
	events(st, "flow", 600, false, true);
	events(st, "flow", 400, false, false);
	top = testdb_int(st, "SELECT max(id) FROM outbox");
	pr = prune_all(st, 86400, 1000, 128, &calls, &most);
	is_int(pr.flow_events, 400, "cap: flow events beyond the cap pruned");
	is_int(pr.flow_undelivered, 400, "cap: undelivered ones counted");
	is_int(calls, 4, "cap: in batches of 128 (128, 128, 128, 16)");
	ok(most <= 128, "cap: no step deletes more than the batch (%zu)", most);
	is_int(testdb_int(st, "SELECT count(*) FROM outbox WHERE type = 'flow'"), 1000,
	    "cap: the cap's flow events kept");
	is_int(testdb_int(st, "SELECT min(id) FROM outbox WHERE type = 'flow'"), top - 999,
	    "cap: the newest are kept");
	is_int(testdb_int(st, "SELECT count(*) FROM outbox WHERE type <> 'flow'"), 3,
	    "cap: policy and apply events beyond the cap kept");
	pr = prune_all(st, 86400, 1, 500, &calls, NULL);
	is_int(pr.flow_events, 999, "cap 1: all but the newest flow event go");
	is_int(testdb_int(st, "SELECT count(*) FROM outbox WHERE type <> 'flow'"), 3,
	    "cap 1: policy and apply events kept");
	usleep(5000);	/* created_at has millisecond steps */
	pr = prune_all(st, 0, 0, 500, &calls, NULL);
	ok(pr.flow_events == 1 && pr.flow_undelivered == 1,
	    "retention 0: the last (undelivered) flow event goes, counted");
	is_int(testdb_int(st, "SELECT count(*) FROM outbox"), 3,
	    "retention 0: only the policy and apply events are left");

	/*
	 * A step reads at most about a batch of the outbox: 20,000
	 * undelivered policy events ahead of the flow events (NATS down
	 * through a busy day) cost it nothing.  Without outbox_flow each
	 * DELETE walked all of them.
	 */
	events(st, "policy.updated", 20000, true, false);
	events(st, "flow", 100, true, false);
	events(st, "flow", 100, false, false);
	outbox_delete_steps = 0;
	is_int(store_flowlog_prune_step(st, 86400, 0, 50, &pr), 0, "step by age");
	is_int(pr.flow_events, 50, "age: 50 of the old flow events");
	ok(outbox_delete_steps > 0 && outbox_delete_steps < 5000,
	    "age: the DELETE ran %lld VM steps (< 5000)",
	    (long long)outbox_delete_steps);
	outbox_delete_steps = 0;
	is_int(store_flowlog_prune_step(st, 86400 * 3, 100, 50, &pr), 0, "step by cap");
	is_int(pr.flow_events, 50, "cap: 50 of the flow events beyond the cap");
	ok(outbox_delete_steps > 0 && outbox_delete_steps < 5000,
	    "cap: the DELETEs ran %lld VM steps (< 5000)",
	    (long long)outbox_delete_steps);
	outbox_delete_steps = 0;
	is_int(store_flowlog_prune_step(st, 86400 * 3, 0, 50, &pr), 0,
	    "step with nothing due");
	is_int(pr.flow_events, 0, "nothing due: nothing pruned");
	ok(outbox_delete_steps > 0 && outbox_delete_steps < 5000,
	    "nothing due: the DELETE ran %lld VM steps (< 5000)",
	    (long long)outbox_delete_steps);
	is_int(testdb_int(st, "SELECT count(*) FROM outbox WHERE type <> 'flow'"), 20003,
	    "policy events ahead of the flow events kept");

	store_close(st);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		tap_diag("cleanup of %s failed", dir);
	return tap_done();
}
