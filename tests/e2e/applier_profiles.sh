#!/bin/bash
# SPDX-License-Identifier: MIT
# egw-applier with real traffic: every profile, custom variants, DNS,
# metadata, IPv6, enable/disable/delete, audit mode, two scenarios side by
# side, drift repair, restart without a lapse.  Everything runs inside
# three namespaces this test creates.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_netns.sh"
e2e_init applier_profiles
need_cmd sqlite3
netns_topology
applier_env
start_applier
A=100.64.1.2 B=100.64.1.3 C=100.64.1.4 A6=2001:db8:64:1::2

ok "-n checks the configuration" "$(egw_bin egw-applier)" -n
ok "the table exists in the gateway namespace" wait_for 10 in_gw nft list table inet forge_egress
ok "the root namespace has no forge_egress table" sh -c '! nft list table inet forge_egress 2>/dev/null'

# Managed source without a policy: baseline "none".
ok "baseline: internal 10.9.0.10:80 allowed" tcp_ok $A 10.9.0.10 80
ok "baseline: external 203.0.113.10:443 refused" tcp_refused $A 203.0.113.10 443
ok "baseline: DNS to the resolver (udp) works" udp_ok $A 198.51.100.20 53
ok "baseline: DNS to another address refused" udp_refused $A 203.0.113.10 53

# none
policy put '{"scenario_id":"sa","profile":"none","sources":["100.64.1.2/32","2001:db8:64:1::2/128"]}'
ok "none applied" applied
ok "none: internal allowed" tcp_ok $A 10.9.0.10 22
ok "none: tcp 443 outside refused" tcp_refused $A 203.0.113.10 443
ok "none: DNS udp to resolver" udp_ok $A 198.51.100.20 53
ok "none: DNS tcp to resolver" tcp_ok $A 198.51.100.20 53
ok "none: DNS to 203.0.113.10 refused" udp_refused $A 203.0.113.10 53
ok "none: IPv6 outside refused" tcp_refused $A6 2001:db8:113::10 443
ok "none: the gateway itself refused (ssh to 100.64.1.1)" tcp_refused $A 100.64.1.1 22
ok "apply status is applied" db_is "SELECT apply_status FROM policies WHERE scenario_id='sa'" applied

# training-updates
policy put '{"scenario_id":"sa","profile":"training-updates","sources":["100.64.1.2/32","2001:db8:64:1::2/128"]}'
ok "training-updates applied" applied
ok "training-updates: 80 allowed" tcp_ok $A 203.0.113.10 80
ok "training-updates: 443 allowed" tcp_ok $A 203.0.113.10 443
ok "training-updates: 443 over IPv6 allowed" tcp_ok $A6 2001:db8:113::10 443
ok "training-updates: 8080 refused" tcp_refused $A 203.0.113.10 8080
ok "training-updates: metadata 169.254.169.254:80 refused" tcp_refused $A 169.254.169.254 80

# external-api
policy put '{"scenario_id":"sa","profile":"external-api","sources":["100.64.1.2/32"]}'
ok "external-api applied" applied
ok "external-api: 443 allowed" tcp_ok $A 198.51.100.20 443
ok "external-api: 80 refused" tcp_refused $A 198.51.100.20 80

