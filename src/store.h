/* SPDX-License-Identifier: MIT */
/*
 * This file contains the SQLite connection: open, migrate, transactions.
 *
 * Every process opens its own connection after fork (never inherit one).
 * store_open() sets WAL, a busy timeout, foreign keys and synchronous=FULL,
 * then applies the numbered migrations from sql/ (embedded at build time)
 * that are newer than PRAGMA user_version, each in its own transaction.
 * Writers use store_begin() (BEGIN IMMEDIATE, retried while busy) so the
 * busy timeout applies before any read snapshot is taken.  The resource
 * modules (store_policy.c, ...) build on this; nothing outside store*.c ever
 * sees a sqlite3_stmt.
 */
#ifndef EGW_STORE_H
#define EGW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct sqlite3;

/*
 * Identifies who made a change, for policy_history and audit events.
 * @authorize, when set, decides inside the change's own transaction
 * whether it may be made at all (an API client's token not checked yet:
 * one revoked before the change commits cannot make it).  It is given
 * @credential, returns 0 and writes the actor to record into @actor, or
 * returns an error, and the change is then not made; @actor above is not
 * used.
 */
struct store_actor {
	const char *actor;	/* "api:<token name>", "nats", "applier", ... */
	const char *request_id;	/* may be NULL */
	int (*authorize)(struct store *st, const void *credential, char *actor,
	    size_t size);
	const void *credential;
};

/* Room for the longest actor text recorded, with its NUL. */
#define STORE_ACTOR_MAX 96

#define STORE_BUSY_TIMEOUT_MS 5000

/**
 * store_open() - open (creating if needed) and migrate the database
 * @path: database file; its directory must exist
 * @out: the connection, owned by the caller (store_close)
 *
 * Returns: 0; EGW_E_SCHEMA when the file's schema is newer than this
 * program; EGW_E_DB or EGW_E_BUSY otherwise (details logged).
 */
int store_open(const char *path, struct store **out);

/**
 * store_open_readonly() - open an existing database without migrating
 * @path: database file
 * @out: the connection
 *
 * Returns: 0, EGW_E_NOTFOUND when the file is missing, EGW_E_DB otherwise.
 */
int store_open_readonly(const char *path, struct store **out);

/**
 * store_close() - finalize cached statements and close; NULL is a no-op
 */
void store_close(struct store *st);

/**
 * store_schema_version() - the database's PRAGMA user_version
 *
 * Returns: the version (>= 0), or EGW_E_DB.
 */
int store_schema_version(struct store *st);

/**
 * store_latest_schema_version() - highest migration built into the program
 */
int store_latest_schema_version(void);

/**
 * store_migrate_to() - apply migrations up to @version only (for tests of
 * upgrades from each earlier version)
 *
 * Returns: 0 or an EGW_E_* code.
 */
int store_migrate_to(struct store *st, int version);

/**
 * store_begin() - BEGIN IMMEDIATE, retrying while the database is busy
 *
 * Returns: 0, EGW_E_BUSY after STORE_BUSY_TIMEOUT_MS (all retries
 * together), or EGW_E_DB.
 */
int store_begin(struct store *st);

/**
 * store_commit() / store_rollback() - end the transaction
 *
 * Returns: 0 or EGW_E_BUSY / EGW_E_DB (a failed commit is rolled back).
 */
int store_commit(struct store *st);
int store_rollback(struct store *st);

/**
 * store_read_begin() / store_read_end() - one read snapshot for a group of
 * queries
 *
 * Outside a transaction every statement opens and closes its own read
 * transaction (WAL index lock, header check, file size check); a request
 * that runs five queries pays that five times.  store_read_begin() opens a
 * deferred transaction (no lock is taken until the first read) and
 * store_read_end() ends it; statements in between see one snapshot.  Only
 * reads may run in between.  store_read_begin() does nothing when a
 * transaction is already open (store_read_end() then does nothing either).
 *
 * Returns: store_read_begin(): true when it opened a transaction (pass it
 * to store_read_end()).
 */
bool store_read_begin(struct store *st);

