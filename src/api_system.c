/* SPDX-License-Identifier: MIT */
/*
 * This file contains the API's system endpoints: /health (the earlier
 * service's body), /healthz (liveness), /readyz (database writable and
 * applier heartbeat fresh), /metrics (Prometheus text), /v1/profiles and
 * /v1/ruleset.
 *
 * /metrics adds to the pool's request counters what other processes
 * publish in SQLite: policy totals, generations, the outbox backlog, the
 * kernel's exact counters, and egw-flowlog's and egw-natsd's
 * component_status figures (absent until the component first reports).
 *
 * /health and /healthz do not touch the database: they answer whether this
 * worker runs.  /readyz is the one that says whether the gateway can do its
 * job, and answers 503 with the failing checks otherwise.
 */
#include "codec.h"
#include "config.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "route.h"
#include "spare.h"
#include "store_api.h"
#include "store_outbox.h"
#include "store_policy.h"
#include "timefmt.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * An applier heartbeat older than this makes /readyz fail: the applier
 * writes one every 5 s whatever its reconcile interval (src/applier.c
 * HEARTBEAT_MS), so this is three missed heartbeats.  A heartbeat as far
 * in the future fails too: the clock was set back, and a dead applier's
 * last word must not stay fresh until the clock catches up.
 */
#define API_HEARTBEAT_STALE_S 15
/*
 * /readyz is open to anyone who reaches the port: it takes the write lock
 * on every call, but commits its probe (a flush, and a wake-up for every
 * other connection) at most this often per worker.
 */
#define API_WRITE_PROBE_MS 5000

static const char *const no_params[] = { NULL };

int
api_health(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp)
{
	struct json_object *o;
	int rc;

	if ((rc = http_query_check(req, no_params)) != 0)
		return rc;
	o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string("ok"));
	json_object_object_add(o, "service",
	    json_object_new_string("forge_egress_gateway"));
	json_object_object_add(o, "dry_run", json_object_new_boolean(ctx->cfg->dry_run));
	return http_resp_json(resp, 200, o);
}

int
api_healthz(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp)
{
	struct json_object *o;
	int rc;

	if ((rc = http_query_check(req, no_params)) != 0)
		return rc;
	o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string("ok"));
	return http_resp_json(resp, 200, o);
}

/* Seconds since an RFC 3339 time (negative: in the future); false when
 * there is no time. */
static bool
api_age_s(const char *ts, int64_t *age)
{
	int64_t ms;

	if (ts[0] == '\0' || timefmt_parse(ts, &ms) != 0)
		return false;
	*age = (timefmt_now_ms() - ms) / 1000;
	return true;
}

static struct json_object *
api_check(bool ok, const char *reason)
{
	struct json_object *c = json_object_new_object();

	json_object_object_add(c, "ok", json_object_new_boolean(ok));
	if (reason != NULL)
		json_object_object_add(c, "reason", json_object_new_string(reason));
	return c;
}

