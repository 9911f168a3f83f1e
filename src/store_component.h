/* SPDX-License-Identifier: MIT */
/*
 * This file contains the component_status rows: heartbeats and figures of
 * the long-running processes (applier, natsd, flowlog).
 *
 * Each process upserts its own row every few seconds; the API reads them
 * for /readyz, /v1/stats and /metrics.  A row whose heartbeat is older than
 * a few intervals means the component is down or stuck.
 */
#ifndef EGW_STORE_COMPONENT_H
#define EGW_STORE_COMPONENT_H

#include "store.h"
#include "timefmt.h"

#include <stdint.h>

struct json_object;

#define STORE_COMPONENT_NAME_MAX 32

struct component_status {
	char component[STORE_COMPONENT_NAME_MAX];
	int64_t pid;
	char heartbeat_at[TIMEFMT_LEN];
	int64_t heartbeat_age_ms;	/* now - heartbeat_at, at read time */
	struct json_object *info;	/* owned; json_object_put when done */
};

/**
 * store_component_heartbeat() - upsert this process's row
 * @st: connection (joins the caller's transaction if one is open)
 * @component: "applier", "natsd", "flowlog"
 * @info: figures to publish (borrowed); NULL stores "{}"
 *
 * Returns: 0, EGW_E_BUSY or EGW_E_DB.
 */
int store_component_heartbeat(struct store *st, const char *component,
    struct json_object *info);

/**
 * store_component_get() - read one component's row
 * @st: connection
 * @component: its name
 * @out: filled; out->info must be released with json_object_put
 *
 * Returns: 0, EGW_E_NOTFOUND when the component never reported, EGW_E_DB.
 */
int store_component_get(struct store *st, const char *component,
    struct component_status *out);

#endif
