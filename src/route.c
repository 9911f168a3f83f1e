/* SPDX-License-Identifier: MIT */
/*
 * This file contains the route table and the matcher (see route.h).
 *
 * The table is small, so matching is a linear scan over pre-split
 * patterns; what matters is that the 404/405 distinction and the {param}
 * capture are decided in one place.
 */
#include "route.h"
#include "err.h"

#include <stdio.h>
#include <string.h>

static const struct route routes[] = {
	{ "GET", "/health", api_health, ROUTE_SCOPE_OPEN, false, "health" },
	{ "GET", "/healthz", api_healthz, ROUTE_SCOPE_OPEN, false, "healthz" },
	{ "GET", "/readyz", api_readyz, ROUTE_SCOPE_OPEN, false, "readyz" },
	{ "GET", "/metrics", api_metrics, ROUTE_SCOPE_READ, false, "metrics" },
	{ "GET", "/v1/policies", api_policies_list, ROUTE_SCOPE_READ, false,
	  "policies_list" },
	{ "POST", "/v1/policies", api_policies_put, ROUTE_SCOPE_WRITE, true,
	  "policies_put" },
	{ "GET", "/v1/policies/{scenario_id}", api_policies_get, ROUTE_SCOPE_READ,
	  false, "policies_get" },
	{ "DELETE", "/v1/policies/{scenario_id}", api_policies_delete,
	  ROUTE_SCOPE_WRITE, false, "policies_delete" },
	{ "POST", "/v1/policies/{scenario_id}/enable", api_policies_enable,
	  ROUTE_SCOPE_WRITE, false, "policies_enable" },
	{ "POST", "/v1/policies/{scenario_id}/disable", api_policies_disable,
	  ROUTE_SCOPE_WRITE, false, "policies_disable" },
	{ "GET", "/v1/logs", api_logs_list, ROUTE_SCOPE_READ, false, "logs_list" },
	{ "GET", "/v1/stats", api_stats_get, ROUTE_SCOPE_READ, false, "stats" },
	{ "GET", "/v1/ruleset", api_ruleset_get, ROUTE_SCOPE_READ, false, "ruleset" },
	{ "GET", "/v1/profiles", api_profiles_list, ROUTE_SCOPE_READ, false,
	  "profiles_list" },
};

const struct route *
route_table(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

size_t
route_index(const struct route *r)
{
	return (size_t)(r - routes);
}

/* Match @pattern against the request's segments; capture {params}. */
static bool
route_match(const char *pattern, const struct http_req *req,
    struct api_ctx *ctx)
{
	const char *p = pattern + 1;	/* skip the leading '/' */
	size_t seg = 0, n_params = 0;

	while (*p != '\0') {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (seg >= req->n_segments)
			return false;
		if (p[0] == '{') {
			if (n_params == ROUTE_MAX_PARAMS)
				return false;
			if (ctx != NULL)
				ctx->params[n_params] = req->segments[seg];
			n_params++;
		} else if (strlen(req->segments[seg]) != len ||
		    memcmp(req->segments[seg], p, len) != 0) {
			return false;
		}
		seg++;
		p += len;
		if (*p == '/')
			p++;
	}
	if (seg != req->n_segments)
		return false;
	if (ctx != NULL)
		ctx->n_params = n_params;
	return true;
}

int
route_find(const struct http_req *req, struct api_ctx *ctx,
    const struct route **out, char *allow, size_t allow_size)
{
	bool path_found = false;
	size_t off = 0;

	if (allow_size > 0)
		allow[0] = '\0';
	if (req->path_too_deep)
		return EGW_E_NOTFOUND;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!route_match(routes[i].pattern, req, NULL))
			continue;
		if (strcmp(routes[i].method, req->method) == 0) {
			route_match(routes[i].pattern, req, ctx);
			*out = &routes[i];
			return 0;
		}
		path_found = true;
		if (allow_size > off) {
			int n = snprintf(allow + off, allow_size - off, "%s%s",
			    off ? ", " : "", routes[i].method);

			if (n > 0)
				off += (size_t)n;
		}
	}
	return path_found ? EGW_E_METHOD : EGW_E_NOTFOUND;
}
