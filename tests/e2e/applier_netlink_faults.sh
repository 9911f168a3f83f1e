#!/bin/bash
# SPDX-License-Identifier: MIT
# egw-applier against read faults of its nf_tables netlink socket, with
# real traffic (fault_netlink.c, LD_PRELOAD; the kernel's answers are the
# real ones, only how they arrive is disturbed):
#   1. EINTR on every other poll (a signal during a kernel wait):
#      changes are applied, reconciles and counter reads succeed; and a
#      repair through libnftables (whose select() a deliverable signal
#      interrupts) is not taken for a kernel refusal, since the applier
#      holds the signals while libnftables runs;
#   2. a read of the table that the ruleset changed under
#      (NLM_F_DUMP_INTR), once: it is read again and the reconcile succeeds;
#   3. every dump interrupted: reconciles fail (logged), the table the
#      kernel has stays in force untouched, the applier keeps running, and
#      the first reconcile after the fault ends succeeds;
#   4. ENOBUFS (an overrun: the answer queued next is lost): a batch whose
#      acks were lost has an unknown outcome, and the reconcile that
#      follows finds the truth; an overrun on any read is survived.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_netns.sh"
e2e_init applier_netlink_faults
need_cmd sqlite3 cc
netns_topology
applier_env
fault_preload fault_netlink egw-applier
APPLIER_PRELOAD=$FAULT_PRELOAD
export EGW_TEST_NL_READ_FAULT_FILE="$T/fault" EGW_TEST_NL_FAULT_LOG="$T/faults"
start_applier
A=100.64.1.2

