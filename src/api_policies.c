/* SPDX-License-Identifier: MIT */
/*
 * This file contains the /v1/policies handlers: list, get, create or
 * update, delete, enable and disable.
 *
 * The list is the seed contract's "List all policies": without limit and
 * cursor it is every policy in one answer (clients of the earlier service
 * do not know next_cursor); ?limit= and ?cursor= page.
 *
 * Bodies are parsed and validated by codec.c; every mutation is one store
 * operation (store_policy.h), committed by the pool's writer (writer.h)
 * together with whatever other workers submitted at the same moment, which
 * also tells the applier.  With
 * ?wait=SECONDS (0..API_WAIT_MAX_S) a mutation answers only once the
 * applier has applied (or failed to apply) its generation, or 202 with the
 * policy still pending when the time runs out.  A malformed scenario_id in
 * the path is a 400: it cannot name a policy.
 */
#include "auth.h"
#include "codec.h"
#include "config.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "route.h"
#include "spare.h"
#include "store_policy.h"
#include "worker.h"
#include "writer.h"

#include <json-c/json.h>
#include <json-c/printbuf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Part of nginx's fastcgi_read_timeout (see WRITER_REPLY_TIMEOUT_S). */
#define API_WAIT_MAX_S 30
#define API_WAIT_POLL_MS 20
#define API_LIST_DEFAULT 100
/* The unpaged list is held whole in a worker (its Content-Length comes
 * first), ~0.4 KiB per policy: past this many, page instead. */
#define API_LIST_ALL_MAX 50000

static void
api_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int64_t
api_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The {scenario_id} path parameter, or a 400 naming it. */
static int
api_scenario_param(struct api_ctx *ctx, struct http_req *req, const char **out)
{
	const char *id = ctx->params[0];

	if (ctx->n_params < 1 || !policy_valid_id(id, POLICY_SCENARIO_ID_MAX, false)) {
		req->error_message = "scenario_id must be 1-64 of A-Z a-z 0-9 _ . : -,"
		    " starting with a letter or digit";
		req->error_field = "scenario_id";
		return EGW_E_BADREQUEST;
	}
	*out = id;
	return 0;
}

/* ?wait=SECONDS: 0 when absent. */
static int
api_wait_param(struct http_req *req, unsigned *out)
{
	uint64_t v;
	int rc = http_query_uint(req, "wait", 0, API_WAIT_MAX_S, 0, &v);

	*out = (unsigned)v;
	return rc;
}

/* An error body listing every problem in @errs. */
static int
api_errors(struct api_ctx *ctx, struct http_resp *resp, int err,
    const char *message, const struct policy_errors *errs)
{
	char *body = codec_error_body(err, message, errs, ctx->request_id);

	if (body == NULL)
		return EGW_E_NOMEM;
	return http_resp_set_body(resp, err_http_status(err), body);
}

/*
 * DELETE, enable and disable take no fields.  A body is optional (clients
 * of the earlier service send none, some HTTP clients send {}), but one
 * that is sent is held to the same rules as a policy's: malformed JSON,
 * NUL bytes or too deep nesting is a 400, and any member a 422, so that
 * nothing is changed on a request that meant something else.
 */
static int
api_no_fields(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
    bool *refused)
{
	struct policy_errors *errs;
	int rc;

	*refused = false;
	if (req->body == NULL || req->body_len == 0)
		return 0;
	if ((errs = calloc(1, sizeof(*errs))) == NULL)
		return EGW_E_NOMEM;
	policy_errors_init(errs);
	rc = codec_check_no_fields(req->body, req->body_len, errs);
	if (rc == EGW_E_BADREQUEST || rc == EGW_E_INVALID) {
		*refused = true;
		rc = api_errors(ctx, resp, rc, NULL, errs);
	}
	free(errs);
	return rc;
}

