#!/bin/bash
# SPDX-License-Identifier: MIT
# NATS-driven enforcement end to end, every component real: scenario.created
# published on a JetStream stream (created here, as the producer side would)
# -> egw-natsd's durable consumer -> the policy in SQLite -> egw-applier
# (DRY_RUN=false) -> nftables in the gateway namespace: a connection the
# profile allows succeeds, one it denies fails.  scenario.completed -> the
# policy is disabled -> the connection that was allowed is now refused.
# A prober in the scenario namespace measures event -> enforced latency.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_netns.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/stack_lib.sh"
e2e_init stack_events
netns_topology
stack_env
OUT=203.0.113.10
# Event -> enforced must be well under this (nudge + one libnftnl batch).
BOUND_S=10
quiet_ok() { "$@" > /dev/null 2>&1; }

stack_start_nats
ok "the producer's stream holds scenario.*" quiet_ok nprobe stream-add SCENARIOS 'scenario.*'
start_applier
stack_start_natsd
stack_subscribe audit audit.egress
ok "created events through the durable consumer" \
	within 10 db_is "SELECT json_extract(info, '\$.created_mode') || ',' ||
		json_extract(info, '\$.completed_mode') FROM component_status
		WHERE component = 'natsd'" durable,durable

# until ok|fail SRC PORT: TCP connects to $OUT:PORT from SRC (100 ms
# timeout each, fresh source port) until one succeeds (ok) or fails
# (fail); prints the wall-clock ms of that attempt's start.
cat > "$T/until.py" <<'PY'
import socket, sys, time
want, src, dst, port, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
end = time.monotonic() + limit
while time.monotonic() < end:
    t = time.time()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(0.1)
    try:
        s.bind((src, 0)); s.connect((dst, port)); ok = s.recv(16).startswith(b"ok")
    except OSError:
        ok = False
    s.close()
    if ok == (want == "ok"):
        print(int(t * 1000)); sys.exit(0)
    if ok:
        time.sleep(0.02)
sys.exit(1)
PY
until_state() {
	ip netns exec "$NS_SCEN" /usr/bin/python3 "$T/until.py" "$1" "$2" $OUT "$3" $BOUND_S > "$T/until.out" 2>&1 &
	UNTIL_PID=$!
	track_pid "$UNTIL_PID"
	sleep 0.3	# the prober is running before the event is published
}
# until_done: wait for the prober (in this shell: it is our child); t1 =
# its timestamp, empty when it gave up
until_done() { t1=; wait "$UNTIL_PID" && t1=$(cat "$T/until.out"); }

policy_is() { db_is "SELECT profile || ',' || enabled || ',' || apply_status FROM policies WHERE scenario_id = '$1'" "$2"; }
events_ge() { [ "$(jq -c "select(.subject == \"audit.egress\") | .data | $1" "$T/audit.jsonl" 2>/dev/null | wc -l)" -ge "$2" ]; }
created_lat= completed_lat=

# round N SRC: scenario ev-N on source SRC (track cissp -> training-updates:
# TCP 80 and 443 allowed, everything else outside denied).
round() {
	n=$1 src=$2 sid=ev-$1
	ok "$sid: before the event the managed source is refused (baseline)" tcp_refused "$src" $OUT 443
	until_state ok "$src" 443
	t0=$(now_ms)
	quiet_ok nprobe jspub scenario.created \
		"{\"scenario_id\":\"$sid\",\"network_id\":\"net-$n\",\"track\":\"cissp\",\"sources\":[\"$src/32\"]}"
	until_done
	ok "$sid: scenario.created -> the allowed connection succeeds within $BOUND_S s" test -n "$t1"
	created_lat="$created_lat $(( ${t1:-$t0} - t0 ))"
	ok "$sid: policy from the track, enabled, applied by the real applier" \
		within 5 policy_is "$sid" training-updates,1,applied
	ok "$sid: TCP 443 allowed" tcp_ok "$src" $OUT 443
	ok "$sid: TCP 80 allowed" tcp_ok "$src" $OUT 80
	ok "$sid: TCP 22 denied" tcp_refused "$src" $OUT 22
	ok "$sid: UDP 5353 denied" udp_refused "$src" $OUT 5353

	until_state fail "$src" 443
	t0=$(now_ms)
	quiet_ok nprobe jspub scenario.completed "{\"scenario_id\":\"$sid\"}"
	until_done
	ok "$sid: scenario.completed -> the same connection is refused within $BOUND_S s" test -n "$t1"
	completed_lat="$completed_lat $(( ${t1:-$t0} - t0 ))"
	ok "$sid: policy disabled and completed" within 5 db_is \
		"SELECT enabled || ',' || (completed_at IS NOT NULL) || ',' || apply_status
		 FROM policies WHERE scenario_id = '$sid'" "0,1,applied"
	ok "$sid: TCP 443 refused after completion" tcp_refused "$src" $OUT 443
	ok "$sid: TCP 80 refused after completion" tcp_refused "$src" $OUT 80
	ok "$sid: lifecycle events on audit.egress" within 10 events_ge \
		"select(.scenario_id == \"$sid\" and (.type == \"policy.created\" or .type == \"policy.completed\"))" 2
}

round 1 100.64.1.2
round 2 100.64.1.3
round 3 100.64.1.4

ok "every scenario event acknowledged (nothing pending on either consumer)" bash -c "
	for c in egress_gateway_created egress_gateway_completed; do
		ip netns exec '$NS_GW' '$PROBE' consumer-info SCENARIOS \$c | jq -e '.num_pending == 0 and .num_ack_pending == 0 and .ack_floor_stream_seq >= 5' >/dev/null || exit 1
	done"
ok "no rejected events" db_is "SELECT json_extract(info, '\$.rejected') FROM component_status WHERE component = 'natsd'" 0
diag "event -> enforced latency (ms, publish -> first connection with the new verdict, 100 ms probe granularity):" \
	"scenario.created:$created_lat; scenario.completed:$completed_lat"
e2e_done
