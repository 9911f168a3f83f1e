#!/bin/bash
# SPDX-License-Identifier: MIT
# Bearer-token authentication through a real nginx: the token command
# (create prints once, list shows no secret, revoke), the 401/403 matrix
# over every route kind, open health endpoints, and revocation.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_auth
need_cmd sqlite3

export EGW_AUTH=on
api_env
# A wrong EGW_DB_PATH: refused, and no empty database appears there.
for cmd in "list" "create stray read" "revoke stray"; do
	EGW_DB_PATH="$T/state/nothere.db" "$(egw_bin egw-admin)" token $cmd > "$T/nothere.out" 2>&1
	ok "token $cmd, no database at EGW_DB_PATH: exit 1" test $? -eq 1
	ok "token $cmd: says where it looked" grep -q "no database at $T/state/nothere.db" "$T/nothere.out"
	ok "token $cmd: created nothing" test ! -e "$T/state/nothere.db"
done
READ=$(mint_token reader read)
WRITE=$(mint_token writer write)
BOTH=$(mint_token admin read,write)
ok "tokens minted" bash -c "[[ '$READ' =~ ^egw_[A-Za-z0-9_-]{43}$ && '$WRITE' =~ ^egw_ && '$BOTH' =~ ^egw_ ]]"
ok "tokens differ" test "$READ" != "$WRITE" -a "$WRITE" != "$BOTH"
fails() { ! "$@" >/dev/null 2>&1; }
exit_status() { want=$1; shift; "$@" >/dev/null 2>&1; [ $? -eq "$want" ]; }
ok "a second token with a live name is refused" fails mint_token reader read
ok "bad scopes refused (usage error)" exit_status 2 token_cmd create x admin
# The token is shown once: written nowhere (a full disk), it must not stay
# valid, nor keep its name from a new token.
to_full() { "$@" > /dev/full; }
listed_revoked() { token_cmd list | grep -q "^$1 .* revoked "; }
ok "create into a full output: fails" exit_status 1 to_full token_cmd create lost read
ok "... and that token is revoked" listed_revoked lost
ok "... so the name takes a new token" exit_status 0 token_cmd create lost read
# A reader that is gone (EPIPE, not a killing SIGPIPE) is the same case.
to_gone_reader() { { sleep 0.5; "$@"; } | true; }
to_gone_reader token_cmd create piped read
ok "create into a pipe nobody reads: the token is revoked" listed_revoked piped
token_cmd list > "$T/list.txt"
ok "token list shows names and scopes" bash -c "grep -q '^reader *read ' '$T/list.txt' && grep -q '^admin *read,write ' '$T/list.txt'"
ok "no token or hash is stored or listed in clear" bash -c \
	"! grep -q '$READ' '$T/list.txt' && ! sqlite3 '$EGW_STATE_DIR/egw.db' .dump | grep -q '$READ'"
ok "the stored value is the SHA-256" test "$(sqlite3 "$EGW_STATE_DIR/egw.db" "SELECT token_hash FROM api_tokens WHERE name='reader'")" = "$(printf %s "$READ" | sha256sum | cut -d' ' -f1)"

start_api 2
start_nginx
ok "no auth warning when auth is on" bash -c "! grep -q 'EGW_AUTH=off' '$T/api.log'"

