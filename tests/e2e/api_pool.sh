#!/bin/bash
# SPDX-License-Identifier: MIT
# The prefork pool's lifecycle through a real nginx: a worker killed with
# SIGKILL mid-load (found through the pool's own egw-api.workers file) is
# replaced and the pool keeps answering; concurrent upserts are committed
# in groups by the writer (egw-api.writer), which, killed mid-load, is
# replaced with every request answered; SIGHUP replaces every worker;
# SIGTERM lets an in-flight request finish, then removes the socket and
# the bookkeeping files and exits.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_pool
need_cmd python3 sqlite3

export EGW_AUTH=off
start_api 3
start_nginx
ok "pid file names the master" test "$(cat "$EGW_RUN_DIR/egw-api.pid")" = "$API_PID"
ok "three workers and the spares listed" test "$(wc -l < "$EGW_RUN_DIR/egw-api.workers")" -eq $((3 + EGW_SPARE_WORKERS))
# Load: 4 clients x 150 requests while a worker that is serving them is
# killed (one that just wrote an access line: with spares, a worker in
# a given slot may be parked).
load() {
	for i in $(seq 1 150); do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 "$API/v1/policies?limit=5"
	done > "$T/load.$1"
}
for c in 1 2 3 4; do load $c & eval "lp$c=\$!"; done
# Workers write their access lines in groups (EGW_LOG_FLUSH_MS): wait for
# the first rather than for a fixed time, which a loaded machine outran.
wait_for 10 grep -q '"func":"worker_log_request"' "$T/api.log"
victim=$(grep '"func":"worker_log_request"' "$T/api.log" | tail -n1 | grep -o '"pid":[0-9]*' | cut -d: -f2)
vslot=$(awk -v p="$victim" '$2 == p { print $1 }' "$EGW_RUN_DIR/egw-api.workers")
ok "a worker serving the load is in slot ${vslot:-?} ($victim)" bash -c "[ -n '$vslot' ] && kill -0 '$victim'"
ok "the worker is the master's child" test "$(ps -o ppid= -p "$victim" | tr -d ' ')" = "$API_PID"
kill -KILL "$victim"
for c in 1 2 3 4; do eval "wait \$lp$c"; done
ok "killed worker is gone" bash -c "! kill -0 $victim 2>/dev/null"
wait_for 5 bash -c "[ -n \"\$(awk '\$1 == $vslot { print \$2 }' '$EGW_RUN_DIR/egw-api.workers')\" ] && [ \"\$(awk '\$1 == $vslot { print \$2 }' '$EGW_RUN_DIR/egw-api.workers')\" != $victim ]"
new=$(api_worker_pid "$vslot")
ok "slot $vslot has a new worker ($new)" bash -c "[ -n '$new' ] && [ '$new' != '$victim' ] && kill -0 '$new'"
ok "the death was logged" grep -q "killed by signal 9" "$T/api.log"
total=$(cat "$T"/load.* | wc -l)
good=$(cat "$T"/load.* | grep -c '^200$')
diag "$good of $total requests during the kill answered 200"
ok "all 600 load requests were answered" test "$total" -eq 600
# At most the request the victim held can fail; everything else succeeds.
ok "at most one request failed with the kill" test $((total - good)) -le 1
for i in $(seq 1 30); do
	curl -s -o /dev/null -w '%{http_code}\n' "$API/health"
done > "$T/after"
ok "the pool answers every request after the kill" test "$(grep -c '^200$' "$T/after")" -eq 30
api GET /metrics
ok "metrics count the replacement" grep -q '^egw_api_workers_replaced_total 1$' "$T/body"

# ---- the writer: group commit, and its death under load ----
writer=$(cat "$EGW_RUN_DIR/egw-api.writer" 2>/dev/null)
ok "the writer is listed ($writer) and is the master's child" bash -c "[ -n '$writer' ] && [ \"\$(ps -o ppid= -p '$writer' | tr -d ' ')\" = '$API_PID' ]"
ok "the writer's socket is private (0600)" test "$(stat -c %a "$EGW_RUN_DIR/egw-api-writer.sock")" = 600
# upsert N ID: N upserts of scenario ID, each a new port; one status per line
upserts() {
	for i in $(seq 1 "$1"); do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 15 -X POST \
			-H 'Content-Type: application/json' \
			--data-binary "{\"scenario_id\":\"$2\",\"profile\":\"custom\",\"allowed_ports\":[$((1000 + i))]}" \
			"$API/v1/policies"
	done > "$T/up.$2"
}
# No applier runs here.  record_nudges FILE: a datagram socket in its
# place records the nudges (one line per datagram: magic version type
# generation) until stop_nudges.  Nudges are best effort (sent without
# blocking; the socket queues 10 datagrams here): checks never count them
# exactly.
record_nudges() {
	python3 - "$EGW_APPLIER_SOCKET" "$1" <<'PY' &
import signal, socket, struct, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "w") as out:
    while True:
        d = s.recv(64)
        if len(d) != 16:
            print("bad-size", len(d), file=out, flush=True)
            continue
        print(*struct.unpack("<IHHq", d), file=out, flush=True)
