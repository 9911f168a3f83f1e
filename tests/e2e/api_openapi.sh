#!/bin/bash
# SPDX-License-Identifier: MIT
# docs/openapi.yaml against the running API: every documented route is
# served (egw-api --routes) and answers through nginx, and every served
# route is documented; then the document is held to the server's answers.
# Each operation is sent the requests that provoke its error statuses
# cheaply (wrong method, unknown query parameter, long URI, body of the
# wrong type or size, no token, a token without the scope, unknown policy,
# and finally the pool stopped), and a check fails when the answer is not
# the status the request provokes, when the document does not list that
# status for the operation, or when an error body is not the Error shape
# with an error.code from the document's enum.  At the end every status
# the document lists must have been answered at least once, except 500 and
# 504, which no cheap request provokes.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_openapi
need_cmd python3 sqlite3

DOC=$EGW_TOP_SRCDIR/docs/openapi.yaml
# The document as lines the shell reads: "op METHOD PATH open|auth
# STATUS...", "unlisted STATUS..." (x-unlisted-paths), "enum CODE..." and
# "bad WHERE STATUS" for an error response without the Error schema.
# PyYAML rather than awk: response objects are nested and referenced, and
# an indentation-based reading would miss what a $ref brings in.
python3 - "$DOC" > "$T/doc.txt" 2> "$T/python.log" <<'PY' ||
import sys
import yaml

doc = yaml.safe_load(open(sys.argv[1]))
comps = doc["components"]


def resolve(o):
    while isinstance(o, dict) and "$ref" in o:
        _, _, kind, name = o["$ref"].split("/")
        o = comps[kind][name]
    return o


def is_error(schema):
    schema = schema or {}
    if schema.get("$ref") == "#/components/schemas/Error":
        return True
    return any(is_error(s) for s in schema.get("allOf", []))


def responses(where, rs):
    for status, r in rs.items():
        content = resolve(r).get("content") or {}
        if int(status) >= 400 and \
                not is_error(content.get("application/json", {}).get("schema")):
            print("bad", where, status)
    return sorted(str(s) for s in rs)


for path, item in doc["paths"].items():
    for method, op in item.items():
        if method == "parameters":
            continue
        kind = "open" if op.get("security", doc.get("security")) == [] else "auth"
        codes = responses(method.upper() + " " + path, op["responses"])
        print("op", method.upper(), path, kind, *codes)
print("unlisted", *responses("unlisted", doc["x-unlisted-paths"]["responses"]))
print("enum", *comps["schemas"]["Error"]["properties"]["error"]
      ["properties"]["code"]["enum"])
PY
	{ echo "Bail out! cannot read $DOC: $(tail -n 1 "$T/python.log")"; exit 99; }
awk '$1 == "op" { print $2, $3 }' "$T/doc.txt" | sort > "$T/documented"
awk '$1 == "enum" { for (i = 2; i <= NF; i++) print $i }' "$T/doc.txt" | sort > "$T/enum"
"$(egw_bin egw-api)" --routes > "$T/routes"
awk '{ print $1, $2 }' "$T/routes" | sort > "$T/served"
ok "the document lists operations" test "$(wc -l < "$T/documented")" -ge 10
ok "every served route is documented" bash -c "! comm -23 '$T/served' '$T/documented' | grep ."
ok "every documented route is served" bash -c "! comm -13 '$T/served' '$T/documented' | grep ."
ok "openapi version line" grep -q '^openapi: 3\.' "$DOC"
ok "every \$ref points at a defined component" bash -c "
	for r in \$(grep -o '#/components/[a-zA-Z]*/[A-Za-z]*' '$DOC' | sort -u); do
		kind=\$(echo \$r | cut -d/ -f3); name=\$(echo \$r | cut -d/ -f4)
		awk -v k=\"  \$kind:\" -v n=\"    \$name:\" '\$0 == k { s = 1; next } /^  [a-z]/ { s = 0 } s && index(\$0, n) == 1 { f = 1 } END { exit !f }' '$DOC' || { echo \"missing \$r\"; exit 1; }
	done"
ok "an operation is open in the document exactly when the server serves it without a token" \
	diff <(awk '$1 == "op" { print $2, $3, $4 }' "$T/doc.txt" | sort) \
	<(awk '{ print $1, $2, ($3 == "open" ? "open" : "auth") }' "$T/routes" | sort)
ok "every error response is documented with the Error schema" \
	bash -c "! grep '^bad ' '$T/doc.txt'"