# matrix TOKEN METHOD PATH BODY WANT [CODE]
matrix() {
	TOKEN=$1
	api "$2" "$3" "$4"
	if [ -n "${6:-}" ]; then
		ok "$7: $2 $3 -> $5" error_is "$5" "$6"
	else
		ok "$7: $2 $3 -> $5" status_is "$5"
	fi
}
P='{"scenario_id":"auth-1","profile":"none"}'
for who in none bad read write both; do
	case $who in
	none) tok= ;; bad) tok=egw_notavalidtokenatallxxxxxxxxxxxxxxxxxxxxxx ;;
	read) tok=$READ ;; write) tok=$WRITE ;; both) tok=$BOTH ;;
	esac
	for route in "GET /health" "GET /healthz"; do
		matrix "$tok" $route "" 200 "" "$who"
	done
	case $who in
	none|bad)
		matrix "$tok" GET /v1/policies "" 401 unauthorized "$who"
		ok "$who: WWW-Authenticate on 401" bash -c "grep -qi '^www-authenticate: Bearer' '$T/headers'"
		matrix "$tok" GET /metrics "" 401 unauthorized "$who"
		matrix "$tok" GET /v1/stats "" 401 unauthorized "$who"
		matrix "$tok" POST /v1/policies "$P" 401 unauthorized "$who"
		matrix "$tok" DELETE /v1/policies/auth-1 "" 401 unauthorized "$who" ;;
	read)
		matrix "$tok" GET /v1/policies "" 200 "" "$who"
		matrix "$tok" GET /v1/profiles "" 200 "" "$who"
		matrix "$tok" GET /metrics "" 200 "" "$who"
		matrix "$tok" POST /v1/policies "$P" 403 forbidden "$who"
		matrix "$tok" POST /v1/policies/auth-1/disable "" 403 forbidden "$who"
		matrix "$tok" DELETE /v1/policies/auth-1 "" 403 forbidden "$who" ;;
	write)
		matrix "$tok" POST /v1/policies "$P" 201 "" "$who"
		matrix "$tok" POST /v1/policies/auth-1/disable "" 200 "" "$who"
		matrix "$tok" GET /v1/policies "" 403 forbidden "$who"
		matrix "$tok" GET /v1/policies/auth-1 "" 403 forbidden "$who" ;;
	both)
		matrix "$tok" GET /v1/policies/auth-1 "" 200 "" "$who"
		matrix "$tok" POST /v1/policies/auth-1/enable "" 200 "" "$who"
		matrix "$tok" DELETE /v1/policies/auth-1 "" 200 "" "$who" ;;
	esac
done
# A token that may write but not read learns from a change what it wrote
# (a receipt), not the policy: an enable of an enabled policy changes and
# records nothing, so answering it with the policy would be a read.
SECRET='{"scenario_id":"auth-secret","profile":"custom","sources":["100.64.7.0/24"],"allowed_hosts":["10.9.9.9"],"allowed_ports":[443]}'
TOKEN=$BOTH api POST /v1/policies "$SECRET"
ok "setup: a policy only readers may see" status_is 201
secret_history() { sqlite3 "$EGW_STATE_DIR/egw.db" "SELECT count(*) FROM policy_history WHERE scenario_id='auth-secret'"; }
receipt_only() {
	jqe '.scenario_id == "auth-secret" and (.revision | type) == "number"
	    and (.generation | type) == "number" and (.status.apply | type) == "string"' &&
	jqe '[has("sources", "allowed_hosts", "allowed_ports", "profile", "enabled",
	    "interfaces", "custom_rules", "dns_servers", "network_id", "mark",
	    "mode", "created_at")] | any | not'
}
receipt_with() { status_is "$1" && receipt_only; }
history_before=$(secret_history)
TOKEN=$WRITE api POST /v1/policies/auth-secret/enable
ok "write-only: enable of an enabled policy: 200" status_is 200
ok "... answered with a receipt, none of the policy's contents" receipt_only
ok "... and nothing recorded" test "$(secret_history)" = "$history_before"
TOKEN=$WRITE api POST /v1/policies/auth-secret/disable
ok "write-only: disable: 200, a receipt" receipt_with 200
TOKEN=$WRITE api POST /v1/policies "$SECRET"
ok "write-only: an update: 200, a receipt" receipt_with 200
TOKEN=$WRITE api POST '/v1/policies/auth-secret/enable?wait=1'
ok "write-only: a change with ?wait (no applier here: 202), a receipt" receipt_with 202
TOKEN=$BOTH api POST /v1/policies/auth-secret/disable
ok "read,write: a change answers the policy" jqe '.allowed_hosts == ["10.9.9.9"] and .sources == ["100.64.7.0/24"]'
TOKEN=$WRITE api DELETE /v1/policies/auth-secret
ok "write-only: delete answers what it always did" jqe '.status == "deleted" and .scenario_id == "auth-secret"'