/*
 * Wait until the policy's applied_generation reaches @generation.  @p is
 * refreshed from the store (its apply status) while the stored row is
 * still this request's write.  Returns true when applied (or failed),
 * false when time ran out, the worker is stopping, or the policy was
 * changed again or deleted meanwhile: the answer is then @p as this
 * request wrote it, pending, never another request's policy.
 */
static bool
api_wait_policy(struct api_ctx *ctx, struct policy *p, int64_t generation,
    unsigned wait_s)
{
	int64_t deadline = api_now_ms() + (int64_t)wait_s * 1000;
	struct policy *cur = policy_new();
	char id[POLICY_SCENARIO_ID_MAX + 1];
	bool done = false;

	if (cur == NULL)
		return false;
	memcpy(id, p->scenario_id, sizeof(id));
	for (;;) {
		if (store_policy_get(ctx->st, id, cur) != 0 ||
		    cur->id != p->id || cur->revision != p->revision)
			break;
		memcpy(p, cur, sizeof(*p));
		if (cur->applied_generation >= generation) {
			done = true;
			break;
		}
		if (api_now_ms() >= deadline || worker_pool_stopping())
			break;
		api_sleep_ms(API_WAIT_POLL_MS);
	}
	policy_free(cur);
	return done;
}

static bool
api_wait_generation(struct api_ctx *ctx, int64_t generation, unsigned wait_s)
{
	int64_t deadline = api_now_ms() + (int64_t)wait_s * 1000;
	int64_t applied;

	for (;;) {
		if (store_generation(ctx->st, NULL, &applied) != 0)
			return false;
		if (applied >= generation)
			return true;
		if (api_now_ms() >= deadline || worker_pool_stopping())
			return false;
		api_sleep_ms(API_WAIT_POLL_MS);
	}
}

/* Who makes a change; an unchecked token travels with it (route.h). */
static struct store_actor
api_actor(const struct api_ctx *ctx)
{
	if (ctx->token_hash != NULL)
		return auth_write_actor(ctx->token_hash, ctx->request_id);
	return (struct store_actor){ .actor = ctx->actor,
	    .request_id = ctx->request_id };
}

static void
api_log_change(const char *what, const struct policy *p)
{
	char rev[24], gen[24];

	snprintf(rev, sizeof(rev), "%lld", (long long)p->revision);
	snprintf(gen, sizeof(gen), "%lld", (long long)p->generation);
	log_kv(LOG_LEVEL_INFO, ((const char *[]){ "scenario_id", p->scenario_id,
	    "revision", rev, "generation", gen, NULL }), "policy %s", what);
}

/* Answer a mutation with the policy (its receipt to a token that may not
 * read policies), honouring ?wait. */
static int
api_policy_answer(struct api_ctx *ctx, struct http_resp *resp,
    struct policy *p, int status, unsigned wait_s)
{
	struct json_object *o;

	if (wait_s > 0) {
		spare_step_out();
		if (!api_wait_policy(ctx, p, p->generation, wait_s))
			status = 202;
		spare_step_in();
	}
	o = ctx->receipt_only ? codec_policy_receipt_to_json(p)
	    : codec_policy_to_json(p);
	return http_resp_json(resp, status, o);
}

struct api_all_ctx {
	struct http_resp *resp;
	size_t n;
	char last[POLICY_SCENARIO_ID_MAX + 1];
};

static int
api_all_cb(const char *scenario_id, const char *doc, size_t len, void *arg)
{
	struct api_all_ctx *ac = arg;
	int rc;

	if (ac->n > 0 && (rc = http_resp_append(ac->resp, ",", 1)) != 0)
		return rc;
	if ((rc = http_resp_append(ac->resp, doc, len)) != 0)
		return rc;
	ac->n++;
	snprintf(ac->last, sizeof(ac->last), "%s", scenario_id);
	return 0;
}

