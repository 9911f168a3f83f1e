/* SPDX-License-Identifier: MIT */
/*
 * This file contains GET /v1/stats.
 *
 * The earlier service's fields come first: total_policies, active_policies
 * (enabled), denied_requests and allowed_requests (egress log rows; deny
 * counts the audit-mode would_deny too, since the earlier service had no
 * audit mode).  Then the kernel's exact packet counters (as the applier
 * last read them), per-scenario figures and the applier's status.
 */
#include "err.h"
#include "http.h"
#include "route.h"
#include "store_api.h"
#include "store_egress.h"
#include "store_outbox.h"

#include <json-c/json.h>
#include <string.h>

struct api_stats_ctx {
	struct json_object *scenarios;	/* scenario_id -> object */
	int64_t allowed_packets, denied_packets;
};

static struct json_object *
api_stats_entry(struct api_stats_ctx *sc, const char *scenario_id)
{
	struct json_object *o;

	if (json_object_object_get_ex(sc->scenarios, scenario_id, &o))
		return o;
	o = json_object_new_object();
	json_object_object_add(o, "allowed_requests", json_object_new_int64(0));
	json_object_object_add(o, "denied_requests", json_object_new_int64(0));
	json_object_object_add(o, "would_deny_requests", json_object_new_int64(0));
	json_object_object_add(o, "allowed_packets", json_object_new_int64(0));
	json_object_object_add(o, "denied_packets", json_object_new_int64(0));
	json_object_object_add(o, "allowed_bytes", json_object_new_int64(0));
	json_object_object_add(o, "denied_bytes", json_object_new_int64(0));
	json_object_object_add(sc->scenarios, scenario_id, o);
	return o;
}

static int
api_stats_counter_cb(const struct store_counter_row *row, void *arg)
{
	struct api_stats_ctx *sc = arg;
	struct json_object *o = api_stats_entry(sc, row->scenario_id);

	json_object_object_add(o, "allowed_packets", json_object_new_int64(row->allowed_packets));
	json_object_object_add(o, "denied_packets", json_object_new_int64(row->denied_packets));
	json_object_object_add(o, "allowed_bytes", json_object_new_int64(row->allowed_bytes));
	json_object_object_add(o, "denied_bytes", json_object_new_int64(row->denied_bytes));
	sc->allowed_packets += row->allowed_packets;
	sc->denied_packets += row->denied_packets;
	return 0;
}

static int
api_stats_log_cb(const char *scenario_id, int64_t allow, int64_t deny,
    int64_t would_deny, void *arg)
{
	struct json_object *o = api_stats_entry(arg, scenario_id);

	json_object_object_add(o, "allowed_requests", json_object_new_int64(allow));
	json_object_object_add(o, "denied_requests", json_object_new_int64(deny));
	json_object_object_add(o, "would_deny_requests", json_object_new_int64(would_deny));
	return 0;
}

int
api_stats_get(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp)
{
	static const char *const allowed[] = { NULL };
	struct api_stats_ctx sc = { 0 };
	struct store_policy_totals pt;
	struct store_applier_state as;
	struct json_object *o, *app;
	int64_t allow = 0, deny = 0, would = 0, backlog = -1;
	int rc;

	if ((rc = http_query_check(req, allowed)) != 0)
		return rc;
	if ((rc = store_api_policy_totals(ctx->st, &pt)) != 0 ||
	    (rc = store_egress_counts(ctx->st, NULL, NULL, &allow, &deny, &would)) != 0)
		return rc;
	sc.scenarios = json_object_new_object();
	if ((rc = store_api_egress_per_scenario(ctx->st, api_stats_log_cb, &sc)) != 0 ||
	    (rc = store_api_counters(ctx->st, api_stats_counter_cb, &sc)) != 0 ||
	    (rc = store_api_applier_state(ctx->st, false, &as)) != 0) {
		json_object_put(sc.scenarios);
		return rc;
	}
	if (store_outbox_backlog(ctx->st, &backlog) != 0)
		backlog = -1;

	o = json_object_new_object();
	json_object_object_add(o, "total_policies", json_object_new_int64(pt.total));
	json_object_object_add(o, "active_policies", json_object_new_int64(pt.enabled));
	json_object_object_add(o, "denied_requests", json_object_new_int64(deny + would));
	json_object_object_add(o, "allowed_requests", json_object_new_int64(allow));
	json_object_object_add(o, "would_deny_requests", json_object_new_int64(would));
	json_object_object_add(o, "allowed_packets", json_object_new_int64(sc.allowed_packets));
	json_object_object_add(o, "denied_packets", json_object_new_int64(sc.denied_packets));
	json_object_object_add(o, "policies_by_status", app = json_object_new_object());
	json_object_object_add(app, "pending", json_object_new_int64(pt.pending));
	json_object_object_add(app, "applied", json_object_new_int64(pt.applied));
	json_object_object_add(app, "failed", json_object_new_int64(pt.failed));
	json_object_object_add(o, "scenarios", sc.scenarios);

	app = json_object_new_object();
	json_object_object_add(app, "desired_generation",
	    json_object_new_int64(as.desired_generation));
	json_object_object_add(app, "applied_generation",
	    json_object_new_int64(as.applied_generation));
	json_object_object_add(app, "generation_lag",
	    json_object_new_int64(as.desired_generation - as.applied_generation));
	json_object_object_add(app, "dry_run",
	    as.dry_run < 0 ? NULL : json_object_new_boolean(as.dry_run));
	json_object_object_add(app, "last_apply_at", as.last_apply_at[0]
	    ? json_object_new_string(as.last_apply_at) : NULL);
	json_object_object_add(app, "last_duration_ms", as.has_duration
	    ? json_object_new_double(as.last_duration_ms) : NULL);
	json_object_object_add(app, "last_error", as.last_error
	    ? json_object_new_string(as.last_error) : NULL);
	json_object_object_add(app, "heartbeat_at", as.heartbeat_at[0]
	    ? json_object_new_string(as.heartbeat_at) : NULL);
	json_object_object_add(o, "applier", app);
	json_object_object_add(o, "outbox_backlog",
	    backlog < 0 ? NULL : json_object_new_int64(backlog));
	store_api_applier_state_free(&as);
	return http_resp_json(resp, 200, o);
}
