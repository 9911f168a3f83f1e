#!/bin/bash
# SPDX-License-Identifier: MIT
# The whole data path with the real components: a policy created through
# nginx -> egw-api (?wait answered from the real applier's apply), traffic
# from the scenario host decided by the kernel in the gateway namespace,
# logged by egw-flowlog, served by GET /v1/logs and published by egw-natsd
# on audit.egress of a real nats-server -js; /v1/stats and /metrics show the
# exact nft totals next to the sampled flow log; /readyz follows the real
# applier's heartbeat and turns 503 once the applier is stopped (at once
# when it stops cleanly, within the window when it dies).
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_netns.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/stack_lib.sh"
e2e_init stack_flow
netns_topology
stack_env
# /readyz window: max(15 s, 2 x EGW_RECONCILE_INTERVAL); applier_env sets 2 s.
READY_WINDOW_S=15 FLOOD=300
A=100.64.1.2 A6=2001:db8:64:1::2 OUT=203.0.113.10 OUT6=2001:db8:113::10
SC=stack-a

stack_start_nats
start_applier
stack_start_flowlog
stack_start_natsd
start_api 2
start_nginx
TOKEN=$(mint_token stack read,write) || { echo "Bail out! no token"; exit 99; }
export TOKEN
stack_subscribe audit audit.egress

readyz_is() { api GET /readyz; [ "$(cat "$T/status")" = "$1" ]; }
ok "/readyz is 200 with the real applier's heartbeat" within 10 readyz_is 200
ok "/readyz: applier check ok" jqe '.checks.applier.ok == true and (.checks.applier.heartbeat_at | type == "string")'

# The policy, through the API, waiting for the real applier.
api POST '/v1/policies?wait=5' "{\"scenario_id\":\"$SC\",\"network_id\":\"net-a\",
	\"profile\":\"external-api\",\"sources\":[\"$A/32\",\"$A6/128\"]}"
ok "POST /v1/policies?wait=5: 201 (not 202)" status_is 201
ok "status applied by the real applier" jqe '.status.apply == "applied" and .status.error == null'
ok "the applied generation is the policy's" jqe '.status.applied_generation >= .generation'
ok "the applier applied it in the kernel (not a dry run)" \
	db_is "SELECT dry_run || ',' || (applied_generation >= desired_generation) FROM applier_state" "0,1"
ok "the scenario's source is in the gateway namespace's table" \
	bash -c "ip netns exec '$NS_GW' nft list table inet forge_egress | grep -qF '$A'"

# Audit events on audit.egress: one JSON line per message in $T/audit.jsonl.
events() { jq -c "select(.subject == \"audit.egress\") | .data | $1" "$T/audit.jsonl" 2>/dev/null; }
events_ge() { [ "$(events "$1" | wc -l)" -ge "$2" ]; }
ok "policy.created arrives on audit.egress" \
	within 10 events_ge "select(.type == \"policy.created\" and .scenario_id == \"$SC\")" 1
