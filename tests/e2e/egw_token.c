/* SPDX-License-Identifier: MIT */
/*
 * This file contains a test-only entry to admin_token_main(), the code
 * behind "egw-admin token", so the e2e tests can mint tokens before the
 * command is wired into egw-admin.
 */
#include "admin_token.h"
#include "config.h"
#include "log.h"

int
main(int argc, char **argv)
{
	struct config cfg;

	config_load_env(&cfg, "egw-token");
	log_init("admin", cfg.log_level);
	if (argc < 2)
		return 2;
	return admin_token_main(argc - 1, argv + 1, &cfg);
}
