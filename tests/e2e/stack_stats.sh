#!/bin/bash
# SPDX-License-Identifier: MIT
# /v1/stats and /metrics over the rows the other components write, through
# a real nginx and egw-api, with rows set up in SQLite so that the cases a
# live stack rarely produces are covered: components that never reported,
# a component row with odd info values, counters ahead of the log (flood)
# and the log ahead of the counters (packets since the last counter read),
# logged packets without a scenario, a flowlog restart (counters restart).
# The live path is tests/e2e/stack_flow.sh.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init stack_stats
need_cmd sqlite3 jq

export EGW_AUTH=off DRY_RUN=true
start_api 2
start_nginx
DB=$EGW_STATE_DIR/egw.db
sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$@"; }
metric() { awk -v n="$1" '$1 == n { print $2 }' "$T/body"; }
same() { [ "$1" = "$2" ] || { diag "got '$1', want '$2'"; return 1; }; }
now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)

# Nothing reported yet.
api GET /v1/stats
ok "stats before any component reported: 200" status_is 200
ok "flow_log labelled the sample, not reporting, figures null" jqe '.flow_log.source == "nflog (rate-limited sample)"
	and .flow_log.exact == false and .flow_log.reporting == false and .flow_log.received == null
	and .flow_log.lost == null and .flow_log.heartbeat_age_ms == null and .flow_log.rows == {"allow":0,"deny":0,"would_deny":0}'
ok "counters labelled exact, from nft, zero" jqe '.counters.source == "nft counters" and .counters.exact == true
	and .counters.denied_packets == 0 and .counters.updated_at == null'
ok "natsd not reporting" jqe '.natsd.reporting == false and .natsd.connected == null'
ok "neither is live, nor says it runs" jqe '.natsd.live == false and .natsd.running == null
	and .flow_log.live == false and .flow_log.running == null'
ok "seed totals are 0" jqe '.denied_requests == 0 and .allowed_requests == 0'
api GET /metrics
ok "before they report: egw_flowlog_up and egw_natsd_up, 0" \
	same "$(metric egw_flowlog_up),$(metric egw_natsd_up)" 0,0
ok "and no other egw_flowlog_* or egw_natsd_* series" \
	bash -c "! grep -E '^egw_(flowlog|natsd)_' '$T/body' | grep -Evq '^egw_(flowlog|natsd)_up '"
ok "egw_kernel_packets_total is 0 for both verdicts" \
	same "$(metric 'egw_kernel_packets_total{verdict="allow"}'),$(metric 'egw_kernel_packets_total{verdict="deny"}')" 0,0

# Rows as egw-flowlog, egw-natsd and the applier write them.
sql "INSERT INTO component_status (component, pid, heartbeat_at, info) VALUES
	('flowlog', 4242, '$now', '{\"received\":120,\"written\":100,\"lost\":7,\"batches\":9,\"enobufs\":3,\"seq_lost\":5,\"queue_dropped\":1,\"write_dropped\":1,\"foreign\":2,\"malformed\":0,\"unknown_policy\":1,\"pruned\":0,\"outbox_pruned\":40,\"outbox_dropped\":30,\"queue_depth\":4,\"queue_max\":65536,\"write_ms\":1.5,\"group\":7,\"rcvbuf\":8388608,\"started_at\":\"$now\"}'),
	('natsd', 4343, '$now', '{\"running\":true,\"connected\":true,\"jetstream\":true,\"published\":55,\"failed\":2,\"rejected\":3,\"events\":10,\"changes\":6,\"reconnects\":1,\"backlog\":8,\"last_error\":null}')"
