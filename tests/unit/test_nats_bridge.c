/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of the NATS bridge's event handling
 * (bridge_handle_event) against a real temporary SQLite database: track
 * mapping, explicit fields winning, idempotent redelivery, completion and
 * its tombstone, and a table of invalid event shapes that must each be
 * rejected, recorded as "event.rejected" and change no policy.
 */
#include "config.h"
#include "err.h"
#include "log.h"
#include "nats_bridge.h"
#include "policy.h"
#include "store.h"
#include "store_policy.h"

#include "tap.h"
#include "testdb.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/egw-test-nats-bridge-XXXXXX";
static struct config cfg;	/* the defaults, EGW_MAX_BODY 4096 */

static const char *
no_env(const char *name)
{
	(void)name;
	return NULL;
}

/* One message; @delivered as JetStream counts them (0: core NATS). */
static enum bridge_outcome
handle_msg(struct store *st, const char *subject, const char *body, size_t len,
    const struct store_event_pos *pos, uint64_t delivered)
{
	enum bridge_outcome oc = BRIDGE_RETRY;
	int rc = bridge_handle_event(st, &cfg, subject, body, len, "test", pos,
	    delivered, &oc);

	if (rc != 0)
		tap_diag("bridge_handle_event: %s", err_message(rc));
	return oc;
}

/* A first delivery from a stream (@pos), or a core NATS message (NULL). */
static enum bridge_outcome
handle_at(struct store *st, const char *subject, const char *body, size_t len,
    const struct store_event_pos *pos)
{
	return handle_msg(st, subject, body, len, pos, pos != NULL ? 1 : 0);
}

static enum bridge_outcome
handle(struct store *st, const char *subject, const char *body, size_t len)
{
	return handle_at(st, subject, body, len, NULL);
}

/* A created event for "ord" with profile @profile from stream @stream
 * (bodies differ by their network_id: the same bytes would be "seen"). */
static enum bridge_outcome
created_at(struct store *st, const char *profile, const char *stream,
    int64_t seq, int64_t ts_ns)
{
	struct store_event_pos pos = { stream, seq, ts_ns };
	char body[160];

	snprintf(body, sizeof(body), "{\"scenario_id\":\"ord\",\"profile\":"
	    "\"%s\",\"network_id\":\"n%s%lld\"}", profile, stream,
	    (long long)seq);
	return handle_at(st, BRIDGE_SUBJECT_CREATED, body, strlen(body), &pos);
}

static enum bridge_outcome handle_str(struct store *st, const char *subject,
    const char *body);

/*
 * A created message NAKed (database busy) comes back after the producer's
 * next one was acted on: it must not undo it.  Sequence and time stamp
 * must both be later to supersede (a stream made again restarts its
 * sequence), and streams do not order each other.
 */
