/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of store_policy.c against a real SQLite file
 * migrated with the real schema: CRUD, revisions, no-op puts, history,
 * outbox events, generations, profiles, and two concurrency tests with
 * forked writer processes (blind upserts, and read-modify-write under the
 * revision check) that must lose no update and surface no error.
 */
#include "codec.h"
#include "err.h"
#include "log.h"
#include "policy.h"
#include "store.h"
#include "store_policy.h"
#include "tap.h"
#include "testdb.h"
#include "timefmt.h"

#include <json-c/json.h>
#include <json-c/printbuf.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/egw-test-store-policy-XXXXXX";
static char dbpath[128];

/* The query helpers take SQL templates from this file only. */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

static int64_t
query_int(struct store *st, const char *fmt, const char *arg)
{
	char sql[512];

	snprintf(sql, sizeof(sql), fmt, arg ? arg : "");
	return testdb_int(st, sql);
}

static char *
query_text(struct store *st, const char *fmt, const char *arg)
{
	char sql[512];

	snprintf(sql, sizeof(sql), fmt, arg ? arg : "");
	return testdb_text(st, sql);
}

static int
parse(const char *body, struct policy *p)
{
	struct policy_errors errs;
	int rc = codec_policy_from_json(body, strlen(body), p, &errs);

	for (size_t i = 0; rc != 0 && i < errs.count; i++)
		tap_diag("parse: %s: %s", errs.items[i].path, errs.items[i].reason);
	return rc;
}

static bool
same_input(const struct policy *a, const struct policy *b)
{
	char *x = codec_policy_input_string(a), *y = codec_policy_input_string(b);
	bool eq = x && y && strcmp(x, y) == 0;

	if (!eq)
		tap_diag("  %s\n#  vs %s", x, y);
	free(x);
	free(y);
	return eq;
}

static bool
has_path(const struct policy_errors *e, const char *path)
{
	for (size_t i = 0; i < e->count; i++)
		if (strcmp(e->items[i].path, path) == 0)
			return true;
	return false;
}

struct list_ctx {
	char seen[16][POLICY_SCENARIO_ID_MAX + 1];
	size_t n;
	size_t stop_after;
};

static int
list_cb(const struct policy *p, void *arg)
{
	struct list_ctx *c = arg;

	if (c->n < 16)
		snprintf(c->seen[c->n], sizeof(c->seen[0]), "%s", p->scenario_id);
	c->n++;
	return c->stop_after && c->n == c->stop_after ? 42 : 0;
}

static int
hist_cb(const struct store_history_entry *h, void *arg)
{
	char *ops = arg;

	strcat(ops, h->operation);
	strcat(ops, ",");
	return 0;
}

static int
profile_cb(const struct store_profile *pr, void *arg)
{
	int *n = arg;

	(*n)++;
	return pr->n_rules >= 4 ? 0 : 1;	/* every builtin has the 4 internal nets */
}

static const struct store_actor actor = { .actor = "test", .request_id = "req-1" };

/*
 * Policy s1's @type event ends with the policy's text as its @op history
 * row has it, which is what the API prints for the stored policy.
 */
