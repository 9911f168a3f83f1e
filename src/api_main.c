/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-api, the REST API's FastCGI prefork pool.
 *
 * nginx serves port 8089 and forwards every request over FastCGI to the
 * unix socket this program listens on (nginx/egw-api.conf.in).  main()
 * reads like an OpenBSD daemon's: parse flags, load the configuration,
 * set up logging, make sure the database exists and is migrated (once,
 * before any worker runs), bring every policy's derived interface up to
 * date with EGW_IFACE_TEMPLATE (puts check their claims against them; it
 * exits when it cannot), then hand over to the pool.
 */
#include "config.h"
#include "err.h"
#include "log.h"
#include "pool.h"
#include "route.h"
#include "store.h"
#include "store_policy.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
usage(void)
{
	fprintf(stderr,
	    "usage: egw-api [-n] [--routes]\n"
	    "  -n        check the configuration and exit\n"
	    "  --routes  print the served routes (METHOD PATH SCOPE) and exit\n"
	    "Settings come from the environment (see README.md).\n");
}

static int
print_routes(void)
{
	static const char *const scopes[] = { "open", "read", "write" };
	size_t n;
	const struct route *r = route_table(&n);

	for (size_t i = 0; i < n; i++)
		printf("%s %s %s\n", r[i].method, r[i].pattern, scopes[r[i].scope]);
	return 0;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct store *st;
	size_t filled = 0;
	bool check_only = false;
	sigset_t child_mask;
	int rc;

	/* Before the database work below: a SIGTERM meanwhile must stop us
	 * (pool_run() sees it), also as a container's pid 1. */
	pool_hold_signals(&child_mask);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0) {
			check_only = true;
		} else if (strcmp(argv[i], "--routes") == 0) {
			return print_routes();
		} else {
			usage();
			return 2;
		}
	}
	config_load_env(&cfg, "egw-api");
	log_init("api", cfg.log_level);
	if (check_only) {
		printf("egw-api: configuration OK (socket %s, %u workers, auth %s)\n",
		    cfg.fcgi_socket, cfg.workers, cfg.auth ? "on" : "off");
		return 0;
	}
	if (!cfg.auth)
		log_warnx("EGW_AUTH=off: every request is served without a token;"
		    " use this only on a trusted network");

	/* Migrate once here so the workers never race to create the schema. */
	if ((rc = store_open(cfg.db_path, &st)) != 0) {
		log_errorx("cannot open the database %s: %s", cfg.db_path,
		    err_message(rc));
		return 1;
	}
	/* Before any worker or the writer can put: a put checks its claims
	 * against these, which a new EGW_IFACE_TEMPLATE (or the upgrade that
	 * added them) leaves stale. */
	store_set_iface_deriver(st, config_iface_deriver, &cfg);
	if ((rc = store_policy_fill_derived_ifaces(st, &filled)) != 0) {
		log_errorx("cannot compute the interfaces policies derive from "
		    "their network_id: %s", err_message(rc));
		store_close(st);
		return 1;
	}
	if (filled > 0)
		log_info("recomputed %zu derived interfaces", filled);
	store_close(st);
	return pool_run(&cfg, &child_mask);
}
