/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of auth.c and store_token.c against a real
 * temporary database: token format, hashing (a known SHA-256 vector),
 * Bearer parsing, scopes, lookup, revocation and the 401/403 decision, and
 * the lookup memo inside read snapshots: a revocation committed by another
 * connection (egw-admin) is seen by the next snapshot, not the memo; the
 * check a change carries into its own transaction (auth_authorize_write()
 * through store_policy_put()), and the worker's filter in front of it.
 */
#include "auth.h"
#include "codec.h"
#include "err.h"
#include "log.h"
#include "policy.h"
#include "store.h"
#include "store_policy.h"
#include "store_token.h"
#include "tap.h"
#include "testdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/egw-test-auth-XXXXXX";

/* A token named @name with @scopes, stored by @st; its hash into @hash. */
static void
mint(struct store *st, const char *name, const char *scopes,
    char hash[STORE_TOKEN_HASH_LEN + 1])
{
	char tok[AUTH_TOKEN_LEN + 1];

	/* A check of its own: a token that could not be made must not look
	 * like one the code under test refused. */
	ok(auth_token_generate(tok) == 0 && auth_token_hash(tok, hash) == 0 &&
	    store_token_create(st, name, scopes, hash) == 0,
	    "token %s (%s) minted", name, scopes);
}

static long long
policy_rows(struct store *st, const char *sid)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM policies WHERE"
	    " scenario_id = '%s'", sid);
	return testdb_int(st, sql);
}

/* A change carries its token's hash; the store decides inside the
 * change's transaction, with the real tokens table. */
