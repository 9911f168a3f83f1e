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

# What nginx refuses before any worker: the same JSON shape and headers as
# the pool's answers, not nginx's HTML page.  Sent raw: curl would not
# send an HTTP/2.0 request line or a gzip Transfer-Encoding on HTTP/1.1.
raw() {	# raw REQUEST: the full answer (headers and body) in $T/raw
	python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.buffer.write(data)' "$API_PORT" "$1" > "$T/raw"
}
nginx_refusal() {	# nginx_refusal DESC STATUS CODE REQUEST [ID]: ID "nginx" when
	# nginx refuses before reading headers (its own 32-hex id is used)
	raw "$4"
	tr -d '\r' < "$T/raw" | sed -n '/^$/,$p' | sed 1d > "$T/body"
	if [ "${5:-sent}" = nginx ]; then
		want_id=$(jq -r '.request_id | select(test("^[0-9a-f]{32}$"))' < "$T/body" 2>/dev/null)
	else
		want_id=ep-raw-$2
	fi
	ok "$1: status $2" grep -q "^HTTP/1.1 $2 " "$T/raw"
	ok "$1: JSON error $3 with the request id (${5:-sent})" \
		jqe ".error.code == \"$3\" and .request_id == \"$want_id\" and .request_id != \"\""
	ok "$1: X-Request-Id, no-store and nosniff as the pool sends them" bash -c \
		"tr -d '\\r' < '$T/raw' | grep -qx 'X-Request-Id: $want_id' &&
		 tr -d '\\r' < '$T/raw' | grep -qx 'Cache-Control: no-store' &&
		 tr -d '\\r' < '$T/raw' | grep -qx 'X-Content-Type-Options: nosniff'"
}
nginx_refusal "TRACE" 405 method_not_allowed \
	'TRACE /v1/policies HTTP/1.1\r\nHost: x\r\nX-Request-Id: ep-raw-405\r\nConnection: close\r\n\r\n'
nginx_refusal "a gzip Transfer-Encoding" 501 not_implemented \
	'POST /v1/policies HTTP/1.1\r\nHost: x\r\nX-Request-Id: ep-raw-501\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n'
nginx_refusal "an HTTP/2.0 request line" 505 http_version_not_supported \
	'GET /health HTTP/2.0\r\nHost: x\r\nX-Request-Id: ep-raw-505\r\nConnection: close\r\n\r\n' nginx
e2e_done