static void
event_carries_history_text(struct store *st, const char *op,
    const char *type)
{
	char sql[256];
	char *payload, *after;
	struct policy *stored = policy_new();
	struct json_object *api = NULL, *parsed = NULL;
	const char *want = NULL;
	size_t pl, al;

	snprintf(sql, sizeof(sql), "SELECT payload FROM outbox WHERE"
	    " scenario_id = 's1' AND type = '%s'", type);
	payload = query_text(st, "%s", sql);
	snprintf(sql, sizeof(sql), "SELECT after_json FROM policy_history WHERE"
	    " scenario_id = 's1' AND operation = '%s'", op);
	after = query_text(st, "%s", sql);
	if (stored != NULL && store_policy_get(st, "s1", stored) == 0 &&
	    (api = codec_policy_to_json(stored)) != NULL)
		want = json_object_to_json_string_ext(api,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	is_str(after ? after : "", want ? want : "(none)",
	    "%s: history's after is the API's text of the policy", op);
	pl = payload ? strlen(payload) : 0;
	al = after ? strlen(after) : 0;
	ok(payload != NULL && after != NULL && pl > al + 10 &&
	    strncmp(payload + pl - al - 10, "\"policy\":", 9) == 0 &&
	    strncmp(payload + pl - al - 1, after, al) == 0 &&
	    strcmp(payload + pl - 1, "}") == 0,
	    "%s: the event ends with \"policy\": and that text", op);
	ok(payload != NULL && (parsed = json_tokener_parse(payload)) != NULL,
	    "%s: the event is JSON", op);
	json_object_put(parsed);
	json_object_put(api);
	policy_free(stored);
	free(payload);
	free(after);
}

static void
test_crud(struct store *st)
{
	struct policy *p = policy_new(), *q = policy_new();
	struct policy_errors errs;
	bool created = false;
	int64_t gen0, gen, g;
	char *s;

	store_generation(st, &gen0, NULL);
	is_int(parse("{\"scenario_id\":\"s1\",\"network_id\":\"n1\","
	    "\"profile\":\"custom\",\"allowed_hosts\":[\"192.0.2.0/24\","
	    "\"2001:db8::1\"],\"allowed_ports\":[443,\"8000-8100\"],"
	    "\"custom_rules\":[{\"proto\":\"tcp\",\"dest\":\"198.51.100.0/24\","
	    "\"ports\":[22,\"2000-2100\",25]},{\"proto\":\"icmp\"},"
	    "{\"proto\":\"udp\",\"ports\":[53]}],\"sources\":[\"100.64.1.0/24\"],"
	    "\"interfaces\":[\"br-s1\"],\"dns_servers\":[],\"mode\":\"audit\"}",
	    p), 0, "crud: body parses");
	is_int(store_policy_put(st, p, &actor, &created, &errs), 0, "create");
	ok(created, "create: created flag");
	is_int(p->revision, 1, "create: revision 1");
	ok(p->id > 0, "create: id assigned");
	store_generation(st, &gen, NULL);
	is_int(gen, gen0 + 1, "create: generation bumped once");
	is_int(p->generation, gen, "create: policy carries the new generation");
	is_int(p->apply_status, POLICY_APPLY_PENDING, "create: apply pending");
	ok(p->created_at[0] != '\0' && strcmp(p->created_at, p->updated_at) == 0,
	    "create: times set");

	is_int(store_policy_get(st, "s1", q), 0, "get");
	ok(same_input(p, q), "get: same input fields as put");
	is_int(q->n_rules, 3, "get: rules regrouped");
	is_int(q->rules[0].n_ports, 3, "get: rule ports regrouped");
	ok(q->dns_servers_set && q->n_dns_servers == 0, "get: empty dns list kept");
	is_int(q->mode, POLICY_MODE_AUDIT, "get: mode");
	is_int(q->revision, 1, "get: revision");
	is_int(store_policy_get_by_id(st, p->id, q), 0, "get_by_id");
	is_str(q->scenario_id, "s1", "get_by_id: right policy");
	is_int(store_policy_get(st, "nope", q), EGW_E_NOTFOUND, "get: not found");
	is_int(store_policy_get_by_id(st, 99999, q), EGW_E_NOTFOUND,
	    "get_by_id: not found");

	is_int(query_int(st, "SELECT count(*) FROM policy_history WHERE"
	    " scenario_id = 's1' AND operation = 'create' AND before_json IS NULL"
	    " AND after_json IS NOT NULL AND actor = 'test' AND request_id = 'req-1'%s",
	    NULL), 1, "create: history row");
	is_int(query_int(st, "SELECT count(*) FROM outbox WHERE scenario_id = 's1'"
	    " AND type = 'policy.created'%s", NULL), 1, "create: outbox event");
	event_carries_history_text(st, "create", "policy.created");
	s = query_text(st, "SELECT payload FROM outbox WHERE scenario_id = 's1'%s",
	    NULL);
	{
		struct json_object *o = s ? json_tokener_parse(s) : NULL, *v;

		ok(o && json_object_object_get_ex(o, "event_id", &v) &&
		    strlen(json_object_get_string(v)) == 36,
		    "create: event has a UUID event_id");
		ok(o && json_object_object_get_ex(o, "action", &v) &&
		    strcmp(json_object_get_string(v), "created") == 0,
		    "create: event action");
		ok(o && json_object_object_get_ex(o, "policy", &v) &&
		    json_object_is_type(v, json_type_object),
		    "create: event carries the policy");
		json_object_put(o);
	}
	free(s);
	is_int(query_int(st, "SELECT count(*) FROM policy_destinations d JOIN"
	    " policies p ON p.id = d.policy_id WHERE p.scenario_id = 's1'%s", NULL),
	    2 + 2 + 3 + 1 + 1, "create: one destination row per entry/port");

	/* Same content again: nothing written (NATS redelivery). */
	store_generation(st, &gen0, NULL);
	is_int(parse("{\"scenario_id\":\"s1\",\"network_id\":\"n1\","
	    "\"profile\":\"custom\",\"allowed_hosts\":[\"192.0.2.0/24\","
	    "\"2001:db8::1\"],\"allowed_ports\":[443,\"8000-8100\"],"
	    "\"custom_rules\":[{\"proto\":\"tcp\",\"dest\":\"198.51.100.0/24\","
	    "\"ports\":[22,\"2000-2100\",25]},{\"proto\":\"icmp\"},"
	    "{\"proto\":\"udp\",\"ports\":[53]}],\"sources\":[\"100.64.1.0/24\"],"
	    "\"interfaces\":[\"br-s1\"],\"dns_servers\":[],\"mode\":\"audit\"}",
	    q), 0, "noop: body parses");
	created = true;
	is_int(store_policy_put(st, q, &actor, &created, &errs), 0, "noop put");
	ok(!created, "noop: not created");
	is_int(q->revision, 1, "noop: revision unchanged");
	is_int(q->id, p->id, "noop: stored metadata returned");
	store_generation(st, &gen, NULL);
	is_int(gen, gen0, "noop: generation unchanged");
	is_int(query_int(st, "SELECT count(*) FROM policy_history WHERE"
	    " scenario_id = 's1'%s", NULL), 1, "noop: no history row");
	is_int(query_int(st, "SELECT count(*) FROM outbox WHERE"
	    " scenario_id = 's1'%s", NULL), 1, "noop: no outbox row");

	/* Update without a revision. */
	q->n_ports = 1;
	q->revision = 0;
	is_int(store_policy_put(st, q, &actor, &created, &errs), 0, "update");
	ok(!created, "update: not created");
	is_int(q->revision, 2, "update: revision 2");
	store_generation(st, &gen, NULL);
	is_int(gen, gen0 + 1, "update: generation bumped");
	is_int(query_int(st, "SELECT count(*) FROM policy_history WHERE"
	    " scenario_id = 's1' AND operation = 'update' AND before_json LIKE"
	    " '%%8000-8100%%' AND after_json NOT LIKE '%%8000-8100%%'%s", NULL), 1,
	    "update: history has before and after");
	is_int(query_int(st, "SELECT count(*) FROM outbox WHERE scenario_id = 's1'"
	    " AND type = 'policy.updated'%s", NULL), 1, "update: outbox event");
	event_carries_history_text(st, "update", "policy.updated");

	/* Optimistic locking. */
	q->n_ports = 2;
	q->revision = 1;
	q->revision_given = true;
	is_int(store_policy_put(st, q, &actor, &created, &errs), EGW_E_CONFLICT,
	    "stale revision: conflict");
	is_int(store_policy_get(st, "s1", p), 0, "stale revision: reload");
	is_int(p->revision, 2, "stale revision: nothing written");
	is_int(p->n_ports, 1, "stale revision: content unchanged");
	q->revision = 2;
	is_int(store_policy_put(st, q, &actor, &created, &errs), 0,
	    "current revision: accepted");
	is_int(q->revision, 3, "current revision: now 3");
	/* The same content with a now stale revision is still a conflict: a
	 * read-modify-write based on an old read must learn that, even when
	 * its result happens to equal what is stored (two clients that both
	 * add one to the same value: counter_child() below).  So a
	 * client that sends revision and lost an answer re-reads instead of
	 * repeating (docs/API.md). */
	{
		int64_t hist = query_int(st, "SELECT count(*) FROM policy_history%s", NULL);

		q->revision = 2;
		q->revision_given = true;
		is_int(store_policy_put(st, q, &actor, &created, &errs), EGW_E_CONFLICT,
		    "same content, stale revision: conflict");
		is_int(query_int(st, "SELECT count(*) FROM policy_history%s", NULL),
		    hist, "same content, stale revision: nothing written");
		q->revision = 3;
	}
	is_int(parse("{\"scenario_id\":\"s-new\",\"revision\":4}", p), 0,
	    "create with revision parses");
	is_int(store_policy_put(st, p, &actor, &created, &errs), EGW_E_CONFLICT,
	    "create with a revision: conflict");
	is_int(store_policy_get(st, "s-new", p), EGW_E_NOTFOUND,
	    "create with a revision: nothing written");
	/* revision 0: "none stored yet", i.e. create only. */
	is_int(parse("{\"scenario_id\":\"s1\",\"revision\":0}", p), 0,
	    "revision 0 parses");
	ok(p->revision_given, "revision 0 counts as given");
	is_int(store_policy_put(st, p, &actor, &created, &errs), EGW_E_CONFLICT,
	    "revision 0 on a stored policy: conflict");
	is_int(store_policy_get(st, "s1", p), 0, "revision 0: reload");
	is_int(p->revision, 3, "revision 0: nothing written");
	is_int(parse("{\"scenario_id\":\"s-zero\",\"revision\":0}", p), 0,
	    "create with revision 0 parses");
	is_int(store_policy_put(st, p, &actor, &created, &errs), 0,
	    "create with revision 0: accepted");
	ok(created, "create with revision 0: created");
	is_int(store_policy_delete(st, "s-zero", &actor, NULL), 0,
	    "create with revision 0: removed again");
	is_int(parse("{\"scenario_id\":\"s-zero\"}", p), 0, "no revision parses");
	ok(!p->revision_given, "no revision: not given");

	/* Validation in the store. */
	is_int(parse("{\"scenario_id\":\"s2\",\"profile\":\"no-such\"}", p), 0,
	    "unknown profile parses");
	policy_errors_init(&errs);
	is_int(store_policy_put(st, p, &actor, &created, &errs), EGW_E_INVALID,
	    "unknown profile refused");
	ok(has_path(&errs, "/profile"), "unknown profile path");
	is_int(parse("{\"scenario_id\":\"s2\",\"profile\":\"external-api\","
	    "\"allowed_hosts\":[\"203.0.113.5\"]}", p), 0,
	    "hosts for external-api parse");
	policy_errors_init(&errs);
	is_int(store_policy_put(st, p, &actor, &created, &errs), EGW_E_INVALID,
	    "hosts for a profile that ignores them: refused");
	ok(has_path(&errs, "/allowed_hosts"), "ignored hosts path");
	is_int(parse("{\"scenario_id\":\"s2\",\"sources\":[\"100.64.0.0/16\"],"
	    "\"interfaces\":[\"br-s1\"]}", p), 0, "claiming body parses");
	policy_errors_init(&errs);
	is_int(store_policy_put(st, p, &actor, &created, &errs), EGW_E_INVALID,
	    "another scenario's source and interface refused");
	ok(has_path(&errs, "/sources/0") && has_path(&errs, "/interfaces/0"),
	    "claims: both paths reported");
	{
		/* s1 holds 100.64.1.0/24: every overlap is found by the indexed
		 * lookups, every disjoint prefix passes. */
		static const struct {
			const char *src;
			bool refused;
		} claims[] = {
			{ "100.64.1.0/24", true }, { "100.64.1.128/25", true },
			{ "100.64.1.7", true }, { "100.64.0.0/23", true },
			{ "100.0.0.0/8", true }, { "0.0.0.0/1", true },
			{ "100.64.0.0/24", false }, { "100.64.2.0/24", false },
			{ "100.64.1.255/32", true }, { "2001:db8::/32", false },
		};

		for (size_t i = 0; i < sizeof(claims) / sizeof(*claims); i++) {
			char body[160];
			int want = claims[i].refused ? EGW_E_INVALID : 0;

			snprintf(body, sizeof(body), "{\"scenario_id\":\"c%zu\","
			    "\"sources\":[\"%s\"]}", i, claims[i].src);
			parse(body, p);
			policy_errors_init(&errs);
			is_int(store_policy_put(st, p, &actor, &created, &errs), want,
			    "source %s %s", claims[i].src,
			    claims[i].refused ? "overlaps s1: refused" : "disjoint: accepted");
			if (want == 0)
				store_policy_delete(st, p->scenario_id, &actor, NULL);
		}
		parse("{\"scenario_id\":\"v6a\",\"sources\":[\"2001:db8:1::/48\"]}", p);
		policy_errors_init(&errs);
		is_int(store_policy_put(st, p, &actor, &created, &errs), 0, "IPv6 source claimed");
		parse("{\"scenario_id\":\"v6b\",\"sources\":[\"2001:db8::/32\"]}", p);
		policy_errors_init(&errs);
		is_int(store_policy_put(st, p, &actor, &created, &errs), EGW_E_INVALID,
		    "IPv6 ancestor of another scenario's source refused");
		parse("{\"scenario_id\":\"v6a\",\"sources\":[\"2001:db8:1::/48\"],"
		    "\"mode\":\"audit\"}", p);
		policy_errors_init(&errs);
		is_int(store_policy_put(st, p, &actor, &created, &errs), 0,
		    "a scenario may keep its own source on update");
		store_policy_delete(st, "v6a", &actor, NULL);
		parse("{\"scenario_id\":\"s2\",\"sources\":[\"100.64.0.0/16\"],"
		    "\"interfaces\":[\"br-s1\"]}", p);
	}
	p->n_interfaces = 0;
	p->sources[0].len = 0;
	policy_errors_init(&errs);
	is_int(store_policy_put(st, p, &actor, &created, &errs), EGW_E_INVALID,
	    "store re-validates a bad struct");
	is_int(store_policy_get(st, "s2", p), EGW_E_NOTFOUND,
	    "refused puts wrote nothing");

	/* Enable / disable / complete / expire / delete. */
	store_generation(st, &gen0, NULL);
	is_int(store_policy_set_enabled(st, "s1", false, &actor, p), 0, "disable");
	ok(!p->enabled, "disable: disabled");
	is_int(p->revision, 4, "disable: revision bumped");
	is_int(store_policy_set_enabled(st, "s1", false, &actor, p), 0,
	    "disable again: no-op");
	is_int(p->revision, 4, "disable again: revision unchanged");
	store_generation(st, &gen, NULL);
	is_int(gen, gen0 + 1, "disable: one generation bump in all");
	is_int(store_policy_set_enabled(st, "nope", true, &actor, p),
	    EGW_E_NOTFOUND, "enable unknown: not found");
	is_int(store_policy_complete(st, "s1", &actor), 0, "complete");
	is_int(store_policy_get(st, "s1", p), 0, "complete: reload");
	ok(!p->enabled && p->completed_at[0] != '\0', "complete: stamped");
	is_int(p->revision, 5, "complete: revision bumped");
	is_int(store_policy_complete(st, "s1", &actor), 0, "complete again");
	is_int(store_policy_get(st, "s1", p), 0, "complete again: reload");
	is_int(p->revision, 5, "complete again: no-op");
	is_int(store_policy_set_enabled(st, "s1", true, &actor, p), 0, "re-enable");
	ok(p->enabled && p->completed_at[0] == '\0',
	    "re-enable: completed_at cleared");

	is_int(parse("{\"scenario_id\":\"old\"}", p), 0, "old body parses");
	is_int(store_policy_put(st, p, &actor, &created, NULL), 0, "old created");
	is_int(store_policy_complete(st, "old", &actor), 0, "old completed");
	{
		size_t deleted = 99;

		is_int(store_policy_expire_completed(st, 3600, &deleted), 0,
		    "expire: nothing old enough");
		is_int((int)deleted, 0, "expire: none deleted");
		store_exec(st, "UPDATE policies SET completed_at ="
		    " '2000-01-01T00:00:00.000Z' WHERE scenario_id = 'old'");
		store_generation(st, &gen0, NULL);
		is_int(store_policy_expire_completed(st, 3600, &deleted), 0,
		    "expire: runs");
		is_int((int)deleted, 1, "expire: one deleted");
		store_generation(st, &gen, NULL);
		is_int(gen, gen0 + 1, "expire: one generation bump");
		is_int(store_policy_get(st, "old", p), EGW_E_NOTFOUND,
		    "expire: gone");
		is_int(query_int(st, "SELECT count(*) FROM policy_history WHERE"
		    " scenario_id = 'old' AND operation = 'expire' AND after_json"
		    " IS NULL%s", NULL), 1, "expire: history");
		is_int(query_int(st, "SELECT count(*) FROM outbox WHERE"
		    " scenario_id = 'old' AND type = 'policy.expired'%s", NULL), 1,
		    "expire: outbox event");
	}

	/* Apply results written by the applier. */
	store_generation(st, &gen, NULL);
	is_int(store_policy_get(st, "s1", p), 0, "apply result: s1 loaded");
	is_int(store_policy_set_apply_result(st, "s1", p->generation - 1,
	    POLICY_APPLY_APPLIED, NULL), 0, "apply result for an older generation");
	is_int(store_policy_get(st, "s1", p), 0, "apply result: reload");
	is_int(p->apply_status, POLICY_APPLY_PENDING,
	    "apply result: newer policy stays pending");
	is_int(store_policy_set_apply_result(st, NULL, gen, POLICY_APPLY_FAILED,
	    "kernel refused"), 0, "apply result: failed for all");
	is_int(store_policy_get(st, "s1", p), 0, "apply result: reload again");
	is_int(p->apply_status, POLICY_APPLY_FAILED, "apply result: failed");
	is_str(p->apply_error, "kernel refused", "apply result: error kept");
	is_int(p->applied_generation, gen, "apply result: applied_generation");

	/* Delete. */
	store_generation(st, &gen0, NULL);
	is_int(store_policy_delete(st, "s1", &actor, &g), 0, "delete");
	is_int(g, gen0 + 1, "delete: generation returned");
	is_int(store_policy_get(st, "s1", p), EGW_E_NOTFOUND, "delete: gone");
	is_int(query_int(st, "SELECT count(*) FROM policy_sources%s", NULL), 0,
	    "delete: children cascaded");
	is_int(store_policy_delete(st, "s1", &actor, &g), EGW_E_NOTFOUND,
	    "delete again: not found");
	{
		char ops[256] = "";
		int64_t next = -1;

		is_int(store_policy_history(st, "s1", 0, 3, hist_cb, ops, &next), 0,
		    "history: first page");
		is_str(ops, "delete,enable,complete,", "history: newest first");
		ok(next > 0, "history: cursor for more");
		ops[0] = '\0';
		is_int(store_policy_history(st, "s1", next, 10, hist_cb, ops, &next),
		    0, "history: second page");
		is_str(ops, "disable,update,update,create,", "history: rest");
		is_int(next, 0, "history: no further page");
	}

	/* Created again: its revisions go on from the deleted policy's, so
	 * a read-modify-write of the deleted one cannot overwrite it. */
	{
		int64_t last = query_int(st, "SELECT revision FROM policy_history"
		    " WHERE scenario_id = 's1' ORDER BY id DESC LIMIT 1%s", NULL);

		ok(last > 1, "the deleted policy had revision %lld", (long long)last);
		is_int(parse("{\"scenario_id\":\"s1\",\"revision\":0}", p), 0,
		    "re-create: parses");
		is_int(store_policy_put(st, p, &actor, &created, NULL), 0,
		    "re-create");
		ok(created, "re-create: created");
		is_int(p->revision, last + 1,
		    "re-create: revision follows the deleted policy's");
		int64_t conflicts = 0;

		for (int64_t r = 1; r <= last; r++) {
			char body[96];

			snprintf(body, sizeof(body), "{\"scenario_id\":\"s1\","
			    "\"mode\":\"audit\",\"revision\":%lld}", (long long)r);
			if (parse(body, q) == 0 && store_policy_put(st, q, &actor,
			    &created, NULL) == EGW_E_CONFLICT)
				conflicts++;
		}
		is_int(conflicts, last, "every stale revision (1..%lld) of the"
		    " deleted policy: conflict", (long long)last);
		is_int(store_policy_get(st, "s1", q), 0, "re-created: reload");
		is_int(q->revision, last + 1, "re-created: unchanged");
		is_int(q->mode, POLICY_MODE_ENFORCE, "re-created: not overwritten");
		is_int(store_policy_delete(st, "s1", &actor, NULL), 0,
		    "re-created: deleted again");
	}
	/* A history from a version that restarted at 1 after a delete:
	 * revisions 1-3, deleted, then 1 again, deleted.  The next one
	 * goes above the highest (3), not the newest (1). */
	is_int(store_exec(st, "INSERT INTO policy_history (ts, scenario_id,"
	    " operation, actor, revision, generation) VALUES"
	    " ('2026-01-01T00:00:00.000Z', 'old-r', 'create', 't', 1, 0),"
	    " ('2026-01-01T00:00:01.000Z', 'old-r', 'update', 't', 2, 0),"
	    " ('2026-01-01T00:00:02.000Z', 'old-r', 'update', 't', 3, 0),"
	    " ('2026-01-01T00:00:03.000Z', 'old-r', 'delete', 't', 3, 0),"
	    " ('2026-01-01T00:00:04.000Z', 'old-r', 'create', 't', 1, 0),"
	    " ('2026-01-01T00:00:05.000Z', 'old-r', 'delete', 't', 1, 0)"), 0,
	    "an old history with a restart at 1");
	is_int(parse("{\"scenario_id\":\"old-r\"}", p), 0, "old-r: parses");
	is_int(store_policy_put(st, p, &actor, &created, NULL), 0, "old-r: created");
	is_int(p->revision, 4, "old-r: revision above the highest ever (3)");
	is_int(store_policy_delete(st, "old-r", &actor, NULL), 0, "old-r: deleted");
	policy_free(p);
	policy_free(q);
}

static void
test_list_and_profiles(struct store *st)
{
	struct policy *p = policy_new();
	struct store_profile *pr = malloc(sizeof(*pr));
	struct list_ctx c;
	char name[POLICY_PROFILE_MAX + 1];
	const char *ids[] = { "l-c", "l-a", "l-e", "l-b", "l-d" };
	bool more = false, uses = true;
	struct store *other = NULL;
	size_t count = 0, later = 0;
	int n = 0;

	for (size_t i = 0; i < 5; i++) {
		policy_init(p);
		snprintf(p->scenario_id, sizeof(p->scenario_id), "%s", ids[i]);
		store_policy_put(st, p, &actor, NULL, NULL);
	}
	memset(&c, 0, sizeof(c));
	is_int(store_policy_list(st, "l-", 2, list_cb, &c, &more), 0, "list page 1");
	ok(c.n == 2 && strcmp(c.seen[0], "l-a") == 0 &&
	    strcmp(c.seen[1], "l-b") == 0 && more, "list: ordered, more");
	memset(&c, 0, sizeof(c));
	is_int(store_policy_list(st, "l-b", 10, list_cb, &c, &more), 0,
	    "list from cursor");
	ok(c.n == 3 && strcmp(c.seen[0], "l-c") == 0 && !more,
	    "list: rest, no more");
	memset(&c, 0, sizeof(c));
	is_int(store_policy_list(st, NULL, 0, list_cb, &c, &more), 0, "list all");
	ok(c.n >= 5, "list all: every policy");
	is_int(store_policy_count(st, &count), 0, "count");
	ok(count == c.n, "count: as many as the list returns (%zu)", count);
	/* The unpaged API list relies on this: a count and the pages read
	 * in one read transaction see one state, whatever commits meanwhile. */
	is_int(store_open(dbpath, &other), 0, "a second connection");
	ok(store_read_begin(st), "read snapshot opened");
	is_int(store_policy_count(st, &count), 0, "count in the snapshot");
	policy_init(p);
	snprintf(p->scenario_id, sizeof(p->scenario_id), "l-late");
	is_int(store_policy_put(other, p, &actor, NULL, NULL), 0,
	    "another connection commits a policy");
	is_int(store_policy_count(st, &later), 0, "count again");
	ok(later == count, "count: the snapshot does not see the commit");
	memset(&c, 0, sizeof(c));
	is_int(store_policy_list(st, "l-", 10, list_cb, &c, &more), 0,
	    "list in the snapshot");
	ok(c.n == 5, "list: the snapshot does not see the commit");
	store_read_end(st, true);
	is_int(store_policy_count(st, &later), 0, "count after the snapshot");
	ok(later == count + 1, "count: the commit is seen afterwards");
	store_close(other);
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	is_int(store_policy_list(st, NULL, 0, list_cb, &c, NULL), 42,
	    "list: callback stops the walk");
	is_int(store_policy_list(st, NULL, STORE_POLICY_LIST_MAX + 1, list_cb, &c,
	    NULL), EGW_E_INVALID, "list: limit checked");

	is_int(store_profile_get(st, "custom", &uses), 0, "profile custom");
	ok(uses, "custom uses policy entries");
	is_int(store_profile_get(st, "none", &uses), 0, "profile none");
	ok(!uses, "none does not");
	is_int(store_profile_get(st, "zzz", NULL), EGW_E_NOTFOUND,
	    "unknown profile");
	is_int(store_profile_load(st, "training-updates", pr), 0, "load profile");
	is_int((int)pr->n_rules, 6, "training-updates: 4 internal nets + 80 + 443");
	ok(pr->rules[4].proto == IP_PROTO_TCP && pr->rules[4].n_ports == 1 &&
	    pr->rules[4].ports[0].lo == 80 && !pr->rules[4].has_dest,
	    "training-updates: HTTP rule typed");
	ok(pr->rules[0].has_dest && pr->rules[0].proto == IP_PROTO_ANY,
	    "training-updates: internal net rule typed");
	is_int(store_profile_list(st, profile_cb, &n), 0, "profile list");
	is_int(n, 4, "four profiles");
	is_int(store_track_profile(st, "cissp", name), 0, "track cissp");
	is_str(name, "training-updates", "cissp -> training-updates");
	is_int(store_track_profile(st, "ccna", name), 0, "track ccna");
	is_str(name, "none", "ccna -> none");
	is_int(store_track_profile(st, "unheard-of", name), 0, "unknown track");
	is_str(name, "none", "unknown track -> default");
	free(pr);
	policy_free(p);
}

#define WRITERS 8
#define WRITES 50
#define SCENARIOS 4

/* Blind upserts with distinct content: every write is effective. */
/*
 * A completed scenario's network (sources, interfaces) goes to the next
 * scenario at once: the completed one expires in the same transaction.
 * A live owner still refuses, and then nothing expires.
 */
static void
test_completed_claims(struct store *st)
{
	struct store_actor reuser = { .actor = "test", .request_id = "req-reuse" };
	struct policy *p = policy_new();
	struct policy_errors errs;
	bool created;
	int64_t gen0, gen1;

	parse("{\"scenario_id\":\"old-1\",\"sources\":[\"100.64.77.0/24\"],"
	    "\"interfaces\":[\"br-old1\"]}", p);
	is_int(store_policy_put(st, p, &reuser, &created, NULL), 0, "old-1 claims 100.64.77.0/24");
	parse("{\"scenario_id\":\"live-1\",\"sources\":[\"100.64.78.0/24\"]}", p);
	is_int(store_policy_put(st, p, &reuser, &created, NULL), 0, "live-1 claims 100.64.78.0/24");
	is_int(store_policy_complete(st, "old-1", &reuser), 0, "old-1 completed");

	/* Overlapping the completed one and a live one: refused, no expiry. */
	parse("{\"scenario_id\":\"new-1\",\"sources\":[\"100.64.76.0/22\"]}", p);
	policy_errors_init(&errs);
	is_int(store_policy_put(st, p, &reuser, &created, &errs), EGW_E_INVALID,
	    "a source over a completed and a live scenario: refused");
	ok(errs.count == 1 && strstr(errs.items[0].reason, "live-1") != NULL,
	    "the live owner is named (%s)", errs.count ? errs.items[0].reason : "");
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id = '%s'",
	    "old-1"), 1, "and the completed one is still there");

	store_generation(st, &gen0, NULL);
	parse("{\"scenario_id\":\"new-1\",\"sources\":[\"100.64.77.128/25\"],"
	    "\"interfaces\":[\"br-old1\"]}", p);
	policy_errors_init(&errs);
	is_int(store_policy_put(st, p, &reuser, &created, &errs), 0,
	    "the completed scenario's network and interface: accepted");
	store_generation(st, &gen1, NULL);
	is_int(gen1, gen0 + 1, "one generation for the put and the expiry");
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id = '%s'",
	    "old-1"), 0, "the completed scenario expired");
	is_int(query_int(st, "SELECT count(*) FROM policy_history WHERE scenario_id = '%s'"
	    " AND operation = 'expire' AND request_id = 'req-reuse'", "old-1"), 1,
	    "its expiry is in the history, with the put's request id");
	is_int(query_int(st, "SELECT count(*) FROM outbox WHERE scenario_id = '%s'"
	    " AND type = 'policy.expired'", "old-1"), 1, "and announced");
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id = '%s'",
	    "live-1"), 1, "the live scenario is untouched");
	store_policy_delete(st, "new-1", &reuser, NULL);
	store_policy_delete(st, "live-1", &reuser, NULL);
	policy_free(p);
}

