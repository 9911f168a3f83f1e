#!/bin/bash
# SPDX-License-Identifier: MIT
# egw-applier when the kernel refuses, inside namespaces this test creates:
#   1. DRY_RUN=false without CAP_NET_ADMIN (setpriv drops it from the
#      bounding set): netlink opens, every request fails with EPERM.
#      The failure is logged; across several reconcile intervals and
#      changes no policy is ever marked applied and the applied
#      generation stays behind, and a burst of commits does not cost a
#      reconcile each; started with the capability, the same database
#      is applied and enforced.
#   2. a delete the kernel refuses (one of the scenario's elements was
#      removed by hand: ENOENT): the applier must not forget the
#      scenario, and the reconcile that follows at once (the interval is
#      an hour) removes what the kernel kept;
#   3. a disable refused together with its baseline fallback (same
#      trick): the kernel kept the old, more open allowlist; the
#      reconcile that follows at once closes it and the policy is
#      applied (disabled) for real.
#   4. a scenario whose elements the kernel refuses every time
#      (fault_netlink.c renames the set of any element message carrying
#      its source, so the real kernel refuses the transaction): a cold
#      start still puts the table up, every other scenario applied and
#      enforced, that one failed closed; reconciles go on succeeding and
#      other changes are applied; once the kernel takes it, it is applied.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_netns.sh"
e2e_init applier_refusal
need_cmd sqlite3 setpriv
netns_topology
A=100.64.1.2 B=100.64.1.3 C=100.64.1.4

applier_failures() {
	local n
	n=$(grep -c 'reconcile ([a-z]*) failed' "$T/applier.log" 2>/dev/null)
	echo "${n:-0}"
}
failures_reach() { [ "$(applier_failures)" -ge "$1" ]; }
n_applied() { db "SELECT count(*) FROM policies WHERE apply_status = 'applied'"; }
# The elements of mark $1 in the table's sets and maps, which print
# marks as 0x%08x ("0x00000001 . 203.0.113.10 . tcp . 8080",
# "100.64.1.2 : 0x00000001"); not the rules (their vmaps name every
# shard) nor the dynamic counter/rate-limit sets (cnt_, rl_), where
# packets leave their marks.
mark_elems() {
	in_gw nft list table inet forge_egress 2>/dev/null |
		awk '/^\t(set|map) / {keep = $2 !~ /^(cnt|rl)_/} keep {print} /^\t}/ {keep = 0}' |
		grep -oE "$(printf '0x%08x' "$1")( \.|[ ,}]|$)" | wc -l
}
no_mark_elems() { [ "$(mark_elems "$1")" -eq 0 ]; }
status_is() { db_is "SELECT apply_status FROM policies WHERE scenario_id = '$1'" "$2"; }

# ---- 1. no CAP_NET_ADMIN: every kernel request refused ----
applier_env	# EGW_RECONCILE_INTERVAL=2
# policies waiting before the applier starts: the start-up reconcile
# takes them, and fails
policy put '{"scenario_id":"sa","profile":"custom","sources":["100.64.1.2/32"],"allowed_hosts":["203.0.113.10"],"allowed_ports":[8080]}'
policy put '{"scenario_id":"sb","profile":"none","sources":["100.64.1.3/32"]}'
# not start_applier: it bails out unless the start-up reconcile logs its end
ip netns exec "$NS_GW" setpriv --inh-caps=-all --bounding-set=-net_admin -- \
	"$(egw_bin egw-applier)" >> "$T/applier.log" 2>&1 &
APPLIER_PID=$!
track_pid "$APPLIER_PID"
wait_for 10 test -S "$EGW_RUN_DIR/applier.sock" ||
	{ echo "Bail out! applier did not start"; exit 99; }
ok "no CAP_NET_ADMIN: the start-up reconcile fails, and says so" \
	wait_for 10 grep -q 'reconcile (start) failed' "$T/applier.log"
