/* SPDX-License-Identifier: MIT */
/*
 * This file contains the NATS bridge: scenario events into policies, the
 * outbox out to audit.egress.
 *
 * Invariants:
 * - SQLite is touched only by the bridge_run() thread.  cnats callbacks
 *   (message delivery, publish acks, connection events) take b->mu, record
 *   or queue, signal and return.
 * - A scenario event is acked only after its change is committed; a
 *   rejected event is terminated only after its "event.rejected" row is
 *   committed; anything else is NAKed and comes back.
 * - An outbox row is marked delivered only when it and every row before it
 *   in the batch were acked (JetStream) or flushed (core).
 * - The AUDIT stream never stores a row ahead of an earlier one that it
 *   lacks, so it holds the outbox in id order with no gaps.  With many
 *   publishes in flight, one can fail while later ones succeed (a server
 *   restart, a cluster leader change), and cnats replays the one publish
 *   it buffered while disconnected (its reconnect buffer admits a message
 *   whenever it is empty, whatever its size).  So the server enforces the
 *   order: every publish but a window's first carries
 *   Nats-Expected-Last-Msg-Id, its predecessor's event id, and is refused
 *   unless that is the last message in the stream.  A window's first row
 *   follows rows already acked, or rows the stream's last message shows
 *   are stored (while the stream cannot be asked, nothing is published).
 *   Another publisher on the stream (it holds audit.*) makes the next
 *   publish fail that check; after such a refusal publishes go one at a
 *   time, which needs no check, for BRIDGE_SERIAL_MS.  After a failure the
 *   stream's last message id tells which rows already made it (sound
 *   because there are no gaps), so a retry does not rely on the
 *   de-duplication window alone.
 */
#include "nats_bridge.h"
#include "applier_client.h"
#include "audit.h"
#include "codec.h"
#include "digest.h"
#include "err.h"
#include "flushmark.h"
#include "log.h"
#include "policy.h"
#include "store_component.h"
#include "store_events.h"
#include "store_outbox.h"
#include "store_policy.h"
#include "timefmt.h"


#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BRIDGE_QUEUE_MAX 1024		/* received, not yet handled */
#define BRIDGE_BATCH 256		/* outbox rows per core publish round */
#define BRIDGE_WINDOW 2048		/* JetStream: rows published, not yet acked */
#define BRIDGE_FETCH 512		/* JetStream: rows fetched per refill */
#define BRIDGE_MARK_MIN 256		/* acked rows per delivery commit ... */
#define BRIDGE_MARK_DELAY_MS 20		/* ... or after this long */
#define BRIDGE_EVENTS_PER_ROUND 64	/* events handled between batches */
#define BRIDGE_POLL_MS 50		/* outbox poll (PRAGMA data_version) */
#define BRIDGE_HEARTBEAT_MS 2000
#define BRIDGE_EXPIRE_MS 2000
#define BRIDGE_PRUNE_MS 60000
#define BRIDGE_RECHECK_MS 30000		/* re-detect JetStream, streams, consumers */
#define BRIDGE_ACK_WAIT_MS 5000		/* publish ack deadline per batch */
#define BRIDGE_SERIAL_MS 60000		/* one at a time after a refusal */
#define BRIDGE_FLUSH_WAIT_MS 1000	/* one at a time: push it out */
#define BRIDGE_BACKOFF_MIN_MS 100
#define BRIDGE_BACKOFF_MAX_MS 10000
#define BRIDGE_PUT_ATTEMPTS 5		/* lock waits of a created event's write */
#define BRIDGE_RECONNECT_MAX_MS 5000
#define BRIDGE_NAK_DELAY_MS 1000
#define BRIDGE_CONSUMER_ACK_WAIT_S 30
#define BRIDGE_CONSUMER_MAX_ACK_PENDING 256
#define BRIDGE_AUDIT_DUPLICATES_S 600	/* dedup window of a created AUDIT */
#define BRIDGE_NAME_MAX 64

enum { KIND_CREATED = 0, KIND_COMPLETED = 1, KIND_N = 2 };

static const char *const kind_subject[KIND_N] = {
	BRIDGE_SUBJECT_CREATED, BRIDGE_SUBJECT_COMPLETED
};
static const char *const kind_durable[KIND_N] = {
	BRIDGE_DURABLE_CREATED, BRIDGE_DURABLE_COMPLETED
};

enum pend_state { PEND_WAIT = 0, PEND_ACKED, PEND_FAILED };

struct bridge_pend {
	int64_t id;			/* outbox row */
	int64_t sent_ms;
	char event_id[OUTBOX_EVENT_ID_LEN];
	enum pend_state state;
	natsStatus err;
	int js_err;
	char why[128];
};

struct bridge_sub {
	struct bridge *b;
	int kind;
	natsSubscription *sub;
	bool js;			/* bound to a durable consumer */
	char stream[BRIDGE_NAME_MAX];
};

struct bridge {
	const struct config *cfg;
	struct store *st;
	natsOptions *opts;
	natsConnection *nc;
	jsCtx *js;
	struct bridge_sub subs[KIND_N];

	pthread_mutex_t mu;
	pthread_cond_t wake;		/* queue got an item / state changed */
	pthread_cond_t space;		/* queue has room */
	pthread_cond_t acked;		/* a publish ack arrived */
	/* Under mu: */
	natsMsg *queue[BRIDGE_QUEUE_MAX];
	int queue_kind[BRIDGE_QUEUE_MAX];
	size_t q_head, q_len;
	bool stopping;
	bool closed;			/* the closed callback ran */
	bool connected;
	bool need_setup;
	uint64_t reconnects;
	/* JetStream publish window, in outbox order: published rows wait
	 * here for their ack; the acked head is marked delivered. */
	struct bridge_pend ring[BRIDGE_WINDOW];
	size_t r_head, r_len, r_hint;
	uint64_t acks;			/* ring changes, for waits on acked */

	/* Main thread only: */
	bool setup_done;
	bool jetstream;
	/* audit_known: the audit mode was decided; until then nothing is
	 * published (a guess of "core" marks rows delivered that no stream
	 * ever stored). */
	bool audit_known;
	bool audit_js;
	char audit_stream[BRIDGE_NAME_MAX];
	bool check_stream;		/* after a failed batch: skip what is stored */
	char prev_event_id[OUTBOX_EVENT_ID_LEN];	/* window's newest */
	int64_t serial_until_ms;	/* someone else publishes to the stream */
	int64_t last_sent_id;		/* newest row in the window */
	bool outbox_more;		/* last fetch was full, or a retry is due */
	int64_t data_version;
	int64_t next_setup_ms, next_publish_ms, next_heartbeat_ms;
	int64_t next_expire_ms, next_prune_ms, next_recheck_ms;
	unsigned setup_backoff_ms, publish_backoff_ms;
	struct bridge_stats stats;
	char last_error[256];
};

/* ------------------------------------------------------------------ */
/* Event validation and application (no NATS here)                    */

/* JSON pointer of a top-level member ("~" -> "~0", "/" -> "~1"). */
static void
bridge_member_path(char *out, size_t size, const char *key)
{
	size_t n = 0;

	if (size < 2)
		return;
	out[n++] = '/';
	for (; *key && n + 3 < size; key++) {
		if (*key == '~' || *key == '/') {
			out[n++] = '~';
			out[n++] = *key == '~' ? '0' : '1';
		} else {
			out[n++] = *key;
		}
	}
	out[n] = '\0';
}

