/* SPDX-License-Identifier: MIT */
/*
 * This file contains the token subcommands of egw-admin (see admin_token.h).
 */
#include "admin_token.h"
#include "auth.h"
#include "config.h"
#include "err.h"
#include "store.h"
#include "store_token.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int
admin_token_usage(void)
{
	fprintf(stderr,
	    "usage: egw-admin token create NAME read|write|read,write\n"
	    "       egw-admin token list\n"
	    "       egw-admin token revoke NAME\n");
	return 2;
}

static int
admin_token_print(const struct store_token *t, void *ctx)
{
	(void)ctx;
	printf("%-24s %-10s created %s%s%s\n", t->name, t->scopes, t->created_at,
	    t->revoked_at[0] ? " revoked " : "", t->revoked_at);
	return 0;
}

static int
admin_token_create(struct store *st, const char *name, const char *scopes_text)
{
	char token[AUTH_TOKEN_LEN + 1], hash[STORE_TOKEN_HASH_LEN + 1];
	unsigned scopes;
	int rc;

	if (!store_token_valid_name(name)) {
		fprintf(stderr, "egw-admin: token name must be 1-64 of A-Z a-z 0-9 _ . -\n");
		return 2;
	}
	if (auth_scopes_parse(scopes_text, &scopes) != 0) {
		fprintf(stderr, "egw-admin: scopes must be read, write or read,write\n");
		return 2;
	}
	if ((rc = auth_token_generate(token)) != 0 ||
	    (rc = auth_token_hash(token, hash)) != 0) {
		fprintf(stderr, "egw-admin: cannot generate a token: %s\n", err_message(rc));
		return 1;
	}
	rc = store_token_create(st, name, auth_scopes_name(scopes), hash);
	if (rc == EGW_E_CONFLICT) {
		fprintf(stderr, "egw-admin: a valid token named \"%s\" exists; revoke it first\n",
		    name);
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "egw-admin: cannot store the token: %s\n", err_message(rc));
		return 1;
	}
	/* A reader that went away must give EPIPE, not kill us before the
	 * revoke below. */
	signal(SIGPIPE, SIG_IGN);
	/* The only time the token is ever shown: if it cannot be written
	 * out (a full disk under a redirect), nobody holds it, so revoke
	 * the row and fail rather than leave a token no one can use under a
	 * name that then refuses a new one. */
	if (printf("%s\n", token) < 0 || fflush(stdout) != 0 || ferror(stdout)) {
		explicit_bzero(token, sizeof(token));
		fprintf(stderr, "egw-admin: cannot write the token out; it is"
		    " revoked again\n");
		if (store_token_revoke(st, name) != 0)
			fprintf(stderr, "egw-admin: and revoking it failed: revoke"
			    " \"%s\" by hand\n", name);
		return 1;
	}
	explicit_bzero(token, sizeof(token));
	return 0;
}

int
admin_token_main(int argc, char **argv, const struct config *cfg)
{
	struct store *st;
	int rc, status;

	if (argc < 2)
		return admin_token_usage();
	if (!((strcmp(argv[1], "create") == 0 && argc == 4) ||
	    (strcmp(argv[1], "list") == 0 && argc == 2) ||
	    (strcmp(argv[1], "revoke") == 0 && argc == 3)))
		return admin_token_usage();
	/* A wrong EGW_DB_PATH (the operator's shell does not load the
	 * service's settings) must not mint a token into a new, empty
	 * database that no gateway reads. */
	if (access(cfg->db_path, F_OK) != 0 && errno == ENOENT) {
		fprintf(stderr, "egw-admin: no database at %s (EGW_DB_PATH); the"
		    " gateway creates it when it first starts, \"egw-admin"
		    " migrate\" creates it now\n", cfg->db_path);
		return 1;
	}
	if ((rc = store_open(cfg->db_path, &st)) != 0) {
		fprintf(stderr, "egw-admin: %s: %s\n", cfg->db_path, err_message(rc));
		return 1;
	}
	if (strcmp(argv[1], "create") == 0) {
		status = admin_token_create(st, argv[2], argv[3]);
	} else if (strcmp(argv[1], "list") == 0) {
		rc = store_token_list(st, admin_token_print, NULL);
		status = rc == 0 ? 0 : 1;
		if (rc != 0)
			fprintf(stderr, "egw-admin: %s\n", err_message(rc));
	} else {
		rc = store_token_revoke(st, argv[2]);
		status = rc == 0 ? 0 : 1;
		if (rc == EGW_E_NOTFOUND)
			fprintf(stderr, "egw-admin: no valid token named \"%s\"\n", argv[2]);
		else if (rc != 0)
			fprintf(stderr, "egw-admin: %s\n", err_message(rc));
		else
			printf("revoked %s\n", argv[2]);
	}
	store_close(st);
	return status;
}