ok "no CAP_NET_ADMIN: the kernel's reason is logged" grep -q 'Operation not permitted' "$T/applier.log"
# changes while the kernel refuses: each is a nudge; sa again (its
# elements unchanged) and a new one
policy put '{"scenario_id":"sa","profile":"custom","sources":["100.64.1.2/32"],"allowed_hosts":["203.0.113.10"],"allowed_ports":[8080],"network_id":"again"}'
sleep 1
policy put '{"scenario_id":"sc","profile":"none","sources":["100.64.1.4/32"]}'
f0=$(applier_failures)
# a burst of commits must not cost a reconcile each
for i in 1 2 3 4 5 6 7 8 9 10; do
	policy put '{"scenario_id":"sb","profile":"none","sources":["100.64.1.3/32"],"network_id":"burst'$i'"}'
done
f1=$(applier_failures)
diag "failed reconciles: $f0 before the burst of 10 commits, $f1 after"
ok "a burst of 10 commits while refused: at most 3 reconciles" [ $((f1 - f0)) -le 3 ]
ok "several reconcile intervals pass, each refused" wait_for 20 failures_reach $((f1 + 4))
diag "statuses: $(db "SELECT group_concat(scenario_id || '=' || apply_status, ' ') FROM policies")"
ok "no policy marked applied while the kernel refuses" [ "$(n_applied)" -eq 0 ]
ok "applied generation stays behind the desired one" \
	db_is "SELECT applied_generation < desired_generation FROM applier_state" 1
ok "no apply.succeeded event" db_is "SELECT count(*) FROM outbox WHERE type = 'apply.succeeded'" 0
ok "no table in the kernel" sh -c "! ip netns exec $NS_GW nft list table inet forge_egress >/dev/null 2>&1"
stop_applier
# the same database, now with the capability; an hour between
# reconciles, so only the one a failure triggers can heal parts 2 and 3
export EGW_RECONCILE_INTERVAL=3600
start_applier
ok "with CAP_NET_ADMIN: applied" applied
ok "with CAP_NET_ADMIN: every policy applied" db_is "SELECT count(*) FROM policies WHERE apply_status <> 'applied'" 0
MA=$(db "SELECT id FROM policies WHERE scenario_id = 'sa'")
ok "with CAP_NET_ADMIN: sa's elements are in the table" [ "$(mark_elems "$MA")" -ge 3 ]
ok "with CAP_NET_ADMIN: sa 8080 allowed" tcp_ok $A 203.0.113.10 8080
ok "with CAP_NET_ADMIN: sa 443 refused" tcp_refused $A 203.0.113.10 443

# ---- 2. a refused delete ----
# two hosts, so that one element stays when the other is removed by hand
policy delete sc	# sd takes over C's source
policy put '{"scenario_id":"sd","profile":"custom","sources":["100.64.1.4/32"],"allowed_hosts":["203.0.113.10","198.51.100.20"],"allowed_ports":[8080]}'
ok "sd applied" applied
ok "sd applied: status" status_is sd applied
MD=$(db "SELECT id FROM policies WHERE scenario_id = 'sd'")
ok "sd: C 8080 to 203.0.113.10 allowed" tcp_ok $C 203.0.113.10 8080
in_gw nft list set inet forge_egress allow4_$((MD % 256)) > "$T/sd.set" 2>&1
sed 's/^/# /' "$T/sd.set" | grep -F "$(printf '0x%08x' "$MD") . " | head -4
# (the port as a range: the set has the interval flag)
in_gw nft delete element inet forge_egress allow4_$((MD % 256)) "{ $MD . 198.51.100.20 . tcp . 8080-8080 }" ||
	{ echo "Bail out! cannot remove sd's element by hand"; exit 99; }
ok "sd: one element removed by hand" sh -c "! ip netns exec $NS_GW nft list set inet forge_egress allow4_$((MD % 256)) | grep -q '198.51.100.20 . tcp'"
n_rec=$(grep -c '"trigger":"recover"' "$T/applier.log")
n_ref=$(grep -c 'scenarios refused' "$T/applier.log")
policy delete sd
ok "refused delete: processed" applied
ok "refused delete: the kernel did refuse it" [ "$(grep -c 'scenarios refused' "$T/applier.log")" -gt "$n_ref" ]
ok "refused delete: a reconcile follows at once and removes what the kernel kept" \
	wait_for 5 no_mark_elems "$MD"
