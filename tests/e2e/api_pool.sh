#!/bin/bash
# SPDX-License-Identifier: MIT
# The prefork pool's lifecycle through a real nginx: a worker killed with
# SIGKILL mid-load (found through the pool's own egw-api.workers file) is
# replaced and the pool keeps answering; SIGHUP replaces every worker;
# SIGTERM lets an in-flight request finish, then removes the socket and
# the bookkeeping files and exits.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_pool

export EGW_AUTH=off
start_api 3
start_nginx
ok "pid file names the master" test "$(cat "$EGW_RUN_DIR/egw-api.pid")" = "$API_PID"
ok "three workers listed" test "$(wc -l < "$EGW_RUN_DIR/egw-api.workers")" -eq 3
victim=$(api_worker_pid 1)
ok "slot 1 has a live worker ($victim)" kill -0 "$victim"
ok "the worker is the master's child" test "$(ps -o ppid= -p "$victim" | tr -d ' ')" = "$API_PID"

# Load: 4 clients x 150 requests while the worker is killed.
load() {
	for i in $(seq 1 150); do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 "$API/v1/policies?limit=5"
	done > "$T/load.$1"
}
for c in 1 2 3 4; do load $c & eval "lp$c=\$!"; done
sleep 0.3
kill -KILL "$victim"
for c in 1 2 3 4; do eval "wait \$lp$c"; done
ok "killed worker is gone" bash -c "! kill -0 $victim 2>/dev/null"
wait_for 5 bash -c "[ -n \"\$(awk '\$1 == 1 { print \$2 }' '$EGW_RUN_DIR/egw-api.workers')\" ] && [ \"\$(awk '\$1 == 1 { print \$2 }' '$EGW_RUN_DIR/egw-api.workers')\" != $victim ]"
new=$(api_worker_pid 1)
ok "slot 1 has a new worker ($new)" bash -c "[ -n '$new' ] && [ '$new' != '$victim' ] && kill -0 '$new'"
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

# SIGHUP: every worker is replaced, service continues.
before=$(awk '{ print $2 }' "$EGW_RUN_DIR/egw-api.workers" | sort | tr '\n' ' ')
kill -HUP "$API_PID"
wait_for 5 bash -c "[ \"\$(awk '{ print \$2 }' '$EGW_RUN_DIR/egw-api.workers' | sort | tr '\n' ' ')\" != '$before' ] && [ \$(wc -l < '$EGW_RUN_DIR/egw-api.workers') -eq 3 ]"
after=$(awk '{ print $2 }' "$EGW_RUN_DIR/egw-api.workers" | sort | tr '\n' ' ')
ok "SIGHUP replaced the workers" bash -c "for p in $before; do case ' $after ' in *\" \$p \"*) exit 1;; esac; done"
api GET /health
ok "answers after SIGHUP" status_is 200

# SIGTERM with a request in flight (?wait holds it): it is answered, not cut.
curl -s -o "$T/inflight.body" -w '%{http_code}' --max-time 20 -X POST \
	-H 'Content-Type: application/json' --data-binary '{"scenario_id":"term-1"}' \
	"$API/v1/policies?wait=8" > "$T/inflight.status" &
cpid=$!
sleep 0.7
t0=$(date +%s)
kill -TERM "$API_PID"
wait "$cpid"
t1=$(date +%s)
ok "the waiting request gave up at once on SIGTERM ($((t1 - t0)) s)" test $((t1 - t0)) -le 3
ok "the in-flight request got its answer (202 pending)" test "$(cat "$T/inflight.status")" = 202
ok "in-flight answer is the policy" bash -c "jq -e '.scenario_id == \"term-1\"' '$T/inflight.body' >/dev/null"
wait_for 15 bash -c "! kill -0 $API_PID 2>/dev/null"
ok "the master exited after SIGTERM" bash -c "! kill -0 $API_PID 2>/dev/null"
ok "it stopped well within the grace period" test $(( $(date +%s) - t0 )) -lt 10
ok "socket removed" test ! -e "$EGW_FCGI_SOCKET"
ok "pid and worker files removed" test ! -e "$EGW_RUN_DIR/egw-api.pid" -a ! -e "$EGW_RUN_DIR/egw-api.workers"
ok "no worker left behind" bash -c "! pgrep -P $API_PID >/dev/null"
api GET /health
ok "nginx answers 503 JSON while the pool is down" error_is 503 unavailable
e2e_done