# custom: hosts only, ports only, both, rules
policy put '{"scenario_id":"sa","profile":"custom","sources":["100.64.1.2/32"],"allowed_hosts":["203.0.113.10"]}'
ok "custom hosts applied" applied
ok "hosts only: any port to the host (8080)" tcp_ok $A 203.0.113.10 8080
ok "hosts only: other host refused" tcp_refused $A 198.51.100.20 8080
policy put '{"scenario_id":"sa","profile":"custom","sources":["100.64.1.2/32"],"allowed_ports":[8080]}'
ok "custom ports applied" applied
ok "ports only: 8080 anywhere" tcp_ok $A 198.51.100.20 8080
ok "ports only: 443 refused" tcp_refused $A 198.51.100.20 443
policy put '{"scenario_id":"sa","profile":"custom","sources":["100.64.1.2/32"],"allowed_hosts":["203.0.113.10"],"allowed_ports":[8080]}'
ok "custom both applied" applied
ok "both: 8080 on the host" tcp_ok $A 203.0.113.10 8080
ok "both: 8080 elsewhere refused" tcp_refused $A 198.51.100.20 8080
ok "both: 80 on the host refused" tcp_refused $A 203.0.113.10 80
policy put '{"scenario_id":"sa","profile":"custom","sources":["100.64.1.2/32"],"custom_rules":[{"proto":"udp","dest":"203.0.113.10","ports":["123"]}]}'
ok "custom rules applied" applied
ok "rule: udp 123 to host" udp_ok $A 203.0.113.10 123
ok "rule: udp 5353 to host refused" udp_refused $A 203.0.113.10 5353
ok "rule: metadata still refused" tcp_refused $A 169.254.169.254 80
policy put '{"scenario_id":"sa","profile":"custom","sources":["100.64.1.2/32"],"allowed_hosts":["169.254.169.254"]}'
ok "named metadata applied" applied
ok "metadata reachable when named explicitly" tcp_ok $A 169.254.169.254 80

# enable -> disable -> enable, delete
policy put '{"scenario_id":"sa","profile":"training-updates","sources":["100.64.1.2/32"]}'
applied
ok "enabled: 443 allowed" tcp_ok $A 203.0.113.10 443
policy disable sa
ok "disable applied" applied
ok "disabled: 443 refused (baseline)" tcp_refused $A 203.0.113.10 443
ok "disabled: internal still allowed" tcp_ok $A 10.9.0.10 80
policy enable sa
ok "enable applied" applied
ok "re-enabled: 443 allowed" tcp_ok $A 203.0.113.10 443

# two scenarios side by side
policy put '{"scenario_id":"sb","profile":"custom","sources":["100.64.1.3/32"],"allowed_ports":[8080]}'
ok "second scenario applied" applied
ok "A (training-updates) 443 allowed" tcp_ok $A 203.0.113.10 443
ok "A 8080 refused" tcp_refused $A 203.0.113.10 8080
ok "B (ports 8080) 8080 allowed" tcp_ok $B 203.0.113.10 8080
ok "B 443 refused" tcp_refused $B 203.0.113.10 443
ok "C (managed, no policy) 443 refused" tcp_refused $C 203.0.113.10 443

# A profile added by hand whose rule cannot be used (the schema checks no
# destination): its policy fails closed with the reason; every other
# profile and policy stays in force, and changes go on being applied.
log_mark=$(wc -l < "$T/applier.log")
db "INSERT INTO profiles (name, description) VALUES ('ops-bad', 'hand-made');
	INSERT INTO profile_rules (profile, position, proto, dest) VALUES ('ops-bad', 1, 'tcp', 'not-an-address')"
policy put '{"scenario_id":"sd","profile":"ops-bad","sources":["100.64.1.4/32"]}'
ok "policy on an unusable profile: processed" applied
ok "... failed, the reason names the rule" wait_for 10 sh -c \
	"sqlite3 '$EGW_STATE_DIR/egw.db' \"SELECT apply_error FROM policies WHERE scenario_id = 'sd' AND apply_status = 'failed'\" | grep -q 'profile \"ops-bad\" cannot be used: rule 1: dest is not an address or prefix'"
ok "... its source is held to the baseline (C 443 refused)" tcp_refused $C 203.0.113.10 443
ok "... its source keeps the baseline (C internal allowed)" tcp_ok $C 10.9.0.10 80
policy put '{"scenario_id":"sb","profile":"custom","sources":["100.64.1.3/32"],"allowed_ports":[22]}'
ok "another change meanwhile: applied" applied
ok "... B 22 allowed (it was refused)" tcp_ok $B 203.0.113.10 22
sleep 3	# a full reconcile (EGW_RECONCILE_INTERVAL=2) with the bad profile
ok "reconciles go on: no error since the profile appeared" \
	sh -c "! tail -n +$((log_mark + 1)) '$T/applier.log' | grep -q '\"level\":\"error\"'"