static void
test_stream_order(struct store *st)
{
	struct policy *p = policy_new();

	is_int(created_at(st, "none", "SCN", 5, 5000), BRIDGE_CHANGED,
	    "order: message 5 applies");
	is_int(created_at(st, "external-api", "SCN", 7, 7000), BRIDGE_CHANGED,
	    "order: message 7 applies");
	is_int(created_at(st, "training-updates", "SCN", 6, 6000), BRIDGE_UNCHANGED,
	    "order: message 6, redelivered after 7, changes nothing");
	is_int(store_policy_get(st, "ord", p), 0, "order: policy stored");
	is_str(p->profile, "external-api", "order: message 7's profile stays");
	is_int(created_at(st, "training-updates", "OTHER", 6, 6000), BRIDGE_CHANGED,
	    "order: another stream's message is not ordered against SCN");
	is_int(created_at(st, "none", "SCN", 2, 9000), BRIDGE_CHANGED,
	    "order: a lower sequence with a later time stamp (stream made "
	    "again) applies");
	is_int(created_at(st, "external-api", "SCN", 8, 6500), BRIDGE_CHANGED,
	    "order: a higher sequence applies");
	is_int(created_at(st, "training-updates", "SCN", 1, 1000), BRIDGE_UNCHANGED,
	    "order: older than both records changes nothing");
	is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
	    "{\"scenario_id\":\"ord\",\"profile\":\"training-updates\"}"),
	    BRIDGE_CHANGED, "order: a core NATS message (no position) applies");
	is_int(store_policy_get(st, "ord", p), 0, "order: policy stored");
	is_str(p->profile, "training-updates", "order: the core message's profile");

	/* The producer sends its current intent again (the same body, a
	 * later message) while an older one waits for its redelivery. */
	is_int(created_at(st, "none", "RS", 10, 10000), BRIDGE_CHANGED,
	    "order: resend: message 10 applies");
	{
		/* the same body, a later place: created_at() names bodies by
		 * their sequence, so build message 12 by hand */
		struct store_event_pos pos = { "RS", 12, 12000 };
		const char *body = "{\"scenario_id\":\"ord\",\"profile\":"
		    "\"none\",\"network_id\":\"nRS10\"}";

		is_int(handle_at(st, BRIDGE_SUBJECT_CREATED, body, strlen(body),
		    &pos), BRIDGE_UNCHANGED, "order: resend: message 12 repeats "
		    "message 10's body (seen)");
	}
	is_int(created_at(st, "external-api", "RS", 11, 11000), BRIDGE_UNCHANGED,
	    "order: resend: message 11, redelivered after 12, changes nothing");
	is_int(store_policy_get(st, "ord", p), 0, "order: policy stored");
	is_str(p->profile, "none", "order: resend: the producer's latest word stays");

	/* The producer says A, then B, then A again: the third message is
	 * its newest word, not a redelivery of the first. */
	{
		const char *a = "{\"scenario_id\":\"ord\",\"profile\":"
		    "\"none\",\"network_id\":\"nABA\"}";
		const char *b = "{\"scenario_id\":\"ord\",\"profile\":"
		    "\"external-api\",\"network_id\":\"nABA\"}";
		struct store_event_pos p20 = { "ABA", 20, 20000 },
		    p21 = { "ABA", 21, 21000 }, p22 = { "ABA", 22, 22000 };

		is_int(handle_at(st, BRIDGE_SUBJECT_CREATED, a, strlen(a), &p20),
		    BRIDGE_CHANGED, "order: A-B-A: A (20) applies");
		is_int(handle_at(st, BRIDGE_SUBJECT_CREATED, b, strlen(b), &p21),
		    BRIDGE_CHANGED, "order: A-B-A: B (21) applies");
		is_int(handle_at(st, BRIDGE_SUBJECT_CREATED, a, strlen(a), &p22),
		    BRIDGE_CHANGED, "order: A-B-A: A again (22) applies");
		is_int(store_policy_get(st, "ord", p), 0, "order: policy stored");
		is_str(p->profile, "none", "order: A-B-A: A's profile, the newest");
		is_int(handle_at(st, BRIDGE_SUBJECT_CREATED, b, strlen(b), &p21),
		    BRIDGE_UNCHANGED, "order: A-B-A: B (21) redelivered changes"
		    " nothing");
		is_int(handle_at(st, BRIDGE_SUBJECT_CREATED, a, strlen(a), &p22),
		    BRIDGE_UNCHANGED, "order: A-B-A: A (22) redelivered changes"
		    " nothing");
		is_int(handle_at(st, BRIDGE_SUBJECT_CREATED, a, strlen(a), &p20),
		    BRIDGE_UNCHANGED, "order: A-B-A: A (20) redelivered changes"
		    " nothing");
		is_int(store_policy_get(st, "ord", p), 0, "order: policy stored");
		is_str(p->profile, "none", "order: A-B-A: still A's profile");
	}
	policy_free(p);
}

static enum bridge_outcome
handle_str(struct store *st, const char *subject, const char *body)
{
	return handle(st, subject, body, strlen(body));
}

/* An event for scenario @sid at @seq of stream "CMP" (time stamp seq x
 * 1000); created bodies differ by their network_id. */
static enum bridge_outcome
event_cmp(struct store *st, const char *subject, const char *sid, int64_t seq)
{
	struct store_event_pos pos = { "CMP", seq, seq * 1000 };
	char body[160];

	snprintf(body, sizeof(body), "{\"scenario_id\":\"%s\",\"network_id\":"
	    "\"%s-%lld\"}", sid, sid, (long long)seq);
	return handle_at(st, subject, body, strlen(body), &pos);
}

/* The @delivered-th delivery of a JetStream created message for @sid on
 * network @net, at @seq of stream "CLM"; NULL @stream: JetStream gave no
 * usable place. */
static enum bridge_outcome
created_delivered(struct store *st, const char *sid, const char *net,
    const char *stream, int64_t seq, uint64_t delivered)
{
	/* Time stamps of 1970: how long a message waited does not count. */
	struct store_event_pos pos = { stream, seq, seq * 1000 };
	char body[160];

	snprintf(body, sizeof(body), "{\"scenario_id\":\"%s\",\"network_id\":"
	    "\"%s\"}", sid, net);
	return handle_msg(st, BRIDGE_SUBJECT_CREATED, body, strlen(body),
	    stream != NULL ? &pos : NULL, delivered);
}