# fault MODE COUNT: from now on; none: off
# (a third word, a serial number, makes the same fault twice a new one)
FAULTS=0
fault() {
	: > "$T/faults"
	MARK=$(wc -l < "$T/applier.log")
	FAULTS=$((FAULTS + 1))
	if [ "$1" = none ]; then rm -f "$T/fault"; else echo "$1 $2 $FAULTS" > "$T/fault"; fi
}
since() { tail -n +$((MARK + 1)) "$T/applier.log"; }
# reconciled_since N: N reconciles that read the kernel ended well since the mark
reconciled_since() { [ "$(since | grep -c '"msg":"reconciled')" -ge "$1" ]; }
failed_since() { since | grep -q 'reconcile ([a-z]*) failed'; }
injected() { [ "$(grep -c "^$1\$" "$T/faults")" -ge "$2" ]; }
# the counter row of sa was written after $1 (an ISO time, UTC)
counters_read() {
	db_ge "SELECT count(*) FROM policy_counters WHERE scenario_id = 'sa' AND updated_at > '$1'" 1
}
no_failure_since() { ! failed_since; }
no_drift_since() { ! since | grep -q '"drift"'; }
# training-updates: 80 and 443; external-api: 443 only
enforces_training() { tcp_ok $A 203.0.113.10 443 && tcp_ok $A 203.0.113.10 80 && tcp_refused $A 203.0.113.10 8080; }
enforces_external() { tcp_ok $A 203.0.113.10 443 && tcp_refused $A 203.0.113.10 80; }

policy put '{"scenario_id":"sa","profile":"training-updates","sources":["100.64.1.2/32"]}'
ok "a policy applied without faults" applied
ok "... enforced (80, 443 allowed, 8080 refused)" enforces_training

# ---- 1. EINTR ----
fault eintr 1000000
policy put '{"scenario_id":"sa","profile":"external-api","sources":["100.64.1.2/32"]}'
ok "EINTR on every other wait: a change is applied" applied
ok "... and enforced (external-api: 443 allowed, 80 refused)" enforces_external
ok "... full reconciles succeed" wait_for 15 reconciled_since 2
ok "... with no reconcile failing" no_failure_since
ok "... and no drift found" no_drift_since
ok "... and no answers reported lost" sh -c "! tail -n +$((MARK + 1)) '$T/applier.log' | grep -q 'dropped [0-9]* unread'"
ok "EINTR was injected into polls" injected eintr-poll 10
# a repair goes through libnftables (nft text), which waits with select()
H=$(in_gw nft -a list chain inet forge_egress decide | awk '/jump shard_allow_0/ {print $NF}')
in_gw nft delete rule inet forge_egress decide handle "$H"
ok "... a hand-deleted rule is repaired through it" wait_for 15 sh -c \
	"ip netns exec $NS_GW nft list chain inet forge_egress decide | grep -q 'jump shard_allow_0'"
ok "... not taken for a refusal (libnftables runs with the signals held)" \
	sh -c "! tail -n +$((MARK + 1)) '$T/applier.log' | grep -q 'refused it\|isolating'"
now=$(date -u +%Y-%m-%dT%H:%M:%S)
tcp_ok $A 203.0.113.10 443
ok "counters are read through it" wait_for 15 counters_read "$now"

# ---- 2. one interrupted read of the table ----
fault dumpintr-rules 1
ok "one interrupted read of the table: the interruption was injected" wait_for 15 injected dumpintr-rules 1
ok "... the table was read again" wait_for 5 sh -c \
	"tail -n +$((MARK + 1)) '$T/applier.log' | grep -q 'the ruleset changed under a read of the table; reading it again'"
ok "... the reconcile succeeded" wait_for 5 reconciled_since 1
ok "... no reconcile failed" no_failure_since
ok "... and no drift found (read again, whole)" no_drift_since

# ---- 3. every dump interrupted ----
# with handles: a table replaced with the same content would differ
snapshot() {
	in_gw nft -a list table inet forge_egress |
		awk '/^\tset (cnt|rl)_/ {skip = 1} !skip {print} skip && /^\t}/ {skip = 0}'
}
before=$(snapshot | md5sum)
fault dumpintr 1000000
ok "every dump interrupted: reconciles fail, and say so" wait_for 15 failed_since
ok "... and why" sh -c "tail -n +$((MARK + 1)) '$T/applier.log' | grep -q 'the ruleset changed under each of 3 reads of the table in a row'"
ok "... the applier keeps running" kill -0 "$APPLIER_PID"
ok "... the kernel's table is untouched" test "$(snapshot | md5sum)" = "$before"
ok "... and enforces (443 allowed, 80 refused)" enforces_external
fault none
ok "the fault ended: the next reconcile succeeds" wait_for 15 reconciled_since 1
policy put '{"scenario_id":"sa","profile":"training-updates","sources":["100.64.1.2/32"]}'
ok "... and changes are applied again" applied
ok "... and enforced (80 allowed)" enforces_training

# ---- 4. ENOBUFS ----
fault enobufs-acks 1
policy put '{"scenario_id":"sa","profile":"external-api","sources":["100.64.1.2/32"]}'
ok "a batch's acks lost to an overrun" wait_for 15 injected enobufs-acks 1
ok "... its outcome is unknown: the applier reconciles" wait_for 10 sh -c \
	"tail -n +$((MARK + 1)) '$T/applier.log' | grep -q 'incremental apply failed; reconciling'"
ok "... and the change is applied" applied
ok "... and enforced (80 refused, 443 allowed)" enforces_external
MARK=$(wc -l < "$T/applier.log")
ok "... the next reconcile succeeds" wait_for 10 reconciled_since 1
ok "... and finds no drift" no_drift_since
fault enobufs 3
ok "overruns on any read" wait_for 15 injected 'enobufs.*' 3
MARK=$(wc -l < "$T/applier.log")
ok "... the reconciles after them succeed" wait_for 15 reconciled_since 2
policy put '{"scenario_id":"sa","profile":"training-updates","sources":["100.64.1.2/32"]}'
ok "... changes are applied" applied
ok "... and enforced" enforces_training
ok "the applier kept running throughout" kill -0 "$APPLIER_PID"
fault none
stop_applier
e2e_done
