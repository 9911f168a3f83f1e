/* SPDX-License-Identifier: MIT */
/*
 * This file contains the outbox table's access (see store_outbox.h).
 *
 * The payload is serialised once, at insert, and published byte for byte:
 * a consumer that de-duplicates by event_id sees the same document however
 * often the bridge retries.  Statements are reset as soon as their rows are
 * copied out so no read snapshot lingers.
 */
#include "store_outbox.h"
#include "err.h"
#include "log.h"
#include "randpool.h"
#include "textbuf.h"
#include "timefmt.h"

#include <errno.h>
#include <json-c/json.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * UUIDv7 (RFC 9562): 48 bits of Unix time in milliseconds, then random
 * bits.  Time-ordered ids land at the end of the outbox's unique index
 * instead of on a random page of it, which every write would otherwise
 * read and rewrite.  Uniqueness rests on the 74 random bits, as with v4.
 */
int
store_outbox_uuid(char out[OUTBOX_EVENT_ID_LEN])
{
	uint64_t ms = (uint64_t)timefmt_now_ms();
	struct textbuf tb;
	uint8_t b[16];

	if (randpool_bytes(b + 6, 10) != 0)
		return EGW_E_IO;
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)(ms >> (40 - 8 * i));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x70);	/* version 7 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);	/* RFC 9562 variant */
	textbuf_init(&tb, out, OUTBOX_EVENT_ID_LEN);
	textbuf_put_hex(&tb, b, 4);
	for (size_t at = 4; at < 10; at += 2) {
		textbuf_put(&tb, "-", 1);
		textbuf_put_hex(&tb, b + at, 2);
	}
	textbuf_put(&tb, "-", 1);
	return textbuf_put_hex(&tb, b + 10, 6) ? 0 : EGW_E_INTERNAL;
}

int
store_outbox_add(struct store *st, const char *type, const char *scenario_id,
    struct json_object *payload, char event_id_out[OUTBOX_EVENT_ID_LEN])
{
	char id[OUTBOX_EVENT_ID_LEN], now[TIMEFMT_LEN];
	struct json_object *ts;
	sqlite3_stmt *stmt;
	const char *text;
	int rc;

	if ((rc = store_outbox_uuid(id)) != 0) {
		log_warn("no randomness for an event id");
		return rc;
	}
	timefmt_now(now);
	if (json_object_object_add(payload, "event_id",
	    json_object_new_string(id)) != 0 ||
	    json_object_object_add(payload, "type",
	    json_object_new_string(type)) != 0)
		return EGW_E_NOMEM;
	if (!json_object_object_get_ex(payload, "timestamp", &ts) || ts == NULL)
		if (json_object_object_add(payload, "timestamp",
		    json_object_new_string(now)) != 0)
			return EGW_E_NOMEM;
	text = json_object_to_json_string_ext(payload, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text == NULL)
		return EGW_E_NOMEM;
	stmt = store_prepare(st,
	    "INSERT INTO outbox (event_id, subject, type, scenario_id, payload,"
	    " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, OUTBOX_SUBJECT, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, type, -1, SQLITE_STATIC);
	if (scenario_id != NULL && scenario_id[0] != '\0')
		sqlite3_bind_text(stmt, 4, scenario_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, text, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 6, now, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		log_warnx("outbox insert: %s", sqlite3_errstr(rc));
		return store_rc_to_err(rc) == 0 ? EGW_E_DB : store_rc_to_err(rc);
	}
	if (event_id_out != NULL)
		memcpy(event_id_out, id, OUTBOX_EVENT_ID_LEN);
	return 0;
}

static char *
column_dup(sqlite3_stmt *stmt, int col, bool *oom)
{
	const unsigned char *s = sqlite3_column_text(stmt, col);
	char *copy;

	if (s == NULL)
		return NULL;
	copy = strdup((const char *)s);
	if (copy == NULL)
		*oom = true;
	return copy;
}

void
store_outbox_events_free(struct outbox_event *ev, size_t n)
{
	if (ev == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(ev[i].subject);
		free(ev[i].type);
		free(ev[i].scenario_id);
		free(ev[i].payload);
	}
	free(ev);
}

int
store_outbox_fetch(struct store *st, int64_t after_id, size_t limit,
    struct outbox_event **out, size_t *n)
{
	struct outbox_event *ev;
	sqlite3_stmt *stmt;
	bool oom = false;
	size_t k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (limit == 0 || limit > 10000)
		return EGW_E_INVALID;
	ev = calloc(limit, sizeof(*ev));
	if (ev == NULL)
		return EGW_E_NOMEM;
	stmt = store_prepare(st,
	    "SELECT id, event_id, subject, type, scenario_id, payload,"
	    " created_at, attempts FROM outbox"
	    " WHERE delivered_at IS NULL AND id > ?1 ORDER BY id LIMIT ?2");
	if (stmt == NULL) {
		free(ev);
		return EGW_E_DB;
	}
	sqlite3_bind_int64(stmt, 1, after_id);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)limit);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && k < limit) {
		struct outbox_event *e = &ev[k++];
		const unsigned char *s;

		e->id = sqlite3_column_int64(stmt, 0);
		s = sqlite3_column_text(stmt, 1);
		snprintf(e->event_id, sizeof(e->event_id), "%s",
		    s ? (const char *)s : "");
		e->subject = column_dup(stmt, 2, &oom);
		e->type = column_dup(stmt, 3, &oom);
		e->scenario_id = column_dup(stmt, 4, &oom);
		e->payload = column_dup(stmt, 5, &oom);
		s = sqlite3_column_text(stmt, 6);
		snprintf(e->created_at, sizeof(e->created_at), "%s",
		    s ? (const char *)s : "");
		e->attempts = sqlite3_column_int(stmt, 7);
		if (e->subject == NULL || e->type == NULL || e->payload == NULL)
			oom = true;
		if (oom)
			break;
	}
	sqlite3_reset(stmt);
	if (oom || (rc != SQLITE_DONE && rc != SQLITE_ROW)) {
		store_outbox_events_free(ev, k);
		return oom ? EGW_E_NOMEM : store_rc_to_err(rc);
	}
	if (k == 0) {
		free(ev);
		ev = NULL;
	}
	*out = ev;
	*n = k;
	return 0;
}