/**
 * store_batch_begin() / store_batch_end() - several operations, one commit
 *
 * Group commit for the API's writer process (writer.h): between the two,
 * store_begin() / store_commit() / store_rollback() work on a savepoint
 * inside one BEGIN IMMEDIATE transaction, so each operation still succeeds
 * or fails alone while the batch pays for one lock hand-over and one
 * durable commit.  When a statement error ends the whole transaction,
 * store_batch_alive() turns false and every later store_begin() fails: the
 * caller must then end the batch and run each operation again on its own.
 *
 * Returns: store_batch_begin(): as store_begin(), or EGW_E_INVALID inside a
 * batch; store_batch_end(): 0 once committed (or rolled back when @commit
 * is false), EGW_E_DB when the transaction was already gone, or what
 * store_commit() returns.
 */
int store_batch_begin(struct store *st);
bool store_in_batch(const struct store *st);
bool store_batch_alive(const struct store *st);
int store_batch_end(struct store *st, bool commit);
void store_read_end(struct store *st, bool opened);

/**
 * store_exec() - run SQL text without results (DDL, tests)
 *
 * Returns: 0 or EGW_E_DB (message logged).
 */
int store_exec(struct store *st, const char *sql);

/**
 * store_prepare() - a cached prepared statement for @sql
 * @st: connection
 * @sql: a string literal; the cache is keyed by its address
 *
 * The statement is reset and its bindings cleared before it is returned.
 * For use inside store*.c only.
 *
 * Returns: the statement (owned by the cache), or NULL (logged).
 */
struct sqlite3_stmt *store_prepare(struct store *st, const char *sql);

/**
 * store_scalar() - run @sql (no parameters), whose first row's first
 * column is an integer, such as a count or a RETURNING value
 * @st: the connection
 * @sql: a string literal (the statement cache is keyed by its address)
 * @out: the value; untouched unless it returns 0
 *
 * Returns: 0; EGW_E_BUSY, EGW_E_NOMEM or EGW_E_DB (no row is EGW_E_DB).
 */
int store_scalar(struct store *st, const char *sql, int64_t *out);

/**
 * store_col_text() - copy a text column into a fixed buffer, for store*.c
 * @stmt: a statement on a row
 * @col: column index
 * @out: the buffer; always NUL-terminated, "" for NULL
 * @size: its size (> 0); longer text is cut to at most size - 1 bytes,
 *        on a UTF-8 character boundary
 */
void store_col_text(struct sqlite3_stmt *stmt, int col, char *out, size_t size);

/**
 * store_db() - the underlying handle, for store*.c only
 */
struct sqlite3 *store_db(struct store *st);

/**
 * store_sibling_path() - the database file's path followed by @suffix
 * ("-wal" names SQLite's write-ahead log; "-wlock" the writers' queue)
 *
 * Returns: 0, EGW_E_NOTFOUND (in-memory database) or EGW_E_INVALID (too
 * long for @size).
 */
int store_sibling_path(struct store *st, const char *suffix, char *out,
    size_t size);

/**
 * store_queue_enter() - wait for this database's writers' queue (an flock
 * of "<db>-wlock"); store_queue_leave() gives the turn back
 * @st: connection
 * @held: store_queue_enter()'s result
 *
 * Not re-entrant: a second enter on the same @st returns at once (flock on
 * the same descriptor only converts the lock) and the inner leave gives
 * the outer turn back; callers inside a batch do not enter
 * (store_in_batch()).  A forked child gets its own descriptor on its first
 * enter, never the parent's.
 *
 * The wait polls (every 2 ms) and ends STORE_DEADLINE_SLACK_MS before
 * the deadline (store_set_deadline(), store_stop_deadline()), read again
 * each time: one a stop signal sets during the wait counts too.
 *
 * Returns: true when the turn is held, false when the queue cannot be used
 * or the deadline is near (the caller goes on without it: BEGIN
 * IMMEDIATE still serialises, and gives up by the same deadline).
 */
bool store_queue_enter(struct store *st);
void store_queue_leave(struct store *st, bool held);