ok "the warning is logged once" test "$(grep -c 'profile ops-bad cannot be used' "$T/applier.log")" -eq 1
ok "A (training-updates) still 443 allowed" tcp_ok $A 203.0.113.10 443
# Mended: the next full reconcile applies the policy, and says so.
db "UPDATE profile_rules SET dest = '203.0.113.10' WHERE profile = 'ops-bad'"
ok "mended profile: the policy applies at the next reconcile" wait_for 10 sh -c \
	"[ \"\$(sqlite3 '$EGW_STATE_DIR/egw.db' \"SELECT apply_status FROM policies WHERE scenario_id = 'sd'\")\" = applied ]"
ok "... its port opens (C 443 allowed)" tcp_ok $C 203.0.113.10 443
ok "... and the log says the profile is usable again" grep -q 'profile ops-bad is no longer unusable' "$T/applier.log"
policy delete sd
policy put '{"scenario_id":"sb","profile":"custom","sources":["100.64.1.3/32"],"allowed_ports":[8080]}'
ok "back to the earlier state" applied
db "DELETE FROM profiles WHERE name = 'ops-bad'"

# audit mode
policy put '{"scenario_id":"sc","profile":"none","mode":"audit","sources":["100.64.1.4/32"]}'
ok "audit applied" applied
ok "audit: would-be-denied 443 let through" tcp_ok $C 203.0.113.10 443
# the gateway's own protections are not the policy's to learn: still denied
# (169.254.169.254 answers on 80 and 53 behind the gateway)
ok "audit: cloud metadata stays denied" tcp_refused $C 169.254.169.254 80
ok "audit: cloud metadata's DNS port stays denied" udp_refused $C 169.254.169.254 53
sleep 6
ok "audit: counted in policy_counters" db_ge "SELECT denied_packets FROM policy_counters WHERE scenario_id='sc'" 1

# "port 53 anywhere" does not open the metadata server's port 53
policy put '{"scenario_id":"sc","profile":"custom","sources":["100.64.1.4/32"],"allowed_ports":[53]}'
ok "port 53 anywhere applied" applied
ok "port 53 anywhere: an outside resolver answers" udp_ok $C 203.0.113.10 53
ok "port 53 anywhere: the metadata server's port 53 stays denied" udp_refused $C 169.254.169.254 53

policy delete sb
ok "delete applied" applied
ok "deleted B falls back to baseline" tcp_refused $B 203.0.113.10 8080

# drift: a hand-deleted rule and a hand-deleted element are repaired
H=$(in_gw nft -a list chain inet forge_egress decide | awk '/jump shard_allow_0/ {print $NF}')
in_gw nft delete rule inet forge_egress decide handle "$H"
ok "a hand-deleted rule is repaired by reconcile" wait_for 10 sh -c "ip netns exec $NS_GW nft list chain inet forge_egress decide | grep -q 'jump shard_allow_0'"
ok "drift audit event recorded" db_ge "SELECT count(*) FROM outbox WHERE type='drift.repaired'" 1
ok "A still allowed after repair" tcp_ok $A 203.0.113.10 443
# a table set dormant by hand unhooks every chain, rules all in place
in_gw nft add table inet forge_egress '{ flags dormant; }'
ok "dormant by hand: enforcement is off (A 8080 gets through)" tcp_ok $A 203.0.113.10 8080
ok "a dormant table is repaired by reconcile" wait_for 15 sh -c "! ip netns exec $NS_GW nft list table inet forge_egress | head -3 | grep -q 'flags dormant'"
ok "... enforcing again (A 8080 refused)" tcp_refused $A 203.0.113.10 8080
ok "... A 443 still allowed" tcp_ok $A 203.0.113.10 443
ok "... and the repair is an audit event" wait_for 5 db_ge \
	"SELECT count(*) FROM outbox WHERE type = 'drift.repaired' AND payload LIKE '%dormant%'" 1

# restart under traffic: enforcement never lapses
stop_applier
ok "applier stopped: still enforcing (A 8080 refused)" tcp_refused $A 203.0.113.10 8080
ok "applier stopped: A 443 still allowed" tcp_ok $A 203.0.113.10 443
# handles change when anything is recreated; element sets compared as listed
# (the dynamic counter and rate-limit sets change with traffic: left out)
snapshot() {
	in_gw nft -a list table inet forge_egress |
		awk '/^\tset (cnt|rl)_/ {skip = 1} !skip {print} skip && /^\t}/ {skip = 0}'
}
before=$(snapshot | md5sum)
start_applier
sleep 1
after=$(snapshot | md5sum)
ok "restart with nothing changed leaves the table as it was" [ "$before" = "$after" ]

