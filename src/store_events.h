/* SPDX-License-Identifier: MIT */
/*
 * This file contains the record of the scenario.created messages egw-natsd
 * has acted on (table scenario_event_digests, sql/006).
 *
 * JetStream delivers at least once, so the same message can come back
 * after the policy it created was disabled, narrowed or deleted by an
 * operator.  The bridge keys each accepted message by the SHA-256 of its
 * body, stored in the transaction that acted on it; the same bytes for the
 * same scenario are then done, whatever the policy looks like now.  With
 * the message's place in its JetStream stream (sql/007), an older message
 * that comes back after a newer one was accepted (a NAK's redelivery) is
 * told apart from the producer's next intent.
 */
#ifndef EGW_STORE_EVENTS_H
#define EGW_STORE_EVENTS_H

#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A message's place in its JetStream stream. */
struct store_event_pos {
	const char *stream;	/* the stream's name */
	int64_t seq;		/* stream sequence, > 0 */
	int64_t ts_ns;		/* the server's time stamp, ns (epoch) */
};

/**
 * store_event_seen() - was this message accepted for @scenario_id before?
 * @st: connection
 * @seen: the answer
 *
 * Returns: 0, EGW_E_BUSY or EGW_E_DB.
 */
int store_event_seen(struct store *st, const char *scenario_id,
    const char *digest, bool *seen);

/**
 * store_event_returned() - does a body accepted before come back as the
 * producer's newer word?
 * @st: connection
 * @scenario_id: the message's scenario
 * @digest: the body's digest, already recorded for @scenario_id
 * @pos: where this message sits in its stream
 * @returned: set when another body for the scenario was accepted after
 *            this one's recorded place and before @pos (same stream, both
 *            sequence and time stamp), i.e. the producer said A, then B,
 *            and now A again: a new message that must apply, not a
 *            redelivery or a repeat of the current intent
 *
 * A body recorded without a place in @pos's stream is never "returned"
 * (nothing orders it against the others).
 *
 * Returns: 0, EGW_E_BUSY or EGW_E_DB.
 */
int store_event_returned(struct store *st, const char *scenario_id,
    const char *digest, const struct store_event_pos *pos, bool *returned);

/**
 * store_event_superseded() - was a later message of @pos's stream accepted?
 * @st: connection
 * @scenario_id: the message's scenario
 * @pos: where the message sits in its stream
 * @superseded: set when the scenario has an accepted message of the same
 *              stream with both a higher sequence and a later time stamp
 *
 * Returns: 0, EGW_E_BUSY or EGW_E_DB.
 */
int store_event_superseded(struct store *st, const char *scenario_id,
    const struct store_event_pos *pos, bool *superseded);

/**
 * store_event_record() - remember that this message was accepted
 * @st: connection; inside the transaction that acted on the message (a
 *      single INSERT outside one commits by itself)
 * @pos: where it sits in its stream, or NULL (core NATS)
 *
 * Recording the same body again is not an error: its first acceptance
 * time is kept, and its place moves on to the later message's.
 *
 * Returns: 0, EGW_E_BUSY or EGW_E_DB.
 */
int store_event_record(struct store *st, const char *scenario_id,
    const char *digest, const struct store_event_pos *pos);

#endif
