/* SPDX-License-Identifier: MIT */
/*
 * This file contains the API token table: names, scopes and SHA-256 hashes.
 *
 * The token itself is never stored: a lookup is by the hex SHA-256 of what
 * the client presented (see auth.h).  Revoking keeps the row (revoked_at
 * set) so the history of who had access stays inspectable; creating a
 * token under a revoked name replaces that row.
 */
#ifndef EGW_STORE_TOKEN_H
#define EGW_STORE_TOKEN_H

#include "store.h"

#include <stdbool.h>
#include <stdint.h>

#define STORE_TOKEN_NAME_MAX 64
#define STORE_TOKEN_HASH_LEN 64	/* hex characters */

struct store_token {
	int64_t id;
	char name[STORE_TOKEN_NAME_MAX + 1];
	char scopes[16];		/* "read", "write" or "read,write" */
	char created_at[32];
	char revoked_at[32];		/* "" while valid */
};

/**
 * store_token_valid_name() - 1..64 of [A-Za-z0-9_.-], starting with a
 * letter or digit
 */
bool store_token_valid_name(const char *name);

/**
 * store_token_create() - add a token
 * @st: connection
 * @name: a valid name
 * @scopes: "read", "write" or "read,write"
 * @hash_hex: the token's SHA-256, 64 lower-case hex characters
 *
 * Returns: 0; EGW_E_CONFLICT when a valid token already has @name;
 * EGW_E_INVALID for a bad name or scopes; EGW_E_BUSY or EGW_E_DB.
 */
int store_token_create(struct store *st, const char *name, const char *scopes,
    const char *hash_hex);

/**
 * store_token_lookup() - find a valid (not revoked) token by hash
 * @st: connection
 * @hash_hex: the presented token's SHA-256 in hex
 * @out: filled on success
 *
 * Inside a read transaction a token found before is answered from a small
 * per-connection memo while the database is unchanged since (any commit,
 * a revocation included, makes it ask again).
 *
 * Returns: 0, EGW_E_NOTFOUND (unknown or revoked), EGW_E_BUSY or EGW_E_DB.
 */
int store_token_lookup(struct store *st, const char *hash_hex,
    struct store_token *out);

/**
 * store_token_revoke() - mark the named token revoked
 *
 * Returns: 0, EGW_E_NOTFOUND (no valid token of that name), EGW_E_BUSY or
 * EGW_E_DB.
 */
int store_token_revoke(struct store *st, const char *name);

/**
 * store_token_list() - every token row ordered by name (hashes not shown)
 * @cb: called per row; non-zero stops the walk and is returned
 *
 * Returns: 0, EGW_E_DB or what @cb returned.
 */
int store_token_list(struct store *st,
    int (*cb)(const struct store_token *t, void *ctx), void *ctx);

#endif
