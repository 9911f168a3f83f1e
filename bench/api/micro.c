/* SPDX-License-Identifier: MIT */
/*
 * This file contains the API's in-process micro benchmark (not a test):
 * the cost of the pieces a worker runs per request, each called 20,000
 * times against a real SQLite file, so the pool's per-request CPU can be
 * split into its parts.  Run with bench/api/micro.sh BUILD_DIR.
 */
#include "auth.h"
#include "codec.h"
#include "log.h"
#include "policy.h"
#include "store.h"
#include "store_policy.h"
#include "store_token.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MICRO_N 20000

static double
micro_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

#define MICRO(name, body) do {						\
	double t0_ = micro_now_ns();					\
	for (int i_ = 0; i_ < MICRO_N; i_++) { body; }			\
	printf("%-36s %7.2f us\n", name,				\
	    (micro_now_ns() - t0_) / MICRO_N / 1000);			\
} while (0)

int
main(int argc, char **argv)
{
	char token[AUTH_TOKEN_LEN + 1], hash[STORE_TOKEN_HASH_LEN + 1];
	char name[STORE_TOKEN_NAME_MAX + 1], header[128];
	struct policy *p, *q;
	struct store *st;
	bool created;
	int devnull;

	if (argc != 2) {
		fprintf(stderr, "usage: micro DATABASE\n");
		return 2;
	}
	log_init("micro", LOG_LEVEL_INFO);
	if (store_open(argv[1], &st) != 0 || (p = policy_new()) == NULL ||
	    (q = policy_new()) == NULL)
		return 1;
	auth_token_generate(token);
	auth_token_hash(token, hash);
	if (store_token_create(st, "micro", "read,write", hash) != 0)
		return 1;
	snprintf(header, sizeof(header), "Bearer %s", token);
	snprintf(p->scenario_id, sizeof(p->scenario_id), "micro-1");
	snprintf(p->profile, sizeof(p->profile), "custom");
	p->n_ports = 1;
	p->ports[0].lo = p->ports[0].hi = 443;
	if (store_policy_put(st, p, NULL, &created, NULL) != 0)
		return 1;
	/* Log lines go to /dev/null: the formatting is measured, and one
	 * write(2) each. */
	if ((devnull = open("/dev/null", O_WRONLY)) < 0 || dup2(devnull, 2) < 0)
		return 1;

	MICRO("access log line (5 fields)", log_kv(LOG_LEVEL_INFO,
	    ((const char *[]){ "method", "GET", "path", "/v1/policies/x",
	    "route", "/v1/policies/{scenario_id}", "status", "200",
	    "dur_ms", "0.123", NULL }), "request"));
	MICRO("read snapshot + token check", bool o = store_read_begin(st);
	    auth_check(st, header, AUTH_SCOPE_READ, name); store_read_end(st, o));
	MICRO("token hash (SHA-256)", auth_token_hash(token, hash));
	MICRO("read snapshot + policy (4 queries)", bool o = store_read_begin(st);
	    store_policy_get(st, "micro-1", q); store_read_end(st, o));
	MICRO("policy to JSON text", struct json_object *j = codec_policy_to_json(q);
	    (void)json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	    json_object_put(j));
	MICRO("policy_new + policy_free", policy_free(policy_new()));
	policy_free(p);
	policy_free(q);
	store_close(st);
	return 0;
}
