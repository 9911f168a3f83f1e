/* SPDX-License-Identifier: MIT */
/*
 * This file contains the outbox: audit events waiting in SQLite for NATS.
 *
 * An event is written in the same transaction as the change it reports, so
 * it can never be lost nor published for a change that rolled back.  The
 * payload text stored is exactly the text the bridge publishes; its
 * event_id (a UUIDv7: 48 bits of milliseconds, 74 random bits from
 * randpool) is the de-duplication id
 * (Nats-Msg-Id), so a replay after a crash is harmless.  Rows are published
 * in id order and kept until pruned after delivery.
 */
#ifndef EGW_STORE_OUTBOX_H
#define EGW_STORE_OUTBOX_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

struct json_object;

#define OUTBOX_EVENT_ID_LEN 37	/* UUID text plus NUL */
#define OUTBOX_SUBJECT "audit.egress"

/* One undelivered row as fetched for publishing. */
struct outbox_event {
	int64_t id;			/* publish order */
	char event_id[OUTBOX_EVENT_ID_LEN];
	char *subject;			/* malloc'd; "audit.egress" */
	char *type;			/* malloc'd; e.g. "policy.created" */
	char *scenario_id;		/* malloc'd; NULL when none */
	char *payload;			/* malloc'd; the exact JSON to publish */
	char created_at[32];
	int attempts;			/* failed publish attempts so far */
};

/**
 * store_outbox_uuid() - a UUIDv7 (time-ordered, 74 random bits) in
 * lower-case text
 * @out: OUTBOX_EVENT_ID_LEN bytes
 *
 * Returns: 0, or EGW_E_IO when getrandom(2) fails (errno set).
 */
int store_outbox_uuid(char out[OUTBOX_EVENT_ID_LEN]);

/**
 * store_outbox_add() - queue one event for audit.egress
 * @st: connection; call inside the caller's transaction (outside one the
 *      single INSERT commits on its own)
 * @type: event type, e.g. "policy.updated"
 * @scenario_id: NULL or the scenario it concerns (for the outbox row)
 * @payload: the event object (borrowed); "event_id", "type" and, when
 *           missing, "timestamp" are set on it before it is serialised
 * @event_id_out: NULL or OUTBOX_EVENT_ID_LEN bytes for the new event id
 *
 * Returns: 0, EGW_E_IO (no randomness), EGW_E_NOMEM, EGW_E_BUSY or EGW_E_DB.
 */
int store_outbox_add(struct store *st, const char *type,
    const char *scenario_id, struct json_object *payload,
    char event_id_out[OUTBOX_EVENT_ID_LEN]);

/**
 * store_outbox_fetch() - undelivered events after @after_id, in id order
 * @st: connection
 * @after_id: 0 for the oldest
 * @limit: at most this many (1..10000)
 * @out: a malloc'd array (NULL when *n == 0), free with
 *       store_outbox_events_free
 * @n: how many
 *
 * Returns: 0, EGW_E_INVALID (limit), EGW_E_NOMEM, EGW_E_BUSY or EGW_E_DB.
 */
int store_outbox_fetch(struct store *st, int64_t after_id, size_t limit,
    struct outbox_event **out, size_t *n);

/**
 * store_outbox_events_free() - release what store_outbox_fetch returned;
 * NULL is a no-op
 */
void store_outbox_events_free(struct outbox_event *ev, size_t n);

/**
 * store_outbox_mark_delivered() - record the publish ack
 *
 * One UPDATE with no BEGIN of its own: called between store_begin() and
 * store_commit() it joins that transaction (mark a whole acked batch with
 * one commit); outside one it commits by itself.  Marking a delivered row
 * again keeps its first delivered_at.
 *
 * Returns: 0, EGW_E_NOTFOUND (no such row), EGW_E_BUSY or EGW_E_DB.
 */
int store_outbox_mark_delivered(struct store *st, int64_t id);

/**
 * store_outbox_mark_failed() - count a failed attempt and keep its error
 * @error: text (truncated to 512 bytes); may be NULL
 *
 * Joins the caller's transaction like store_outbox_mark_delivered().
 *
 * Returns: 0, EGW_E_NOTFOUND, EGW_E_BUSY or EGW_E_DB.
 */
int store_outbox_mark_failed(struct store *st, int64_t id, const char *error);

/**
 * store_outbox_prune() - delete delivered rows older than @retention_s
 * @deleted: may be NULL; how many rows went
 *
 * Undelivered rows are never pruned.  Each short transaction looks at the
 * 2,000 oldest ids only and deletes those delivered and old enough, until
 * one deletes nothing: delivered rows more than 2,000 ids behind an
 * undelivered one wait for it (the bridge delivers in id order anyway).
 * At most 250 transactions per call; call again for more.
 *
 * Returns: 0, EGW_E_BUSY or EGW_E_DB.
 */
int store_outbox_prune(struct store *st, unsigned retention_s, size_t *deleted);

/**
 * store_outbox_backlog() - how many rows wait for delivery
 *
 * Returns: 0 or EGW_E_DB.
 */
int store_outbox_backlog(struct store *st, int64_t *count);

#endif