int
api_readyz(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp)
{
	struct store_applier_state as;
	struct json_object *o, *checks, *details, *app;
	const int64_t stale = API_HEARTBEAT_STALE_S;
	static int64_t api_write_proved_ms = INT64_MIN / 2;
	int64_t age = 0;
	bool db_ok, app_ok, commit;
	const char *why = NULL;
	char reason[192];
	int rc;

	if ((rc = http_query_check(req, no_params)) != 0)
		return rc;
	checks = json_object_new_object();
	details = json_object_new_array();

	/* It takes the write lock, and may wait for it behind the writer:
	 * a spare worker accepts meanwhile. */
	commit = timefmt_monotonic_ms() - api_write_proved_ms >= API_WRITE_PROBE_MS;
	spare_step_out();
	rc = store_api_writable(ctx->st, commit);
	spare_step_in();
	if (rc == 0 && commit)
		api_write_proved_ms = timefmt_monotonic_ms();
	db_ok = rc == 0;
	json_object_object_add(checks, "database",
	    api_check(db_ok, db_ok ? NULL : err_message(rc)));
	if (!db_ok) {
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "path", json_object_new_string("database"));
		json_object_object_add(d, "reason", json_object_new_string(err_message(rc)));
		json_object_array_add(details, d);
		why = "the database is not writable";
	}

	rc = store_api_applier_state(ctx->st, false, &as);
	if (rc != 0) {
		app_ok = false;
		snprintf(reason, sizeof(reason), "cannot read applier state: %s",
		    err_message(rc));
	} else if (!api_age_s(as.heartbeat_at, &age)) {
		app_ok = false;
		snprintf(reason, sizeof(reason), "the applier has never reported");
	} else if (as.stopped) {
		/* Also while a restarted applier runs its first reconcile:
		 * it reports only after it. */
		app_ok = false;
		snprintf(reason, sizeof(reason), "the applier is not running:"
		    " its last report (%s) said it stopped, and none came"
		    " since (the kernel keeps the rules it applied)",
		    as.heartbeat_at);
	} else {
		app_ok = age <= stale && age >= -stale;
		if (age >= 0)
			snprintf(reason, sizeof(reason),
			    "the applier's last heartbeat is %lld s old (limit %lld s)",
			    (long long)age, (long long)stale);
		else
			snprintf(reason, sizeof(reason),
			    "the applier's last heartbeat is %lld s in the future"
			    " (the clock was set back?)", (long long)-age);
	}
	app = api_check(app_ok, app_ok ? NULL : reason);
	if (rc == 0) {
		json_object_object_add(app, "heartbeat_at", as.heartbeat_at[0]
		    ? json_object_new_string(as.heartbeat_at) : NULL);
		json_object_object_add(app, "desired_generation",
		    json_object_new_int64(as.desired_generation));
		json_object_object_add(app, "applied_generation",
		    json_object_new_int64(as.applied_generation));
		store_api_applier_state_free(&as);
	}
	json_object_object_add(checks, "applier", app);
	if (!app_ok) {
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "path", json_object_new_string("applier"));
		json_object_object_add(d, "reason", json_object_new_string(reason));
		json_object_array_add(details, d);
		if (why == NULL)
			why = "the applier is not running";
	}

	o = json_object_new_object();
	if (db_ok && app_ok) {
		json_object_put(details);
		json_object_object_add(o, "status", json_object_new_string("ready"));
		json_object_object_add(o, "checks", checks);
		return http_resp_json(resp, 200, o);
	}
	{
		struct json_object *e = json_object_new_object();

		json_object_object_add(e, "code",
		    json_object_new_string(err_token(EGW_E_UNAVAILABLE)));
		json_object_object_add(e, "message", json_object_new_string(why));
		json_object_object_add(e, "field", NULL);
		json_object_object_add(e, "details", details);
		json_object_object_add(o, "error", e);
		json_object_object_add(o, "request_id",
		    json_object_new_string(ctx->request_id));
		json_object_object_add(o, "status", json_object_new_string("not_ready"));
		json_object_object_add(o, "checks", checks);
	}
	http_resp_add_header(resp, "Retry-After", "1");
	return http_resp_json(resp, err_http_status(EGW_E_UNAVAILABLE), o);
}

static int
api_profile_cb(const struct store_profile *pr, void *arg)
{
	struct json_object *list = arg, *o, *rules;

	o = json_object_new_object();
	rules = json_object_new_array();
	json_object_object_add(o, "name", json_object_new_string(pr->name));
	json_object_object_add(o, "description", json_object_new_string(pr->description));
	json_object_object_add(o, "uses_policy_entries",
	    json_object_new_boolean(pr->uses_policy_entries));
	json_object_object_add(o, "builtin", json_object_new_boolean(pr->builtin));
	json_object_object_add(o, "error", pr->error[0] != '\0' ?
	    json_object_new_string(pr->error) : NULL);
	for (size_t i = 0; i < pr->n_rules; i++) {
		const struct policy_rule *r = &pr->rules[i];
		struct json_object *jr = json_object_new_object();
		struct json_object *ports = json_object_new_array();

		json_object_object_add(jr, "proto",
		    json_object_new_string(netaddr_proto_name(r->proto)));
		json_object_object_add(jr, "dest",
		    r->has_dest ? codec_prefix_to_json(&r->dest) : NULL);
		for (size_t j = 0; j < r->n_ports; j++)
			json_object_array_add(ports, codec_port_range_to_json(&r->ports[j]));
		json_object_object_add(jr, "ports", ports);
		json_object_array_add(rules, jr);
	}
	json_object_object_add(o, "rules", rules);
	json_object_array_add(list, o);
	return 0;
}

int
api_profiles_list(struct api_ctx *ctx, struct http_req *req,
    struct http_resp *resp)
{
	struct json_object *o, *list;
	int rc;

	if ((rc = http_query_check(req, no_params)) != 0)
		return rc;
	list = json_object_new_array();
	if ((rc = store_profile_list(ctx->st, api_profile_cb, list)) != 0) {
		json_object_put(list);
		return rc;
	}
	o = json_object_new_object();
	json_object_object_add(o, "count",
	    json_object_new_int((int)json_object_array_length(list)));
	json_object_object_add(o, "profiles", list);
	return http_resp_json(resp, 200, o);
}

int
api_ruleset_get(struct api_ctx *ctx, struct http_req *req,
    struct http_resp *resp)
{
	struct store_applier_state as;
	struct json_object *o;
	int rc;