# The codes the service can put in error.code: nginx's own error bodies,
# and the tokens of src/err.c's table except those no API request reaches
# ("ok" is no error; apply_failed is the applier's, bad_config the
# programs' start-up).
grep -o '"code":"[a-z_]*"' "$EGW_TOP_SRCDIR/nginx/egw-api.conf.in" |
	cut -d'"' -f4 | sort -u > "$T/nginx_codes"
grep -o '^[[:space:]]*\[[^]]*\] = { "[a-z_]*"' "$EGW_TOP_SRCDIR/src/err.c" | cut -d'"' -f2 |
	grep -vx -e ok -e apply_failed -e bad_config | sort -u > "$T/worker_codes"
ok "src/err.c and nginx/egw-api.conf.in yield codes" \
	test "$(wc -l < "$T/nginx_codes")" -ge 6 -a "$(wc -l < "$T/worker_codes")" -ge 12
ok "every error code nginx answers is in the Error.code enum" \
	bash -c "! comm -23 '$T/nginx_codes' '$T/enum' | grep ."
ok "every error code the worker answers is in the Error.code enum" \
	bash -c "! comm -23 '$T/worker_codes' '$T/enum' | grep ."
ok "every code in the Error.code enum is one the service answers" \
	bash -c "! sort -u '$T/nginx_codes' '$T/worker_codes' | comm -13 - '$T/enum' | grep ."

export EGW_AUTH=on EGW_MAX_BODY=1024
api_env
BOTH=$(mint_token oa-admin read,write)
READ=$(mint_token oa-reader read)
WRITE=$(mint_token oa-writer write)
start_api 2
start_nginx
TOKEN=$BOTH
api POST /v1/policies '{"scenario_id":"oa-1","profile":"none"}'
ok "fixture policy created" status_is 201

# The document's patterns against the server: a port string and a
# network_id are accepted exactly when the pattern matches ("lo <= hi",
# which no pattern can say, is left out of the samples: the description
# says it).  Python's re reads these patterns as ECMA-262 does.
python3 - "$DOC" > "$T/patterns" <<'PY'
import sys
import yaml

s = yaml.safe_load(open(sys.argv[1]))["components"]["schemas"]
print("port", s["Port"]["oneOf"][1]["pattern"])
print("network_id", s["PolicyInput"]["properties"]["network_id"]["pattern"])
PY
pattern_holds() {	# KIND VALUE BODY
	local want got
	want=$(python3 -c 'import re, sys
p = dict(l.split(" ", 1) for l in open(sys.argv[1]).read().splitlines())
print("accept" if re.fullmatch(p[sys.argv[2]], sys.argv[3]) else "refuse")' \
		"$T/patterns" "$1" "$2")
	api POST /v1/policies "$3"
	case $(cat "$T/status") in 200|201) got=accept ;; 422) got=refuse ;; *) got=other ;; esac
	[ "$got" = "$want" ] ||
		{ diag "$1 \"$2\": the pattern says $want, the server: $(head -c 300 "$T/body")"; return 1; }
}
for v in 1 443 9999 10000 65535 1-65535 8000-8100 443-443 0 00443 0443 99999 65536 70000 0-80 80-0443 80-65536 1-2-3 " 443" ""; do
	ok "Port pattern and server agree on \"$v\"" pattern_holds port "$v" \
		"{\"scenario_id\":\"oa-pat\",\"profile\":\"custom\",\"allowed_ports\":[\"$v\"]}"
done
long=$(head -c 128 /dev/zero | tr '\0' n)
for v in "" n1 7 "a:b.c-d_e" "$long" -n _n .n :n "n/1" "n 1" "${long}x"; do
	ok "network_id pattern and server agree on \"${v:0:20}\"" pattern_holds network_id "$v" \
		"{\"scenario_id\":\"oa-pat\",\"network_id\":\"$v\",\"interfaces\":[\"oa-pat0\"]}"
done
api DELETE /v1/policies/oa-pat
ok "the pattern probes' policy is deleted" status_is 200

# Bodies the worker refuses (over EGW_MAX_BODY) and nginx refuses (over
# EGW_MAX_BODY + 4 KiB), and a query that makes the request line longer
# than nginx's 8 KiB header buffer.
head -c 2000 /dev/zero | tr '\0' ' ' > "$T/over_worker.json"
head -c 6000 /dev/zero | tr '\0' ' ' > "$T/over_nginx.json"
long_query=egw_probe=$(head -c 9000 /dev/zero | tr '\0' a)

