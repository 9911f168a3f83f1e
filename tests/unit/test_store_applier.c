/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of store_applier.c's change query against a
 * real SQLite file migrated with the real schema: every kind of policy
 * change (create, update, enable, disable, complete, delete, expire) is
 * named once after the generation before it and not after its own, a
 * no-op put names nothing, and the query searches the history by
 * generation instead of walking it (the policies table has no generation
 * index since migration 003).
 */
#include "codec.h"
#include "err.h"
#include "log.h"
#include "policy.h"
#include "store.h"
#include "store_applier.h"
#include "store_policy.h"
#include "tap.h"
#include "testdb.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[] = "/tmp/egw-test-store-applier-XXXXXX";
static const struct store_actor actor = { .actor = "test", .request_id = "req-1" };

struct seen {
	char names[16][32];
	size_t n;
	bool overflow;
};

static void
collect(const char *scenario_id, void *ctx)
{
	struct seen *s = ctx;

	if (s->n == sizeof(s->names) / sizeof(s->names[0])) {
		s->overflow = true;
		return;
	}
	snprintf(s->names[s->n++], sizeof(s->names[0]), "%s", scenario_id);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The scenarios changed after @gen, sorted and comma-joined into @out. */
static const char *
changed(struct store *st, int64_t gen, char *out, size_t len)
{
	struct seen s = { .n = 0 };
	size_t used = 0;

	out[0] = '\0';
	if (store_applier_changed_since(st, gen, collect, &s) != 0)
		return "(error)";
	if (s.overflow)
		return "(too many)";
	qsort(s.names, s.n, sizeof(s.names[0]), name_cmp);
	for (size_t i = 0; i < s.n && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s",
		    i ? "," : "", s.names[i]);
	return out;
}

static int64_t
generation(struct store *st)
{
	int64_t g = -1;

	store_generation(st, &g, NULL);
	return g;
}

static int
put(struct store *st, const char *body)
{
	struct policy *p = policy_new();
	struct policy_errors errs;
	bool created;
	int rc = p == NULL ? EGW_E_NOMEM :
	    codec_policy_from_json(body, strlen(body), p, &errs);

	if (rc == 0)
		rc = store_policy_put(st, p, &actor, &created, &errs);
	policy_free(p);
	return rc;
}

static void
test_changes(struct store *st)
{
	char buf[256];
	int64_t g0, g;
	size_t deleted = 0;

	g0 = generation(st);
	is_str(changed(st, g0, buf, sizeof(buf)), "", "nothing changed yet");
	is_int(put(st, "{\"scenario_id\":\"a\",\"profile\":\"none\"}"), 0,
	    "create a");
	is_int(put(st, "{\"scenario_id\":\"b\",\"profile\":\"none\"}"), 0,
	    "create b");
	is_int(put(st, "{\"scenario_id\":\"c\",\"profile\":\"none\"}"), 0,
	    "create c");
	is_str(changed(st, g0, buf, sizeof(buf)), "a,b,c", "creates named");
	is_str(changed(st, generation(st), buf, sizeof(buf)), "",
	    "nothing after the latest generation");

	g = generation(st);
	is_int(put(st, "{\"scenario_id\":\"a\",\"profile\":\"custom\","
	    "\"allowed_ports\":[443]}"), 0, "update a");
	is_str(changed(st, g, buf, sizeof(buf)), "a", "update named");

	g = generation(st);
	is_int(put(st, "{\"scenario_id\":\"a\",\"profile\":\"custom\","
	    "\"allowed_ports\":[443]}"), 0, "same body again");
	is_int(generation(st), g, "no-op put: no generation");
	is_str(changed(st, g, buf, sizeof(buf)), "", "no-op put: nothing named");

	g = generation(st);
	is_int(store_policy_set_enabled(st, "b", false, &actor, NULL), 0,
	    "disable b");
	is_str(changed(st, g, buf, sizeof(buf)), "b", "disable named");
	g = generation(st);
	is_int(store_policy_set_enabled(st, "b", true, &actor, NULL), 0,
	    "enable b");
	is_str(changed(st, g, buf, sizeof(buf)), "b", "enable named");

	g = generation(st);
	is_int(store_policy_complete(st, "c", &actor), 0, "complete c");
	is_str(changed(st, g, buf, sizeof(buf)), "c", "complete named");

	g = generation(st);
	is_int(store_policy_delete(st, "b", &actor, NULL), 0, "delete b");
	is_str(changed(st, g, buf, sizeof(buf)), "b", "delete named (row gone)");

	g = generation(st);
	is_int(store_exec(st, "UPDATE policies SET completed_at ="
	    " '2000-01-01T00:00:00.000Z' WHERE scenario_id = 'c'"), 0,
	    "c completed long ago");
	is_int(store_policy_expire_completed(st, 3600, &deleted), 0, "expire");
	is_int((int)deleted, 1, "expire: c deleted");
	is_str(changed(st, g, buf, sizeof(buf)), "c", "expiry named (row gone)");

	is_str(changed(st, g0, buf, sizeof(buf)), "a,b,c",
	    "every scenario once over the whole range");
}

/* The largest number of VM steps one run of a history query took. */
static int history_steps;

static int
trace_steps(unsigned type, void *ctx, void *p, void *x)
{
	sqlite3_stmt *stmt = p;
	const char *sql = sqlite3_sql(stmt);
	int steps;

	(void)ctx;
	(void)x;
	if (type != SQLITE_TRACE_PROFILE || sql == NULL ||
	    strstr(sql, "FROM policy_history") == NULL)
		return 0;
	steps = sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_VM_STEP, 1);
	if (steps > history_steps)
		history_steps = steps;
	return 0;
}

/*
 * The query must search the history by generation, not walk it: with
 * 5,000 older history rows, asking for the one newer change costs ~250
 * VM steps; walking policy_history_scenario (the planner's choice for
 * DISTINCT without INDEXED BY) costs ~20,000.
 */
static void
test_cost(struct store *st)
{
	char buf[256];
	int64_t g;

	is_int(testdb_int(st, "SELECT count(*) FROM sqlite_schema WHERE"
	    " type = 'index' AND name = 'policies_generation'"), 0,
	    "policies_generation dropped (migration 003)");
	is_int(store_exec(st, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
	    " SELECT i + 1 FROM n WHERE i < 5000) INSERT INTO policy_history"
	    " (ts, scenario_id, operation, actor, generation) SELECT"
	    " '2026-01-01T00:00:00.000Z', printf('old-%05d', i), 'update',"
	    " 'test', 0 FROM n"), 0, "5,000 old history rows");
	g = generation(st);
	is_int(put(st, "{\"scenario_id\":\"late\",\"profile\":\"none\"}"), 0,
	    "one more change");
	sqlite3_trace_v2(store_db(st), SQLITE_TRACE_PROFILE, trace_steps, NULL);
	history_steps = 0;
	is_str(changed(st, g, buf, sizeof(buf)), "late", "only the newer change");
	sqlite3_trace_v2(store_db(st), 0, NULL, NULL);
	ok(history_steps > 0 && history_steps < 1000,
	    "the change query searched, not walked, the history (%d VM steps)",
	    history_steps);
}

int
main(void)
{
	struct store *st = NULL;
	char path[128], cmd[160];

	log_init("test", LOG_LEVEL_ERROR);
	if (mkdtemp(dir) == NULL)
		return 99;
	snprintf(path, sizeof(path), "%s/egw.db", dir);
	is_int(store_open(path, &st), 0, "open a fresh database");
	if (st != NULL) {
		test_changes(st);
		test_cost(st);
		store_close(st);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return tap_done();
}