PY
	nudge_pid=$!
	track_pid "$nudge_pid"
	wait_for 5 test -S "$EGW_APPLIER_SOCKET" ||
		{ echo "Bail out! the nudge recorder did not start"; exit 99; }
}
# stop_nudges: after the last nudge has had time to arrive
stop_nudges() {
	sleep 0.3
	kill -TERM "$nudge_pid" 2>/dev/null
	wait "$nudge_pid" 2>/dev/null
	rm -f "$EGW_APPLIER_SOCKET"
}
record_nudges "$T/nudges"
for c in 1 2 3 4 5 6 7 8; do upserts 40 "w-$c" & eval "wp$c=\$!"; done
for c in 1 2 3 4 5 6 7 8; do eval "wait \$wp$c"; done
ok "320 concurrent upserts answered 201/200" test "$(cat "$T"/up.w-* | grep -c '^20[01]$')" -eq 320
api GET /metrics
batches=$(awk '$1 == "egw_api_write_batches_total" { print $2 }' "$T/body")
ops=$(awk '$1 == "egw_api_write_batched_ops_total" { print $2 }' "$T/body")
diag "writer: $ops operations in $batches transactions"
ok "every upsert went through the writer" test "${ops:-0}" -ge 320
ok "concurrent upserts shared transactions (group commit)" test "${batches:-0}" -gt 0 -a "${batches:-0}" -lt "${ops:-0}"
stop_nudges
desired=$(sqlite3 "$EGW_STATE_DIR/egw.db" 'SELECT desired_generation FROM applier_state')
nudges=$(wc -l < "$T/nudges")
diag "applier nudges: $nudges for $ops operations; desired generation $desired"
# 0x41574745 = "EGWA", version 1, type 1 (nudge)
ok "every nudge is a well-formed nudge datagram" \
	awk '$1 != 1096238917 || $2 != 1 || $3 != 1 || $4 < 1 { exit 1 }' "$T/nudges"
ok "the writer nudged the applier, once per flushed group ($nudges <= $batches)" \
	test "$nudges" -ge 1 -a "$nudges" -le "${batches:-0}"
ok "the last nudge names the last committed generation ($desired)" \
	test "$(sort -n -k4 "$T/nudges" | tail -1 | awk '{ print $4 }')" = "$desired"
for c in 1 2 3 4 5 6 7 8; do
	api GET "/v1/policies/w-$c"
	ok "w-$c: revision 40, last port (no lost update)" jq_is '"\(.revision) \(.allowed_ports[0])"' "40 1040"
done

# SIGKILL the writer mid-load: every request is answered; a request the
# writer took with it answers 503 (outcome unknown), nothing else fails;
# a new writer takes over.
for c in 1 2 3 4; do upserts 40 "k-$c" & eval "kp$c=\$!"; done
sleep 0.3
kill -KILL "$writer"
for c in 1 2 3 4; do eval "wait \$kp$c"; done
total=$(cat "$T"/up.k-* | wc -l)
good=$(cat "$T"/up.k-* | grep -c '^20[01]$')
unknown=$(cat "$T"/up.k-* | grep -c '^503$')
diag "writer killed: $good of $total upserts 200/201, $unknown 503"
ok "all 160 upserts were answered" test "$total" -eq 160
ok "only 200/201 or 503" test $((good + unknown)) -eq "$total"
# Only a request in the writer's hands when it died can be unknown: one
# per client at most (each has one in flight), and with the spares all
# four clients can be in a worker at once.
per_client=$(for c in 1 2 3 4; do grep -c '^503$' "$T/up.k-$c"; done | sort -n | tail -1)
ok "at most one 503 per client ($unknown in all, at most $per_client for one)" \
	test "$unknown" -le 4 -a "$per_client" -le 1