static void
test_change_check(const char *path)
{
	char w[STORE_TOKEN_HASH_LEN + 1], r[STORE_TOKEN_HASH_LEN + 1];
	char gone[STORE_TOKEN_HASH_LEN + 1];
	char unknown[STORE_TOKEN_HASH_LEN + 1], *actor;
	struct store *st = NULL, *admin = NULL;
	struct store_actor as = { .request_id = "req-a",
	    .authorize = auth_authorize_write };
	static const char body[] = "{\"scenario_id\":\"chg-1\",\"profile\":\"none\"}";
	struct policy *p = policy_new();
	struct policy_errors errs;
	bool created = false, may_read = false;
	int64_t now = 1000000;

	is_int(store_open(path, &st), 0, "change check: database opened");
	is_int(store_open(path, &admin), 0, "change check: egw-admin's connection");
	mint(admin, "deployer", "write", w);
	mint(admin, "viewer", "read", r);
	mint(admin, "leaver", "read,write", gone);
	is_int(auth_token_hash("egw_never_minted", unknown), 0, "an unknown hash");
	is_int(codec_policy_from_json(body, strlen(body), p, &errs), 0,
	    "a policy body");

	as.credential = unknown;
	is_int(store_policy_put(st, p, &as, &created, NULL), EGW_E_UNAUTHORIZED,
	    "an unknown token makes no change: 401");
	as.credential = r;
	is_int(store_policy_put(st, p, &as, &created, NULL), EGW_E_FORBIDDEN,
	    "a read-only token makes no change: 403");
	is_int(policy_rows(st, "chg-1"), 0, "... nothing stored");
	as.credential = w;
	is_int(store_policy_put(st, p, &as, &created, NULL), 0,
	    "a write token makes it");
	actor = testdb_text(st, "SELECT actor FROM policy_history"
	    " WHERE scenario_id = 'chg-1'");
	is_str(actor ? actor : "", "api:deployer", "... recorded as the token's name");
	free(actor);

	/* The worker's filter passes "leaver" and remembers it; revoked by
	 * egw-admin, it still passes the filter for a while, but the store
	 * refuses the change. */
	is_int(auth_write_filter(st, gone, now, &may_read), 0, "filter: a write token"
	    " passes");
	ok(may_read, "filter: ... and it may read (read,write)");
	may_read = true;
	is_int(auth_write_filter(st, w, now, &may_read), 0, "filter: a write-only"
	    " token passes");
	ok(!may_read, "filter: ... and may not read");
	may_read = true;
	is_int(auth_write_filter(st, w, now + 1, &may_read), 0,
	    "filter: ... remembered");
	ok(!may_read, "filter: ... still may not read when remembered");
	may_read = false;
	is_int(auth_write_filter(st, gone, now + 1, &may_read), 0,
	    "filter: the read,write token remembered");
	ok(may_read, "filter: ... may read when remembered");
	is_int(auth_write_filter(st, r, now, &may_read), EGW_E_FORBIDDEN,
	    "filter: a read-only token: 403");
	is_int(auth_write_filter(st, unknown, now, &may_read), EGW_E_UNAUTHORIZED,
	    "filter: an unknown token: 401");
	is_int(store_token_revoke(admin, "leaver"), 0, "leaver revoked by egw-admin");
	is_int(auth_write_filter(st, gone, now + AUTH_WRITE_FILTER_MS - 1, &may_read), 0,
	    "filter: remembered within its time, without a read");
	as.credential = gone;
	is_int(store_policy_set_enabled(st, "chg-1", false, &as, p),
	    EGW_E_UNAUTHORIZED, "... but the store refuses the change: 401");
	is_int(testdb_int(st, "SELECT enabled FROM policies WHERE scenario_id"
	    " = 'chg-1'"), 1, "... nothing changed");
	is_int(auth_write_filter(st, gone, now + AUTH_WRITE_FILTER_MS, &may_read),
	    EGW_E_UNAUTHORIZED, "filter: after its time, read again: 401");
	is_int(auth_write_filter(st, gone, now, &may_read), EGW_E_UNAUTHORIZED,
	    "filter: ... and forgotten");
	mint(admin, "mover", "write", gone);
	is_int(auth_write_filter(st, gone, now, &may_read), 0, "filter: mover passes");
	is_int(store_token_revoke(admin, "mover"), 0, "mover revoked by egw-admin");
	is_int(auth_write_filter(st, gone, now - 1, &may_read), EGW_E_UNAUTHORIZED,
	    "filter: a clock earlier than the finding is not trusted: read, 401");
	/* Eight slots: a ninth token passing pushes out the oldest, which
	 * is then looked up again (and found revoked). */
	{
		char h[9][STORE_TOKEN_HASH_LEN + 1], n9[16];
		int passed = 0;

		for (int k = 0; k < 9; k++) {
			snprintf(n9, sizeof(n9), "slot-%d", k);
			mint(admin, n9, "write", h[k]);
		}
		for (int k = 0; k < 9; k++)
			passed += auth_write_filter(st, h[k], now + 1, &may_read) == 0;
		is_int(passed, 9, "filter: nine write tokens pass");
		for (int k = 0; k < 9; k++) {
			snprintf(n9, sizeof(n9), "slot-%d", k);
			store_token_revoke(admin, n9);
		}
		/* All nine revoked: a remembered one still passes, one
		 * looked up again is refused. */
		passed = 0;
		for (int k = 0; k < 9; k++)
			passed += auth_write_filter(st, h[k], now + 2, &may_read) == 0;
		is_int(passed, 8, "filter: eight slots: the ninth pushed one out,"
		    " which is read again and refused");
	}
	as.credential = w;
	is_int(store_policy_delete(st, "chg-1", &as, NULL), 0,
	    "the write token deletes");
	is_int(policy_rows(st, "chg-1"), 0, "... gone");
	store_close(admin);
	store_close(st);
	policy_free(p);
}

static int
count_cb(const struct store_token *t, void *ctx)
{
	(void)t;
	(*(int *)ctx)++;
	return 0;
}

/*
 * The presented hash is kept for the last few tokens: whatever the order,
 * each token's hash is its own SHA-256, whether kept or evicted, for
 * tokens of one length that differ in one character and for a token that
 * is another's prefix.
 */
