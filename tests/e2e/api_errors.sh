#!/bin/bash
# SPDX-License-Identifier: MIT
# Every error path of the API through a real nginx: each gets its status,
# the JSON error shape {"error":{"code","message","field","details"},
# "request_id"} and leaves the database exactly as it was.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_errors
need_cmd sqlite3

export EGW_AUTH=off EGW_MAX_BODY=4096
start_api 2
start_nginx
DB=$EGW_STATE_DIR/egw.db
sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$@"; }
snapshot() {
	sql "SELECT (SELECT desired_generation FROM applier_state) || ':' ||
		(SELECT count(*) FROM policies) || ':' || (SELECT group_concat(revision) FROM policies) || ':' ||
		(SELECT count(*) FROM policy_history) || ':' || (SELECT count(*) FROM outbox)"
}

api POST /v1/policies '{"scenario_id":"base","profile":"custom","allowed_hosts":["192.0.2.1"]}'
ok "baseline policy created" status_is 201
before=$(snapshot)
unchanged() { [ "$(snapshot)" = "$before" ] || { diag "database changed: $before -> $(snapshot)"; return 1; }; }

# check_error DESC STATUS CODE METHOD PATH BODY [curl args]
check_error() {
	desc=$1 want=$2 code=$3
	shift 3
	api "$@"
	ok "$desc: $want $code" error_is "$want" "$code"
	ok "$desc: error shape" jqe '(.error | has("code") and has("message") and has("field") and (.details | type == "array")) and (.error.message | length > 0)'
	ok "$desc: nothing changed" unchanged
}

check_error "malformed JSON" 400 bad_request POST /v1/policies '{"scenario_id":'
check_error "trailing garbage" 400 bad_request POST /v1/policies '{"scenario_id":"x"} x'
check_error "JSON array instead of object" 400 bad_request POST /v1/policies '[1,2]'
check_error "JSON string instead of object" 400 bad_request POST /v1/policies '"x"'
deep=$(printf '{"a":%.0s' $(seq 20))1$(printf '}%.0s' $(seq 20))
check_error "nesting deeper than 16" 400 bad_request POST /v1/policies "$deep"
printf '{"scenario_id":"nul\000x"}' > "$T/nul.json"
check_error "NUL byte in the body" 400 bad_request POST /v1/policies "" \
	-H 'Content-Type: application/json' --data-binary "@$T/nul.json"
check_error "text/plain body" 415 unsupported_media_type POST /v1/policies "" \
	-H 'Content-Type: text/plain' --data-binary '{"scenario_id":"x"}'
check_error "form-encoded body" 415 unsupported_media_type POST /v1/policies "" \
	--data 'scenario_id=x'
check_error "JSON declared in another charset" 415 unsupported_media_type POST /v1/policies "" \
	-H 'Content-Type: application/json; charset=iso-8859-1' --data-binary '{"scenario_id":"x"}'
check_error "POST without a body or Content-Length" 411 length_required POST /v1/policies
check_error "empty body" 400 bad_request POST /v1/policies "" \
	-H 'Content-Type: application/json' -H 'Content-Length: 0'
ok "empty body: the error is about the body as a whole (field \"\")" jqe '.error.field == ""'
check_error "empty body sent as text/plain" 415 unsupported_media_type POST /v1/policies "" \
	-H 'Content-Type: text/plain' -H 'Content-Length: 0'
check_error "a number instead of an object" 400 bad_request POST /v1/policies '5'
ok "a number instead of an object: said so" jqe '.error.details[0].reason | test("must be a JSON object, not an integer")'
big=$(jq -cn --arg pad "$(head -c 5000 /dev/zero | tr '\0' a)" '{scenario_id:"big",network_id:$pad}')
check_error "body over EGW_MAX_BODY (worker's limit)" 413 payload_too_large POST /v1/policies "$big"
head -c 100000 /dev/zero | tr '\0' ' ' > "$T/huge.json"
check_error "body far over the limit (nginx's limit)" 413 payload_too_large POST /v1/policies "" \
	-H 'Content-Type: application/json' --data-binary "@$T/huge.json"
check_error "unknown field" 422 invalid_policy POST /v1/policies '{"scenario_id":"x","alowed_hosts":["192.0.2.1"]}'
ok "unknown field is named" jq_is .error.field /alowed_hosts
check_error "custom_rules entry as raw nft text" 422 invalid_policy POST /v1/policies \
	'{"scenario_id":"x","profile":"custom","custom_rules":["ip daddr 1.2.3.4 accept"]}'
ok "the error shows the structured form" jqe '[.error.details[].reason] | any(test("proto"))'
check_error "hostname in allowed_hosts" 422 invalid_policy POST /v1/policies \
	'{"scenario_id":"x","profile":"custom","allowed_hosts":["example.com"]}'
