/* SPDX-License-Identifier: MIT */
/*
 * This file contains the shared-memory request counters (see metrics.h).
 */
#include "metrics.h"
#include "err.h"

#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

/* Statuses with their own label; anything else counts as "other". */
static const int metrics_statuses[] = {
	200, 201, 202, 400, 401, 403, 404, 405, 409, 411, 413, 414, 415, 422,
	500, 502, 503, 504,
};
#define METRICS_N_STATUS (sizeof(metrics_statuses) / sizeof(metrics_statuses[0]) + 1)

/* Upper bounds in microseconds; the last bucket (+Inf) is implicit. */
static const uint64_t metrics_bounds_us[METRICS_N_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 5000000,
};

struct metrics_slot {
	uint64_t requests[METRICS_MAX_ROUTES][METRICS_N_STATUS];
	uint64_t buckets[METRICS_MAX_ROUTES][METRICS_N_BUCKETS + 1];
	uint64_t sum_us[METRICS_MAX_ROUTES];
};

struct metrics {
	size_t map_size;
	unsigned n_slots;
	size_t n_routes;
	uint64_t spawned;
	uint64_t replaced;
	uint64_t writer_batches;	/* written by the writer process only */
	uint64_t writer_ops;
	uint64_t direct_writes;		/* any worker: atomic adds */
	struct metrics_slot slots[];
};

int
metrics_create(unsigned workers, size_t n_routes, struct metrics **out)
{
	size_t size = sizeof(struct metrics) + workers * sizeof(struct metrics_slot);
	struct metrics *m;

	if (n_routes + 1 > METRICS_MAX_ROUTES)
		return EGW_E_INVALID;
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    -1, 0);
	if (m == MAP_FAILED)
		return EGW_E_NOMEM;
	m->map_size = size;
	m->n_slots = workers;
	m->n_routes = n_routes;
	*out = m;
	return 0;
}

void
metrics_destroy(struct metrics *m)
{
	if (m != NULL)
		munmap(m, m->map_size);
}

static size_t
metrics_status_index(int status)
{
	for (size_t i = 0; i < METRICS_N_STATUS - 1; i++) {
		if (metrics_statuses[i] == status)
			return i;
	}
	return METRICS_N_STATUS - 1;
}

static void
metrics_add(uint64_t *v, uint64_t n)
{
	/* One writer per slot: a relaxed add keeps readers from tearing. */
	__atomic_fetch_add(v, n, __ATOMIC_RELAXED);
}

