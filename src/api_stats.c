/* SPDX-License-Identifier: MIT */
/*
 * This file contains GET /v1/stats.
 *
 * Two sources, and the body says which is which:
 *  - the kernel's nft counters (policy_counters, read back by the applier
 *    every few seconds) are the exact totals: every allowed new connection
 *    and every denied packet of a scenario is counted there;
 *  - the flow log (egress_log rows written by egw-flowlog from NFLOG) is
 *    the sampled detail: logging is rate-limited per scenario, so a flood
 *    yields far fewer rows than packets.
 * The earlier service's fields come first: total_policies, active_policies
 * (enabled), denied_requests and allowed_requests.  Per scenario the
 * request figures are the counter totals, or the number of logged packets
 * when the flow log already holds more (packets logged since the
 * applier's last counter read; every logged packet was counted first, so
 * both are lower bounds of the truth and the larger is the better one).
 * Logged packets without a scenario (no counter row: managed sources
 * without a policy, and spoofed packets from an interface that is no
 * scenario's) are added to the totals.  "deny" includes audit mode's
 * would_deny, which the kernel counts as denied (the earlier service had
 * no audit mode).
 * Then: "counters" (exact, nft), "flow_log" (sampled, with egw-flowlog's
 * own figures), per-scenario figures, the applier's and egw-natsd's status.
 */
#include "codec.h"
#include "err.h"
#include "http.h"
#include "route.h"
#include "store_api.h"
#include "store_egress.h"
#include "store_outbox.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The applier reads the kernel counters this often (src/applier.c). */
#define API_STATS_COUNTER_READ_S 5

struct api_stats_ctx {
	struct json_object *scenarios;	/* scenario_id -> object */
	int64_t allowed_packets, denied_packets;
	int64_t allowed_bytes, denied_bytes;
	char counters_at[32];		/* newest policy_counters.updated_at */
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
	json_object_object_add(o, "logged_allowed", json_object_new_int64(0));
	json_object_object_add(o, "logged_denied", json_object_new_int64(0));
	json_object_object_add(sc->scenarios, scenario_id, o);
	return o;
}