ok "refused delete: that reconcile is the recover one" \
	wait_for 5 sh -c "[ \$(grep -c '\"trigger\":\"recover\"' '$T/applier.log') -gt $n_rec ]"
ok "refused delete: C 8080 to 203.0.113.10 no longer allowed" tcp_refused $C 203.0.113.10 8080

# ---- 3. a refused disable whose baseline is refused too ----
# its own source, so that it does not depend on part 2's outcome
E=100.64.1.5
ip -n "$NS_SCEN" addr add $E/24 dev s0
policy put '{"scenario_id":"se","profile":"custom","sources":["100.64.1.5/32"],"allowed_hosts":["203.0.113.10","198.51.100.20"],"allowed_ports":[8080]}'
ok "se applied" applied
ok "se applied: status" status_is se applied
ME=$(db "SELECT id FROM policies WHERE scenario_id = 'se'")
ok "se: E 8080 to 203.0.113.10 allowed" tcp_ok $E 203.0.113.10 8080
in_gw nft delete element inet forge_egress allow4_$((ME % 256)) "{ $ME . 198.51.100.20 . tcp . 8080-8080 }" ||
	{ echo "Bail out! cannot remove se's element by hand"; exit 99; }
n_warn=$(grep -c 'incremental apply failed; reconciling' "$T/applier.log")
n_ref=$(grep -c 'scenarios refused' "$T/applier.log")
"$(egw_bin tests/e2e/egw-policy)" disable se > /dev/null
ok "refused disable: processed" applied
ok "refused disable: the kernel did refuse it" [ "$(grep -c 'scenarios refused' "$T/applier.log")" -gt "$n_ref" ]
ok "refused disable: the log says it reconciles" \
	wait_for 5 sh -c "[ \$(grep -c 'incremental apply failed; reconciling' '$T/applier.log') -gt $n_warn ]"
ok "refused disable: the reconcile applies it (status applied)" wait_for 5 status_is se applied
ok "refused disable: at the current generation" wait_for 5 \
	db_is "SELECT p.applied_generation = s.desired_generation FROM policies p, applier_state s WHERE p.scenario_id = 'se'" 1
ok "refused disable: the old allowlist is gone from the kernel" \
	sh -c "! ip netns exec $NS_GW nft list set inet forge_egress allow4_$((ME % 256)) | grep -qF '$(printf '0x%08x' "$ME") . 203.0.113.10 . tcp'"
ok "refused disable: E 8080 to 203.0.113.10 refused" tcp_refused $E 203.0.113.10 8080
ok "the applier kept running" kill -0 "$APPLIER_PID"
stop_applier

# ---- 4. a scenario the kernel refuses every time ----
fault_preload fault_netlink egw-applier
APPLIER_PRELOAD=$FAULT_PRELOAD
export EGW_TEST_NL_REFUSE_FILE="$T/refuse"
F=100.64.1.6
ip -n "$NS_SCEN" addr add $F/24 dev s0
# first every element carrying sf's source is refused: its failed
# baseline carries it too, so none of its elements can go in
echo $F > "$EGW_TEST_NL_REFUSE_FILE"
policy put '{"scenario_id":"sf","profile":"custom","sources":["100.64.1.6/32"],"allowed_hosts":["203.0.113.10","198.51.100.77"],"allowed_ports":[8080]}'
policy put '{"scenario_id":"sa","profile":"custom","sources":["100.64.1.2/32"],"allowed_hosts":["203.0.113.10"],"allowed_ports":[8080]}'
MF=$(db "SELECT id FROM policies WHERE scenario_id = 'sf'")
sf_source_is_its() {
	ip netns exec "$NS_GW" nft list map inet forge_egress srch4 |
		grep -q "100.64.1.6 : $(printf '0x%08x' "$MF")"
}
sf_source_is_not_in() {
	! ip netns exec "$NS_GW" nft list map inet forge_egress srch4 | grep -q "100.64.1.6 :"
}
# a cold start: no table, so the whole ruleset is one transaction
in_gw nft delete table inet forge_egress
export EGW_RECONCILE_INTERVAL=2
n_iso=$(grep -c 'reconcile isolated' "$T/applier.log")
start_applier
ok "refused every time: the cold start isolates it" \
	[ "$(grep -c 'reconcile isolated' "$T/applier.log")" -gt "$n_iso" ]