# A change's token is checked inside the change's own transaction (the
# store), so the worker may read and judge the body first: whatever it
# makes of the request, a client whose token may not write hears only
# 401/403, and nothing changes.
BAD=egw_notavalidtokenatallxxxxxxxxxxxxxxxxxxxxxx
snapshot() { sqlite3 "$EGW_STATE_DIR/egw.db" "SELECT (SELECT group_concat(scenario_id || ':' || revision || ':' || enabled, ',') FROM policies), (SELECT count(*) FROM policy_history), (SELECT count(*) FROM outbox), (SELECT desired_generation FROM applier_state)"; }
TOKEN=$BOTH api POST /v1/policies '{"scenario_id":"auth-2","profile":"none"}'
ok "setup: a policy to aim at" status_is 201
# The writer's work (its transactions, and the changes written without it)
# as /metrics counts it: refused clients must not reach it.
writes() { TOKEN=$BOTH api GET /metrics; awk '/^egw_api_write_(batches|direct)_total / { n += $2 } END { print n + 0 }' "$T/body"; }
before=$(snapshot) writes_before=$(writes)
for who in bad read; do
	case $who in bad) tok=$BAD want="401 unauthorized" ;; read) tok=$READ want="403 forbidden" ;; esac
	matrix "$tok" POST /v1/policies '{"scenario_id":' $want "$who, malformed JSON (400 with a good token)"
	matrix "$tok" POST /v1/policies '{"scenario_id":"auth-2","profile":"nope"}' $want "$who, no such profile (422 with a good token)"
	matrix "$tok" POST /v1/policies '{"scenario_id":"auth-2","allowed_ports":[70000]}' $want "$who, a port out of range (422 with a good token)"
	matrix "$tok" POST /v1/policies '{"scenario_id":"auth-2","revision":99}' $want "$who, a stale revision (409 with a good token)"
	matrix "$tok" POST /v1/policies '{"scenario_id":"auth-2","profile":"none","enabled":false}' $want "$who, a valid change"
	matrix "$tok" POST '/v1/policies?wait=x' '{"scenario_id":"auth-2"}' $want "$who, a bad parameter (400 with a good token)"
	matrix "$tok" POST '/v1/policies?wait=1&wait=2' '{"scenario_id":"auth-2"}' $want "$who, a parameter given twice (400 with a good token)"
	matrix "$tok" POST '/v1/policies/auth-2/enable?wait=%ZZ' "" $want "$who, bad percent-encoding in the query (400 with a good token)"
	matrix "$tok" DELETE '/v1/policies/auth-2?=x' "" $want "$who, an empty parameter name (400 with a good token)"
	matrix "$tok" DELETE /v1/policies/no-such-one "" $want "$who, no such policy (404 with a good token)"
	matrix "$tok" POST /v1/policies/no-such-one/enable "" $want "$who, enable no such policy"
	matrix "$tok" POST /v1/policies/auth-2/disable "" $want "$who, disable"
	matrix "$tok" DELETE /v1/policies/auth-2 "" $want "$who, delete"
	TOKEN=$tok api POST /v1/policies "" -H 'Content-Type: text/plain' --data-binary '{"scenario_id":"auth-2"}'
	ok "$who, wrong content type (415 with a good token): $want" error_is $want
done
ok "refused changes changed nothing (policies, history, outbox, generation)" test "$(snapshot)" = "$before"
ok "... and none reached the writer or the write lock" test "$(writes)" = "$writes_before"
matrix "$WRITE" POST /v1/policies '{"scenario_id":' 400 bad_request "write, malformed JSON"
matrix "$WRITE" POST /v1/policies '{"scenario_id":"auth-2","profile":"nope"}' 422 invalid_policy "write, no such profile"
matrix "$WRITE" POST /v1/policies '{"scenario_id":"auth-2","allowed_ports":[70000]}' 422 invalid_policy "write, a port out of range"
matrix "$WRITE" DELETE /v1/policies/no-such-one "" 404 not_found "write, no such policy"
matrix "$WRITE" POST '/v1/policies?wait=1&wait=2' '{"scenario_id":"auth-2"}' 400 bad_request "write, a parameter given twice"
ok "... named in the error" jq_is .error.field wait
matrix "$WRITE" POST '/v1/policies/auth-2/enable?wait=%ZZ' "" 400 bad_request "write, bad percent-encoding in the query"
for who in none bad write; do
	case $who in none) tok= want="401 unauthorized" ;; bad) tok=$BAD want="401 unauthorized" ;; write) tok=$WRITE want="403 forbidden" ;; esac
	matrix "$tok" GET '/v1/policies?limit=1&limit=2' "" $want "$who, read route, a parameter given twice (400 with a good token)"
	matrix "$tok" GET '/v1/logs?since=%ZZ' "" $want "$who, read route, bad percent-encoding in the query"