static int64_t
api_stats_get_int(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static void
api_stats_set_int(struct json_object *o, const char *key, int64_t v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
}

static int
api_stats_counter_cb(const struct store_counter_row *row, void *arg)
{
	struct api_stats_ctx *sc = arg;
	struct json_object *o = api_stats_entry(sc, row->scenario_id);

	api_stats_set_int(o, "allowed_packets", row->allowed_packets);
	api_stats_set_int(o, "denied_packets", row->denied_packets);
	api_stats_set_int(o, "allowed_bytes", row->allowed_bytes);
	api_stats_set_int(o, "denied_bytes", row->denied_bytes);
	sc->allowed_packets += row->allowed_packets;
	sc->denied_packets += row->denied_packets;
	sc->allowed_bytes += row->allowed_bytes;
	sc->denied_bytes += row->denied_bytes;
	/* RFC 3339 UTC with a fixed width: text order is time order */
	if (row->updated_at != NULL && strcmp(row->updated_at, sc->counters_at) > 0 &&
	    strlen(row->updated_at) < sizeof(sc->counters_at))
		snprintf(sc->counters_at, sizeof(sc->counters_at), "%s", row->updated_at);
	return 0;
}

static int
api_stats_log_cb(const char *scenario_id, int64_t allow, int64_t deny,
    int64_t would_deny, void *arg)
{
	struct json_object *o = api_stats_entry(arg, scenario_id);

	api_stats_set_int(o, "would_deny_requests", would_deny);
	api_stats_set_int(o, "logged_allowed", allow);
	api_stats_set_int(o, "logged_denied", deny + would_deny);
	return 0;
}

static int64_t
api_stats_max(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/*
 * Per scenario: requests = max(counted, logged); sums them into *allow and
 * *deny and the logged figures into *l_allow and *l_deny.
 */
static void
api_stats_finish(struct api_stats_ctx *sc, int64_t *allow, int64_t *deny,
    int64_t *l_allow, int64_t *l_deny)
{
	*allow = *deny = *l_allow = *l_deny = 0;
	json_object_object_foreach(sc->scenarios, key, o) {
		int64_t la = api_stats_get_int(o, "logged_allowed");
		int64_t ld = api_stats_get_int(o, "logged_denied");
		int64_t a = api_stats_max(api_stats_get_int(o, "allowed_packets"), la);
		int64_t d = api_stats_max(api_stats_get_int(o, "denied_packets"), ld);

		(void)key;
		api_stats_set_int(o, "allowed_requests", a);
		api_stats_set_int(o, "denied_requests", d);
		*allow += a;
		*deny += d;
		*l_allow += la;
		*l_deny += ld;
	}
}

static struct json_object *
api_stats_int_or_null(bool present, int64_t v)
{
	return present ? json_object_new_int64(v) : NULL;
}

static struct json_object *
api_stats_age(bool present, int64_t age_ms)
{
	return present && age_ms != INT64_MAX ? json_object_new_int64(age_ms) : NULL;
}

static struct json_object *
api_stats_flow_log(const struct store_api_flowlog *fl, int64_t allow,
    int64_t deny, int64_t would)
{
	struct json_object *o = json_object_new_object(), *rows;
	bool p = fl->present;

	json_object_object_add(o, "source",
	    json_object_new_string("nflog (rate-limited sample)"));
	json_object_object_add(o, "exact", json_object_new_boolean(false));
	json_object_object_add(o, "rows", rows = json_object_new_object());
	api_stats_set_int(rows, "allow", allow);
	api_stats_set_int(rows, "deny", deny);
	api_stats_set_int(rows, "would_deny", would);
	json_object_object_add(o, "reporting", json_object_new_boolean(p));
	json_object_object_add(o, "running", p ? json_object_new_boolean(fl->running) : NULL);
	json_object_object_add(o, "live", json_object_new_boolean(fl->live));
	json_object_object_add(o, "pid", api_stats_int_or_null(p, fl->pid));
	json_object_object_add(o, "heartbeat_at",
	    p ? json_object_new_string(fl->heartbeat_at) : NULL);
	json_object_object_add(o, "heartbeat_age_ms",
	    api_stats_age(p, fl->heartbeat_age_ms));
	json_object_object_add(o, "received", api_stats_int_or_null(p, fl->received));
	json_object_object_add(o, "written", api_stats_int_or_null(p, fl->written));
	json_object_object_add(o, "lost", api_stats_int_or_null(p, fl->lost));
	json_object_object_add(o, "overruns", api_stats_int_or_null(p, fl->overruns));
	json_object_object_add(o, "seq_lost", api_stats_int_or_null(p, fl->seq_lost));
	json_object_object_add(o, "queue_dropped",
	    api_stats_int_or_null(p, fl->queue_dropped));
	json_object_object_add(o, "write_dropped",
	    api_stats_int_or_null(p, fl->write_dropped));
	json_object_object_add(o, "batches", api_stats_int_or_null(p, fl->batches));
	json_object_object_add(o, "queue_depth", api_stats_int_or_null(p, fl->queue_depth));
	json_object_object_add(o, "queue_max", api_stats_int_or_null(p, fl->queue_max));
	json_object_object_add(o, "malformed", api_stats_int_or_null(p, fl->malformed));
	json_object_object_add(o, "foreign", api_stats_int_or_null(p, fl->foreign));
	json_object_object_add(o, "unknown_policy",
	    api_stats_int_or_null(p, fl->unknown_policy));
	json_object_object_add(o, "pruned", api_stats_int_or_null(p, fl->pruned));
	json_object_object_add(o, "outbox_pruned",
	    api_stats_int_or_null(p, fl->outbox_pruned));
	json_object_object_add(o, "outbox_dropped",
	    api_stats_int_or_null(p, fl->outbox_dropped));
	return o;
}

static struct json_object *
api_stats_natsd(const struct store_api_natsd *n)
{
	struct json_object *o = json_object_new_object();
	bool p = n->present;

	json_object_object_add(o, "reporting", json_object_new_boolean(p));
	json_object_object_add(o, "running", p ? json_object_new_boolean(n->running) : NULL);
	json_object_object_add(o, "live", json_object_new_boolean(n->live));
	json_object_object_add(o, "pid", api_stats_int_or_null(p, n->pid));
	json_object_object_add(o, "heartbeat_at",
	    p ? json_object_new_string(n->heartbeat_at) : NULL);
	json_object_object_add(o, "heartbeat_age_ms",
	    api_stats_age(p, n->heartbeat_age_ms));
	json_object_object_add(o, "connected",
	    p ? json_object_new_boolean(n->connected) : NULL);
	json_object_object_add(o, "jetstream",
	    p ? json_object_new_boolean(n->jetstream) : NULL);
	json_object_object_add(o, "published", api_stats_int_or_null(p, n->published));
	json_object_object_add(o, "failed", api_stats_int_or_null(p, n->failed));
	json_object_object_add(o, "rejected", api_stats_int_or_null(p, n->rejected));
	json_object_object_add(o, "events", api_stats_int_or_null(p, n->events));
	json_object_object_add(o, "changes", api_stats_int_or_null(p, n->changes));
	json_object_object_add(o, "reconnects", api_stats_int_or_null(p, n->reconnects));
	json_object_object_add(o, "backlog", api_stats_int_or_null(p, n->backlog));
	return o;
}

int
api_stats_get(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp)
{
	static const char *const allowed[] = { NULL };
	struct api_stats_ctx sc = { 0 };
	struct store_policy_totals pt;
	struct store_applier_state as;
	struct store_api_flowlog fl;
	struct store_api_natsd nd;
	struct json_object *o, *app;
	int64_t logged[3], backlog = -1;
	int64_t req_allow, req_deny, l_allow, l_deny;
	int rc;

	if ((rc = http_query_check(req, allowed)) != 0)
		return rc;
	if ((rc = store_api_policy_totals(ctx->st, &pt)) != 0 ||
	    (rc = store_api_flowlog(ctx->st, &fl)) != 0 ||
	    (rc = store_api_natsd(ctx->st, &nd)) != 0)
		return rc;
	sc.scenarios = json_object_new_object();
	if ((rc = store_api_egress_per_scenario(ctx->st, logged, api_stats_log_cb,
	    &sc)) != 0 ||
	    (rc = store_api_counters(ctx->st, api_stats_counter_cb, &sc)) != 0 ||
	    (rc = store_api_applier_state(ctx->st, false, &as)) != 0) {
		json_object_put(sc.scenarios);
		return rc;
	}
	if (store_outbox_backlog(ctx->st, &backlog) != 0)
		backlog = -1;
	api_stats_finish(&sc, &req_allow, &req_deny, &l_allow, &l_deny);
	/*
	 * Logged rows without a scenario (mark 0: no policy, or spoofed).
	 * egress_log keeps no mark, so a deleted policy's row written after
	 * egw-flowlog's grace period is counted here as well as in its
	 * scenario's counter (API.md says so).
	 */
	req_allow += logged[0] - l_allow;
	req_deny += logged[1] + logged[2] - l_deny;

	o = json_object_new_object();
	api_stats_set_int(o, "total_policies", pt.total);
	api_stats_set_int(o, "active_policies", pt.enabled);
	api_stats_set_int(o, "denied_requests", req_deny);
	api_stats_set_int(o, "allowed_requests", req_allow);
	api_stats_set_int(o, "would_deny_requests", logged[2]);
	api_stats_set_int(o, "allowed_packets", sc.allowed_packets);
	api_stats_set_int(o, "denied_packets", sc.denied_packets);
	json_object_object_add(o, "policies_by_status", app = json_object_new_object());
	api_stats_set_int(app, "pending", pt.pending);
	api_stats_set_int(app, "applied", pt.applied);
	api_stats_set_int(app, "failed", pt.failed);

	json_object_object_add(o, "counters", app = json_object_new_object());
	json_object_object_add(app, "source", json_object_new_string("nft counters"));
	json_object_object_add(app, "exact", json_object_new_boolean(true));
	api_stats_set_int(app, "allowed_packets", sc.allowed_packets);
	api_stats_set_int(app, "denied_packets", sc.denied_packets);
	api_stats_set_int(app, "allowed_bytes", sc.allowed_bytes);
	api_stats_set_int(app, "denied_bytes", sc.denied_bytes);
	json_object_object_add(app, "updated_at", sc.counters_at[0]
	    ? json_object_new_string(sc.counters_at) : NULL);
	api_stats_set_int(app, "read_interval_s", API_STATS_COUNTER_READ_S);
	json_object_object_add(o, "flow_log", api_stats_flow_log(&fl, logged[0], logged[1],
	    logged[2]));
	json_object_object_add(o, "scenarios", sc.scenarios);

	app = json_object_new_object();
	api_stats_set_int(app, "desired_generation", as.desired_generation);
	api_stats_set_int(app, "applied_generation", as.applied_generation);
	api_stats_set_int(app, "generation_lag",
	    as.desired_generation - as.applied_generation);
	json_object_object_add(app, "dry_run",
	    as.dry_run < 0 ? NULL : json_object_new_boolean(as.dry_run));
	json_object_object_add(app, "last_apply_at", as.last_apply_at[0]
	    ? json_object_new_string(as.last_apply_at) : NULL);
	json_object_object_add(app, "last_duration_ms", as.has_duration
	    ? codec_ms_to_json(as.last_duration_ms) : NULL);
	json_object_object_add(app, "last_error", as.last_error
	    ? json_object_new_string(as.last_error) : NULL);
	json_object_object_add(app, "heartbeat_at", as.heartbeat_at[0]
	    ? json_object_new_string(as.heartbeat_at) : NULL);
	json_object_object_add(o, "applier", app);
	json_object_object_add(o, "natsd", api_stats_natsd(&nd));
	json_object_object_add(o, "outbox_backlog",
	    backlog < 0 ? NULL : json_object_new_int64(backlog));
	store_api_applier_state_free(&as);
	return http_resp_json(resp, 200, o);
}