# A child row edited by hand into nonsense (README: a hand edit bumps the
# generation and adds a history row) fails that policy closed; it does not
# stop the applier from applying everyone else's changes.
policy put '{"scenario_id":"sc","profile":"custom","sources":["100.64.1.4/32"],"allowed_hosts":["203.0.113.10"],"allowed_ports":[443]}'
ok "hand edit: C's policy applied" applied
ok "hand edit: C 443 allowed before" tcp_ok $C 203.0.113.10 443
reconciles() { grep -c '"trigger":"\(interval\|recover\)"' "$T/applier.log"; }
recon_failures() { grep -c 'reconcile (.*) failed' "$T/applier.log"; }
r0=$(reconciles) f0=$(recon_failures)
db "BEGIN IMMEDIATE;
	UPDATE applier_state SET desired_generation = desired_generation + 1;
	UPDATE policy_destinations SET dest = '203.0.113.300'
	 WHERE policy_id = (SELECT id FROM policies WHERE scenario_id = 'sc') AND dest IS NOT NULL;
	UPDATE policies SET generation = (SELECT desired_generation FROM applier_state), api_json = NULL
	 WHERE scenario_id = 'sc';
	INSERT INTO policy_history (ts, scenario_id, operation, actor, revision, generation)
	 SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'sc', 'update', 'hand', revision, generation
	 FROM policies WHERE scenario_id = 'sc';
	COMMIT;"
policy put '{"scenario_id":"sb","profile":"custom","sources":["100.64.1.3/32"],"allowed_ports":[8080]}'
ok "hand edit: another policy's change is still applied" wait_for 15 db_is \
	"SELECT apply_status FROM policies WHERE scenario_id = 'sb'" applied
ok "hand edit: ... and enforced (B 8080 allowed)" tcp_ok $B 203.0.113.10 8080
ok "hand edit: the edited policy failed, with the reason" wait_for 15 db_is \
	"SELECT apply_status || ':' || (apply_error LIKE '%does not parse%') FROM policies WHERE scenario_id = 'sc'" "failed:1"
ok "hand edit: its source gets the baseline (C 443 refused)" tcp_refused $C 203.0.113.10 443
reconciled_since() { [ "$(reconciles)" -gt "$r0" ]; }
ok "hand edit: full reconciles go on past it" wait_for 15 reconciled_since
ok "hand edit: ... and none failed" test "$(recon_failures)" -eq "$f0"

# A flow the policy allowed is cut when the policy is disabled: its next
# packet is decided again, not waved through as "established".
policy put '{"scenario_id":"sc","profile":"custom","sources":["100.64.1.4/32"],"allowed_hosts":["203.0.113.10"],"allowed_ports":[123]}'
ok "open flow: C's policy applied" applied
rm -f "$T/go"
in_scen /usr/bin/python3 - "$T/go" > "$T/flow.out" 2>&1 <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("100.64.1.4", 47000)); s.settimeout(1.0)
def ask(tag):
	try:
		s.sendto(b"x", ("203.0.113.10", 123)); s.recv(64); print(tag, "ok", flush=True)
	except OSError:
		print(tag, "timeout", flush=True)
ask("first"); ask("again")
end = time.monotonic() + 20
while not os.path.exists(sys.argv[1]) and time.monotonic() < end:
	time.sleep(0.05)
ask("after")
PY
flow=$!
wait_for 5 grep -q "again" "$T/flow.out"
diag "flow: $(tr "\n" " " < "$T/flow.out")"
ok "open flow: established both ways" grep -q "again ok" "$T/flow.out"
policy disable sc
ok "open flow: the disable is applied" applied
touch "$T/go"
wait "$flow"
ok "open flow: its next packet is refused after the disable" grep -q "after timeout" "$T/flow.out"

e2e_done
