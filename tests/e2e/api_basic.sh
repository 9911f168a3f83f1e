#!/bin/bash
# SPDX-License-Identifier: MIT
# The API's system endpoints through a real nginx: /health (the earlier
# service's body), /healthz, /readyz (database + applier heartbeat),
# /metrics, /v1/profiles, /v1/ruleset, /v1/stats, /v1/logs (filters,
# pagination), request ids (taken, replaced, echoed, in every log line),
# `egw-api -n` and the EGW_AUTH=off warning.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_basic
need_cmd sqlite3

export EGW_AUTH=off DRY_RUN=true
ok "egw-api -n accepts the configuration" bash -c "'$(egw_bin egw-api)' -n >/dev/null"
ok "egw-api -n refuses a bad EGW_WORKERS" bash -c \
	"! EGW_WORKERS=0 '$(egw_bin egw-api)' -n 2>/dev/null"
start_api 2
start_nginx
DB=$EGW_STATE_DIR/egw.db
sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$@"; }

ok "EGW_AUTH=off is logged as a warning at start" \
	grep -q '"level":"warn".*EGW_AUTH=off' "$T/api.log"

api GET /health
ok "GET /health: 200" status_is 200
ok "GET /health: seed body" jqe '. == {"status":"ok","service":"forge_egress_gateway","dry_run":true}'
ok "GET /health: JSON content type" header_is Content-Type application/json
api GET /healthz
ok "GET /healthz: ok" jq_is .status ok

# Request ids: a sane one is echoed, anything else is replaced.
api GET /health "" -H 'X-Request-Id: test-rid.0001'
ok "sane x-request-id echoed" header_is X-Request-Id test-rid.0001
api GET /v1/nope "" -H 'X-Request-Id: test-rid.0002'
ok "request id in the error body" jq_is .request_id test-rid.0002
ok "request id in the worker's log line" wait_for 3 grep -q '"request_id":"test-rid.0002".*"status":"404"' "$T/api.log"
api GET /health "" -H 'X-Request-Id: bad id with spaces'
rid=$(grep -i '^x-request-id:' "$T/headers" | cut -d' ' -f2 | tr -d '\r')
ok "insane x-request-id replaced by a generated one" \
	bash -c "[[ '$rid' =~ ^[A-Za-z0-9._-]{1,64}$ && '$rid' != bad* ]]"
long=$(printf 'a%.0s' $(seq 65))
api GET /health "" -H "X-Request-Id: $long"
ok "65-character x-request-id replaced" bash -c "! grep -qi '^x-request-id: $long' '$T/headers'"

# /readyz: database writable + applier heartbeat fresh.
t_probe=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
api GET /readyz
ok "readyz without an applier heartbeat: 503" error_is 503 unavailable
ok "readyz names the applier check" jq_is .checks.applier.ok false
ok "readyz: the database is fine" jq_is .checks.database.ok true
now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
sql "UPDATE applier_state SET heartbeat_at = '$now' WHERE id = 1"
api GET /readyz
ok "readyz with a fresh heartbeat: 200" status_is 200
ok "readyz: ready" jq_is .status ready
ok "readyz committed its write probe (component_status 'api')" \
	test "$(sql "SELECT count(*) FROM component_status WHERE component = 'api' AND heartbeat_at >= '$t_probe'")" = 1
sql "UPDATE applier_state SET heartbeat_at = '2020-01-01T00:00:00.000Z' WHERE id = 1"
api GET /readyz
ok "readyz with a stale heartbeat: 503" error_is 503 unavailable
ok "readyz stale reason" jqe '.checks.applier.reason | test("old")'
old=$(date -u -d '-20 seconds' +%Y-%m-%dT%H:%M:%S.000Z)
sql "UPDATE applier_state SET heartbeat_at = '$old' WHERE id = 1"
api GET /readyz
ok "readyz with a heartbeat 20 s old (EGW_RECONCILE_INTERVAL does not stretch it): 503" error_is 503 unavailable
future=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%S.000Z)
sql "UPDATE applier_state SET heartbeat_at = '$future' WHERE id = 1"
api GET /readyz
ok "readyz with a heartbeat an hour in the future (clock set back): 503" error_is 503 unavailable
ok "... says so" jqe '.checks.applier.reason | test("future")'
sql "UPDATE applier_state SET heartbeat_at = '$now' WHERE id = 1"
# An applier that stopped cleanly says so in its last report (component
# status); readiness does not wait 15 s for its heartbeat to grow stale.
sql "INSERT INTO component_status (component, pid, heartbeat_at, info) VALUES ('applier', 1, '$now', '{\"running\":false}')"
api GET /readyz
ok "readyz after the applier's last report (running false): 503" error_is 503 unavailable
ok "... says it stopped" jqe '.checks.applier.reason | test("stopped")'
sql "UPDATE component_status SET info = '{\"running\":true}' WHERE component = 'applier'"
api GET /readyz
ok "readyz with the applier's report running: 200" status_is 200
sql "UPDATE component_status SET info = 'not json' WHERE component = 'applier'"
api GET /readyz
ok "readyz with an unreadable report: the heartbeat decides (200)" status_is 200
# Hold the write lock from another process: the database is not writable.
(sqlite3 "$DB" <<SQL
.timeout 100
BEGIN IMMEDIATE;
SELECT 1 FROM applier_state;
.shell sleep 7
ROLLBACK;
SQL
) >/dev/null 2>&1 &
lockpid=$!
sleep 0.5
api GET /readyz
ok "readyz while another process holds the write lock past the timeout: 503" \
	error_is 503 unavailable
