/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of audit.c: every event type queued through
 * the outbox of a real migrated SQLite file carries the earlier service's
 * fields plus network_id, event_id and type, with its own extras.
 */
#include "audit.h"
#include "err.h"
#include "log.h"
#include "policy.h"
#include "store.h"
#include "store_outbox.h"
#include "tap.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/egw-test-audit-XXXXXX";

static const char *const common[] = {
	"timestamp", "scenario_id", "action", "src_ip", "dst_ip", "dst_port",
	"protocol", "reason", "network_id", "event_id", "type", NULL
};

/* The newest outbox payload, parsed. */
static struct json_object *
last_payload(struct store *st)
{
	static int64_t after;
	struct outbox_event *ev;
	struct json_object *o = NULL;
	size_t n;

	if (store_outbox_fetch(st, after, 100, &ev, &n) != 0 || n == 0)
		return NULL;
	o = json_tokener_parse(ev[n - 1].payload);
	after = ev[n - 1].id;
	store_outbox_events_free(ev, n);
	return o;
}

static bool
has_common(struct json_object *o)
{
	for (size_t i = 0; common[i] != NULL; i++)
		if (!json_object_object_get_ex(o, common[i], NULL)) {
			tap_diag("missing %s", common[i]);
			return false;
		}
	return true;
}

static const char *
str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return "(null)";
	return json_object_get_string(v);
}

static bool
is_null(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && v == NULL;
}