# The document's statuses per operation ("METHOD PATH STATUS", METHOD
# "unlisted" for a path no route has) and its error codes, looked up in
# the shell: the probes make a few hundred lookups, and a process for
# each made this test several times slower on a loaded machine.
declare -A DOC_STATUS ENUM
while read -r kind rest; do
	set -- $rest
	case $kind in
	op) om=$1 opath=$2; shift 3; for st; do DOC_STATUS["$om $opath $st"]=1; done ;;
	unlisted) for st; do DOC_STATUS["unlisted path $st"]=1; done ;;
	esac
done < "$T/doc.txt"
while read -r code; do ENUM[$code]=1; done < "$T/enum"

# held METHOD PATH WANT: the last answer was WANT, the document lists it
# for the operation, and an error answer is the Error shape with a code
# from the enum.  Every answer is recorded for the coverage check.
held() {
	local got code
	read -r got < "$T/status"
	echo "$1 $2 $got" >> "$T/seen"
	[ "$got" = "$3" ] ||
		{ diag "status $got, want $3: $(head -c 300 "$T/body")"; return 1; }
	[ -n "${DOC_STATUS["$1 $2 $got"]:-}" ] ||
		{ diag "$got is not documented for $1 $2"; return 1; }
	[ "$got" -lt 400 ] && return 0
	json_content_type ||
		{ diag "error without a JSON content type: $(head -c 200 "$T/body")"; return 1; }
	code=$(jq -r 'if (.error | (.code | type == "string")
		and (.message | type == "string") and has("field")
		and (.details | type == "array")) and (.request_id | type == "string")
		then .error.code else "" end' < "$T/body" 2>/dev/null)
	[ -n "$code" ] ||
		{ diag "not the Error shape: $(head -c 300 "$T/body")"; return 1; }
	[ -n "${ENUM[$code]:-}" ] ||
		{ diag "error.code $code is not in the Error.code enum"; return 1; }
}
json_content_type() {
	local line
	while IFS= read -r line; do
		[[ ${line,,} == content-type:\ application/json* ]] && return 0
	done < "$T/headers"
	return 1
}

# probe DESC WANT OP_METHOD OP_PATH METHOD URL [BODY [curl args]]: send
# METHOD URL, then hold the answer to the operation OP_METHOD OP_PATH.
probe() {
	# api() sets globals of its own (m, p, body); none may be used here.
	local desc=$1 want=$2 op_m=$3 op_path=$4 how=$5 url=$6
	shift 6
	api "$how" "$url" "$@"
	ok "$op_m $op_path: $desc -> $want, documented" held "$op_m" "$op_path" "$want"
}

# The methods the document lists for a path, as an Allow header lists them.
doc_allow() {
	awk -v p="$1" '$1 == "op" && $3 == p { print $2 }' "$T/doc.txt" | sort | paste -sd' '
}
allow_matches() {
	local got
	got=$(grep -i '^allow:' "$T/headers" | cut -d' ' -f2- | tr -d '\r' |
		tr ',' '\n' | tr -d ' ' | sort | paste -sd' ')
	[ "$got" = "$(doc_allow "$1")" ] ||
		{ diag "Allow: '$got', documented methods: '$(doc_allow "$1")'"; return 1; }
}

while read -r rm tpl scope; do
	url=${tpl//\{scenario_id\}/oa-1}
	okbody=
	[ "$rm $tpl" = "POST /v1/policies" ] && okbody='{"scenario_id":"oa-2"}'
	# PATCH is served on no path.
	probe "a method the path does not serve" 405 "$rm" "$tpl" PATCH "$url"
	ok "PATCH $tpl: Allow lists the documented methods" allow_matches "$tpl"
	probe "an unknown query parameter" 400 "$rm" "$tpl" "$rm" "$url?egw_probe=1" "$okbody"
	probe "a request line over nginx's buffer" 414 "$rm" "$tpl" "$rm" "$url?$long_query" "$okbody"
	probe "a text/plain body" 415 "$rm" "$tpl" "$rm" "$url" "" \
		-H 'Content-Type: text/plain' --data-binary x
	probe "a body over EGW_MAX_BODY" 413 "$rm" "$tpl" "$rm" "$url" "" \
		-H 'Content-Type: application/json' --data-binary "@$T/over_worker.json"
	probe "a body over nginx's limit" 413 "$rm" "$tpl" "$rm" "$url" "" \
		-H 'Content-Type: application/json' --data-binary "@$T/over_nginx.json"
	case $scope in
	read|write)
		[ "$scope" = read ] && other=$WRITE || other=$READ
		TOKEN= probe "no token" 401 "$rm" "$tpl" "$rm" "$url" "$okbody"
		TOKEN=$other probe "a token without the $scope scope" 403 "$rm" "$tpl" "$rm" "$url" "$okbody"
		;;
	esac
	case $tpl in
	*'{scenario_id}'*)
		probe "an unknown scenario_id" 404 "$rm" "$tpl" "$rm" "${tpl//\{scenario_id\}/oa-none}"
		probe "a malformed scenario_id" 400 "$rm" "$tpl" "$rm" "${tpl//\{scenario_id\}/-x}"
		;;
	esac
