/* SPDX-License-Identifier: MIT */
/*
 * This file contains the api_tokens table access (see store_token.h).
 */
#include "store_token.h"
#include "err.h"
#include "log.h"
#include "timefmt.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Tokens found valid inside a read snapshot, with the database version
 * that snapshot saw.  Every authenticated request looks its token up; on
 * a read the snapshot is open already, and while the version is unchanged
 * (no connection committed anything, a revocation included) the row is
 * still the same, so the query can be skipped.  Unknown tokens are never
 * kept: a client trying tokens cannot fill the memo.
 */
#define STORE_TOKEN_MEMO 8

struct store_token_memo {
	/* One version for all: any change empties the memo, so a slot never
	 * outlives a commit, and the 32-bit counter cannot come round to an
	 * old slot's value. */
	uint32_t version;
	struct {
		bool used;
		char hash[STORE_TOKEN_HASH_LEN + 1];
		struct store_token token;
	} slot[STORE_TOKEN_MEMO];
	unsigned next;			/* round-robin replacement */
};

/* The connection's memo as of @version (emptied when the database changed
 * since), NULL when it has none and @create is false or memory is short. */
static struct store_token_memo *
store_token_memo_at(struct store *st, uint32_t version, bool create)
{
	struct store_token_memo **mp = store_token_memo_slot(st);

	if (*mp == NULL && (!create || (*mp = calloc(1, sizeof(**mp))) == NULL))
		return NULL;
	if ((*mp)->version != version) {
		memset((*mp)->slot, 0, sizeof((*mp)->slot));
		(*mp)->version = version;
	}
	return *mp;
}

/* The slot holding @hash_hex, or STORE_TOKEN_MEMO. */
static unsigned
store_token_memo_index(const struct store_token_memo *m, const char *hash_hex)
{
	unsigned i;

	for (i = 0; i < STORE_TOKEN_MEMO; i++) {
		if (m->slot[i].used && strcmp(m->slot[i].hash, hash_hex) == 0)
			break;
	}
	return i;
}

static const struct store_token *
store_token_memo_find(struct store *st, const char *hash_hex, uint32_t version)
{
	struct store_token_memo *m = store_token_memo_at(st, version, false);
	unsigned i;

	if (m == NULL || (i = store_token_memo_index(m, hash_hex)) == STORE_TOKEN_MEMO)
		return NULL;
	return &m->slot[i].token;
}

static void
store_token_memo_keep(struct store *st, const char *hash_hex, uint32_t version,
    const struct store_token *t)
{
	struct store_token_memo *m;
	unsigned i;

	if (strlen(hash_hex) != STORE_TOKEN_HASH_LEN ||
	    (m = store_token_memo_at(st, version, true)) == NULL)
		return;		/* only a lost shortcut */
	/* The same token refreshes its slot; a new one takes the next. */
	if ((i = store_token_memo_index(m, hash_hex)) == STORE_TOKEN_MEMO)
		i = m->next++ % STORE_TOKEN_MEMO;
	m->slot[i].used = true;
	memcpy(m->slot[i].hash, hash_hex, STORE_TOKEN_HASH_LEN + 1);
	m->slot[i].token = *t;
}

bool
store_token_valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > STORE_TOKEN_NAME_MAX)
		return false;
	if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_.-") != n)
		return false;
	return name[0] != '.' && name[0] != '-' && name[0] != '_';
}

static bool
store_token_valid_scopes(const char *s)
{
	return strcmp(s, "read") == 0 || strcmp(s, "write") == 0 ||
	    strcmp(s, "read,write") == 0;
}

static void
store_token_row(sqlite3_stmt *stmt, struct store_token *out)
{
	out->id = sqlite3_column_int64(stmt, 0);
	store_col_text(stmt, 1, out->name, sizeof(out->name));
	store_col_text(stmt, 2, out->scopes, sizeof(out->scopes));
	store_col_text(stmt, 3, out->created_at, sizeof(out->created_at));
	store_col_text(stmt, 4, out->revoked_at, sizeof(out->revoked_at));
}

int
store_token_create(struct store *st, const char *name, const char *scopes,
    const char *hash_hex)
{
	sqlite3_stmt *del, *ins;
	char now[TIMEFMT_LEN];
	int rc;

	if (!store_token_valid_name(name) || !store_token_valid_scopes(scopes) ||
	    strlen(hash_hex) != STORE_TOKEN_HASH_LEN)
		return EGW_E_INVALID;
	if ((rc = store_begin(st)) != 0)
		return rc;
	del = store_prepare(st,
	    "DELETE FROM api_tokens WHERE name = ?1 AND revoked_at IS NOT NULL");
	ins = store_prepare(st,
	    "INSERT INTO api_tokens (name, token_hash, scopes, created_at)"
	    " VALUES (?1, ?2, ?3, ?4)");
	if (del == NULL || ins == NULL) {
		store_rollback(st);
		return EGW_E_DB;
	}
	sqlite3_bind_text(del, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(del);
	sqlite3_reset(del);
	if (rc != SQLITE_DONE) {
		store_rollback(st);
		return store_rc_to_err(rc);
	}
	timefmt_now(now);
	sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 2, hash_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 3, scopes, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 4, now, -1, SQLITE_STATIC);
	rc = sqlite3_step(ins);
	sqlite3_reset(ins);
	if (rc != SQLITE_DONE) {
		store_rollback(st);
		return store_rc_to_err(rc);
	}
	return store_commit(st);
}

int
store_token_lookup(struct store *st, const char *hash_hex,
    struct store_token *out)
{
	sqlite3_stmt *stmt;
	const struct store_token *known;
	uint32_t version;
	bool snapshot = store_snapshot_version(st, &version);
	int rc;

	if (snapshot && (known = store_token_memo_find(st, hash_hex, version)) != NULL) {
		*out = *known;
		return 0;
	}
	stmt = store_prepare(st,
	    "SELECT id, name, scopes, created_at, revoked_at FROM api_tokens"
	    " WHERE token_hash = ?1 AND revoked_at IS NULL");
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, hash_hex, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		store_token_row(stmt, out);
	sqlite3_reset(stmt);
	if (rc == SQLITE_ROW) {
		/* The version read before the query is the one it saw: the
		 * snapshot holds it for the whole transaction. */
		if (snapshot)
			store_token_memo_keep(st, hash_hex, version, out);
		return 0;
	}
	return rc == SQLITE_DONE ? EGW_E_NOTFOUND : store_rc_to_err(rc);
}

int
store_token_revoke(struct store *st, const char *name)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "UPDATE api_tokens SET revoked_at = ?2"
	    " WHERE name = ?1 AND revoked_at IS NULL");
	char now[TIMEFMT_LEN];
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	timefmt_now(now);
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, now, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return store_rc_to_err(rc);
	return sqlite3_changes(store_db(st)) == 1 ? 0 : EGW_E_NOTFOUND;
}

int
store_token_list(struct store *st,
    int (*cb)(const struct store_token *t, void *ctx), void *ctx)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT id, name, scopes, created_at, revoked_at FROM api_tokens"
	    " ORDER BY name");
	struct store_token t;
	int rc, ret = 0;

	if (stmt == NULL)
		return EGW_E_DB;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		store_token_row(stmt, &t);
		if ((ret = cb(&t, ctx)) != 0)
			break;
	}
	sqlite3_reset(stmt);
	if (ret != 0)
		return ret;
	return rc == SQLITE_DONE ? 0 : store_rc_to_err(rc);
}