/*
 * A lab's successor on the same network can arrive before the lab's
 * completion (created and completed come through two consumers, also
 * when both waited in the stream for a gateway that was down): its
 * created message is redelivered, not rejected, until its
 * BRIDGE_CLAIM_WAIT_DELIVERIES-th delivery, and applies once the
 * completion has freed the network.  At that delivery, or over core NATS
 * (no redelivery), it is rejected as before.
 */
static void
test_claim_wait(struct store *st)
{
	int64_t rej0;

	is_int(created_delivered(st, "lab-a", "net-shared", "CLM", 1, 1),
	    BRIDGE_CHANGED, "claim: lab-a on net-shared applies");
	rej0 = testdb_int(st, "SELECT count(*) FROM outbox WHERE type = 'event.rejected'");
	is_int(created_delivered(st, "lab-b", "net-shared", "CLM", 3, 1),
	    BRIDGE_RETRY, "claim: lab-b on lab-a's network, stored long ago,"
	    " first delivery: redelivered");
	is_int(created_delivered(st, "lab-b", "net-shared", "CLM", 3,
	    BRIDGE_CLAIM_WAIT_DELIVERIES - 1), BRIDGE_RETRY,
	    "claim: ... and at its %d-th delivery", BRIDGE_CLAIM_WAIT_DELIVERIES - 1);
	is_int(testdb_int(st, "SELECT count(*) FROM outbox WHERE type = 'event.rejected'"),
	    rej0, "claim: ... not recorded as rejected");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 'lab-b'"),
	    0, "claim: ... and not stored");
	is_int(created_delivered(st, "lab-c", "net-shared", "CLM", 4, 1),
	    BRIDGE_RETRY, "claim: lab-c, first delivery: redelivered");
	is_int(created_delivered(st, "lab-c", "net-shared", "CLM", 4,
	    BRIDGE_CLAIM_WAIT_DELIVERIES), BRIDGE_REJECTED,
	    "claim: at its %d-th delivery: rejected", BRIDGE_CLAIM_WAIT_DELIVERIES);
	is_int(testdb_int(st, "SELECT count(*) FROM outbox WHERE type = 'event.rejected'"
	    " AND scenario_id = 'lab-c'"), 1, "claim: ... and recorded");
	is_int(created_delivered(st, "lab-d", "net-shared", NULL, 0, 0),
	    BRIDGE_REJECTED, "claim: over core NATS (no redelivery): rejected");
	is_int(created_delivered(st, "lab-e", "net-shared", NULL, 0, 1),
	    BRIDGE_RETRY, "claim: from JetStream without a usable place:"
	    " still redelivered");
	is_int(created_delivered(st, "lab-e", "net-shared", NULL, 0,
	    BRIDGE_CLAIM_WAIT_DELIVERIES), BRIDGE_REJECTED,
	    "claim: ... counted from its first delivery");
	/* Deliveries used up before the claim was first lost (a database
	 * fault NAKed it 70 times) do not count. */
	is_int(created_delivered(st, "lab-f", "net-shared", "CLM", 5, 70),
	    BRIDGE_RETRY, "claim: lab-f first loses the claim at delivery 70:"
	    " redelivered");
	is_int(created_delivered(st, "lab-f", "net-shared", "CLM", 5,
	    70 + BRIDGE_CLAIM_WAIT_DELIVERIES - 2), BRIDGE_RETRY,
	    "claim: ... still at delivery %d", 70 + BRIDGE_CLAIM_WAIT_DELIVERIES - 2);
	is_int(created_delivered(st, "lab-f", "net-shared", "CLM", 5,
	    70 + BRIDGE_CLAIM_WAIT_DELIVERIES - 1), BRIDGE_REJECTED,
	    "claim: ... rejected at delivery %d, its %d-th since",
	    70 + BRIDGE_CLAIM_WAIT_DELIVERIES - 1, BRIDGE_CLAIM_WAIT_DELIVERIES);
	is_int(handle_str(st, BRIDGE_SUBJECT_COMPLETED, "{\"scenario_id\":\"lab-a\"}"),
	    BRIDGE_CHANGED, "claim: lab-a completes");
	is_int(created_delivered(st, "lab-b", "net-shared", "CLM", 3, 2),
	    BRIDGE_CHANGED, "claim: lab-b's redelivery applies");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 'lab-b'"
	    " AND enabled = 1 AND network_id = 'net-shared'"), 1,
	    "claim: lab-b holds net-shared");
}

/*
 * A completion is recorded with its place in the stream: a created
 * message older than it, never acted on before (NAKed while the database
 * was busy), changes nothing even once the completed row is gone
 * (retention); a newer one is the scenario made again.  The tombstone of
 * a completion that comes first, the completion and its record are one
 * transaction: a failure in between leaves nothing.
 */