/*
 * Every policy, in the paged answer's shape.  Each policy's stored text
 * (store_policy_documents()) is appended to the body as it is read: only
 * the response grows with the list, and no json-c tree is built (one
 * costs several KiB per policy).  The envelope's punctuation is written
 * here; its values go through json-c.
 *
 * One read transaction spans the count and all pages, so the answer is
 * one snapshot: count is read first (it comes first in the text) and must
 * match what the pages returned.  Writers are not held up (WAL); the
 * snapshot only delays checkpoints past it while the list is read.
 */
static int
api_policies_list_all(struct api_ctx *ctx, struct http_req *req,
    struct http_resp *resp)
{
	static const char head[] = "{\"count\":";
	static const char mid[] = ",\"policies\":[";
	static const char tail[] = "],\"next_cursor\":null}";
	struct api_all_ctx ac = { .resp = resp };
	bool more = true, snapshot;
	size_t total;
	int rc;

	/* The route's scope already runs this in the worker's read snapshot
	 * (route.h); this one holds only if that ever stops being so. */
	snapshot = store_read_begin(ctx->st);
	rc = store_policy_count(ctx->st, &total);
	if (rc == 0 && total > API_LIST_ALL_MAX) {
		req->error_message = "too many policies for one answer; page with"
		    " ?limit= (at most 1000) and ?cursor=";
		req->error_field = "limit";
		rc = EGW_E_BADREQUEST;
	}
	if (rc == 0)
		rc = http_resp_append(resp, head, sizeof(head) - 1);
	if (rc == 0)
		rc = http_resp_append_json(resp,
		    json_object_new_int64((int64_t)total));
	if (rc == 0)
		rc = http_resp_append(resp, mid, sizeof(mid) - 1);
	while (rc == 0 && more) {
		rc = store_policy_documents(ctx->st, ac.n > 0 ? ac.last : NULL,
		    STORE_POLICY_LIST_MAX, api_all_cb, &ac, &more);
	}
	if (rc == 0 && ac.n != total) {
		log_errorx("policy list: %zu policies read, %zu counted in the"
		    " same snapshot", ac.n, total);
		rc = EGW_E_DB;
	}
	if (rc == 0)
		rc = http_resp_append(resp, tail, sizeof(tail) - 1);
	store_read_end(ctx->st, snapshot);
	if (rc == 0)
		resp->status = 200;
	return rc;
}

int
api_policies_list(struct api_ctx *ctx, struct http_req *req,
    struct http_resp *resp)
{
	static const char *const allowed[] = { "limit", "cursor", NULL };
	static const char head[] = "{\"count\":";
	static const char mid[] = ",\"policies\":[";
	static const char end[] = "],\"next_cursor\":";
	struct api_all_ctx page = { 0 };
	struct http_resp items;
	const char *cursor;
	bool more = false;
	uint64_t limit;
	int rc;

	if ((rc = http_query_check(req, allowed)) != 0)
		return rc;
	if (http_query_get(req, "limit") == NULL &&
	    http_query_get(req, "cursor") == NULL)
		return api_policies_list_all(ctx, req, resp);
	/* A cursor alone pages by API_LIST_DEFAULT, as it always did. */
	if ((rc = http_query_uint(req, "limit", 1, STORE_POLICY_LIST_MAX,
	    API_LIST_DEFAULT, &limit)) != 0)
		return rc;
	cursor = http_query_get(req, "cursor");
	if (cursor != NULL && !policy_valid_id(cursor, POLICY_SCENARIO_ID_MAX, false)) {
		req->error_message = "cursor is not a value this API returned";
		req->error_field = "cursor";
		return EGW_E_BADREQUEST;
	}
	/* The count comes first in the text: the page is gathered aside. */
	http_resp_init(&items);
	page.resp = &items;
	rc = store_policy_documents(ctx->st, cursor, (size_t)limit, api_all_cb,
	    &page, &more);
	if (rc == 0)
		rc = http_resp_append(resp, head, sizeof(head) - 1);
	if (rc == 0)
		rc = http_resp_append_json(resp,
		    json_object_new_int64((int64_t)page.n));
	if (rc == 0)
		rc = http_resp_append(resp, mid, sizeof(mid) - 1);
	if (rc == 0 && items.body_len > 0)
		rc = http_resp_append(resp, items.body, items.body_len);
	if (rc == 0)
		rc = http_resp_append(resp, end, sizeof(end) - 1);
	if (rc == 0)
		rc = more && page.last[0] != '\0'
		    ? http_resp_append_json(resp, json_object_new_string(page.last))
		    : http_resp_append(resp, "null", 4);
	if (rc == 0)
		rc = http_resp_append(resp, "}", 1);
	http_resp_free(&items);
	if (rc == 0)
		resp->status = 200;
	return rc;
}

