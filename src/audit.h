/* SPDX-License-Identifier: MIT */
/*
 * This file contains the audit events published on audit.egress.
 *
 * Every payload keeps the earlier service's fields so its consumers keep
 * working: {timestamp, scenario_id, action, src_ip, dst_ip, dst_port,
 * protocol, reason}, plus network_id, event_id (de-duplication id) and
 * type.  Fields that do not apply to an event are JSON null.  Types:
 *   policy.created|updated|deleted|enabled|disabled|completed|expired
 *       action = "created", "updated", ...; reason = the actor; adds actor,
 *       request_id, revision, generation, profile, enabled, mode and
 *       "policy" (the API representation after the change; null for
 *       deleted/expired)
 *   apply.succeeded|failed   action "applied"/"failed"; reason = error or
 *       null; adds generation (and scenario_id when the failure is one
 *       scenario's)
 *   drift.repaired           action "repaired"; reason = what was found
 *   event.rejected           action "rejected"; reason = first problem;
 *       adds subject and details [{path, reason}]
 *   flow                     action allow|deny|would_deny, the packet's
 *       addresses, ports, protocol and NFLOG reason
 * Each function only builds the payload and queues it with
 * store_outbox_add(), so it joins the caller's transaction.
 */
#ifndef EGW_AUDIT_H
#define EGW_AUDIT_H

#include "policy.h"
#include "store.h"
#include "store_egress.h"
#include "store_outbox.h"

#include <stdint.h>

struct json_object;

/**
 * audit_payload_new() - a payload with the common fields, others null
 * @type: event type
 * @scenario_id, @network_id, @action, @reason: NULL or "" become null
 *
 * Returns: a new object owned by the caller, or NULL when out of memory.
 */
struct json_object *audit_payload_new(const char *type,
    const char *scenario_id, const char *network_id, const char *action,
    const char *reason);

/**
 * audit_policy_event() - queue a policy lifecycle event
 * @st: connection, inside the caller's transaction
 * @type: "policy.created", "policy.updated", "policy.deleted",
 *        "policy.enabled", "policy.disabled", "policy.completed" or
 *        "policy.expired"
 * @p: the policy after the change (before it, for deleted/expired)
 * @actor: who; may be NULL ("unknown")
 * @generation: the desired generation the change produced
 * @event_id_out: NULL or OUTBOX_EVENT_ID_LEN bytes
 *
 * Returns: 0, EGW_E_INVALID (unknown type), or what store_outbox_add
 * returns.
 */
int audit_policy_event(struct store *st, const char *type,
    const struct policy *p, const struct store_actor *actor,
    int64_t generation, char event_id_out[OUTBOX_EVENT_ID_LEN]);

/**
 * audit_policy_event_text() - audit_policy_event() whose payload carries
 * @policy_text, the API's JSON text of @p, as it is
 * @policy_text: NULL: built from @p, as audit_policy_event() does
 *
 * Returns: as audit_policy_event().
 */
int audit_policy_event_text(struct store *st, const char *type,
    const struct policy *p, const char *policy_text,
    const struct store_actor *actor, int64_t generation,
    char event_id_out[OUTBOX_EVENT_ID_LEN]);

/**
 * audit_apply_event() - queue the result of an apply
 * @st: connection
 * @succeeded: true -> "apply.succeeded", false -> "apply.failed"
 * @generation: the generation applied (or attempted)
 * @scenario_id: NULL, or the scenario a failure concerns
 * @error: NULL or the error text (never raw client input)
 *
 * Returns: 0 or what store_outbox_add returns.
 */
int audit_apply_event(struct store *st, bool succeeded, int64_t generation,
    const char *scenario_id, const char *error);

/**
 * audit_drift_event() - queue "drift.repaired"
 * @what: short description of the drift found (e.g. "table missing")
 *
 * Returns: 0 or what store_outbox_add returns.
 */
int audit_drift_event(struct store *st, int64_t generation, const char *what);

/**
 * audit_rejected_event() - queue "event.rejected" for a NATS message that
 * failed validation
 * @subject: the NATS subject it came on
 * @scenario_id: NULL or the (unvalidated, length-checked) scenario id; it is
 *               dropped when it is not a valid id
 * @err: the enum egw_err code
 * @errs: NULL or the problems
 *
 * Returns: 0 or what store_outbox_add returns.
 */
int audit_rejected_event(struct store *st, const char *subject,
    const char *scenario_id, int err, const struct policy_errors *errs);

/**
 * audit_flow_payload() - the "flow" payload of one egress_log row
 *
 * Returns: a new object owned by the caller, or NULL.
 */
struct json_object *audit_flow_payload(const struct egress_entry *e);

/**
 * audit_flow_event() - queue a "flow" event for one egress_log row
 *
 * Returns: 0 or what store_outbox_add returns.
 */
int audit_flow_event(struct store *st, const struct egress_entry *e);

#endif
