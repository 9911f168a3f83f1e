# SPDX-License-Identifier: MIT
# Helpers of the API scenarios (api_*.sh); source after lib.sh.
#
#   start_api [WORKERS]     egw-api pool on a socket under $T (pid tracked),
#                           with $EGW_SPARE_WORKERS spares (default 2)
#   start_nginx             a real nginx with the rendered site on a free
#                           loopback port; sets API (http://127.0.0.1:PORT)
#   mint_token NAME SCOPES  prints a new token (egw-admin token create)
#   api_lines_at_least PATTERN N
#                           api.log has N lines with PATTERN (access lines
#                           come up to EGW_LOG_FLUSH_MS late: wait_for it)
#   api METHOD PATH [BODY] [CURL ARGS...]
#                           one request; the status goes to $T/status, the
#                           headers to $T/headers, the body to $T/body
#
# Everything runs with EGW_STATE_DIR/EGW_RUN_DIR under $T, so a test never
# sees another test's database or socket.

api_env() {
	egw_env
	export EGW_FCGI_SOCKET="$T/run/api.sock"
	export EGW_APPLIER_SOCKET="$T/run/applier.sock"
	export EGW_HTTP_LISTEN="127.0.0.1:${API_PORT:-8089}"
	# Two spares (spare.h) unless a test says otherwise: every scenario
	# runs with some, without the program's eight per test.
	export EGW_SPARE_WORKERS="${EGW_SPARE_WORKERS:-2}"
}

# start_api [WORKERS]: the pool; waits for its socket and worker list.
# $API_PRELOAD, when set, is the pool's LD_PRELOAD (fault injection).
start_api() {
	need_cmd curl jq
	api_env
	export EGW_WORKERS="${1:-4}"
	env ${API_PRELOAD:+LD_PRELOAD="$API_PRELOAD"} "$(egw_bin egw-api)" >> "$T/api.log" 2>&1 &
	API_PID=$!
	track_pid "$API_PID"
	wait_for 10 test -S "$EGW_FCGI_SOCKET" ||
		{ echo "Bail out! egw-api did not create its socket"; exit 99; }
	wait_for 10 api_workers_ready "$((EGW_WORKERS + EGW_SPARE_WORKERS))" ||
		{ echo "Bail out! egw-api workers did not start"; exit 99; }
}

api_workers_ready() {
	[ -f "$EGW_RUN_DIR/egw-api.workers" ] &&
		[ "$(wc -l < "$EGW_RUN_DIR/egw-api.workers")" -eq "$1" ]
}

# api_lines_at_least PATTERN N: api.log has N lines with PATTERN (a
# worker writes its access lines up to EGW_LOG_FLUSH_MS, 1 s, late).
api_lines_at_least() {
	[ "$(grep -c -- "$1" "$T/api.log")" -ge "$2" ]
}

# The PID of the worker in slot $1, from the pool's own bookkeeping.
api_worker_pid() {
	awk -v s="$1" '$1 == s { print $2 }' "$EGW_RUN_DIR/egw-api.workers"
}

stop_api() {
	kill -TERM "$API_PID" 2>/dev/null
	wait "$API_PID" 2>/dev/null
}

start_nginx() {
	need_cmd nginx curl
	mkdir -p "$T/nginx"
	# free_port only sees listeners; a client socket can still hold the
	# port, so a failed bind is retried on another one.
	for attempt in 1 2 3 4 5; do
		API_PORT=$(free_port)
		"$EGW_TOP_SRCDIR/scripts/render-nginx-conf" --standalone "$T/nginx" \
			--listen "127.0.0.1:$API_PORT" --socket "$EGW_FCGI_SOCKET" \
			--max-body "${EGW_MAX_BODY:-262144}" > "$T/nginx/nginx.conf" ||
			{ echo "Bail out! cannot render the nginx config"; exit 99; }
		nginx -t -q -e "$T/nginx/error.log" -c "$T/nginx/nginx.conf" 2>>"$T/nginx.log" ||
			{ echo "Bail out! nginx rejects the rendered config"; cat "$T/nginx.log"; exit 99; }
		nginx -e "$T/nginx/error.log" -c "$T/nginx/nginx.conf" -g 'daemon off;' \
			>> "$T/nginx.log" 2>&1 &
		NGINX_PID=$!
		track_pid "$NGINX_PID"
		API="http://127.0.0.1:$API_PORT"
		export API API_PORT
		i=0
		while [ $i -lt 200 ] && kill -0 "$NGINX_PID" 2>/dev/null; do
			curl -s -o /dev/null "$API/healthz" && return 0
			sleep 0.05
			i=$((i + 1))
		done
		kill -TERM "$NGINX_PID" 2>/dev/null
		wait "$NGINX_PID" 2>/dev/null
	done
	echo "Bail out! nginx did not answer"
	exit 99
}

# egw-admin token until the command is wired into egw-admin, then the same
# code through the test wrapper (same function, admin_token_main).
mint_token() {
	# The token commands need the database to exist (egw-admin refuses
	# to create one); a test may mint before its pool starts.
	[ -e "$EGW_STATE_DIR/egw.db" ] || "$(egw_bin egw-admin)" migrate > /dev/null
	if "$(egw_bin egw-admin)" token list >/dev/null 2>&1; then
		"$(egw_bin egw-admin)" token create "$1" "$2"
	else
		"$(egw_bin tests/e2e/egw-token)" token create "$1" "$2"
	fi
}

token_cmd() {
	if "$(egw_bin egw-admin)" token list >/dev/null 2>&1; then
		"$(egw_bin egw-admin)" token "$@"
	else
		"$(egw_bin tests/e2e/egw-token)" token "$@"
	fi
}

# api METHOD PATH [BODY] [extra curl args]; uses $TOKEN when set.
api() {
	m=$1 p=$2
	shift 2
	body=
	if [ $# -gt 0 ]; then body=$1; shift; fi
	set -- -sS -o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$m" \
		--max-time 40 "$@"
	if [ -n "${TOKEN:-}" ]; then
		set -- -H "Authorization: Bearer $TOKEN" "$@"
	fi
	if [ -n "$body" ]; then
		set -- -H 'Content-Type: application/json' --data-binary "$body" "$@"
	fi
	curl "$@" "$API$p" > "$T/status" 2>>"$T/curl.log" || echo 000 > "$T/status"
}

status_is() { [ "$(cat "$T/status")" = "$1" ] || { diag "status $(cat "$T/status"), want $1: $(head -c 400 "$T/body")"; return 1; }; }
# jq_is FILTER VALUE: the body's FILTER (jq -r) equals VALUE
jq_is() {
	got=$(jq -r "$1" < "$T/body" 2>/dev/null)
	[ "$got" = "$2" ] || { diag "$1 = '$got', want '$2'"; return 1; }
}
header_is() {
	got=$(grep -i "^$1:" "$T/headers" | head -n1 | cut -d' ' -f2- | tr -d '\r')
	[ "$got" = "$2" ] || { diag "header $1 = '$got', want '$2'"; return 1; }
}
# jqe FILTER: jq -e on the body, quietly
jqe() { jq -e "$1" < "$T/body" >/dev/null || { diag "jq $1 false on: $(head -c 400 "$T/body")"; return 1; }; }
# error_is STATUS CODE: status line and {"error":{"code"}} both match
error_is() {
	status_is "$1" && jq_is .error.code "$2" && jq -e '.request_id | type == "string"' \
		< "$T/body" >/dev/null
}
