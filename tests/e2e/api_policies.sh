#!/bin/bash
# SPDX-License-Identifier: MIT
# /v1/policies through a real nginx: create (201) and update (200), a body
# from the earlier service's clients unchanged, read-modify-write, revision
# conflicts (409), enable/disable, delete ({"status":"deleted"}), the
# unpaged list (every policy) and pagination, ?wait (202 pending without
# an applier), and what every mutation writes in one transaction
# (history, outbox, generation).
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_policies
need_cmd sqlite3

export EGW_AUTH=off
start_api 3
start_nginx
DB=$EGW_STATE_DIR/egw.db
sql() { sqlite3 -cmd '.timeout 5000' "$DB" "$@"; }

# The earlier service's client body, byte for byte.
SEED='{"scenario_id": "scn-001", "network_id": "net-abc123", "profile": "training-updates", "custom_rules": [], "allowed_hosts": [], "allowed_ports": [], "enabled": true}'
api POST /v1/policies "$SEED"
ok "earlier service's body: 201 Created" status_is 201
ok "fields echoed" jqe '.scenario_id == "scn-001" and .network_id == "net-abc123" and .profile == "training-updates" and .enabled == true'
ok "revision 1, pending, timestamps" jqe '.revision == 1 and .status.apply == "pending" and (.created_at | test("Z$")) and .created_at == .updated_at'
gen1=$(jq .generation "$T/body")
ok "generation bumped in the same transaction" test "$(sql 'SELECT desired_generation FROM applier_state')" = "$gen1"
ok "history row written" test "$(sql "SELECT count(*) FROM policy_history WHERE scenario_id='scn-001' AND operation='create'")" = 1
ok "outbox audit event written" test "$(sql "SELECT count(*) FROM outbox WHERE scenario_id='scn-001' AND type='policy.created'")" = 1
ok "history records the request id" test -n "$(sql "SELECT request_id FROM policy_history WHERE scenario_id='scn-001'")"

api GET /v1/policies/scn-001
ok "GET one: 200" status_is 200
ok "GET one: same policy" jqe '.scenario_id == "scn-001" and .revision == 1'

# Read-modify-write: the GET body (with created_at, status, ...) goes back.
jq '.profile = "custom" | .allowed_hosts = ["203.0.113.10", "198.51.100.0/24"] | .allowed_ports = [443, "8000-8100"]' "$T/body" > "$T/rmw.json"
api POST /v1/policies "$(cat "$T/rmw.json")"
ok "read-modify-write: 200 update" status_is 200
ok "revision 2" jqe '.revision == 2 and .profile == "custom"'
ok "canonical hosts and ports" jqe '.allowed_hosts == ["203.0.113.10", "198.51.100.0/24"] and .allowed_ports == [443, "8000-8100"]'
ok "created_at kept, updated_at moved" jqe '.created_at != .updated_at'
# The same body again carries revision 1: stale now.
api POST /v1/policies "$(cat "$T/rmw.json")"
ok "stale revision: 409" error_is 409 conflict
api POST /v1/policies '{"scenario_id":"scn-001","profile":"custom","allowed_hosts":["203.0.113.10"],"revision":2}'
ok "matching revision: 200" status_is 200
ok "revision 3" jqe '.revision == 3'
api POST /v1/policies '{"scenario_id":"scn-new","revision":5}'
ok "create with a revision: 409" error_is 409 conflict

