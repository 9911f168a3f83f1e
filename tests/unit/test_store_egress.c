/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of store_egress.c on a real migrated SQLite
 * file: batch inserts (all or nothing), newest-first pages with an id
 * cursor that walk every row exactly once, each filter alone and combined,
 * time normalisation, audit events in the same transaction, counts and
 * pruning.
 */
#include "err.h"
#include "log.h"
#include "store.h"
#include "store_api.h"
#include "store_egress.h"
#include "store_outbox.h"
#include "tap.h"
#include "testdb.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROWS 250

static char dir[] = "/tmp/egw-test-egress-XXXXXX";

static const char *const actions[] = { "allow", "deny", "would_deny" };

struct page {
	size_t n;
	int64_t ids[EGRESS_QUERY_MAX];
	bool ordered;		/* strictly decreasing ids */
	bool match;		/* every row matched the filter */
	const struct egress_query *q;
};

static int
page_cb(const struct egress_entry *e, void *arg)
{
	struct page *pg = arg;

	if (pg->n > 0 && e->id >= pg->ids[pg->n - 1])
		pg->ordered = false;
	if (pg->q->scenario_id && strcmp(e->scenario_id, pg->q->scenario_id) != 0)
		pg->match = false;
	if (pg->q->action && strcmp(e->action, pg->q->action) != 0)
		pg->match = false;
	pg->ids[pg->n++] = e->id;
	return 0;
}

struct port_seen {
	bool zero, none, wrong;
};

static int
port_cb(const struct egress_entry *e, void *arg)
{
	struct port_seen *ps = arg;

	if (e->src_port == 30007)
		ps->zero = e->has_ports && e->dst_port == 0;
	else if (e->src_port == 0 && !e->has_ports)
		ps->none = true;
	else if (!e->has_ports || e->dst_port != 443)
		ps->wrong = true;
	return 0;
}

static size_t
run(struct store *st, const struct egress_query *q, int64_t *next,
    struct page *pg)
{
	memset(pg, 0, sizeof(*pg));
	pg->ordered = pg->match = true;
	pg->q = q;
	if (store_egress_query(st, q, page_cb, pg, next) != 0)
		return (size_t)-1;
	return pg->n;
}

/* The text of the last statement run that reads egress_log. */
static char traced_sql[512];

static int
trace_sql(unsigned type, void *ctx, void *p, void *x)
{
	const char *sql = sqlite3_sql(p);

	(void)type;
	(void)ctx;
	(void)x;
	if (sql != NULL && strstr(sql, "FROM egress_log") != NULL)
		snprintf(traced_sql, sizeof(traced_sql), "%s", sql);
	return 0;
}

/* Whether SQLite plans @sql as a scan of the (scenario_id, action, ts)
 * index alone (sql/004): a table scan reads every row's record. */
static bool
plan_is_covering(struct store *st, const char *sql)
{
	char explain[600];
	sqlite3_stmt *stmt;
	bool covering = false, other = false;

	snprintf(explain, sizeof(explain), "EXPLAIN QUERY PLAN %s", sql);
	if (sql[0] == '\0' ||
	    sqlite3_prepare_v2(store_db(st), explain, -1, &stmt, NULL) != SQLITE_OK)
		return false;
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(stmt, 3);

		if (d != NULL && strstr(d, "USING COVERING INDEX"
		    " egress_log_scenario_action_ts") != NULL)
			covering = true;
		else if (d != NULL && strstr(d, "egress_log") != NULL)
			other = true;
	}
	sqlite3_finalize(stmt);
	return covering && !other;
}

struct per_scenario {
	int calls, long_ids;
	int64_t rows, scn0_deny;
	bool ordered;
	char last[256];
};

static int
per_scenario_cb(const char *sid, int64_t allow, int64_t deny, int64_t would,
    void *arg)
{
	struct per_scenario *ps = arg;

	if (ps->calls == 0)
		ps->ordered = true;
	else if (strcmp(ps->last, sid) >= 0)
		ps->ordered = false;
	snprintf(ps->last, sizeof(ps->last), "%s", sid);
	ps->calls++;
	ps->rows += allow + deny + would;
	if (strcmp(sid, "scn-0") == 0)
		ps->scn0_deny = deny;
	if (strlen(sid) == 201 && allow + deny + would == 1)
		ps->long_ids++;
	return 0;
}

