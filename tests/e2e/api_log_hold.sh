#!/bin/bash
# SPDX-License-Identifier: MIT
# The API workers' held access lines (EGW_LOG_FLUSH_MS, log_hold()),
# through a real nginx and the real pool: a worker's info lines wait; its
# warning (a 5xx answer's line, here /readyz's 503 with no applier) goes
# out at once, after the lines held before it; a change writes what the
# worker holds before it waits for the writer; an idle worker writes what
# it holds when its accept wakes (every second at most); a busy one
# within EGW_LOG_FLUSH_MS; a stopped pool has written the line of every
# request it answered, once; under 8 clients every line arrives whole,
# once, as strict JSON; EGW_LOG_FLUSH_MS=0 writes each line as before.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_log_hold
need_cmd jq xargs

export EGW_AUTH=off EGW_SPARE_WORKERS=0

# logged RID: how many access lines of api.log carry that request id
# (the writer's own lines about a change carry it too, written at once)
logged() { grep -c "\"msg\":\"request\",\"request_id\":\"$1\"" "$T/api.log"; }
logged_once() { [ "$(logged "$1")" = 1 ]; }
# line_of RID: the number of the api.log line of that request's access line
line_of() { grep -n "\"msg\":\"request\",\"request_id\":\"$1\"" "$T/api.log" | head -n1 | cut -d: -f1; }
# soon CMD...: CMD succeeds within 0.5 s (an idle worker's accept wakes,
# and writes what it holds, a second after its last request)
soon() {
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

# --- one worker holding for 10 s: what waits, what does not ---
export EGW_LOG_FLUSH_MS=10000
start_api 1
start_nginx
wait_for 10 test -S "$EGW_RUN_DIR/egw-api-writer.sock" ||
	{ echo "Bail out! the writer did not start"; exit 99; }

api GET /v1/policies/none "" -H 'X-Request-Id: held-1'
ok "its access line is held: not written when the answer is in" \
	test "$(logged held-1)" = 0
ok "a read answered (404)" status_is 404

api GET /readyz "" -H 'X-Request-Id: held-2'
ok "/readyz with no applier answers 503" status_is 503
ok "that answer's line, a warning, is written at once (within 0.5 s)" \
	soon grep -q '"level":"warn".*"request_id":"held-2".*"status":"503"' "$T/api.log"
# (/readyz steps out to probe the database, which writes held-1's line
# first; a warning after held lines is test_log's.)
ok "the line held before it is written too, once" logged_once held-1
ok "and in order: the earlier request's line first" \
	test "$(line_of held-1)" -lt "$(line_of held-2)"

api GET /v1/policies/none "" -H 'X-Request-Id: held-3'
t0=$(date +%s%N)
api POST /v1/policies '{"scenario_id":"h-1","profile":"custom","allowed_ports":[1001]}' \
	-H 'Content-Type: application/json' -H 'X-Request-Id: held-4'
ok "its own line is held" test "$(logged held-4)" = 0
ok "a change answered (201)" status_is 201
ok "the line held before it was written as it waited for the writer (within 0.5 s)" \
	soon logged_once held-3
ok "an idle worker writes its held line when its accept wakes (1 s)" \
	wait_for 3 logged_once held-4
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
diag "the line came ${waited} ms after the request"
ok "and not much before (>= 500 ms after the request)" test "$waited" -ge 500

api GET /v1/policies/none "" -H 'X-Request-Id: held-5'
stop_api
ok "a stopped pool has written the line of its last request" logged_once held-5
ok "no access line was written twice" \
	test "$(grep '"msg":"request"' "$T/api.log" | grep -o '"request_id":"held-[0-9]*"' | sort | uniq -d | wc -l)" = 0

# --- the default (1000 ms), four workers, eight clients at once ---
unset EGW_LOG_FLUSH_MS
: > "$T/api.log"
start_api 4
seq 1 400 | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' \
	-H 'X-Request-Id: many-{}' "$API/v1/policies/none" > "$T/codes"
ok "400 reads from 8 clients answered 404" \
	test "$(grep -c '^404$' "$T/codes")" = 400
t0=$(date +%s%N)
every_line() {
	[ "$(grep -c '"request_id":"many-' "$T/api.log")" -ge 400 ]
}
ok "every access line is written within the default 1 s (3 s allowed)" \
	wait_for 3 every_line
diag "the last came within $(( ($(date +%s%N) - t0) / 1000000 )) ms of the last answer"
ok "each once" \
	test "$(grep -o '"request_id":"many-[0-9]*"' "$T/api.log" | sort -u | wc -l)" = 400
ok "every line of the log is whole, strict JSON" \
	jq -e -s 'length > 400' "$T/api.log"
ok "and says its status" \
	test "$(jq -r 'select(.request_id // "" | startswith("many-")) | .status' "$T/api.log" | grep -c '^404$')" = 400

# A worker kept busy (a request every ~150 ms: its accept never waits a
# second, and 14 lines, which would fill a write, take ~2 s) still writes
# a line within EGW_LOG_FLUSH_MS.
stop_api
start_api 1
api GET /v1/policies/none "" -H 'X-Request-Id: busy-0'
t0=$(date +%s%N)
while ! logged_once busy-0 && [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 3000 ]; do
	curl -s -o /dev/null "$API/v1/policies/none"
	sleep 0.15
done
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
ok "a busy worker writes its held line within 1 s (${waited} ms; 1.5 s allowed)" \
	test "$waited" -lt 1500
stop_api

# --- EGW_LOG_FLUSH_MS=0: each line at once, as before ---
export EGW_LOG_FLUSH_MS=0
start_api 1
api GET /v1/policies/none "" -H 'X-Request-Id: now-1'
ok "with EGW_LOG_FLUSH_MS=0 the line is written with the answer (within 0.5 s)" \
	soon logged_once now-1
stop_api

e2e_done
