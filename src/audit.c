/* SPDX-License-Identifier: MIT */
/*
 * This file contains the builders of audit.egress event payloads.
 *
 * All events share the earlier service's flat shape so its consumers need
 * no change; fields that do not apply are null rather than absent, so every
 * payload has every common key.  The builders only queue rows in the
 * outbox; publishing is the NATS bridge's job.
 */
#include "audit.h"
#include "codec.h"
#include "err.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

static struct json_object *
str_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? json_object_new_string(s) : NULL;
}

struct json_object *
audit_payload_new(const char *type, const char *scenario_id,
    const char *network_id, const char *action, const char *reason)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	/* Order is the earlier service's; timestamp/event_id are filled by
	 * store_outbox_add (timestamp here only as a placeholder slot). */
	json_object_object_add(o, "timestamp", NULL);
	json_object_object_add(o, "scenario_id", str_or_null(scenario_id));
	json_object_object_add(o, "action", str_or_null(action));
	json_object_object_add(o, "src_ip", NULL);
	json_object_object_add(o, "dst_ip", NULL);
	json_object_object_add(o, "dst_port", NULL);
	json_object_object_add(o, "protocol", NULL);
	json_object_object_add(o, "reason", str_or_null(reason));
	json_object_object_add(o, "network_id", str_or_null(network_id));
	json_object_object_add(o, "event_id", NULL);
	json_object_object_add(o, "type", str_or_null(type));
	return o;
}

static const struct {
	const char *type;
	const char *action;
	bool with_policy;
} audit_policy_types[] = {
	{ "policy.created", "created", true },
	{ "policy.updated", "updated", true },
	{ "policy.deleted", "deleted", false },
	{ "policy.enabled", "enabled", true },
	{ "policy.disabled", "disabled", true },
	{ "policy.completed", "completed", true },
	{ "policy.expired", "expired", false },
};

static int
audit_queue(struct store *st, const char *type, const char *scenario_id,
    struct json_object *o, char event_id_out[OUTBOX_EVENT_ID_LEN])
{
	int rc;

	if (o == NULL)
		return EGW_E_NOMEM;
	rc = store_outbox_add(st, type, scenario_id, o, event_id_out);
	json_object_put(o);
	return rc;
}

int
audit_policy_event(struct store *st, const char *type, const struct policy *p,
    const struct store_actor *actor, int64_t generation,
    char event_id_out[OUTBOX_EVENT_ID_LEN])
{
	return audit_policy_event_text(st, type, p, NULL, actor, generation,
	    event_id_out);
}

int
audit_policy_event_text(struct store *st, const char *type,
    const struct policy *p, const char *policy_text,
    const struct store_actor *actor, int64_t generation,
    char event_id_out[OUTBOX_EVENT_ID_LEN])
{
	const char *who = actor != NULL && actor->actor != NULL ? actor->actor
	    : "unknown";
	struct json_object *o, *policy = NULL;
	size_t i, n = sizeof(audit_policy_types) / sizeof(*audit_policy_types);

	for (i = 0; i < n; i++)
		if (strcmp(audit_policy_types[i].type, type) == 0)
			break;
	if (i == n)
		return EGW_E_INVALID;
	o = audit_payload_new(type, p->scenario_id, p->network_id,
	    audit_policy_types[i].action, who);
	if (o == NULL)
		return EGW_E_NOMEM;
	if (audit_policy_types[i].with_policy && policy_text != NULL) {
		/* Printed as the text itself: building the same document
		 * as objects and printing it again was a third of what the
		 * writer spent on an update.  The payload is freed before
		 * this returns, while the caller still holds the text. */
		if ((policy = json_object_new_object()) != NULL)
			json_object_set_serializer(policy,
			    json_object_userdata_to_json_string,
			    (void *)(uintptr_t)policy_text, NULL);
	} else if (audit_policy_types[i].with_policy) {
		policy = codec_policy_to_json(p);
	}
	if (audit_policy_types[i].with_policy && policy == NULL) {
		json_object_put(o);
		return EGW_E_NOMEM;
	}
	json_object_object_add(o, "actor", json_object_new_string(who));
	json_object_object_add(o, "request_id", str_or_null(
	    actor != NULL ? actor->request_id : NULL));
	json_object_object_add(o, "revision", json_object_new_int64(p->revision));
	json_object_object_add(o, "generation", json_object_new_int64(generation));
	json_object_object_add(o, "profile", json_object_new_string(p->profile));
	json_object_object_add(o, "enabled", json_object_new_boolean(p->enabled));
	json_object_object_add(o, "mode",
	    json_object_new_string(policy_mode_name(p->mode)));
	json_object_object_add(o, "policy", policy);
	return audit_queue(st, type, p->scenario_id, o, event_id_out);
}