/* "<prefix><first 12 characters>", as EGW_IFACE_TEMPLATE's default does. */
static int
test_deriver(const char *network_id, char *out, const void *ctx)
{
	int n = snprintf(out, NETADDR_IFNAMSIZ, "%s%.12s", (const char *)ctx,
	    network_id);

	return n > 0 && n < NETADDR_IFNAMSIZ ? 0 : EGW_E_INVALID;
}

static bool
reason_has(const struct policy_errors *e, const char *path, const char *a,
    const char *b)
{
	for (size_t i = 0; i < e->count; i++)
		if (strcmp(e->items[i].path, path) == 0 &&
		    strstr(e->items[i].reason, a) != NULL &&
		    strstr(e->items[i].reason, b) != NULL)
			return true;
	for (size_t i = 0; i < e->count; i++)
		tap_diag("  %s: %s", e->items[i].path, e->items[i].reason);
	return false;
}

/* @body's put is refused, with a reason at @path that names @a and @b. */
static void
refused_claim(struct store *st, struct policy *p, const char *body,
    const char *path, const char *a, const char *b, const char *what)
{
	struct policy_errors errs;

	parse(body, p);
	policy_errors_init(&errs);
	is_int(store_policy_put(st, p, &actor, NULL, &errs), EGW_E_INVALID,
	    "derived: %s is refused", what);
	ok(reason_has(&errs, path, a, b), "... at %s, naming %s and %s", path,
	    a, b);
}

