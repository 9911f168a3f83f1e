/* SPDX-License-Identifier: MIT */
/*
 * This file contains the libFuzzer target of egw-natsd's event handling.
 *
 * The first input byte picks the subject (scenario.created or
 * scenario.completed; bit 0) and whether the message has a JetStream
 * position (bit 1; its sequence and time stamp from the other six bits,
 * so inputs meet older and newer positions of the same stream), the rest
 * is the message body, handed to bridge_handle_event() as the cnats
 * callback would, against a
 * real SQLite database (migrated by store_open, kept in a private
 * temporary directory and recreated every few thousand inputs).
 * Properties checked besides memory safety:
 *  - with a healthy database no event is ever "retry" (a body that is
 *    retried forever would block its consumer: a poison message);
 *  - a rejected event changes no policy and no generation, and adds
 *    exactly one "event.rejected" outbox row;
 *  - an "unchanged" event changes no policy and no generation;
 *  - a "changed" event advances the desired generation.
 */
#include "fuzz.h"

#include "config.h"
#include "err.h"
#include "log.h"
#include "nats_bridge.h"
#include "store.h"

#include <sqlite3.h>
#include <unistd.h>

#define FUZZ_MAX_BODY 65536
#define FUZZ_DB_RECYCLE 4000

static char dir[64];
static char path[96];
static struct store *st;
static unsigned uses;
static struct config cfg;	/* defaults; EGW_MAX_BODY = FUZZ_MAX_BODY */

struct snap {
	int64_t generation;
	int64_t policies;
	int64_t rejected;
	int64_t outbox;
	char digest[64];	/* total() of revisions and enabled flags */
};

static int64_t
one_int(const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = -1;

	FUZZ_CHECK(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) == SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static void
snapshot(struct snap *s)
{
	sqlite3_stmt *q;

	s->generation = one_int("SELECT desired_generation FROM applier_state");
	s->policies = one_int("SELECT count(*) FROM policies");
	s->rejected = one_int("SELECT count(*) FROM outbox WHERE type = 'event.rejected'");
	s->outbox = one_int("SELECT count(*) FROM outbox");
	FUZZ_CHECK(sqlite3_prepare_v2(store_db(st),
	    "SELECT total(revision) || '/' || total(enabled) || '/' || "
	    "total(length(completed_at)) FROM policies", -1, &q, NULL) == SQLITE_OK);
	FUZZ_CHECK(sqlite3_step(q) == SQLITE_ROW);
	snprintf(s->digest, sizeof(s->digest), "%s",
	    (const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
}

/* Close the database and remove every file SQLite and the store made
 * beside it (the writers' queue lock too, or the directory stays). */
static void
remove_db(void)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-wlock" };
	char f[128];

	store_close(st);
	st = NULL;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(f, sizeof(f), "%s%s", path, suffixes[i]);
		unlink(f);
	}
}

static void
open_db(void)
{
	if (st != NULL)
		remove_db();
	FUZZ_CHECK(store_open(path, &st) == 0);
	uses = 0;
}

static void
cleanup(void)
{
	remove_db();
	rmdir(dir);
}

static const char *
no_env(const char *name)
{
	(void)name;
	return NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz", (enum log_level)(LOG_LEVEL_ERROR + 1));
	FUZZ_CHECK(config_load(&cfg, no_env, path, sizeof(path)) == 0);
	cfg.max_body = FUZZ_MAX_BODY;
	/* tmpfs when there is one: every commit is an fsync (synchronous=FULL) */
	snprintf(dir, sizeof(dir), "%s/egw-fuzz-nats-XXXXXX",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	FUZZ_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/egw.db", dir);
	open_db();
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum bridge_outcome outcome;
	struct snap before, after;
	struct store_event_pos pos = { "FUZZ", 0, 0 };
	const char *subject;
	int rc;

	if (size < 1)
		return 0;
	if (++uses > FUZZ_DB_RECYCLE)
		open_db();
	subject = data[0] & 1 ? BRIDGE_SUBJECT_COMPLETED : BRIDGE_SUBJECT_CREATED;
	pos.seq = 1 + (data[0] >> 2);
	pos.ts_ns = pos.seq * 1000;
	snapshot(&before);
	rc = bridge_handle_event(st, &cfg, subject, (const char *)data + 1,
	    size - 1, "fuzz:1", data[0] & 2 ? &pos : NULL,
	    /* no delivery count, as over core NATS: a created message that
	     * loses another scenario's claim is rejected, not waited for, so
	     * a healthy database still never asks for a retry (the wait is
	     * test_nats_bridge's) */
	    0, &outcome);
	snapshot(&after);
	if (rc != 0 || outcome == BRIDGE_RETRY)
		fprintf(stderr, "%s: rc %d (%s), outcome %d\n", subject, rc,
		    err_message(rc), (int)outcome);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(outcome == BRIDGE_CHANGED || outcome == BRIDGE_UNCHANGED ||
	    outcome == BRIDGE_REJECTED);
	switch (outcome) {
	case BRIDGE_REJECTED:
		FUZZ_CHECK(after.rejected == before.rejected + 1);
		FUZZ_CHECK(after.outbox == before.outbox + 1);
		/* fall through */
	case BRIDGE_UNCHANGED:
		FUZZ_CHECK(after.generation == before.generation);
		FUZZ_CHECK(after.policies == before.policies);
		FUZZ_CHECK(strcmp(after.digest, before.digest) == 0);
		break;
	case BRIDGE_CHANGED:
		FUZZ_CHECK(after.generation > before.generation);
		FUZZ_CHECK(after.rejected == before.rejected);
		break;
	default:
		break;
	}
	return 0;
}