/* A member that is present and not JSON null. */
static struct json_object *
bridge_member(struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

static bool
bridge_is_string(struct json_object *v)
{
	/* A string with an embedded NUL is not one: every check after this
	 * one would stop at the NUL ("victim\u0000x" would act on "victim"). */
	return v != NULL && json_object_is_type(v, json_type_string) &&
	    strlen(json_object_get_string(v)) == (size_t)json_object_get_string_len(v);
}

/*
 * Created messages waiting for a claim's holder to complete, by stream
 * place, with the delivery at which each first lost the claim: the wait
 * is BRIDGE_CLAIM_WAIT_DELIVERIES deliveries from there, not from the
 * message's first delivery, which a database fault or a stuck bridge may
 * have used up already.  Only the thread that handles events touches it.
 * A slot not seen for BRIDGE_CLAIM_WAITER_TTL_MS is free again; with no
 * free slot a message counts from its first delivery, so nothing waits
 * longer than that either way.
 */
#define BRIDGE_CLAIM_WAITERS 256
#define BRIDGE_CLAIM_WAITER_TTL_MS (10 * 60 * 1000)
static struct {
	uint64_t stream_hash;	/* 0: a free slot */
	int64_t seq;
	uint64_t first;		/* delivery count at the first lost claim */
	int64_t seen_ms;
} bridge_claim_waiters[BRIDGE_CLAIM_WAITERS];

static uint64_t
bridge_stream_hash(const char *name)
{
	uint64_t h = UINT64_C(1469598103934665603);	/* FNV-1a */

	for (; *name != '\0'; name++) {
		h ^= (unsigned char)*name;
		h *= UINT64_C(1099511628211);
	}
	return h | 1;
}

/* The slot of @pos's message, a new one when @create, or -1. */
static int
bridge_claim_slot(const struct store_event_pos *pos, bool create)
{
	int64_t now = timefmt_monotonic_ms();
	uint64_t h;
	int free_slot = -1;

	if (pos == NULL)
		return -1;
	h = bridge_stream_hash(pos->stream);
	for (int i = 0; i < BRIDGE_CLAIM_WAITERS; i++) {
		bool taken = bridge_claim_waiters[i].stream_hash != 0 &&
		    now - bridge_claim_waiters[i].seen_ms < BRIDGE_CLAIM_WAITER_TTL_MS;

		if (taken && bridge_claim_waiters[i].stream_hash == h &&
		    bridge_claim_waiters[i].seq == pos->seq)
			return i;
		if (!taken && free_slot < 0)
			free_slot = i;
	}
	if (!create || free_slot < 0)
		return -1;
	bridge_claim_waiters[free_slot].stream_hash = h;
	bridge_claim_waiters[free_slot].seq = pos->seq;
	bridge_claim_waiters[free_slot].first = 0;
	return free_slot;
}

/* How many deliveries @pos's message has had since it first lost a
 * claim, this one included (1: the first time). */
static uint64_t
bridge_claim_waited(const struct store_event_pos *pos, uint64_t delivered)
{
	int i = bridge_claim_slot(pos, true);

	if (i < 0)
		return delivered;
	if (bridge_claim_waiters[i].first == 0 ||
	    bridge_claim_waiters[i].first > delivered)
		bridge_claim_waiters[i].first = delivered;
	bridge_claim_waiters[i].seen_ms = timefmt_monotonic_ms();
	return delivered - bridge_claim_waiters[i].first + 1;
}

static void
bridge_claim_forget(const struct store_event_pos *pos)
{
	int i = bridge_claim_slot(pos, false);

	if (i >= 0)
		bridge_claim_waiters[i].stream_hash = 0;
}

/* One transaction for an event's changes and its record (a batch: each
 * change on its own savepoint). */
static int
bridge_batch_begin(struct store *st, const struct config *cfg, bool *queued)
{
	int rc;

	/* After the API writer saw a flush of the WAL fail, nothing is
	 * written before its checkpoint (this connection's own flush would
	 * not report the error again): the event comes back (NAK). */
	if ((rc = flushmark_settle(cfg, st)) != 0)
		return rc;
	/* A batch's begin waits for the lock once; retry it as a put's own
	 * transaction would (store_policy.h), rather than NAK at once. */
	for (int attempt = 0; ; attempt++) {
		rc = store_policy_batch_begin(st, queued);
		if (rc != EGW_E_BUSY || attempt + 1 >= BRIDGE_PUT_ATTEMPTS)
			return rc;
		usleep(5000 * (useconds_t)(attempt + 1));
	}
}

/*
 * Acts on the policy and records @digest in one transaction, so a
 * redelivery after a crash between the two cannot happen unrecorded.
 */
static int
bridge_put_recorded(struct store *st, const struct config *cfg,
    struct policy *p, const struct store_actor *actor, const char *digest,
    const struct store_event_pos *pos, bool *created,
    struct policy_errors *errs)
{
	bool queued;
	int rc, rc_end;

	if ((rc = bridge_batch_begin(st, cfg, &queued)) != 0)
		return rc;
	rc = store_policy_put(st, p, actor, created, errs);
	if (rc == 0)
		rc = store_event_record(st, p->scenario_id, digest, pos);
	rc_end = store_policy_batch_end(st, queued, rc == 0);
	return rc != 0 ? rc : rc_end;
}

static int
bridge_created(struct store *st, const struct config *cfg,
    struct json_object *obj, const char *digest,
    const struct store_event_pos *pos, uint64_t delivered,
    const struct store_actor *actor, struct policy_errors *errs,
    enum bridge_outcome *outcome)
{
	static const char *const extra[] = { "track", NULL };
	char profile[POLICY_PROFILE_MAX + 1];
	const char *track = NULL;
	struct json_object *v;
	struct policy *p = NULL, *old = NULL;
	bool created = false, had_old = false, seen;
	int rc;

	if ((v = bridge_member(obj, "track")) != NULL) {
		if (!bridge_is_string(v) ||
		    !policy_valid_id(json_object_get_string(v), POLICY_PROFILE_MAX, false)) {
			policy_errors_add(errs, "/track", "must be a string of 1-%d "
			    "letters, digits, '_', '.', ':' or '-'", POLICY_PROFILE_MAX);
			return EGW_E_INVALID;
		}
		track = json_object_get_string(v);
	}
	/* An explicit profile wins over the track mapping. */
	if (bridge_member(obj, "profile") == NULL) {
		if ((rc = store_track_profile(st, track, profile)) != 0)
			return rc == EGW_E_INVALID ? EGW_E_DB : rc;
		json_object_object_add(obj, "profile", json_object_new_string(profile));
	}
	if ((p = policy_new()) == NULL || (old = policy_new()) == NULL) {
		rc = EGW_E_NOMEM;
		goto out;
	}
	if ((rc = codec_policy_from_object(obj, extra, p, errs)) != 0 ||
	    (rc = policy_validate_for_gateway(cfg, p, errs)) != 0)
		goto out;
	/* Events carry no optimistic lock; the stream order is the order. */
	p->revision = 0;
	p->revision_given = false;

	/*
	 * The same message again (at-least-once delivery): acting on it now
	 * would undo what happened since, e.g. re-enable a policy an operator
	 * disabled or re-create one that was deleted.
	 */
	if ((rc = store_event_seen(st, p->scenario_id, digest, &seen)) != 0)
		goto out;
	/* ... unless the producer said this, then something else, and now
	 * this again: its newest word, which applies. */
	if (seen && pos != NULL) {
		bool returned;

		if ((rc = store_event_returned(st, p->scenario_id, digest, pos,
		    &returned)) != 0)
			goto out;
		if (returned) {
			log_info("scenario %s: created event %s:%lld repeats a body"
			    " accepted before another one; applied as the newest",
			    p->scenario_id, pos->stream, (long long)pos->seq);
			seen = false;
		}
	}
	if (seen) {
		log_info("scenario %s: this created event was acted on before; "
		    "ignored", p->scenario_id);
		/* still the producer's latest word: an older message that
		 * comes back after it must not undo it */
		if (pos != NULL)
			rc = store_event_record(st, p->scenario_id, digest,
			    pos);
		*outcome = BRIDGE_UNCHANGED;
		goto out;
	}
	/* Older than one acted on already: the producer's intent moved on
	 * while this one waited for its redelivery. */
	if (pos != NULL &&
	    (rc = store_event_superseded(st, p->scenario_id, pos, &seen)) != 0)
		goto out;
	if (seen) {
		log_info("scenario %s: created event %s:%lld is older than one "
		    "acted on already; ignored", p->scenario_id, pos->stream,
		    (long long)pos->seq);
		*outcome = BRIDGE_UNCHANGED;
		goto out;
	}
	rc = store_policy_get(st, p->scenario_id, old);
	/* A child row edited into nonsense: the put rewrites them all. */
	if (rc == EGW_E_BADROW)
		rc = 0;
	if (rc == 0) {
		had_old = true;
		if (old->completed_at[0] != '\0') {
			/* A late or redelivered created event must not reopen a
			 * completed scenario (store_policy_put would), nor once
			 * retention has removed it. */
			log_info("scenario %s is completed; created event ignored",
			    p->scenario_id);
			rc = store_event_record(st, p->scenario_id, digest,
			    pos);
			*outcome = BRIDGE_UNCHANGED;
			goto out;
		}
	} else if (rc != EGW_E_NOTFOUND) {
		goto out;
	}
	rc = bridge_put_recorded(st, cfg, p, actor, digest, pos, &created, errs);
	if (rc == EGW_E_CONFLICT)
		rc = EGW_E_INVALID;	/* not retryable; recorded as rejected */
	/* Counted in this consumer's deliveries, not by the message's age:
	 * a successor that waited in the stream while the gateway was down
	 * still waits for the completion replayed by the other consumer. */
	if (rc == EGW_E_INVALID && errs->claimed && delivered > 0) {
		uint64_t waited = bridge_claim_waited(pos, delivered);

		if (waited < BRIDGE_CLAIM_WAIT_DELIVERIES) {
			if (waited == 1)
				log_info("scenario %s: %s; redelivered up to %d"
				    " times for that scenario's completion",
				    p->scenario_id, errs->count > 0 ?
				    errs->items[0].reason :
				    "held by another scenario",
				    BRIDGE_CLAIM_WAIT_DELIVERIES);
			policy_errors_init(errs);
			*outcome = BRIDGE_RETRY;
			rc = 0;
			goto out;
		}
	}
	bridge_claim_forget(pos);
	if (rc != 0)
		goto out;
	*outcome = created || !had_old || p->generation != old->generation
	    ? BRIDGE_CHANGED : BRIDGE_UNCHANGED;
out:
	policy_free(p);
	policy_free(old);
	return rc;
}

/*
 * A completion is recorded as a message the scenario acted on, under its
 * own digest (@digest: of the subject and the body, so that it never
 * equals a created body's), with its place in the stream: a created
 * message older than it is then stale (store_event_superseded()), also
 * once retention or another scenario's claim has removed the completed
 * row.  The tombstone, the completion and the record are one transaction.
 */
static int
bridge_completed(struct store *st, const struct config *cfg,
    struct json_object *obj,
    const char *digest, const struct store_event_pos *pos,
    const struct store_actor *actor, struct policy_errors *errs,
    enum bridge_outcome *outcome)
{
	static const char *const known[] = {
		"scenario_id", "network_id", "track", "timestamp", "completed_at", NULL
	};
	const char *sid = NULL, *nid = "";
	struct json_object *v;
	struct policy *p = NULL;
	struct policy_errors claim;
	char path[128];
	bool queued;
	int rc, rc_end;

	json_object_object_foreach(obj, key, val) {
		size_t i;

		for (i = 0; known[i] != NULL && strcmp(known[i], key) != 0; i++)
			;
		bridge_member_path(path, sizeof(path), key);
		if (known[i] == NULL)
			policy_errors_add(errs, path, "unknown field");
		else if (val != NULL && json_object_is_type(val, json_type_string) &&
		    !bridge_is_string(val))
			policy_errors_add(errs, path, "must not contain a NUL character");
		else if (val != NULL && !bridge_is_string(val))
			policy_errors_add(errs, path, "must be a string");
	}
	v = bridge_member(obj, "scenario_id");
	if (v == NULL)
		policy_errors_add(errs, "/scenario_id", "required");
	else if (bridge_is_string(v) && !policy_valid_id(json_object_get_string(v),
	    POLICY_SCENARIO_ID_MAX, false))
		policy_errors_add(errs, "/scenario_id", "must be 1-%d of A-Z a-z "
		    "0-9 _ . : -, starting with a letter or digit",
		    POLICY_SCENARIO_ID_MAX);
	else if (bridge_is_string(v))
		sid = json_object_get_string(v);
	v = bridge_member(obj, "network_id");
	if (bridge_is_string(v)) {
		if (!policy_valid_id(json_object_get_string(v), POLICY_NETWORK_ID_MAX, true))
			policy_errors_add(errs, "/network_id", "must be 0-%d of A-Z "
			    "a-z 0-9 _ . : -", POLICY_NETWORK_ID_MAX);
		else
			nid = json_object_get_string(v);
	}
	if (errs->count > 0 || errs->dropped > 0 || sid == NULL)
		return EGW_E_INVALID;

	if ((p = policy_new()) == NULL)
		return EGW_E_NOMEM;
	if ((rc = bridge_batch_begin(st, cfg, &queued)) != 0)
		goto out;
	rc = store_policy_get(st, sid, p);
	if (rc == EGW_E_BADROW)
		rc = 0;		/* completing needs the row, not its children */
	if (rc == 0 && p->completed_at[0] != '\0') {
		/* Its place still moves on to this message's. */
		rc = store_event_record(st, sid, digest, pos);
		*outcome = BRIDGE_UNCHANGED;
		goto end;
	}
	if (rc == EGW_E_NOTFOUND) {
		/* Completed before created (independent consumers, or the
		 * created event was lost): leave a disabled tombstone so the
		 * late created event finds a completed scenario. */
		policy_init(p);
		snprintf(p->scenario_id, sizeof(p->scenario_id), "%s", sid);
		snprintf(p->network_id, sizeof(p->network_id), "%s", nid);
		snprintf(p->profile, sizeof(p->profile), "none");
		p->enabled = false;
		policy_errors_init(&claim);
		rc = store_policy_put(st, p, actor, NULL, &claim);
		if (rc == EGW_E_INVALID && p->network_id[0] != '\0') {
			/* The interface its network_id derives is another
			 * live scenario's: a tombstone needs no claim. */
			p->network_id[0] = '\0';
			rc = store_policy_put(st, p, actor, NULL, errs);
			if (rc == 0)
				log_info("scenario %s: its tombstone is "
				    "stored without network_id %s: %s", sid,
				    nid, claim.count > 0 ?
				    claim.items[0].reason : "");
		} else if (rc != 0) {
			for (size_t i = 0; i < claim.count; i++)
				policy_errors_add(errs, claim.items[i].path,
				    "%s", claim.items[i].reason);
		}
		if (rc == EGW_E_CONFLICT)
			rc = EGW_E_INVALID;
		if (rc == 0)
			log_info("scenario %s completed before it was created; "
			    "storing a disabled tombstone", sid);
	}
	if (rc == 0)
		rc = store_policy_complete(st, sid, actor);
	if (rc == 0)
		rc = store_event_record(st, sid, digest, pos);
	if (rc == 0)
		*outcome = BRIDGE_CHANGED;
end:
	rc_end = store_policy_batch_end(st, queued, rc == 0);
	if (rc == 0)
		rc = rc_end;
out:
	policy_free(p);
	return rc;
}

/* The digest a completion is recorded under: of "scenario.completed",
 * a newline and the body's own digest. */
static int
bridge_completion_digest(const char *data, size_t len,
    char out[DIGEST_SHA256_HEX_LEN + 1])
{
	char text[sizeof(BRIDGE_SUBJECT_COMPLETED) + DIGEST_SHA256_HEX_LEN + 1];
	int rc, n;

	n = snprintf(text, sizeof(text), "%s\n", BRIDGE_SUBJECT_COMPLETED);
	if ((rc = digest_sha256_hex(data, len, text + n)) != 0)
		return rc;
	return digest_sha256_hex(text, strlen(text), out);
}

int
bridge_handle_event(struct store *st, const struct config *cfg,
    const char *subject, const char *data, size_t len, const char *request_id,
    const struct store_event_pos *pos, uint64_t delivered,
    enum bridge_outcome *outcome)
{
	size_t max_len = cfg->max_body;
	struct store_actor actor = { .actor = BRIDGE_ACTOR,
	    .request_id = request_id };
	struct policy_errors *errs;
	struct json_object *obj = NULL;
	const char *sid = NULL;
	int rc, rc2;

	*outcome = BRIDGE_RETRY;
	if ((errs = calloc(1, sizeof(*errs))) == NULL)
		return EGW_E_NOMEM;
	policy_errors_init(errs);
	if (len > max_len) {
		policy_errors_add(errs, "", "event larger than %zu bytes", max_len);
		rc = EGW_E_TOOLARGE;
	} else if ((rc = codec_parse_body(data, len, &obj, errs)) == 0) {
		char digest[DIGEST_SHA256_HEX_LEN + 1];

		if (strcmp(subject, BRIDGE_SUBJECT_CREATED) == 0) {
			if ((rc = digest_sha256_hex(data, len, digest)) == 0)
				rc = bridge_created(st, cfg, obj, digest, pos,
				    delivered, &actor, errs, outcome);
		} else if (strcmp(subject, BRIDGE_SUBJECT_COMPLETED) == 0) {
			if ((rc = bridge_completion_digest(data, len, digest)) == 0)
				rc = bridge_completed(st, cfg, obj, digest, pos,
				    &actor, errs, outcome);
		}
		else
			rc = EGW_E_INTERNAL;
	}
	if (rc == 0)
		goto out;
	if (rc != EGW_E_INVALID && rc != EGW_E_BADREQUEST && rc != EGW_E_TOOLARGE) {
		log_warnx("%s event%s%s: %s", subject,
		    request_id ? " " : "", request_id ? request_id : "",
		    err_message(rc));
		*outcome = BRIDGE_RETRY;
		goto out;
	}
	if (obj != NULL && json_object_is_type(obj, json_type_object)) {
		struct json_object *v = bridge_member(obj, "scenario_id");

		if (bridge_is_string(v) && json_object_get_string_len(v) <= POLICY_SCENARIO_ID_MAX)
			sid = json_object_get_string(v);
	}
	/* Nothing was written for the event itself (every store call above
	 * is its own transaction and failed whole); record why. */
	if ((rc2 = audit_rejected_event(st, subject, sid, rc, errs)) != 0) {
		log_warnx("cannot record rejected %s event: %s",
		    subject, err_message(rc2));
		*outcome = BRIDGE_RETRY;
		rc = rc2;
		goto out;
	}
	log_kv(LOG_LEVEL_WARN, ((const char *[]){ "subject", subject,
	    "request_id", request_id, "field",
	    errs->count > 0 ? errs->items[0].path : NULL,
	    "reason", errs->count > 0 ? errs->items[0].reason : err_message(rc),
	    NULL }), "event rejected");
	*outcome = BRIDGE_REJECTED;
	rc = 0;
out:
	json_object_put(obj);
	free(errs);
	return rc;
}

/* ------------------------------------------------------------------ */
/* cnats callbacks (cnats threads: lock, record, signal, return)       */

static int64_t
bridge_reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	int64_t d = BRIDGE_BACKOFF_MIN_MS;

	for (int i = 1; i < attempts && d < BRIDGE_RECONNECT_MAX_MS; i++)
		d *= 2;
	if (d > BRIDGE_RECONNECT_MAX_MS)
		d = BRIDGE_RECONNECT_MAX_MS;
	/* Up to 20% jitter so a fleet does not reconnect in step. */
	return d + (int64_t)(random() % (d / 5 + 1));
}