int
audit_apply_event(struct store *st, bool succeeded, int64_t generation,
    const char *scenario_id, const char *error)
{
	const char *type = succeeded ? "apply.succeeded" : "apply.failed";
	struct json_object *o = audit_payload_new(type, scenario_id, NULL,
	    succeeded ? "applied" : "failed", error);

	if (o != NULL)
		json_object_object_add(o, "generation",
		    json_object_new_int64(generation));
	return audit_queue(st, type, scenario_id, o, NULL);
}

int
audit_drift_event(struct store *st, int64_t generation, const char *what)
{
	struct json_object *o = audit_payload_new("drift.repaired", NULL, NULL,
	    "repaired", what);

	if (o != NULL)
		json_object_object_add(o, "generation",
		    json_object_new_int64(generation));
	return audit_queue(st, "drift.repaired", NULL, o, NULL);
}

int
audit_rejected_event(struct store *st, const char *subject,
    const char *scenario_id, int err, const struct policy_errors *errs)
{
	const char *sid = scenario_id != NULL &&
	    policy_valid_id(scenario_id, POLICY_SCENARIO_ID_MAX, false)
	    ? scenario_id : NULL;
	struct json_object *o, *details, *d;
	char reason[400];

	if (errs != NULL && errs->count > 0)
		snprintf(reason, sizeof(reason), "%s: %s",
		    errs->items[0].path[0] ? errs->items[0].path : "/",
		    errs->items[0].reason);
	else
		snprintf(reason, sizeof(reason), "%s", err_message(err));
	o = audit_payload_new("event.rejected", sid, NULL, "rejected", reason);
	if (o == NULL)
		return EGW_E_NOMEM;
	json_object_object_add(o, "subject", str_or_null(subject));
	json_object_object_add(o, "code", json_object_new_string(err_token(err)));
	details = json_object_new_array();
	for (size_t i = 0; details != NULL && errs != NULL && i < errs->count;
	    i++) {
		d = json_object_new_object();
		if (d == NULL)
			break;
		json_object_object_add(d, "path",
		    json_object_new_string(errs->items[i].path));
		json_object_object_add(d, "reason",
		    json_object_new_string(errs->items[i].reason));
		json_object_array_add(details, d);
	}
	json_object_object_add(o, "details", details);
	return audit_queue(st, "event.rejected", sid, o, NULL);
}

struct json_object *
audit_flow_payload(const struct egress_entry *e)
{
	struct json_object *o = audit_payload_new("flow", e->scenario_id,
	    e->network_id, e->action, e->reason);

	if (o == NULL)
		return NULL;
	if (e->ts[0] != '\0')
		json_object_object_add(o, "timestamp", json_object_new_string(e->ts));
	json_object_object_add(o, "src_ip", str_or_null(e->src_ip));
	json_object_object_add(o, "dst_ip", str_or_null(e->dst_ip));
	json_object_object_add(o, "dst_port", e->has_ports
	    ? json_object_new_int(e->dst_port) : NULL);
	json_object_object_add(o, "protocol", str_or_null(e->protocol));
	json_object_object_add(o, "src_port", e->has_ports
	    ? json_object_new_int(e->src_port) : NULL);
	if (e->id > 0)
		json_object_object_add(o, "log_id", json_object_new_int64(e->id));
	return o;
}

int
audit_flow_event(struct store *st, const struct egress_entry *e)
{
	return audit_queue(st, "flow", e->scenario_id, audit_flow_payload(e),
	    NULL);
}