static void
test_presented_hash_memo(void)
{
	static const char *const tokens[] = {
		"egw_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"egw_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
		"baaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"egw_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"egw_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"x",
		"egw_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa==",
	};
	/* In turn, back and forth, then each twice running: more tokens
	 * than the memo keeps, so some are hashed again after eviction. */
	static const unsigned order[] = { 0, 1, 0, 2, 1, 3, 4, 5, 6, 0, 6, 5,
	    4, 3, 2, 1, 0, 0, 3, 3, 6, 6, 1, 2, 0 };
	char header[AUTH_PRESENTED_MAX + 16], got[STORE_TOKEN_HASH_LEN + 1];
	char want[STORE_TOKEN_HASH_LEN + 1];
	int bad = 0;

	for (size_t i = 0; i < sizeof(order) / sizeof(*order); i++) {
		const char *t = tokens[order[i]];

		snprintf(header, sizeof(header), "Bearer %s", t);
		if (auth_presented_hash(header, got) != 0 ||
		    auth_token_hash(t, want) != 0 || strcmp(got, want) != 0) {
			tap_diag("presentation %zu (token %u): %s, want %s", i,
			    order[i], got, want);
			bad++;
		}
	}
	is_int(bad, 0, "each presented token hashes to its own SHA-256, "
	    "kept or not (%zu presentations of %zu tokens)",
	    sizeof(order) / sizeof(*order), sizeof(tokens) / sizeof(*tokens));
	is_int(auth_presented_hash("Bearer egw_a a", got), EGW_E_UNAUTHORIZED,
	    "a malformed header after kept tokens is still refused");
}