ok "readyz names the database check" jq_is .checks.database.ok false
wait "$lockpid" 2>/dev/null

# Profiles: the four built-ins with their rules.
api GET /v1/profiles
ok "GET /v1/profiles: 200" status_is 200
ok "four built-in profiles" jqe '[.profiles[] | select(.builtin)] | length == 4'
ok "profile names" jqe '[.profiles[].name] | sort == ["custom","external-api","none","training-updates"]'
ok "external-api allows tcp 443" jqe '.profiles[] | select(.name=="external-api") | .rules | any(.proto=="tcp" and .ports==[443])'
ok "usable profiles carry error null" jqe '[.profiles[].error] | all(. == null)'
# Profiles added by hand that cannot be used are listed with the reason,
# and do not take the others down (it used to be a 500 for the whole list).
sql "INSERT INTO profiles (name, description) VALUES ('ops-bad', 'hand-made'), ('ops-many', 'too many');
	INSERT INTO profile_rules (profile, position, proto, dest) VALUES ('ops-bad', 1, 'any', 'not-an-ip');
	WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 257)
	INSERT INTO profile_rules (profile, position, proto, port_lo, port_hi) SELECT 'ops-many', i, 'tcp', i, i FROM n"
api GET /v1/profiles
ok "unusable profiles: still 200" status_is 200
ok "... all six listed" jqe '.count == 6 and ([.profiles[].name] | sort == ["custom","external-api","none","ops-bad","ops-many","training-updates"])'
ok "... a bad rule: named, no rules" jqe '.profiles[] | select(.name == "ops-bad") | .rules == [] and (.error | startswith("rule 1: dest is not an address or prefix"))'
ok "... too many rules: said so" jqe '.profiles[] | select(.name == "ops-many") | .rules == [] and .error == "more than 256 rules"'
ok "... the built-ins unaffected" jqe '.profiles[] | select(.name == "external-api") | .error == null and (.rules | length) > 0'
sql "DELETE FROM profiles WHERE name IN ('ops-bad', 'ops-many')"
api GET /v1/profiles?x=1
ok "unknown query parameter: 400" error_is 400 bad_request
ok "unknown query parameter is named" jq_is .error.field x

# Ruleset: what the applier last rendered.
api GET /v1/ruleset
ok "GET /v1/ruleset before any apply: 200" status_is 200
ok "no ruleset yet" jqe '.ruleset == null and .generation == 0 and .dry_run == null'
sql "UPDATE applier_state SET applied_generation = 3, desired_generation = 3, dry_run = 1,
	last_apply_at = '$now', last_duration_ms = 4.5 WHERE id = 1;
	INSERT INTO applier_rendered VALUES (1, 'table inet forge_egress { }')"
api GET /v1/ruleset
ok "ruleset text returned" jq_is .ruleset 'table inet forge_egress { }'
ok "ruleset generation and dry run" jqe '.generation == 3 and .dry_run == true and .duration_ms == 4.5'

# Logs, as egw-flowlog writes them.
for i in $(seq 1 30); do
	action=deny; [ $((i % 3)) -eq 0 ] && action=allow
	sc=scn-a; [ $((i % 2)) -eq 0 ] && sc=scn-b
	echo "INSERT INTO egress_log (ts, scenario_id, network_id, action, src_ip, dst_ip, dst_port, protocol, reason)
	VALUES ('2026-01-01T00:00:$(printf %02d "$i").000Z', '$sc', 'net1', '$action', '100.64.0.2', '203.0.113.$i', 443, 'tcp', 'default');"
