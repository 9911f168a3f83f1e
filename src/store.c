/* SPDX-License-Identifier: MIT */
/*
 * This file contains the SQLite connection, migrations and transactions.
 *
 * Statements are cached per connection keyed by the address of their SQL
 * literal, so a worker prepares each statement once for its lifetime.  The
 * cache grows and never evicts: callers hold a statement between prepare
 * and step (several at once, as the claim checks do), so evicting one to
 * make room could finalize a statement still in hand; the literals are a
 * fixed set, which bounds it.
 * BEGIN IMMEDIATE takes the write lock before reading, which is what lets
 * the busy handler resolve contention between the prefork workers, the
 * applier and the NATS bridge (a deferred transaction that upgrades to a
 * writer can fail with SQLITE_BUSY_SNAPSHOT that no waiting resolves).
 */
#include "store.h"
#include "err.h"
#include "log.h"
#include "migrations.h"
#include "timefmt.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define STORE_STMT_CACHE_FIRST 128	/* entries; doubles when full */
/* Kept for the statements and the commit after a lock wait that a
 * deadline (store_set_deadline) cut short. */
#define STORE_DEADLINE_SLACK_MS 1000

/* store_stop_deadline(): set from a signal handler, read by every
 * connection of the process. */
static _Atomic int_least64_t store_process_deadline_ms;
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
    "store_stop_deadline() is async-signal-safe");
static int64_t store_deadline(const struct store *st);
/* A connection's page cache, in KiB (SQLite's default is 2 MiB).  With
 * their stored documents 10,000 policies take ~7 MiB, and a worker that
 * cannot keep them read a page from the file every other GET.  Reads go
 * through this cache and not through mmap: every commit by another
 * connection makes SQLite unmap the whole file in each reader, and
 * remapping it per transaction cost more than the reads it saved (upserts
 * 3,095 -> 2,146 req/s side by side, page-table work in the profile). */
#define STORE_CACHE_KIB "8192"

struct store_cached_stmt {
	const char *sql;
	sqlite3_stmt *stmt;
};

struct store {
	sqlite3 *db;
	bool batch;		/* store_batch_begin(): begin/commit are savepoints */
	int queue_fd;		/* "<db>-wlock", opened on first use; -1 */
	unsigned queue_forks;	/* store_forks when it was opened */
	size_t n_cached, cap_cached;
	struct store_cached_stmt *cache;
	struct store_token_memo *token_memo;	/* store_token.c's; plain memory */
	int64_t deadline_ms;	/* store_set_deadline(); 0: none */
	store_iface_deriver derive_iface;	/* NULL: none */
	const void *derive_ctx;
};

int
store_rc_to_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return EGW_E_BUSY;
	case SQLITE_NOMEM:
		return EGW_E_NOMEM;
	case SQLITE_CONSTRAINT:
		return EGW_E_CONFLICT;
	default:
		return EGW_E_DB;
	}
}

int
store_sibling_path(struct store *st, const char *suffix, char *out, size_t size)
{
	const char *db = sqlite3_db_filename(st->db, "main");
	int n;

	if (db == NULL || db[0] == '\0')
		return EGW_E_NOTFOUND;
	n = snprintf(out, size, "%s%s", db, suffix);
	return n < 0 || (size_t)n >= size ? EGW_E_INVALID : 0;
}

/*
 * Policy writers queue on an flock(2) of "<db>-wlock" before BEGIN
 * IMMEDIATE.  SQLite's busy handler polls with growing sleeps, which under
 * dozens of concurrent writers wastes most of the time between commits and
 * lets unlucky writers starve past the busy timeout; a blocking flock hands
 * the turn over as soon as the previous writer commits.  The lock is an
 * optimisation only: correctness comes from BEGIN IMMEDIATE, and when the
 * file cannot be opened the writer goes straight to SQLite.  A holder that
 * dies releases it with its descriptor.
 *
 * The descriptor stays open between transactions (an open() with its
 * path lookup and a close() fewer per commit).  flock() belongs to the
 * open file description, which a fork() shares: a child must never lock
 * through its parent's descriptor, or both would hold the "exclusive"
 * lock at once, so a descriptor opened before the last fork() is replaced.
 * Forks are counted in a pthread_atfork() child handler, which costs no
 * system call per transaction (glibc does not cache getpid()).
 */
static unsigned store_forks;	/* changed only in a new child */
static pthread_once_t store_forks_once = PTHREAD_ONCE_INIT;

static void
store_count_fork(void)
{
	store_forks++;
}