static void
test_completion_order(struct store *st)
{
	is_int(event_cmp(st, BRIDGE_SUBJECT_CREATED, "cmp1", 2), BRIDGE_CHANGED,
	    "completion: created (2) applies");
	is_int(event_cmp(st, BRIDGE_SUBJECT_COMPLETED, "cmp1", 4), BRIDGE_CHANGED,
	    "completion: completed (4) applies");
	is_int(testdb_int(st, "SELECT count(*) FROM scenario_event_digests WHERE"
	    " scenario_id = 'cmp1' AND stream = 'CMP' AND stream_seq = 4"), 1,
	    "completion: its place is recorded");
	store_exec(st, "UPDATE policies SET completed_at = '2020-01-01T00:00:00.000Z'"
	    " WHERE scenario_id = 'cmp1'");
	is_int(store_policy_expire_completed(st, 60, NULL), 0,
	    "completion: retention runs");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 'cmp1'"),
	    0, "completion: the completed row is gone");
	is_int(event_cmp(st, BRIDGE_SUBJECT_CREATED, "cmp1", 3), BRIDGE_UNCHANGED,
	    "completion: a created (3) older than it, never seen, changes"
	    " nothing after retention");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 'cmp1'"),
	    0, "completion: no policy comes back");
	is_int(event_cmp(st, BRIDGE_SUBJECT_CREATED, "cmp1", 6), BRIDGE_CHANGED,
	    "completion: a created (6) newer than it makes the scenario again");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 'cmp1'"
	    " AND enabled = 1 AND completed_at IS NULL"), 1,
	    "completion: enabled, not completed");

	/* Completed before created: tombstone, completion, record at once. */
	is_int(event_cmp(st, BRIDGE_SUBJECT_COMPLETED, "cmp2", 8), BRIDGE_CHANGED,
	    "completion first: applies");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 'cmp2'"
	    " AND enabled = 0 AND completed_at IS NOT NULL"), 1,
	    "completion first: a completed, disabled tombstone");
	is_int(event_cmp(st, BRIDGE_SUBJECT_CREATED, "cmp2", 7), BRIDGE_UNCHANGED,
	    "completion first: the created (7) that comes later changes nothing");
	sqlite3_exec(store_db(st), "CREATE TEMP TRIGGER refuse_completion BEFORE"
	    " UPDATE OF completed_at ON policies WHEN NEW.completed_at IS NOT NULL"
	    " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END", NULL, NULL, NULL);
	is_int(event_cmp(st, BRIDGE_SUBJECT_COMPLETED, "cmp3", 10), BRIDGE_RETRY,
	    "completion first, the completion fails: retried");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 'cmp3'"),
	    0, "completion first, the completion fails: no tombstone is left");
	is_int(testdb_int(st, "SELECT count(*) FROM scenario_event_digests WHERE"
	    " scenario_id = 'cmp3'"), 0,
	    "completion first, the completion fails: nothing recorded");
	sqlite3_exec(store_db(st), "DROP TRIGGER temp.refuse_completion", NULL, NULL,
	    NULL);
	is_int(event_cmp(st, BRIDGE_SUBJECT_COMPLETED, "cmp3", 10), BRIDGE_CHANGED,
	    "completion first: its redelivery applies");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 'cmp3'"
	    " AND completed_at IS NOT NULL"), 1,
	    "completion first: then completed");
	/* The producer says A, completes the scenario, and says A again
	 * (a new message): once the completed row is gone, that is the
	 * scenario made again; A's first message redelivered is not. */
	{
		struct store_event_pos p30 = { "CMP", 30, 30000 },
		    p32 = { "CMP", 32, 32000 };
		const char *a = "{\"scenario_id\":\"cmp5\",\"network_id\":\"n-cmp5\"}";

		is_int(handle_at(st, BRIDGE_SUBJECT_CREATED, a, strlen(a), &p30),
		    BRIDGE_CHANGED, "A-completed-A: A (30) applies");
		is_int(event_cmp(st, BRIDGE_SUBJECT_COMPLETED, "cmp5", 31),
		    BRIDGE_CHANGED, "A-completed-A: completed (31) applies");
		store_exec(st, "DELETE FROM policies WHERE scenario_id = 'cmp5'");
		is_int(handle_at(st, BRIDGE_SUBJECT_CREATED, a, strlen(a), &p30),
		    BRIDGE_UNCHANGED, "A-completed-A: A (30) redelivered after"
		    " the row is gone changes nothing");
		is_int(handle_at(st, BRIDGE_SUBJECT_CREATED, a, strlen(a), &p32),
		    BRIDGE_CHANGED, "A-completed-A: A sent again (32) makes the"
		    " scenario again");
	}
	/* A created body that is byte for byte a completed body is still a
	 * created message of its own (the digests differ). */
	{
		struct store_event_pos pos = { "CMP", 12, 12000 };
		const char *body = "{\"scenario_id\":\"cmp4\"}";

		is_int(handle_at(st, BRIDGE_SUBJECT_COMPLETED, body, strlen(body),
		    &pos), BRIDGE_CHANGED, "same bytes: completed (12) applies");
		store_exec(st, "DELETE FROM policies WHERE scenario_id = 'cmp4'");
		pos.seq = 13;
		pos.ts_ns = 13000;
		is_int(handle_at(st, BRIDGE_SUBJECT_CREATED, body, strlen(body),
		    &pos), BRIDGE_CHANGED, "same bytes: a newer created (13) is not"
		    " taken for the completion");
	}
}

