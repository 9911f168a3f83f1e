#!/bin/bash
# SPDX-License-Identifier: MIT
# The API worker and the applier under valgrind memcheck for a short
# scripted session:
#  - egw-api (one worker, forked under valgrind) behind a real nginx:
#    creates, updates, reads, lists and error paths (422, 400, 404, 405);
#    memcheck must report no error, and the worker's memory must not grow
#    with the number of requests: a session of 100 requests and one of
#    10,000 (each a fresh worker under valgrind) end with the same bytes
#    in use at exit and nothing definitely or indirectly lost;
#  - egw-applier in a namespace of its own, enforcing (DRY_RUN=false),
#    through 40 policy changes: no memcheck error, nothing definitely lost.
# Every phase is bounded in requests and time.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_netns.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_hardening.sh"
e2e_init valgrind
need_cmd valgrind curl jq sqlite3 wrk
# valgrind cannot run AddressSanitizer binaries; the plain build runs this.
if ldd "$(egw_bin egw-api)" 2>/dev/null | grep -q libasan; then
	skip_all "sanitizer build (valgrind and ASan exclude each other; the plain build runs this test)"
fi

VG="valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect
 --errors-for-leak-kinds=definite --track-origins=no --vgdb=yes --vgdb-error=999999
 --child-silent-after-fork=no --trace-children=no
 --suppressions=$EGW_TOP_SRCDIR/tests/e2e/valgrind.supp"

# --- API ------------------------------------------------------------------
export EGW_AUTH=off EGW_WORKERS=1 EGW_SPARE_WORKERS=0 EGW_LOG_LEVEL=warn
api_env
# A mixed scripted session: update (unchanged after the first), read, list,
# invalid body, malformed body, unknown policy, wrong method, profiles.
# Built in init(): only then does wrk.headers carry the Host header.
cat > "$T/mix.lua" <<'LUA'
local reqs = {}
init = function(args)
  local j = {["Content-Type"]="application/json"}
  reqs = {
    wrk.format("POST", "/v1/policies", j,
      '{"scenario_id":"vg","profile":"custom","sources":["100.64.30.0/24"],"allowed_hosts":["203.0.113.5"],"allowed_ports":[443,"8000-8100"]}'),
    wrk.format("GET", "/v1/policies/vg"),
    wrk.format("GET", "/v1/policies?limit=5"),
    wrk.format("POST", "/v1/policies", j,
      '{"scenario_id":"vg","profile":"custom","allowed_ports":[0],"allowed_hosts":["x; flush ruleset"]}'),
    wrk.format("POST", "/v1/policies", j, '{"scenario_id":'),
    wrk.format("GET", "/v1/policies/nosuch"),
    wrk.format("PUT", "/v1/policies/vg"),
    wrk.format("GET", "/v1/profiles"),
  }