static void
bridge_on_connected(natsConnection *nc, void *closure)
{
	struct bridge *b = closure;

	/* Every callback's last touch of b is the unlock, so bridge_free()
	 * can tear down once the connection is closed. */
	log_info("connected to NATS");
	pthread_mutex_lock(&b->mu);
	b->connected = true;
	b->need_setup = true;
	pthread_cond_broadcast(&b->wake);
	pthread_mutex_unlock(&b->mu);
}

static void
bridge_on_reconnected(natsConnection *nc, void *closure)
{
	struct bridge *b = closure;

	log_info("reconnected to NATS");
	pthread_mutex_lock(&b->mu);
	b->connected = true;
	b->need_setup = true;	/* the server may have lost streams */
	b->reconnects++;
	pthread_cond_broadcast(&b->wake);
	pthread_mutex_unlock(&b->mu);
}

static void
bridge_on_disconnected(natsConnection *nc, void *closure)
{
	struct bridge *b = closure;

	pthread_mutex_lock(&b->mu);
	if (b->connected && !b->stopping)
		log_warnx("disconnected from NATS; reconnecting");
	b->connected = false;
	b->acks++;
	pthread_cond_broadcast(&b->acked);
	pthread_mutex_unlock(&b->mu);
}

static void
bridge_on_closed(natsConnection *nc, void *closure)
{
	struct bridge *b = closure;

	log_info("NATS connection closed");
	pthread_mutex_lock(&b->mu);
	b->connected = false;
	b->closed = true;
	pthread_cond_broadcast(&b->wake);
	pthread_mutex_unlock(&b->mu);
}

static void
bridge_on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
    void *closure)
{
	log_warnx("NATS asynchronous error: %s", natsStatus_GetText(err));
}