# s-flood: counters far ahead of the log; s-fresh: log ahead of the counters.
sql "INSERT INTO policy_counters (scenario_id, allowed_packets, allowed_bytes, denied_packets, denied_bytes, updated_at) VALUES
	('s-flood', 2, 120, 10000, 280000, '2026-01-01T00:00:05.000Z'),
	('s-fresh', 1, 60, 1, 40, '2026-01-01T00:00:09.000Z')"
{
	for i in $(seq 1 30); do echo "('s-flood','deny'),"; done
	echo "('s-flood','allow'),('s-flood','allow'),"
	echo "('s-fresh','deny'),('s-fresh','deny'),('s-fresh','would_deny'),('s-fresh','allow'),('s-fresh','allow'),('s-fresh','allow'),"
	echo "(NULL,'deny'),(NULL,'deny'),(NULL,'allow'));"
} | { printf "INSERT INTO egress_log (ts, scenario_id, action, src_ip, dst_ip, reason) SELECT '$now', column1, column2, '100.64.0.9', '203.0.113.10', 'default' FROM (VALUES "; cat; } | sql
api GET /v1/stats
ok "stats with every source: 200" status_is 200
ok "flow_log: egw-flowlog's figures (overruns = enobufs)" jqe '.flow_log.reporting == true and .flow_log.pid == 4242
	and .flow_log.received == 120 and .flow_log.written == 100 and .flow_log.lost == 7 and .flow_log.overruns == 3
	and .flow_log.seq_lost == 5 and .flow_log.queue_dropped == 1 and .flow_log.write_dropped == 1
	and .flow_log.batches == 9 and .flow_log.queue_depth == 4 and .flow_log.queue_max == 65536
	and .flow_log.unknown_policy == 1 and .flow_log.heartbeat_age_ms >= 0 and .flow_log.heartbeat_age_ms < 60000'
ok "flow_log: flow events pruned from the outbox, and those never published" \
	jqe '.flow_log.outbox_pruned == 40 and .flow_log.outbox_dropped == 30 and .flow_log.lost == 7'
ok "flow_log.rows count the egress log by action" jqe '.flow_log.rows == {"allow":6,"deny":34,"would_deny":1}'
ok "counters: sums of policy_counters, newest read time" jqe '.counters.allowed_packets == 3 and .counters.denied_packets == 10001
	and .counters.allowed_bytes == 180 and .counters.denied_bytes == 280040 and .counters.updated_at == "2026-01-01T00:00:09.000Z"'
ok "flood scenario: requests = the exact counters (log is a sample)" \
	jqe '.scenarios["s-flood"] | .denied_requests == 10000 and .allowed_requests == 2 and .logged_denied == 30 and .logged_allowed == 2'
ok "fresh scenario: requests = the log where it is ahead of the last counter read" \
	jqe '.scenarios["s-fresh"] | .denied_requests == 3 and .allowed_requests == 3 and .would_deny_requests == 1 and .denied_packets == 1'
ok "seed totals: per-scenario figures plus logged packets without a scenario" \
	jqe '.denied_requests == 10000 + 3 + 2 and .allowed_requests == 2 + 3 + 1'
ok "natsd figures" jqe '.natsd | .reporting == true and .pid == 4343 and .connected == true and .jetstream == true
	and .published == 55 and .failed == 2 and .rejected == 3 and .backlog == 8 and .reconnects == 1'
ok "both live; a report without \"running\" (older egw-flowlog) counts as running" \
	jqe '.natsd.live == true and .natsd.running == true and .flow_log.live == true and .flow_log.running == true'

api GET /metrics
ok "GET /metrics: 200" status_is 200
ok "egw_flowlog_outbox_dropped_total" same "$(metric egw_flowlog_outbox_dropped_total)" 30
ok "egw_flowlog_* counters and gauge" same "$(metric egw_flowlog_received_total),$(metric egw_flowlog_written_total),$(metric egw_flowlog_lost_total),$(metric egw_flowlog_overruns_total),$(metric egw_flowlog_batches_total),$(metric egw_flowlog_queue_depth)" \
	120,100,7,3,9,4
ok "egw_natsd_* figures" same "$(metric egw_natsd_connected),$(metric egw_natsd_jetstream),$(metric egw_natsd_published_total),$(metric egw_natsd_failed_total),$(metric egw_natsd_rejected_total),$(metric egw_natsd_backlog)" \
	1,1,55,2,3,8