static int
outbox_update(struct store *st, sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);

	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return store_rc_to_err(rc) == 0 ? EGW_E_DB : store_rc_to_err(rc);
	return sqlite3_changes(store_db(st)) == 0 ? EGW_E_NOTFOUND : 0;
}

int
store_outbox_mark_delivered(struct store *st, int64_t id)
{
	char now[TIMEFMT_LEN];
	sqlite3_stmt *stmt = store_prepare(st,
	    "UPDATE outbox SET delivered_at = coalesce(delivered_at, ?2)"
	    " WHERE id = ?1");

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, timefmt_now(now), -1, SQLITE_TRANSIENT);
	return outbox_update(st, stmt);
}

int
store_outbox_mark_failed(struct store *st, int64_t id, const char *error)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "UPDATE outbox SET attempts = attempts + 1, last_error = substr(?2, 1, 512)"
	    " WHERE id = ?1");

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_int64(stmt, 1, id);
	if (error != NULL)
		sqlite3_bind_text(stmt, 2, error, -1, SQLITE_TRANSIENT);
	return outbox_update(st, stmt);
}

/*
 * The bridge delivers in id order, so the delivered rows are the oldest
 * ids and their delivered_at grows with the id: each statement looks at
 * the first STORE_OUTBOX_PRUNE_BATCH rows only (the primary key's head)
 * instead of scanning the whole table for delivered_at under the write
 * lock, which took ~0.4 s at a million rows and held every API write up.
 */
#define STORE_OUTBOX_PRUNE_BATCH 2000
#define STORE_OUTBOX_PRUNE_ROUNDS 250

int
store_outbox_prune(struct store *st, unsigned retention_s, size_t *deleted)
{
	char cutoff[TIMEFMT_LEN];
	sqlite3_stmt *stmt = store_prepare(st,
	    "DELETE FROM outbox WHERE id IN (SELECT id FROM (SELECT id,"
	    " delivered_at FROM outbox ORDER BY id LIMIT ?2)"
	    " WHERE delivered_at IS NOT NULL AND delivered_at < ?1)");
	size_t total = 0, n;
	int rc;

	if (deleted != NULL)
		*deleted = 0;
	if (stmt == NULL)
		return EGW_E_DB;
	timefmt_from_ms(timefmt_now_ms() - (int64_t)retention_s * 1000, cutoff);
	/* One short transaction per batch, so writers get the lock between. */
	for (int round = 0; round < STORE_OUTBOX_PRUNE_ROUNDS; round++) {
		sqlite3_bind_text(stmt, 1, cutoff, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(stmt, 2, STORE_OUTBOX_PRUNE_BATCH);
		rc = sqlite3_step(stmt);
		sqlite3_reset(stmt);
		if (rc != SQLITE_DONE) {
			if (deleted != NULL)
				*deleted = total;
			return store_rc_to_err(rc) == 0 ? EGW_E_DB : store_rc_to_err(rc);
		}
		n = (size_t)sqlite3_changes(store_db(st));
		total += n;
		if (n == 0)
			break;
	}
	if (deleted != NULL)
		*deleted = total;
	return 0;
}

int
store_outbox_backlog(struct store *st, int64_t *count)
{
	return store_scalar(st,
	    "SELECT count(*) FROM outbox WHERE delivered_at IS NULL", count);
}
