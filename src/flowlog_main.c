/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-flowlog's entry point: the reader of the NFLOG
 * group the applier's log rules write to.
 *
 * It needs CAP_NET_ADMIN (to bind the group) and write access to the state
 * database; the supervisor starts it as EGW_USER with only that capability.
 * SIGTERM or SIGINT stops it after the socket and the queue are written.
 */
#include "config.h"
#include "err.h"
#include "flowlog.h"
#include "instance.h"
#include "log.h"
#include "store.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t flowlog_stop;

/*
 * Stopped processes are killed 10 s after the signal (the supervisor's
 * grace): the last batch's lock waits and retries end before that, and
 * what cannot be written by then is counted as lost, not cut off unseen.
 */
#define FLOWLOG_STOP_GRACE_MS 8000

static void
on_signal(int sig)
{
	struct timespec ts;

	(void)sig;
	if (!flowlog_stop && clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
		store_stop_deadline((int64_t)ts.tv_sec * 1000 +
		    ts.tv_nsec / 1000000 + FLOWLOG_STOP_GRACE_MS);
	flowlog_stop = 1;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: egw-flowlog [-n]\n"
	    "  -n  check the configuration and exit\n"
	    "Settings come from the environment (EGW_NFLOG_GROUP, EGW_NFLOG_RCVBUF,\n"
	    "EGW_DB_PATH, EGW_LOG_RETENTION, EGW_LOG_MAX_ROWS, ...; see README.md).\n");
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct flowlog *fl;
	struct sigaction sa;
	bool check_only = false;
	int ch, rc;

	while ((ch = getopt(argc, argv, "nh")) != -1) {
		switch (ch) {
		case 'n':
			check_only = true;
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
	config_load_env(&cfg, "egw-flowlog");
	if (check_only) {
		printf("egw-flowlog: configuration ok (NFLOG group %u, receive buffer"
		    " %u bytes, retention %u s, at most %u rows, database %s)\n",
		    cfg.nflog_group, cfg.nflog_rcvbuf, cfg.log_retention_s,
		    cfg.log_max_rows, cfg.db_path);
		return 0;
	}
	log_init("flowlog", cfg.log_level);
	/* Each batch allocates and frees a few hundred small JSON objects;
	 * glibc would hand the freed top of the heap back with brk() after
	 * every batch, and in a threaded process each shrink is a TLB
	 * shoot-down on the other core (measured: half the CPU time).  Keep
	 * the heap instead. */
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_TOP_PAD, 8 * 1024 * 1024);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	/* One reader per run directory: a second with the same settings
	 * would log every packet twice, or not bind at all. */
	if (instance_lock(cfg.run_dir, "egw-flowlog") != 0)
		return 1;
	if ((rc = flowlog_open(&cfg, &fl)) != 0) {
		log_errorx("cannot start: %s", err_message(rc));
		return 1;
	}
	rc = flowlog_run(fl, &flowlog_stop);
	flowlog_close(fl);
	return rc == 0 ? 0 : 1;
}