static void
bridge_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
    void *closure)
{
	struct bridge_sub *bs = closure;
	struct bridge *b = bs->b;

	pthread_mutex_lock(&b->mu);
	while (b->q_len == BRIDGE_QUEUE_MAX && !b->stopping)
		pthread_cond_wait(&b->space, &b->mu);
	if (b->stopping) {
		/* Not acked: JetStream redelivers it to the next run. */
		pthread_mutex_unlock(&b->mu);
		natsMsg_Destroy(msg);
		return;
	}
	size_t tail = (b->q_head + b->q_len) % BRIDGE_QUEUE_MAX;

	b->queue[tail] = msg;
	b->queue_kind[tail] = bs->kind;
	b->q_len++;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->mu);
}

static void
bridge_on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
    void *closure)
{
	struct bridge *b = closure;
	const char *id = NULL;

	if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK)
		id = NULL;
	pthread_mutex_lock(&b->mu);
	for (size_t k = 0; id != NULL && k < b->r_len; k++) {
		/* Acks come in order; start after the last one matched. */
		size_t off = (b->r_hint + k) % b->r_len;
		struct bridge_pend *pe = &b->ring[(b->r_head + off) % BRIDGE_WINDOW];

		if (pe->state != PEND_WAIT || strcmp(pe->event_id, id) != 0)
			continue;
		if (pa != NULL) {
			pe->state = PEND_ACKED;
		} else {
			pe->state = PEND_FAILED;
			pe->err = pae != NULL ? pae->Err : NATS_ERR;
			pe->js_err = pae != NULL ? (int)pae->ErrCode : 0;
			snprintf(pe->why, sizeof(pe->why), "%s",
			    pae != NULL && pae->ErrText != NULL ? pae->ErrText
			    : natsStatus_GetText(pe->err));
		}
		b->r_hint = off + 1;
		b->acks++;
		pthread_cond_broadcast(&b->acked);
		break;
	}
	pthread_mutex_unlock(&b->mu);
	natsMsg_Destroy(msg);
}

/* ------------------------------------------------------------------ */
/* Set-up: JetStream detection, streams, consumers, subscriptions      */

static void
bridge_set_error(struct bridge *b, const char *what, natsStatus s, int jerr)
{
	/* cnats keeps the server's description of a JetStream error as the
	 * thread's last error text. */
	const char *text = jerr != 0 ? nats_GetLastError(NULL) : NULL;

	if (jerr != 0)
		snprintf(b->last_error, sizeof(b->last_error), "%s: %s (JetStream error %d)",
		    what, text != NULL && text[0] != '\0' ? text
		    : natsStatus_GetText(s), jerr);
	else
		snprintf(b->last_error, sizeof(b->last_error), "%s: %s", what,
		    natsStatus_GetText(s));
}

static bool
bridge_connected(struct bridge *b)
{
	bool c;

	pthread_mutex_lock(&b->mu);
	c = b->connected;
	pthread_mutex_unlock(&b->mu);
	return c;
}

/*
 * The first stream that holds @subject.  Returns 0 with @name set, 0 with
 * @name "" when there is none, or -1 when the question could not be asked.
 */
static int
bridge_stream_for(struct bridge *b, const char *subject, char *name, size_t size)
{
	jsStreamNamesList *list = NULL;
	jsOptions jo;
	jsErrCode jerr = 0;
	natsStatus s;

	name[0] = '\0';
	jsOptions_Init(&jo);
	jo.Stream.Info.SubjectsFilter = subject;
	s = js_StreamNames(&list, b->js, &jo, &jerr);
	if (s == NATS_NOT_FOUND)
		return 0;
	if (s != NATS_OK) {
		bridge_set_error(b, "list streams", s, jerr);
		return -1;
	}
	if (list != NULL && list->Count > 0)
		snprintf(name, size, "%s", list->List[0]);
	jsStreamNamesList_Destroy(list);
	return 0;
}

static bool
bridge_detect_jetstream(struct bridge *b, bool *hard_error)
{
	jsAccountInfo *ai = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	*hard_error = false;
	s = js_GetAccountInfo(&ai, b->js, NULL, &jerr);
	if (s == NATS_OK) {
		jsAccountInfo_Destroy(ai);
		return true;
	}
	/* A timeout says nothing about JetStream; only an answer (or no
	 * responder at all) means it is absent.  Guessing "absent" would move
	 * audit events to core publish, which has no acks. */
	if (s == NATS_NO_RESPONDERS ||
	    jerr == JSNotEnabledErr || jerr == JSNotEnabledForAccountErr)
		return false;
	bridge_set_error(b, "JetStream account info", s, jerr);
	*hard_error = true;
	return false;
}

/* Publishes pipelined, each naming the one before it; or, while another
 * publisher is about, one at a time. */
static bool
bridge_pipelined(const struct bridge *b, int64_t now)
{
	return now >= b->serial_until_ms;
}

/* Audit events go out with core publish + flush. */
static int
bridge_audit_core(struct bridge *b)
{
	b->audit_known = true;
	b->audit_js = false;
	b->audit_stream[0] = '\0';
	return 0;
}

/* The audit mode cannot be decided now: publish nothing until it can. */
static int
bridge_audit_unknown(struct bridge *b)
{
	b->audit_known = false;
	b->audit_js = false;
	b->audit_stream[0] = '\0';
	return -1;
}

static int
bridge_setup_audit(struct bridge *b)
{
	char name[BRIDGE_NAME_MAX];
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	const char *subjects[] = { BRIDGE_AUDIT_SUBJECTS };
	natsStatus s;

	if (!b->jetstream)
		return bridge_audit_core(b);
	if (bridge_stream_for(b, OUTBOX_SUBJECT, name, sizeof(name)) != 0)
		return -1;
	if (name[0] == '\0' && b->cfg->create_streams) {
		jsStreamConfig_Init(&sc);
		sc.Name = BRIDGE_AUDIT_STREAM;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Retention = js_LimitsPolicy;
		sc.Duplicates = (int64_t)BRIDGE_AUDIT_DUPLICATES_S * 1000000000;
		/* Not unbounded on the NATS server's disk. */
		sc.MaxAge = (int64_t)b->cfg->audit_max_age_s * 1000000000;
		s = js_AddStream(&si, b->js, &sc, NULL, &jerr);
		if (s != NATS_OK) {
			/* JetStream is there, so core publish would lose what
			 * the stream should keep: wait and retry. */
			bridge_set_error(b, "create stream " BRIDGE_AUDIT_STREAM, s, jerr);
			log_warnx("%s; audit events wait in the outbox until the "
			    "stream can be created", b->last_error);
			return bridge_audit_unknown(b);
		}
		jsStreamInfo_Destroy(si);
		log_info("created stream %s on %s", BRIDGE_AUDIT_STREAM,
		    BRIDGE_AUDIT_SUBJECTS);
		snprintf(name, sizeof(name), "%s", BRIDGE_AUDIT_STREAM);
	}
	if (name[0] == '\0') {
		log_info("no stream holds %s (EGW_CREATE_STREAMS=false): audit "
		    "events use core NATS publish + flush", OUTBOX_SUBJECT);
		return bridge_audit_core(b);
	}
	snprintf(b->audit_stream, sizeof(b->audit_stream), "%s", name);
	b->audit_known = true;
	b->audit_js = true;
	return 0;
}

static void
bridge_unsubscribe(struct bridge_sub *bs)
{
	if (bs->sub == NULL)
		return;
	/* Destroy only: since cnats 3.4 that keeps a durable consumer (and
	 * ours are created by js_AddConsumer, never by the subscription). */
	if (!bs->js)
		natsSubscription_Unsubscribe(bs->sub);
	natsSubscription_Destroy(bs->sub);
	bs->sub = NULL;
	bs->js = false;
	bs->stream[0] = '\0';
}

/* The durable push consumer for @bs, created when absent.  Fills @queue
 * with its deliver group. */
static int
bridge_ensure_consumer(struct bridge *b, struct bridge_sub *bs,
    const char *stream, char *queue, size_t qsize)
{
	jsConsumerInfo *ci = NULL;
	jsConsumerConfig cc;
	jsErrCode jerr = 0;
	char deliver[128];
	natsStatus s;

	s = js_GetConsumerInfo(&ci, b->js, stream, kind_durable[bs->kind], NULL, &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
		snprintf(deliver, sizeof(deliver), "_egw.deliver.%s", kind_durable[bs->kind]);
		jsConsumerConfig_Init(&cc);
		cc.Durable = kind_durable[bs->kind];
		cc.Description = "forge egress gateway (egw-natsd)";
		cc.DeliverSubject = deliver;
		cc.DeliverGroup = BRIDGE_QUEUE_GROUP;
		cc.DeliverPolicy = js_DeliverAll;
		cc.AckPolicy = js_AckExplicit;
		cc.AckWait = (int64_t)BRIDGE_CONSUMER_ACK_WAIT_S * 1000000000;
		cc.MaxAckPending = BRIDGE_CONSUMER_MAX_ACK_PENDING;
		cc.FilterSubject = kind_subject[bs->kind];
		jerr = 0;
		s = js_AddConsumer(&ci, b->js, stream, &cc, NULL, &jerr);
		if (s == NATS_OK)
			log_info("created durable consumer %s on stream %s",
			    kind_durable[bs->kind], stream);
	}
	if (s != NATS_OK) {
		bridge_set_error(b, "consumer", s, jerr);
		return -1;
	}
	if (ci->Config == NULL || ci->Config->DeliverSubject == NULL ||
	    ci->Config->DeliverSubject[0] == '\0') {
		snprintf(b->last_error, sizeof(b->last_error), "consumer %s on %s "
		    "is a pull consumer; egw-natsd needs a push consumer",
		    kind_durable[bs->kind], stream);
		jsConsumerInfo_Destroy(ci);
		return -1;
	}
	/*
	 * One made by someone else must work the way ours do: explicit acks
	 * (with "all" an ack covers events negatively acknowledged before
	 * it, acked but never applied; with "none" nothing is redelivered),
	 * no delivery limit (a retried event would be dropped), only this
	 * subject (a created handler must not get completed events), and
	 * the messages' bodies.
	 */
	{
		const jsConsumerConfig *c = ci->Config;
		const char *bad = c->AckPolicy != js_AckExplicit
		    ? "its ack policy is not explicit"
		    : c->MaxDeliver > 0 ? "it limits deliveries (max_deliver)"
		    : c->FilterSubject == NULL ||
		    strcmp(c->FilterSubject, kind_subject[bs->kind]) != 0
		    ? "it does not filter on exactly this subject"
		    : c->HeadersOnly ? "it delivers headers only (every event"
		    " would arrive without its body and be rejected)" : NULL;

		if (bad != NULL) {
			snprintf(b->last_error, sizeof(b->last_error), "consumer %s "
			    "on %s: %s; egw-natsd does not use it (delete it, and "
			    "egw-natsd creates its own)", kind_durable[bs->kind],
			    stream, bad);
			jsConsumerInfo_Destroy(ci);
			return -1;
		}
	}
	snprintf(queue, qsize, "%s", ci->Config->DeliverGroup != NULL
	    ? ci->Config->DeliverGroup : "");
	jsConsumerInfo_Destroy(ci);
	return 0;
}