int
api_policies_get(struct api_ctx *ctx, struct http_req *req,
    struct http_resp *resp)
{
	static const char *const allowed[] = { NULL };
	/* A worker serves one request at a time; the buffer keeps its size
	 * from one read to the next. */
	static struct printbuf *pb;
	const char *id;
	int rc;

	if ((rc = http_query_check(req, allowed)) != 0 ||
	    (rc = api_scenario_param(ctx, req, &id)) != 0)
		return rc;
	if (pb == NULL && (pb = printbuf_new()) == NULL)
		return EGW_E_NOMEM;
	printbuf_reset(pb);
	rc = store_policy_document(ctx->st, id, pb);
	if (rc == 0 && (rc = http_resp_append(resp, pb->buf, (size_t)pb->bpos)) == 0)
		resp->status = 200;
	else if (rc == EGW_E_NOTFOUND)
		rc = api_errors(ctx, resp, rc, "no policy for this scenario_id", NULL);
	return rc;
}

int
api_policies_put(struct api_ctx *ctx, struct http_req *req,
    struct http_resp *resp)
{
	static const char *const allowed[] = { "wait", NULL };
	struct store_actor actor = api_actor(ctx);
	struct policy_errors *errs;
	struct policy *p;
	bool created = false;
	unsigned wait_s;
	int rc;

	if ((rc = http_query_check(req, allowed)) != 0 ||
	    (rc = api_wait_param(req, &wait_s)) != 0)
		return rc;
	p = policy_new();
	errs = calloc(1, sizeof(*errs));
	if (p == NULL || errs == NULL) {
		policy_free(p);
		free(errs);
		return EGW_E_NOMEM;
	}
	rc = codec_policy_from_json(req->body, req->body_len, p, errs);
	if (rc == EGW_E_BADREQUEST || rc == EGW_E_INVALID) {
		rc = api_errors(ctx, resp, rc, NULL, errs);
		goto out;
	}
	if (rc != 0)
		goto out;
	if (policy_validate_for_gateway(ctx->cfg, p, errs) != 0) {
		rc = api_errors(ctx, resp, EGW_E_INVALID, NULL, errs);
		goto out;
	}
	policy_errors_init(errs);
	/* The write waits for the disk: a spare worker accepts meanwhile. */
	spare_step_out();
	rc = writer_put(ctx->cfg, ctx->st, p, &actor, &created, errs);
	spare_step_in();
	ctx->authorized = rc == 0;
	if (rc == EGW_E_INVALID) {
		rc = api_errors(ctx, resp, rc, NULL, errs);
		goto out;
	}
	if (rc == EGW_E_CONFLICT) {
		/* The conflict is the body's revision (store_policy.c), so
		 * field points at it, as it does for every error about the
		 * body.  p->revision is not quoted: a busy retry may have
		 * replaced it with the one the store was writing. */
		policy_errors_init(errs);
		if (p->revision_given)
			policy_errors_add(errs, "/revision", "not the stored"
			    " revision (0: no policy may be stored yet); read"
			    " the policy again and retry");
		rc = api_errors(ctx, resp, rc, "revision does not match the stored"
		    " policy; read it again and retry", errs);
		goto out;
	}
	if (rc != 0)
		goto out;
	api_log_change(created ? "created" : "updated", p);
	rc = api_policy_answer(ctx, resp, p, created ? 201 : 200, wait_s);
out:
	policy_free(p);
	free(errs);
	return rc;
}