/*
 * A policy that names neither sources nor interfaces claims the interface
 * its network_id derives: a second scenario may neither name it, nor
 * derive it from another network_id, and a named interface may not be
 * derived by another; the refused put writes nothing.  The column follows
 * the policy, and is computed again for every row at start.
 */
static void
test_derived_claims(struct store *st)
{
	struct policy *p = policy_new();
	int64_t gen0, gen1, to_change;
	size_t changed = 99;
	char *v;

	store_set_iface_deriver(st, test_deriver, "br-");
	parse("{\"scenario_id\":\"dv-a\",\"network_id\":\"netaaaaaaaaa1\"}", p);
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0,
	    "derived: dv-a by its network_id alone");
	v = query_text(st, "SELECT derived_iface FROM policies WHERE scenario_id"
	    " = '%s'", "dv-a");
	is_str(v, "br-netaaaaaaaaa", "derived: its interface recorded");
	free(v);
	store_generation(st, &gen0, NULL);

	refused_claim(st, p, "{\"scenario_id\":\"dv-b\",\"interfaces\":"
	    "[\"br-netaaaaaaaaa\"]}", "/interfaces/0", "dv-a", "network_id",
	    "another scenario naming it");
	refused_claim(st, p, "{\"scenario_id\":\"dv-b\",\"network_id\":"
	    "\"netaaaaaaaaa2\"}", "/network_id", "br-netaaaaaaaaa", "dv-a",
	    "another network_id deriving the same name");
	store_generation(st, &gen1, NULL);
	is_int(gen1, gen0, "derived: the refusals bumped no generation");
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id"
	    " = '%s'", "dv-b"), 0, "... and stored no policy");

	parse("{\"scenario_id\":\"dv-c\",\"interfaces\":[\"br-named\"]}", p);
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0,
	    "derived: dv-c names br-named");
	refused_claim(st, p, "{\"scenario_id\":\"dv-d\",\"network_id\":"
	    "\"named\"}", "/network_id", "br-named", "dv-c",
	    "a network_id deriving a named interface");
	parse("{\"scenario_id\":\"dv-d\",\"network_id\":\"named\","
	    "\"sources\":[\"100.64.91.0/24\"]}", p);
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0,
	    "derived: the same network_id with sources derives nothing: accepted");
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id"
	    " = '%s' AND derived_iface IS NULL", "dv-d"), 1, "... column NULL");

	parse("{\"scenario_id\":\"dv-a\",\"network_id\":\"netaaaaaaaaa1\","
	    "\"mode\":\"audit\"}", p);
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0,
	    "derived: its own scenario may change (no claim on itself)");
	parse("{\"scenario_id\":\"dv-a\",\"network_id\":\"netaaaaaaaaa1\","
	    "\"interfaces\":[\"br-other\"]}", p);
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0,
	    "derived: dv-a names an interface instead");
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id"
	    " = '%s' AND derived_iface IS NULL", "dv-a"), 1,
	    "... and its derived claim is gone");
	parse("{\"scenario_id\":\"dv-b\",\"network_id\":\"netaaaaaaaaa2\"}", p);
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0,
	    "derived: so the other network_id may derive it now");

	/* A clash stored before the check (or under another template) does
	 * not stop an update that keeps the claim. */
	store_exec(st, "UPDATE policies SET derived_iface = 'br-netaaaaaaaaa'"
	    " WHERE scenario_id = 'dv-c'");
	parse("{\"scenario_id\":\"dv-b\",\"network_id\":\"netaaaaaaaaa2\","
	    "\"mode\":\"audit\"}", p);
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0,
	    "derived: an update keeping a claim that clashes from before");
	parse("{\"scenario_id\":\"dv-b\",\"network_id\":\"netbbbbbbbbb\"}", p);
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0,
	    "derived: dv-b moves to another network");
	refused_claim(st, p, "{\"scenario_id\":\"dv-b\",\"network_id\":"
	    "\"netaaaaaaaaa2\"}", "/network_id", "br-netaaaaaaaaa", "dv-c",
	    "moving back onto the clash (a new claim)");
	is_int(store_policy_put(st, p, &actor, NULL, NULL), EGW_E_INVALID,
	    "... (and again: a refused put records no claim)");
	store_exec(st, "UPDATE policies SET derived_iface = NULL"
	    " WHERE scenario_id = 'dv-c'");
	parse("{\"scenario_id\":\"dv-b\",\"network_id\":\"netaaaaaaaaa2\"}", p);
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0,
	    "derived: back, once the clash is gone");

	/* A row that named sources and now derives: a new claim, checked. */
	parse("{\"scenario_id\":\"dv-g\",\"network_id\":\"netaaaaaaaaa3\","
	    "\"sources\":[\"100.64.92.0/24\"]}", p);
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0, "derived: dv-g by sources");
	refused_claim(st, p, "{\"scenario_id\":\"dv-g\",\"network_id\":"
	    "\"netaaaaaaaaa3\"}", "/network_id", "br-netaaaaaaaaa", "dv-b",
	    "dropping its sources onto a derived claim");
	is_int(query_int(st, "SELECT count(*) FROM policy_sources WHERE policy_id ="
	    " (SELECT id FROM policies WHERE scenario_id = '%s')", "dv-g"), 1,
	    "... and its sources stay");

	/* Two puts in one batch (the writer's group commit): the second
	 * sees the first's claim. */
	{
		struct policy_errors errs;
		bool queued;

		is_int(store_policy_batch_begin(st, &queued), 0, "derived: a batch");
		parse("{\"scenario_id\":\"dv-h\",\"network_id\":\"nethhhhhhhhh1\"}", p);
		is_int(store_policy_put(st, p, &actor, NULL, NULL), 0,
		    "... its first put derives br-nethhhhhhhhh");
		parse("{\"scenario_id\":\"dv-i\",\"network_id\":\"nethhhhhhhhh2\"}", p);
		policy_errors_init(&errs);
		is_int(store_policy_put(st, p, &actor, NULL, &errs), EGW_E_INVALID,
		    "... its second, deriving the same, is refused");
		is_int(store_policy_batch_end(st, queued, true), 0, "... commits");
		is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id"
		    " IN ('dv-h', 'dv-i')%s", ""), 1, "... with the first only");
	}

	/* The longest names still leave the advice in the reason. */
	{
		char sid_a[POLICY_SCENARIO_ID_MAX + 1], sid_b[POLICY_SCENARIO_ID_MAX + 1];
		char body[256];
		struct policy_errors errs;

		memset(sid_a, 'a', POLICY_SCENARIO_ID_MAX);
		sid_a[POLICY_SCENARIO_ID_MAX] = '\0';
		memcpy(sid_b, sid_a, sizeof(sid_b));
		sid_b[0] = 'b';
		snprintf(body, sizeof(body), "{\"scenario_id\":\"%s\","
		    "\"network_id\":\"netlongname1\"}", sid_a);
		parse(body, p);
		is_int(store_policy_put(st, p, &actor, NULL, NULL), 0,
		    "derived: a 64-character scenario id derives br-netlongname1");
		snprintf(body, sizeof(body), "{\"scenario_id\":\"%s\","
		    "\"network_id\":\"netlongname1x\"}", sid_b);
		parse(body, p);
		policy_errors_init(&errs);
		is_int(store_policy_put(st, p, &actor, NULL, &errs), EGW_E_INVALID,
		    "... another 64-character one deriving it is refused");
		ok(errs.count == 1 && strstr(errs.items[0].reason, sid_a) != NULL &&
		    strstr(errs.items[0].reason, "another network_id") != NULL,
		    "... the whole reason kept (%zu bytes)",
		    errs.count ? strlen(errs.items[0].reason) : 0);
		store_policy_delete(st, sid_a, &actor, NULL);
	}

	/* A completed scenario's derived interface goes to the next one. */
	is_int(store_policy_complete(st, "dv-b", &actor), 0, "derived: dv-b completed");
	parse("{\"scenario_id\":\"dv-e\",\"interfaces\":[\"br-netaaaaaaaaa\"]}", p);
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0,
	    "derived: a completed scenario's derived interface can be named");
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id"
	    " = '%s'", "dv-b"), 0, "... and the completed one expired");

	/* At start: every row computed again with the connection's deriver. */
	parse("{\"scenario_id\":\"dv-f\",\"network_id\":\"netfffffffff\"}", p);
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0, "derived: dv-f");
	store_exec(st, "UPDATE policies SET derived_iface = 'stale' WHERE"
	    " scenario_id = 'dv-c'");
	store_set_iface_deriver(st, test_deriver, "vx-");
