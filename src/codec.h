/* SPDX-License-Identifier: MIT */
/*
 * This file contains the JSON codec: json-c text to struct policy and back,
 * and the JSON error body every client sees.
 *
 * Input is untrusted.  The parser is strict: the body must be one JSON
 * object by RFC 8259 (strict UTF-8, no NUL byte, at most CODEC_MAX_DEPTH
 * nested objects and arrays, numbers within a double's range), every field
 * has one JSON type (integers must be JSON integers: 443, never 443.0 nor
 * "443" except in the port list string form "443" / "8000-8100"), unknown
 * fields are refused, and every problem is collected with its JSON pointer path
 * before the call fails.  Values are parsed into typed netaddr values, so no
 * client text ever reaches the renderer.  The output side writes the same
 * canonical form back (prefixes in canonical text, a single port as an
 * integer, a range as "lo-hi"), so JSON -> policy -> JSON -> policy is the
 * identity.  Pure code: no I/O.
 *
 * Policy body fields (input):
 *   scenario_id   string, required, 1..64 of [A-Za-z0-9_.:-]
 *   network_id    string, 0..128 of the same set ("" or null: none)
 *   profile       string, a profile name (default "none"); existence is
 *                 checked by the store
 *   custom_rules  [{"proto":"tcp|udp|icmp|any","dest":"addr or prefix",
 *                   "ports":[443,"8000-8100"]}]; dest absent/null = any;
 *                 ports absent/[] = any (and required absent for icmp/any)
 *   allowed_hosts [addresses or prefixes]
 *   allowed_ports [integers or "lo-hi"/"443" strings]
 *   enabled       boolean (default true)
 *   sources       [prefixes]: the scenario's source addresses
 *   interfaces    [interface names]: the scenario's ingress interfaces
 *   dns_servers   [addresses]: resolvers (absent/null: configured default)
 *   mode          "enforce" (default) | "audit"
 *   revision      integer >= 0: must equal the stored revision, 0 meaning
 *                 that none may be stored yet (absent: no check)
 * Meaning of allowed_hosts/allowed_ports (profiles with policy entries, e.g.
 * "custom"): hosts only -> any port to those hosts; ports only -> those
 * ports anywhere (tcp and udp); both -> only those ports on those hosts;
 * custom_rules -> each entry exactly as given.
 * Response-only fields are accepted and ignored so a GET body can be PUT
 * back: id, mark, generation, applied_generation, created_at, updated_at,
 * completed_at, status, apply_status, apply_error.
 */
#ifndef EGW_CODEC_H
#define EGW_CODEC_H

#include "policy.h"

#include <stddef.h>

struct json_object;
struct printbuf;

#define CODEC_MAX_DEPTH 16

/**
 * codec_parse_body() - strictly parse a request/event body into a JSON object
 * @body: the bytes (need not be NUL-terminated)
 * @len: their length
 * @out: the parsed object, owned by the caller (json_object_put)
 * @errs: on failure gets exactly one entry (path "" and the reason); may be
 *        NULL
 *
 * Refuses an empty body, a NUL byte, bytes that are not UTF-8 (utf8.h), a
 * key holding \\u0000, malformed JSON (by RFC 8259, which json-c alone is
 * not strict enough for: a raw control character in a string, a number
 * such as 5., 1.e3, -.5 or 01, NaN and Infinity), a number beyond a
 * double's range (1e400), a key repeated in one object, trailing bytes
 * after the value, more than CODEC_MAX_DEPTH nested objects and arrays
 * (whatever the innermost one holds) and any top-level value other than
 * an object.
 *
 * Returns: 0, EGW_E_BADREQUEST or EGW_E_NOMEM.
 */
int codec_parse_body(const char *body, size_t len, struct json_object **out,
    struct policy_errors *errs);

/**
 * codec_check_no_fields() - hold a request's optional body to "no fields"
 * @body: the bytes (not empty)
 * @len: their length
 * @errs: problems (reset first); required
 *
 * The body must pass codec_parse_body() and be an object without members.
 *
 * Returns: 0; EGW_E_BADREQUEST as codec_parse_body(); EGW_E_INVALID with
 * every member named in @errs; EGW_E_NOMEM.
 */
int codec_check_no_fields(const char *body, size_t len,
    struct policy_errors *errs);

/**
 * codec_policy_from_json() - parse and validate a policy body
 * @body: the bytes
 * @len: their length
 * @out: filled from the body (reset with policy_init first); on failure its
 *       contents are unspecified
 * @errs: problems (reset first); required
 *
 * codec_parse_body() then codec_policy_from_object(obj, NULL, ...).
 *
 * Returns: 0; EGW_E_BADREQUEST (errs has one entry) when the body is not a
 * well-formed JSON object; EGW_E_INVALID (errs has every problem with its
 * JSON path) for unknown fields, wrong types or bad values; EGW_E_NOMEM.
 */
int codec_policy_from_json(const char *body, size_t len, struct policy *out,
    struct policy_errors *errs);

/**
 * codec_policy_from_object() - typed policy from a parsed JSON object
 * @obj: a JSON object (borrowed)
 * @extra_keys: NULL or a NULL-terminated list of further top-level names to
 *              accept and ignore (e.g. "track" in NATS events)
 * @out: filled (reset with policy_init first)
 * @errs: problems (reset first); required
 *
 * Runs policy_validate() after typing, so the result is ready for the store.
 * An absent "profile" yields "none"; callers that map a default (the NATS
 * bridge's track) check the object for the key themselves.
 *
 * Returns: 0, EGW_E_BADREQUEST when @obj is not an object, or EGW_E_INVALID
 * with every problem in @errs.
 */