ok "hostname error is clear" jqe '.error.details[0].path == "/allowed_hosts/0" and (.error.details[0].reason | test("hostname"))'
check_error "hostname with a port in allowed_hosts" 422 invalid_policy POST /v1/policies \
	'{"scenario_id":"x","profile":"custom","allowed_hosts":["pypi.org:443"]}'
ok "hostname:port error names hostname and port" jqe '(.error.details[0].reason | test("hostname")) and (.error.details[0].reason | test("allowed_ports"))'
check_error "hex-only hostname with a port in a rule" 422 invalid_policy POST /v1/policies \
	'{"scenario_id":"x","profile":"custom","custom_rules":[{"proto":"tcp","dest":"cafe.de:443"}]}'
ok "hex-only hostname:port is named a hostname" jqe '.error.details[0].reason | test("hostname")'
check_error "mistyped IPv6 address" 422 invalid_policy POST /v1/policies \
	'{"scenario_id":"x","profile":"custom","allowed_hosts":["2001:db8::g1"]}'
ok "a mistyped IPv6 address is not called a hostname" jqe '.error.details[0].reason | test("IPv6")'
check_error "port 0" 422 invalid_policy POST /v1/policies '{"scenario_id":"x","profile":"custom","allowed_ports":[0]}'
check_error "port 65536" 422 invalid_policy POST /v1/policies '{"scenario_id":"x","profile":"custom","allowed_ports":[65536]}'
check_error "reversed port range" 422 invalid_policy POST /v1/policies '{"scenario_id":"x","profile":"custom","allowed_ports":["9000-8000"]}'
check_error "port as float" 422 invalid_policy POST /v1/policies '{"scenario_id":"x","profile":"custom","allowed_ports":[443.0]}'
check_error "prefix with host bits" 422 invalid_policy POST /v1/policies '{"scenario_id":"x","profile":"custom","allowed_hosts":["192.0.2.1/24"]}'
check_error "unknown profile" 422 invalid_policy POST /v1/policies '{"scenario_id":"x","profile":"nosuch"}'
ok "unknown profile is named" jqe '.error.details | any(.path == "/profile")'
check_error "hosts for a profile that ignores them" 422 invalid_policy POST /v1/policies \
	'{"scenario_id":"x","profile":"external-api","allowed_hosts":["203.0.113.5"]}'
ok "the ignored hosts are named" jqe '.error.details | length == 1 and .[0].path == "/allowed_hosts" and (.[0].reason | test("external-api"))'
check_error "ports and a rule with the default profile (none)" 422 invalid_policy POST /v1/policies \
	'{"scenario_id":"x","allowed_ports":[443],"custom_rules":[{"proto":"tcp","ports":[22]}]}'
ok "both ignored lists are named" jqe '[.error.details[].path] == ["/allowed_ports", "/custom_rules"]'
check_error "scenario_id with a slash" 422 invalid_policy POST /v1/policies '{"scenario_id":"a/b"}'
check_error "scenario_id too long" 422 invalid_policy POST /v1/policies "{\"scenario_id\":\"$(printf 'a%.0s' $(seq 65))\"}"
check_error "missing scenario_id" 422 invalid_policy POST /v1/policies '{"profile":"none"}'
check_error "enabled as a string" 422 invalid_policy POST /v1/policies '{"scenario_id":"x","enabled":"yes"}'
check_error "bad mode" 422 invalid_policy POST /v1/policies '{"scenario_id":"x","mode":"permissive"}'
check_error "icmp rule with ports" 422 invalid_policy POST /v1/policies \
	'{"scenario_id":"x","profile":"custom","custom_rules":[{"proto":"icmp","ports":[1]}]}'
check_error "interface name with a space" 422 invalid_policy POST /v1/policies '{"scenario_id":"x","interfaces":["eth 0"]}'
check_error "several problems at once" 422 invalid_policy POST /v1/policies \
	'{"scenario_id":"x","profile":"custom","allowed_ports":[0],"allowed_hosts":["nope"],"bogus":1}'
ok "every problem is listed" jqe '.error.details | length >= 3'
check_error "stale revision" 409 conflict POST /v1/policies '{"scenario_id":"base","revision":7}'
ok "stale revision: field points at /revision" jq_is .error.field /revision
check_error "revision 0 (create only) on a stored policy" 409 conflict POST /v1/policies '{"scenario_id":"base","revision":0}'
ok "revision 0: field points at /revision" jq_is .error.field /revision
check_error "revision 1 for a policy not stored" 409 conflict POST /v1/policies '{"scenario_id":"fresh","revision":1}'
ok "revision 1, none stored: field and details name /revision" \
	jqe '.error.field == "/revision" and .error.details[0].path == "/revision"'