static int
bridge_setup_events(struct bridge *b, struct bridge_sub *bs)
{
	const char *subject = kind_subject[bs->kind];
	char stream[BRIDGE_NAME_MAX] = "", queue[BRIDGE_NAME_MAX];
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus s;

	if (b->jetstream && bridge_stream_for(b, subject, stream, sizeof(stream)) != 0)
		return -1;
	if (stream[0] != '\0') {
		if (bridge_ensure_consumer(b, bs, stream, queue, sizeof(queue)) != 0) {
			log_warnx("%s", b->last_error);
			return -1;
		}
		if (bs->sub != NULL && bs->js && strcmp(bs->stream, stream) == 0 &&
		    natsSubscription_IsValid(bs->sub))
			return 0;
		bridge_unsubscribe(bs);
		jsSubOptions_Init(&so);
		so.Stream = stream;
		so.Consumer = kind_durable[bs->kind];
		so.Queue = queue[0] != '\0' ? queue : NULL;
		so.ManualAck = true;
		s = js_Subscribe(&bs->sub, b->js, subject, bridge_on_msg, bs, NULL, &so, &jerr);
		if (s != NATS_OK) {
			bs->sub = NULL;
			bridge_set_error(b, "bind consumer", s, jerr);
			log_warnx("%s %s: %s", kind_durable[bs->kind], stream, b->last_error);
			return -1;
		}
		bs->js = true;
		snprintf(bs->stream, sizeof(bs->stream), "%s", stream);
		log_info("%s: durable consumer %s on stream %s", subject,
		    kind_durable[bs->kind], stream);
		return 0;
	}
	if (bs->sub != NULL && !bs->js && natsSubscription_IsValid(bs->sub))
		return 0;
	bridge_unsubscribe(bs);
	s = natsConnection_QueueSubscribe(&bs->sub, b->nc, subject,
	    BRIDGE_QUEUE_GROUP, bridge_on_msg, bs);
	if (s != NATS_OK) {
		bs->sub = NULL;
		bridge_set_error(b, "subscribe", s, 0);
		return -1;
	}
	bs->js = false;
	log_info("%s: core subscription (no stream holds the subject)", subject);
	return 0;
}

static int
bridge_setup(struct bridge *b)
{
	bool hard = false, jetstream;
	int rc = 0;

	jetstream = bridge_detect_jetstream(b, &hard);
	if (hard) {
		/* Keep what was set up; retried with backoff.  At the first
		 * set-up nothing was, and audit events wait (audit_known). */
		log_warnx("NATS set-up: %s; retrying%s", b->last_error,
		    b->audit_known ? "" : " (audit events wait in the outbox)");
		return -1;
	}
	b->jetstream = jetstream;
	/* Audit events may wait; scenario events must still come in. */
	if (bridge_setup_audit(b) != 0)
		rc = -1;
	for (int k = 0; k < KIND_N; k++) {
		if (bridge_setup_events(b, &b->subs[k]) != 0)
			rc = -1;
	}
	log_kv(LOG_LEVEL_INFO, ((const char *[]){
	    "jetstream", b->jetstream ? "true" : "false",
	    "audit", b->audit_js ? b->audit_stream : "core",
	    "created", b->subs[KIND_CREATED].js ? "durable" : "core",
	    "completed", b->subs[KIND_COMPLETED].js ? "durable" : "core",
	    NULL }), "NATS set-up %s", rc == 0 ? "done" : "incomplete");
	return rc;
}

/* ------------------------------------------------------------------ */
/* Scenario events                                                      */

/* Best effort: a lost nudge only costs the applier's poll interval. */
static void
bridge_nudge(struct bridge *b)
{
	(void)applier_client_nudge(b->cfg->applier_socket);
}

static void
bridge_dispatch(struct bridge *b, natsMsg *msg, int kind)
{
	const char *reply = natsMsg_GetReply(msg);
	bool js = reply != NULL && strncmp(reply, "$JS.ACK.", 8) == 0;
	enum bridge_outcome outcome;
	jsMsgMetaData *meta = NULL;
	struct store_event_pos pos = { 0 };
	uint64_t delivered = 0;
	char rid[320] = "core", stream[256];
	natsStatus s = NATS_OK;

	if (js && natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
		snprintf(rid, sizeof(rid), "js:%s:%" PRIu64, meta->Stream,
		    meta->Sequence.Stream);
		delivered = meta->NumDelivered;
		/* From the server, like the body: only a sane position counts
		 * (stream names are at most 255 bytes, JetStream's limit). */
		if (meta->Stream != NULL &&
		    strlen(meta->Stream) < sizeof(stream) &&
		    meta->Sequence.Stream > 0 &&
		    meta->Sequence.Stream <= INT64_MAX && meta->Timestamp > 0) {
			snprintf(stream, sizeof(stream), "%s", meta->Stream);
			pos.stream = stream;
			pos.seq = (int64_t)meta->Sequence.Stream;
			pos.ts_ns = meta->Timestamp;
		} else {
			log_warnx("%s has no usable stream position; "
			    "not ordered", rid);
		}
		jsMsgMetaData_Destroy(meta);
	}
	bridge_handle_event(b->st, b->cfg, kind_subject[kind], natsMsg_GetData(msg),
	    (size_t)natsMsg_GetDataLength(msg), rid, pos.stream ? &pos : NULL,
	    delivered, &outcome);
	b->stats.events++;
	switch (outcome) {
	case BRIDGE_CHANGED:
		b->stats.changes++;
		bridge_nudge(b);
		/* fall through */
	case BRIDGE_UNCHANGED:
		if (js)
			s = natsMsg_Ack(msg, NULL);
		break;
	case BRIDGE_REJECTED:
		b->stats.rejected++;
		if (js)
			s = natsMsg_Term(msg, NULL);
		break;
	case BRIDGE_RETRY:
		if (js) {
			s = natsMsg_NakWithDelay(msg, BRIDGE_NAK_DELAY_MS, NULL);
			log_info("%s: negatively acknowledged; JetStream"
			    " redelivers it in %d ms", rid, BRIDGE_NAK_DELAY_MS);
		} else {
			/* Core NATS keeps no copy to redeliver. */
			b->stats.dropped++;
			log_warnx("%s event over core NATS not applied and not"
			    " redelivered (no stream holds the subject): lost;"
			    " the producer must send it again",
			    kind_subject[kind]);
		}
		break;
	}
	/* A lost ack only means a redelivery, which changes nothing. */
	if (s != NATS_OK)
		log_warnx("ack of %s failed: %s", rid, natsStatus_GetText(s));
	b->data_version = -1;	/* our own commits wrote outbox rows */
	b->outbox_more = true;
	natsMsg_Destroy(msg);
}