# Enforcement fields and custom_rules.
api POST /v1/policies '{"scenario_id":"scn-002","network_id":"n2","profile":"custom","sources":["100.64.2.0/24"],"interfaces":["veth-s2"],"dns_servers":["192.0.2.53"],"mode":"audit","custom_rules":[{"proto":"tcp","dest":"203.0.113.0/24","ports":[443,"8000-8100"]},{"proto":"icmp","dest":"198.51.100.1"}]}'
ok "policy with sources, interfaces, dns, mode, custom_rules: 201" status_is 201
ok "custom_rules canonical" jqe '.custom_rules[0] == {"proto":"tcp","dest":"203.0.113.0/24","ports":[443,"8000-8100"]} and .custom_rules[1].proto == "icmp"'
ok "mode audit, sources, interfaces" jqe '.mode == "audit" and .sources == ["100.64.2.0/24"] and .interfaces == ["veth-s2"] and .dns_servers == ["192.0.2.53"]'
api POST /v1/policies '{"scenario_id":"scn-003","sources":["100.64.2.0/24"]}'
ok "a source claimed by another scenario: 422" error_is 422 invalid_policy
ok "the conflicting field is named" jqe '.error.details | any(.path == "/sources/0")'
# The interface a policy derives from its network_id (EGW_IFACE_TEMPLATE,
# br-{network_id:12}) is claimed like a named one.
api POST /v1/policies '{"scenario_id":"scn-dv1","network_id":"netdv0000001x"}'
ok "a policy on the interface its network_id derives: 201" status_is 201
ok "... recorded as its claim" test "$(sql "SELECT derived_iface FROM policies WHERE scenario_id = 'scn-dv1'")" = br-netdv0000001
api POST /v1/policies '{"scenario_id":"scn-dv2","interfaces":["br-netdv0000001"]}'
ok "naming another scenario's derived interface: 422" error_is 422 invalid_policy
ok "... at /interfaces/0, naming the owner" jqe '.error.details | any(.path == "/interfaces/0" and (.reason | test("scn-dv1")))'
api POST /v1/policies '{"scenario_id":"scn-dv2","network_id":"netdv0000001y"}'
ok "another network_id deriving the same interface: 422" error_is 422 invalid_policy
ok "... at /network_id, naming the interface and the owner" jqe '.error.details | any(.path == "/network_id" and (.reason | test("br-netdv0000001.*scn-dv1")))'
api POST /v1/policies '{"scenario_id":"scn-dv3","interfaces":["br-netdv0000002"]}'
ok "a named interface: 201" status_is 201
api POST /v1/policies '{"scenario_id":"scn-dv2","network_id":"netdv0000002"}'
ok "a network_id deriving another scenario's named interface: 422" error_is 422 invalid_policy
ok "... at /network_id, naming the owner" jqe '.error.details | any(.path == "/network_id" and (.reason | test("scn-dv3")))'
ok "none of the refused puts stored scn-dv2" test "$(sql "SELECT count(*) FROM policies WHERE scenario_id = 'scn-dv2'")" = 0
for s in scn-dv1 scn-dv3; do api DELETE "/v1/policies/$s"; done

# The largest policy the limits allow goes through the writer and comes
# back whole (its messages carry only the list entries in use).
metric() { api GET /metrics; awk -v m="$1" '$1 == m { print $2 }' "$T/body"; }
BIG=$(jq -nc '{scenario_id: "scn-big", profile: "custom",
	allowed_hosts: [range(256) | "203.0.113.\(.)"],
	custom_rules: [range(256) | {proto: "udp", dest: "198.51.100.\(.)", ports: [53, "6000-6010"]}]}')
BIG_OK='(.allowed_hosts | length) == 256 and .allowed_hosts[0] == "203.0.113.0" and
	.allowed_hosts[255] == "203.0.113.255" and (.custom_rules | length) == 256 and
	.custom_rules[255] == {"proto": "udp", "dest": "198.51.100.255", "ports": [53, "6000-6010"]}'
ops_before=$(metric egw_api_write_batched_ops_total)
api POST /v1/policies "$BIG"
ok "256 hosts and 256 custom rules: 201" status_is 201
ok "the answer carries all of them" jqe "$BIG_OK"
ok "written by the writer" test "$(metric egw_api_write_batched_ops_total)" -gt "${ops_before:-0}"
api GET /v1/policies/scn-big
ok "read back whole" jqe "$BIG_OK"
api POST /v1/policies "$(printf '%s' "$BIG" | jq -c '.custom_rules = .custom_rules[0:3] | .allowed_hosts = []')"
ok "shrunk to 3 rules: 200" status_is 200
ok "no entry of the longer lists is left" jqe '(.allowed_hosts | length) == 0 and (.custom_rules | length) == 3 and .custom_rules[2].dest == "198.51.100.2"'
api POST /v1/policies "$(printf '%s' "$BIG" | jq -c '.allowed_hosts += ["192.0.2.1"]')"
ok "257 hosts: 422" error_is 422 invalid_policy
api POST /v1/policies '{"scenario_id":"scn-big","profile":"custom","mode":"audit","allowed_hosts":["203.0.113.7","198.51.100.0/25","192.0.2.1"],"allowed_ports":[22,"8080-8090"],"custom_rules":[{"proto":"tcp","dest":"203.0.113.9","ports":[443]}],"revision":2}'
ok "a few of each list, every part of the message moved: 200" status_is 200
ok "hosts, ports, rules, mode and revision intact" jqe '.allowed_hosts == ["203.0.113.7","198.51.100.0/25","192.0.2.1"] and .allowed_ports == [22,"8080-8090"] and .custom_rules == [{"proto":"tcp","dest":"203.0.113.9","ports":[443]}] and .mode == "audit" and .revision == 3 and .created_at <= .updated_at'
api DELETE /v1/policies/scn-big
ok "and it deletes" status_is 200