#define DERIVES_NOT_AS_EXPECTED "SELECT count(*) FROM policies p WHERE" \
	" derived_iface IS NOT (CASE WHEN network_id = '' OR EXISTS (SELECT 1" \
	" FROM policy_sources s WHERE s.policy_id = p.id) THEN NULL ELSE" \
	" 'vx-' || substr(network_id, 1, 12) END)%s"
	/* dv-f's name, dv-c's stale value, and rows of the tests before,
	 * which were written without a deriver */
	to_change = query_int(st, DERIVES_NOT_AS_EXPECTED, "");
	ok(to_change >= 2, "derived: %lld rows to change", (long long)to_change);
	is_int(store_policy_fill_derived_ifaces(st, &changed), 0,
	    "derived: recomputed under another template");
	is_int((int64_t)changed, to_change, "... each of them changed");
	is_int(query_int(st, DERIVES_NOT_AS_EXPECTED, ""), 0,
	    "... and every row is as the deriver makes it");
#undef DERIVES_NOT_AS_EXPECTED
	v = query_text(st, "SELECT derived_iface FROM policies WHERE scenario_id"
	    " = '%s'", "dv-f");
	is_str(v, "vx-netfffffffff", "... dv-f's new name");
	free(v);
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id"
	    " = '%s' AND derived_iface IS NULL", "dv-c"), 1,
	    "... dv-c (named interfaces) claims none");
	is_int(store_policy_fill_derived_ifaces(st, &changed), 0, "derived: again");
	is_int((int64_t)changed, 0, "... nothing left to change");
	store_set_iface_deriver(st, NULL, NULL);
	is_int(store_policy_fill_derived_ifaces(st, &changed), 0,
	    "derived: without a deriver");
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE derived_iface"
	    " IS NOT NULL%s", ""), 0, "... no row claims one");

	store_policy_delete(st, "dv-a", &actor, NULL);
	store_policy_delete(st, "dv-c", &actor, NULL);
	store_policy_delete(st, "dv-d", &actor, NULL);
	store_policy_delete(st, "dv-e", &actor, NULL);
	store_policy_delete(st, "dv-f", &actor, NULL);
	store_policy_delete(st, "dv-g", &actor, NULL);
	store_policy_delete(st, "dv-h", &actor, NULL);
	policy_free(p);
}

/*
 * A policy whose child rows were edited into nonsense (EGW_E_BADROW) can
 * still be disabled, completed, rewritten by a put (same content or
 * not), deleted, and expired: the ways out must not need the bad rows.
 */
static void
test_unparsable_rows(struct store *st)
{
	static const char body[] = "{\"scenario_id\":\"bad-1\",\"profile\":\"custom\","
	    "\"sources\":[\"100.64.88.0/24\"],\"allowed_hosts\":[\"203.0.113.10\"],"
	    "\"allowed_ports\":[443]}";
	static const char breakit[] = "UPDATE policy_destinations SET dest = '203.0.113.300'"
	    " WHERE policy_id = (SELECT id FROM policies WHERE scenario_id = 'bad-1')"
	    " AND dest IS NOT NULL";
	struct store_actor op = { .actor = "test", .request_id = "req-bad" };
	struct policy *p = policy_new();
	bool created;

	parse(body, p);
	is_int(store_policy_put(st, p, &op, &created, NULL), 0, "bad-1 stored");
	store_exec(st, breakit);
	is_int(store_policy_get(st, "bad-1", p), EGW_E_BADROW, "its rows no longer parse");
	ok(p->row_unparsable && p->id > 0, "the main row is loaded, flagged");
	is_int(store_policy_set_enabled(st, "bad-1", false, &op, NULL), 0, "it can be disabled");
	is_int(store_policy_complete(st, "bad-1", &op), 0, "it can be completed");
	parse(body, p);
	is_int(store_policy_put(st, p, &op, &created, NULL), 0,
	    "a put of the same content rewrites the rows");
	is_int(store_policy_get(st, "bad-1", p), 0, "which parse again");
	store_exec(st, breakit);
	store_exec(st, "UPDATE policies SET api_json = NULL WHERE scenario_id = 'bad-1'");
	parse(body, p);
	p->n_ports = 0;
	is_int(store_policy_put(st, p, &op, &created, NULL), 0,
	    "a put without a stored document rewrites them too");
	is_int(store_policy_get(st, "bad-1", p), 0, "parse again");
	store_exec(st, breakit);
	is_int(store_policy_delete(st, "bad-1", &op, NULL), 0, "it can be deleted");
	parse(body, p);
	is_int(store_policy_put(st, p, &op, &created, NULL), 0, "bad-1 again");
	store_policy_complete(st, "bad-1", &op);
	store_exec(st, breakit);
	store_exec(st, "UPDATE policies SET completed_at = '2020-01-01T00:00:00.000Z'"
	    " WHERE scenario_id = 'bad-1'");
	is_int(store_policy_expire_completed(st, 60, NULL), 0, "and expired");
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id = '%s'",
	    "bad-1"), 0, "gone");
	policy_free(p);
}

static int
writer_child(int w)
{
	struct store *st;
	struct policy *p = policy_new();
	struct policy_errors errs;
	int failures = 0;

	if (store_open(dbpath, &st) != 0)
		return 1;
	for (int i = 0; i < WRITES; i++) {
		policy_init(p);
		snprintf(p->scenario_id, sizeof(p->scenario_id), "conc-%d",
		    (w + i) % SCENARIOS);
		snprintf(p->network_id, sizeof(p->network_id), "w%d-i%d", w, i);
		snprintf(p->profile, sizeof(p->profile), "custom");
		p->n_ports = 1;
		p->ports[0].lo = p->ports[0].hi = (uint16_t)(1000 + w * WRITES + i);
		policy_errors_init(&errs);
		if (store_policy_put(st, p, &actor, NULL, &errs) != 0)
			failures++;
	}
	store_close(st);
	policy_free(p);
	return failures > 0 ? 2 : 0;
}

/* Read-modify-write of a counter under the revision check. */
static int
counter_child(void)
{
	struct store *st;
	struct policy *p = policy_new();
	int done = 0, rc, tries = 0;

	if (store_open(dbpath, &st) != 0)
		return 1;
	while (done < 25 && tries++ < 5000) {
		if (store_policy_get(st, "counter", p) != 0)
			return 3;
		snprintf(p->network_id, sizeof(p->network_id), "n%d",
		    atoi(p->network_id + 1) + 1);
		p->revision_given = true;	/* the revision just read */
		rc = store_policy_put(st, p, &actor, NULL, NULL);
		if (rc == 0)
			done++;
		else if (rc != EGW_E_CONFLICT)
			return 4;
	}
	store_close(st);
	policy_free(p);
	return done == 25 ? 0 : 5;
}

static bool
wait_all(pid_t *pids, int n)
{
	bool all_ok = true;
	int status;

	for (int i = 0; i < n; i++) {
		if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			tap_diag("child %d: status %d", i, status);
			all_ok = false;
		}
	}
	return all_ok;
}

/* GET's text from the stored document (or the rows when none). */
static char *
doc_of(struct store *st, const char *sid)
{
	struct printbuf *pb = printbuf_new();
	char *s = NULL;

	if (pb != NULL && store_policy_document(st, sid, pb) == 0)
		s = strdup(pb->buf);
	printbuf_free(pb);
	return s;
}

