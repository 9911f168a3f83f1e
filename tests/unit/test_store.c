/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of store.c against a real temporary SQLite
 * file: migrations from empty and from each earlier version, pragmas,
 * views, transactions and the generation counter.
 */
#include "err.h"
#include "log.h"
#include "store.h"
#include "store_component.h"
#include "timefmt.h"
#include "migrations.h"

#include <json-c/json.h>
#include "tap.h"
#include "testdb.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/egw-test-store-XXXXXX";

static const char *views[] = {
	"v_denies_per_scenario_hour", "v_latest_policy_changes",
	"v_undelivered_outbox", "v_policy_status", "v_top_denied_destinations",
};

/* The statements that write a column whose CHECK sql/009 restated, as
 * the programs write them; each takes every value as a parameter. */
static const char *const check_writes[] = {
	"INSERT INTO policy_destinations (policy_id, position, origin,"
	" rule_index, proto, dest, port_lo, port_hi)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	"UPDATE policies SET apply_status = ?1 WHERE id = ?2",
	"INSERT INTO policy_history (ts, scenario_id, operation, actor,"
	" generation) VALUES (?1, ?2, ?3, ?4, ?5)",
	"INSERT INTO egress_log (ts, action) VALUES (?1, ?2)",
	"INSERT INTO api_tokens (name, token_hash, scopes, created_at)"
	" VALUES (?1, ?2, ?3, ?4)",
	"INSERT INTO profile_rules (profile, position, proto) VALUES (?1, ?2, ?3)",
};

/* How many temporary B-trees @sql's program opens, by its EXPLAIN; -1
 * when it does not prepare. */
static int
ephemeral_tables(sqlite3 *db, const char *sql)
{
	char explain[512];
	sqlite3_stmt *stmt;
	int n = 0;

	snprintf(explain, sizeof(explain), "EXPLAIN %s", sql);
	if (sqlite3_prepare_v2(db, explain, -1, &stmt, NULL) != SQLITE_OK)
		return -1;
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		const char *op = (const char *)sqlite3_column_text(stmt, 1);

		if (op != NULL && strcmp(op, "OpenEphemeral") == 0)
			n++;
	}
	sqlite3_finalize(stmt);
	return n;
}

static int
ephemeral_in_check_writes(sqlite3 *db)
{
	int n = 0, e;

	for (size_t i = 0; i < sizeof(check_writes) / sizeof(*check_writes); i++) {
		if ((e = ephemeral_tables(db, check_writes[i])) < 0)
			return -1;
		n += e;
	}
	return n;
}

static int
raw_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Whether @sql fails on a CHECK constraint, and on nothing else. */
static bool
raw_check_refuses(sqlite3 *db, const char *sql)
{
	return raw_exec(db, sql) != SQLITE_OK &&
	    sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_CHECK;
}

static size_t
raw_refusals(sqlite3 *db, const char *const *sql, size_t n)
{
	size_t refused = 0;

	sqlite3_extended_result_codes(db, 1);
	for (size_t i = 0; i < n; i++)
		refused += raw_check_refuses(db, sql[i]);
	return refused;
}

/* The first column of @sql's first row, copied; NULL on failure. */
static char *
raw_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt;
	char *out = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != NULL)
		out = strdup((const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	return out;
}

/* A new database at @path migrated by hand to version 8, as the programs
 * of that version left it; NULL when that fails. */
static sqlite3 *
db_at_version_8(const char *path)
{
	sqlite3 *raw = NULL;
	int last = 0;

	if (sqlite3_open(path, &raw) != SQLITE_OK ||
	    raw_exec(raw, "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON")
	    != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < store_n_migrations; i++) {
		char pragma[48];

		if (store_migrations[i].version > 8)
			break;
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
		    store_migrations[i].version);
		if (raw_exec(raw, store_migrations[i].sql) != SQLITE_OK ||
		    raw_exec(raw, pragma) != SQLITE_OK)
			goto fail;
		last = store_migrations[i].version;
	}
	if (last == 8)
		return raw;
fail:
	sqlite3_close(raw);
	return NULL;
}

/*
 * A table whose CHECK text sql/009 does not find (here written without
 * spaces, as by hand) keeps its list; the upgrade still succeeds and says
 * which table, and only that one.
 */
