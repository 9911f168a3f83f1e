/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-policy, a test helper that changes policies
 * through the same code the API uses (codec + store_policy) and nudges the
 * applier, for the applier's e2e tests and benchmarks until they can go
 * through HTTP.
 *
 *   egw-policy put '<policy JSON>'      create or replace
 *   egw-policy put-many N PREFIX        N policies PREFIX-1..N (sources 100.64/10 /32s)
 *   egw-policy delete SCENARIO
 *   egw-policy enable|disable SCENARIO
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

static int
put_json(struct store *st, const char *body)
{
	struct policy *p = policy_new();
	struct policy_errors errs;
	struct store_actor actor = { .actor = "test", .request_id = NULL };
	int rc;

	memset(&errs, 0, sizeof(errs));
	rc = codec_policy_from_json(body, strlen(body), p, &errs);
	if (rc == 0)
		rc = store_policy_put(st, p, &actor, NULL, &errs);
	if (rc != 0) {
		fprintf(stderr, "rejected: %s", err_token(rc));
		for (size_t i = 0; i < errs.count; i++)
			fprintf(stderr, " [%s: %s]", errs.items[i].path, errs.items[i].reason);
		fprintf(stderr, "\n");
	} else {
		printf("%lld\n", (long long)p->id);
	}
	policy_free(p);
	return rc;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct store *st;
	struct store_actor actor = { .actor = "test", .request_id = NULL };
	int rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: egw-policy put JSON | put-many N PREFIX | "
		    "delete|enable|disable SCENARIO\n");
		return 2;
	}
	config_load_env(&cfg, "egw-policy");
	log_init("test", LOG_LEVEL_WARN);
	if (store_open(cfg.db_path, &st) != 0)
		return 1;
	store_set_iface_deriver(st, config_iface_deriver, &cfg);
	if (strcmp(argv[1], "put") == 0) {
		rc = put_json(st, argv[2]);
	} else if (strcmp(argv[1], "put-many") == 0 && argc == 4) {
		long n = strtol(argv[2], NULL, 10);
		char body[512];

		for (long i = 1; i <= n && rc == 0; i++) {
			snprintf(body, sizeof(body), "{\"scenario_id\":\"%s-%ld\","
			    "\"profile\":\"%s\",\"sources\":[\"100.%ld.%ld.%ld/32\"]}",
			    argv[3], i, i % 2 ? "training-updates" : "none",
			    100 + (i >> 16), (i >> 8) & 255, i & 255);
			struct policy *p = policy_new();
			struct policy_errors errs;

			memset(&errs, 0, sizeof(errs));
			rc = codec_policy_from_json(body, strlen(body), p, &errs);
			if (rc == 0)
				rc = store_policy_put(st, p, &actor, NULL, &errs);
			policy_free(p);
		}
	} else if (strcmp(argv[1], "delete") == 0) {
		rc = store_policy_delete(st, argv[2], &actor, NULL);
	} else if (strcmp(argv[1], "enable") == 0 || strcmp(argv[1], "disable") == 0) {
		struct policy *p = policy_new();

		rc = store_policy_set_enabled(st, argv[2], argv[1][0] == 'e', &actor, p);
		policy_free(p);
	} else {
		rc = EGW_E_INVALID;
	}
	store_close(st);
	if (rc == 0)
		applier_client_nudge(cfg.applier_socket);
	else
		fprintf(stderr, "egw-policy: %s\n", err_token(rc));
	return rc == 0 ? 0 : 1;
}