/* The same policy's text built from its columns and child rows. */
static char *
rows_of(struct store *st, const char *sid)
{
	struct policy *p = policy_new();
	struct json_object *o;
	char *s = NULL;

	if (p != NULL && store_policy_get(st, sid, p) == 0 &&
	    (o = codec_policy_to_json(p)) != NULL) {
		s = strdup(json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	}
	policy_free(p);
	return s;
}

static bool
doc_matches_rows(struct store *st, const char *sid)
{
	char *d = doc_of(st, sid), *r = rows_of(st, sid);
	bool same = d != NULL && r != NULL && strcmp(d, r) == 0;

	if (!same)
		tap_diag("document %s\n#     rows %s", d ? d : "(none)",
		    r ? r : "(none)");
	free(d);
	free(r);
	return same;
}

struct docs_ctx {
	struct store *st;
	size_t n, mismatches;
	char last[POLICY_SCENARIO_ID_MAX + 1];
};

static int
docs_cb(const char *sid, const char *doc, size_t len, void *arg)
{
	struct docs_ctx *c = arg;
	char *r = rows_of(c->st, sid);

	if (r == NULL || strlen(doc) != len || strcmp(doc, r) != 0)
		c->mismatches++;
	free(r);
	snprintf(c->last, sizeof(c->last), "%s", sid);
	c->n++;
	return 0;
}

static void
test_documents(struct store *st)
{
	struct policy *p = policy_new();
	struct printbuf *pb = printbuf_new();
	struct docs_ctx c = { .st = st };
	char *after = NULL, *now = NULL;
	size_t filled = 99;
	bool more = false;

	is_int(parse("{\"scenario_id\":\"d-1\",\"network_id\":\"n1\","
	    "\"profile\":\"custom\",\"allowed_hosts\":[\"192.0.2.0/24\"],"
	    "\"allowed_ports\":[443],\"custom_rules\":[{\"proto\":\"udp\","
	    "\"dest\":\"198.51.100.0/24\",\"ports\":[53,\"5000-5010\"]}],"
	    "\"sources\":[\"100.64.9.0/24\"],\"interfaces\":[\"veth-d1\"],"
	    "\"dns_servers\":[\"100.64.9.1\"],\"mode\":\"audit\"}", p), 0,
	    "document: parse");
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0, "document: create");
	ok(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 'd-1'"
	    " AND api_json IS NOT NULL", NULL) == 1, "document: stored with the"
	    " policy");
	ok(doc_matches_rows(st, "d-1"), "document: create = rows");
	after = query_text(st, "SELECT after_json FROM policy_history WHERE"
	    " scenario_id = 'd-1' ORDER BY id DESC LIMIT 1", NULL);
	now = doc_of(st, "d-1");
	ok(after != NULL && now != NULL && strcmp(after, now) == 0,
	    "document: the history row's after_json is the same text");
	free(after);
	free(now);

	p->n_ports = 0;
	p->revision_given = false;
	now = doc_of(st, "d-1");
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0, "document: update");
	ok(doc_matches_rows(st, "d-1"), "document: update = rows");
	after = query_text(st, "SELECT before_json FROM policy_history WHERE"
	    " scenario_id = 'd-1' ORDER BY id DESC LIMIT 1", NULL);
	ok(after != NULL && now != NULL && strcmp(after, now) == 0,
	    "document: the update's before_json is the text read before it");
	free(after);
	free(now);
	is_int(store_policy_set_apply_result(st, "d-1", p->generation,
	    POLICY_APPLY_FAILED, "nft: \"bad\"\nline\t\x01"), 0,
	    "document: the applier fails it");
	ok(doc_matches_rows(st, "d-1"), "document: failed status with an"
	    " escaped error = rows");
	is_int(store_policy_set_enabled(st, "d-1", false, &actor, p), 0,
	    "document: disable");
	ok(doc_matches_rows(st, "d-1"), "document: disable = rows");
	is_int(store_policy_complete(st, "d-1", &actor), 0, "document: complete");
	ok(doc_matches_rows(st, "d-1"), "document: complete (completed_at) = rows");
	/* A put keeps completed_at while the policy stays disabled. */
	p->mode = POLICY_MODE_ENFORCE;
	p->enabled = false;
	p->revision_given = false;
	is_int(store_policy_put(st, p, &actor, NULL, NULL), 0,
	    "document: update of a completed policy");
	ok(p->completed_at[0] != '\0' && doc_matches_rows(st, "d-1"),
	    "document: its completed_at kept, = rows");
	is_int(store_policy_set_enabled(st, "d-1", true, &actor, p), 0,
	    "document: enable");
	ok(doc_matches_rows(st, "d-1"), "document: enable = rows");
	{
		/* An error longer than the struct holds, in two-byte
		 * characters: both texts cut it the same way. */
		char long_error[1201];

		for (size_t i = 0; i + 2 < sizeof(long_error); i += 2)
			memcpy(long_error + i, "\xc3\xa9", 2);
		long_error[sizeof(long_error) - 1] = '\0';
		is_int(store_policy_set_apply_result(st, "d-1", p->generation,
		    POLICY_APPLY_FAILED, long_error), 0, "document: a long"
		    " non-ASCII error");
		ok(doc_matches_rows(st, "d-1"), "document: the long error = rows");
	}
	is_int(store_policy_set_apply_result(st, NULL, p->generation,
	    POLICY_APPLY_APPLIED, NULL), 0, "document: everything applied");
	ok(doc_matches_rows(st, "d-1"), "document: applied status = rows");
	is_int(store_policy_document(st, "d-none", pb), EGW_E_NOTFOUND,
	    "document: unknown scenario is not found");

	/* Rows without a document: from before migration 002, or a row
	 * written by hand (the API benchmark seeds so). */
	is_int(store_exec(st, "INSERT INTO policies (scenario_id, profile,"
	    " generation, created_at, updated_at) VALUES ('d-2', 'none', 1,"
	    " '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');"
	    "UPDATE policies SET api_json = NULL WHERE scenario_id = 'd-1'"), 0,
	    "document: two rows without one");
	ok(doc_matches_rows(st, "d-1") && doc_matches_rows(st, "d-2"),
	    "document: read from the rows when not stored");
	is_int(store_policy_documents(st, "d-", 1, docs_cb, &c, &more), 0,
	    "documents: first page");
	ok(c.n == 1 && more && strcmp(c.last, "d-1") == 0, "documents: one,"
	    " more");
	is_int(store_policy_documents(st, c.last, 5, docs_cb, &c, &more), 0,
	    "documents: from the cursor");
	ok(c.n >= 2 && c.mismatches == 0, "documents: each = its rows,"
	    " stored or not (%zu)", c.n);
	/* A put against a row without a document compares and records the
	 * rows' text instead. */
	{
		struct policy *q = policy_new();
		char *before = rows_of(st, "d-1"), *hist;
		int64_t rev;
		bool created = true;

		is_int(store_policy_get(st, "d-1", q), 0, "put without document:"
		    " load");
		rev = q->revision;
		q->revision_given = false;
		is_int(store_policy_put(st, q, &actor, &created, NULL), 0,
		    "put without document: the same input");
		ok(!created && q->revision == rev && query_int(st, "SELECT"
		    " count(*) FROM policies WHERE scenario_id = 'd-1' AND"
		    " api_json IS NULL", NULL) == 1,
		    "put without document: nothing written");
		q->mode = q->mode == POLICY_MODE_AUDIT ? POLICY_MODE_ENFORCE
		    : POLICY_MODE_AUDIT;
		is_int(store_policy_put(st, q, &actor, &created, NULL), 0,
		    "put without document: a change");
		hist = query_text(st, "SELECT before_json FROM policy_history"
		    " WHERE scenario_id = 'd-1' ORDER BY id DESC LIMIT 1", NULL);
		ok(hist != NULL && before != NULL && strcmp(hist, before) == 0 &&
		    q->revision == rev + 1, "put without document: history's"
		    " before_json is the rows' text");
		ok(doc_matches_rows(st, "d-1"), "put without document: stored"
		    " again, = rows");
		is_int(store_exec(st, "UPDATE policies SET api_json = NULL"
		    " WHERE scenario_id = 'd-1'"), 0, "put without document:"
		    " dropped again");
		free(hist);
		free(before);
		policy_free(q);
	}
	is_int(store_policy_fill_documents(st, &filled), 0, "fill");
	ok(filled >= 2 && query_int(st, "SELECT count(*) FROM policies WHERE"
	    " api_json IS NULL OR api_json_generation IS NOT generation",
	    NULL) == 0, "fill: every missing or stale document built (%zu)",
	    filled);
	ok(doc_matches_rows(st, "d-1") && doc_matches_rows(st, "d-2"),
	    "fill: the built documents = rows");
	/* A change by a program that does not know the documents (one that
	 * opened the database before migration 002) bumps the generation
	 * but leaves the document: it is stale, and not served. */
	is_int(store_exec(st, "UPDATE policies SET network_id = 'changed',"
	    " generation = generation + 1 WHERE scenario_id = 'd-2'"), 0,
	    "stale: d-2 changed without its document");
	now = doc_of(st, "d-2");
	ok(now != NULL && strstr(now, "\"network_id\":\"changed\"") != NULL &&
	    doc_matches_rows(st, "d-2"), "stale: read from the rows");
	free(now);
	is_int(store_policy_fill_documents(st, &filled), 0, "fill again");
	ok(filled == 1 && doc_matches_rows(st, "d-2") && query_int(st,
	    "SELECT count(*) FROM policies WHERE api_json_generation ="
	    " generation AND scenario_id = 'd-2'", NULL) == 1,
	    "fill again: the stale document rebuilt");
	is_int(store_policy_fill_documents(st, &filled), 0, "fill a third time");
	is_int((int)filled, 0, "fill a third time: nothing to build");
	is_int(store_exec(st, "UPDATE policies SET api_json = '[1]'"
	    " WHERE scenario_id = 'd-1'"), EGW_E_CONFLICT,
	    "schema: (a constraint) a document that is not an object's text is refused");
	printbuf_free(pb);
	policy_free(p);
}

static void
test_concurrency(struct store **stp)
{
	pid_t pids[WRITERS];
	int64_t gen0, gen;
	struct policy *p = policy_new();

	store_generation(*stp, &gen0, NULL);
	/* No connection crosses fork(). */
	store_close(*stp);
	for (int w = 0; w < WRITERS; w++) {
		pids[w] = fork();
		if (pids[w] == 0)
			_exit(writer_child(w));
	}
	ok(wait_all(pids, WRITERS), "%d writers x %d upserts: no error reached a"
	    " caller", WRITERS, WRITES);
	is_int(store_open(dbpath, stp), 0, "reopen after writers");
	is_int(query_int(*stp, "SELECT sum(revision) FROM policies WHERE"
	    " scenario_id LIKE 'conc-%%'%s", NULL), WRITERS * WRITES,
	    "final revisions sum to the number of effective writes");
	is_int(query_int(*stp, "SELECT count(*) FROM policy_history WHERE"
	    " scenario_id LIKE 'conc-%%'%s", NULL), WRITERS * WRITES,
	    "one history row per write");
	is_int(query_int(*stp, "SELECT count(*) FROM outbox WHERE"
	    " scenario_id LIKE 'conc-%%'%s", NULL), WRITERS * WRITES,
	    "one outbox event per write");
	is_int(query_int(*stp, "SELECT count(DISTINCT generation) FROM"
	    " policy_history WHERE scenario_id LIKE 'conc-%%'%s", NULL),
	    WRITERS * WRITES, "every write got its own generation");
	store_generation(*stp, &gen, NULL);
	is_int(gen, gen0 + WRITERS * WRITES, "desired generation counted every write");
	is_int(query_int(*stp, "SELECT count(*) FROM policies p WHERE scenario_id"
	    " LIKE 'conc-%%' AND revision = (SELECT count(*) FROM policy_history h"
	    " WHERE h.scenario_id = p.scenario_id)%s", NULL), SCENARIOS,
	    "each scenario's revision equals its history length");

	policy_init(p);
	snprintf(p->scenario_id, sizeof(p->scenario_id), "counter");
	snprintf(p->network_id, sizeof(p->network_id), "n0");
	is_int(store_policy_put(*stp, p, &actor, NULL, NULL), 0, "counter created");
	store_close(*stp);
	for (int w = 0; w < 4; w++) {
		pids[w] = fork();
		if (pids[w] == 0)
			_exit(counter_child());
	}
	ok(wait_all(pids, 4), "4 read-modify-write children finished");
	is_int(store_open(dbpath, stp), 0, "reopen after counters");
	is_int(store_policy_get(*stp, "counter", p), 0, "counter reload");
	is_str(p->network_id, "n100", "no lost update under the revision check");
	is_int(p->revision, 101, "counter revision = 1 + 100 updates");
	policy_free(p);
}