ok "refused every time: the table is up anyway" in_gw nft list table inet forge_egress
ok "refused every time: sf failed, with the kernel's reason" \
	db_is "SELECT apply_status || ' ' || (apply_error LIKE '%No such file%') FROM policies WHERE scenario_id = 'sf'" "failed 1"
ok "refused every time: the others applied" \
	db_is "SELECT count(*) FROM policies WHERE scenario_id <> 'sf' AND apply_status <> 'applied'" 0
ok "refused every time: applied generation = desired" gen_applied
ok "refused every time: sa 8080 allowed" tcp_ok $A 203.0.113.10 8080
ok "refused every time: sa 443 refused" tcp_refused $A 203.0.113.10 443
ok "refused with its baseline: removed from the table" \
	grep -q 'scenario sf: the kernel refused its elements.*removed from the table' "$T/applier.log"
ok "refused with its baseline: its source is not in the table" sf_source_is_not_in
ok "refused with its baseline: sf's traffic refused (the managed networks' baseline)" \
	tcp_refused $F 203.0.113.10 8080
ok "refused every time: and so is an unknown managed source's" tcp_refused $E 203.0.113.10 8080
# the interval reconciles (every 2 s) keep succeeding; a change goes in
n_ok=$(grep -c '"trigger":"interval"' "$T/applier.log")
n_fail=$(grep -c 'reconcile (interval) failed' "$T/applier.log")
ok "refused every time: interval reconciles succeed" wait_for 10 sh -c \
	"[ \$(grep -c '\"trigger\":\"interval\"' '$T/applier.log') -ge $((n_ok + 2)) ]"
ok "refused every time: none of them fails" [ "$(grep -c 'reconcile (interval) failed' "$T/applier.log")" -eq "$n_fail" ]
policy put '{"scenario_id":"sa","profile":"custom","sources":["100.64.1.2/32"],"allowed_hosts":["203.0.113.10"],"allowed_ports":[8080,443]}'
ok "refused every time: another scenario's change is applied" applied
ok "refused every time: sa 443 now allowed" wait_for 5 tcp_ok $A 203.0.113.10 443
ok "refused every time: sf still failed" status_is sf failed
# now only its allowlist is refused (an address only sf allows): its
# failed baseline goes in, under its own mark
echo 198.51.100.77 > "$EGW_TEST_NL_REFUSE_FILE"
ok "refused allowlist: sf fails closed on its baseline" wait_for 10 \
	grep -q 'scenario sf: the kernel refused its elements.*failed closed (baseline)' "$T/applier.log"
ok "refused allowlist: sf's source is its own again" wait_for 5 sf_source_is_its
ok "refused allowlist: sf's traffic refused" tcp_refused $F 203.0.113.10 8080
ok "refused allowlist: sf still failed" status_is sf failed
sleep 3	# a reconcile in between, then count
n_ev=$(db "SELECT count(*) FROM outbox WHERE type = 'apply.failed' AND scenario_id = 'sf'")
n_drift=$(db "SELECT count(*) FROM outbox WHERE type = 'drift.repaired'")
n_iso=$(grep -c 'reconcile isolated' "$T/applier.log")
sleep 5	# two more interval reconciles, each refused again
ok "refused again: the reconciles went on, isolated" \
	[ "$(grep -c 'reconcile isolated' "$T/applier.log")" -ge $((n_iso + 2)) ]
ok "refused again: the same refusal is not reported again" \
	db_is "SELECT count(*) FROM outbox WHERE type = 'apply.failed' AND scenario_id = 'sf'" "$n_ev"
ok "refused again: nor called drift" \
	db_is "SELECT count(*) FROM outbox WHERE type = 'drift.repaired'" "$n_drift"
# the kernel takes it again: the next reconcile applies it
rm -f "$EGW_TEST_NL_REFUSE_FILE"
ok "once the kernel takes it: sf applied" wait_for 10 status_is sf applied
ok "once the kernel takes it: sf 8080 allowed" tcp_ok $F 203.0.113.10 8080
ok "the applier kept running" kill -0 "$APPLIER_PID"
stop_applier

e2e_done