/**
 * store_set_deadline() - when the caller's client stops waiting
 * @deadline_ms: CLOCK_MONOTONIC ms (timefmt_monotonic_ms()), 0 for none
 *
 * A mutation (store_policy.h) whose turn in the queue or whose retries
 * came so late that an attempt could end after @deadline_ms does not
 * start one and fails with EGW_E_UNAVAILABLE: a change must not commit
 * after the client was told its outcome is unknown.  While it is set,
 * store_begin() and store_queue_enter() wait at most until a second
 * before it.
 */
void store_set_deadline(struct store *st, int64_t deadline_ms);

/**
 * store_stop_deadline() - the same for every connection of this process,
 * from a stop signal's handler (async-signal-safe; the first call wins)
 * @deadline_ms: CLOCK_MONOTONIC ms by which the process is killed, less a
 *               margin
 *
 * A process killed a fixed time after its stop signal (pool.h
 * POOL_GRACE_MS) must not be cut in the middle of a change it could have
 * refused cleanly.  The earlier of this and store_set_deadline() applies.
 */
void store_stop_deadline(int64_t deadline_ms);

/**
 * store_attempt_in_time() - whether a transaction started now (waiting up
 * to STORE_BUSY_TIMEOUT_MS for the lock) ends before the deadline
 */
bool store_attempt_in_time(const struct store *st);

/**
 * store_rc_to_err() - map a SQLite result code to an enum egw_err
 */
int store_rc_to_err(int sqlite_rc);

/**
 * store_data_version() - PRAGMA data_version, changes when another
 * connection commits
 *
 * Returns: the value (compare for equality only), or -1 on error.
 */
int64_t store_data_version(struct store *st);

/**
 * store_snapshot_version() - the version of the database a read snapshot
 * sees, for memos of query results (store*.c only)
 * @st: connection
 * @out: set on success; equal values mean no connection, this one
 *       included, committed anything in between
 *
 * Inside a transaction that has not read yet, this takes its snapshot.
 *
 * Returns: false outside a transaction (the counter is refreshed only when
 * a transaction starts, so it could be stale), in a write transaction (its
 * own changes do not move the counter before the commit) or on error.
 */
bool store_snapshot_version(struct store *st, uint32_t *out);

/*
 * How a policy's network_id names the interface it is enforced on when
 * it names neither sources nor interfaces (EGW_IFACE_TEMPLATE): writes
 * the name (at most NETADDR_IFNAMSIZ bytes with its NUL) into @out and
 * returns 0, or returns an error when none can be derived.
 */
typedef int (*store_iface_deriver)(const char *network_id, char *out,
    const void *ctx);

/**
 * store_set_iface_deriver() - let this connection's policy writes record
 * and check the interfaces policies derive from their network_id
 * @st: connection
 * @fn: NULL: puts check no derived claims, and a put that changes a
 *      policy clears the one its row held (policies.derived_iface NULL)
 * @ctx: passed to @fn; must outlive the connection
 */
void store_set_iface_deriver(struct store *st, store_iface_deriver fn,
    const void *ctx);

/**
 * store_derive_iface() - the interface a network_id derives on this
 * connection
 * @st: connection
 * @network_id: the policy's network_id ("" derives none)
 * @out: NETADDR_IFNAMSIZ bytes; "" when none is derived
 *
 * Returns: true when a deriver is set and gave a name (store*.c only).
 */
bool store_derive_iface(struct store *st, const char *network_id, char *out);

/**
 * store_token_memo_slot() - the connection's place for store_token.c's
 * memo of looked-up tokens; freed with the connection (store*.c only)
 */
struct store_token_memo **store_token_memo_slot(struct store *st);

/**
 * store_generation() - desired and applied generations from applier_state
 * @desired: may be NULL
 * @applied: may be NULL
 *
 * Returns: 0 or EGW_E_DB.
 */
int store_generation(struct store *st, int64_t *desired, int64_t *applied);

/**
 * store_bump_generation() - increment desired_generation; call inside a
 * transaction
 * @out: the new generation
 *
 * Returns: 0 or EGW_E_DB.
 */
int store_bump_generation(struct store *st, int64_t *out);

#endif