int codec_policy_from_object(struct json_object *obj,
    const char *const *extra_keys, struct policy *out,
    struct policy_errors *errs);

/**
 * codec_policy_to_json() - the API representation of a stored policy
 * @p: the policy
 *
 * The input fields in canonical form (dns_servers is null when not set),
 * plus "mark" (p->id, the packet mark in nft listings), "revision",
 * "generation", "created_at", "updated_at", "completed_at" (null unless
 * set) and "status": {"apply":"pending|applied|failed","error":null|text,
 * "applied_generation":N}.
 *
 * Every policy's text is also stored (codec_policy_document(), sql/002):
 * a change to what this prints needs a migration that sets api_json to
 * NULL, or reads keep answering the old form.
 *
 * Returns: a new object owned by the caller (json_object_put), or NULL when
 * out of memory.
 */
struct json_object *codec_policy_to_json(const struct policy *p);

/**
 * codec_policy_receipt_to_json() - what a change answers a client that may
 * not read policies
 * @p: the policy as committed
 *
 * "scenario_id", "revision", "generation", "updated_at" and "status" as
 * codec_policy_to_json() prints them, and none of the policy's contents:
 * a token with the write scope only must not read a policy by changing it
 * (an enable of an enabled policy changes nothing and records nothing).
 *
 * Returns: a new object owned by the caller, or NULL when out of memory.
 */
struct json_object *codec_policy_receipt_to_json(const struct policy *p);

/**
 * codec_policy_input_to_json() - only the input fields, canonical
 * @p: the policy
 *
 * What the store compares to decide whether a put changes anything, and
 * what a client would send to recreate the policy.  Metadata (revision,
 * times, status, mark) is left out.
 *
 * Returns: a new object owned by the caller, or NULL when out of memory.
 */
struct json_object *codec_policy_input_to_json(const struct policy *p);

/**
 * codec_policy_input_string() - codec_policy_input_to_json() as plain text
 *
 * Returns: malloc'd NUL-terminated text owned by the caller (free), or NULL
 * when out of memory.
 */
char *codec_policy_input_string(const struct policy *p);

/**
 * codec_policy_document() - the stored document of a policy
 * @p: the policy as committed (mark, revision, times set)
 * @input: codec_policy_input_string(p)
 *
 * codec_policy_to_json(p) without its "status" member, as text: the input
 * fields, then "mark", "revision", "generation", "created_at",
 * "updated_at" and "completed_at".  The store writes it with every change
 * to the policy (sql/002), and reads answer it with the status appended
 * (codec_policy_append_status()) instead of rebuilding it from the rows:
 * the status is the applier's and changes without the policy.
 *
 * Returns: malloc'd text owned by the caller (free), or NULL when out of
 * memory or @input is not a JSON object's text.
 */
char *codec_policy_document(const struct policy *p, const char *input);

/**
 * codec_policy_append_status() - a stored document completed for the API
 * @pb: where the text goes (json-c's growing buffer)
 * @doc: a codec_policy_document() text, @len bytes
 * @status, @error ("" or NULL: none), @applied_generation: the applier's
 *
 * Appends the document without its closing brace, then ,"status":{...}}:
 * byte for byte what codec_policy_to_json() prints for the same policy.
 *
 * Returns: 0, EGW_E_NOMEM, or EGW_E_DB when @doc is not an object's text.
 */
int codec_policy_append_status(struct printbuf *pb, const char *doc,
    size_t len, enum policy_apply_status status, const char *error,
    int64_t applied_generation);

/**
 * codec_document_has_input() - was @doc built from exactly @input?
 * @doc: a codec_policy_document() text, @len bytes
 * @input: codec_policy_input_string() of another policy
 *
 * A document is its input text without the closing brace, then
 * ,"mark":...: a put that would store the same input is found without
 * loading the stored policy and printing its input again.
 */
bool codec_document_has_input(const char *doc, size_t len, const char *input);

/**
 * codec_error_body() - the JSON error document clients receive
 * @err: an enum egw_err value (gives "code" via err_token)
 * @message: human text; NULL uses err_message(err)
 * @errs: NULL or the problems to list under "details"
 * @request_id: NULL or the request id (null in the output when NULL)
 *
 * Shape: {"error":{"code":...,"message":...,"field":<first path or null>,
 * "details":[{"path":...,"reason":...}]},"request_id":...}; when problems
 * were dropped for space, "details_dropped":N is added to "error".
 *
 * Returns: malloc'd text owned by the caller (free), or NULL when out of
 * memory.
 */
char *codec_error_body(int err, const char *message,
    const struct policy_errors *errs, const char *request_id);

/**
 * codec_port_range_to_json() - 443 as an integer, a range as "lo-hi"
 *
 * Returns: a new json-c value owned by the caller, or NULL.
 */
struct json_object *codec_port_range_to_json(const struct port_range *r);

/**
 * codec_prefix_to_json() - canonical prefix text ("192.0.2.1" for a host,
 * "10.0.0.0/8" otherwise)
 *
 * Returns: a new json-c string owned by the caller, or NULL.
 */
struct json_object *codec_prefix_to_json(const struct ip_prefix *p);

/**
 * codec_ms_to_json() - a duration in milliseconds, to the microsecond
 *
 * json-c prints a double with 17 significant digits (0.1 comes out as
 * 0.10000000000000001); this number prints as "0.100".
 *
 * Returns: a new json-c double owned by the caller, or NULL.
 */
struct json_object *codec_ms_to_json(double ms);

#endif
