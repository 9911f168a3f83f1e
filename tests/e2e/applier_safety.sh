#!/bin/bash
# SPDX-License-Identifier: MIT
# egw-applier's safety properties, inside namespaces this test creates:
#   1. DRY_RUN=true changes nothing in the kernel (table absent, or a
#      table left byte for byte as it was) but stores the rendered text;
#   2. a policy the kernel refuses (its element conflicts with one put
#      into its set by hand: EEXIST) falls back to the baseline with
#      status failed and the kernel's message, the scenario applied in
#      the same batch is unaffected, and reconcile heals it;
#   3. SIGKILL + restart under continuous traffic: a denied connection
#      never gets through and an allowed one never fails;
#   4. policies whose fields carry nft syntax are rejected by the API's
#      codec, nothing is stored and the table is byte for byte unchanged;
#   5. 200 random valid policies render, pass libnftables' dry run, load
#      through the libnftnl path and read back unchanged;
#   and the counters: exact deltas, no double counting after a restart,
#   a recreated table's counts added to the stored totals.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_netns.sh"
e2e_init applier_safety
need_cmd sqlite3 timeout
netns_topology
A=100.64.1.2 B=100.64.1.3 C=100.64.1.4
CHECK=$(egw_bin tests/e2e/egw-applier-check)

# the table as listed, without the dynamic counter/rate-limit sets
snapshot() {
	in_gw nft -a list table inet forge_egress 2>&1 |
		awk '/^\tset (cnt|rl)_/ {skip = 1} !skip {print} skip && /^\t}/ {skip = 0}'
}
last_start_done() { grep -c '"trigger":"start"' "$T/applier.log"; }

# ---- 0. an enforcing applier must know the scenario networks ----
# Without EGW_MANAGED_SOURCES/IFACES a scenario whose policy does not exist
# yet (or any more) would be forwarded unpoliced: refused at start, before
# any table exists.
EGW_RECONCILE_INTERVAL=3600 applier_env
DRY_RUN=false EGW_MANAGED_SOURCES= EGW_MANAGED_IFACES= \
	in_gw timeout 10 "$(egw_bin egw-applier)" > "$T/unscoped.log" 2>&1
ok "enforcing without managed networks: refused (exit 2)" test $? -eq 2
ok "the refusal names EGW_MANAGED_SOURCES and =none" \
	grep -q "EGW_MANAGED_SOURCES.*EGW_MANAGED_SOURCES=none" "$T/unscoped.log"
ok "and no table was created" sh -c "! ip netns exec $NS_GW nft list table inet forge_egress 2>/dev/null"
DRY_RUN=false EGW_MANAGED_SOURCES=none EGW_MANAGED_IFACES= \
	in_gw "$(egw_bin egw-applier)" -n > "$T/unscoped.log" 2>&1
ok "EGW_MANAGED_SOURCES=none says it explicitly: accepted" test $? -eq 0