/* Rows written by hand with an index that no put writes: the rule
 * index -1 used to match the loader's "no rule yet" and land in
 * rules[-1]. */
static void
test_hand_edited_rule_index(struct store *st)
{
	struct policy *p = policy_new(), *q = policy_new();
	struct policy_errors errs;
	bool created = false;

	is_int(parse("{\"scenario_id\":\"hand-1\",\"profile\":\"custom\",\"custom_rules\":["
	    "{\"proto\":\"tcp\",\"dest\":\"198.51.100.0/24\",\"ports\":[22,25]},"
	    "{\"proto\":\"udp\",\"ports\":[53]}]}", p), 0, "hand: body parses");
	policy_errors_init(&errs);
	is_int(store_policy_put(st, p, &actor, &created, &errs), 0, "hand: create");
	for (size_t i = 0; i < errs.count; i++)
		tap_diag("put: %s: %s", errs.items[i].path, errs.items[i].reason);
	ok(sqlite3_exec(store_db(st), "UPDATE policy_destinations SET rule_index ="
	    " rule_index - 1 WHERE origin = 'rule' AND policy_id = (SELECT id FROM"
	    " policies WHERE scenario_id = 'hand-1')", NULL, NULL, NULL) == SQLITE_OK,
	    "hand: rule indexes moved to -1 and 0");
	is_int(store_policy_get(st, "hand-1", q), 0, "hand: get");
	is_int(q->n_rules, 2, "hand: both rules loaded");
	ok(q->n_rules == 2 && q->rules[0].n_ports == 2 && q->rules[1].n_ports == 1 &&
	    q->rules[0].proto == p->rules[0].proto, "hand: each with its own ports");
	policy_free(p);
	policy_free(q);
}

/* A change whose client stops waiting before an attempt could end is
 * not run (store_set_deadline). */
static void
test_deadline(struct store *st)
{
	struct policy *p = policy_new();
	struct policy_errors errs;
	bool created = false;

	is_int(parse("{\"scenario_id\":\"late-1\"}", p), 0, "deadline: parses");
	policy_errors_init(&errs);
	store_set_deadline(st, timefmt_monotonic_ms() + 2000);
	is_int(store_policy_put(st, p, &actor, &created, &errs), EGW_E_UNAVAILABLE,
	    "deadline: 2 s left, less than a lock wait: not run");
	store_set_deadline(st, 0);
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id = 'late-1'",
	    NULL), 0, "deadline: nothing written");
	store_set_deadline(st, timefmt_monotonic_ms() + 60000);
	is_int(store_policy_put(st, p, &actor, &created, &errs), 0,
	    "deadline: 60 s left: written");
	store_set_deadline(st, 0);
	ok(created, "deadline: created");
	policy_free(p);
}

/* A store_actor check: what it is given, whether it ran inside a
 * transaction, and what it answers (test_actor_check). */
struct check_probe {
	int answer;		/* 0: passes and names "api:checked" */
	int calls;
	bool in_txn;
	const char *seen;
};

static struct check_probe probe;

static int
probe_check(struct store *st, const void *credential, char *out, size_t size)
{
	probe.calls++;
	probe.in_txn = !sqlite3_get_autocommit(store_db(st)) &&
	    sqlite3_txn_state(store_db(st), "main") == SQLITE_TXN_WRITE;
	probe.seen = credential;
	if (probe.answer == 0)
		snprintf(out, size, "api:checked");
	return probe.answer;
}

static int64_t
history_rows(struct store *st, const char *sid)
{
	return query_int(st, "SELECT count(*) FROM policy_history WHERE"
	    " scenario_id = '%s'", sid);
}

static int64_t
outbox_rows(struct store *st)
{
	return query_int(st, "SELECT count(*) FROM outbox", NULL);
}

static void
test_actor_check(struct store *st)
{
	struct store_actor checked = { .actor = "not-recorded", .request_id =
	    "req-chk", .authorize = probe_check, .credential = "cred-1" };
	struct policy *p = policy_new(), *got = policy_new();
	struct policy_errors errs;
	int64_t gen, hist, out;
	bool created = false;
	char *who;

	is_int(parse("{\"scenario_id\":\"chk-1\",\"profile\":\"none\"}", p), 0,
	    "actor check: parses");
	gen = query_int(st, "SELECT desired_generation FROM applier_state", NULL);
	out = outbox_rows(st);
	memset(&probe, 0, sizeof(probe));
	probe.answer = EGW_E_UNAUTHORIZED;
	policy_errors_init(&errs);
	is_int(store_policy_put(st, p, &checked, &created, &errs),
	    EGW_E_UNAUTHORIZED, "actor check refuses a put: its error");
	ok(probe.calls == 1 && probe.in_txn, "... asked once, inside the write"
	    " transaction");
	ok(probe.seen != NULL && strcmp(probe.seen, "cred-1") == 0,
	    "... given the credential");
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id ="
	    " 'chk-1'", NULL), 0, "... no policy");
	is_int(history_rows(st, "chk-1"), 0, "... no history row");
	is_int(outbox_rows(st), out, "... no audit event");
	is_int(query_int(st, "SELECT desired_generation FROM applier_state", NULL),
	    gen, "... no generation bump");

	probe.answer = 1;	/* with_txn's "nothing to write" */
	is_int(store_policy_put(st, p, &checked, &created, &errs), EGW_E_INTERNAL,
	    "a check answering 1 is not taken for success");
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id ="
	    " 'chk-1'", NULL), 0, "... no policy");

	probe.answer = 0;
	is_int(store_policy_put(st, p, &checked, &created, &errs), 0,
	    "actor check passes: written");
	ok(created, "... created");
	who = query_text(st, "SELECT actor FROM policy_history WHERE scenario_id"
	    " = '%s' AND operation = 'create'", "chk-1");
	is_str(who ? who : "", "api:checked", "... history records the actor the"
	    " check named, not the one given");
	free(who);
	who = query_text(st, "SELECT json_extract(payload, '$.actor') FROM outbox"
	    " ORDER BY id DESC LIMIT 1", NULL);
	is_str(who ? who : "", "api:checked", "... so does the audit event");
	free(who);

	hist = history_rows(st, "chk-1");
	out = outbox_rows(st);
	probe.answer = EGW_E_FORBIDDEN;
	is_int(store_policy_set_enabled(st, "chk-1", false, &checked, got),
	    EGW_E_FORBIDDEN, "actor check refuses a disable: its error");
	is_int(query_int(st, "SELECT enabled FROM policies WHERE scenario_id ="
	    " 'chk-1'", NULL), 1, "... still enabled");
	is_int(store_policy_delete(st, "chk-1", &checked, NULL), EGW_E_FORBIDDEN,
	    "actor check refuses a delete: its error");
	is_int(query_int(st, "SELECT count(*) FROM policies WHERE scenario_id ="
	    " 'chk-1'", NULL), 1, "... still stored");
	is_int(history_rows(st, "chk-1"), hist, "... no history rows");
	is_int(outbox_rows(st), out, "... no audit events");

	/* In a batch (the writer's), a refused change between two made ones
	 * leaves both, and the batch. */
	{
		struct policy *q0 = policy_new(), *qr = policy_new(), *q2 = policy_new();
		bool queued = false;

		ok(parse("{\"scenario_id\":\"chk-0\",\"profile\":\"none\"}", q0) == 0 &&
		    parse("{\"scenario_id\":\"chk-r\",\"profile\":\"none\"}", qr) == 0 &&
		    parse("{\"scenario_id\":\"chk-2\",\"profile\":\"none\"}", q2) == 0,
		    "batch: three new policies parse");
		hist = query_int(st, "SELECT count(*) FROM policy_history", NULL);
		out = outbox_rows(st);
		is_int(store_policy_batch_begin(st, &queued), 0, "batch: begins");
		probe.answer = 0;
		is_int(store_policy_put(st, q0, &checked, &created, &errs), 0,
		    "batch: a first change is made");
		probe.answer = EGW_E_UNAUTHORIZED;
		is_int(store_policy_put(st, qr, &checked, &created, &errs),
		    EGW_E_UNAUTHORIZED, "batch: a refused change");
		ok(store_batch_alive(st), "batch: ... leaves the batch alive");
		probe.answer = 0;
		is_int(store_policy_put(st, q2, &checked, &created, &errs), 0,
		    "batch: the next change is made");
		is_int(store_policy_batch_end(st, queued, true), 0, "batch: commits");
		is_int(query_int(st, "SELECT count(*) FROM policies WHERE"
		    " scenario_id IN ('chk-0', 'chk-2')", NULL), 2,
		    "batch: both made changes are stored");
		is_int(query_int(st, "SELECT count(*) FROM policies WHERE"
		    " scenario_id = 'chk-r'", NULL), 0,
		    "batch: the refused one is not");
		is_int(query_int(st, "SELECT count(*) FROM policy_history", NULL),
		    hist + 2, "batch: two history rows");
		is_int(outbox_rows(st), out + 2, "batch: two audit events");
		policy_free(q0);
		policy_free(qr);
		policy_free(q2);
	}
	probe.answer = 0;
	is_int(store_policy_delete(st, "chk-1", &checked, NULL), 0,
	    "actor check passes: deleted");
	who = query_text(st, "SELECT actor FROM policy_history WHERE scenario_id"
	    " = '%s' AND operation = 'delete'", "chk-1");
	is_str(who ? who : "", "api:checked", "... recorded as the check named");
	free(who);
	policy_free(p);
	policy_free(got);
}

