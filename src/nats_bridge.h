/* SPDX-License-Identifier: MIT */
/*
 * This file contains the NATS bridge of egw-natsd: scenario events in,
 * audit events out.
 *
 * In: scenario.created / scenario.completed become policy changes in
 * SQLite.  When JetStream has a stream holding a subject, the bridge binds
 * to the durable push consumer egress_gateway_created / _completed
 * (creating it if absent) with explicit acks and acks a message only after
 * the SQLite commit; otherwise it uses a core queue subscription.  Handling
 * is idempotent (a redelivered event changes nothing twice), an invalid
 * event is terminated and recorded as an "event.rejected" audit event, a
 * transient store failure is NAKed for redelivery (over core NATS nothing
 * can redeliver it: it is logged as lost and counted, "dropped").
 *
 * Out: the outbox is drained in id order to its subject (audit.egress).
 * With JetStream (stream AUDIT on audit.*, created unless
 * EGW_CREATE_STREAMS=false) each event is published with an ack and
 * Nats-Msg-Id = event_id; a row is marked delivered only after its ack and
 * only as part of an unbroken acked prefix.  The server keeps the outbox
 * order: each pipelined publish names its predecessor
 * (Nats-Expected-Last-Msg-Id) and is refused out of turn; while another
 * publisher shares the stream, publishes go one at a time.  Without
 * JetStream: core publish + flush.  Failures back off.
 *
 * Threads: cnats delivers messages and publish acks on its own threads; the
 * callbacks only queue them.  Everything that touches SQLite runs on the
 * thread that calls bridge_run(), which owns the store connection.
 */
#ifndef EGW_NATS_BRIDGE_H
#define EGW_NATS_BRIDGE_H

#include "config.h"
#include "store.h"
#include "store_events.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BRIDGE_SUBJECT_CREATED "scenario.created"
#define BRIDGE_SUBJECT_COMPLETED "scenario.completed"
/*
 * A created message whose network, sources or interfaces another live
 * scenario holds is redelivered (BRIDGE_RETRY, a NAK with a 1 s delay)
 * up to this many deliveries before it is rejected: completed and created
 * messages come through two consumers, so a lab's successor on the same
 * network can arrive before the lab's completion, also when both wait in
 * the stream for a gateway that was down.
 */
#define BRIDGE_CLAIM_WAIT_DELIVERIES 60
#define BRIDGE_DURABLE_CREATED "egress_gateway_created"
#define BRIDGE_DURABLE_COMPLETED "egress_gateway_completed"
#define BRIDGE_AUDIT_STREAM "AUDIT"
#define BRIDGE_AUDIT_SUBJECTS "audit.*"
#define BRIDGE_QUEUE_GROUP "egress_gateway"
#define BRIDGE_COMPONENT "natsd"
#define BRIDGE_ACTOR "nats"

struct bridge;

/* What happened to one scenario event. */
enum bridge_outcome {
	BRIDGE_CHANGED = 0,	/* committed a policy change: ack, nudge */
	BRIDGE_UNCHANGED,	/* valid, nothing to do (redelivery): ack */
	BRIDGE_REJECTED,	/* invalid, recorded as event.rejected: term */
	BRIDGE_RETRY		/* transient failure, nothing recorded: nak */
};

/* Figures published in component_status 'natsd' (info JSON). */
struct bridge_stats {
	bool connected;
	bool jetstream;		/* the server offers JetStream */
	bool audit_known;	/* the audit mode is decided (else nothing is published) */
	bool audit_js;		/* audit events go out with JetStream acks */
	bool events_js[2];	/* created/completed through durable consumers */
	bool events_core[2];	/* ... or through core subscriptions */
	uint64_t published;	/* outbox rows delivered */
	uint64_t failed;	/* failed publish attempts (batches) */
	uint64_t rejected;	/* invalid events terminated */
	uint64_t dropped;	/* core events that failed: not redelivered */
	uint64_t events;	/* scenario events handled (any outcome) */
	uint64_t changes;	/* events that changed a policy */
	uint64_t reconnects;
	int64_t backlog;	/* undelivered outbox rows */
};

/**
 * bridge_handle_event() - validate and apply one scenario event
 * @st: connection (not inside a transaction)
 * @subject: BRIDGE_SUBJECT_CREATED or BRIDGE_SUBJECT_COMPLETED
 * @data: the message body (untrusted; need not be NUL-terminated)
 * @len: its length
 * @cfg: configuration: bodies longer than EGW_MAX_BODY are rejected, and
 *       a policy is held to the gateway's scope and template (policy.h
 *       policy_validate_for_gateway)
 * @request_id: NULL or an id for history and logs (e.g. "js:STREAM:seq")
 * @pos: the message's place in its JetStream stream, or NULL (core NATS)
 * @delivered: how many times JetStream has delivered this message (1: the
 *             first time), 0 over core NATS (no redelivery)
 * @outcome: what happened
 *
 * scenario.created is parsed by the API's codec (extra key "track"); when
 * it has no "profile" the track's profile from table track_profiles is
 * used.  A created event for a completed scenario changes nothing (a
 * late redelivery must not reopen it), nor does one whose exact body was
 * accepted for the scenario before (store_events.h), whatever happened to
 * the policy since, nor one that a later message of its stream, already
 * acted on, has superseded (@pos: a created message NAKed while the
 * database was busy comes back after the producer's next one).
 * scenario.completed disables the policy and stamps completed_at; for an
 * unknown scenario it stores a disabled, completed "none" tombstone so
 * that a created event arriving later (the two subjects are consumed
 * independently) cannot open it.  A created event that another live
 * scenario's claim refuses is answered BRIDGE_RETRY for
 * BRIDGE_CLAIM_WAIT_DELIVERIES deliveries from the first that lost the
 * claim (the claim's completion may be on its way through the other
 * consumer), then rejected; over core NATS (@delivered 0) at once.
 * A rejected event is recorded with audit_rejected_event() before this
 * returns.
 *
 * Returns: 0 with @outcome set, or a negative enum egw_err when the
 * outcome is BRIDGE_RETRY (also set).
 */
int bridge_handle_event(struct store *st, const struct config *cfg,
    const char *subject, const char *data, size_t len, const char *request_id,
    const struct store_event_pos *pos, uint64_t delivered,
    enum bridge_outcome *outcome);

/**
 * bridge_new() - set up the bridge (no network I/O yet)
 * @cfg: configuration (borrowed; must outlive the bridge)
 * @st: store connection (borrowed; used only from bridge_run's thread)
 * @out: the bridge, owned by the caller (bridge_free)
 *
 * Returns: 0, EGW_E_NOMEM, or EGW_E_CONFIG when cnats refuses the URL.
 */
int bridge_new(const struct config *cfg, struct store *st,
    struct bridge **out);

/**
 * bridge_free() - close the connection and release; NULL is a no-op
 *
 * Messages received but not handled are not acked, so JetStream
 * redelivers them.
 */
void bridge_free(struct bridge *b);

/**
 * bridge_run() - the daemon loop: connect (retrying forever with backoff),
 * set up streams, consumers and subscriptions, handle events, drain the
 * outbox, heartbeat, expire completed policies, prune delivered rows
 * @b: the bridge
 * @stop: set non-zero (e.g. from a signal handler) to return
 *
 * Returns: 0 when @stop was set, or a negative enum egw_err for a fatal
 * error (database unusable).
 */
int bridge_run(struct bridge *b, volatile sig_atomic_t *stop);

/**
 * bridge_get_stats() - copy the current figures
 */
void bridge_get_stats(struct bridge *b, struct bridge_stats *out);

#endif