# ---- 1. dry run ----
export DRY_RUN=true
# The socket's mode comes with its bind, not a chmod by name after it
# (fault_chmod.c swaps a link in at that name, as the run directory's
# owner could when root runs the applier by hand).
fault_preload fault_chmod egw-applier
printf precious > "$T/victim.sock"
chmod 600 "$T/victim.sock"
export EGW_TEST_CHMOD_PATH=$EGW_RUN_DIR/applier.sock EGW_TEST_CHMOD_TARGET=$T/victim.sock
APPLIER_PRELOAD=$FAULT_PRELOAD start_applier
unset EGW_TEST_CHMOD_PATH EGW_TEST_CHMOD_TARGET
ok "the applier's socket is a socket (not a swapped-in link), mode 660" \
	bash -c "[ ! -L '$EGW_RUN_DIR/applier.sock' ] && [ -S '$EGW_RUN_DIR/applier.sock' ] &&
		[ \"\$(stat -c %a '$EGW_RUN_DIR/applier.sock')\" = 660 ]"
ok "the file such a link pointed at keeps its mode (no chmod by name)" \
	test "$(stat -c %a "$T/victim.sock")" = 600
policy put '{"scenario_id":"sa","profile":"training-updates","sources":["100.64.1.2/32"]}'
ok "dry run: the change is processed" applied
ok "dry run: no table in the kernel" sh -c "! ip netns exec $NS_GW nft list table inet forge_egress 2>/dev/null"
ok "dry run: the rendered ruleset is stored" sh -c "sqlite3 '$EGW_STATE_DIR/egw.db' 'SELECT rendered_ruleset FROM applier_rendered' | grep -q '^table inet forge_egress'"
M=$(db "SELECT id FROM policies WHERE scenario_id='sa'")
# the text is stored once changes pause for 2 s
ok "dry run: the stored text holds the policy's elements" wait_for 10 sh -c "sqlite3 '$EGW_STATE_DIR/egw.db' 'SELECT rendered_ruleset FROM applier_rendered' | grep -q '^add element inet forge_egress allow4_$((M % 256)) '"
ok "dry run: status applied (validated)" db_is "SELECT apply_status FROM policies WHERE scenario_id='sa'" applied
ok "a running applier reports running" db_is "SELECT json_extract(info, '\$.running') FROM component_status WHERE component='applier'" 1
stop_applier
# /readyz turns not ready at once, not when the heartbeat grows stale.
ok "a stopped applier's last report says it stopped" db_is "SELECT json_extract(info, '\$.running') FROM component_status WHERE component='applier'" 0
# now a real table exists; a dry-run applier must leave it untouched
export DRY_RUN=false
: > "$T/applier.log"
start_applier
ok "enforcing applier built the table" wait_for 20 sh -c "[ \$(grep -c '\"trigger\":\"start\"' '$T/applier.log') -ge 1 ]"
# A second applier would fight the first over the table (src/instance.h).
in_gw timeout 10 "$(egw_bin egw-applier)" > "$T/second.log" 2>&1
ok "a second applier, same run directory: exits 1" test $? -eq 1
ok "it names the first one" grep -q "another egw-applier runs with EGW_RUN_DIR=$EGW_RUN_DIR (pid $APPLIER_PID)" "$T/second.log"
in_gw timeout 10 "$(egw_bin egw-applier)" -1 > "$T/second.log" 2>&1
ok "a one-shot applier meanwhile: exits 1 too" test $? -eq 1
mkdir -p "$T/run2"
sock_ino=$(stat -c %i "$EGW_RUN_DIR/applier.sock")
EGW_APPLIER_SOCKET="$EGW_RUN_DIR/applier.sock" EGW_RUN_DIR="$T/run2" \
	in_gw timeout 10 "$(egw_bin egw-applier)" > "$T/second.log" 2>&1
ok "another run directory, the same socket: exits 1" test $? -eq 1
ok "the socket is still the first applier's" test "$(stat -c %i "$EGW_RUN_DIR/applier.sock")" = "$sock_ino"
# A second gateway set up with its own run directory and socket shares
# the namespace's one table: refused too (src/instance.h, namespace lock).
mkdir -p "$T/run3"
EGW_APPLIER_SOCKET="$T/run3/applier.sock" EGW_RUN_DIR="$T/run3" \
	in_gw timeout 10 "$(egw_bin egw-applier)" > "$T/second.log" 2>&1
ok "another run directory and socket, the same namespace: exits 1" test $? -eq 1
ok "it says another applier runs in this network namespace" \
	grep -q "another egw-applier runs in this network namespace" "$T/second.log"
ok "the first applier is still running" kill -0 "$APPLIER_PID"
stop_applier
# Abstract names have no permissions: a process of any user that holds
# the name keeps an enforcing applier from starting (two over one table
# would be worse); the refusal names it.
# (not through in_gw: a function in the background is a subshell, and
# $! must be the holder itself; ip, setpriv and python3 exec each other)
ip netns exec "$NS_GW" setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c '
import socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0forge-egress-gateway/egw-applier")
s.listen(1)
time.sleep(120)
' &
SQUAT_PID=$!
track_pid "$SQUAT_PID"
wait_for 10 sh -c "ip netns exec $NS_GW ss -xl | grep -q forge-egress-gateway/egw-applier" ||
	{ echo "Bail out! the squatter did not start"; exit 99; }
in_gw timeout 10 "$(egw_bin egw-applier)" > "$T/second.log" 2>&1
ok "the name held by another process: the applier refuses to start (exit 1)" test $? -eq 1
ok "and names the holder's pid and uid" \
	grep -q "another egw-applier runs in this network namespace (pid $SQUAT_PID, uid $(id -u nobody)" "$T/second.log"
kill "$SQUAT_PID" 2>/dev/null
wait "$SQUAT_PID" 2>/dev/null
before=$(snapshot | md5sum)
export DRY_RUN=true
start_applier
policy put '{"scenario_id":"sa","profile":"custom","sources":["100.64.1.2/32"],"allowed_hosts":["203.0.113.10"]}'
ok "dry run over a live table: the change is processed" applied
ok "dry run over a live table: table byte for byte unchanged" [ "$before" = "$(snapshot | md5sum)" ]
ok "dry run over a live table: stored text has the new entry" wait_for 10 sh -c "sqlite3 '$EGW_STATE_DIR/egw.db' 'SELECT rendered_ruleset FROM applier_rendered' | grep -q '$M . 203.0.113.10 . 0-255 . 0-65535'"
stop_applier
# A stored address in an IPv6 form of an IPv4 one (stored before every
# input refused them, or written by hand) would be accepted by nft and
# match nothing: the policy fails closed, with the reason, and its
# baseline holds the sources' IPv4 equivalents (the packets' real
# addresses), not the forms no packet has.
policy put '{"scenario_id":"sm","profile":"custom","sources":["100.64.1.9/32"],"allowed_hosts":["203.0.113.20"]}'
db "UPDATE policy_destinations SET dest = '::ffff:203.0.113.20' WHERE dest LIKE '203.0.113.20%'; UPDATE policies SET api_json = NULL WHERE scenario_id = 'sm'"
ok "hand-edited: the mapped host is stored" db_is "SELECT count(*) FROM policy_destinations WHERE dest = '::ffff:203.0.113.20'" 1
start_applier
ok "hand-edited host: processed" applied
ok "hand-edited host: status failed" wait_for 10 db_is "SELECT apply_status FROM policies WHERE scenario_id='sm'" failed
err=$(db "SELECT apply_error FROM policies WHERE scenario_id='sm'")
ok "hand-edited host: the reason names the field ($err)" sh -c "echo '$err' | grep -q 'allowed_hosts holds an IPv6 form of an IPv4 address'"
stop_applier
db "UPDATE policy_sources SET value = '::ffff:100.64.1.9' WHERE value LIKE '100.64.1.9%'; UPDATE policies SET api_json = NULL WHERE scenario_id = 'sm'"
ok "hand-edited: the mapped source is stored" db_is "SELECT count(*) FROM policy_sources WHERE value = '::ffff:100.64.1.9'" 1
db "DELETE FROM applier_rendered"	# what is stored next is this run's
start_applier
ok "hand-edited source: processed" applied
ok "hand-edited source: still failed" db_is "SELECT apply_status FROM policies WHERE scenario_id='sm'" failed
ok "hand-edited source: its baseline holds 100.64.1.9 (the packets' address)" \
	wait_for 10 sh -c "sqlite3 '$EGW_STATE_DIR/egw.db' 'SELECT rendered_ruleset FROM applier_rendered' | grep -q '[^:0-9]100\\.64\\.1\\.9[^0-9]'"
ok "hand-edited source: and not the mapped form" sh -c "! sqlite3 '$EGW_STATE_DIR/egw.db' 'SELECT rendered_ruleset FROM applier_rendered' | grep -q 'ffff:100\\.64\\.1\\.9'"
stop_applier
policy delete sm

# ---- 2. a policy the kernel refuses ----
export DRY_RUN=false
: > "$T/applier.log"
start_applier
policy put '{"scenario_id":"sa","profile":"training-updates","sources":["100.64.1.2/32"]}'
policy put '{"scenario_id":"sb","profile":"none","sources":["100.64.1.3/32"]}'
ok "two scenarios applied" applied
ok "sa 443 allowed before" tcp_ok $A 203.0.113.10 443
# an element the applier did not write, in sa's own shard set: the TCP
# 8080 entry sa is about to get lies inside it, so the kernel refuses it
in_gw nft add element inet forge_egress allow4_$((M % 256)) "{ $M . 203.0.113.0/24 . 6 . 8000-8100 }"
policy put '{"scenario_id":"sa","profile":"custom","sources":["100.64.1.2/32"],"allowed_hosts":["203.0.113.10"],"allowed_ports":[8080]}'
policy put '{"scenario_id":"sb","profile":"custom","sources":["100.64.1.3/32"],"allowed_ports":[8080]}'
ok "refused policy processed" applied
ok "refused policy: status failed" db_is "SELECT apply_status FROM policies WHERE scenario_id='sa'" failed
err=$(db "SELECT apply_error FROM policies WHERE scenario_id='sa'")
diag "apply_error: $err"
ok "refused policy: the kernel's message is stored" sh -c "echo '$err' | grep -qi 'exists'"
ok "refused policy: apply.failed audit event" db_ge "SELECT count(*) FROM outbox WHERE type='apply.failed' AND scenario_id='sa'" 1
ok "refused policy: falls back to the baseline (443 refused)" tcp_refused $A 203.0.113.10 443
ok "refused policy: baseline still allows internal" tcp_ok $A 10.9.0.10 80
ok "other scenario unaffected: applied" db_is "SELECT apply_status FROM policies WHERE scenario_id='sb'" applied
ok "other scenario unaffected: its 8080 allowed" tcp_ok $B 198.51.100.20 8080
kill -HUP "$APPLIER_PID"
ok "reconcile removes the foreign element and applies sa" wait_for 20 db_is "SELECT apply_status FROM policies WHERE scenario_id='sa'" applied
ok "healed: sa 8080 to the host allowed" tcp_ok $A 203.0.113.10 8080
ok "healed: sa 443 refused (custom)" tcp_refused $A 203.0.113.10 443
ok "healed: the foreign element is gone" sh -c "! ip netns exec $NS_GW nft list set inet forge_egress allow4_$((M % 256)) | grep -q '203.0.113.0/24'"

# ---- 3. SIGKILL and restart under continuous traffic ----
# sa: custom host 203.0.113.10 port 8080 (allowed); 443 there is denied.
cat > "$T/flood.py" <<'PY'
import socket, sys, time
src, dst, deadline = sys.argv[1], sys.argv[2], time.time() + float(sys.argv[3])
stop = sys.argv[4]
import os
while time.time() < deadline and not os.path.exists(stop):
    for port, kind in ((8080, "allowed"), (443, "denied")):
        s = socket.socket(); s.settimeout(0.3)
        try:
            s.bind((src, 0)); s.connect((dst, port)); ok = s.recv(16).startswith(b"ok")
        except OSError:
            ok = False
        s.close()
        print("%.3f %s %s" % (time.time(), kind, "ok" if ok else "fail"), flush=True)
    time.sleep(0.02)
PY
in_scen /usr/bin/python3 "$T/flood.py" $A 203.0.113.10 40 "$T/stop" > "$T/flood.log" 2>&1 &
FLOOD=$!
track_pid "$FLOOD"
sleep 1
policy put '{"scenario_id":"sc","profile":"none","sources":["100.64.1.4/32"]}'
kill -KILL "$APPLIER_PID"
wait "$APPLIER_PID" 2>/dev/null
# a change while the applier is down, applied at the restart
policy put '{"scenario_id":"sc","profile":"custom","sources":["100.64.1.4/32"],"allowed_ports":[8080]}'
sleep 1
start_applier
ok "restarted applier catches up" applied
sleep 1
kill -KILL "$APPLIER_PID"
wait "$APPLIER_PID" 2>/dev/null
start_applier
ok "second restart applied" applied
sleep 1
touch "$T/stop"
wait "$FLOOD" 2>/dev/null
n_allowed=$(grep -c ' allowed ' "$T/flood.log")
diag "probes: $n_allowed allowed, $(grep -c ' denied ' "$T/flood.log") denied attempts"
ok "enough probes during the restarts (>= 10 each)" [ "$n_allowed" -ge 10 ]
ok "a denied connection never got through" sh -c "! grep -q ' denied ok' '$T/flood.log'"
ok "an allowed connection never failed" sh -c "! grep -q ' allowed fail' '$T/flood.log'"
ok "the change made while down is enforced (C 8080)" tcp_ok $C 203.0.113.10 8080

# ---- 4. injection through the API codec ----
cat > "$T/inject.jsonl" <<'J'
{"scenario_id":"x; flush ruleset","profile":"none","sources":["100.64.1.9/32"]}
{"scenario_id":"inj","network_id":"n\"; flush ruleset; \"","profile":"none"}
{"scenario_id":"inj","profile":"none; flush ruleset","sources":["100.64.1.9/32"]}
{"scenario_id":"inj","profile":"none","sources":["100.64.1.9/32 } ; flush ruleset"]}
{"scenario_id":"inj","profile":"none","interfaces":["eth0\"; flush ruleset; \""]}
{"scenario_id":"inj","profile":"none","interfaces":["br-0 } accept"]}
{"scenario_id":"inj","profile":"custom","sources":["100.64.1.9/32"],"allowed_hosts":["203.0.113.10 . 6 . 1-65535"]}
{"scenario_id":"inj","profile":"custom","sources":["100.64.1.9/32"],"allowed_ports":["80; accept"]}
{"scenario_id":"inj","profile":"custom","sources":["100.64.1.9/32"],"allowed_ports":["1-65535 } ; add rule"]}
{"scenario_id":"inj","profile":"custom","sources":["100.64.1.9/32"],"custom_rules":[{"proto":"tcp; accept","dest":"203.0.113.10"}]}
{"scenario_id":"inj","profile":"custom","sources":["100.64.1.9/32"],"custom_rules":[{"proto":"tcp","dest":"0.0.0.0/0 accept"}]}
{"scenario_id":"inj","profile":"none","sources":["100.64.1.9/32"],"dns_servers":["198.51.100.20; accept"]}
{"scenario_id":"inj","profile":"none","sources":["100.64.1.9/32"],"mode":"audit\naccept"}
{"scenario_id":"inj\n","profile":"none","sources":["100.64.1.9/32"]}
J
n_inj=$(wc -l < "$T/inject.jsonl")
"$CHECK" codec < "$T/inject.jsonl" > "$T/inject.out"
sed 's/^/# /' "$T/inject.out"
ok "every one of $n_inj injection bodies is rejected by the codec" \
	[ "$(grep -c '^rejected \(invalid\|bad_request\|invalid_policy\)' "$T/inject.out")" -eq "$n_inj" ]
ok "the codec accepts a clean body (the helper can say yes)" \
	sh -c "echo '{\"scenario_id\":\"clean\",\"profile\":\"none\",\"sources\":[\"100.64.1.9/32\"]}' | '$CHECK' codec | grep -qx accepted"
gen_before=$(db "SELECT desired_generation FROM applier_state")
before=$(snapshot | md5sum)
while IFS= read -r body; do
	"$(egw_bin tests/e2e/egw-policy)" put "$body" >/dev/null 2>&1
done < "$T/inject.jsonl"
sleep 1
ok "nothing stored: desired generation unchanged" db_is "SELECT desired_generation FROM applier_state" "$gen_before"
ok "table byte for byte unchanged" [ "$before" = "$(snapshot | md5sum)" ]

# ---- counters: exact deltas, restart, recreated table ----
MB=$(db "SELECT id FROM policies WHERE scenario_id='sb'")
kdeny() { # the kernel's denied packets of mark $MB
	in_gw nft list set inet forge_egress cnt_deny |
		awk -v m="$MB" '{for (i = 1; i <= NF; i++) if ($i == m && $(i+1) == "counter") {print $(i+3); exit}}' |
		tr -d , | sed 's/^$/0/'
}
ddeny() { db "SELECT coalesce((SELECT denied_packets FROM policy_counters WHERE scenario_id='sb'), 0)"; }
# fire_datagrams SRC: 4 datagrams from SRC to a denied port, without
# waiting for anything (udp_refused waits ~1 s each): what follows comes
# within milliseconds, before any counter read
fire_datagrams() {
	in_scen /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
for _ in range(4):
    s.sendto(b"x", ("203.0.113.10", 5353))
' "$1"
}
sleep 6	# one read of the counters (every 5 s) after the restarts
k0=$(kdeny); d0=$(ddeny)
for i in 1 2 3 4 5; do udp_refused $B 203.0.113.10 5353; done
sleep 6
k1=$(kdeny); d1=$(ddeny)
diag "sb denied: kernel $k0 -> $k1, stored $d0 -> $d1"
ok "counters: the kernel counted the 5 denied datagrams" [ $((${k1:-0} - ${k0:-0})) -ge 5 ]
ok "counters: the stored total grew by exactly the kernel's delta" [ $((d1 - d0)) -eq $((${k1:-0} - ${k0:-0})) ]
stop_applier
d2=$(ddeny)
start_applier
sleep 6
ok "counters: a restart over a persisting table adds nothing twice" [ "$(ddeny)" -eq "$d2" ]
# SIGKILL right after traffic: the packets since the applier's last read
# (every 5 s) are in the kernel only; the next run must add them.
k4=$(kdeny); d4=$(ddeny)
# Fire-and-forget datagrams from sb's source, then the kill within
# milliseconds: no read can fall in between (udp_refused waits ~1 s each).
fire_datagrams "$B"
kill -KILL "$APPLIER_PID"
wait "$APPLIER_PID" 2>/dev/null
start_applier
sleep 6
k5=$(kdeny); d5=$(ddeny)
diag "SIGKILL: kernel $k4 -> $k5, stored $d4 -> $d5"
ok "counters: the kernel counted the 4 datagrams" [ $((${k5:-0} - ${k4:-0})) -ge 4 ]
ok "counters: nothing lost to a SIGKILL between two reads" [ $((d5 - d4)) -eq $((${k5:-0} - ${k4:-0})) ]
d2=$d5
stop_applier
in_gw nft delete table inet forge_egress
start_applier
ok "counters: table recreated" wait_for 10 in_gw nft list table inet forge_egress
for i in 1 2 3; do udp_refused $B 203.0.113.10 5353; done
sleep 6
k3=$(kdeny); d3=$(ddeny)
diag "recreated table: kernel $k3, stored $d2 -> $d3"
ok "counters: a recreated table's counts add to the stored total" [ "$d3" -eq $((d2 + ${k3:-0})) ] && [ "${k3:-0}" -ge 3 ]
# A removed scenario's mark leaves the counter sets (packets add marks to
# them and nothing else removes any: they would fill up); a live one stays.
MA=$(printf '0x%08x' "$(db "SELECT id FROM policies WHERE scenario_id='sa'")")
MBX=$(printf '0x%08x' "$MB")
# in_cnt SET MARK: the set has an element for the mark (nft prints it in hex)
in_cnt() { in_gw nft list set inet forge_egress "$1" | grep -q "$2 counter"; }
tcp_refused $A 203.0.113.10 443
ok "counters: sa and sb are in the kernel's counter set" sh -c \
	"ip netns exec $NS_GW nft list set inet forge_egress cnt_deny | grep -q '$MA counter' &&
	 ip netns exec $NS_GW nft list set inet forge_egress cnt_deny | grep -q '$MBX counter'"
# Its last counts are kept: datagrams from sb's source, then the delete
# at once, so that no read falls in between; the stored total must grow
# by what the kernel counted after the last stored baseline.
sleep 6
row0=$(db "SELECT denied_packets || ' ' || kernel_denied_packets FROM policy_counters WHERE scenario_id = 'sb'")
fire_datagrams "$B"
policy delete sb
kfinal=$(kdeny)
applied
ok "counters: a deleted scenario's mark is dropped at the next read" wait_for 12 sh -c \
	"! ip netns exec $NS_GW nft list set inet forge_egress cnt_deny | grep -q '$MBX counter'"
ok "counters: the live scenario's mark stays" in_cnt cnt_deny "$MA"
ok "counters: the drop is logged" grep -q 'dropped the counters of 1 removed scenarios' "$T/applier.log"
set -- $row0
dfinal=$(ddeny)
diag "sb's last counts: stored $1 (kernel $2 then), kernel $kfinal at the delete, stored $dfinal after"
ok "counters: the deleted scenario's last datagrams were counted" [ $((${kfinal:-0} - $2)) -ge 4 ]
ok "counters: and stored before its mark was dropped" [ "$dfinal" -eq $(($1 + ${kfinal:-0} - $2)) ]
stop_applier

# ---- 5. fuzz: random valid policies through render and libnftables ----
# check_in_netns NAME SECONDS ARGS...: egw-applier-check ARGS in a fresh
# namespace, its output in $T/NAME.out (its failures shown); its status
check_in_netns() {
	local name=$1 secs=$2 rc=0
	shift 2
	timeout "$secs" ip netns exec "$(make_netns "$name")" "$CHECK" "$@" \
		> "$T/$name.out" 2>&1 || rc=1
	sed 's/^/# /' "$T/$name.out" | grep -v '^# ok' | head -20
	return $rc
}
ok "fuzz: 200 random policies, dry run, load and read back" \
	check_in_netns fuzz 90 fuzz 200 "${FUZZ_SEED:-$(date +%s)}"
ok "fuzz: ran its checks" [ "$(grep -c '^ok ' "$T/fuzz.out")" -ge 6 ]

# ---- 6. answers to an abandoned request are not taken for the next one's ----
ok "late answers: batches and dumps read only their own answers" \
	check_in_netns late 60 late-answers
ok "late answers: ran its checks" [ "$(grep -c '^ok ' "$T/late.out")" -eq 10 ]

e2e_done