static void
test_check_lists_unmatched(const char *path)
{
	char got[4096];
	sqlite3 *raw = db_at_version_8(path);
	struct store *st = NULL;
	int p[2], saved = -1;
	ssize_t n = 0;

	ok(raw != NULL && raw_exec(raw, "PRAGMA writable_schema = ON;"
	    "UPDATE sqlite_schema SET sql = replace(sql, '''host'', ''port'', ''rule''',"
	    " '''host'',''port'',''rule''') WHERE name = 'policy_destinations';"
	    "PRAGMA writable_schema = RESET;"
	    "CREATE TABLE bump (x); DROP TABLE bump") == SQLITE_OK,
	    "fixture: policy_destinations' origin list written without spaces");
	sqlite3_close(raw);
	if (pipe(p) != 0 || fcntl(p[0], F_SETFL, O_NONBLOCK) != 0 ||
	    (saved = dup(STDERR_FILENO)) < 0 || dup2(p[1], STDERR_FILENO) < 0) {
		ok(0, "stderr captured");
		return;
	}
	log_init("test", LOG_LEVEL_WARN);
	is_int(store_open(path, &st), 0, "the upgrade succeeds");
	log_init("test", LOG_LEVEL_ERROR);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = read(p[0], got, sizeof(got) - 1);
	got[n > 0 ? n : 0] = '\0';
	close(p[0]);
	close(p[1]);
	ok(strstr(got, "table policy_destinations still checks a list") != NULL &&
	    strstr(got, "table policy_history") == NULL &&
	    strstr(got, "table policies") == NULL,
	    "a warning names policy_destinations, and no other table");
	ok(st != NULL && ephemeral_tables(store_db(st), "INSERT INTO"
	    " policy_history (ts, scenario_id, operation, actor, generation)"
	    " VALUES (?1, ?2, ?3, ?4, ?5)") == 0,
	    "the other tables' lists are restated");
	store_close(st);
}

/*
 * sql/009: a database at version 8 with rows in every table whose CHECK it
 * restates keeps its rows, its constraints admit and refuse what they did,
 * and no statement writing those tables builds a temporary B-tree, in the
 * connection that migrated or in one that was open before it did.
 */