int
main(void)
{
	char tok[AUTH_TOKEN_LEN + 1], tok2[AUTH_TOKEN_LEN + 1];
	char hash[STORE_TOKEN_HASH_LEN + 1], out[AUTH_PRESENTED_MAX + 1];
	char name[STORE_TOKEN_NAME_MAX + 1], header[128], path[128];
	struct store *st = NULL;
	unsigned scopes = 0;
	int n = 0;

	log_init("test", LOG_LEVEL_ERROR);
	if (mkdtemp(dir) == NULL)
		return 99;
	snprintf(path, sizeof(path), "%s/egw.db", dir);

	is_int(auth_token_generate(tok), 0, "token generated");
	is_int((long long)strlen(tok), AUTH_TOKEN_LEN, "token length");
	ok(strncmp(tok, "egw_", 4) == 0, "token prefix");
	is_int(auth_token_generate(tok2), 0, "second token");
	ok(strcmp(tok, tok2) != 0, "tokens differ");
	is_int(auth_token_hash("abc", hash), 0, "hash");
	is_str(hash, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    "sha256(\"abc\") test vector");

	is_int(auth_scopes_parse("read", &scopes), 0, "scope read");
	is_int(scopes, AUTH_SCOPE_READ, "read bits");
	is_int(auth_scopes_parse("write,read", &scopes), 0, "scope write,read");
	is_str(auth_scopes_name(scopes), "read,write", "canonical scopes");
	is_int(auth_scopes_parse("admin", &scopes), EGW_E_INVALID, "unknown scope");

	is_int(auth_bearer("Bearer abc", out), 0, "bearer parsed");
	is_str(out, "abc", "bearer token");
	is_int(auth_bearer("bearer  abc== ", out), 0, "case and spaces tolerated");
	is_str(out, "abc==", "padding kept");
	is_int(auth_bearer(NULL, out), EGW_E_UNAUTHORIZED, "no header");
	is_int(auth_bearer("Basic abc", out), EGW_E_UNAUTHORIZED, "basic refused");
	is_int(auth_bearer("Bearer ", out), EGW_E_UNAUTHORIZED, "empty token");
	is_int(auth_bearer("Bearer a b", out), EGW_E_UNAUTHORIZED, "two words refused");
	is_int(auth_bearer("Bearer a\"b", out), EGW_E_UNAUTHORIZED, "quote refused");

	test_presented_hash_memo();

	ok(store_token_valid_name("ci-reader.1"), "token name ok");
	ok(!store_token_valid_name("-x"), "leading dash refused");
	ok(!store_token_valid_name("a b"), "space refused");

	is_int(store_open(path, &st), 0, "database opened");
	is_int(auth_token_hash(tok, hash), 0, "hash token");
	is_int(store_token_create(st, "reader", "read", hash), 0, "reader stored");
	is_int(store_token_create(st, "reader", "read", hash), EGW_E_CONFLICT,
	    "duplicate name refused");
	is_int(auth_token_hash(tok2, hash), 0, "hash token 2");
	is_int(store_token_create(st, "writer", "write", hash), 0, "writer stored");

	snprintf(header, sizeof(header), "Bearer %s", tok);
	is_int(auth_check(st, header, AUTH_SCOPE_READ, name), 0, "reader may read");
	is_str(name, "reader", "reader's name");
	is_int(auth_check(st, header, AUTH_SCOPE_WRITE, name), EGW_E_FORBIDDEN,
	    "reader may not write");
	snprintf(header, sizeof(header), "Bearer %s", tok2);
	is_int(auth_check(st, header, AUTH_SCOPE_WRITE, name), 0, "writer may write");
	is_int(auth_check(st, header, AUTH_SCOPE_READ, name), EGW_E_FORBIDDEN,
	    "write-only token may not read");
	is_int(auth_check(st, "Bearer egw_nope", AUTH_SCOPE_READ, name),
	    EGW_E_UNAUTHORIZED, "unknown token");
	is_int(auth_check(st, NULL, AUTH_SCOPE_READ, name), EGW_E_UNAUTHORIZED,
	    "missing token");

	is_int(store_token_list(st, count_cb, &n), 0, "list");
	is_int(n, 2, "two tokens listed");
	is_int(store_token_revoke(st, "writer"), 0, "writer revoked");
	is_int(store_token_revoke(st, "writer"), EGW_E_NOTFOUND, "revoke twice");
	is_int(auth_check(st, header, AUTH_SCOPE_WRITE, name), EGW_E_UNAUTHORIZED,
	    "revoked token refused");
	is_int(store_token_create(st, "writer", "write", hash), 0,
	    "name of a revoked token reusable");

	/* The memo: used within and across read snapshots while nothing
	 * changes; another connection's revocation ends it at once. */
	{
		struct store *admin = NULL;
		bool snap;
		int ok_reads = 0;

		snprintf(header, sizeof(header), "Bearer %s", tok);
		for (int i = 0; i < 3; i++) {
			snap = store_read_begin(st);
			ok_reads += auth_check(st, header, AUTH_SCOPE_READ, name) == 0;
			ok_reads += auth_check(st, header, AUTH_SCOPE_READ, name) == 0;
			store_read_end(st, snap);
		}
		is_int(ok_reads, 6, "reader valid in 3 snapshots, twice each");
		is_int(store_open(path, &admin), 0, "a second connection (egw-admin)");
		is_int(store_token_revoke(admin, "reader"), 0,
		    "reader revoked by the other connection");
		snap = store_read_begin(st);
		is_int(auth_check(st, header, AUTH_SCOPE_READ, name),
		    EGW_E_UNAUTHORIZED, "the next snapshot refuses the revoked token");
		store_read_end(st, snap);
		is_int(auth_check(st, header, AUTH_SCOPE_READ, name),
		    EGW_E_UNAUTHORIZED, "and so does a lookup outside a snapshot");
		store_close(admin);

		/* In a write transaction the connection's own revocation
		 * moves no counter before the commit: no memo there. */
		{
			char tok3[AUTH_TOKEN_LEN + 1];

			is_int(auth_token_generate(tok3), 0, "third token");
			is_int(auth_token_hash(tok3, hash), 0, "hash token 3");
			is_int(store_token_create(st, "third", "read", hash), 0,
			    "third stored");
			snprintf(header, sizeof(header), "Bearer %s", tok3);
			is_int(store_begin(st), 0, "write transaction");
			is_int(auth_check(st, header, AUTH_SCOPE_READ, name), 0,
			    "third valid in it");
			is_int(store_token_revoke(st, "third"), 0,
			    "third revoked in the same transaction");
			is_int(auth_check(st, header, AUTH_SCOPE_READ, name),
			    EGW_E_UNAUTHORIZED, "and refused before the commit");
			store_rollback(st);
		}
	}

	store_close(st);
	test_change_check(path);
	unlink(path);
	{
		char p2[160];

		snprintf(p2, sizeof(p2), "%s-wal", path);
		unlink(p2);
		snprintf(p2, sizeof(p2), "%s-shm", path);
		unlink(p2);
		/* The writers' queue (store.c), made by the changes above. */
		snprintf(p2, sizeof(p2), "%s-wlock", path);
		unlink(p2);
	}
	if (rmdir(dir) != 0)
		tap_diag("could not remove %s", dir);
	return tap_done();
}
