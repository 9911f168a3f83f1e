#!/bin/bash
# SPDX-License-Identifier: MIT
# Request ids where the worker does not write the answer, through a real
# nginx: errors nginx makes itself (400, 413, 414, 503, and a 504 from an
# nginx whose fastcgi_read_timeout is cut to 1 s, run from the site file
# as Debian's nginx includes it) carry the client's sane X-Request-Id, or
# one nginx made, in the X-Request-Id header, the body and the access log
# line, and a 504's worker logs under the client's id; the writer's lines
# name the request whose change they are about, and no other; nginx's
# timeout covers the longest a mutation may take.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_request_id
need_cmd sqlite3 python3

export EGW_AUTH=off EGW_MAX_BODY=4096
start_api 2
start_nginx
DB=$EGW_STATE_DIR/egw.db
ACCESS=$T/nginx/access.log
SANE='^[A-Za-z0-9._-]{1,64}$'

resp_rid() {
	grep -i '^x-request-id:' "$T/headers" | head -n1 | cut -d' ' -f2- | tr -d '\r'
}
# logged_rid LOG STATUS: the request id of LOG's newest line with STATUS
logged_rid() {
	jq -r --argjson s "$2" 'select(.status == $s) | .request_id' "$1" 2>/dev/null |
		tail -n1
}
logged_is() {
	[ -n "$3" ] && [ "$(logged_rid "$1" "$2")" = "$3" ]
}
# same_id DESC STATUS [LOG]: header, body and the access log line of the
# last answer agree on one sane id; sets RID to it
same_id() {
	local what=$1 status=$2 log=${3:-$ACCESS}
	RID=$(resp_rid)
	ok "$what: X-Request-Id sent ($RID)" bash -c "[[ '$RID' =~ $SANE ]]"
	ok "$what: the body names it" jq_is .request_id "$RID"
	ok "$what: the access log line names it" wait_for 5 logged_is "$log" "$status" "$RID"
	[ "$(logged_rid "$log" "$status")" = "$RID" ] ||
		diag "access log has '$(logged_rid "$log" "$status")'"
}

head -c 100000 /dev/zero | tr '\0' ' ' > "$T/huge.json"
too_large() {
	api POST /v1/policies "" -H 'Content-Type: application/json' \
		--data-binary "@$T/huge.json" "$@"
}

# --- 413 from nginx: the client's id, when sane by the worker's rule ---
too_large -H 'X-Request-Id: rid-413.A_z-9'
ok "nginx's 413" error_is 413 payload_too_large
ok "413: the client's id in the header" header_is X-Request-Id rid-413.A_z-9
same_id "413 with a sane id" 413
ok "413: the logged id is the client's" test "$RID" = rid-413.A_z-9