int
api_policies_delete(struct api_ctx *ctx, struct http_req *req,
    struct http_resp *resp)
{
	static const char *const allowed[] = { "wait", NULL };
	struct store_actor actor = api_actor(ctx);
	struct json_object *o;
	int64_t generation = 0;
	const char *id;
	unsigned wait_s;
	int status = 200;
	bool applied = false, refused;
	int rc;

	if ((rc = http_query_check(req, allowed)) != 0 ||
	    (rc = api_wait_param(req, &wait_s)) != 0 ||
	    (rc = api_scenario_param(ctx, req, &id)) != 0 ||
	    (rc = api_no_fields(ctx, req, resp, &refused)) != 0 || refused)
		return rc;
	spare_step_out();
	rc = writer_delete(ctx->cfg, ctx->st, id, &actor, &generation);
	spare_step_in();
	ctx->authorized = rc == 0;
	if (rc == EGW_E_NOTFOUND)
		return api_errors(ctx, resp, rc, "no policy for this scenario_id", NULL);
	if (rc != 0)
		return rc;
	{
		char gen[24];

		snprintf(gen, sizeof(gen), "%lld", (long long)generation);
		log_kv(LOG_LEVEL_INFO, ((const char *[]){ "scenario_id", id,
		    "generation", gen, NULL }), "policy deleted");
	}
	if (wait_s > 0) {
		spare_step_out();
		applied = api_wait_generation(ctx, generation, wait_s);
		spare_step_in();
		if (!applied)
			status = 202;
	}
	o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string("deleted"));
	json_object_object_add(o, "scenario_id", json_object_new_string(id));
	json_object_object_add(o, "generation", json_object_new_int64(generation));
	json_object_object_add(o, "apply",
	    json_object_new_string(applied ? "applied" : "pending"));
	return http_resp_json(resp, status, o);
}

static int
api_set_enabled(struct api_ctx *ctx, struct http_req *req,
    struct http_resp *resp, bool enabled)
{
	static const char *const allowed[] = { "wait", NULL };
	struct store_actor actor = api_actor(ctx);
	struct policy *p;
	const char *id;
	unsigned wait_s;
	bool refused;
	int rc;

	if ((rc = http_query_check(req, allowed)) != 0 ||
	    (rc = api_wait_param(req, &wait_s)) != 0 ||
	    (rc = api_scenario_param(ctx, req, &id)) != 0 ||
	    (rc = api_no_fields(ctx, req, resp, &refused)) != 0 || refused)
		return rc;
	if ((p = policy_new()) == NULL)
		return EGW_E_NOMEM;
	spare_step_out();
	rc = writer_set_enabled(ctx->cfg, ctx->st, id, enabled, &actor, p);
	spare_step_in();
	ctx->authorized = rc == 0;
	if (rc == EGW_E_NOTFOUND) {
		rc = api_errors(ctx, resp, rc, "no policy for this scenario_id", NULL);
	} else if (rc == 0) {
		api_log_change(enabled ? "enabled" : "disabled", p);
		rc = api_policy_answer(ctx, resp, p, 200, wait_s);
	}
	policy_free(p);
	return rc;
}

int
api_policies_enable(struct api_ctx *ctx, struct http_req *req,
    struct http_resp *resp)
{
	return api_set_enabled(ctx, req, resp, true);
}

int
api_policies_disable(struct api_ctx *ctx, struct http_req *req,
    struct http_resp *resp)
{
	return api_set_enabled(ctx, req, resp, false);
}