static void
store_watch_forks(void)
{
	/* SQLite's allocation statistics take a global mutex around every
	 * allocation; nothing here reads them.  Refused, harmlessly, when
	 * something initialised SQLite before the first store was opened. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	pthread_atfork(NULL, NULL, store_count_fork);
}

bool
store_queue_enter(struct store *st)
{
	char path[4096];
	int64_t until;

	if (st->queue_fd >= 0 && st->queue_forks != store_forks) {
		close(st->queue_fd);	/* the parent's copy: its lock stays */
		st->queue_fd = -1;
	}
	if (st->queue_fd < 0) {
		if (store_sibling_path(st, "-wlock", path, sizeof(path)) != 0)
			return false;
		st->queue_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		    0660);
		if (st->queue_fd < 0)
			return false;
		st->queue_forks = store_forks;
	}
	/* Bounded like store_begin(): past the deadline, go on without the
	 * queue (BEGIN IMMEDIATE still serialises, and gives up).  Polled,
	 * with the deadline read again each time, also when there is none
	 * yet: a stop signal sets one during the wait, and the handlers'
	 * SA_RESTART would restart a blocking flock() past it. */
	while (flock(st->queue_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return false;
		if ((until = store_deadline(st)) != 0 &&
		    timefmt_monotonic_ms() + STORE_DEADLINE_SLACK_MS >= until)
			return false;
		usleep(2000);
	}
	return true;
}

void
store_queue_leave(struct store *st, bool held)
{
	if (held && flock(st->queue_fd, LOCK_UN) != 0) {
		/* Never keep a lock we cannot release: closing this process's
		 * only descriptor of it drops it. */
		log_warn("cannot release the writers' queue; reopening it");
		close(st->queue_fd);
		st->queue_fd = -1;
	}
}

void
store_set_deadline(struct store *st, int64_t deadline_ms)
{
	st->deadline_ms = deadline_ms;
}

void
store_stop_deadline(int64_t deadline_ms)
{
	int_least64_t none = 0;

	atomic_compare_exchange_strong(&store_process_deadline_ms, &none,
	    (int_least64_t)deadline_ms);
}

/* The earlier of the connection's deadline and the process's; 0: none. */
static int64_t
store_deadline(const struct store *st)
{
	int64_t process = (int64_t)atomic_load(&store_process_deadline_ms);

	if (st->deadline_ms == 0 || (process != 0 && process < st->deadline_ms))
		return process;
	return st->deadline_ms;
}

bool
store_attempt_in_time(const struct store *st)
{
	int64_t deadline = store_deadline(st);

	/* The lock wait, then time for the statements and the commit. */
	return deadline == 0 || timefmt_monotonic_ms() +
	    STORE_BUSY_TIMEOUT_MS + STORE_DEADLINE_SLACK_MS <= deadline;
}

sqlite3 *
store_db(struct store *st)
{
	return st->db;
}

int
store_exec(struct store *st, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		log_errorx("sqlite: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return store_rc_to_err(rc);
	}
	return 0;
}

void
store_col_text(sqlite3_stmt *stmt, int col, char *out, size_t size)
{
	/* memcpy, not snprintf("%s"): rows are read field by field, and
	 * the format machinery cost more than the copy (9 per policy). */
	const unsigned char *s = sqlite3_column_text(stmt, col);
	size_t n = s != NULL ? (size_t)sqlite3_column_bytes(stmt, col) : 0;

	/* Cut on a character boundary: half a character would make the
	 * JSON built from it invalid UTF-8. */
	if (n > size - 1)
		n = utf8_prefix_len((const char *)s, size - 1);
	if (n > 0)
		memcpy(out, s, n);
	out[n] = '\0';
}

sqlite3_stmt *
store_prepare(struct store *st, const char *sql)
{
	sqlite3_stmt *stmt;

	for (size_t i = 0; i < st->n_cached; i++) {
		if (st->cache[i].sql == sql) {
			stmt = st->cache[i].stmt;
			sqlite3_reset(stmt);
			sqlite3_clear_bindings(stmt);
			return stmt;
		}
	}
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
	    NULL) != SQLITE_OK) {
		log_errorx("sqlite prepare: %s", sqlite3_errmsg(st->db));
		return NULL;
	}
	if (st->n_cached == st->cap_cached) {
		size_t cap = st->cap_cached ? 2 * st->cap_cached : STORE_STMT_CACHE_FIRST;
		struct store_cached_stmt *grown = realloc(st->cache,
		    cap * sizeof(*grown));

		if (grown == NULL) {
			log_errorx("sqlite prepare: out of memory for the statement cache");
			sqlite3_finalize(stmt);
			return NULL;
		}
		st->cache = grown;
		st->cap_cached = cap;
	}
	st->cache[st->n_cached].sql = sql;
	st->cache[st->n_cached].stmt = stmt;
	st->n_cached++;
	return stmt;
}