	if ((rc = http_query_check(req, no_params)) != 0)
		return rc;
	if ((rc = store_api_applier_state(ctx->st, true, &as)) != 0)
		return rc;
	o = json_object_new_object();
	json_object_object_add(o, "table", json_object_new_string("inet forge_egress"));
	json_object_object_add(o, "generation",
	    json_object_new_int64(as.applied_generation));
	json_object_object_add(o, "desired_generation",
	    json_object_new_int64(as.desired_generation));
	json_object_object_add(o, "dry_run",
	    as.dry_run < 0 ? NULL : json_object_new_boolean(as.dry_run));
	json_object_object_add(o, "applied_at", as.last_apply_at[0]
	    ? json_object_new_string(as.last_apply_at) : NULL);
	json_object_object_add(o, "duration_ms", as.has_duration
	    ? codec_ms_to_json(as.last_duration_ms) : NULL);
	json_object_object_add(o, "error", as.last_error
	    ? json_object_new_string(as.last_error) : NULL);
	json_object_object_add(o, "ruleset", as.rendered_ruleset
	    ? json_object_new_string(as.rendered_ruleset) : NULL);
	store_api_applier_state_free(&as);
	return http_resp_json(resp, 200, o);
}

static int
api_metrics_counter_cb(const struct store_counter_row *row, void *arg)
{
	int64_t *kc = arg;

	kc[0] += row->allowed_packets;
	kc[1] += row->denied_packets;
	return 0;
}

/* egw-flowlog's figures; its counters restart with the process. */
static void
api_metrics_flowlog(FILE *f, const struct store_api_flowlog *fl)
{
	metrics_write_one(f, "egw_flowlog_received_total", "counter",
	    "NFLOG messages egw-flowlog received (sampled detail; exact totals are egw_kernel_packets_total).",
	    fl->received);
	metrics_write_one(f, "egw_flowlog_written_total", "counter",
	    "Egress-log rows egw-flowlog committed.", fl->written);
	metrics_write_one(f, "egw_flowlog_lost_total", "counter",
	    "Log messages lost (sequence gaps or overruns, queue and write drops).",
	    fl->lost);
	metrics_write_one(f, "egw_flowlog_overruns_total", "counter",
	    "Netlink receive buffer overruns (ENOBUFS).", fl->overruns);
	metrics_write_one(f, "egw_flowlog_batches_total", "counter",
	    "Write transactions egw-flowlog committed.", fl->batches);
	metrics_write_one(f, "egw_flowlog_outbox_dropped_total", "counter",
	    "Flow events deleted by retention before egw-natsd published them.",
	    fl->outbox_dropped);
	metrics_write_one(f, "egw_flowlog_queue_depth", "gauge",
	    "Log messages waiting for the writer.", fl->queue_depth);
	if (fl->heartbeat_age_ms != INT64_MAX)
		metrics_write_one(f, "egw_flowlog_heartbeat_age_seconds", "gauge",
		    "Seconds since egw-flowlog last reported.", fl->heartbeat_age_ms / 1000);
}

static void
api_metrics_natsd(FILE *f, const struct store_api_natsd *nd)
{
	metrics_write_one(f, "egw_natsd_connected", "gauge",
	    "1 when egw-natsd is up and connected to NATS.", nd->connected);
	metrics_write_one(f, "egw_natsd_jetstream", "gauge",
	    "1 when egw-natsd uses JetStream.", nd->jetstream);
	metrics_write_one(f, "egw_natsd_published_total", "counter",
	    "Audit events egw-natsd published (acknowledged).", nd->published);
	metrics_write_one(f, "egw_natsd_failed_total", "counter",
	    "Audit publications that failed and will be retried.", nd->failed);
	metrics_write_one(f, "egw_natsd_rejected_total", "counter",
	    "Scenario events refused as malformed or invalid.", nd->rejected);
	metrics_write_one(f, "egw_natsd_backlog", "gauge",
	    "Outbox events egw-natsd has not delivered yet.", nd->backlog);
	if (nd->heartbeat_age_ms != INT64_MAX)
		metrics_write_one(f, "egw_natsd_heartbeat_age_seconds", "gauge",
		    "Seconds since egw-natsd last reported.", nd->heartbeat_age_ms / 1000);
}