ok "egw_flowlog_up and egw_natsd_up: 1" same "$(metric egw_flowlog_up),$(metric egw_natsd_up)" 1,1
ok "egw_kernel_packets_total from the counters" \
	same "$(metric 'egw_kernel_packets_total{verdict="allow"}'),$(metric 'egw_kernel_packets_total{verdict="deny"}')" 3,10001
ok "TYPE lines: counters end in _total, depths are gauges" bash -c "
	grep -q '^# TYPE egw_flowlog_lost_total counter$' '$T/body' &&
	grep -q '^# TYPE egw_flowlog_queue_depth gauge$' '$T/body' &&
	grep -q '^# TYPE egw_natsd_backlog gauge$' '$T/body' &&
	grep -q '^# TYPE egw_natsd_rejected_total counter$' '$T/body'"
ok "every metric line is well-formed" bash -c "grep -v '^#' '$T/body' | grep -Ev '^[a-z_]+(\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\})? [0-9.e+-]+$' | { ! grep -q .; }"
ok "each metric name has exactly one TYPE line" bash -c "
	[ -z \"\$(grep '^# TYPE ' '$T/body' | awk '{ print \$3 }' | sort | uniq -d)\" ]"

# egw-natsd's last report, written as it stopped: still connected then.
sql "UPDATE component_status SET info = json_set(info, '\$.running', json('false')) WHERE component = 'natsd'"
api GET /v1/stats
ok "stopped natsd: not running, not live, so not connected" \
	jqe '.natsd | .reporting == true and .running == false and .live == false and .connected == false'
api GET /metrics
ok "stopped natsd: egw_natsd_up 0, egw_natsd_connected 0" same "$(metric egw_natsd_up),$(metric egw_natsd_connected)" 0,0
# A report from the future (the clock was set back) proves nothing.
sql "UPDATE component_status SET info = json_set(info, '\$.running', json('true')),
	heartbeat_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+1 hour') WHERE component = 'natsd'"
api GET /v1/stats
ok "natsd report an hour ahead: not live" jqe '.natsd.running == true and .natsd.live == false and .natsd.connected == false'
sql "UPDATE component_status SET heartbeat_at = '$now' WHERE component = 'natsd'"

# A restarted egw-flowlog (new pid, counters from 0) and a row whose info is
# not what the API expects: typed reads, strings and floats read as 0.
sql "UPDATE component_status SET pid = 4244, info = '{\"received\":\"12\",\"written\":1.5,\"lost\":-1,\"queue_depth\":[1]}'
	WHERE component = 'flowlog'"
sql "UPDATE component_status SET info = 'not json' WHERE component = 'natsd'"
api GET /v1/stats
ok "odd info values: still 200" status_is 200
ok "odd info: non-integers read as 0, integers as given" jqe '.flow_log.pid == 4244 and .flow_log.received == 0 and .flow_log.written == 0
	and .flow_log.lost == -1 and .flow_log.queue_depth == 0 and .flow_log.batches == 0'
ok "unparsable natsd info: reporting, figures 0/false" jqe '.natsd.reporting == true and .natsd.connected == false and .natsd.published == 0'
api GET /metrics
ok "metrics with odd info: 200" status_is 200
ok "metrics with odd info: egw_flowlog_received_total 0" same "$(metric egw_flowlog_received_total)" 0

# A stale component row: the age is reported, not hidden.
sql "UPDATE component_status SET heartbeat_at = '2020-01-01T00:00:00.000Z' WHERE component = 'flowlog'"
api GET /v1/stats
ok "stale flowlog row: heartbeat_age_ms shows it" jqe '.flow_log.heartbeat_age_ms > 86400000'
ok "stale flowlog row: not live" jqe '.flow_log.live == false and .flow_log.running == true'
api GET /metrics
ok "stale flowlog row: egw_flowlog_up 0" same "$(metric egw_flowlog_up)" 0
ok "stale flowlog row: egw_flowlog_heartbeat_age_seconds shows it" \
	bash -c "[ \$(awk '\$1 == \"egw_flowlog_heartbeat_age_seconds\" { print \$2 }' '$T/body') -gt 86400 ]"
e2e_done