# Enable / disable.
api POST /v1/policies/scn-001/disable
ok "disable: 200" status_is 200
ok "disabled" jqe '.enabled == false and .revision == 4'
api POST /v1/policies/scn-001/disable
ok "disable again: 200, unchanged" jqe '.enabled == false and .revision == 4'
api POST /v1/policies/scn-001/enable '{}'
ok "enable with an empty JSON body: 200" status_is 200
ok "enabled" jqe '.enabled == true and .revision == 5'
api POST /v1/policies/nope/enable
ok "enable unknown: 404" error_is 404 not_found
ok "history has enable and disable" test "$(sql "SELECT group_concat(operation) FROM (SELECT operation FROM policy_history WHERE scenario_id='scn-001' ORDER BY id)")" = "create,update,update,disable,enable"

# ?wait without an applier running: bounded, then 202 pending.
start=$(date +%s%N)
api POST '/v1/policies?wait=1' '{"scenario_id":"scn-wait","profile":"none"}'
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
ok "?wait=1 with no applier: 202" status_is 202
ok "?wait answer says pending" jqe '.status.apply == "pending" and .scenario_id == "scn-wait"'
ok "?wait=1 took about a second ($elapsed ms)" test "$elapsed" -ge 900 -a "$elapsed" -lt 5000
api POST '/v1/policies?wait=31' '{"scenario_id":"scn-wait"}'
ok "?wait above 30: 400" error_is 400 bad_request
ok "the field is wait" jq_is .error.field wait
api POST '/v1/policies?wait=x' '{"scenario_id":"scn-wait"}'
ok "?wait not a number: 400" error_is 400 bad_request
# What the applier does when it has applied a generation: the waiting
# request sees it and answers with the applied policy.
(sleep 1; sql "UPDATE policies SET apply_status='applied', applied_generation=generation WHERE scenario_id='scn-wait'") &
applier_pid=$!
api POST '/v1/policies/scn-wait/disable?wait=10'
ok "?wait returns once the policy is applied: 200" status_is 200
ok "applied status returned" jqe '.status.apply == "applied" and .enabled == false'
wait "$applier_pid"
# Another request changes the scenario while one waits: the waiting one
# answers at once with its own policy, pending, not the other's.
start=$(date +%s%N)
(sleep 1; curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' \
	--data-binary '{"scenario_id":"scn-wait","network_id":"other-writer"}' "$API/v1/policies") &
other_pid=$!
api POST '/v1/policies?wait=20' '{"scenario_id":"scn-wait","network_id":"waiting-writer"}'
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
wait "$other_pid"
ok "?wait overtaken by another change: 202" status_is 202
ok "... with this request's own policy, pending" jqe '.network_id == "waiting-writer" and .status.apply == "pending"'
ok "... at once, not after 20 s ($elapsed ms)" test "$elapsed" -lt 8000
api GET /v1/policies/scn-wait
ok "... the other change is the stored one" jqe '.network_id == "other-writer"'
# A SIGHUP (every worker replaced) lets a ?wait run on: only a stop of the
# pool cuts it short (202 at once).
(sleep 2; sql "UPDATE policies SET apply_status='applied', applied_generation=generation WHERE scenario_id='scn-hup'") &
applier_pid=$!
curl -sS -o "$T/hup.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data-binary '{"scenario_id":"scn-hup","profile":"none"}' "$API/v1/policies?wait=10" > "$T/hup.status" &
hup_pid=$!
sleep 1
kill -HUP "$API_PID"
wait "$hup_pid"
wait "$applier_pid"
ok "a SIGHUP during a ?wait: the wait goes on to the apply ($(cat "$T/hup.status"))" \
	test "$(cat "$T/hup.status")" = 201
ok "... and answers the applied policy" jq -e '.status.apply == "applied"' "$T/hup.body"

# List and pagination.
for i in $(seq -w 1 25); do
	api POST /v1/policies "{\"scenario_id\":\"page-$i\"}"
done
api GET '/v1/policies?limit=10'
ok "list page 1: 10 and a cursor" jqe '.count == 10 and (.next_cursor | type == "string")'
ok "ordered by scenario_id" jqe '[.policies[].scenario_id] == ([.policies[].scenario_id] | sort)'
seen=$(jq -r '.policies[].scenario_id' "$T/body")
cursor=$(jq -r .next_cursor "$T/body")
pages=1
while [ "$cursor" != null ] && [ $pages -lt 10 ]; do
	api GET "/v1/policies?limit=10&cursor=$cursor"
	seen="$seen
$(jq -r '.policies[].scenario_id' "$T/body")"
	cursor=$(jq -r .next_cursor "$T/body")
	pages=$((pages + 1))
done
total=$(sql 'SELECT count(*) FROM policies')
ok "pagination visits every policy once ($total)" test "$(echo "$seen" | sort -u | wc -l)" = "$total" -a "$(echo "$seen" | wc -l)" = "$total"
api GET '/v1/policies'
ok "no limit, no cursor: every policy" jqe ".count == $total and .next_cursor == null"
api GET '/v1/policies?limit=0'
ok "limit 0: 400" error_is 400 bad_request
api GET '/v1/policies?limit=1001'
ok "limit above 1000: 400" error_is 400 bad_request

# The seed contract's "List all policies": a client of the earlier service
# reads one unpaged GET, so more policies than the old default page of
# 100 must all come back in it (150 more, stored by the API's own code).
ok "150 more policies stored" "$(egw_bin tests/e2e/egw-policy)" put-many 150 bulk
total=$(sql 'SELECT count(*) FROM policies')
ok "more policies than one old default page ($total)" test "$total" -gt 150
sql 'SELECT scenario_id FROM policies ORDER BY scenario_id' > "$T/ids.db"
api GET '/v1/policies'
ok "unpaged: 200" status_is 200
ok "unpaged: count == $total stored, all in the array, next_cursor null" \
	jqe ".count == $total and (.policies | length) == $total and .next_cursor == null"
jq -r '.policies[].scenario_id' "$T/body" > "$T/ids.api"
ok "unpaged: every stored scenario_id once, in order" cmp -s "$T/ids.api" "$T/ids.db"
jq -c '.policies[] | select(.scenario_id == "bulk-150")' "$T/body" > "$T/entry"
api GET /v1/policies/bulk-150
ok "unpaged: an entry is the whole policy (as GET one)" \
	bash -c "jq -e --slurpfile e '$T/entry' '. == \$e[0] and .scenario_id == \"bulk-150\" and .sources == [\"100.100.0.150\"]' '$T/body' >/dev/null"
# Paging is unchanged: an explicit limit of 100 pages, and a cursor alone
# still pages by 100 (its default) until next_cursor is null.
api GET '/v1/policies?limit=100'
ok "limit=100 of $total: 100 and a cursor" jqe '.count == 100 and (.policies | length) == 100 and (.next_cursor | type == "string")'
jq -r '.policies[].scenario_id' "$T/body" > "$T/ids.paged"
cursor=$(jq -r .next_cursor "$T/body")
api GET "/v1/policies?cursor=$cursor"
rest=$((total - 100 < 100 ? total - 100 : 100))
ok "cursor alone: a page of at most 100 ($rest)" jqe ".count == $rest"
pages=2
while :; do
	jq -r '.policies[].scenario_id' "$T/body" >> "$T/ids.paged"
	cursor=$(jq -r .next_cursor "$T/body")
	[ "$cursor" != null ] && [ $pages -lt 10 ] || break
	api GET "/v1/policies?cursor=$cursor"
	pages=$((pages + 1))
done
ok "paging by 100 visits every policy once in order ($pages pages)" cmp -s "$T/ids.paged" "$T/ids.db"
api GET '/v1/policies?cursor=bad%20cursor'
ok "bad cursor: 400" error_is 400 bad_request

# Delete.
api GET /v1/policies/scn-001
cp "$T/body" "$T/before_delete.json"
rev_deleted=$(jq .revision "$T/before_delete.json")
gen_before=$(sql 'SELECT desired_generation FROM applier_state')
api DELETE /v1/policies/scn-001
ok "DELETE: 200" status_is 200
ok "DELETE body" jqe '.status == "deleted" and .scenario_id == "scn-001"'
ok "DELETE bumps the generation" test "$(sql 'SELECT desired_generation FROM applier_state')" -gt "$gen_before"
ok "delete written to history and outbox" test "$(sql "SELECT (SELECT count(*) FROM policy_history WHERE scenario_id='scn-001' AND operation='delete') || (SELECT count(*) FROM outbox WHERE scenario_id='scn-001' AND type='policy.deleted')")" = 11
api GET /v1/policies/scn-001
ok "GET after DELETE: 404" error_is 404 not_found
api DELETE /v1/policies/scn-001
ok "DELETE again: 404" error_is 404 not_found
# Created again, the scenario's revisions go on from the deleted policy's:
# a read-modify-write of the deleted policy is a 409, not an overwrite.
api POST /v1/policies '{"scenario_id":"scn-001","profile":"none","mode":"audit"}'
ok "re-created after DELETE: 201" status_is 201
ok "... revision follows the deleted policy's ($rev_deleted)" jqe ".revision == $rev_deleted + 1"
api POST /v1/policies "$(jq '.mode = "enforce"' "$T/before_delete.json")"
ok "the deleted policy's body with its revision: 409" error_is 409 conflict
api GET /v1/policies/scn-001
ok "... the re-created policy is unchanged" jqe ".revision == $rev_deleted + 1 and .mode == \"audit\" and .profile == \"none\""
api DELETE /v1/policies/scn-001
ok "re-created policy deleted" status_is 200
api DELETE '/v1/policies/scn-002?wait=1'
ok "DELETE ?wait=1 with no applier: 202 pending" jqe '.status == "deleted" and .apply == "pending"'
ok "DELETE ?wait=1 status" status_is 202
api GET '/v1/policies/bad%20id'
ok "malformed scenario_id in the path: 400" error_is 400 bad_request
api GET '/v1/policies/%ZZ'
ok "bad percent-encoding in the path: 400" error_is 400 bad_request

# EGW_IFACE_TEMPLATE is configuration: egw-api computes every
# derived claim again when it starts, so a claim follows the template.
api POST /v1/policies '{"scenario_id":"scn-tp1","network_id":"tplnet000001"}'
ok "a derived claim under the default template: 201" status_is 201
derived_of() { sql "SELECT derived_iface FROM policies WHERE scenario_id = '$1'"; }
ok "... recorded as br-" test "$(derived_of scn-tp1)" = br-tplnet000001
stop_api
export EGW_IFACE_TEMPLATE='vx-{network_id:12}'
start_api 3
ok "after a restart under another template, the claim is recomputed" \
	wait_for 10 sh -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$DB' \"SELECT derived_iface FROM policies WHERE scenario_id = 'scn-tp1'\")\" = vx-tplnet000001 ]"
ok "... and logged" grep -q 'recomputed [0-9]* derived interfaces' "$T/api.log"
api POST /v1/policies '{"scenario_id":"scn-tp2","interfaces":["vx-tplnet000001"]}'
ok "the new name is claimed: 422" error_is 422 invalid_policy
api POST /v1/policies '{"scenario_id":"scn-tp2","interfaces":["br-tplnet000001"]}'
ok "the old name is free: 201" status_is 201
unset EGW_IFACE_TEMPLATE
for s in scn-tp1 scn-tp2; do api DELETE "/v1/policies/$s"; done

# The unpaged list is held whole in a worker: past 50,000 policies it asks
# for paging instead (stored straight into the database: the API would take
# minutes).
sql "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
INSERT INTO policies (scenario_id, network_id, profile, generation, created_at, updated_at)
SELECT printf('cap-%05d', i), 'cap', 'none', 1, '2026-01-01T00:00:00.000Z',
       '2026-01-01T00:00:00.000Z' FROM n"
ok "over 50,000 policies stored" test "$(sql 'SELECT count(*) FROM policies')" -gt 50000
api GET /v1/policies
ok "unpaged over 50,000: 400 naming limit" error_is 400 bad_request
ok "unpaged over 50,000: the error says to page" jqe '.error.field == "limit" and (.error.message | test("page"))'
api GET '/v1/policies?limit=1000'
ok "paging still answers over 50,000" jqe '.count == 1000 and (.next_cursor | type == "string")'
e2e_done