check_error "unknown path" 404 not_found GET /v1/nothing
check_error "unknown policy" 404 not_found GET /v1/policies/nosuch
check_error "delete unknown policy" 404 not_found DELETE /v1/policies/nosuch
check_error "PUT is not served" 405 method_not_allowed PUT /v1/policies/base '{}'
ok "405 lists the allowed methods" header_is Allow "GET, DELETE"
check_error "PATCH on the collection" 405 method_not_allowed PATCH /v1/policies '{}'
check_error "bad percent-encoding in the path (nginx)" 400 bad_request GET '/v1/policies/%ZZ'
check_error "encoded NUL in the path" 400 bad_request GET '/v1/policies/a%00b'
check_error "bad percent-encoding in the query" 400 bad_request GET '/v1/policies?cursor=%G1'
# Over the worker's 4 KiB URI limit but inside nginx's 8 KiB buffer: the
# same 414 uri_too_long that nginx answers beyond it.
check_error "a 5 KiB URI (worker's limit)" 414 uri_too_long GET "/v1/policies?cursor=$(head -c 5000 /dev/zero | tr '\0' a)"
check_error "a 9 KiB URI (nginx's limit)" 414 uri_too_long GET "/v1/policies?cursor=$(head -c 9000 /dev/zero | tr '\0' a)"
check_error "unknown query parameter" 400 bad_request POST '/v1/policies?force=1' '{"scenario_id":"x"}'
check_error "repeated query parameter" 400 bad_request GET '/v1/policies?limit=1&limit=2'
ok "repeated query parameter: named in field" jq_is .error.field limit
# Text that is not UTF-8 (json-c's own check lets these through), and a
# key that json-c would read as "enabled": refused, nothing changed.
check_error "an overlong UTF-8 form in a string" 400 bad_request POST /v1/policies \
	"$(printf '{"scenario_id":"u8-1","status":"\xc0\xaf"}')"
ok "the error says where" jqe '.error.details[0].reason | test("not valid UTF-8 at byte 32")'
check_error "a UTF-16 surrogate in a key" 400 bad_request POST /v1/policies \
	"$(printf '{"scenario_id":"u8-2","\xed\xa0\x80":1}')"
check_error "a key with \\u0000 (json-c reads \"enabled\")" 400 bad_request POST /v1/policies \
	'{"scenario_id":"u8-3","enabled\u0000junk":false}'
ok "the error names the NUL" jqe '.error.details[0].reason | test("u0000")'
check_error "bad scenario_id in the path" 400 bad_request POST '/v1/policies/-x/enable'
# With no sources and no interfaces the policy is enforced on the
# interface derived from network_id (EGW_IFACE_TEMPLATE, br-{network_id:12}):
# "br-net:abc" is no interface name, so the policy could never apply.
check_error "a network_id that derives no interface name" 422 invalid_policy POST /v1/policies \
	'{"scenario_id":"ni-1","network_id":"net:abc"}'
ok "the error names network_id" jq_is .error.field /network_id
api POST /v1/policies '{"scenario_id":"ni-2","network_id":"net:abc","sources":["100.64.9.0/24"]}'
ok "the same network_id with sources of its own: 201" status_is 201
before=$(snapshot)	# the baseline for the checks below
check_error "enable with a non-JSON body" 415 unsupported_media_type POST /v1/policies/base/enable "" \
	-H 'Content-Type: text/plain' --data-binary 'on'
# enable, disable and DELETE take no fields: a body is optional, but one
# that is sent must be an empty JSON object.
check_error "disable with malformed JSON" 400 bad_request POST /v1/policies/base/disable '{'
check_error "disable with a JSON array" 400 bad_request POST /v1/policies/base/disable '[]'
check_error "disable nested deeper than 16" 400 bad_request POST /v1/policies/base/disable "$deep"
printf '{"x":"a\000b"}' > "$T/nul2.json"
check_error "disable with a NUL byte" 400 bad_request POST /v1/policies/base/disable "" \
	-H 'Content-Type: application/json' --data-binary "@$T/nul2.json"
check_error "enable with a field" 422 invalid_policy POST /v1/policies/base/enable '{"enabled":false}'
ok "the field is named" jq_is .error.field /enabled
check_error "delete with a field" 422 invalid_policy DELETE /v1/policies/base '{"scenario_id":"base"}'
ok "no error body mentions 'database is locked'" bash -c "! grep -q 'database is locked' '$T/body'"
api POST /v1/policies '{"scenario_id":"seedlike","profile":"training-updates","custom_rules":[],"allowed_hosts":[],"allowed_ports":[]}'
ok "empty lists with a profile that ignores them are fine" status_is 201
api POST /v1/policies '{"scenario_id":"fresh","revision":0}'
ok "revision 0 creates a policy not stored yet" status_is 201
api POST /v1/policies/base/disable '{}'
ok "disable with {} is served" status_is 200
ok "and disables" jq_is .enabled false
api POST /v1/policies/base/enable '' -H 'Content-Type: application/json' -H 'Content-Length: 0'
ok "enable with an empty body is served" status_is 200
ok "and enables" jq_is .enabled true
e2e_done
