/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of auth.c and store_token.c against a real
 * temporary database: token format, hashing (a known SHA-256 vector),
 * Bearer parsing, scopes, lookup, revocation and the 401/403 decision, and
 * the lookup memo inside read snapshots: a revocation committed by another
 * connection (egw-admin) is seen by the next snapshot, not the memo.
 */
#include "auth.h"
#include "err.h"
#include "log.h"
#include "store.h"
#include "store_token.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/egw-test-auth-XXXXXX";

static int
count_cb(const struct store_token *t, void *ctx)
{
	(void)t;
	(*(int *)ctx)++;
	return 0;
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
	unlink(path);
	{
		char p2[160];

		snprintf(p2, sizeof(p2), "%s-wal", path);
		unlink(p2);
		snprintf(p2, sizeof(p2), "%s-shm", path);
		unlink(p2);
	}
	rmdir(dir);
	return tap_done();
}