done < "$T/routes"

# Success paths, and the statuses only one operation has.  Open routes are
# asked without a token.
for r in /health /healthz; do
	TOKEN= probe "no token needed" 200 GET "$r" GET "$r"
done
TOKEN= probe "no applier heartbeat" 503 GET /readyz GET /readyz
ok "readyz 503 says which check failed" jq_is .checks.applier.ok false
sqlite3 -cmd '.timeout 5000' "$EGW_STATE_DIR/egw.db" \
	"UPDATE applier_state SET heartbeat_at = '$(date -u +%Y-%m-%dT%H:%M:%S.000Z)' WHERE id = 1"
TOKEN= probe "a fresh applier heartbeat" 200 GET /readyz GET /readyz
for r in /metrics /v1/policies /v1/logs /v1/stats /v1/ruleset /v1/profiles; do
	probe "read" 200 GET "$r" GET "$r"
done
P=/v1/policies
probe "read" 200 GET "$P/{scenario_id}" GET "$P/oa-1"
probe "a new policy" 201 POST "$P" POST "$P" '{"scenario_id":"oa-2"}'
probe "a changed policy" 200 POST "$P" POST "$P" '{"scenario_id":"oa-2","mode":"audit"}'
probe "wait=1 with no applier" 202 POST "$P" POST "$P?wait=1" '{"scenario_id":"oa-2","mode":"enforce"}'
probe "a stale revision" 409 POST "$P" POST "$P" '{"scenario_id":"oa-2","revision":99}'
probe "no body" 411 POST "$P" POST "$P"
probe "an unknown field" 422 POST "$P" POST "$P" '{"scenario_id":"oa-2","egw_probe":1}'
for op in disable enable; do
	probe "$op" 200 POST "$P/{scenario_id}/$op" POST "$P/oa-1/$op"
	probe "wait=1 with no applier" 202 POST "$P/{scenario_id}/$op" POST "$P/oa-1/$op?wait=1"
	probe "a field in the body" 422 POST "$P/{scenario_id}/$op" POST "$P/oa-1/$op" '{"egw_probe":1}'
done
probe "a field in the body" 422 DELETE "$P/{scenario_id}" DELETE "$P/oa-2" '{"egw_probe":1}'
probe "wait=1 with no applier" 202 DELETE "$P/{scenario_id}" DELETE "$P/oa-1?wait=1"
probe "delete" 200 DELETE "$P/{scenario_id}" DELETE "$P/oa-2"

# Paths no route has, then every operation with the pool stopped: nginx
# answers for it.
probe "an unknown path" 404 unlisted path GET /v1/egw-probe
probe "an unknown path, another method" 404 unlisted path POST /egw-probe '{}'
probe "an empty path segment" 400 unlisted path GET //egw-probe
probe "a request line over nginx's buffer" 414 unlisted path GET "/egw-probe?$long_query"
probe "a body over nginx's limit" 413 unlisted path POST /egw-probe "" \
	-H 'Content-Type: application/json' --data-binary "@$T/over_nginx.json"
stop_api
while read -r rm tpl scope; do
	probe "the pool is stopped" 503 "$rm" "$tpl" "$rm" "${tpl//\{scenario_id\}/oa-1}"
done < "$T/routes"
probe "the pool is stopped" 503 unlisted path GET /v1/egw-probe

# Every status the document lists was answered, for every operation.
# 500 and 504 are left out: no cheap request provokes them.
awk '$1 == "op" { for (i = 5; i <= NF; i++) print $2, $3, $i }
	$1 == "unlisted" { for (i = 2; i <= NF; i++) print "unlisted", "path", $i }' \
	"$T/doc.txt" | grep -v -e ' 500$' -e ' 504$' | sort -u > "$T/doc_statuses"
sort -u "$T/seen" > "$T/seen_statuses"
while read -r m tpl; do
	ok "$m $tpl: every documented status but 500 and 504 was answered" bash -c "
		! grep '^$m $tpl ' '$T/doc_statuses' | comm -23 - '$T/seen_statuses' | grep ."
done < <(awk '{ print $1, $2 }' "$T/doc_statuses" | sort -u)
e2e_done
