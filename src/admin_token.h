/* SPDX-License-Identifier: MIT */
/*
 * This file contains "egw-admin token": minting, listing and revoking the
 * API's bearer tokens.
 *
 *   egw-admin token create NAME read|write|read,write   prints the token once
 *   egw-admin token list                                 names, scopes, dates
 *   egw-admin token revoke NAME
 *
 * Only the token's SHA-256 is stored (auth.h); a lost token cannot be shown
 * again, only revoked and replaced.
 */
#ifndef EGW_ADMIN_TOKEN_H
#define EGW_ADMIN_TOKEN_H

struct config;

/**
 * admin_token_main() - run a token subcommand
 * @argc: arguments from "token" on (argv[0] == "token")
 * @argv: the arguments
 * @cfg: configuration (database path)
 *
 * Returns: the exit status: 0, 1 on failure (message on stderr), 2 on a
 * usage error.
 */
int admin_token_main(int argc, char **argv, const struct config *cfg);

#endif