int
main(void)
{
	static const struct store_actor actor = { .actor = "api:ops", .request_id = "rq-7" };
	static const char *const types[] = {
		"policy.created", "policy.updated", "policy.deleted",
		"policy.enabled", "policy.disabled", "policy.completed",
		"policy.expired",
	};
	struct store *st;
	struct policy *p = policy_new();
	struct policy_errors errs;
	struct egress_entry e;
	struct json_object *o;
	char path[128], cmd[160], id[OUTBOX_EVENT_ID_LEN], gen[16];

	log_init("test", LOG_LEVEL_ERROR);
	if (mkdtemp(dir) == NULL)
		return 99;
	snprintf(path, sizeof(path), "%s/egw.db", dir);
	is_int(store_open(path, &st), 0, "open");

	o = audit_payload_new("flow", "s", "", NULL, NULL);
	ok(has_common(o), "payload_new: every common key present");
	ok(is_null(o, "network_id") && is_null(o, "action") && is_null(o, "src_ip"),
	    "payload_new: empty and absent values are null");
	json_object_put(o);

	snprintf(p->scenario_id, sizeof(p->scenario_id), "scn-1");
	snprintf(p->network_id, sizeof(p->network_id), "net-1");
	p->id = 3;
	p->revision = 2;
	for (size_t i = 0; i < sizeof(types) / sizeof(*types); i++) {
		bool with_policy = strcmp(types[i], "policy.deleted") != 0 &&
		    strcmp(types[i], "policy.expired") != 0;

		is_int(audit_policy_event(st, types[i], p, &actor, 40 + (int)i, id),
		    0, "%s queued", types[i]);
		o = last_payload(st);
		ok(o && has_common(o), "%s: common keys", types[i]);
		is_str(str(o, "type"), types[i], "%s: type", types[i]);
		is_str(str(o, "action"), strchr(types[i], '.') + 1, "%s: action",
		    types[i]);
		is_str(str(o, "event_id"), id, "%s: event id", types[i]);
		is_str(str(o, "network_id"), "net-1", "%s: network_id", types[i]);
		is_str(str(o, "actor"), "api:ops", "%s: actor", types[i]);
		is_str(str(o, "request_id"), "rq-7", "%s: request id", types[i]);
		snprintf(gen, sizeof(gen), "%d", 40 + (int)i);
		is_str(str(o, "generation"), gen, "%s: generation", types[i]);
		ok(with_policy ? !is_null(o, "policy") : is_null(o, "policy"),
		    "%s: policy %s", types[i], with_policy ? "present" : "null");
		json_object_put(o);
	}
	is_int(audit_policy_event(st, "policy.renamed", p, NULL, 1, NULL),
	    EGW_E_INVALID, "unknown policy event type refused");

	is_int(audit_apply_event(st, true, 12, NULL, NULL), 0, "apply ok queued");
	o = last_payload(st);
	ok(o && has_common(o), "apply.succeeded: common keys");
	is_str(str(o, "type"), "apply.succeeded", "apply.succeeded: type");
	is_str(str(o, "generation"), "12", "apply.succeeded: generation");
	json_object_put(o);
	is_int(audit_apply_event(st, false, 13, "scn-1", "ruleset refused"), 0,
	    "apply failure queued");
	o = last_payload(st);
	is_str(str(o, "type"), "apply.failed", "apply.failed: type");
	is_str(str(o, "reason"), "ruleset refused", "apply.failed: reason");
	is_str(str(o, "scenario_id"), "scn-1", "apply.failed: scenario");
	json_object_put(o);

	is_int(audit_drift_event(st, 14, "table missing"), 0, "drift queued");
	o = last_payload(st);
	ok(o && has_common(o), "drift: common keys");
	is_str(str(o, "type"), "drift.repaired", "drift: type");
	is_str(str(o, "reason"), "table missing", "drift: reason");
	json_object_put(o);

	policy_errors_init(&errs);
	policy_errors_add(&errs, "/allowed_hosts/0", "hostnames are not supported yet");
	policy_errors_add(&errs, "/mode", "bad");
	is_int(audit_rejected_event(st, "scenario.created", "bad id;drop",
	    EGW_E_INVALID, &errs), 0, "rejected queued");
	o = last_payload(st);
	ok(o && has_common(o), "rejected: common keys");
	ok(is_null(o, "scenario_id"), "rejected: invalid scenario id not echoed");
	is_str(str(o, "code"), "invalid_policy", "rejected: code");
	is_str(str(o, "subject"), "scenario.created", "rejected: subject");
	is_str(str(o, "reason"), "/allowed_hosts/0: hostnames are not supported yet",
	    "rejected: reason is the first problem");
	{
		struct json_object *d;

		ok(json_object_object_get_ex(o, "details", &d) &&
		    json_object_array_length(d) == 2, "rejected: all details");
	}
	json_object_put(o);

	memset(&e, 0, sizeof(e));
	snprintf(e.scenario_id, sizeof(e.scenario_id), "scn-1");
	snprintf(e.action, sizeof(e.action), "deny");
	snprintf(e.src_ip, sizeof(e.src_ip), "100.64.1.5");
	snprintf(e.dst_ip, sizeof(e.dst_ip), "203.0.113.9");
	e.has_ports = true;
	e.dst_port = 443;
	e.src_port = 40000;
	snprintf(e.protocol, sizeof(e.protocol), "tcp");
	snprintf(e.reason, sizeof(e.reason), "default");
	snprintf(e.ts, sizeof(e.ts), "2026-01-01T00:00:00.000Z");
	is_int(audit_flow_event(st, &e), 0, "flow queued");
	o = last_payload(st);
	ok(o && has_common(o), "flow: common keys");
	is_str(str(o, "action"), "deny", "flow: action");
	is_str(str(o, "dst_ip"), "203.0.113.9", "flow: dst_ip");
	is_str(str(o, "dst_port"), "443", "flow: dst_port");
	is_str(str(o, "protocol"), "tcp", "flow: protocol");
	is_str(str(o, "reason"), "default", "flow: reason");
	is_str(str(o, "timestamp"), "2026-01-01T00:00:00.000Z",
	    "flow: the packet's time, not the queue time");
	ok(is_null(o, "network_id"), "flow: unknown network null");
	json_object_put(o);

	/* A scan of port 0 names port 0; a packet without ports names none. */
	e.dst_port = 0;
	is_int(audit_flow_event(st, &e), 0, "flow to port 0 queued");
	o = last_payload(st);
	is_str(str(o, "dst_port"), "0", "flow: dst_port 0 is a port");
	json_object_put(o);
	e.has_ports = false;
	snprintf(e.protocol, sizeof(e.protocol), "icmp");
	is_int(audit_flow_event(st, &e), 0, "flow without ports queued");
	o = last_payload(st);
	ok(o && is_null(o, "dst_port") && is_null(o, "src_port"),
	    "flow: no ports, both null");
	json_object_put(o);

	policy_free(p);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return tap_done();
}
