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

#include <json-c/json.h>
#include "tap.h"
#include "testdb.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/egw-test-store-XXXXXX";

static const char *views[] = {
	"v_denies_per_scenario_hour", "v_latest_policy_changes",
	"v_undelivered_outbox", "v_policy_status", "v_top_denied_destinations",
};

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

	snprintf(path, sizeof(path), "%s/missing/egw.db", dir);
	ok(store_open(path, &st) != 0, "missing directory is an error");
	snprintf(sql, sizeof(sql), "rm -rf %s", dir);
	if (system(sql) != 0)
		tap_diag("could not remove %s", dir);
	return tap_done();
}
