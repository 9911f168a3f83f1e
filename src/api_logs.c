/* SPDX-License-Identifier: MIT */
/*
 * This file contains GET /v1/logs: the egress log, newest first.
 *
 * Filters: scenario_id, action (allow | deny | would_deny), since and until
 * (RFC 3339; since inclusive, until exclusive); limit 1..EGRESS_QUERY_MAX
 * (default 100); cursor is the opaque next_cursor of the previous page (an
 * id bound, stable while new rows arrive).  Rows carry the earlier
 * service's audit field names (timestamp, src_ip, dst_ip, dst_port,
 * protocol, reason).
 */
#include "err.h"
#include "http.h"
#include "policy.h"
#include "route.h"
#include "store_egress.h"
#include "timefmt.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define API_LOGS_DEFAULT 100

static struct json_object *
api_str_or_null(const char *s)
{
	return s[0] ? json_object_new_string(s) : NULL;
}

static int
api_log_cb(const struct egress_entry *e, void *arg)
{
	struct json_object *list = arg, *o = json_object_new_object();

	if (o == NULL)
		return EGW_E_NOMEM;
	json_object_object_add(o, "id", json_object_new_int64(e->id));
	json_object_object_add(o, "timestamp", json_object_new_string(e->ts));
	json_object_object_add(o, "scenario_id", api_str_or_null(e->scenario_id));
	json_object_object_add(o, "network_id", api_str_or_null(e->network_id));
	json_object_object_add(o, "action", json_object_new_string(e->action));
	json_object_object_add(o, "src_ip", api_str_or_null(e->src_ip));
	json_object_object_add(o, "dst_ip", api_str_or_null(e->dst_ip));
	json_object_object_add(o, "src_port",
	    e->has_ports ? json_object_new_int(e->src_port) : NULL);
	json_object_object_add(o, "dst_port",
	    e->has_ports ? json_object_new_int(e->dst_port) : NULL);
	json_object_object_add(o, "protocol", api_str_or_null(e->protocol));
	json_object_object_add(o, "reason", json_object_new_string(e->reason));
	json_object_array_add(list, o);
	return 0;
}

static int
api_bad(struct http_req *req, const char *message, const char *field)
{
	req->error_message = message;
	req->error_field = field;
	return EGW_E_BADREQUEST;
}

int
api_logs_list(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp)
{
	static const char *const allowed[] = { "scenario_id", "action", "since",
	    "until", "limit", "cursor", NULL };
	struct egress_query q;
	struct json_object *o, *list;
	int64_t next = 0, ms;
	uint64_t limit, cursor;
	char buf[24];
	int rc;

	memset(&q, 0, sizeof(q));
	if ((rc = http_query_check(req, allowed)) != 0 ||
	    (rc = http_query_uint(req, "limit", 1, EGRESS_QUERY_MAX,
	    API_LOGS_DEFAULT, &limit)) != 0 ||
	    (rc = http_query_uint(req, "cursor", 1, INT64_MAX, 0, &cursor)) != 0)
		return rc;
	q.scenario_id = http_query_get(req, "scenario_id");
	q.action = http_query_get(req, "action");
	q.since = http_query_get(req, "since");
	q.until = http_query_get(req, "until");
	q.limit = (size_t)limit;
	q.before_id = (int64_t)cursor;
	if (q.scenario_id != NULL &&
	    !policy_valid_id(q.scenario_id, POLICY_SCENARIO_ID_MAX, false))
		return api_bad(req, "not a valid scenario_id", "scenario_id");
	if (q.action != NULL && !store_egress_valid_action(q.action))
		return api_bad(req, "action must be allow, deny or would_deny", "action");
	if (q.since != NULL && timefmt_parse(q.since, &ms) != 0)
		return api_bad(req, "not an RFC 3339 time", "since");
	if (q.until != NULL && timefmt_parse(q.until, &ms) != 0)
		return api_bad(req, "not an RFC 3339 time", "until");

	list = json_object_new_array();
	rc = store_egress_query(ctx->st, &q, api_log_cb, list, &next);
	if (rc != 0) {
		json_object_put(list);
		return rc == EGW_E_INVALID ? api_bad(req, "invalid filter", NULL) : rc;
	}
	o = json_object_new_object();
	json_object_object_add(o, "count",
	    json_object_new_int((int)json_object_array_length(list)));
	json_object_object_add(o, "logs", list);
	snprintf(buf, sizeof(buf), "%lld", (long long)next);
	json_object_object_add(o, "next_cursor", next > 0 ? json_object_new_string(buf) : NULL);
	return http_resp_json(resp, 200, o);
}
