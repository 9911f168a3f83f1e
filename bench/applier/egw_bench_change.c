/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-bench-change, the client side of the applier's
 * change benchmark (bench/applier/bench_change.sh).
 *
 *   egw-bench-change update COUNT     COUNT changes of policy bench-1's ports
 *   egw-bench-change create COUNT     COUNT new policies bench-new-<i>
 *
 * Each change goes through the code an API worker runs for
 * POST /v1/policies (codec_policy_from_json, store_policy_put, then
 * applier_client_nudge); the clock runs from just before the write until
 * applier_state.applied_generation reaches the write's generation, polled
 * every 100 us on a second connection.  One line per change on stdout:
 * "<write_ms> <end_to_end_ms>".  Changes are spaced 20 ms apart so every
 * one is measured on its own (no coalescing into the previous one).
 */
#include "applier_client.h"
#include "codec.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "policy.h"
#include "store.h"
#include "store_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define APPLY_TIMEOUT_MS 10000

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int
main(int argc, char **argv)
{
	struct store_actor actor = { .actor = "bench", .request_id = NULL };
	struct store *st, *ro;
	struct config cfg;
	long count;
	bool create;

	if (argc != 3 || (strcmp(argv[1], "update") != 0 &&
	    strcmp(argv[1], "create") != 0)) {
		fprintf(stderr, "usage: egw-bench-change update|create COUNT\n");
		return 2;
	}
	create = strcmp(argv[1], "create") == 0;
	count = strtol(argv[2], NULL, 10);
	config_load_env(&cfg, "egw-bench-change");
	log_init("bench", LOG_LEVEL_WARN);
	if (store_open(cfg.db_path, &st) != 0 || store_open(cfg.db_path, &ro) != 0)
		return 1;
	for (long i = 1; i <= count; i++) {
		struct policy *p = policy_new();
		struct policy_errors errs;
		char body[512];
		double t0, t1, t2 = 0;
		int64_t applied = 0;
		int rc;

		if (create)
			snprintf(body, sizeof(body), "{\"scenario_id\":\"bench-new-%ld\","
			    "\"profile\":\"custom\",\"sources\":[\"100.127.%ld.%ld/32\"],"
			    "\"allowed_ports\":[443]}", i, (i >> 8) & 255, i & 255);
		else
			snprintf(body, sizeof(body), "{\"scenario_id\":\"bench-1\","
			    "\"profile\":\"custom\",\"sources\":[\"100.100.0.1/32\"],"
			    "\"allowed_ports\":[%ld]}", 1000 + i);
		policy_errors_init(&errs);
		t0 = now_ms();
		rc = codec_policy_from_json(body, strlen(body), p, &errs);
		if (rc == 0)
			rc = store_policy_put(st, p, &actor, NULL, &errs);
		if (rc != 0) {
			fprintf(stderr, "write %ld: %s\n", i, err_token(rc));
			policy_free(p);
			return 1;
		}
		applier_client_nudge(cfg.applier_socket);
		t1 = now_ms();
		while (now_ms() - t0 < APPLY_TIMEOUT_MS) {
			if (store_generation(ro, NULL, &applied) == 0 &&
			    applied >= p->generation) {
				t2 = now_ms();
				break;
			}
			usleep(100);
		}
		policy_free(p);
		if (t2 == 0) {
			fprintf(stderr, "change %ld not applied within %d ms\n", i,
			    APPLY_TIMEOUT_MS);
			return 1;
		}
		printf("%.3f %.3f\n", t1 - t0, t2 - t0);
		fflush(stdout);
		usleep(20000);
	}
	store_close(ro);
	store_close(st);
	return 0;
}