done
matrix "$READ" GET '/v1/policies?limit=1&limit=2' "" 400 bad_request "read, a parameter given twice"
matrix "" GET '/health?a=%ZZ' "" 400 bad_request "an open route with a malformed query"
matrix "$WRITE" POST /v1/policies '{"scenario_id":"auth-2","profile":"none","enabled":false}' 200 "" "write, a valid change"
ok "history names the token that changed it" test "$(sqlite3 "$EGW_STATE_DIR/egw.db" "SELECT actor FROM policy_history WHERE scenario_id='auth-2' ORDER BY id DESC LIMIT 1")" = api:writer
ok "... and so does its audit event" test "$(sqlite3 "$EGW_STATE_DIR/egw.db" "SELECT json_extract(payload, '\$.actor') FROM outbox WHERE scenario_id='auth-2' ORDER BY id DESC LIMIT 1")" = api:writer
LATE=$(mint_token late write)
matrix "$LATE" POST /v1/policies/auth-2/enable "" 200 "" "a new write token"
before=$(snapshot)
ok "revoke a write token" exit_status 0 token_cmd revoke late
matrix "$LATE" POST /v1/policies '{"scenario_id":"auth-2","profile":"none","enabled":false}' 401 unauthorized "revoked write token, a valid change"
matrix "$LATE" POST /v1/policies/auth-2/disable "" 401 unauthorized "revoked write token, disable"
ok "the revoked token changed nothing" test "$(snapshot)" = "$before"
# The token's hash crosses to the writer in the worker's message
# (src/writer.c, struct writer_req): the writer takes only 64 lowercase hex
# digits there.  Raw messages on its socket, as the pool's own user; the
# one with the write token's hash is the control that the layout is right
# (-11: EGW_E_UNAUTHORIZED, src/err.h).
writer_delete() {
	python3 - "$EGW_RUN_DIR/egw-api-writer.sock" "$1" "$2" <<'PY'
import socket, struct, sys, time
path, sid, token_hash = sys.argv[1:4]
def field(text, size):
    b = text.encode()
    return b + b'\0' * (size - len(b))
msg = struct.pack('<IIq', 0x5a574745, 2, int(time.monotonic() * 1000) + 60000)
msg += field('', 96) + field(token_hash, 65) + field('req-raw', 65) + field(sid, 65)
msg += b'\0' * (-len(msg) % 8)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(20)
s.connect(path)
s.send(msg)
r = s.recv(1 << 17)
print('closed' if not r else 'rc=%d' % struct.unpack_from('<i', r, 4)[0])
PY
}
TOKEN=$BOTH api POST /v1/policies '{"scenario_id":"auth-3","profile":"none"}'
ok "setup: a policy for raw writer messages" status_is 201
WHASH=$(printf %s "$WRITE" | sha256sum | cut -d' ' -f1)
stored3() { test "$(sqlite3 "$EGW_STATE_DIR/egw.db" "SELECT count(*) FROM policies WHERE scenario_id='auth-3'")" = "$1"; }
ok "writer: an upper-case hash is a malformed message" test "$(writer_delete auth-3 "$(echo "$WHASH" | tr a-f A-F)")" = closed
ok "writer: a hash one digit short too" test "$(writer_delete auth-3 "${WHASH%?}")" = closed
ok "writer: a hash with a non-hex digit too" test "$(writer_delete auth-3 "g${WHASH#?}")" = closed
ok "... none of them changed anything" stored3 1
ok "writer: an unknown token's hash is refused (401)" test "$(writer_delete auth-3 "$(printf x | sha256sum | cut -d' ' -f1)")" = rc=-11
ok "... nothing changed" stored3 1
ok "writer: the write token's hash deletes (the message layout is right)" test "$(writer_delete auth-3 "$WHASH")" = rc=0
ok "... gone" stored3 0
ok "... recorded as the write token's" test "$(sqlite3 "$EGW_STATE_DIR/egw.db" "SELECT actor FROM policy_history WHERE scenario_id='auth-3' AND operation='delete'")" = api:writer
TOKEN=
api GET /readyz
# No applier runs here: not ready, but answered without a token.
ok "readyz needs no token (503 not_ready: no applier here)" status_is 503
ok "... its own body, not an error's" jq_is .status not_ready
ok "history names the token that wrote" test "$(sqlite3 "$EGW_STATE_DIR/egw.db" "SELECT actor FROM policy_history WHERE operation='create' AND scenario_id='auth-1'")" = api:writer
TOKEN= api GET /v1/policies "" -H "Authorization: Basic cmVhZGVyOnB3"
ok "Basic credentials: 401" error_is 401 unauthorized
TOKEN= api GET /v1/policies "" -H "Authorization: Bearer $READ extra"
ok "Bearer with two words: 401" error_is 401 unauthorized
ok "revoke" exit_status 0 token_cmd revoke reader
TOKEN=$READ api GET /v1/policies
ok "revoked token: 401" error_is 401 unauthorized
ok "revoking twice fails" fails token_cmd revoke reader
ok "no token appears in the API's log" bash -c "! grep -q -e '$READ' -e '$WRITE' -e '$BOTH' '$T/api.log'"
e2e_done