int
api_metrics(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp)
{
	const char *names[METRICS_MAX_ROUTES];
	struct store_policy_totals pt;
	struct store_applier_state as;
	struct store_api_flowlog fl;
	struct store_api_natsd nd;
	const struct route *routes;
	int64_t backlog = -1, age, kc[2] = { 0, 0 };
	size_t n_routes, len = 0;
	unsigned accepting, waiting, parked;
	char *text = NULL;
	FILE *f;
	int rc;

	if ((rc = http_query_check(req, no_params)) != 0)
		return rc;
	routes = route_table(&n_routes);
	for (size_t i = 0; i < n_routes && i < METRICS_MAX_ROUTES; i++)
		names[i] = routes[i].name;
	if ((rc = store_api_policy_totals(ctx->st, &pt)) != 0)
		return rc;
	if ((rc = store_api_flowlog(ctx->st, &fl)) != 0 ||
	    (rc = store_api_natsd(ctx->st, &nd)) != 0 ||
	    (rc = store_api_counters(ctx->st, api_metrics_counter_cb, kc)) != 0)
		return rc;
	if ((rc = store_api_applier_state(ctx->st, false, &as)) != 0)
		return rc;
	if (store_outbox_backlog(ctx->st, &backlog) != 0)
		backlog = -1;
	f = open_memstream(&text, &len);
	if (f == NULL) {
		store_api_applier_state_free(&as);
		return EGW_E_NOMEM;
	}
	if (ctx->metrics != NULL)
		metrics_write(ctx->metrics, names, f);
	if (spare_census(&accepting, &waiting, &parked))
		fprintf(f, "# HELP egw_api_workers_by_state Worker processes by what"
		    " they do now (with EGW_SPARE_WORKERS > 0): accepting requests,"
		    " waiting for the writer or the applier, parked spares.\n"
		    "# TYPE egw_api_workers_by_state gauge\n"
		    "egw_api_workers_by_state{state=\"accepting\"} %u\n"
		    "egw_api_workers_by_state{state=\"waiting\"} %u\n"
		    "egw_api_workers_by_state{state=\"parked\"} %u\n",
		    accepting, waiting, parked);
	fprintf(f, "# HELP egw_policies Stored policies by state.\n"
	    "# TYPE egw_policies gauge\n"
	    "egw_policies{state=\"total\"} %lld\n"
	    "egw_policies{state=\"enabled\"} %lld\n"
	    "egw_policies{state=\"pending\"} %lld\n"
	    "egw_policies{state=\"applied\"} %lld\n"
	    "egw_policies{state=\"failed\"} %lld\n"
	    "egw_policies{state=\"audit_mode\"} %lld\n",
	    (long long)pt.total, (long long)pt.enabled, (long long)pt.pending,
	    (long long)pt.applied, (long long)pt.failed, (long long)pt.audit_mode);
	fprintf(f, "# HELP egw_generation_desired Desired-state generation.\n"
	    "# TYPE egw_generation_desired gauge\n"
	    "egw_generation_desired %lld\n"
	    "# HELP egw_generation_applied Generation the applier last applied.\n"
	    "# TYPE egw_generation_applied gauge\n"
	    "egw_generation_applied %lld\n"
	    "# HELP egw_generation_lag Desired minus applied generation.\n"
	    "# TYPE egw_generation_lag gauge\n"
	    "egw_generation_lag %lld\n",
	    (long long)as.desired_generation, (long long)as.applied_generation,
	    (long long)(as.desired_generation - as.applied_generation));
	if (backlog >= 0)
		fprintf(f, "# HELP egw_outbox_backlog Audit events waiting for NATS.\n"
		    "# TYPE egw_outbox_backlog gauge\n"
		    "egw_outbox_backlog %lld\n", (long long)backlog);
	if (api_age_s(as.heartbeat_at, &age))
		fprintf(f, "# HELP egw_applier_heartbeat_age_seconds Seconds since the applier's last heartbeat.\n"
		    "# TYPE egw_applier_heartbeat_age_seconds gauge\n"
		    "egw_applier_heartbeat_age_seconds %lld\n", (long long)age);
	if (as.has_duration)
		fprintf(f, "# HELP egw_apply_last_duration_seconds Duration of the last apply.\n"
		    "# TYPE egw_apply_last_duration_seconds gauge\n"
		    "egw_apply_last_duration_seconds %.6f\n", as.last_duration_ms / 1000.0);
	store_api_applier_state_free(&as);
	fprintf(f, "# HELP egw_kernel_packets_total Packets the nft counters counted (exact; allowed = new connections), as the applier last read them.\n"
	    "# TYPE egw_kernel_packets_total counter\n"
	    "egw_kernel_packets_total{verdict=\"allow\"} %lld\n"
	    "egw_kernel_packets_total{verdict=\"deny\"} %lld\n",
	    (long long)kc[0], (long long)kc[1]);
	/* Always: a component that never reported, or stopped, is down. */
	metrics_write_one(f, "egw_flowlog_up", "gauge",
	    "1 when egw-flowlog runs and reported in the last 15 s.", fl.live);
	metrics_write_one(f, "egw_natsd_up", "gauge",
	    "1 when egw-natsd runs and reported in the last 15 s.", nd.live);
	if (fl.present)
		api_metrics_flowlog(f, &fl);
	if (nd.present)
		api_metrics_natsd(f, &nd);
	if (fclose(f) != 0 || text == NULL) {
		free(text);
		return EGW_E_NOMEM;
	}
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return http_resp_set_body(resp, 200, text);
}