ok "policy.created carries the earlier service's fields" bash -c "
	jq -e -s 'map(select(.data.type == \"policy.created\"))[0].data
		| has(\"timestamp\") and has(\"scenario_id\") and has(\"action\") and has(\"src_ip\")
		and has(\"dst_ip\") and has(\"dst_port\") and has(\"protocol\") and has(\"reason\")
		and .network_id == \"net-a\" and (.event_id | type == \"string\")' '$T/audit.jsonl' >/dev/null"

# Neighbours first, so no first packet waits for address resolution.
tcp_ok $A $OUT 443; tcp_ok $A6 $OUT6 443

# row SPORT: the API's rows from that source port, "count|fields;fields"
FIELDS='[.scenario_id, .network_id, .action, .src_ip, .dst_ip, .src_port, .dst_port, .protocol, .reason] | map(tostring) | join(",")'
api_rows() {
	api GET "/v1/logs?scenario_id=$SC&limit=1000"
	jq -r "[.logs[] | select(.src_port == $1)] | (length | tostring) + \"|\" + (map($FIELDS) | join(\";\"))" "$T/body"
}
api_rows_ge() { [ "$(api_rows "$1" | cut -d'|' -f1)" -ge "$2" ]; }
flow_events() {
	jq -r -s "[.[] | select(.subject == \"audit.egress\") | .data | select(.type == \"flow\" and .src_port == $1)]
		| (length | tostring) + \"|\" + (map($FIELDS) | join(\";\"))" "$T/audit.jsonl"
}
flow_events_ge() { [ "$(flow_events "$1" | cut -d'|' -f1)" -ge "$2" ]; }
same() { [ "$1" = "$2" ] || { diag "got '$1', want '$2'"; return 1; }; }
# check_path DESC SPORT EXPECTED: exactly one row in GET /v1/logs and
# exactly one "flow" event on audit.egress, both EXPECTED, same log id.
check_path() {
	within 5 api_rows_ge "$2" 1
	ok "$1: exactly its row in GET /v1/logs" same "$(api_rows "$2")" "1|$3"
	log_id=$(jq -r "[.logs[] | select(.src_port == $2)][0].id" "$T/body")
	within 10 flow_events_ge "$2" 1
	ok "$1: exactly its flow event on audit.egress" same "$(flow_events "$2")" "1|$3"
	ok "$1: the event names the row (log_id) and has an event_id" same "$(jq -r -s \
		"[.[] | .data | select(.type == \"flow\" and .src_port == $2)][0]
		 | (.log_id | tostring) + \",\" + (.event_id | type)" "$T/audit.jsonl")" "$log_id,string"
}

ok "denied TCP connect (IPv4) times out" test "$(traffic tcp $A 23001 $OUT 22)" = timeout
check_path "denied TCP (IPv4)" 23001 "$SC,net-a,deny,$A,$OUT,23001,22,tcp,default"
traffic udp $A 23002 $OUT 5353
check_path "denied UDP (IPv4)" 23002 "$SC,net-a,deny,$A,$OUT,23002,5353,udp,default"
ok "allowed TCP connect (IPv4) succeeds" test "$(traffic tcp $A 23003 $OUT 443)" = connected
check_path "allowed TCP (IPv4)" 23003 "$SC,net-a,allow,$A,$OUT,23003,443,tcp,allowlist"
ok "denied TCP connect (IPv6) times out" test "$(traffic tcp $A6 23004 $OUT6 22)" = timeout
check_path "denied TCP (IPv6)" 23004 "$SC,net-a,deny,$A6,$OUT6,23004,22,tcp,default"
traffic udp $A6 23005 $OUT6 123
check_path "denied UDP (IPv6)" 23005 "$SC,net-a,deny,$A6,$OUT6,23005,123,udp,default"
ok "allowed TCP connect (IPv6) succeeds" test "$(traffic tcp $A6 23006 $OUT6 443)" = connected
check_path "allowed TCP (IPv6)" 23006 "$SC,net-a,allow,$A6,$OUT6,23006,443,tcp,allowlist"

# Exact totals: a flood of denied datagrams far above the log rate
# (EGW_LOG_RATE 10/s, burst 20 per scenario).  Counters count them all,
# the flow log samples them, /v1/stats says which is which.
MARK=$(db "SELECT id FROM policies WHERE scenario_id = '$SC'")
kernel_count() {
	in_gw nft -j list set inet forge_egress "$1" | jq -r --argjson m "$MARK" \
		'[.nftables[].set? // empty | .elem[]? | (.elem // .) | select(type == "object" and .val == $m)
		  | .counter.packets] | first // 0'
}
traffic udp $A 23100 $OUT 9 $FLOOD
stats_caught_up() {
	api GET /v1/stats
	[ "$(jq -r ".scenarios[\"$SC\"].denied_packets" "$T/body")" = "$(kernel_count cnt_deny)" ] &&
	[ "$(jq -r ".scenarios[\"$SC\"].allowed_packets" "$T/body")" = "$(kernel_count cnt_allow)" ]
}
# the applier reads the counters every 5 s
ok "/v1/stats per-scenario packets equal the kernel's nft counters" within 12 stats_caught_up
deny_k=$(kernel_count cnt_deny); allow_k=$(kernel_count cnt_allow)
diag "kernel counters for $SC: deny $deny_k, allow $allow_k; stats: $(jq -c '{denied_requests, allowed_requests, counters, flow_log: (.flow_log | {received, written, lost, overruns, queue_depth, heartbeat_age_ms, rows})}' "$T/body")"
ok "the kernel counted every flood datagram" test "$deny_k" -ge $((FLOOD + 4))
ok "counters are labelled exact, from nft" jqe '.counters.source == "nft counters" and .counters.exact == true'
ok "denied_requests/allowed_requests are the exact totals (> 0)" \
	jqe ".denied_requests == $deny_k and .allowed_requests == $allow_k and .allowed_requests > 0"
ok "counters: packets and bytes" jqe ".counters.denied_packets == $deny_k and .counters.denied_bytes > 0 and (.counters.updated_at | type == \"string\")"
ok "flow_log is labelled the rate-limited sample" \
	jqe '.flow_log.source == "nflog (rate-limited sample)" and .flow_log.exact == false'
ok "flow_log: far fewer rows than packets (rate limit)" \
	jqe ".flow_log.rows.deny < $FLOOD and .flow_log.rows.deny >= 4 and .flow_log.rows.allow >= 2"
ok "flow_log: egw-flowlog's figures" jqe '.flow_log.reporting == true and .flow_log.received >= .flow_log.written
	and .flow_log.written >= 6 and .flow_log.lost == 0 and .flow_log.overruns == 0
	and .flow_log.queue_depth >= 0 and .flow_log.heartbeat_age_ms < 5000 and .flow_log.batches > 0'
ok "flow_log.pid is egw-flowlog's" jqe ".flow_log.pid == $FLOWLOG_PID"
ok "natsd: connected, JetStream, publishing" \
	jqe ".natsd.pid == $NATSD_PID and .natsd.connected == true and .natsd.jetstream == true and .natsd.published > 0"
ok "applier: not a dry run, nothing pending" jqe '.applier.dry_run == false and .applier.generation_lag == 0'

# /metrics: the same figures in Prometheus text.
api GET /metrics
metric() { awk -v n="$1" '$1 == n { print $2 }' "$T/body"; }
metric_ge() { v=$(metric "$1"); [ -n "$v" ] && [ "$v" -ge "$2" ] || { diag "$1 = '$v', want >= $2"; return 1; }; }
ok "GET /metrics: 200" status_is 200
ok "egw_flowlog_received_total" metric_ge egw_flowlog_received_total 6
ok "egw_flowlog_written_total" metric_ge egw_flowlog_written_total 6
ok "egw_flowlog_lost_total is 0" test "$(metric egw_flowlog_lost_total)" = 0
ok "egw_flowlog_overruns_total is 0" test "$(metric egw_flowlog_overruns_total)" = 0
ok "egw_flowlog_batches_total" metric_ge egw_flowlog_batches_total 1
ok "egw_flowlog_queue_depth gauge" metric_ge egw_flowlog_queue_depth 0
ok "egw_natsd_connected 1, egw_natsd_jetstream 1" \
	test "$(metric egw_natsd_connected),$(metric egw_natsd_jetstream)" = 1,1
ok "egw_natsd_published_total" metric_ge egw_natsd_published_total 7
ok "egw_natsd_backlog gauge" metric_ge egw_natsd_backlog 0
ok "egw_kernel_packets_total{verdict=\"deny\"} = the kernel's count" \
	test "$(metric 'egw_kernel_packets_total{verdict="deny"}')" = "$deny_k"
ok "metric TYPE lines" bash -c "grep -q '^# TYPE egw_flowlog_received_total counter$' '$T/body' &&
	grep -q '^# TYPE egw_flowlog_queue_depth gauge$' '$T/body' &&
	grep -q '^# TYPE egw_natsd_published_total counter$' '$T/body'"

# Readiness follows the applier's heartbeat: an applier that dies (no last
# report) is noticed when its heartbeat grows stale.
ok "/readyz still 200" readyz_is 200
kill -KILL "$APPLIER_PID"
wait "$APPLIER_PID" 2>/dev/null
t0=$(now_ms)
within $((READY_WINDOW_S + 8)) readyz_is 503
t1=$(now_ms)
diag "/readyz turned 503 $(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 )) s after the applier stopped (window ${READY_WINDOW_S} s, heartbeat every 5 s)"
ok "/readyz turns 503 after the applier stops" error_is 503 unavailable
ok "... names the stale applier heartbeat" jqe '.checks.applier.ok == false and (.checks.applier.reason | test("old"))'
ok "... within the window (+ 1 s rounding, 2 s polling slack)" test $((t1 - t0)) -le $(( (READY_WINDOW_S + 3) * 1000 ))
ok "... not before the window minus one heartbeat period" test $((t1 - t0)) -ge $(( (READY_WINDOW_S - 5) * 1000 ))
# One that stops cleanly says so in its last report: not ready at once.
start_applier
ok "/readyz is 200 again with a new applier" within 20 readyz_is 200
stop_applier
t0=$(now_ms)
within 5 readyz_is 503
t1=$(now_ms)
ok "a cleanly stopped applier: /readyz 503" error_is 503 unavailable
ok "... saying it stopped" jqe '.checks.applier.ok == false and (.checks.applier.reason | test("stopped"))'
ok "... at once, not when the heartbeat grows stale (under 3 s)" test $((t1 - t0)) -lt 3000
e2e_done
