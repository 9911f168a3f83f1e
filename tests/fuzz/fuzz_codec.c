/* SPDX-License-Identifier: MIT */
/*
 * This file contains the libFuzzer target of the policy JSON codec.
 *
 * Any byte string goes through codec_policy_from_json() (parse + validate).
 * Properties checked besides memory safety:
 *  - the result is 0, EGW_E_BADREQUEST (exactly one problem) or
 *    EGW_E_INVALID (at least one problem, every path a JSON pointer);
 *  - the JSON error body a client would get is a well-formed object with
 *    the right code, whatever bytes the problems quote;
 *  - an accepted policy passes policy_validate(), its ids and interface
 *    names are in their safe character sets, and JSON -> policy -> JSON ->
 *    policy is the identity (codec.h);
 *  - the NATS path (codec_policy_from_object with extra key "track") agrees
 *    with the API path on every body without a "track" key.
 */
#include "fuzz.h"

#include "codec.h"
#include "err.h"
#include "log.h"
#include "netaddr.h"
#include "policy.h"

#include <json-c/json.h>

static struct policy *p1, *p2;
static struct policy_errors *e1, *e2;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz", LOG_LEVEL_ERROR);
	p1 = policy_new();
	p2 = policy_new();
	e1 = calloc(1, sizeof(*e1));
	e2 = calloc(1, sizeof(*e2));
	FUZZ_CHECK(p1 && p2 && e1 && e2);
	return 0;
}

static void
check_error_body(int rc, const struct policy_errors *errs)
{
	char *body = codec_error_body(rc, NULL, errs, "fuzz-rid");
	struct json_object *o, *e, *code;

	FUZZ_CHECK(body != NULL);
	o = json_tokener_parse(body);
	FUZZ_CHECK(o != NULL && json_object_is_type(o, json_type_object));
	FUZZ_CHECK(json_object_object_get_ex(o, "error", &e));
	FUZZ_CHECK(json_object_object_get_ex(e, "code", &code));
	FUZZ_CHECK(strcmp(json_object_get_string(code), err_token(rc)) == 0);
	json_object_put(o);
	free(body);
}

static void
check_accepted(const struct policy *p)
{
	struct policy_errors *v = e2;
	char *text, *text2;
	int rc;

	policy_errors_init(v);
	FUZZ_CHECK(policy_validate(p, v) == 0);
	FUZZ_CHECK(policy_valid_id(p->scenario_id, POLICY_SCENARIO_ID_MAX, false));
	FUZZ_CHECK(policy_valid_id(p->network_id, POLICY_NETWORK_ID_MAX, true));
	FUZZ_CHECK(policy_valid_profile_name(p->profile));
	for (size_t i = 0; i < p->n_interfaces; i++)
		FUZZ_CHECK(netaddr_valid_ifname(p->interfaces[i]));
	FUZZ_CHECK(p->n_hosts <= POLICY_MAX_HOSTS && p->n_rules <= POLICY_MAX_RULES);

	/* Round trip: the canonical text parses back to the same policy. */
	text = codec_policy_input_string(p);
	FUZZ_CHECK(text != NULL);
	policy_init(p2);
	policy_errors_init(v);
	rc = codec_policy_from_json(text, strlen(text), p2, v);
	if (rc != 0)
		fprintf(stderr, "canonical text refused: %s (%s: %s)\n", text,
		    v->count ? v->items[0].path : "", v->count ? v->items[0].reason : "");
	FUZZ_CHECK(rc == 0);
	text2 = codec_policy_input_string(p2);
	FUZZ_CHECK(text2 != NULL);
	if (strcmp(text, text2) != 0)
		fprintf(stderr, "round trip differs:\n%s\n%s\n", text, text2);
	FUZZ_CHECK(strcmp(text, text2) == 0);
	free(text);
	free(text2);

	struct json_object *api = codec_policy_to_json(p);
	FUZZ_CHECK(api != NULL);
	json_object_put(api);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const extra[] = { "track", NULL };
	struct json_object *obj = NULL;
	int rc, rc2;

	if (size > 1 << 20)
		return 0;
	policy_init(p1);
	policy_errors_init(e1);
	rc = codec_policy_from_json((const char *)data, size, p1, e1);
	FUZZ_CHECK(rc == 0 || rc == EGW_E_BADREQUEST || rc == EGW_E_INVALID);
	if (rc == EGW_E_BADREQUEST)
		FUZZ_CHECK(e1->count == 1);
	if (rc == EGW_E_INVALID) {
		FUZZ_CHECK(e1->count >= 1);
		for (size_t i = 0; i < e1->count; i++)
			FUZZ_CHECK(e1->items[i].path[0] == '/' ||
			    e1->items[i].path[0] == '\0');
	}
	if (rc != 0) {
		check_error_body(rc, e1);
	} else {
		check_accepted(p1);
	}

	/* The NATS event path over the same object. */
	policy_errors_init(e2);
	if (codec_parse_body((const char *)data, size, &obj, e2) == 0) {
		bool has_track = json_object_object_get_ex(obj, "track", NULL);

		policy_init(p2);
		policy_errors_init(e2);
		rc2 = codec_policy_from_object(obj, extra, p2, e2);
		FUZZ_CHECK(rc2 == 0 || rc2 == EGW_E_INVALID);
		if (!has_track)
			FUZZ_CHECK((rc == 0) == (rc2 == 0));
		json_object_put(obj);
	} else {
		FUZZ_CHECK(rc == EGW_E_BADREQUEST);
	}
	return 0;
}