static size_t
bridge_handle_queued(struct bridge *b)
{
	size_t n = 0;

	while (n < BRIDGE_EVENTS_PER_ROUND) {
		natsMsg *msg;
		int kind;

		pthread_mutex_lock(&b->mu);
		if (b->q_len == 0) {
			pthread_mutex_unlock(&b->mu);
			break;
		}
		msg = b->queue[b->q_head];
		kind = b->queue_kind[b->q_head];
		b->q_head = (b->q_head + 1) % BRIDGE_QUEUE_MAX;
		b->q_len--;
		pthread_cond_signal(&b->space);
		pthread_mutex_unlock(&b->mu);
		bridge_dispatch(b, msg, kind);
		n++;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* Outbox publisher                                                     */

static void
bridge_publish_backoff(struct bridge *b, int64_t now)
{
	if (b->publish_backoff_ms == 0)
		b->publish_backoff_ms = BRIDGE_BACKOFF_MIN_MS;
	else if (b->publish_backoff_ms < BRIDGE_BACKOFF_MAX_MS)
		b->publish_backoff_ms *= 2;
	if (b->publish_backoff_ms > BRIDGE_BACKOFF_MAX_MS)
		b->publish_backoff_ms = BRIDGE_BACKOFF_MAX_MS;
	b->next_publish_ms = now + b->publish_backoff_ms;
	b->outbox_more = true;
	b->stats.failed++;
}

/* Mark rows [0, n) delivered in one transaction; a row deleted since its
 * fetch (egw-flowlog's retention of flow events) is skipped. */
static int
bridge_mark_delivered(struct bridge *b, const struct outbox_event *ev, size_t n)
{
	int rc;

	if (n == 0)
		return 0;
	if ((rc = store_begin(b->st)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		rc = store_outbox_mark_delivered(b->st, ev[i].id);
		if (rc != 0 && rc != EGW_E_NOTFOUND) {
			store_rollback(b->st);
			return rc;
		}
	}
	if ((rc = store_commit(b->st)) != 0)
		return rc;
	b->stats.published += n;
	return 0;
}

/* A row gone since its fetch (egw-flowlog's retention deletes flow events,
 * delivered or not) has nothing left to record. */
static void
bridge_mark_failed(struct bridge *b, const struct outbox_event *ev,
    const char *why)
{
	int rc = store_outbox_mark_failed(b->st, ev->id, why);

	if (rc != 0 && rc != EGW_E_NOTFOUND)
		log_warnx("outbox row %" PRId64 ": cannot record failure: %s",
		    ev->id, err_message(rc));
}

/*
 * After a failed batch some rows may be in the stream although their ack
 * was lost.  The stream's last message on the subject says how far the
 * outbox got; returns how many leading rows of @ev are already stored, or
 * -1 when the stream could not be asked (then nothing may be republished:
 * the de-duplication window may have passed).
 */
static long
bridge_already_stored(struct bridge *b, const struct outbox_event *ev, size_t n)
{
	natsMsg *m = NULL;
	jsErrCode jerr = 0;
	const char *id = NULL;
	size_t k = 0;
	natsStatus s;

	s = js_GetLastMsg(&m, b->js, b->audit_stream, ev[0].subject, NULL, &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
		return 0;	/* nothing on the subject yet */
	if (s != NATS_OK) {
		bridge_set_error(b, "last audit message", s, jerr);
		return -1;
	}
	if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id != NULL) {
		for (size_t i = 0; i < n; i++) {
			if (strcmp(ev[i].event_id, id) == 0) {
				k = i + 1;
				break;
			}
		}
	}
	natsMsg_Destroy(m);
	return (long)k;
}

/*
 * Room for the headers a publish carries, which count against the server's
 * max_payload with the body (Nats-Msg-Id, and Nats-Expected-Last-Msg-Id
 * when chained: 130 bytes), and some to spare.
 */
#define BRIDGE_HEADER_ROOM 256

/*
 * The server refuses a message larger than its max_payload every time,
 * and the outbox goes strictly in order: one such row would hold back
 * every audit event behind it for good.  It is published as a stand-in
 * that names it (same event_id, type and scenario, its size, and
 * "truncated": true); the row itself keeps the whole payload.  Returns
 * NULL when the row fits.
 */
static char *
bridge_oversized_standin(struct bridge *b, const struct outbox_event *ev,
    size_t len)
{
	int64_t max = natsConnection_GetMaxPayload(b->nc);
	struct json_object *o;
	char *text;

	if (max <= 0 || (int64_t)len + BRIDGE_HEADER_ROOM <= max)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "timestamp", json_object_new_string(ev->created_at));
	json_object_object_add(o, "event_id", json_object_new_string(ev->event_id));
	json_object_object_add(o, "type", json_object_new_string(ev->type));
	json_object_object_add(o, "scenario_id", ev->scenario_id
	    ? json_object_new_string(ev->scenario_id) : NULL);
	json_object_object_add(o, "truncated", json_object_new_boolean(true));
	json_object_object_add(o, "payload_bytes", json_object_new_int64((int64_t)len));
	json_object_object_add(o, "max_payload", json_object_new_int64(max));
	json_object_object_add(o, "reason", json_object_new_string(
	    "larger than the NATS server's max_payload; the whole event is "
	    "the outbox row with this event_id"));
	text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	if (text != NULL && ev->attempts == 0 && b->last_sent_id < ev->id)
		log_warnx("outbox row %" PRId64 " (event %s, %zu bytes) is larger "
		    "than the server's max_payload of %" PRId64 "; publishing a "
		    "stand-in", ev->id, ev->event_id, len, max);
	return text;
}

static natsMsg *
bridge_outbox_msg(struct bridge *b, const struct outbox_event *ev)
{
	natsMsg *m = NULL;
	size_t len = strlen(ev->payload);
	char *standin = bridge_oversized_standin(b, ev, len);
	const char *data = standin ? standin : ev->payload;
	natsStatus s;

	s = natsMsg_Create(&m, ev->subject, NULL, data, (int)strlen(data));
	free(standin);
	if (s != NATS_OK)
		return NULL;
	if (natsMsgHeader_Set(m, "Nats-Msg-Id", ev->event_id) != NATS_OK) {
		natsMsg_Destroy(m);
		return NULL;
	}
	return m;
}

/* Forget the whole window (after a failure); the retry starts again at
 * the oldest undelivered row. */
static void
bridge_window_reset(struct bridge *b)
{
	natsMsgList pending = { 0 };

	pthread_mutex_lock(&b->mu);
	b->r_len = 0;
	b->r_hint = 0;
	pthread_mutex_unlock(&b->mu);
	b->last_sent_id = 0;
	/* Unacked messages are dropped, not resent by the library. */
	if (b->js != NULL && js_PublishAsyncGetPendingList(&pending, b->js) == NATS_OK)
		natsMsgList_Destroy(&pending);
}

static void
bridge_window_failed(struct bridge *b, int64_t now, int64_t id, const char *why,
    bool resetup)
{
	struct outbox_event ev = { .id = id };

	bridge_window_reset(b);
	bridge_mark_failed(b, &ev, why);
	snprintf(b->last_error, sizeof(b->last_error), "publish: %s", why);
	bridge_publish_backoff(b, now);
	b->check_stream = true;
	log_warnx("outbox row %" PRId64 " not delivered: %s; retry in %u ms",
	    id, why, b->publish_backoff_ms);
	if (resetup) {
		pthread_mutex_lock(&b->mu);
		b->need_setup = true;
		pthread_mutex_unlock(&b->mu);
	}
}

/*
 * Mark the acked head of the window delivered (one transaction) and pop
 * it.  Returns how many rows were marked, or -1 after a failure (window
 * reset).
 */
static long
bridge_window_harvest(struct bridge *b, int64_t now)
{
	static struct outbox_event done[BRIDGE_WINDOW];
	struct bridge_pend head = { 0 };
	bool failed = false, connected, few;
	size_t n = 0;
	int rc;

	pthread_mutex_lock(&b->mu);
	connected = b->connected;
	while (n < b->r_len) {
		const struct bridge_pend *pe = &b->ring[(b->r_head + n) % BRIDGE_WINDOW];

		if (pe->state != PEND_ACKED)
			break;
		done[n].id = pe->id;
		n++;
	}
	few = n > 0 && n < BRIDGE_MARK_MIN &&
	    now - b->ring[b->r_head].sent_ms < BRIDGE_MARK_DELAY_MS;
	if (n < b->r_len) {
		head = b->ring[(b->r_head + n) % BRIDGE_WINDOW];
		failed = head.state == PEND_FAILED || !connected ||
		    now - head.sent_ms > BRIDGE_ACK_WAIT_MS;
		/* Each mark is a commit (an fsync): gather a few hundred
		 * acks unless the window has drained or the oldest waited. */
		if (!failed && few)
			n = 0;
	} else if (few && !bridge_pipelined(b, now) && b->outbox_more) {
		/* One at a time, the window is drained after every ack. */
		n = 0;
	}
	pthread_mutex_unlock(&b->mu);

	if (n > 0) {
		if ((rc = bridge_mark_delivered(b, done, n)) != 0) {
			/* Published, not marked: the retry's stream check (or
			 * the de-duplication window) keeps them single. */
			bridge_window_failed(b, now, done[0].id, err_message(rc), false);
			return -1;
		}
		pthread_mutex_lock(&b->mu);
		b->r_head = (b->r_head + n) % BRIDGE_WINDOW;
		b->r_len -= n;
		b->r_hint = b->r_hint > n ? b->r_hint - n : 0;
		pthread_mutex_unlock(&b->mu);
		b->publish_backoff_ms = 0;
		b->check_stream = false;
	}
	if (failed) {
		char why[160];

		if (head.state == PEND_FAILED)
			snprintf(why, sizeof(why), "%s", head.why);
		else if (!connected)
			snprintf(why, sizeof(why), "connection lost before the ack");
		else
			snprintf(why, sizeof(why), "no ack within %d ms", BRIDGE_ACK_WAIT_MS);
		if (head.state == PEND_FAILED &&
		    head.js_err == JSStreamWrongLastMsgIDErr &&
		    bridge_pipelined(b, now)) {
			log_warnx("stream %s refused a publish out of turn: another "
			    "publisher writes to it; publishing one at a time for "
			    "%d s", b->audit_stream, BRIDGE_SERIAL_MS / 1000);
			b->serial_until_ms = now + BRIDGE_SERIAL_MS;
		}
		bridge_window_failed(b, now, head.id, why, head.state == PEND_FAILED &&
		    (head.err == NATS_NO_RESPONDERS || head.js_err == JSStreamNotFoundErr));
		return -1;
	}
	return (long)n;
}

/* Fetch the rows after the window and publish them asynchronously.
 * Returns how many were published. */
static long
bridge_window_fill(struct bridge *b, int64_t now)
{
	struct outbox_event *ev = NULL;
	size_t n = 0, space, skip = 0, sent = 0, want, limit;
	bool fresh, waiting, pipelined;
	jsPubOptions po;
	int rc;

	pthread_mutex_lock(&b->mu);
	space = BRIDGE_WINDOW - b->r_len;
	fresh = b->r_len == 0;
	waiting = !fresh &&
	    b->ring[(b->r_head + b->r_len - 1) % BRIDGE_WINDOW].state != PEND_ACKED;
	pthread_mutex_unlock(&b->mu);
	if (fresh) {
		b->last_sent_id = 0;
		b->prev_event_id[0] = '\0';
	}
	if ((pipelined = bridge_pipelined(b, now))) {
		if (space < BRIDGE_FETCH / 2)
			return 0;
		want = space < BRIDGE_FETCH ? space : BRIDGE_FETCH;
	} else {
		if (waiting)
			return 0;
		want = 1;
	}
	/* After a failure the last stored row may lie anywhere in the
	 * failed window, which started at the oldest undelivered row. */
	if (fresh && b->check_stream)
		want = space;
	rc = store_outbox_fetch(b->st, b->last_sent_id, want, &ev, &n);
	if (rc != 0) {
		log_warnx("outbox fetch: %s", err_message(rc));
		bridge_publish_backoff(b, now);
		return 0;
	}
	b->outbox_more = n == want;
	if (n > 0 && fresh && b->check_stream) {
		long stored = bridge_already_stored(b, ev, n);

		if (stored > 0) {
			log_info("%ld outbox rows were stored before the failure; "
			    "not republishing them", stored);
			if ((rc = bridge_mark_delivered(b, ev, (size_t)stored)) != 0) {
				snprintf(b->last_error, sizeof(b->last_error),
				    "marking stored rows delivered: %s",
				    err_message(rc));
				stored = -1;
			}
		}
		if (stored < 0) {
			/* Publishing now could store a row twice. */
			log_warnx("outbox: cannot tell what the stream holds "
			    "(%s); retrying", b->last_error);
			bridge_publish_backoff(b, now);
			store_outbox_events_free(ev, n);
			return 0;
		}
		skip = (size_t)stored;
		b->outbox_more = true;
	}
	limit = pipelined ? n : (skip < n ? skip + 1 : n);
	jsPubOptions_Init(&po);
	po.MaxWait = BRIDGE_ACK_WAIT_MS;
	for (size_t i = skip; i < limit; i++) {
		struct bridge_pend *pe;
		natsMsg *m;
		natsStatus s;

		if (!bridge_connected(b) || (m = bridge_outbox_msg(b, &ev[i])) == NULL)
			break;
		/* Into the window first: the ack may beat the return.  Its
		 * clock starts now, not when this pass began (set-up and
		 * queued events may have taken seconds since). */
		pthread_mutex_lock(&b->mu);
		pe = &b->ring[(b->r_head + b->r_len) % BRIDGE_WINDOW];
		pe->id = ev[i].id;
		pe->sent_ms = timefmt_monotonic_ms();
		memcpy(pe->event_id, ev[i].event_id, OUTBOX_EVENT_ID_LEN);
		pe->state = PEND_WAIT;
		pe->why[0] = '\0';
		b->r_len++;
		pthread_mutex_unlock(&b->mu);
		po.MsgId = ev[i].event_id;
		po.ExpectLastMsgId = pipelined && b->prev_event_id[0] != '\0'
		    ? b->prev_event_id : NULL;
		s = js_PublishMsgAsync(b->js, &m, &po);
		natsMsg_Destroy(m);	/* no-op when the library took it */
		if (s != NATS_OK) {
			pthread_mutex_lock(&b->mu);
			pe->state = PEND_FAILED;
			pe->err = s;
			pe->js_err = 0;
			snprintf(pe->why, sizeof(pe->why), "publish: %s",
			    natsStatus_GetText(s));
			pthread_mutex_unlock(&b->mu);
			sent++;
			break;
		}
		memcpy(b->prev_event_id, ev[i].event_id, OUTBOX_EVENT_ID_LEN);
		b->last_sent_id = ev[i].id;
		sent++;
	}
	/* One at a time, cnats' flusher would hold each publish back 1 ms
	 * for company; the ack is a round trip away anyway. */
	if (!pipelined && sent > 0)
		(void)natsConnection_FlushTimeout(b->nc, BRIDGE_FLUSH_WAIT_MS);
	if (skip + sent < n)
		b->outbox_more = true;	/* fetched, not yet published */
	store_outbox_events_free(ev, n);
	return (long)sent;
}

/* One step of the JetStream publisher; returns true when it made progress. */
static bool
bridge_window_step(struct bridge *b, int64_t now)
{
	long marked, sent = 0;
	uint64_t acks;
	size_t len;

	pthread_mutex_lock(&b->mu);
	acks = b->acks;
	pthread_mutex_unlock(&b->mu);
	if ((marked = bridge_window_harvest(b, now)) < 0)
		return false;
	if (now >= b->next_publish_ms && b->outbox_more && bridge_connected(b))
		sent = bridge_window_fill(b, now);
	pthread_mutex_lock(&b->mu);
	len = b->r_len;
	if (marked == 0 && sent == 0 && len > 0 && acks == b->acks) {
		/* Nothing to do but wait for acks (none came since the
		 * harvest); briefly, so scenario events are not held up. */
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&b->acked, &b->mu, &ts);
	}
	pthread_mutex_unlock(&b->mu);
	return marked > 0 || sent > 0 || len > 0;
}

/* Core NATS: publish then flush; all or nothing. */
static size_t
bridge_publish_core(struct bridge *b, const struct outbox_event *ev, size_t n,
    char *why, size_t whysize)
{
	natsStatus s = NATS_OK;

	for (size_t i = 0; i < n; i++) {
		natsMsg *m = bridge_outbox_msg(b, &ev[i]);

		if (m == NULL) {
			snprintf(why, whysize, "out of memory");
			return 0;
		}
		s = natsConnection_PublishMsg(b->nc, m);
		natsMsg_Destroy(m);
		if (s != NATS_OK) {
			snprintf(why, whysize, "publish: %s", natsStatus_GetText(s));
			return 0;
		}
	}
	s = natsConnection_FlushTimeout(b->nc, BRIDGE_ACK_WAIT_MS);
	if (s != NATS_OK) {
		snprintf(why, whysize, "flush: %s", natsStatus_GetText(s));
		return 0;
	}
	return n;
}

/* Core NATS round: up to BRIDGE_BATCH rows, publish + flush, all or none. */
static int
bridge_publish_round(struct bridge *b, int64_t now)
{
	struct outbox_event *ev = NULL;
	size_t n = 0, ok;
	char why[192] = "";
	int rc;

	if ((rc = store_outbox_fetch(b->st, 0, BRIDGE_BATCH, &ev, &n)) != 0) {
		log_warnx("outbox fetch: %s", err_message(rc));
		bridge_publish_backoff(b, now);
		return rc == EGW_E_BUSY ? 0 : rc;
	}
	b->outbox_more = n == BRIDGE_BATCH;
	if (n == 0)
		return 0;
	ok = bridge_publish_core(b, ev, n, why, sizeof(why));
	if (ok == n && (rc = bridge_mark_delivered(b, ev, n)) != 0) {
		log_warnx("outbox: cannot mark %zu rows delivered: %s", n,
		    err_message(rc));
		bridge_publish_backoff(b, now);
		rc = 0;
	} else if (ok < n) {
		bridge_mark_failed(b, &ev[0], why);
		snprintf(b->last_error, sizeof(b->last_error), "publish: %s", why);
		bridge_publish_backoff(b, now);
		log_warnx("outbox row %" PRId64 " not delivered: %s; retry in %u ms",
		    ev[0].id, why, b->publish_backoff_ms);
	} else {
		b->publish_backoff_ms = 0;
		b->next_publish_ms = 0;
	}
	store_outbox_events_free(ev, n);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Status, housekeeping, loop                                           */

static const char *
bridge_sub_mode(const struct bridge_stats *st, int kind)
{
	return st->events_js[kind] ? "durable" : st->events_core[kind] ? "core"
	    : "none";
}

static void
bridge_heartbeat(struct bridge *b, bool running)
{
	struct json_object *info;
	struct bridge_stats st;
	int64_t backlog = 0;

	if (store_outbox_backlog(b->st, &backlog) == 0)
		b->stats.backlog = backlog;
	bridge_get_stats(b, &st);
	info = json_object_new_object();
	json_object_object_add(info, "running", json_object_new_boolean(running));
	json_object_object_add(info, "connected", json_object_new_boolean(st.connected));
	json_object_object_add(info, "jetstream", json_object_new_boolean(st.jetstream));
	json_object_object_add(info, "audit_mode",
	    json_object_new_string(!st.audit_known ? "waiting"
	    : st.audit_js ? "jetstream" : "core"));
	json_object_object_add(info, "audit_stream", b->audit_js
	    ? json_object_new_string(b->audit_stream) : NULL);
	json_object_object_add(info, "audit_order", !b->audit_js ? NULL
	    : json_object_new_string(bridge_pipelined(b, timefmt_monotonic_ms())
	    ? "chained" : "one-at-a-time"));
	json_object_object_add(info, "created_mode",
	    json_object_new_string(bridge_sub_mode(&st, KIND_CREATED)));
	json_object_object_add(info, "completed_mode",
	    json_object_new_string(bridge_sub_mode(&st, KIND_COMPLETED)));
	json_object_object_add(info, "published", json_object_new_int64((int64_t)st.published));
	json_object_object_add(info, "failed", json_object_new_int64((int64_t)st.failed));
	json_object_object_add(info, "rejected", json_object_new_int64((int64_t)st.rejected));
	json_object_object_add(info, "dropped", json_object_new_int64((int64_t)st.dropped));
	json_object_object_add(info, "events", json_object_new_int64((int64_t)st.events));
	json_object_object_add(info, "changes", json_object_new_int64((int64_t)st.changes));
	json_object_object_add(info, "reconnects", json_object_new_int64((int64_t)st.reconnects));
	json_object_object_add(info, "backlog", json_object_new_int64(st.backlog));
	json_object_object_add(info, "last_error", b->last_error[0]
	    ? json_object_new_string(b->last_error) : NULL);

	if (store_component_heartbeat(b->st, BRIDGE_COMPONENT, info) != 0)
		log_warnx("cannot write component_status");
	json_object_put(info);
}

static void
bridge_housekeeping(struct bridge *b, int64_t now)
{
	size_t n = 0;
	int rc;

	if (now >= b->next_expire_ms) {
		b->next_expire_ms = now + BRIDGE_EXPIRE_MS;
		rc = store_policy_expire_completed(b->st, b->cfg->completed_retention_s, &n);
		if (rc != 0) {
			log_warnx("expire completed policies: %s", err_message(rc));
		} else if (n > 0) {
			log_info("deleted %zu completed policies after retention", n);
			bridge_nudge(b);
			b->outbox_more = true;
		}
	}
	if (now >= b->next_prune_ms) {
		b->next_prune_ms = now + BRIDGE_PRUNE_MS;
		rc = store_outbox_prune(b->st, b->cfg->outbox_retention_s, &n);
		if (rc != 0)
			log_warnx("prune outbox: %s", err_message(rc));
		else if (n > 0)
			log_info("pruned %zu delivered outbox rows", n);
	}
	if (now >= b->next_heartbeat_ms) {
		b->next_heartbeat_ms = now + BRIDGE_HEARTBEAT_MS;
		bridge_heartbeat(b, true);
	}
}

void
bridge_get_stats(struct bridge *b, struct bridge_stats *out)
{
	*out = b->stats;
	pthread_mutex_lock(&b->mu);
	out->connected = b->connected;
	out->reconnects = b->reconnects;
	pthread_mutex_unlock(&b->mu);
	out->jetstream = b->jetstream;
	out->audit_known = b->audit_known;
	out->audit_js = b->audit_js;
	for (int k = 0; k < KIND_N; k++) {
		out->events_js[k] = b->subs[k].js;
		out->events_core[k] = !b->subs[k].js && b->subs[k].sub != NULL;
	}
}

int
bridge_new(const struct config *cfg, struct store *st, struct bridge **out)
{
	struct bridge *b;
	pthread_condattr_t ca;
	natsStatus s;

	*out = NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return EGW_E_NOMEM;
	b->cfg = cfg;
	b->st = st;
	b->data_version = -1;
	b->outbox_more = true;
	b->check_stream = true;	/* a previous run may have died mid-window */
	for (int k = 0; k < KIND_N; k++) {
		b->subs[k].b = b;
		b->subs[k].kind = k;
	}
	pthread_mutex_init(&b->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->wake, &ca);
	pthread_cond_init(&b->space, &ca);
	pthread_cond_init(&b->acked, &ca);
	pthread_condattr_destroy(&ca);
	srandom((unsigned)(getpid() ^ timefmt_now_ms()));

	s = natsOptions_Create(&b->opts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(b->opts, cfg->nats_url);
	if (s != NATS_OK) {
		log_errorx("NATS_URL rejected by cnats: %s", natsStatus_GetText(s));
		bridge_free(b);
		return EGW_E_CONFIG;
	}
	if (s == NATS_OK)
		s = natsOptions_SetName(b->opts, "egw-natsd");
	if (s == NATS_OK)	/* forever */
		s = natsOptions_SetMaxReconnect(b->opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetCustomReconnectDelay(b->opts, bridge_reconnect_delay, b);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(b->opts, true, bridge_on_connected, b);
	if (s == NATS_OK)	/* never buffer publishes across a reconnect */
		s = natsOptions_SetReconnectBufSize(b->opts, 1);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(b->opts, 2000);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(b->opts, 5000);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(b->opts, 2);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(b->opts, bridge_on_disconnected, b);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(b->opts, bridge_on_reconnected, b);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(b->opts, bridge_on_closed, b);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(b->opts, bridge_on_error, b);
	if (s != NATS_OK) {
		log_errorx("NATS options: %s", natsStatus_GetText(s));
		bridge_free(b);
		return EGW_E_INTERNAL;
	}
	*out = b;
	return 0;
}

static int
bridge_connect(struct bridge *b)
{
	jsOptions jo;
	natsStatus s;

	s = natsConnection_Connect(&b->nc, b->opts);
	if (s == NATS_OK) {
		bridge_on_connected(b->nc, b);
	} else if (s == NATS_NOT_YET_CONNECTED) {
		log_warnx("NATS not reachable yet; retrying in the background");
	} else {
		log_errorx("NATS connect: %s", natsStatus_GetText(s));
		return EGW_E_UNAVAILABLE;
	}
	jsOptions_Init(&jo);
	jo.Wait = 2000;
	jo.PublishAsync.MaxPending = BRIDGE_WINDOW;
	jo.PublishAsync.AckHandler = bridge_on_puback;
	jo.PublishAsync.AckHandlerClosure = b;
	s = natsConnection_JetStream(&b->js, b->nc, &jo);
	if (s != NATS_OK) {
		log_errorx("JetStream context: %s", natsStatus_GetText(s));
		return EGW_E_INTERNAL;
	}
	return 0;
}

static int64_t
bridge_min(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int
bridge_run(struct bridge *b, volatile sig_atomic_t *stop)
{
	int rc;

	if (b->nc == NULL && (rc = bridge_connect(b)) != 0)
		return rc;
	while (!*stop) {
		int64_t now = timefmt_monotonic_ms(), wake_at;
		bool connected, setup, busy = false;
		int64_t dv;

		pthread_mutex_lock(&b->mu);
		connected = b->connected;
		setup = b->need_setup;
		pthread_mutex_unlock(&b->mu);

		if (connected && (setup || !b->setup_done || now >= b->next_recheck_ms) &&
		    now >= b->next_setup_ms) {
			pthread_mutex_lock(&b->mu);
			b->need_setup = false;
			pthread_mutex_unlock(&b->mu);
			if (bridge_setup(b) == 0) {
				b->setup_done = true;
				b->setup_backoff_ms = 0;
				b->next_recheck_ms = now + BRIDGE_RECHECK_MS;
				b->outbox_more = true;
			} else {
				b->setup_backoff_ms = b->setup_backoff_ms == 0
				    ? 500 : bridge_min(b->setup_backoff_ms * 2, BRIDGE_BACKOFF_MAX_MS);
				b->next_setup_ms = now + b->setup_backoff_ms;
				/* A partial set-up (e.g. audit ready, a consumer
				 * not) still lets the rest work. */
				b->setup_done = true;
				pthread_mutex_lock(&b->mu);
				b->need_setup = true;
				pthread_mutex_unlock(&b->mu);
			}
		}

		if (bridge_handle_queued(b) > 0)
			busy = true;

		/* Other processes' commits (API, applier, flowlog) show as a
		 * new data_version; ours set outbox_more directly. */
		dv = store_data_version(b->st);
		if (dv != b->data_version) {
			b->data_version = dv;
			b->outbox_more = true;
		}
		if (!b->audit_js && b->r_len > 0)
			bridge_window_reset(b);	/* JetStream went away */
		if (b->setup_done && b->audit_js && (b->outbox_more || b->r_len > 0)) {
			/* Also runs while disconnected, to fail the window. */
			if (bridge_window_step(b, now))
				busy = true;
		} else if (connected && b->setup_done && b->audit_known &&
		    b->outbox_more && now >= b->next_publish_ms) {
			if ((rc = bridge_publish_round(b, now)) != 0 && rc != EGW_E_BUSY) {
				log_errorx("outbox: %s", err_message(rc));
				if (rc == EGW_E_DB)
					return rc;
			}
			busy = busy || b->outbox_more;
		}

		bridge_housekeeping(b, timefmt_monotonic_ms());
		if (busy)
			continue;

		now = timefmt_monotonic_ms();
		wake_at = now + BRIDGE_POLL_MS;
		if (b->outbox_more && b->next_publish_ms > now)
			wake_at = bridge_min(wake_at, b->next_publish_ms);
		pthread_mutex_lock(&b->mu);
		if (b->q_len == 0 && !*stop) {
			struct timespec ts = {
				.tv_sec = (time_t)(wake_at / 1000),
				.tv_nsec = (long)(wake_at % 1000) * 1000000L
			};

			pthread_cond_timedwait(&b->wake, &b->mu, &ts);
		}
		pthread_mutex_unlock(&b->mu);
	}
	return 0;
}

void
bridge_free(struct bridge *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->mu);
	b->stopping = true;
	pthread_cond_broadcast(&b->space);
	pthread_mutex_unlock(&b->mu);
	if (b->st != NULL && b->nc != NULL)
		bridge_heartbeat(b, false);
	for (int k = 0; k < KIND_N; k++)
		bridge_unsubscribe(&b->subs[k]);
	jsCtx_Destroy(b->js);
	if (b->nc != NULL) {
		struct timespec ts;

		natsConnection_Close(b->nc);
		/* The closed callback comes from a cnats thread; wait for it
		 * (bounded) before b goes away. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 2;
		pthread_mutex_lock(&b->mu);
		while (!b->closed &&
		    pthread_cond_timedwait(&b->wake, &b->mu, &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&b->mu);
		natsConnection_Destroy(b->nc);
	}
	/* Handled nothing, acked nothing: JetStream redelivers these. */
	while (b->q_len > 0) {
		natsMsg_Destroy(b->queue[b->q_head]);
		b->q_head = (b->q_head + 1) % BRIDGE_QUEUE_MAX;
		b->q_len--;
	}
	natsOptions_Destroy(b->opts);
	pthread_cond_destroy(&b->wake);
	pthread_cond_destroy(&b->space);
	pthread_cond_destroy(&b->acked);
	pthread_mutex_destroy(&b->mu);
	free(b);
}
