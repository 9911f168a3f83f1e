/* SPDX-License-Identifier: MIT */
/*
 * This file contains the driver of bench/flowlog/prune.sh: it fills a
 * database through the flow writer's own calls, times retention steps and
 * times writes.
 *
 *   egw-bench-prune fill DB ROWS            ROWS log rows + flow events
 *   egw-bench-prune write DB ROWS           microseconds per logged row
 *   egw-bench-prune prune DB RETENTION_S MAX_ROWS STEPS
 *                                           median / max step in ms
 *
 * Every mode opens DB as egw-flowlog does (migrations, store_flowlog_tune)
 * and writes in batches of 1000 with their flow events.
 */
#include "log.h"
#include "store.h"
#include "store_egress.h"
#include "store_flowlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
bench_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int
bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* @n rows shaped like real ones: 500 scenarios, TCP, distinct sources. */
static int
bench_fill(struct store *st, long n, long seed)
{
	static struct egress_entry e[EGRESS_INSERT_MAX];

	for (long done = 0; done < n;) {
		size_t k = n - done > EGRESS_INSERT_MAX ? EGRESS_INSERT_MAX
		    : (size_t)(n - done);

		for (size_t i = 0; i < k; i++) {
			long j = seed + done + (long)i;

			memset(&e[i], 0, sizeof(e[i]));
			snprintf(e[i].scenario_id, sizeof(e[i].scenario_id),
			    "scen-%04ld", j % 500);
			snprintf(e[i].network_id, sizeof(e[i].network_id),
			    "net-%04ld", j % 500);
			snprintf(e[i].action, sizeof(e[i].action), "%s",
			    j % 3 ? "deny" : "allow");
			snprintf(e[i].src_ip, sizeof(e[i].src_ip),
			    "100.64.%ld.%ld", (j / 250) % 250, j % 250 + 1);
			snprintf(e[i].dst_ip, sizeof(e[i].dst_ip),
			    "203.0.113.10");
			e[i].has_ports = true;
			e[i].src_port = 30000 + (int)(j % 30000);
			e[i].dst_port = 443;
			snprintf(e[i].protocol, sizeof(e[i].protocol), "tcp");
			snprintf(e[i].reason, sizeof(e[i].reason), "default");
		}
		if (store_egress_insert(st, e, k, true) != 0)
			return -1;
		done += (long)k;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct store *st;
	int rc = 0;

	log_init("bench", LOG_LEVEL_ERROR);
	if (argc < 4 || (strcmp(argv[1], "prune") == 0 && argc < 6)) {
		fprintf(stderr, "usage: egw-bench-prune fill|write DB ROWS\n"
		    "       egw-bench-prune prune DB RETENTION_S MAX_ROWS"
		    " STEPS\n");
		return 2;
	}
	if (store_open(argv[2], &st) != 0 || store_flowlog_tune(st) != 0)
		return 1;
	if (strcmp(argv[1], "fill") == 0) {
		rc = bench_fill(st, atol(argv[3]), 0);
	} else if (strcmp(argv[1], "write") == 0) {
		long n = atol(argv[3]);
		double t0 = bench_ms();

		rc = bench_fill(st, n, 7777777);
		printf("write: %ld rows, %.1f us per logged row\n", n,
		    (bench_ms() - t0) * 1000 / (double)n);
	} else if (strcmp(argv[1], "prune") == 0) {
		int steps = atoi(argv[5]);
		double *t = calloc((size_t)(steps > 0 ? steps : 1), sizeof(*t));
		struct store_flowlog_pruned p, sum = { 0 };

		for (int i = 0; t != NULL && i < steps && rc == 0; i++) {
			double t0 = bench_ms();

			rc = store_flowlog_prune_step(st,
			    (unsigned)atol(argv[3]), (unsigned)atol(argv[4]),
			    500, &p);
			t[i] = bench_ms() - t0;
			sum.log_rows += p.log_rows;
			sum.flow_events += p.flow_events;
			sum.flow_undelivered += p.flow_undelivered;
		}
		if (t != NULL && rc == 0 && steps > 0) {
			qsort(t, (size_t)steps, sizeof(*t), bench_cmp);
			printf("prune: %d steps, median %.2f ms, max %.2f ms;"
			    " deleted %zu log rows, %zu flow events"
			    " (%zu undelivered)\n", steps, t[steps / 2],
			    t[steps - 1], sum.log_rows, sum.flow_events,
			    sum.flow_undelivered);
		}
		free(t);
	}
	store_close(st);
	return rc == 0 ? 0 : 1;
}
