/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-natsd, the NATS bridge process.
 *
 * It reads the shared configuration, opens its own SQLite connection,
 * brings every policy's derived interface up to date with
 * EGW_IFACE_TEMPLATE before its first put (it exits when it cannot), and
 * runs the bridge (nats_bridge.c) until SIGTERM or SIGINT; SIGHUP is
 * ignored (nothing to reload).  It needs no privilege.  NATS being down is
 * never fatal: the bridge retries forever, and the API and the applier
 * keep working from SQLite meanwhile.
 * "egw-natsd -n" only checks the configuration and exits.
 */
#include "config.h"
#include "err.h"
#include "instance.h"
#include "log.h"
#include "nats_bridge.h"
#include "store.h"
#include "store_policy.h"

#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t natsd_stop;

static void
natsd_on_signal(int sig)
{
	(void)sig;
	natsd_stop = 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: egw-natsd [-n]\n"
	    "  -n  check the configuration and exit (0 = valid)\n");
}

/* -n: the configuration parses and cnats accepts the URL. */
static int
natsd_check(const struct config *cfg)
{
	natsOptions *o = NULL;
	natsStatus s;

	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetURL(o, cfg->nats_url);
	natsOptions_Destroy(o);
	if (s != NATS_OK) {
		fprintf(stderr, "egw-natsd: NATS_URL: %s\n", natsStatus_GetText(s));
		return 2;
	}
	printf("egw-natsd: configuration OK (database %s, completed retention "
	    "%us, outbox retention %us, create streams %s)\n", cfg->db_path,
	    cfg->completed_retention_s, cfg->outbox_retention_s,
	    cfg->create_streams ? "true" : "false");
	return 0;
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct config cfg;
	struct store *st = NULL;
	struct bridge *b = NULL;
	bool check = false;
	int opt, rc;

	while ((opt = getopt(argc, argv, "nh")) != -1) {
		switch (opt) {
		case 'n':
			check = true;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	config_load_env(&cfg, "egw-natsd");
	log_init("nats", cfg.log_level);
	if (check) {
		rc = natsd_check(&cfg);
		/* Waits for the library's threads, as below: exit() racing them
		 * can abort() in a mutex. */
		nats_CloseAndWait(2000);
		return rc;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = natsd_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/* Nothing to reload (the configuration is read once), and the
	 * default action would end the bridge: a "reload everything"
	 * SIGHUP from an operator must not stop the audit stream. */
	sigaction(SIGHUP, &sa, NULL);

	/* A second bridge would publish every outbox event twice. */
	if (instance_lock(cfg.run_dir, "egw-natsd") != 0)
		return 1;
	if ((rc = store_open(cfg.db_path, &st)) != 0) {
		log_errorx("cannot open database %s: %s", cfg.db_path, err_message(rc));
		return 1;
	}
	store_set_iface_deriver(st, config_iface_deriver, &cfg);
	/* Before its first put: claims recorded under another
	 * EGW_IFACE_TEMPLATE, or before there were any, are checked against. */
	if ((rc = store_policy_fill_derived_ifaces(st, NULL)) != 0) {
		log_errorx("cannot compute the interfaces policies derive from "
		    "their network_id: %s", err_message(rc));
		store_close(st);
		return 1;
	}
	if ((rc = bridge_new(&cfg, st, &b)) != 0) {
		store_close(st);
		return rc == EGW_E_CONFIG ? 2 : 1;
	}
	log_info("egw-natsd starting (pid %ld)", (long)getpid());
	rc = bridge_run(b, &natsd_stop);
	bridge_free(b);
	store_close(st);
	nats_CloseAndWait(2000);
	log_info("egw-natsd stopped");
	return rc == 0 ? 0 : 1;
}