static uint64_t
metrics_load(const uint64_t *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

void
metrics_observe(struct metrics *m, unsigned slot, size_t route, int status,
    uint64_t usec)
{
	struct metrics_slot *s;
	size_t b = 0;

	if (m == NULL || slot >= m->n_slots)
		return;
	if (route > m->n_routes)
		route = m->n_routes;
	s = &m->slots[slot];
	metrics_add(&s->requests[route][metrics_status_index(status)], 1);
	while (b < METRICS_N_BUCKETS && usec > metrics_bounds_us[b])
		b++;
	metrics_add(&s->buckets[route][b], 1);
	metrics_add(&s->sum_us[route], usec);
}

void
metrics_worker_spawned(struct metrics *m, int replacement)
{
	if (m == NULL)
		return;
	metrics_add(&m->spawned, 1);
	if (replacement)
		metrics_add(&m->replaced, 1);
}

void
metrics_writer_batch(struct metrics *m, size_t ops)
{
	if (m == NULL)
		return;
	metrics_add(&m->writer_batches, 1);
	metrics_add(&m->writer_ops, ops);
}

void
metrics_write_direct(struct metrics *m)
{
	if (m != NULL)
		metrics_add(&m->direct_writes, 1);
}

void
metrics_write(const struct metrics *m, const char *const *route_names,
    FILE *out)
{
	fputs("# HELP egw_api_requests_total API requests by route and status.\n"
	    "# TYPE egw_api_requests_total counter\n", out);
	for (size_t r = 0; r <= m->n_routes; r++) {
		const char *name = r < m->n_routes ? route_names[r] : "unmatched";

		for (size_t c = 0; c < METRICS_N_STATUS; c++) {
			uint64_t total = 0;
			char code[8];

			for (unsigned s = 0; s < m->n_slots; s++)
				total += metrics_load(&m->slots[s].requests[r][c]);
			if (total == 0)
				continue;
			if (c < METRICS_N_STATUS - 1)
				snprintf(code, sizeof(code), "%d", metrics_statuses[c]);
			else
				snprintf(code, sizeof(code), "other");
			fprintf(out, "egw_api_requests_total{route=\"%s\",code=\"%s\"} %llu\n",
			    name, code, (unsigned long long)total);
		}
	}
	fputs("# HELP egw_api_request_duration_seconds Time from request to response in the worker.\n"
	    "# TYPE egw_api_request_duration_seconds histogram\n", out);
	for (size_t r = 0; r <= m->n_routes; r++) {
		const char *name = r < m->n_routes ? route_names[r] : "unmatched";
		uint64_t cum = 0, sum = 0;
		bool any = false;

		for (unsigned s = 0; s < m->n_slots; s++) {
			for (size_t b = 0; b <= METRICS_N_BUCKETS; b++)
				any |= metrics_load(&m->slots[s].buckets[r][b]) != 0;
		}
		if (!any)
			continue;
		for (size_t b = 0; b <= METRICS_N_BUCKETS; b++) {
			for (unsigned s = 0; s < m->n_slots; s++)
				cum += metrics_load(&m->slots[s].buckets[r][b]);
			if (b < METRICS_N_BUCKETS)
				fprintf(out, "egw_api_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
				    name, (double)metrics_bounds_us[b] / 1e6,
				    (unsigned long long)cum);
			else
				fprintf(out, "egw_api_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
				    name, (unsigned long long)cum);
		}
		for (unsigned s = 0; s < m->n_slots; s++)
			sum += metrics_load(&m->slots[s].sum_us[r]);
		fprintf(out, "egw_api_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
		    name, (double)sum / 1e6);
		fprintf(out, "egw_api_request_duration_seconds_count{route=\"%s\"} %llu\n",
		    name, (unsigned long long)cum);
	}
	fprintf(out, "# HELP egw_api_workers_spawned_total Workers the pool started.\n"
	    "# TYPE egw_api_workers_spawned_total counter\n"
	    "egw_api_workers_spawned_total %llu\n"
	    "# HELP egw_api_workers_replaced_total Workers started to replace one that died.\n"
	    "# TYPE egw_api_workers_replaced_total counter\n"
	    "egw_api_workers_replaced_total %llu\n"
	    "# HELP egw_api_workers Configured worker processes, spares"
	    " included (EGW_WORKERS + EGW_SPARE_WORKERS).\n"
	    "# TYPE egw_api_workers gauge\n"
	    "egw_api_workers %u\n",
	    (unsigned long long)metrics_load(&m->spawned),
	    (unsigned long long)metrics_load(&m->replaced), m->n_slots);
	fprintf(out, "# HELP egw_api_write_batches_total Transactions the writer"
	    " committed policy mutations in (group commit).\n"
	    "# TYPE egw_api_write_batches_total counter\n"
	    "egw_api_write_batches_total %llu\n"
	    "# HELP egw_api_write_batched_ops_total Policy mutations the writer"
	    " ran in those transactions.\n"
	    "# TYPE egw_api_write_batched_ops_total counter\n"
	    "egw_api_write_batched_ops_total %llu\n"
	    "# HELP egw_api_write_direct_total Policy mutations a worker ran"
	    " itself because the writer could not be reached (one that found"
	    " nothing to change counts too).\n"
	    "# TYPE egw_api_write_direct_total counter\n"
	    "egw_api_write_direct_total %llu\n",
	    (unsigned long long)metrics_load(&m->writer_batches),
	    (unsigned long long)metrics_load(&m->writer_ops),
	    (unsigned long long)metrics_load(&m->direct_writes));
}

void
metrics_write_one(FILE *out, const char *name, const char *type,
    const char *help, int64_t value)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help,
	    name, type, name, (long long)value);
}
