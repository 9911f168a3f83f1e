/* SPDX-License-Identifier: MIT */
/*
 * This file contains the NATS bridge benchmark driver (run by
 * bench/nats/run.sh, which starts the real processes).
 *
 *   bench_nats latency URL DB N [applied|kernel]
 *       publishes N (1-8192) scenario.created events one at a time
 *       (JetStream, with ack) and measures publish -> policy committed in
 *       SQLite and, with "applied" (applier in dry run) or "kernel"
 *       (DRY_RUN=false), -> apply_status "applied" at the policy's
 *       generation; prints p50/p99/max in milliseconds as one JSON line.
 *       Bounded: 10 s per event, 3 timeouts in a row, 60 s + 100 ms per
 *       event in all; a rejected event or a failed apply ends the run.
 *   bench_nats bare URL DB N
 *       reads the first N undelivered outbox rows and publishes the same
 *       payloads with a bare cnats publisher, twice: JetStream async with
 *       acks and Nats-Msg-Id into stream BENCH (bench.egress, the same
 *       settings as AUDIT), and core publish + flush; marks nothing;
 *       prints messages/s as one JSON line
 *   bench_nats drain DB TIMEOUT_S
 *       watches the outbox backlog while egw-natsd drains it and prints
 *       the rows/s between the first and the last delivery as JSON
 */
#include "err.h"
#include "log.h"
#include "policy.h"
#include "store.h"
#include "store_outbox.h"
#include "store_policy.h"
#include "timefmt.h"

#include <json-c/json.h>
#include <nats/nats.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return n == 0 ? 0 : v[i < n ? i : n - 1];
}

static int
connect_js(const char *url, natsConnection **nc, jsCtx **js, jsOptions *jo)
{
	natsOptions *o = NULL;
	natsStatus s;

	if ((s = natsOptions_Create(&o)) == NATS_OK &&
	    (s = natsOptions_SetURL(o, url)) == NATS_OK &&
	    (s = natsConnection_Connect(nc, o)) == NATS_OK)
		s = natsConnection_JetStream(js, *nc, jo);
	natsOptions_Destroy(o);
	if (s != NATS_OK) {
		fprintf(stderr, "bench_nats: connect: %s\n", natsStatus_GetText(s));
		return -1;
	}
	return 0;
}

static void
print_stats(struct json_object *o, const char *name, double *v, size_t n)
{
	struct json_object *s = json_object_new_object();

	qsort(v, n, sizeof(*v), cmp_double);
	json_object_object_add(s, "n", json_object_new_int64((int64_t)n));
	json_object_object_add(s, "p50_ms", json_object_new_double(pct(v, n, 0.50)));
	json_object_object_add(s, "p99_ms", json_object_new_double(pct(v, n, 0.99)));
	json_object_object_add(s, "max_ms", json_object_new_double(n ? v[n - 1] : 0));
	json_object_object_add(o, name, s);
}

/* Bounds of the latency run: nothing in it can wait forever. */
#define LAT_EVENT_TIMEOUT_MS 10000	/* one event: publish -> committed/applied */
#define LAT_MAX_MISSES 3		/* consecutive timeouts before giving up */
#define LAT_BUDGET_BASE_MS 60000	/* whole run: base + per event */
#define LAT_BUDGET_PER_EVENT_MS 100

enum lat_mode { LAT_COMMIT, LAT_APPLIED_DRY, LAT_APPLIED_KERNEL };