wait_for 5 bash -c "[ -s '$EGW_RUN_DIR/egw-api.writer' ] && [ \"\$(cat '$EGW_RUN_DIR/egw-api.writer')\" != '$writer' ]"
new_writer=$(cat "$EGW_RUN_DIR/egw-api.writer")
ok "a new writer runs ($new_writer)" bash -c "[ '$new_writer' != '$writer' ] && kill -0 '$new_writer'"
ok "the writer's death was logged" grep -q "writer (pid $writer) killed by signal 9" "$T/api.log"
for c in 1 2 3 4; do
	api GET "/v1/policies/k-$c"
	rev=$(jq -r .revision "$T/body")
	n2xx=$(grep -c '^20[01]$' "$T/up.k-$c")
	n503=$(grep -c '^503$' "$T/up.k-$c")
	ok "k-$c: revision $rev counts every confirmed write ($n2xx) plus at most the unknown ($n503)" \
		test "$rev" -ge "$n2xx" -a "$rev" -le $((n2xx + n503))
done
api POST /v1/policies '{"scenario_id":"after-writer","profile":"none"}'
ok "writes work after the writer was replaced" status_is 201

# No writer at all: a directory where its socket belongs makes every new
# writer fail at start (the pool retries with back-off).  Workers then
# write directly, queued with every other writer: nothing is lost, every
# request is answered, each write is counted and nudges the applier.
writer=$(cat "$EGW_RUN_DIR/egw-api.writer")
api GET /metrics
ops_before=$(awk '$1 == "egw_api_write_batched_ops_total" { print $2 }' "$T/body")
direct_before=$(awk '$1 == "egw_api_write_direct_total" { print $2 }' "$T/body")
rm -f "$EGW_RUN_DIR/egw-api-writer.sock"
mkdir "$EGW_RUN_DIR/egw-api-writer.sock"
kill -KILL "$writer"
wait_for 5 grep -q "cannot remove stale socket $EGW_RUN_DIR/egw-api-writer.sock" "$T/api.log"
ok "a new writer cannot start" grep -q "cannot remove stale socket $EGW_RUN_DIR/egw-api-writer.sock" "$T/api.log"
record_nudges "$T/nudges.direct"
for c in 1 2 3 4; do upserts 10 "d-$c" & eval "dp$c=\$!"; done
for c in 1 2 3 4; do eval "wait \$dp$c"; done
ok "40 concurrent upserts without a writer answered 201/200" \
	test "$(cat "$T"/up.d-* | grep -c '^20[01]$')" -eq 40
for c in 1 2 3 4; do
	api GET "/v1/policies/d-$c"
	ok "d-$c: revision 10, last port (no lost update without the writer)" \
		jq_is '"\(.revision) \(.allowed_ports[0])"' "10 1010"
done
api GET /metrics
ok "none of them went through a writer" \
	test "$(awk '$1 == "egw_api_write_batched_ops_total" { print $2 }' "$T/body")" = "$ops_before"
direct=$(awk '$1 == "egw_api_write_direct_total" { print $2 }' "$T/body")
ok "each was counted as a direct write ($direct_before before, $direct after)" \
	test "$((direct - direct_before))" -eq 40
stop_nudges
desired=$(sqlite3 "$EGW_STATE_DIR/egw.db" 'SELECT desired_generation FROM applier_state')
ok "the direct writes nudged the applier themselves ($(wc -l < "$T/nudges.direct") nudges, the last for $desired)" \
	test "$(sort -n -k4 "$T/nudges.direct" | tail -1 | awk '{ print $4 }')" = "$desired"
rmdir "$EGW_RUN_DIR/egw-api-writer.sock"
wait_for 20 test -S "$EGW_RUN_DIR/egw-api-writer.sock"
ok "with the path free again, a writer starts" test -S "$EGW_RUN_DIR/egw-api-writer.sock"
api POST /v1/policies '{"scenario_id":"after-direct","profile":"none"}'
ok "writes work again" status_is 201
api GET /metrics
ok "and go through the writer again" test "$(awk '$1 == "egw_api_write_batched_ops_total" { print $2 }' "$T/body")" -gt "$ops_before"