int
main(void)
{
	static struct egress_entry rows[ROWS];
	static struct page pg;
	struct store *st;
	struct egress_query q;
	char path[128], cmd[160];
	int64_t next, backlog;
	size_t total, pruned;
	bool ids_ok = true, all_ok = true;
	static bool seen[ROWS + 1];

	log_init("test", LOG_LEVEL_ERROR);
	if (mkdtemp(dir) == NULL)
		return 99;
	snprintf(path, sizeof(path), "%s/egw.db", dir);
	is_int(store_open(path, &st), 0, "open");

	for (int i = 0; i < ROWS; i++) {
		struct egress_entry *e = &rows[i];

		memset(e, 0, sizeof(*e));
		/* Minute i after 10:00 UTC; every tenth given with an offset. */
		if (i % 10 == 0)
			snprintf(e->ts, sizeof(e->ts), "2026-03-01T%02d:%02d:00.000+01:00",
			    11 + i / 60, i % 60);
		else
			snprintf(e->ts, sizeof(e->ts), "2026-03-01T%02d:%02d:00.000Z",
			    10 + i / 60, i % 60);
		snprintf(e->scenario_id, sizeof(e->scenario_id), "scn-%d", i % 3);
		snprintf(e->action, sizeof(e->action), "%s", actions[i % 3 == 0 ? 1
		    : (i % 2 ? 0 : 2)]);
		snprintf(e->src_ip, sizeof(e->src_ip), "100.64.0.%d", i % 200 + 1);
		snprintf(e->dst_ip, sizeof(e->dst_ip), "203.0.113.%d", i % 200 + 1);
		/* row 7 went to port 0, row 8 had no ports (ICMP) */
		e->has_ports = i != 8;
		e->dst_port = i == 7 ? 0 : 443;
		e->src_port = 30000 + i;
		snprintf(e->protocol, sizeof(e->protocol), "tcp");
		snprintf(e->reason, sizeof(e->reason), "default");
	}

	is_int(store_egress_insert(st, rows, 0, false), EGW_E_INVALID,
	    "empty batch refused");
	is_int(store_egress_insert(st, rows, EGRESS_INSERT_MAX + 1, false),
	    EGW_E_INVALID, "oversized batch refused");
	snprintf(rows[5].action, sizeof(rows[5].action), "drop");
	is_int(store_egress_insert(st, rows, 10, false), EGW_E_INVALID,
	    "a bad action refuses the batch");
	is_int(testdb_int(st, "SELECT count(*) FROM egress_log"), 0,
	    "nothing written from a refused batch");
	snprintf(rows[5].action, sizeof(rows[5].action), "allow");

	is_int(store_egress_insert(st, rows, 200, false), 0, "insert 200");
	is_int(store_egress_insert(st, rows + 200, ROWS - 200, true), 0,
	    "insert 50 with audit events");
	for (int i = 1; i < ROWS; i++)
		if (rows[i].id != rows[i - 1].id + 1)
			ids_ok = false;
	ok(ids_ok && rows[0].id > 0, "ids filled in, consecutive");
	is_int(testdb_int(st, "SELECT count(*) FROM egress_log WHERE dst_port = 0"
	    " AND src_port = 30007"), 1, "port 0 stored as 0");
	is_int(testdb_int(st, "SELECT count(*) FROM egress_log WHERE dst_port IS NULL"
	    " AND src_port IS NULL"), 1, "no ports stored as NULL");
	{
		struct port_seen ports = { 0 };
		struct egress_query pq = { .limit = EGRESS_QUERY_MAX };

		store_egress_query(st, &pq, port_cb, &ports, NULL);
		ok(ports.zero && ports.none && !ports.wrong,
		    "read back: port 0 has ports, the NULL row has none");
	}
	is_str(rows[10].ts, "2026-03-01T10:10:00.000Z", "offset time normalised");
	is_int(testdb_int(st, "SELECT count(*) FROM outbox WHERE type = 'flow'"),
	    ROWS - 200, "one flow event per audited row, same transaction");
	store_outbox_backlog(st, &backlog);
	is_int(backlog, ROWS - 200, "flow events wait for NATS");

	/* Walk everything in pages: every row exactly once, newest first. */
	memset(&q, 0, sizeof(q));
	q.limit = 100;
	total = 0;
	do {
		size_t n = run(st, &q, &next, &pg);

		if (n == (size_t)-1 || !pg.ordered) {
			all_ok = false;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			int64_t k = pg.ids[i] - rows[0].id + 1;

			if (k < 1 || k > ROWS || seen[k])
				all_ok = false;
			else
				seen[k] = true;
		}
		if (total == 0 && (n == 0 || pg.ids[0] != rows[ROWS - 1].id))
			all_ok = false;
		total += n;
		q.before_id = next;
	} while (next != 0);
	ok(all_ok, "pages are newest first with no duplicates");
	is_int((int)total, ROWS, "pages cover every row");

	memset(&q, 0, sizeof(q));
	q.scenario_id = "scn-1";
	is_int((int)run(st, &q, &next, &pg), 83, "scenario filter (default limit)");
	ok(pg.match && pg.ordered, "scenario filter: only that scenario, ordered");
	is_int(next, 0, "scenario filter: one page");
	q.limit = 50;
	run(st, &q, &next, &pg);
	ok(pg.n == 50 && next == pg.ids[49], "scenario filter: cursor is the last id");
	q.before_id = next;
	is_int((int)run(st, &q, &next, &pg), 33, "scenario filter: second page");

	memset(&q, 0, sizeof(q));
	q.action = "deny";
	q.limit = 1000;
	is_int((int)run(st, &q, &next, &pg), 84, "action filter");
	ok(pg.match, "action filter: only denies");
	q.scenario_id = "scn-0";
	is_int((int)run(st, &q, &next, &pg), 84, "scenario + action");
	q.scenario_id = "scn-1";
	is_int((int)run(st, &q, &next, &pg), 0, "scenario + action: none");

	memset(&q, 0, sizeof(q));
	q.since = "2026-03-01T11:00:00Z";
	q.until = "2026-03-01T12:00:00Z";
	q.limit = 1000;
	is_int((int)run(st, &q, &next, &pg), 60, "since/until: one hour");
	q.since = "2026-03-01T12:00:00+01:00";
	q.until = "2026-03-01T11:30:00.000Z";
	is_int((int)run(st, &q, &next, &pg), 30, "since/until with an offset");
	q.action = "allow";
	q.scenario_id = "scn-2";
	run(st, &q, &next, &pg);
	ok(pg.match && pg.n > 0 && pg.n < 30, "all filters combined");

	memset(&q, 0, sizeof(q));
	q.action = "drop";
	is_int(store_egress_query(st, &q, page_cb, &pg, NULL), EGW_E_INVALID,
	    "bad action filter refused");
	q.action = NULL;
	q.since = "yesterday";
	is_int(store_egress_query(st, &q, page_cb, &pg, NULL), EGW_E_INVALID,
	    "bad time refused");
	q.since = NULL;
	q.limit = EGRESS_QUERY_MAX + 1;
	is_int(store_egress_query(st, &q, page_cb, &pg, NULL), EGW_E_INVALID,
	    "oversized page refused");


	/* The stats' one scan: per scenario, and totals with the rows that
	 * have no scenario (or an id longer than any the API accepts, as a
	 * hand edit may leave), equal to counting row by row. */
	is_int(sqlite3_exec(store_db(st), "INSERT INTO egress_log (ts, scenario_id,"
	    " action) VALUES ('2001-01-01T00:00:00.000Z', NULL, 'deny'),"
	    " ('2001-01-01T00:00:00.000Z', NULL, 'allow'), ('2001-01-01T00:00:00.000Z',"
	    " printf('%.200c', 'x') || '1', 'deny'), ('2001-01-01T00:00:00.000Z',"
	    " printf('%.200c', 'x') || '2', 'would_deny')", NULL, NULL, NULL),
	    SQLITE_OK, "rows without a scenario and with long ids added");
	{
		struct per_scenario ps = { 0 };
		int64_t totals[3];

		sqlite3_trace_v2(store_db(st), SQLITE_TRACE_STMT, trace_sql, NULL);
		is_int(store_api_egress_per_scenario(st, totals, per_scenario_cb, &ps),
		    0, "per scenario: read");
		sqlite3_trace_v2(store_db(st), 0, NULL, NULL);
		is_int(totals[0], testdb_int(st, "SELECT count(*) FROM egress_log"
		    " WHERE action = 'allow'"), "per scenario: allow total");
		is_int(totals[1], testdb_int(st, "SELECT count(*) FROM egress_log"
		    " WHERE action = 'deny'"), "per scenario: deny total");
		is_int(totals[2], testdb_int(st, "SELECT count(*) FROM egress_log"
		    " WHERE action = 'would_deny'"), "per scenario: would_deny total");
		is_int(ps.calls, testdb_int(st, "SELECT count(DISTINCT scenario_id)"
		    " FROM egress_log"), "per scenario: one call per scenario");
		ok(ps.ordered, "per scenario: in scenario_id order");
		is_int(ps.rows, testdb_int(st, "SELECT count(*) FROM egress_log WHERE"
		    " scenario_id IS NOT NULL"), "per scenario: every row with one");
		is_int(ps.scn0_deny, testdb_int(st, "SELECT count(*) FROM egress_log"
		    " WHERE scenario_id = 'scn-0' AND action = 'deny'"),
		    "per scenario: scn-0's denies");
		ok(ps.long_ids == 2, "per scenario: the two long ids apart (%d)",
		    ps.long_ids);
		ok(plan_is_covering(st, traced_sql),
		    "per scenario: one scan of a covering index, no row read (%s)",
		    traced_sql);
	}
	sqlite3_exec(store_db(st), "DELETE FROM egress_log WHERE ts < '2001-01-02'",
	    NULL, NULL, NULL);

	is_int(store_egress_prune(st, 3600, &pruned), 0, "prune");
	is_int((int)pruned, ROWS, "rows older than the retention pruned");
	is_int(testdb_int(st, "SELECT count(*) FROM egress_log"), 0, "log empty");
	memset(&rows[0].ts, 0, sizeof(rows[0].ts));
	is_int(store_egress_insert(st, rows, 1, false), 0, "insert with no time");
	ok(rows[0].ts[0] == '2' && strlen(rows[0].ts) == 24, "time defaults to now");
	is_int(store_egress_prune(st, 3600, &pruned), 0, "prune again");
	is_int((int)pruned, 0, "recent row kept");

	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return tap_done();
}