static void
test_check_lists_restated(const char *path)
{
	static const char *const rows =
	    "INSERT INTO policies (scenario_id, profile, generation, created_at,"
	    " updated_at, apply_status) VALUES ('s9', 'none', 1, 'x', 'x', 'failed');"
	    "INSERT INTO policy_destinations (policy_id, position, origin, proto)"
	    " VALUES (1, 0, 'rule', 'icmp');"
	    "INSERT INTO policy_history (ts, scenario_id, operation, actor, generation)"
	    " VALUES ('x', 's9', 'expire', 'test', 1);"
	    "INSERT INTO egress_log (ts, action) VALUES ('x', 'would_deny');"
	    "INSERT INTO api_tokens (name, token_hash, scopes, created_at) VALUES"
	    " ('t9', '" "0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef', 'read,write', 'x');";
	static const char *const counts =
	    "SELECT (SELECT count(*) FROM policies) || '/' ||"
	    " (SELECT count(*) FROM policy_destinations) || '/' ||"
	    " (SELECT count(*) FROM policy_history) || '/' ||"
	    " (SELECT count(*) FROM egress_log) || '/' ||"
	    " (SELECT count(*) FROM api_tokens) || '/' ||"
	    " (SELECT count(*) FROM profile_rules)";
	/* Each refused before and after, with each value outside its list
	 * below: a value of another list, case, space, empty. */
	static const char *const refused_in[][2] = {
		{ "INSERT INTO policy_destinations (policy_id, position, origin,"
		  " proto) VALUES (1, 1, '", "', 'tcp')" },
		{ "INSERT INTO policy_destinations (policy_id, position, origin,"
		  " proto) VALUES (1, 1, 'host', '", "')" },
		{ "UPDATE policies SET apply_status = '", "'" },
		{ "INSERT INTO policy_history (ts, scenario_id, operation, actor,"
		  " generation) VALUES ('x', 's9', '", "', 'test', 1)" },
		{ "INSERT INTO egress_log (ts, action) VALUES ('x', '", "')" },
		{ "INSERT INTO api_tokens (name, token_hash, scopes, created_at)"
		  " VALUES ('t10', '1123456789abcdef0123456789abcdef"
		  "0123456789abcdef0123456789abcdef', '", "', 'x')" },
		{ "INSERT INTO profile_rules (profile, position, proto)"
		  " VALUES ('none', 99, '", "')" },
	};
	static const char *const outside[] = {
		"", "x", "Host", "TCP", "applied ", "write,read", "sctp", "reject",
		"pending", "tcp", "allow", "read", "create",
	};
	static char refused[sizeof(refused_in) / sizeof(*refused_in) *
	    (sizeof(outside) / sizeof(*outside))][320];
	const char *refused_sql[sizeof(refused) / sizeof(*refused)];
	size_t n_refused = 0;
	/* And every listed value admitted, in one transaction rolled back. */
	static const char *const admitted =
	    "BEGIN;"
	    "INSERT INTO policy_destinations (policy_id, position, origin, proto) VALUES"
	    " (1, 1, 'host', 'tcp'), (1, 2, 'port', 'udp'), (1, 3, 'rule', 'any'),"
	    " (1, 4, 'host', 'icmp');"
	    "UPDATE policies SET apply_status = 'pending';"
	    "UPDATE policies SET apply_status = 'applied';"
	    "INSERT INTO policy_history (ts, scenario_id, operation, actor, generation)"
	    " VALUES ('x', 's9', 'create', 'a', 1), ('x', 's9', 'update', 'a', 1),"
	    " ('x', 's9', 'delete', 'a', 1), ('x', 's9', 'enable', 'a', 1),"
	    " ('x', 's9', 'disable', 'a', 1), ('x', 's9', 'complete', 'a', 1),"
	    " ('x', 's9', 'expire', 'a', 1);"
	    "UPDATE policies SET apply_status = 'failed';"
	    "INSERT INTO egress_log (ts, action) VALUES ('x', 'allow'), ('x', 'deny'),"
	    " ('x', 'would_deny');"
	    "INSERT INTO api_tokens (name, token_hash, scopes, created_at) VALUES"
	    " ('r', '2123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef', 'read', 'x'),"
	    " ('w', '3123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef', 'write', 'x'),"
	    " ('rw', '4123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef', 'read,write', 'x');"
	    "INSERT INTO profile_rules (profile, position, proto) VALUES"
	    " ('none', 97, 'tcp'), ('none', 98, 'udp'), ('none', 99, 'any'), ('none', 100, 'icmp');"
	    "ROLLBACK;";
	sqlite3 *raw = NULL, *other = NULL;
	struct store *st = NULL;
	char *before = NULL, *after = NULL, *check = NULL;

	/* A value in a column's own list is no refusal: left out. */
	{
		/* '|' between values: "read,write" is one of them. */
		static const char *const own[] = {
			"|host|port|rule|", "|tcp|udp|icmp|any|",
			"|pending|applied|failed|",
			"|create|update|delete|enable|disable|complete|expire|",
			"|allow|deny|would_deny|", "|read|write|read,write|",
			"|tcp|udp|icmp|any|",
		};

		for (size_t i = 0; i < sizeof(refused_in) / sizeof(*refused_in); i++) {
			for (size_t j = 0; j < sizeof(outside) / sizeof(*outside); j++) {
				char needle[48];

				snprintf(needle, sizeof(needle), "|%s|", outside[j]);
				if (outside[j][0] != '\0' && strstr(own[i], needle) != NULL)
					continue;
				snprintf(refused[n_refused], sizeof(refused[0]),
				    "%s%s%s", refused_in[i][0], outside[j],
				    refused_in[i][1]);
				refused_sql[n_refused] = refused[n_refused];
				n_refused++;
			}
		}
	}
	if ((raw = db_at_version_8(path)) == NULL) {
		ok(0, "fixture: migrations 1-8 applied by hand");
		return;
	}
	ok(1, "fixture: migrations 1-8 applied by hand");
	is_int(raw_exec(raw, rows), SQLITE_OK, "fixture: a row in each table");
	is_int(raw_refusals(raw, refused_sql, n_refused), n_refused,
	    "at version 8 each value outside a list is refused by its CHECK"
	    " (%zu)", n_refused);
	before = raw_text(raw, counts);
	ok(ephemeral_in_check_writes(raw) > 0,
	    "at version 8 the writes build temporary B-trees (%d)",
	    ephemeral_in_check_writes(raw));
	/* Another process's connection, its schema read before the upgrade. */
	ok(sqlite3_open(path, &other) == SQLITE_OK &&
	    ephemeral_in_check_writes(other) > 0, "another connection open at version 8");

	is_int(store_open(path, &st), 0, "store_open migrates it");
	if (st == NULL) {
		sqlite3_close(other);
		sqlite3_close(raw);
		return;
	}
	is_int(store_schema_version(st), store_latest_schema_version(),
	    "at the latest version");
	is_int(ephemeral_in_check_writes(store_db(st)), 0,
	    "the migrating connection's writes build none");
	/* Any statement that reads makes it notice the schema moved. */
	raw_exec(other, "SELECT count(*) FROM policies");
	is_int(ephemeral_in_check_writes(other), 0,
	    "nor the other connection's, after its next statement");
	is_int(raw_refusals(store_db(st), refused_sql, n_refused), n_refused,
	    "after it each value outside a list is still refused by its CHECK");
	is_int(raw_refusals(other, refused_sql, n_refused), n_refused,
	    "by the other connection's too");
	is_int(raw_exec(store_db(st), admitted), SQLITE_OK,
	    "and every listed value admitted");
	after = testdb_text(st, counts);
	ok(before != NULL && after != NULL && strcmp(before, after) == 0 &&
	    strncmp(before, "1/1/1/1/1/", 10) == 0, "rows kept (%s, before %s)",
	    after ? after : "?", before ? before : "?");
	check = testdb_text(st, "PRAGMA integrity_check");
	is_str(check ? check : "", "ok", "integrity_check");
	is_int(testdb_int(st, "SELECT count(*) FROM sqlite_schema WHERE name ="
	    " 'egw_schema_reread'"), 0, "no table of the migration's left");
	free(before);
	free(after);
	free(check);
	store_close(st);
	sqlite3_close(other);
	sqlite3_close(raw);
}