end
local i = 0
request = function() i = i + 1; return reqs[(i % #reqs) + 1] end
done = function(summary, latency, requests)
  io.write(string.format("REQUESTS %d ERRORS %d\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
LUA
# session N: a fresh egw-api under valgrind (one worker, no spare: every
# request in the same process), at least N requests (wrk runs
# by time; rounds are bounded), then SIGTERM; sets S_REQ, S_BAD, S_LOG
session() {
	want=$1
	# shellcheck disable=SC2086
	$VG --log-file="$T/vg-api-$want.%p.log" "$(egw_bin egw-api)" >> "$T/api.log" 2>&1 &
	API_PID=$!
	track_pid "$API_PID"
	wait_for 60 api_workers_ready 1 || { echo "Bail out! no worker under valgrind"; exit 99; }
	[ -n "${API:-}" ] || start_nginx
	wpid=$(api_worker_pid 0)
	S_REQ=0 S_BAD=0 rounds=0
	while [ "$S_REQ" -lt "$want" ] && [ $rounds -lt 30 ]; do
		rounds=$((rounds + 1))
		wrk -t1 -c1 -d"$2" -s "$T/mix.lua" "$API" > "$T/wrk.out" 2>&1
		S_REQ=$((S_REQ + $(awk '/^REQUESTS/ { print $2 }' "$T/wrk.out")))
		S_BAD=$((S_BAD + $(awk '/^REQUESTS/ { print $4 }' "$T/wrk.out")))
	done
	S_SAME=1
	[ "$(api_worker_pid 0)" = "$wpid" ] || S_SAME=0
	stop_api
	S_LOG="$T/vg-api-$want.$wpid.log"
	S_MASTER="$T/vg-api-$want.$API_PID.log"
	wait_for 30 grep -q "ERROR SUMMARY" "$S_LOG"
}
inuse() { awk '/in use at exit:/ { gsub(",", "", $6); print $6 }' "$1"; }
lost() { awk '/definitely lost:|indirectly lost:/ { gsub(",", "", $4); n += $4 } END { print n + 0 }' "$1"; }

session 100 1s
ok "session 1: $S_REQ requests, no socket error ($S_BAD)" test "$S_REQ" -ge 100 -a "$S_BAD" -eq 0
log1=$S_LOG
grep -q '"status":"201"\|"status":"200"' "$T/api.log"
ok "session 1: the worker answered 2xx and 4xx (real work, not nginx errors)" \
	bash -c "grep -q '\"status\":200' '$T/nginx/access.log' && grep -q '\"status\":422' '$T/nginx/access.log'"
ok "session 1: one worker throughout" test "$S_SAME" = 1
ok "session 1 worker: memcheck found no error" grep -q "ERROR SUMMARY: 0 errors" "$log1"
ok "session 1 master: memcheck found no error" grep -q "ERROR SUMMARY: 0 errors" "$S_MASTER"
session 10000 10s
log2=$S_LOG
ok "session 2: $S_REQ requests, no socket error ($S_BAD)" test "$S_REQ" -ge 10000 -a "$S_BAD" -eq 0
ok "session 2: one worker throughout" test "$S_SAME" = 1
ok "session 2 worker: memcheck found no error" grep -q "ERROR SUMMARY: 0 errors" "$log2" ||
	grep -A12 -m3 "Invalid\|uninitialised\|definitely lost in" "$log2" | head -n 40 | sed 's/^/# /'
diag "worker heap at exit: $(inuse "$log1") B after 100+ requests, $(inuse "$log2") B after $S_REQ"
ok "nothing lost, after 100 or 10,000 requests ($(lost "$log1") / $(lost "$log2") B)" \
	test "$(lost "$log1")" -eq 0 -a "$(lost "$log2")" -eq 0
ok "worker memory after 10,000 requests equals after 100 ($(inuse "$log1") = $(inuse "$log2") B in use)" \
	test "$(inuse "$log1")" = "$(inuse "$log2")"

# Session 3: one worker and one spare (src/spare.c), four clients, so
# writes waiting for the writer let the spare accept; every process of
# the pool (master, writer, both workers) ends with no memcheck error and
# nothing lost.
EGW_SPARE_WORKERS=1 EGW_LOG_LEVEL=info
# shellcheck disable=SC2086
$VG --log-file="$T/vg-spare.%p.log" "$(egw_bin egw-api)" > "$T/api-spare.log" 2>&1 &
API_PID=$!
track_pid "$API_PID"
wait_for 60 api_workers_ready 2 || { echo "Bail out! no workers under valgrind"; exit 99; }
wrk -t2 -c4 -d8s -s "$T/mix.lua" "$API" > "$T/wrk.out" 2>&1
s_req=$(awk '/^REQUESTS/ { print $2 }' "$T/wrk.out")
s_bad=$(awk '/^REQUESTS/ { print $4 }' "$T/wrk.out")
stop_api
# After the stop: workers hold access lines up to EGW_LOG_FLUSH_MS.
served=$(grep '"func":"worker_log_request"' "$T/api-spare.log" | grep -o '"pid":[0-9]*' | sort -u | wc -l)
ok "session 3: $s_req requests, no socket error ($s_bad)" test "${s_req:-0}" -ge 100 -a "${s_bad:-1}" -eq 0
ok "session 3: both the worker and the spare served requests ($served)" test "$served" -eq 2
vg_logs=$(ls "$T"/vg-spare.*.log)
ok "session 3: valgrind logged every process ($(echo $vg_logs | wc -w): master, writer, 2 workers)" \
	test "$(echo $vg_logs | wc -w)" -eq 4
for f in $vg_logs; do wait_for 30 grep -q "ERROR SUMMARY" "$f"; done
ok "session 3: memcheck found no error in any of them" \
	bash -c "for f in $(echo $vg_logs); do grep -q 'ERROR SUMMARY: 0 errors' \$f || exit 1; done" ||
	grep -h -A12 -m3 "Invalid\|uninitialised\|definitely lost in" $vg_logs | head -n 40 | sed 's/^/# /'
lost_spare=0
for f in $vg_logs; do lost_spare=$((lost_spare + $(lost "$f"))); done
ok "session 3: nothing definitely or indirectly lost ($lost_spare B)" test "$lost_spare" -eq 0

# --- applier ---------------------------------------------------------------------
hard_gw_netns
applier_env
export EGW_RECONCILE_INTERVAL=1
# shellcheck disable=SC2086
ip netns exec "$NS_GW" $VG --log-file="$T/vg-applier.%p.log" \
	"$(egw_bin egw-applier)" >> "$T/applier.log" 2>&1 &
APPLIER_PID=$!
track_pid "$APPLIER_PID"
ok "applier starts under valgrind" wait_for 90 test -S "$EGW_RUN_DIR/applier.sock"
changes=0
exec 3>&2 2>> "$T/policy.log"	# egw-policy's "not_found" for deletes of absent ids
for i in $(seq 1 40); do
	case $((i % 4)) in
	0) policy put "{\"scenario_id\":\"va$((i % 7))\",\"profile\":\"custom\",\"sources\":[\"100.64.40.$i/32\"],\"allowed_hosts\":[\"203.0.113.$i\"],\"allowed_ports\":[$((1000 + i))]}" ;;
	1) policy put "{\"scenario_id\":\"vb$((i % 5))\",\"profile\":\"training-updates\",\"sources\":[\"100.64.41.$i/32\"],\"mode\":\"audit\"}" ;;
	2) policy disable "va$((i % 7))" || policy put "{\"scenario_id\":\"vc$i\",\"sources\":[\"100.64.42.$i/32\"]}" ;;
	3) policy delete "vb$((i % 5))" || true ;;
	esac
	changes=$((changes + 1))
	[ $((i % 10)) = 0 ] && wait_for 60 gen_applied
done
exec 2>&3 3>&-
ok "the applier applied $changes changes under valgrind" wait_for 60 gen_applied
ok "the kernel table is there" bash -c "ip netns exec $NS_GW nft list table inet forge_egress > /dev/null"
stop_applier
alog=$(ls "$T"/vg-applier.*.log | head -n1)
ok "applier: valgrind wrote its summary" wait_for 30 grep -q "ERROR SUMMARY" "$alog"
ok "applier: memcheck found no error" grep -q "ERROR SUMMARY: 0 errors" "$alog" ||
	grep -A12 -m3 "Invalid\|uninitialised\|definitely lost in" "$alog" | head -n 40 | sed 's/^/# /'
ok "applier: nothing definitely lost" bash -c "! grep -q 'definitely lost: [1-9]' '$alog'"
e2e_done