struct bad_case {
	const char *subject;
	const char *body;
	const char *why;
};

int
main(void)
{
	static const struct bad_case bad[] = {
		{ BRIDGE_SUBJECT_CREATED, "", "empty body" },
		{ BRIDGE_SUBJECT_CREATED, "not json", "not JSON" },
		{ BRIDGE_SUBJECT_CREATED, "[1,2]", "array" },
		{ BRIDGE_SUBJECT_CREATED, "\"text\"", "string" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"x1\"} trailing", "trailing bytes" },
		{ BRIDGE_SUBJECT_CREATED, "{\"network_id\":\"n\"}", "missing scenario_id" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":42}", "scenario_id number" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"bad id!\"}", "scenario_id charset" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"x2\",\"track\":7}", "track number" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"x3\",\"track\":\"a b\"}", "track charset" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"x4\",\"colour\":\"red\"}", "unknown field" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"x5\",\"profile\":\"nope\"}", "unknown profile" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"x6\",\"profile\":\"custom\","
		  "\"allowed_hosts\":[\"999.1.1.1\"]}", "bad host" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"x7\",\"profile\":\"custom\","
		  "\"allowed_ports\":[70000]}", "port out of range" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"x8\",\"enabled\":\"yes\"}", "enabled string" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"x9\",\"custom_rules\":"
		  "[{\"proto\":\"tcp\",\"dest\":\"10.0.0.1; drop\"}]}", "rule injection" },
		{ BRIDGE_SUBJECT_CREATED, "{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}", "too deep" },
		{ BRIDGE_SUBJECT_COMPLETED, "{}", "completed without scenario_id" },
		{ BRIDGE_SUBJECT_COMPLETED, "{\"scenario_id\":[]}", "completed id array" },
		{ BRIDGE_SUBJECT_COMPLETED, "{\"scenario_id\":\"s9\",\"x\":1}", "completed unknown field" },
		{ BRIDGE_SUBJECT_COMPLETED, "{\"scenario_id\":\"-s\"}", "completed bad id" },
		{ BRIDGE_SUBJECT_COMPLETED, "nope", "completed not JSON" },
		{ BRIDGE_SUBJECT_COMPLETED, "{\"scenario_id\":\"s1\\u0000x\"}",
		  "completed id with an escaped NUL (must not act on s1)" },
		{ BRIDGE_SUBJECT_COMPLETED, "{\"scenario_id\":\"s9\",\"network_id\":\"a\\u0000b\"}",
		  "completed network_id with an escaped NUL" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"d1\",\"scenario_id\":\"d2\"}",
		  "created with a duplicate key" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"s1\",\"track\":\"cissp\\u0000x\"}",
		  "created with a NUL in track" },
		{ BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"x10\",\"network_id\":\"net:abc\"}",
		  "created with a network_id that derives no interface name" },
	};
	const size_t n_bad = sizeof(bad) / sizeof(bad[0]);
	char big[5000];
	char path[128];
	struct store *st = NULL;
	struct policy *p = policy_new();
	int64_t gen0, gen1, hist0;

	log_init("test", LOG_LEVEL_ERROR);
	if (mkdtemp(dir) == NULL || p == NULL ||
	    config_load(&cfg, no_env, path, sizeof(path)) != 0)
		return 99;
	cfg.max_body = 4096;
	snprintf(path, sizeof(path), "%s/egw.db", dir);
	if (store_open(path, &st) != 0)
		return 99;
	/* As egw-natsd: puts record and check derived interfaces. */
	store_set_iface_deriver(st, config_iface_deriver, &cfg);

	/* Track mapping and explicit fields. */
	is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
	    "{\"scenario_id\":\"s1\",\"network_id\":\"n1\",\"track\":\"cissp\"}"),
	    BRIDGE_CHANGED, "created with track cissp changes");
	is_int(store_policy_get(st, "s1", p), 0, "s1 stored");
	is_str(p->profile, "training-updates", "cissp -> training-updates");
	is_str(p->network_id, "n1", "network_id kept");
	ok(p->enabled, "s1 enabled");
	is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
	    "{\"scenario_id\":\"s2\",\"track\":\"unheard-of\"}"),
	    BRIDGE_CHANGED, "unknown track");
	is_int(store_policy_get(st, "s2", p), 0, "s2 stored");
	is_str(p->profile, "none", "unknown track -> '*' row (none)");
	is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
	    "{\"scenario_id\":\"s3\",\"track\":\"netplus\",\"profile\":\"custom\","
	    "\"allowed_hosts\":[\"192.0.2.10\"],\"allowed_ports\":[443]}"),
	    BRIDGE_CHANGED, "explicit profile and allowlist");
	is_int(store_policy_get(st, "s3", p), 0, "s3 stored");
	is_str(p->profile, "custom", "explicit profile wins over track");
	is_int(p->n_hosts, 1, "allowed_hosts kept");
	is_int(p->n_ports, 1, "allowed_ports kept");
	is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
	    "{\"scenario_id\":\"s4\",\"track\":null}"),
	    BRIDGE_CHANGED, "null track = no track");

	/* Redelivery changes nothing. */
	store_generation(st, &gen0, NULL);
	hist0 = testdb_int(st, "SELECT count(*) FROM policy_history");
	is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
	    "{\"scenario_id\":\"s1\",\"network_id\":\"n1\",\"track\":\"cissp\"}"),
	    BRIDGE_UNCHANGED, "redelivered created is unchanged");
	store_generation(st, &gen1, NULL);
	is_int(gen1, gen0, "generation not bumped by redelivery");
	is_int(testdb_int(st, "SELECT count(*) FROM policy_history"), hist0,
	    "no history row for redelivery");
	is_int(testdb_int(st, "SELECT revision FROM policies WHERE scenario_id = 's1'"), 1,
	    "revision still 1");

	/* An update through a later event is a change. */
	is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
	    "{\"scenario_id\":\"s1\",\"network_id\":\"n1\",\"track\":\"netplus\"}"),
	    BRIDGE_CHANGED, "created with another track updates");
	is_int(testdb_int(st, "SELECT revision FROM policies WHERE scenario_id = 's1'"), 2,
	    "revision 2 after update");

	/*
	 * A redelivered created event (at least once) after an operator acted
	 * changes nothing: it neither re-enables, re-creates nor widens.
	 */
	{
		static const char r1[] = "{\"scenario_id\":\"r1\",\"profile\":\"custom\","
		    "\"allowed_hosts\":[\"192.0.2.10\"],\"allowed_ports\":[443,8443]}";
		static const char r2[] = "{\"scenario_id\":\"r2\",\"track\":\"cissp\"}";
		struct store_actor op = { .actor = "test-operator", .request_id = NULL };
		struct policy *narrow = policy_new();
		bool created;

		is_int(handle_str(st, BRIDGE_SUBJECT_CREATED, r1), BRIDGE_CHANGED, "r1 created");
		is_int(handle_str(st, BRIDGE_SUBJECT_CREATED, r2), BRIDGE_CHANGED, "r2 created");
		is_int(store_policy_set_enabled(st, "r1", false, &op, NULL), 0,
		    "operator disables r1");
		is_int(handle_str(st, BRIDGE_SUBJECT_CREATED, r1), BRIDGE_UNCHANGED,
		    "r1's created redelivered");
		is_int(testdb_int(st, "SELECT enabled FROM policies WHERE scenario_id = 'r1'"), 0,
		    "r1 stays disabled");
		is_int(store_policy_set_enabled(st, "r1", true, &op, NULL), 0,
		    "operator enables r1 again");
		is_int(store_policy_get(st, "r1", narrow), 0, "r1 read");
		narrow->n_ports = 1;	/* 443 only */
		narrow->revision = 0;
		narrow->revision_given = false;
		is_int(store_policy_put(st, narrow, &op, &created, NULL), 0,
		    "operator narrows r1 to one port");
		is_int(handle_str(st, BRIDGE_SUBJECT_CREATED, r1), BRIDGE_UNCHANGED,
		    "r1's created redelivered again");
		is_int(store_policy_get(st, "r1", p), 0, "r1 read again");
		is_int(p->n_ports, 1, "r1 stays narrowed");
		is_int(store_policy_delete(st, "r2", &op, NULL), 0, "operator deletes r2");
		is_int(handle_str(st, BRIDGE_SUBJECT_CREATED, r2), BRIDGE_UNCHANGED,
		    "r2's created redelivered");
		is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 'r2'"), 0,
		    "r2 stays deleted");
		is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
		    "{\"scenario_id\":\"r2\",\"track\":\"netplus\"}"), BRIDGE_CHANGED,
		    "a different created event for r2 applies");
		is_int(testdb_int(st, "SELECT count(*) FROM scenario_event_digests"
		    " WHERE scenario_id = 'r2'"), 2, "both r2 events recorded");
		policy_free(narrow);
	}

	/* Completion, idempotent, and no reopening. */
	is_int(handle_str(st, BRIDGE_SUBJECT_COMPLETED, "{\"scenario_id\":\"s1\"}"),
	    BRIDGE_CHANGED, "completed changes");
	is_int(store_policy_get(st, "s1", p), 0, "s1 still there");
	ok(!p->enabled, "completed -> disabled (fail closed)");
	ok(p->completed_at[0] != '\0', "completed_at set");
	is_int(handle_str(st, BRIDGE_SUBJECT_COMPLETED, "{\"scenario_id\":\"s1\"}"),
	    BRIDGE_UNCHANGED, "redelivered completed is unchanged");
	is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
	    "{\"scenario_id\":\"s1\",\"network_id\":\"n1\",\"track\":\"cissp\"}"),
	    BRIDGE_UNCHANGED, "late created does not reopen a completed scenario");
	is_int(testdb_int(st, "SELECT enabled FROM policies WHERE scenario_id = 's1'"), 0,
	    "s1 stays disabled");

	/* Completed before created: tombstone. */
	is_int(handle_str(st, BRIDGE_SUBJECT_COMPLETED,
	    "{\"scenario_id\":\"s5\",\"network_id\":\"n5\",\"timestamp\":\"2026-01-01T00:00:00Z\"}"),
	    BRIDGE_CHANGED, "completed for an unknown scenario");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 's5'"
	    " AND enabled = 0 AND completed_at IS NOT NULL"), 1, "tombstone is disabled+completed");
	is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
	    "{\"scenario_id\":\"s5\",\"track\":\"cissp\"}"),
	    BRIDGE_UNCHANGED, "created after its completion is ignored");
	is_int(testdb_int(st, "SELECT enabled FROM policies WHERE scenario_id = 's5'"), 0,
	    "s5 stays disabled");
	/* A tombstone whose network_id derives a live scenario's interface
	 * is kept without that network_id: it claims nothing. */
	is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
	    "{\"scenario_id\":\"live7\",\"network_id\":\"n7\",\"track\":\"cissp\"}"),
	    BRIDGE_CHANGED, "live7 derives br-n7");
	is_int(handle_str(st, BRIDGE_SUBJECT_COMPLETED,
	    "{\"scenario_id\":\"s7\",\"network_id\":\"n7\"}"),
	    BRIDGE_CHANGED, "completed for an unknown scenario on live7's network");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 's7'"
	    " AND enabled = 0 AND completed_at IS NOT NULL AND network_id = ''"
	    " AND derived_iface IS NULL"), 1,
	    "its tombstone is disabled+completed, with no network and no claim");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 'live7'"
	    " AND enabled = 1 AND derived_iface = 'br-n7'"), 1, "live7 keeps its claim");
	is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
	    "{\"scenario_id\":\"s7\",\"network_id\":\"n7\",\"track\":\"cissp\"}"),
	    BRIDGE_UNCHANGED, "s7's late created is ignored");
	{
		struct store_actor op = { .actor = "test-operator" };

		store_policy_delete(st, "live7", &op, NULL);
		store_policy_delete(st, "s7", &op, NULL);
	}

	/* Retention removes the completed scenarios; their created events
	 * replayed (a consumer re-created with "deliver all") stay done. */
	is_int(testdb_int(st, "SELECT count(*) FROM scenario_event_digests"
	    " WHERE scenario_id IN ('s1', 's5')"), 5,
	    "s1's two created events, s5's ignored one and the completion of"
	    " each are recorded");
	store_exec(st, "UPDATE policies SET completed_at = '2020-01-01T00:00:00.000Z'"
	    " WHERE scenario_id IN ('s1', 's5')");
	is_int(store_policy_expire_completed(st, 60, NULL), 0, "retention expires s1 and s5");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id IN ('s1', 's5')"),
	    0, "s1 and s5 gone");
	is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
	    "{\"scenario_id\":\"s1\",\"network_id\":\"n1\",\"track\":\"cissp\"}"),
	    BRIDGE_UNCHANGED, "s1's first created replayed after expiry");
	is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
	    "{\"scenario_id\":\"s5\",\"track\":\"cissp\"}"),
	    BRIDGE_UNCHANGED, "s5's created replayed after expiry");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id IN ('s1', 's5')"),
	    0, "neither comes back");

	/* Every invalid shape: rejected, recorded, no change. */
	for (size_t i = 0; i < n_bad; i++) {
		int64_t pol0 = testdb_int(st, "SELECT count(*) FROM policies");
		int64_t rej0 = testdb_int(st, "SELECT count(*) FROM outbox WHERE type = 'event.rejected'");
		int64_t g0, g1;

		store_generation(st, &g0, NULL);
		is_int(handle_str(st, bad[i].subject, bad[i].body), BRIDGE_REJECTED,
		    "rejected: %s", bad[i].why);
		is_int(testdb_int(st, "SELECT count(*) FROM outbox WHERE type = 'event.rejected'"),
		    rej0 + 1, "recorded: %s", bad[i].why);
		is_int(testdb_int(st, "SELECT count(*) FROM policies"), pol0,
		    "no policy added: %s", bad[i].why);
		store_generation(st, &g1, NULL);
		is_int(g1, g0, "generation unchanged: %s", bad[i].why);
	}
	/* A NUL byte inside the body, and a body over the size limit. */
	is_int(handle(st, BRIDGE_SUBJECT_CREATED, "{\"scenario_id\":\"z\0\"}",
	    sizeof("{\"scenario_id\":\"z\0\"}") - 1),
	    BRIDGE_REJECTED, "NUL byte rejected");
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"scenario_id\":\"big\"", 20);
	big[sizeof(big) - 1] = '}';
	is_int(handle(st, BRIDGE_SUBJECT_CREATED, big, sizeof(big)), BRIDGE_REJECTED,
	    "oversize body rejected");
	is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 'big'"), 0,
	    "oversize body stored nothing");
	is_int(testdb_int(st, "SELECT count(*) FROM outbox WHERE type = 'event.rejected'"
	    " AND json_extract(payload, '$.reason') IS NOT NULL"
	    " AND json_extract(payload, '$.subject') LIKE 'scenario.%'"),
	    (int64_t)n_bad + 2, "every rejection has a reason and the subject");
	is_int(testdb_int(st, "SELECT count(*) FROM outbox WHERE type = 'event.rejected'"
	    " AND scenario_id = 'x5'"), 1, "unknown profile recorded with its scenario id");

	test_stream_order(st);
	test_completion_order(st);
	test_claim_wait(st);
	is_int(testdb_int(st, "SELECT count(*) FROM scenario_event_digests WHERE"
	    " scenario_id = 'ord' AND stream = 'SCN' AND stream_seq = 7 AND"
	    " stream_ts = 7000"), 1, "order: an accepted message's place is recorded");
	is_int(testdb_int(st, "SELECT count(*) FROM scenario_event_digests WHERE"
	    " scenario_id = 'ord' AND stream_seq = 6 AND stream = 'SCN'"), 0,
	    "order: a superseded message is not recorded");

	/* After the API writer marked a failed flush of the WAL
	 * (flushmark.h), nothing is written before the checkpoint: while a
	 * reader keeps it from finishing the event comes back; then it runs,
	 * the mark goes and the event is applied. */
	{
		char mark[256];
		sqlite3 *reader = NULL;
		FILE *f;

		snprintf(cfg.run_dir, sizeof(cfg.run_dir), "%s", dir);
		snprintf(mark, sizeof(mark), "%s/" CONFIG_WRITER_UNSYNCED, dir);
		f = fopen(mark, "w");
		ok(f != NULL && fclose(f) == 0, "flush: a failed flush marked");
		ok(sqlite3_open_v2(path, &reader, SQLITE_OPEN_READONLY, NULL) ==
		    SQLITE_OK && sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM"
		    " policies", NULL, NULL, NULL) == SQLITE_OK,
		    "flush: a reader holds a snapshot");
		is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
		    "{\"scenario_id\":\"fl1\"}"), BRIDGE_RETRY,
		    "flush: no checkpoint possible: the event comes back");
		is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE"
		    " scenario_id = 'fl1'"), 0, "... with nothing written");
		ok(access(mark, F_OK) == 0, "... and the mark kept");
		sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL);
		sqlite3_close(reader);
		is_int(handle_str(st, BRIDGE_SUBJECT_CREATED,
		    "{\"scenario_id\":\"fl1\"}"), BRIDGE_CHANGED,
		    "flush: with the checkpoint done, the event is applied");
		ok(access(mark, F_OK) != 0, "... and the mark removed");
		is_int(testdb_int(st, "SELECT count(*) FROM policies WHERE"
		    " scenario_id = 'fl1'"), 1, "... fl1 stored");
	}

	policy_free(p);
	store_close(st);
	{
		char cmd[160];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			tap_diag("could not remove %s", dir);
	}
	return tap_done();
}