/* SIGALRM in the queue test: the stop deadline a worker's handler sets. */
static void
stop_soon(int sig)
{
	(void)sig;
	store_stop_deadline(timefmt_monotonic_ms() + 1500);
}

int
main(void)
{
	struct store *st = NULL, *st2 = NULL;
	char path[128], sql[128];
	int64_t desired = -1, applied = -1, gen = 0;
	int latest = store_latest_schema_version();

	log_init("test", LOG_LEVEL_ERROR);
	if (mkdtemp(dir) == NULL)
		return 99;
	snprintf(path, sizeof(path), "%s/egw.db", dir);

	ok(latest >= 1, "at least one migration built in");
	is_int(store_open(path, &st), 0, "open creates the database");
	is_int(store_schema_version(st), latest, "migrated to the latest version");
	is_int(ephemeral_in_check_writes(store_db(st)), 0,
	    "a new database's writes of listed values build no temporary B-tree");
	is_int(testdb_int(st, "SELECT count(*) FROM profiles WHERE builtin = 1"), 4,
	    "four built-in profiles");
	is_int(testdb_int(st, "SELECT count(*) FROM track_profiles"), 4, "track mappings seeded");
	is_int(testdb_int(st, "PRAGMA foreign_keys"), 1, "foreign keys on");
	is_int(testdb_int(st, "PRAGMA synchronous"), 2, "synchronous FULL");
	{
		sqlite3_stmt *stmt;
		bool wal = false;

		if (sqlite3_prepare_v2(store_db(st), "PRAGMA journal_mode", -1, &stmt, NULL) == SQLITE_OK) {
			wal = sqlite3_step(stmt) == SQLITE_ROW &&
			    strcmp((const char *)sqlite3_column_text(stmt, 0), "wal") == 0;
			sqlite3_finalize(stmt);
		}
		ok(wal, "journal_mode is WAL");
	}
	for (size_t i = 0; i < sizeof(views) / sizeof(*views); i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", views[i]);
		is_int(testdb_int(st, sql), 0, "view %s answers", views[i]);
	}

	is_int(store_generation(st, &desired, &applied), 0, "generation readable");
	ok(desired == 0 && applied == 0, "generations start at 0");
	is_int(store_begin(st), 0, "BEGIN IMMEDIATE");
	is_int(store_bump_generation(st, &gen), 0, "bump inside transaction");
	is_int(gen, 1, "generation 1");
	is_int(store_rollback(st), 0, "rollback");
	store_generation(st, &desired, NULL);
	is_int(desired, 0, "rollback undid the bump");
	store_begin(st);
	store_bump_generation(st, &gen);
	is_int(store_commit(st), 0, "commit");
	store_generation(st, &desired, NULL);
	is_int(desired, 1, "commit kept the bump");

	/* A second connection holding the write lock makes BEGIN wait, not fail. */
	is_int(store_open(path, &st2), 0, "second connection opens");
	is_int(store_begin(st2), 0, "second connection takes the write lock");
	{
		int64_t v0 = store_data_version(st);

		store_bump_generation(st2, &gen);
		store_commit(st2);
		ok(store_data_version(st) != v0, "data_version changes on another connection's commit");
	}
	store_close(st2);
	st2 = NULL;

	/* Statements held between prepare and step survive any number of
	 * later prepares: the cache grows and never finalizes one. */
	{
		static char texts[300][32];
		sqlite3_stmt *held[3];
		bool alive = true;

		for (int i = 0; i < 300; i++)
			snprintf(texts[i], sizeof(texts[i]), "SELECT %d", i);
		for (int i = 0; i < 3; i++)
			held[i] = store_prepare(st, texts[i]);
		for (int i = 3; i < 300; i++)
			alive = store_prepare(st, texts[i]) != NULL && alive;
		ok(alive, "300 distinct statements prepared on one connection");
		for (int i = 0; i < 3; i++)
			ok(held[i] != NULL && sqlite3_step(held[i]) == SQLITE_ROW &&
			    sqlite3_column_int(held[i], 0) == i,
			    "statement %d, prepared first, still steps", i);
		ok(store_prepare(st, texts[0]) == held[0],
		    "the same literal finds the same statement");
	}

	/* Text cut to a buffer ends on a character boundary: half of a
	 * character would make the JSON built from it invalid UTF-8. */
	{
		sqlite3_stmt *stmt = store_prepare(st, "SELECT ?1");
		char buf[6];

		/* "abcd" then U+00E9 (2 bytes) and U+20AC (3 bytes) */
		static const char *const in[] = { "abcd\xc3\xa9", "abc\xe2\x82\xac",
		    "abcde", "abcdef", "\xe2\x82\xac\xe2\x82\xac" };
		static const char *const want[] = { "abcd", "abc", "abcde",
		    "abcde", "\xe2\x82\xac" };

		for (size_t i = 0; stmt != NULL && i < sizeof(in) / sizeof(in[0]); i++) {
			sqlite3_bind_text(stmt, 1, in[i], -1, SQLITE_STATIC);
			if (sqlite3_step(stmt) == SQLITE_ROW)
				store_col_text(stmt, 0, buf, sizeof(buf));
			else
				snprintf(buf, sizeof(buf), "-");
			is_str(buf, want[i], "store_col_text into 6 bytes: case %zu", i);
			sqlite3_reset(stmt);
		}
		ok(stmt != NULL, "the statement prepared");
	}
	{
		struct component_status cs;
		struct json_object *info = json_object_new_object(), *v;

		is_int(store_component_get(st, "natsd", &cs), EGW_E_NOTFOUND,
		    "component never reported");
		json_object_object_add(info, "published", json_object_new_int(7));
		is_int(store_component_heartbeat(st, "natsd", info), 0, "heartbeat written");
		json_object_object_add(info, "published", json_object_new_int(9));
		is_int(store_component_heartbeat(st, "natsd", info), 0, "heartbeat upserted");
		json_object_put(info);
		is_int(store_component_get(st, "natsd", &cs), 0, "component read back");
		is_int(cs.pid, getpid(), "pid recorded");
		ok(cs.heartbeat_age_ms >= 0 && cs.heartbeat_age_ms < 5000, "fresh heartbeat");
		ok(json_object_object_get_ex(cs.info, "published", &v) &&
		    json_object_get_int(v) == 9, "latest info kept");
		is_int(testdb_int(st, "SELECT count(*) FROM component_status"), 1, "one row per component");
		json_object_put(cs.info);
	}
	is_int(testdb_int(st, "PRAGMA temp_store"), 2, "temporary files (savepoint journals) in memory");
	{
		/* The writers' queue: a forked child holds its own lock, never
		 * its parent's (flock belongs to the shared file description). */
		int to_parent[2];
		char c = 0;
		pid_t child;
		int status = -1;
		bool held = store_queue_enter(st);

		ok(held, "queue entered");
		ok(pipe(to_parent) == 0, "pipe");
		child = fork();
		if (child == 0) {
			bool h = store_queue_enter(st);

			if (write(to_parent[1], h ? "y" : "n", 1) != 1)
				_exit(2);
			store_queue_leave(st, h);
			_exit(0);
		}
		ok(child > 0, "forked");
		{
			struct timeval tv = { 0, 300000 };
			fd_set rd;

			FD_ZERO(&rd);
			FD_SET(to_parent[0], &rd);
			is_int(select(to_parent[0] + 1, &rd, NULL, NULL, &tv), 0,
			    "the child waits while the parent holds the queue");
		}
		store_queue_leave(st, held);
		is_int((int)read(to_parent[0], &c, 1), 1, "the child gets its turn after");
		is_int(c, 'y', "and holds the queue itself");
		waitpid(child, &status, 0);
		ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exited cleanly");
		close(to_parent[0]);
		close(to_parent[1]);
		held = store_queue_enter(st);
		ok(held, "the parent re-enters after the child left");
		store_queue_leave(st, held);
	}
	{
		/* A stop that comes while a process waits for the queue with no
		 * deadline of its own ends the wait (the handlers restart
		 * flock(2) under SA_RESTART: the wait must look for itself). */
		int to_parent[2];
		char answer[3] = { 0, 0, 0 };
		pid_t child;
		int status = -1;
		bool held = store_queue_enter(st);

		ok(held && pipe(to_parent) == 0, "queue held, pipe");
		child = fork();
		if (child == 0) {
			struct sigaction sa;
			struct itimerval it = { { 0, 0 }, { 0, 200000 } };
			int64_t t0;
			bool h;

			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = stop_soon;
			sa.sa_flags = SA_RESTART;
			sigaction(SIGALRM, &sa, NULL);
			setitimer(ITIMER_REAL, &it, NULL);
			t0 = timefmt_monotonic_ms();
			h = store_queue_enter(st);
			answer[0] = h ? 'y' : 'n';
			answer[1] = timefmt_monotonic_ms() - t0 < 3000 ? 's' : 'l';
			if (write(to_parent[1], answer, 2) != 2)
				_exit(2);
			store_queue_leave(st, h);
			_exit(0);
		}
		{
			struct timeval tv = { 5, 0 };
			fd_set rd;

			FD_ZERO(&rd);
			FD_SET(to_parent[0], &rd);
			ok(select(to_parent[0] + 1, &rd, NULL, NULL, &tv) == 1 &&
			    read(to_parent[0], answer, 2) == 2,
			    "a stop signal during the wait ends it while the queue is held");
		}
		is_str(answer, "ns", "... without the queue, within 3 s");
		store_queue_leave(st, held);
		waitpid(child, &status, 0);
		ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exited cleanly");
		close(to_parent[0]);
		close(to_parent[1]);
	}
	is_int(store_exec(st, "INSERT INTO policies (scenario_id, profile, generation, created_at, updated_at)"
	    " VALUES ('s1', 'no-such-profile', 1, 'x', 'x')"), EGW_E_CONFLICT,
	    "foreign key violation refused");
	is_int(store_exec(st, "PRAGMA user_version = 9999"), 0, "pretend a newer schema");
	store_close(st);
	st = NULL;
	is_int(store_open(path, &st), EGW_E_SCHEMA, "newer schema refused");
	ok(st == NULL, "no handle on failure");

	/* Upgrade path: from empty to each version in turn. */
	snprintf(path, sizeof(path), "%s/upgrade.db", dir);
	{
		sqlite3 *raw;

		sqlite3_open(path, &raw);
		sqlite3_close(raw);
	}
	is_int(store_open_readonly(path, &st), 0, "empty file opens read-only");
	is_int(store_schema_version(st), 0, "empty file is version 0");
	store_close(st);
	st = NULL;
	for (int v = 1; v <= latest; v++) {
		struct store *step = NULL;

		/* store_open migrates fully; migrate one step on a raw handle. */
		if (store_open_readonly(path, &step) == 0)
			store_close(step);
		step = NULL;
		is_int(store_open(path, &step), 0, "upgrade to version %d", v);
		is_int(store_schema_version(step), latest, "at latest after upgrade");
		store_close(step);
	}
	is_int(store_open(path, &st), 0, "re-open is idempotent");
	is_int(testdb_int(st, "SELECT count(*) FROM profiles"), 4, "seed data not duplicated");
	store_close(st);

	snprintf(path, sizeof(path), "%s/check9.db", dir);
	test_check_lists_restated(path);
	snprintf(path, sizeof(path), "%s/check9b.db", dir);
	test_check_lists_unmatched(path);

	snprintf(path, sizeof(path), "%s/missing/egw.db", dir);
	ok(store_open(path, &st) != 0, "missing directory is an error");
	snprintf(sql, sizeof(sql), "rm -rf %s", dir);
	if (system(sql) != 0)
		tap_diag("could not remove %s", dir);
	return tap_done();
}
