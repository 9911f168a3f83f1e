/* SPDX-License-Identifier: MIT */
/*
 * This file contains the API's route table and the handler interface.
 *
 * A route is {method, path pattern, handler, scope, name}.  Patterns are
 * literal segments and "{param}" segments that match any one decoded
 * segment.  route_find() distinguishes "no such path" (404) from "path
 * exists, method does not" (405, with the Allow list).  The table in
 * route.c is the single list of what the API serves; the OpenAPI check in
 * the e2e tests compares docs/openapi.yaml with it (egw-api --routes).
 */
#ifndef EGW_ROUTE_H
#define EGW_ROUTE_H

#include "http.h"

#include <stdbool.h>
#include <stddef.h>

struct config;
struct metrics;
struct store;

#define ROUTE_MAX_PARAMS 2

enum route_scope {
	ROUTE_SCOPE_OPEN = 0,	/* no token needed (health checks) */
	ROUTE_SCOPE_READ,	/* read-only: the token check and the handler
				 * run in one read snapshot (store_read_begin) */
	ROUTE_SCOPE_WRITE
};

/* What a handler sees besides the request and the response. */
struct api_ctx {
	const struct config *cfg;
	struct store *st;
	const char *actor;		/* "api:<token name>" or "api:anonymous" */
	/* A change's token, hashed and not checked yet (worker.c): the
	 * store checks it inside the change's transaction, and the handler
	 * sets @authorized when the change was made (so the check passed);
	 * any other answer waits for the worker's own check. */
	const char *token_hash;
	bool authorized;
	/* The change's token lacks the read scope: the answer names what
	 * was written (codec_policy_receipt_to_json()), not the policy. */
	bool receipt_only;
	const char *request_id;
	size_t n_params;
	const char *params[ROUTE_MAX_PARAMS];	/* decoded {param} values */
	int worker_index;		/* slot of this worker in the pool */
	struct metrics *metrics;	/* the pool's shared counters (may be NULL) */
};

/*
 * A handler fills @resp and returns 0, or returns a negative enum egw_err
 * and lets the worker write the error body (a handler that wants field
 * details writes its own error body and returns 0).
 */
typedef int (*route_handler_fn)(struct api_ctx *ctx, struct http_req *req,
    struct http_resp *resp);

struct route {
	const char *method;
	const char *pattern;
	route_handler_fn handler;
	enum route_scope scope;
	bool body;			/* the route requires a request body */
	const char *name;		/* metrics label, e.g. "policies_get" */
};

/**
 * route_table() - the API's routes
 * @n: number of entries
 *
 * Returns: a static array.
 */
const struct route *route_table(size_t *n);

/**
 * route_find() - match a request against the table
 * @req: a parsed request (method, segments)
 * @ctx: receives the {param} values (pointers into @req)
 * @out: the matching route
 * @allow: on EGW_E_METHOD, the allowed methods ("GET, POST")
 * @allow_size: bytes in @allow
 *
 * Returns: 0, EGW_E_NOTFOUND (no pattern matches the path) or
 * EGW_E_METHOD (the path matches with another method).
 */
int route_find(const struct http_req *req, struct api_ctx *ctx,
    const struct route **out, char *allow, size_t allow_size);

/**
 * route_index() - position of @r in route_table(), for metrics
 *
 * Returns: 0..n-1.
 */
size_t route_index(const struct route *r);

/* Handlers, one file per resource (api_policies.c, api_logs.c,
 * api_stats.c, api_system.c). */
int api_health(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);
int api_healthz(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);
int api_readyz(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);
int api_metrics(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);
int api_profiles_list(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);
int api_ruleset_get(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);
int api_stats_get(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);
int api_logs_list(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);
int api_policies_list(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);
int api_policies_get(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);
int api_policies_put(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);
int api_policies_delete(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);
int api_policies_enable(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);
int api_policies_disable(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp);

#endif
