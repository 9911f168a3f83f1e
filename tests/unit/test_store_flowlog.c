/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of store_flowlog.c against a real temporary
 * SQLite file: the policy id map and both retention rules (age and row
 * cap), in batches.
 */
#include "err.h"
#include "log.h"
#include "store.h"
#include "store_flowlog.h"
#include "tap.h"
#include "testdb.h"
#include "timefmt.h"

#include <sqlite3.h>
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

static size_t
prune_all(struct store *st, unsigned retention, unsigned cap, size_t batch,
    int *calls)
{
	size_t total = 0, d;

	*calls = 0;
	do {
		if (store_flowlog_prune_step(st, retention, cap, batch, &d) != 0)
			return (size_t)-1;
		total += d;
		(*calls)++;
	} while (d == batch && *calls < 1000);
	return total;
}

int
main(void)
{
	struct store *st = NULL;
	struct store_flowlog_policy *pol = NULL;
	size_t n = 99, d;
	char path[128];
	int calls;

	log_init("test", LOG_LEVEL_ERROR);
	if (mkdtemp(dir) == NULL)
		return 99;
	snprintf(path, sizeof(path), "%s/egw.db", dir);
	if (store_open(path, &st) != 0)
		return 99;
	is_int(store_flowlog_tune(st), 0, "tune");
	is_int(testdb_int(st, "PRAGMA synchronous"), 1, "synchronous is NORMAL");

	is_int(store_flowlog_policies(st, &pol, &n), 0, "empty policy map");
	ok(n == 0 && pol == NULL, "no policies, no array");

	store_exec(st,
	    "INSERT INTO policies (id, scenario_id, network_id, profile, generation,"
	    " created_at, updated_at) VALUES"
	    " (7, 'scen-b', 'net-b', 'none', 1, 'x', 'x'),"
	    " (3, 'scen-a', '', 'none', 1, 'x', 'x')");
	is_int(store_flowlog_policies(st, &pol, &n), 0, "policy map loads");
	ok(n == 2 && pol[0].id == 3 && pol[1].id == 7, "ordered by id");
	ok(n == 2 && strcmp(pol[0].scenario_id, "scen-a") == 0 &&
	    strcmp(pol[0].network_id, "") == 0 &&
	    strcmp(pol[1].scenario_id, "scen-b") == 0 &&
	    strcmp(pol[1].network_id, "net-b") == 0, "scenario and network ids");
	free(pol);

	is_int(store_flowlog_prune_step(st, 60, 0, 0, &d), EGW_E_INVALID, "batch 0 rejected");

	/* Age: 1200 of 1500 rows are two days old; retention one day. */
	fill(st, 1500, 1200);
	is_int(prune_all(st, 86400, 0, 500, &calls), 1200, "old rows pruned");
	is_int(calls, 3, "in batches of 500 (500, 500, 200)");
	is_int(testdb_int(st, "SELECT count(*) FROM egress_log"), 300, "recent rows kept");

	/* Cap: 300 rows left, cap 1000 -> nothing; add 1000 -> 300 go. */
	is_int(prune_all(st, 86400, 1000, 500, &calls), 0, "under the cap: nothing");
	fill(st, 1000, 0);
	is_int(prune_all(st, 86400, 1000, 128, &calls), 300, "beyond the cap pruned");
	is_int(testdb_int(st, "SELECT count(*) FROM egress_log"), 1000, "cap rows kept");
	is_int(testdb_int(st, "SELECT min(id) FROM egress_log"),
	    testdb_int(st, "SELECT max(id) FROM egress_log") - 999, "the newest are kept");

	store_close(st);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		tap_diag("cleanup of %s failed", dir);
	return tap_done();
}