/*
 * Statements of @st's connection that build a temporary B-tree (EXPLAIN
 * shows OpenEphemeral), each named; @writes_only: INSERT and UPDATE only.
 * *checked counts the statements looked at.
 */
static size_t
temporary_btrees(struct store *st, bool writes_only, size_t *checked)
{
	sqlite3 *db = store_db(st);
	char *sql[256];
	size_t n = 0, bad = 0;

	*checked = 0;
	for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s != NULL &&
	    n < sizeof(sql) / sizeof(*sql); s = sqlite3_next_stmt(db, s))
		sql[n++] = strdup(sqlite3_sql(s));
	for (size_t i = 0; i < n; i++) {
		char explain[2048];
		sqlite3_stmt *e;

		if (sql[i] == NULL || (writes_only &&
		    strncmp(sql[i], "INSERT", 6) != 0 &&
		    strncmp(sql[i], "UPDATE", 6) != 0))
			continue;
		(*checked)++;
		snprintf(explain, sizeof(explain), "EXPLAIN %s", sql[i]);
		if (sqlite3_prepare_v2(db, explain, -1, &e, NULL) != SQLITE_OK) {
			tap_diag("cannot explain %s", sql[i]);
			bad++;
			continue;
		}
		while (sqlite3_step(e) == SQLITE_ROW) {
			const char *op = (const char *)sqlite3_column_text(e, 1);

			if (op != NULL && strcmp(op, "OpenEphemeral") == 0) {
				tap_diag("temporary B-tree in %s", sql[i]);
				bad++;
				break;
			}
		}
		sqlite3_finalize(e);
	}
	for (size_t i = 0; i < n; i++)
		free(sql[i]);
	return bad;
}

/*
 * Every INSERT and UPDATE this connection has run so far (the statement
 * cache holds each one the tests above made it prepare: creates, updates,
 * deletes, enables, completions, claims) runs without a temporary B-tree:
 * SQLite builds one per row for a CHECK that lists three or more values
 * and for RETURNING (sql/009).
 */
static void
test_writes_build_no_temporary_tables(struct store *st)
{
	size_t writes, bad = temporary_btrees(st, true, &writes);

	ok(writes >= 10, "the tests ran %zu distinct INSERT and UPDATE statements",
	    writes);
	is_int(bad, 0, "none of them builds a temporary B-tree");
}

/* Rows of one child table of policy @sid: their count, and whether they
 * sit at positions 0..count-1. */
static int64_t
child_rows(struct store *st, const char *table, const char *sid, bool *dense)
{
	char sql[512];
	int64_t n, in_place;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE policy_id ="
	    " (SELECT id FROM policies WHERE scenario_id = '%s')", table, sid);
	n = testdb_int(st, sql);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE policy_id ="
	    " (SELECT id FROM policies WHERE scenario_id = '%s')"
	    " AND position >= 0 AND position < (SELECT count(*) FROM %s"
	    " WHERE policy_id = (SELECT id FROM policies WHERE scenario_id = '%s'))",
	    table, sid, table, sid);
	in_place = testdb_int(st, sql);
	*dense = n == in_place;
	return n;
}

/* @sid has @s sources and interfaces, @d resolvers and @t destination
 * rows, each table's at positions 0..n-1, and its rows say what its
 * document says. */
static void
children_are(struct store *st, const char *sid, int64_t s, int64_t d, int64_t t,
    const char *what)
{
	bool dense_s, dense_d, dense_t;
	int64_t ns = child_rows(st, "policy_sources", sid, &dense_s);
	int64_t nd = child_rows(st, "policy_dns_servers", sid, &dense_d);
	int64_t nt = child_rows(st, "policy_destinations", sid, &dense_t);

	ok(ns == s && nd == d && nt == t, "children: %s: %lld sources, %lld"
	    " resolvers, %lld destinations (want %lld, %lld, %lld)", what,
	    (long long)ns, (long long)nd, (long long)nt, (long long)s,
	    (long long)d, (long long)t);
	ok(dense_s && dense_d && dense_t, "children: %s: at positions 0..n-1",
	    what);
	ok(doc_matches_rows(st, sid), "children: %s: rows match the document",
	    what);
}

static void
put_ok(struct store *st, const char *body, const char *what)
{
	struct policy *p = policy_new();
	struct policy_errors errs;
	bool created = false;

	policy_errors_init(&errs);
	ok(p != NULL && parse(body, p) == 0 &&
	    store_policy_put(st, p, &actor, &created, &errs) == 0,
	    "children: %s: put", what);
	for (size_t i = 0; i < errs.count; i++)
		tap_diag("put: %s: %s", errs.items[i].path, errs.items[i].reason);
	policy_free(p);
}

/*
 * A put rewrites the child rows in place (INSERT OR REPLACE at 0..n-1)
 * and deletes the rest one by one, or all at once past
 * CHILD_STRAYS_MAX: lists that grow, shrink, and rows a hand edit left at
 * other positions.  None of the statements a put runs then builds a
 * temporary B-tree (as "DELETE ... WHERE policy_id = ?" did).
 */
static void
test_children_rewritten_in_place(struct store *st)
{
	static const char big[] = "{\"scenario_id\":\"trim-1\",\"profile\":\"custom\","
	    "\"sources\":[\"100.64.207.0/24\",\"100.64.208.0/24\"],"
	    "\"interfaces\":[\"veth-trim1\"],"
	    "\"dns_servers\":[\"100.64.207.1\",\"100.64.208.1\"],"
	    "\"allowed_hosts\":[\"203.0.113.1\",\"203.0.113.2\",\"198.51.100.0/24\"],"
	    "\"allowed_ports\":[443,\"8000-8100\"],"
	    "\"custom_rules\":[{\"proto\":\"udp\",\"dest\":\"192.0.2.0/24\","
	    "\"ports\":[53,123]}]}";
	static const char small[] = "{\"scenario_id\":\"trim-1\",\"profile\":\"custom\","
	    "\"sources\":[\"100.64.209.0/24\"],\"dns_servers\":[\"100.64.209.1\"],"
	    "\"allowed_hosts\":[\"203.0.113.9\"]}";
	static const char stray[] = "INSERT INTO policy_destinations (policy_id,"
	    " position, origin, proto, dest) SELECT id, %d, 'host', 'any',"
	    " '192.0.2.%d' FROM policies WHERE scenario_id = 'trim-1'";
	struct store *own = NULL;
	size_t checked, bad;
	char sql[256];
	int strays = 0;

	if (store_open(dbpath, &own) != 0) {
		ok(false, "children: a connection of their own");
		return;
	}
	put_ok(own, big, "create");
	children_are(own, "trim-1", 3, 2, 7, "created");
	put_ok(own, small, "shrink");
	children_are(own, "trim-1", 1, 1, 1, "shrunk");
	put_ok(own, big, "grow");
	children_are(own, "trim-1", 3, 2, 7, "grown");
	for (int pos = -2; pos < 40; pos += 3) {
		if (pos >= 0 && pos < 7)
			continue;
		snprintf(sql, sizeof(sql), stray, pos, strays++);
		if (sqlite3_exec(store_db(own), sql, NULL, NULL, NULL) != SQLITE_OK)
			tap_diag("stray: %s", sqlite3_errmsg(store_db(own)));
	}
	is_int(child_rows(own, "policy_destinations", "trim-1", &(bool){ 0 }),
	    7 + strays, "children: %d rows edited in by hand at other positions",
	    strays);
	put_ok(own, small, "shrink over stray rows");
	children_are(own, "trim-1", 1, 1, 1, "the stray rows deleted one by one");
	bad = temporary_btrees(own, false, &checked);
	ok(checked >= 10, "children: the puts ran %zu distinct statements",
	    checked);
	is_int(bad, 0, "children: none of them builds a temporary B-tree");
	store_close(own);

	/* Positions edited in as a fraction and as text: INTEGER affinity
	 * keeps both as they are, inside and outside 0..n-1. */
	{
		static const char odd[] = "INSERT INTO policy_destinations"
		    " (policy_id, position, origin, proto, dest) SELECT id, %s,"
		    " 'host', 'any', '192.0.2.%d' FROM policies WHERE scenario_id"
		    " = 'trim-1'";
		static const char *const at[] = { "0.5", "'x'" };

		for (size_t i = 0; i < sizeof(at) / sizeof(*at); i++) {
			snprintf(sql, sizeof(sql), odd, at[i], 200 + (int)i);
			if (sqlite3_exec(store_db(st), sql, NULL, NULL, NULL) != SQLITE_OK)
				tap_diag("odd: %s", sqlite3_errmsg(store_db(st)));
		}
		is_int(testdb_int(st, "SELECT count(*) FROM policy_destinations"
		    " WHERE typeof(position) <> 'integer'"), 2,
		    "children: a fraction and a text position edited in");
		put_ok(st, big, "grow over positions 0.5 and 'x'");
		children_are(st, "trim-1", 3, 2, 7, "odd positions deleted");
	}

	/* More strays than one put deletes one by one. */
	for (int pos = 100; pos < 200; pos++) {
		snprintf(sql, sizeof(sql), stray, pos, pos - 100);
		if (sqlite3_exec(store_db(st), sql, NULL, NULL, NULL) != SQLITE_OK)
			tap_diag("stray: %s", sqlite3_errmsg(store_db(st)));
	}
	is_int(child_rows(st, "policy_destinations", "trim-1", &(bool){ 0 }), 107,
	    "children: 100 stray rows edited in by hand");
	put_ok(st, small, "shrink over 100 stray rows");
	children_are(st, "trim-1", 1, 1, 1, "100 stray rows deleted at once");
}

int
main(void)
{
	struct store *st = NULL;
	char cmd[160];

	log_init("test", LOG_LEVEL_ERROR);
	if (mkdtemp(dir) == NULL)
		return 99;
	snprintf(dbpath, sizeof(dbpath), "%s/egw.db", dir);
	is_int(store_open(dbpath, &st), 0, "open a fresh database");
	test_crud(st);
	test_list_and_profiles(st);
	test_documents(st);
	test_hand_edited_rule_index(st);
	test_completed_claims(st);
	test_derived_claims(st);
	test_unparsable_rows(st);
	test_deadline(st);
	test_actor_check(st);
	test_writes_build_no_temporary_tables(st);
	test_children_rewritten_in_place(st);
	test_concurrency(&st);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return tap_done();
}