# The worker's rule, [A-Za-z0-9._-]{1,64} (http_valid_request_id()), at
# its edges: kept or replaced exactly as the worker would.
long64=$(printf 'b%.0s' $(seq 64))
long65=$(printf 'c%.0s' $(seq 65))
long200=$(printf 'd%.0s' $(seq 200))
for c in "keep|$long64" "keep|0" "keep|..--__" \
	"new|$long65" "new|$long200" "new|bad id with spaces" "new|a:b" \
	"new|a/b" "new|a+b" "new|a\"b" "new|é" "new|"; do
	want=${c%%|*} id=${c#*|}
	if [ -n "$id" ]; then
		too_large -H "X-Request-Id: $id"
	else
		too_large -H 'X-Request-Id;'
	fi
	got=$(resp_rid)
	if [ "$want" = keep ]; then
		ok "413, id '${id:0:20}' (${#id} bytes) kept" test "$got" = "$id"
	else
		ok "413, id '${id:0:20}' (${#id} bytes) replaced by a sane one" \
			bash -c "[[ '$got' =~ $SANE && '$got' != '$id' ]]"
	fi
	same_id "413, id '${id:0:20}'" 413
done

# --- 400 from nginx ---
# A header over the limit once the id has been read: the id is kept.
api GET /health "" -H 'X-Request-Id: rid-400.big' \
	-H "X-Big: $(head -c 16384 /dev/zero | tr '\0' A)"
ok "nginx's 400 (header too large)" error_is 400 bad_request
ok "400: the client's id in the header" header_is X-Request-Id rid-400.big
same_id "400 (header too large)" 400
# A bad request line: nginx has read no header yet, so it makes an id.
api GET '/v1/policies/%ZZ' "" -H 'X-Request-Id: rid-400.line'
ok "nginx's 400 (bad percent-encoding)" error_is 400 bad_request
same_id "400 (bad request line)" 400

# --- 414 from nginx (no header read either) ---
api GET "/v1/policies/$(head -c 9000 /dev/zero | tr '\0' a)" ""
ok "nginx's 414" error_is 414 uri_too_long
same_id "414" 414

# Worker answers keep theirs: the access log takes the upstream's id.
api GET /v1/nothing "" -H 'X-Request-Id: rid-404.worker'
ok "the worker's 404" error_is 404 not_found
ok "404: the client's id in the header" header_is X-Request-Id rid-404.worker
same_id "the worker's 404" 404
api GET /v1/nothing "" -H 'X-Request-Id: bad id'
same_id "the worker's 404 with an insane id" 404
ok "the worker logs under that id" wait_for 3 grep -q "\"request_id\":\"$RID\".*\"status\":\"404\"" "$T/api.log"

# --- nginx's timeout against the longest a mutation may take ---
nginx_timeout=$(sed -n 's/^[[:space:]]*fastcgi_read_timeout \([0-9]*\)s;.*/\1/p' \
	"$EGW_TOP_SRCDIR/nginx/egw-api.conf.in")
writer_wait=$(sed -n 's/^#define WRITER_REPLY_TIMEOUT_S \([0-9]*\).*/\1/p' \
	"$EGW_TOP_SRCDIR/src/writer.c")
wait_max=$(sed -n 's/^#define API_WAIT_MAX_S \([0-9]*\).*/\1/p' \
	"$EGW_TOP_SRCDIR/src/api_policies.c")
ok "fastcgi_read_timeout (${nginx_timeout}s) exceeds the writer wait plus ?wait= (${writer_wait} + ${wait_max} s)" \
	test -n "$nginx_timeout" -a -n "$writer_wait" -a -n "$wait_max" -a \
	"${nginx_timeout:-0}" -gt $(( ${writer_wait:-99} + ${wait_max:-99} ))

# --- 504, from the site file as an nginx that includes it runs it ---
# Its timeout cut to 1 s; a ?wait=3 mutation (no applier) outlasts it.
N2=$T/nginx2
mkdir -p "$N2"
"$EGW_TOP_SRCDIR/scripts/render-nginx-conf" --listen 127.0.0.1:1 \
	--socket "$EGW_FCGI_SOCKET" --max-body "$EGW_MAX_BODY" \
	--access-log "$N2/access.log" > "$N2/site.conf.in" ||
	{ echo "Bail out! cannot render the site"; exit 99; }
user_line=
[ "$(id -u)" -ne 0 ] || user_line="user root root;"
for attempt in 1 2 3 4 5; do
	port2=$(free_port)
	sed -e "s/listen 127.0.0.1:1;/listen 127.0.0.1:$port2;/" \
		-e 's/fastcgi_read_timeout [0-9]*s;/fastcgi_read_timeout 1s;/' \
		"$N2/site.conf.in" > "$N2/site.conf"
	cat > "$N2/nginx.conf" <<CONF
$user_line
worker_processes 1;
pid $N2/nginx.pid;
error_log $N2/error.log warn;
events { worker_connections 64; }
http {
	client_body_temp_path $N2/client_body;
	fastcgi_temp_path $N2/fastcgi;
	proxy_temp_path $N2/proxy;
	uwsgi_temp_path $N2/uwsgi;
	scgi_temp_path $N2/scgi;
	include $N2/site.conf;
}
CONF
	[ "$attempt" -gt 1 ] ||
		ok "the site file (maps included) passes nginx -t inside http {}" \
			nginx -t -q -e "$N2/error.log" -c "$N2/nginx.conf"
	nginx -e "$N2/error.log" -c "$N2/nginx.conf" -g 'daemon off;' \
		>> "$T/nginx2.log" 2>&1 &
	n2pid=$!
	track_pid "$n2pid"
	wait_for 5 curl -s -o /dev/null "http://127.0.0.1:$port2/healthz" && break
	kill -TERM "$n2pid" 2>/dev/null
	wait "$n2pid" 2>/dev/null
	n2pid=
done
[ -n "$n2pid" ] || { echo "Bail out! the second nginx did not answer"; exit 99; }
API1=$API
API=http://127.0.0.1:$port2
api POST '/v1/policies?wait=3' '{"scenario_id":"slow-1"}' -H 'X-Request-Id: rid-504.site'
ok "the site file's nginx answers a slow mutation with its 504" error_is 504 timeout
same_id "504" 504 "$N2/access.log"
ok "504: the client's id" test "$RID" = rid-504.site
ok "504: the worker logs the request under the same id" \
	wait_for 10 grep -q "\"request_id\":\"$RID\".*\"route\":\"policies_put\"" "$T/api.log"
# Without an id of its own the request gets nginx's on the 504 and the
# worker's in the worker's lines: nginx does not hand its id on (that cost
# ~5 % of the read throughput), so only nginx's three places must agree.
api POST '/v1/policies?wait=3' '{"scenario_id":"slow-2"}'
ok "504 without a client id" error_is 504 timeout
same_id "504 without a client id" 504 "$N2/access.log"
ok "504 without a client id: nginx's 32 hex digits" bash -c "[[ '$RID' =~ ^[0-9a-f]{32}\$ ]]"
api POST /v1/policies "" -H 'Content-Type: application/json' \
	--data-binary "@$T/huge.json" -H 'X-Request-Id: rid-413.site'
ok "the site file's nginx: 413 with the client's id" header_is X-Request-Id rid-413.site
same_id "the site file's nginx: 413" 413 "$N2/access.log"
API=$API1

# --- the writer's lines name the request they are about ---
wait_for 10 test -S "$EGW_RUN_DIR/egw-api-writer.sock" ||
	{ echo "Bail out! no writer socket"; exit 99; }
writer=$(cat "$EGW_RUN_DIR/egw-api.writer")
# Another process holds the write lock a little longer than one busy
# timeout (5 s): the writer's first BEGIN IMMEDIATE gives up and logs it,
# the retry succeeds.
rm -f "$T/locked"
(sqlite3 "$DB" <<SQL
.timeout 1000
BEGIN IMMEDIATE;
.shell touch '$T/locked'
.shell sleep 8
COMMIT;
SQL
) >/dev/null 2>&1 &
lockpid=$!
wait_for 5 test -e "$T/locked" || { echo "Bail out! no lock taken"; exit 99; }
api POST /v1/policies '{"scenario_id":"locked-1"}' -H 'X-Request-Id: rid-writer.1'
wait "$lockpid" 2>/dev/null
ok "the mutation waited for the lock and succeeded" status_is 201
# writer_line PREFIX: the writer's newest line whose msg starts so
writer_line() {
	jq -c --argjson p "$writer" --arg m "$1" \
		'select(.pid == $p and (.msg | startswith($m)))' "$T/api.log" 2>/dev/null |
		tail -n1 > "$T/wline"
	[ -s "$T/wline" ]
}
wline_has() { jq -e "$1" "$T/wline" >/dev/null; }
ok "the writer logged the busy BEGIN" writer_line 'BEGIN IMMEDIATE'
ok "the writer's line names the request" wline_has '.request_id == "rid-writer.1"'
# A line of the writer's own, after that operation: no request's id.
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
s.connect(sys.argv[1])
s.send(b"not a request")
s.recv(1)' "$EGW_RUN_DIR/egw-api-writer.sock" 2>/dev/null
ok "the writer logged the malformed message" wait_for 5 writer_line 'writer: malformed'
writer_line 'writer: malformed'
ok "a line outside any operation carries no request id" \
	wline_has 'has("request_id") | not'

# --- 503 from nginx: the pool is down ---
stop_api
api GET /health "" -H 'X-Request-Id: rid-503.down'
ok "nginx's 503 while the pool is down" error_is 503 unavailable
ok "503: Retry-After kept" header_is Retry-After 1
ok "503: the client's id in the header" header_is X-Request-Id rid-503.down
same_id "503 with a sane id" 503
api GET /health "" -H "X-Request-Id: $long200"
ok "503 with a 200-byte id: replaced" bash -c "[[ '$(resp_rid)' =~ $SANE && '$(resp_rid)' != '$long200' ]]"
same_id "503 with a 200-byte id" 503
e2e_done