static int
store_pragma_int(struct store *st, const char *sql, int64_t *out)
{
	sqlite3_stmt *stmt;
	int rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return EGW_E_DB;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW ? 0 : store_rc_to_err(rc);
}

int
store_schema_version(struct store *st)
{
	int64_t v;

	if (store_pragma_int(st, "PRAGMA user_version", &v) != 0)
		return EGW_E_DB;
	return (int)v;
}

int64_t
store_data_version(struct store *st)
{
	int64_t v;

	if (store_pragma_int(st, "PRAGMA data_version", &v) != 0)
		return -1;
	return v;
}

int
store_latest_schema_version(void)
{
	return store_n_migrations == 0 ? 0
	    : store_migrations[store_n_migrations - 1].version;
}

/*
 * Transaction control through cached statements: sqlite3_exec() would parse
 * "BEGIN" and "COMMIT" again for every request.  Named arrays, not literals,
 * because the cache is keyed by the address of the SQL text.
 */
static const char sql_begin_read[] = "BEGIN";
static const char sql_begin_write[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";
static const char sql_savepoint[] = "SAVEPOINT egw_batch_op";
static const char sql_release[] = "RELEASE egw_batch_op";
static const char sql_rollback_to[] = "ROLLBACK TO egw_batch_op";

static int
store_run(struct store *st, const char *sql)
{
	sqlite3_stmt *stmt = store_prepare(st, sql);
	int rc;

	if (stmt == NULL)
		return SQLITE_ERROR;
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int
store_begin(struct store *st)
{
	int64_t deadline = timefmt_monotonic_ms() + STORE_BUSY_TIMEOUT_MS;
	int64_t cap = store_deadline(st);
	int rc;

	if (st->batch) {
		/* An error that ended the batch's transaction must not let
		 * the next operation start one of its own. */
		if (sqlite3_get_autocommit(st->db))
			return EGW_E_DB;
		return store_rc_to_err(store_run(st, sql_savepoint));
	}
	/* A client that stops waiting sooner, or the process's stop, bounds
	 * the wait too. */
	if (cap != 0 && cap - STORE_DEADLINE_SLACK_MS < deadline) {
		int64_t left;

		deadline = cap - STORE_DEADLINE_SLACK_MS;
		left = deadline - timefmt_monotonic_ms();
		sqlite3_busy_timeout(st->db, left > 0 ? (int)left : 0);
	}
	/* The busy handler already waits; the loop covers the rare cases where
	 * SQLite returns BUSY without invoking it (e.g. WAL recovery).  A
	 * retry's handler waits only for what is left of the deadline: the
	 * handler counts its own sleeps and may give up a little before the
	 * deadline, and a second full wait would double the bound that the
	 * worker's stop (worker.c WORKER_DRAIN_MS) relies on. */
	for (;;) {
		int64_t left;

		rc = store_run(st, sql_begin_write);
		if (rc == SQLITE_OK)
			break;
		left = deadline - timefmt_monotonic_ms();
		if ((rc & 0xff) != SQLITE_BUSY || left <= 0)
			break;
		sqlite3_busy_timeout(st->db, (int)left);
		usleep(2000);
	}
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	if (rc == SQLITE_OK)
		return 0;
	log_warnx("BEGIN IMMEDIATE: %s", sqlite3_errstr(rc));
	return store_rc_to_err(rc);
}

int
store_commit(struct store *st)
{
	int rc;

	if (st->batch) {
		if (sqlite3_get_autocommit(st->db))
			return EGW_E_DB;
		if ((rc = store_run(st, sql_release)) == SQLITE_OK)
			return 0;
		/* The operation must not stay half in the batch: undo it, and
		 * when even that fails, end the whole transaction (the batch
		 * is then re-run operation by operation). */
		log_warnx("RELEASE: %s", sqlite3_errstr(rc));
		store_rollback(st);
		return EGW_E_DB;
	}
	rc = store_run(st, sql_commit);
	if (rc != SQLITE_OK) {
		log_warnx("COMMIT: %s", sqlite3_errstr(rc));
		if (!sqlite3_get_autocommit(st->db))
			store_run(st, sql_rollback);
		return store_rc_to_err(rc);
	}
	return 0;
}

int
store_rollback(struct store *st)
{
	if (sqlite3_get_autocommit(st->db))
		return 0;
	if (st->batch) {
		int rc = store_run(st, sql_rollback_to);

		if (rc == SQLITE_OK)
			rc = store_run(st, sql_release);
		if (rc != SQLITE_OK) {
			log_warnx("ROLLBACK TO: %s; ending the batch", sqlite3_errstr(rc));
			if (!sqlite3_get_autocommit(st->db))
				store_run(st, sql_rollback);
			return EGW_E_DB;
		}
		return 0;
	}
	return store_rc_to_err(store_run(st, sql_rollback));
}

int
store_batch_begin(struct store *st)
{
	int rc;

	if (st->batch)
		return EGW_E_INVALID;
	if ((rc = store_begin(st)) == 0)
		st->batch = true;
	return rc;
}

bool
store_in_batch(const struct store *st)
{
	return st->batch;
}

bool
store_batch_alive(const struct store *st)
{
	return st->batch && !sqlite3_get_autocommit(st->db);
}

int
store_batch_end(struct store *st, bool commit)
{
	if (!st->batch)
		return EGW_E_INVALID;
	st->batch = false;
	if (sqlite3_get_autocommit(st->db))
		return EGW_E_DB;	/* the transaction ended under us */
	if (!commit)
		return store_rollback(st);
	return store_commit(st);
}

bool
store_read_begin(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		return false;
	return store_run(st, sql_begin_read) == SQLITE_OK;
}

void
store_read_end(struct store *st, bool opened)
{
	if (opened && !sqlite3_get_autocommit(st->db))
		store_run(st, sql_commit);
}

/*
 * sql/009 restates each CHECK that lists three or more values by replacing
 * its text as 001 wrote it; a table whose text differs (edited by hand, or
 * made by another version of 001) keeps its list, and every row written to
 * it builds a temporary B-tree.  Nothing is wrong with its data, so this
 * only says which tables.
 */
#define STORE_CHECK_LISTS_VERSION 9

static void
store_warn_check_lists(struct store *st)
{
	sqlite3_stmt *stmt;

	if (sqlite3_prepare_v2(st->db, "SELECT name FROM sqlite_schema WHERE"
	    " type = 'table' AND (instr(sql, 'IN (''host''') OR"
	    " instr(sql, 'IN (''tcp'', ''udp'', ''icmp''') OR"
	    " instr(sql, 'IN (''pending''') OR instr(sql, 'operation IN') OR"
	    " instr(sql, 'IN (''allow''') OR instr(sql, 'IN (''read'''))",
	    -1, &stmt, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(stmt) == SQLITE_ROW)
		log_warnx("table %s still checks a list of values with IN"
		    " (sql/009 did not find the text it replaces): every row"
		    " written to it builds a temporary B-tree",
		    (const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
}

int
store_migrate_to(struct store *st, int target)
{
	int current = store_schema_version(st);
	int rc;

	if (current < 0)
		return current;
	if (current > store_latest_schema_version()) {
		log_errorx("database schema version %d is newer than this program's %d",
		    current, store_latest_schema_version());
		return EGW_E_SCHEMA;
	}
	for (size_t i = 0; i < store_n_migrations; i++) {
		const struct store_migration *m = &store_migrations[i];
		char pragma[64];

		if (m->version <= current || m->version > target)
			continue;
		if ((rc = store_begin(st)) != 0)
			return rc;
		/* Another process may have migrated while we waited for the lock. */
		if (store_schema_version(st) >= m->version) {
			store_rollback(st);
			continue;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", m->version);
		if ((rc = store_exec(st, m->sql)) != 0 ||
		    (rc = store_exec(st, pragma)) != 0) {
			log_errorx("migration %s failed", m->name);
			store_rollback(st);
			return rc;
		}
		if ((rc = store_commit(st)) != 0)
			return rc;
		log_info("applied migration %s", m->name);
		if (m->version == STORE_CHECK_LISTS_VERSION)
			store_warn_check_lists(st);
	}
	return 0;
}

static int
store_open_flags(const char *path, int flags, struct store **out)
{
	struct store *st;
	int rc;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return EGW_E_NOMEM;
	st->queue_fd = -1;
	pthread_once(&store_forks_once, store_watch_forks);
	rc = sqlite3_open_v2(path, &st->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		log_errorx("open %s: %s", path,
		    st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		rc = (rc & 0xff) == SQLITE_CANTOPEN ? EGW_E_NOTFOUND : store_rc_to_err(rc);
		store_close(st);
		return rc;
	}
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(st->db, 1);
	if ((rc = store_exec(st, "PRAGMA foreign_keys = ON;"
	    "PRAGMA synchronous = FULL;"
	    "PRAGMA temp_store = MEMORY;"
	    "PRAGMA cache_size = -" STORE_CACHE_KIB ";"
	    )) != 0) {
		store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

int
store_open(const char *path, struct store **out)
{
	struct store *st;
	int rc;

	if ((rc = store_open_flags(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
	    &st)) != 0)
		return rc;
	/* journal_mode needs no transaction and persists in the file. */
	if ((rc = store_exec(st, "PRAGMA journal_mode = WAL")) != 0 ||
	    (rc = store_migrate_to(st, store_latest_schema_version())) != 0) {
		store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

int
store_open_readonly(const char *path, struct store **out)
{
	if (access(path, F_OK) != 0)
		return EGW_E_NOTFOUND;
	return store_open_flags(path, SQLITE_OPEN_READONLY, out);
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->n_cached; i++)
		sqlite3_finalize(st->cache[i].stmt);
	free(st->cache);
	/* Closing an inherited copy releases nobody's lock. */
	if (st->queue_fd >= 0)
		close(st->queue_fd);
	sqlite3_close_v2(st->db);
	free(st->token_memo);
	free(st);
}

bool
store_snapshot_version(struct store *st, uint32_t *out)
{
	unsigned int v = 0;

	if (sqlite3_get_autocommit(st->db))
		return false;
	/* A deferred BEGIN takes its snapshot at the first read, and only
	 * then is the counter brought up to date: read something first. */
	if (sqlite3_txn_state(st->db, "main") == SQLITE_TXN_NONE) {
		sqlite3_stmt *stmt = store_prepare(st, "PRAGMA main.data_version");
		int rc;

		if (stmt == NULL)
			return false;
		rc = sqlite3_step(stmt);
		sqlite3_reset(stmt);
		if (rc != SQLITE_ROW)
			return false;
	}
	/* Only a read snapshot: a write transaction's own changes do not
	 * move the counter until they commit. */
	if (sqlite3_txn_state(st->db, "main") != SQLITE_TXN_READ)
		return false;
	if (sqlite3_file_control(st->db, "main", SQLITE_FCNTL_DATA_VERSION, &v) != SQLITE_OK)
		return false;
	*out = v;
	return true;
}

void
store_set_iface_deriver(struct store *st, store_iface_deriver fn,
    const void *ctx)
{
	st->derive_iface = fn;
	st->derive_ctx = ctx;
}

bool
store_derive_iface(struct store *st, const char *network_id, char *out)
{
	out[0] = '\0';
	if (st->derive_iface == NULL || network_id[0] == '\0')
		return false;
	if (st->derive_iface(network_id, out, st->derive_ctx) != 0) {
		out[0] = '\0';
		return false;
	}
	return true;
}

struct store_token_memo **
store_token_memo_slot(struct store *st)
{
	return &st->token_memo;
}

int
store_generation(struct store *st, int64_t *desired, int64_t *applied)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT desired_generation, applied_generation FROM applier_state WHERE id = 1");
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		if (desired)
			*desired = sqlite3_column_int64(stmt, 0);
		if (applied)
			*applied = sqlite3_column_int64(stmt, 1);
	}
	sqlite3_reset(stmt);
	return rc == SQLITE_ROW ? 0 : store_rc_to_err(rc == SQLITE_DONE ? SQLITE_ERROR : rc);
}

int
store_scalar(struct store *st, const char *sql, int64_t *out)
{
	sqlite3_stmt *stmt = store_prepare(st, sql);
	int rc, err;

	if (stmt == NULL)
		return EGW_E_DB;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(stmt, 0);
	/* One step is enough: a RETURNING statement makes all its changes
	 * before the first row. */
	sqlite3_reset(stmt);
	if (rc == SQLITE_ROW)
		return 0;
	err = store_rc_to_err(rc);
	return err == 0 ? EGW_E_DB : err;
}

int
store_bump_generation(struct store *st, int64_t *out)
{
	/* Two statements, not one with RETURNING: SQLite keeps a returned
	 * row in a temporary table it builds for every run. */
	int rc = store_run(st, "UPDATE applier_state SET desired_generation ="
	    " desired_generation + 1 WHERE id = 1");

	if (rc != SQLITE_OK)
		return store_rc_to_err(rc) != 0 ? store_rc_to_err(rc) : EGW_E_DB;
	if (sqlite3_changes(st->db) != 1)
		return EGW_E_DB;
	return store_scalar(st, "SELECT desired_generation FROM applier_state"
	    " WHERE id = 1", out);
}