done | sql
api GET /v1/logs
ok "GET /v1/logs: 200" status_is 200
ok "30 rows, newest first" jqe '.count == 30 and .logs[0].timestamp == "2026-01-01T00:00:30.000Z" and .logs[29].timestamp == "2026-01-01T00:00:01.000Z"'
ok "earlier service's field names" jqe '.logs[0] | has("timestamp") and has("scenario_id") and has("action") and has("src_ip") and has("dst_ip") and has("dst_port") and has("protocol") and has("reason")'
api GET '/v1/logs?scenario_id=scn-a&action=deny'
ok "filter by scenario and action" jqe '.count == 10 and all(.logs[]; .scenario_id == "scn-a" and .action == "deny")'
api GET '/v1/logs?since=2026-01-01T00:00:10Z&until=2026-01-01T00:00:20Z'
ok "since inclusive, until exclusive" jqe '.count == 10 and .logs[0].timestamp == "2026-01-01T00:00:19.000Z" and .logs[9].timestamp == "2026-01-01T00:00:10.000Z"'
# A '+' in an offset may be sent as it is: the query keeps it a plus sign.
api GET '/v1/logs?since=2026-01-01T01:00:10+01:00&until=2025-12-31T23:30:20%2D00:30'
ok "offsets, '+' sent raw and '-' encoded" jqe '.count == 10 and .logs[0].timestamp == "2026-01-01T00:00:19.000Z" and .logs[9].timestamp == "2026-01-01T00:00:10.000Z"'
api GET '/v1/logs?limit=12'
cursor=$(jq -r .next_cursor "$T/body")
ok "page 1: 12 rows and a cursor" jqe '.count == 12 and (.next_cursor | type == "string")'
api GET "/v1/logs?limit=12&cursor=$cursor"
ok "page 2 continues where page 1 ended" jqe '.count == 12 and .logs[0].timestamp == "2026-01-01T00:00:18.000Z"'
cursor=$(jq -r .next_cursor "$T/body")
api GET "/v1/logs?limit=12&cursor=$cursor"
ok "last page: 6 rows, no cursor" jqe '.count == 6 and .next_cursor == null'
for bad in 'limit=0' 'limit=1001' 'limit=abc' 'action=maybe' 'since=yesterday' \
	'until=2026-13-01T00:00:00Z' 'cursor=-1' 'scenario_id=%20x' 'foo=1' 'limit=1&limit=2' \
	'since=2026-02-31T00:00:00Z' 'since=2026-01-01T00:00:60Z' \
	'since=9999-12-31T23:59:59.999-01:00' 'until=1970-01-01T00:00:00.5+01:00'; do
	api GET "/v1/logs?$bad"
	ok "GET /v1/logs?$bad: 400" error_is 400 bad_request
done

# Stats: earlier service's fields plus counters and applier status.
sql "INSERT INTO policy_counters (scenario_id, allowed_packets, allowed_bytes, denied_packets, denied_bytes, updated_at)
	VALUES ('scn-a', 5, 500, 7, 700, '$now')"
api GET /v1/stats
ok "GET /v1/stats: 200" status_is 200
ok "seed fields present" jqe 'has("total_policies") and has("active_policies") and has("denied_requests") and has("allowed_requests")'
ok "request counts from the egress log" jqe '.denied_requests == 20 and .allowed_requests == 10'
ok "per-scenario figures" jqe '.scenarios["scn-a"].denied_requests == 10 and .scenarios["scn-a"].denied_packets == 7 and .scenarios["scn-b"].allowed_requests == 5'
ok "applier status" jqe '.applier.applied_generation == 3 and .applier.dry_run == true'

# Metrics: Prometheus text with requests, latency, policies, lag, backlog.
api GET /metrics
ok "GET /metrics: 200" status_is 200
ok "metrics content type" bash -c "grep -qi '^content-type: text/plain; version=0.0.4' '$T/headers'"
ok "requests by route and status (a malformed query counts under its route)" grep -q '^egw_api_requests_total{route="logs_list",code="400"} 14$' "$T/body"
ok "latency histogram" grep -q '^egw_api_request_duration_seconds_bucket{route="health",le="+Inf"} ' "$T/body"
ok "policy gauge" grep -q '^egw_policies{state="total"} 0$' "$T/body"
ok "generation lag gauge" grep -q '^egw_generation_lag 0$' "$T/body"
ok "outbox backlog gauge" grep -q '^egw_outbox_backlog ' "$T/body"
ok "every metric line is well-formed" bash -c "grep -v '^#' '$T/body' | grep -Ev '^[a-z_]+(\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\})? [0-9.e+-]+$' | { ! grep -q .; }"

# HEAD and unknown paths.
api GET /v1/policies/a/b/c
ok "unknown path: 404 JSON" error_is 404 not_found
api POST /health '{}'
ok "wrong method: 405 with Allow" error_is 405 method_not_allowed
ok "Allow header" header_is Allow GET
api GET /v1/policies/a/b/c/d/e/f/g/h/i
ok "a path deeper than any route: 404 JSON" error_is 404 not_found
api PROPFINDXXXXXXXXX /v1/policies
ok "a method longer than any route's: 405 JSON" error_is 405 method_not_allowed
ok "... with Allow" header_is Allow "GET, POST"
api PROPFINDXXXXXXXXX /nowhere
ok "a long method on an unknown path: 404 JSON" error_is 404 not_found
api GET /egw-errors/400.json
ok "nginx's internal error pages from outside: 404 JSON" error_is 404 not_found
api GET '/v1/stats?%FF%C0=1'
ok "a non-ASCII parameter name: 400 JSON" error_is 400 bad_request
ok "... the name not echoed" jqe '.error.field == null'
ok "... the body valid UTF-8" iconv -f UTF-8 -t UTF-8 -o /dev/null "$T/body"

ok "every worker log line is JSON with a request id" bash -c \
	"grep '\"msg\":\"request\"' '$T/api.log' | jq -e 'select(.request_id | type != \"string\")' | { ! grep -q .; }"
e2e_done
