#!/bin/bash
# SPDX-License-Identifier: MIT
# Spare workers (src/spare.h) through a real nginx.  With EGW_WORKERS=2
# and EGW_SPARE_WORKERS=2 all four run, but reads are served by two of
# them only (the spares stay parked, so reads keep two workers' warm
# caches).  A mutation that waits (?wait=, with no applier running) lets a
# spare accept: with EGW_WORKERS=1 a read during the wait is answered at
# once, where without a spare it waits for the mutation (the control).
# SIGTERM stops parked spares as fast as the others.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_spare
need_cmd python3

export EGW_AUTH=off EGW_SPARE_WORKERS=2
start_api 2
start_nginx
ok "four workers listed (two accepting, two spares)" \
	test "$(wc -l < "$EGW_RUN_DIR/egw-api.workers")" -eq 4
ok "the master says so" grep -q "with 2 workers and 2 spares" "$T/api.log"

# reads TAG N: 4 clients x N reads with request ids TAG-...; prints how
# many workers served them (their access lines carry pid and request id)
reads() {
	for c in 1 2 3 4; do
		( for i in $(seq 1 "$2"); do
			curl -s -o /dev/null -H "X-Request-Id: $1-$c-$i" "$API/v1/policies?limit=1"
		done ) &
		eval "rp$c=\$!"
	done
	for c in 1 2 3 4; do eval "wait \$rp$c"; done
	wait_for 3 api_lines_at_least "\"request_id\":\"$1-" $((4 * $2))
	grep "\"request_id\":\"$1-" "$T/api.log" | grep -o '"pid":[0-9]*' | sort -u | wc -l
}

# Workers that all started at the same moment may all accept at first;
# the surplus parks after its first request.
reads warm 5 > /dev/null
readers=$(reads read 50)
served=$(grep -c '"request_id":"read-' "$T/api.log")
ok "200 reads answered ($served access lines)" test "$served" -eq 200
ok "by the two accepting workers only ($readers)" test "$readers" -le 2

# Writes, 8 at a time, each waiting for the disk flush: more of them are
# in flight than accepting workers, so spares take part.  Each scenario
# its own networks: a network_id derives one interface, one scenario's.
for c in $(seq 1 8); do
	( for i in $(seq 1 15); do
		curl -s -o /dev/null -w '%{http_code}\n' -H "X-Request-Id: write-$c-$i" \
			-H 'Content-Type: application/json' -X POST \
			--data-binary "{\"scenario_id\":\"sp-$c\",\"allowed_ports\":[],\"network_id\":\"n$c-$i\"}" \
			"$API/v1/policies"
	done > "$T/writes.$c" ) &
	eval "wp$c=\$!"
done
for c in $(seq 1 8); do eval "wait \$wp$c"; done
ok "120 writes answered 200 or 201" test "$(cat "$T"/writes.* | grep -cE '^20[01]$')" -eq 120
wait_for 3 api_lines_at_least '"request_id":"write-' 120
writers=$(grep '"request_id":"write-' "$T/api.log" | grep -o '"pid":[0-9]*' | sort -u | wc -l)
ok "writes were served by more than the two accepting workers ($writers)" test "$writers" -gt 2
readers=$(reads again 25)
ok "after the writes, reads are back on two workers ($readers)" test "$readers" -le 2
census() {
	curl -s "$API/metrics" | awk '/^egw_api_workers_by_state/ {
		sub(/.*state="/, ""); sub(/"}/, ""); printf "%s=%s ", $1, $2 }'
}
now=$(census)
ok "/metrics: two accepting, none waiting, two parked ($now)" \
	test "$now" = "accepting=2 waiting=0 parked=2 "

t0=$(date +%s%N)
stop_api
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
ok "SIGTERM stops every worker, parked ones too, in ${ms} ms (< 3000)" test "$ms" -lt 3000
ok "none had to be killed" bash -c "! grep -q 'killing them' '$T/api.log'"

# read_during_wait SPARES: three times, a mutation waits 2 s for an
# applier that is not running and a read is sent 0.2 s into the wait;
# prints the slowest read's time in ms.  A parked spare also wakes on its
# own every 5 s (SPARE_PARK_S), so a spare that was not woken by the
# mutation would make at least one of three reads wait (about 1 - (1.2 /
# 5)^3 of the time).
read_during_wait() {
	export EGW_SPARE_WORKERS=$1
	start_api 1
	worst=0
	for round in 1 2 3; do
		curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
			--data-binary "{\"scenario_id\":\"sp-wait-$round\"}" --max-time 20 \
			"$API/v1/policies?wait=2" &
		wpid=$!
		sleep 0.2
		r0=$(date +%s%N)
		curl -s -o /dev/null --max-time 20 "$API/health"
		ms=$(( ($(date +%s%N) - r0) / 1000000 ))
		[ "$round" = 1 ] && [ "$1" -gt 0 ] && census > "$T/census.wait"
		[ "$ms" -gt "$worst" ] && worst=$ms
		wait "$wpid"
	done
	echo "$worst"
	stop_api
}
with=$(read_during_wait 1)
ok "with a spare, reads during a 2 s ?wait are answered at once (slowest ${with} ms, < 1000)" test "$with" -lt 1000
ok "/metrics during the wait: the spare accepts, the worker waits ($(cat "$T/census.wait"))" \
	test "$(cat "$T/census.wait")" = "accepting=1 waiting=1 parked=0 "
without=$(read_during_wait 0)
ok "without one (the control), they wait for the mutation (slowest ${without} ms, > 1200)" test "$without" -gt 1200
e2e_done
