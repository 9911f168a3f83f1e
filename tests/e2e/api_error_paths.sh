#!/bin/bash
# SPDX-License-Identifier: MIT
# Error paths of the read endpoints that the other API scenarios leave out,
# through a real nginx with authentication on: GET /v1/ruleset without a
# token, with an unknown one, with a token lacking the read scope and with
# an unknown query parameter; GET /v1/logs without a token and with one
# lacking the read scope; an unknown query parameter on the open /health,
# /healthz and /readyz.  Each answer must carry its status, the JSON error
# shape with its code and the request id sent, and the route's success
# answer is checked alongside, so that a refusal of everything would fail.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_error_paths

export EGW_AUTH=on
api_env
READ=$(mint_token ep-reader read)
WRITE=$(mint_token ep-writer write)
ok "tokens minted" bash -c "[[ '$READ' =~ ^egw_ && '$WRITE' =~ ^egw_ ]]"
start_api 2
start_nginx

# refused DESC STATUS CODE METHOD PATH [curl args]: the answer is STATUS
# with CODE in the Error shape, and echoes the request id it was sent.
n=0
refused() {
	local desc=$1 want=$2 code=$3 how=$4 url=$5
	shift 5
	n=$((n + 1))
	api "$how" "$url" "" -H "X-Request-Id: ep-$n" "$@"
	ok "$desc: $want $code" error_is "$want" "$code"
	ok "$desc: error shape, request id echoed" jqe "(.error | has(\"message\") and has(\"field\")
		and (.details | type == \"array\")) and .request_id == \"ep-$n\""
}
www_authenticate() {
	grep -qi '^www-authenticate: Bearer realm="egw-api"' "$T/headers" ||
		{ diag "no WWW-Authenticate: Bearer on the 401"; return 1; }
}
# A token that is well formed but was never minted.
UNKNOWN=egw_$(head -c 43 /dev/zero | tr '\0' A)

for r in /v1/ruleset /v1/logs; do
	TOKEN=$READ api GET "$r"
	ok "GET $r with a read token: 200" status_is 200
	TOKEN= refused "GET $r without a token" 401 unauthorized GET "$r"
	ok "GET $r without a token: WWW-Authenticate" www_authenticate
	TOKEN=$UNKNOWN refused "GET $r with an unknown token" 401 unauthorized GET "$r"
	TOKEN=$WRITE refused "GET $r with a write-only token" 403 forbidden GET "$r"
done
TOKEN=$READ refused "GET /v1/ruleset?x=1" 400 bad_request GET '/v1/ruleset?x=1'
ok "GET /v1/ruleset?x=1: the parameter is named" jq_is .error.field x
# The scope is checked before the query: a token that may not read learns
# nothing about which parameters exist.
TOKEN=$WRITE refused "GET /v1/ruleset?x=1 with a write-only token" 403 forbidden \
	GET '/v1/ruleset?x=1'

# The open routes need no token but still refuse what they do not take.
TOKEN= api GET /readyz
ok "GET /readyz without a token: its own 503 (no applier runs), not a 401" \
	jqe '.status == "not_ready" and .error.code == "unavailable"'
for r in /health /healthz /readyz; do
	if [ "$r" != /readyz ]; then
		TOKEN= api GET "$r"
		ok "GET $r without a token: 200" status_is 200
	fi
	TOKEN= refused "GET $r?x=1" 400 bad_request GET "$r?x=1"
	ok "GET $r?x=1: the parameter is named" jq_is .error.field x
done
e2e_done