/* The reason of egw-natsd's event.rejected row for @sid, if there is one. */
static bool
lat_rejected(sqlite3 *db, const char *sid, char *why, size_t whylen)
{
	sqlite3_stmt *s = NULL;
	bool found = false;

	if (db == NULL || sqlite3_prepare_v2(db, "SELECT"
	    " json_extract(payload, '$.reason') FROM outbox"
	    " WHERE type = 'event.rejected' AND scenario_id = ?1 LIMIT 1",
	    -1, &s, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(s, 1, sid, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 0);

		snprintf(why, whylen, "%s", t ? (const char *)t : "?");
		found = true;
	}
	sqlite3_finalize(s);
	return found;
}

/*
 * Scenario ids and sources differ by mode, so that two passes never see
 * each other's scenarios: "lat-dry-PID-i" on 100.64.0.0/11 (commit only or
 * dry run), "lat-kern-PID-i" on 100.96.0.0/11 (real kernel); one /24 each
 * (8192 per pass).  A source claimed by another scenario makes egw-natsd
 * reject the event, and a scenario id that exists already makes it a
 * "no change": both are detected and end the run instead of waiting.
 */
static int
cmd_latency(const char *url, const char *db, long n, enum lat_mode mode)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	struct store *st = NULL;
	sqlite3 *rdb = NULL;
	struct policy *p = policy_new();
	double *commit = calloc((size_t)n, sizeof(double));
	double *apply = calloc((size_t)n, sizeof(double));
	size_t nc_ok = 0, na_ok = 0;
	struct json_object *o;
	const char *tag = mode == LAT_APPLIED_KERNEL ? "kern" : "dry";
	unsigned oct2 = mode == LAT_APPLIED_KERNEL ? 96 : 64;
	bool applied = mode != LAT_COMMIT;
	double budget_end;
	char abort_why[POLICY_ERROR_MAX + 128] = "";
	int misses = 0;

	if (n < 1 || n > 8192) {
		fprintf(stderr, "bench_nats: latency: N must be 1-8192\n");
		return 2;
	}
	if (p == NULL || commit == NULL || apply == NULL ||
	    connect_js(url, &nc, &js, NULL) != 0 || store_open(db, &st) != 0)
		return 1;
	if (sqlite3_open_v2(db, &rdb, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(rdb);
		rdb = NULL;
	} else {
		sqlite3_busy_timeout(rdb, 1000);
	}
	budget_end = now_ms() + LAT_BUDGET_BASE_MS + (double)n * LAT_BUDGET_PER_EVENT_MS;
	for (long i = 0; i < n && abort_why[0] == '\0'; i++) {
		char body[256], sid[64], why[POLICY_ERROR_MAX];
		jsErrCode jerr = 0;
		jsPubAck *pa = NULL;
		double t0, deadline;
		bool got_commit = false, done = false;

		snprintf(sid, sizeof(sid), "lat-%s-%ld-%ld", tag, (long)getpid(), i);
		if (store_policy_get(st, sid, p) == 0) {
			snprintf(abort_why, sizeof(abort_why), "scenario %s exists "
			    "already (the event would be \"no change\")", sid);
			break;
		}
		snprintf(body, sizeof(body), "{\"scenario_id\":\"%s\",\"network_id\":"
		    "\"net%ld\",\"track\":\"cissp\",\"sources\":[\"100.%ld.%ld.0/24\"]}",
		    sid, i, (long)oct2 + (i / 256) % 32, i % 256);
		if (now_ms() >= budget_end) {
			snprintf(abort_why, sizeof(abort_why), "time budget of the run "
			    "spent after %ld events", i);
			break;
		}
		t0 = now_ms();
		if (js_Publish(&pa, js, "scenario.created", body, (int)strlen(body),
		    NULL, &jerr) != NATS_OK) {
			snprintf(abort_why, sizeof(abort_why), "publish of %s failed "
			    "(jerr %d)", sid, (int)jerr);
			break;
		}
		jsPubAck_Destroy(pa);
		deadline = t0 + LAT_EVENT_TIMEOUT_MS;
		for (unsigned polls = 0; !done && now_ms() < deadline &&
		    polls < 4 * LAT_EVENT_TIMEOUT_MS; polls++) {
			if (store_policy_get(st, sid, p) == 0) {
				if (!got_commit) {
					commit[nc_ok++] = now_ms() - t0;
					got_commit = true;
				}
				if (!applied) {
					done = true;
				} else if (p->apply_status == POLICY_APPLY_APPLIED &&
				    p->applied_generation >= p->generation) {
					apply[na_ok++] = now_ms() - t0;
					done = true;
				} else if (p->apply_status == POLICY_APPLY_FAILED) {
					snprintf(abort_why, sizeof(abort_why), "%s: apply "
					    "failed: %s", sid, p->apply_error);
					break;
				}
			} else if (polls % 64 == 63 && lat_rejected(rdb, sid, why,
			    sizeof(why))) {
				snprintf(abort_why, sizeof(abort_why), "%s rejected by "
				    "egw-natsd: %s", sid, why);
				break;
			}
			if (!done)
				usleep(250);
		}
		if (done) {
			misses = 0;
		} else if (abort_why[0] == '\0') {
			fprintf(stderr, "bench_nats: %s: not %s within %d ms\n", sid,
			    got_commit ? "applied" : "committed", LAT_EVENT_TIMEOUT_MS);
			if (++misses >= LAT_MAX_MISSES)
				snprintf(abort_why, sizeof(abort_why), "%d events in a "
				    "row timed out (last: %s, %s)", misses, sid,
				    got_commit ? "committed, not applied" :
				    "not committed");
		}
	}
	o = json_object_new_object();
	json_object_object_add(o, "events", json_object_new_int64(n));
	json_object_object_add(o, "scenario_ids", json_object_new_string(
	    mode == LAT_APPLIED_KERNEL ? "lat-kern-*" : "lat-dry-*"));
	print_stats(o, "publish_to_commit", commit, nc_ok);
	if (mode == LAT_APPLIED_DRY)
		print_stats(o, "publish_to_applied_dry_run", apply, na_ok);
	else if (mode == LAT_APPLIED_KERNEL)
		print_stats(o, "publish_to_applied_kernel", apply, na_ok);
	if (abort_why[0] != '\0')
		json_object_object_add(o, "aborted", json_object_new_string(abort_why));
	puts(json_object_to_json_string(o));
	json_object_put(o);
	if (abort_why[0] != '\0')
		fprintf(stderr, "bench_nats: latency run aborted: %s\n", abort_why);
	free(commit);
	free(apply);
	policy_free(p);
	sqlite3_close(rdb);
	store_close(st);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return abort_why[0] != '\0' || nc_ok != (size_t)n ||
	    (applied && na_ok != (size_t)n);
}

static int
load_rows(const char *db, long n, struct outbox_event **all, size_t *count)
{
	struct store *st = NULL;
	int64_t after = 0;

	*count = 0;
	if ((*all = calloc((size_t)n, sizeof(**all))) == NULL || store_open(db, &st) != 0)
		return -1;
	while (*count < (size_t)n) {
		struct outbox_event *ev = NULL;
		size_t k = 0, want = (size_t)n - *count;

		if (store_outbox_fetch(st, after, want > 10000 ? 10000 : want, &ev, &k) != 0)
			break;
		if (k == 0)
			break;
		/* Take ownership of the strings; free only the array. */
		memcpy(*all + *count, ev, k * sizeof(*ev));
		*count += k;
		after = ev[k - 1].id;
		free(ev);
	}
	store_close(st);
	return 0;
}

static int
cmd_bare(const char *url, const char *db, long n)
{
	struct outbox_event *ev = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsOptions jo;
	jsStreamConfig sc;
	jsPubOptions po;
	jsErrCode jerr = 0;
	const char *subjects[] = { "bench.*" };
	size_t count = 0;
	double t0, js_ms, core_ms;
	natsStatus s;

	if (load_rows(db, n, &ev, &count) != 0 || count == 0)
		return 1;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 2048;	/* egw-natsd's window (BRIDGE_WINDOW) */
	if (connect_js(url, &nc, &js, &jo) != 0)
		return 1;
	jsStreamConfig_Init(&sc);
	sc.Name = "BENCH";
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Duplicates = (int64_t)600 * 1000000000;
	if ((s = js_AddStream(NULL, js, &sc, NULL, &jerr)) != NATS_OK &&
	    jerr != JSStreamNameExistErr) {
		fprintf(stderr, "bench_nats: BENCH stream: %s\n", natsStatus_GetText(s));
		return 1;
	}

	t0 = now_ms();
	jsPubOptions_Init(&po);
	for (size_t i = 0; i < count; i++) {
		po.MsgId = ev[i].event_id;
		s = js_PublishAsync(js, "bench.egress", ev[i].payload,
		    (int)strlen(ev[i].payload), &po);
		if (s != NATS_OK) {
			fprintf(stderr, "bench_nats: async publish: %s\n", natsStatus_GetText(s));
			return 1;
		}
	}
	jsPubOptions_Init(&po);
	po.MaxWait = 60000;
	if ((s = js_PublishAsyncComplete(js, &po)) != NATS_OK) {
		fprintf(stderr, "bench_nats: acks: %s\n", natsStatus_GetText(s));
		return 1;
	}
	js_ms = now_ms() - t0;

	t0 = now_ms();
	for (size_t i = 0; i < count; i++) {
		natsMsg *m = NULL;

		natsMsg_Create(&m, "bench.core", NULL, ev[i].payload, (int)strlen(ev[i].payload));
		natsMsgHeader_Set(m, "Nats-Msg-Id", ev[i].event_id);
		s = natsConnection_PublishMsg(nc, m);
		natsMsg_Destroy(m);
		if (s != NATS_OK)
			return 1;
	}
	if (natsConnection_FlushTimeout(nc, 60000) != NATS_OK)
		return 1;
	core_ms = now_ms() - t0;

	printf("{\"messages\":%zu,\"bare_js_async_acked_per_s\":%.0f,"
	    "\"bare_core_flush_per_s\":%.0f}\n", count, count / (js_ms / 1e3),
	    count / (core_ms / 1e3));
	store_outbox_events_free(ev, count);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}

static int
cmd_drain(const char *db, long timeout_s)
{
	struct store *st = NULL;
	int64_t initial = -1, b = 0, at_start = 0;
	double t_start = 0, t_end = 0, deadline = now_ms() + timeout_s * 1e3;

	if (store_open(db, &st) != 0 || store_outbox_backlog(st, &initial) != 0)
		return 1;
	while (now_ms() < deadline) {
		if (store_outbox_backlog(st, &b) != 0)
			continue;
		if (t_start == 0 && b < initial) {
			t_start = now_ms();
			at_start = b;
		}
		if (b == 0) {
			t_end = now_ms();
			break;
		}
		usleep(2000);
	}
	store_close(st);
	if (t_end == 0 || t_end <= t_start) {
		fprintf(stderr, "bench_nats: backlog not drained (%lld left)\n", (long long)b);
		return 1;
	}
	printf("{\"rows\":%lld,\"seconds\":%.3f,\"natsd_per_s\":%.0f}\n",
	    (long long)at_start, (t_end - t_start) / 1e3,
	    at_start / ((t_end - t_start) / 1e3));
	return 0;
}

int
main(int argc, char **argv)
{
	int rc = 2;

	log_init("bench", LOG_LEVEL_WARN);
	if (argc >= 5 && strcmp(argv[1], "latency") == 0) {
		enum lat_mode m = LAT_COMMIT;

		if (argc > 5 && strcmp(argv[5], "applied") == 0)
			m = LAT_APPLIED_DRY;
		else if (argc > 5 && strcmp(argv[5], "kernel") == 0)
			m = LAT_APPLIED_KERNEL;
		else if (argc > 5) {
			fprintf(stderr, "bench_nats: latency: mode is applied or kernel\n");
			return 2;
		}
		rc = cmd_latency(argv[2], argv[3], atol(argv[4]), m);
	}
	else if (argc >= 5 && strcmp(argv[1], "bare") == 0)
		rc = cmd_bare(argv[2], argv[3], atol(argv[4]));
	else if (argc >= 4 && strcmp(argv[1], "drain") == 0)
		rc = cmd_drain(argv[2], atol(argv[3]));
	else
		fprintf(stderr, "usage: bench_nats latency URL DB N [applied|kernel]\n"
		    "       bench_nats bare URL DB N\n"
		    "       bench_nats drain DB TIMEOUT_S\n");
	nats_Close();
	return rc;
}