# SIGHUP: every worker is replaced, service continues.
before=$(awk '{ print $2 }' "$EGW_RUN_DIR/egw-api.workers" | sort | tr '\n' ' ')
kill -HUP "$API_PID"
# all_replaced: none of the workers before the SIGHUP is listed, and every
# slot has one.  (Waiting only for a change returned while the workers
# still finishing a request were listed, under a loaded machine.)
all_replaced() {
	local now
	now=" $(awk '{ print $2 }' "$EGW_RUN_DIR/egw-api.workers" | sort | tr '\n' ' ') "
	[ "$(wc -l < "$EGW_RUN_DIR/egw-api.workers")" -eq $((3 + EGW_SPARE_WORKERS)) ] || return 1
	for p in $before; do
		case $now in *" $p "*) return 1 ;; esac
	done
}
wait_for 20 all_replaced
ok "SIGHUP replaced the workers" all_replaced
api GET /health
ok "answers after SIGHUP" status_is 200
# The replacements wait in accept(), idle: a listening socket left
# non-blocking by a stopping worker made every worker spin.
cpu_ticks() { for p in $(awk '{ print $2 }' "$EGW_RUN_DIR/egw-api.workers"); do
	awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null; done | awk '{ s += $1 } END { print s + 0 }'; }
c0=$(cpu_ticks)
sleep 2
c1=$(cpu_ticks)
ok "idle workers after SIGHUP use no CPU ($((c1 - c0)) ticks in 2 s, all of them)" test $((c1 - c0)) -le 20

# SIGTERM with requests in flight (?wait holds every worker and spare) and
# more queued behind them in the socket's backlog: every one is answered,
# none cut (the queued ones were handed over by nginx already).
n_busy=$((3 + EGW_SPARE_WORKERS))
cpids=""
for i in $(seq 1 "$n_busy"); do
	curl -s -o "$T/inflight.$i.body" -w '%{http_code}' --max-time 20 -X POST \
		-H 'Content-Type: application/json' --data-binary "{\"scenario_id\":\"term-$i\"}" \
		"$API/v1/policies?wait=8" > "$T/inflight.$i.status" &
	cpids="$cpids $!"
done
sleep 1
qpids=""
for i in 1 2 3 4; do
	curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$API/health" > "$T/queued.$i.status" &
	qpids="$qpids $!"
done
sleep 0.7
# The master's children, recorded now: once the master has exited, a
# survivor would have been reparented, and no longer be its child.
children="$(awk '{ print $2 }' "$EGW_RUN_DIR/egw-api.workers") $(cat "$EGW_RUN_DIR/egw-api.writer")"
t0=$(date +%s)
kill -TERM "$API_PID"
wait $cpids $qpids
t1=$(date +%s)
ok "the waiting requests gave up at once on SIGTERM ($((t1 - t0)) s)" test $((t1 - t0)) -le 3
codes() { for f in "$@"; do cat "$f"; echo; done; }
ok "each in-flight request got its answer (202 pending): $(codes "$T"/inflight.*.status | tr '\n' ' ')" \
	test "$(codes "$T"/inflight.*.status | sort -u)" = 202
ok "in-flight answer is the policy" bash -c "jq -e '.scenario_id == \"term-1\"' '$T/inflight.1.body' >/dev/null"
ok "each request queued in the backlog was served, not reset: $(codes "$T"/queued.*.status | tr '\n' ' ')" \
	test "$(codes "$T"/queued.*.status | sort -u)" = 200
wait_for 15 bash -c "! kill -0 $API_PID 2>/dev/null"
ok "the master exited after SIGTERM" bash -c "! kill -0 $API_PID 2>/dev/null"
ok "it stopped well within the grace period" test $(( $(date +%s) - t0 )) -lt 10
ok "socket removed" test ! -e "$EGW_FCGI_SOCKET"
ok "pid and worker files removed" test ! -e "$EGW_RUN_DIR/egw-api.pid" -a ! -e "$EGW_RUN_DIR/egw-api.workers"
# survivors: the recorded children still alive
survivors() {
	for p in $children; do kill -0 "$p" 2>/dev/null && echo "$p"; done
}
none_left() { [ -z "$(survivors)" ]; }
wait_for 5 none_left
ok "no worker or writer left behind (of $(echo $children | wc -w) recorded; alive: $(survivors | tr '\n' ' '))" \
	none_left
api GET /health
ok "nginx answers 503 JSON while the pool is down" error_is 503 unavailable
e2e_done
