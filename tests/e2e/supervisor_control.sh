#!/bin/bash
# SPDX-License-Identifier: MIT
# How egw-supervisor is controlled, in a network namespace this test
# creates (free ports, so it may run beside tests/e2e/supervisor.sh):
#   - SIGHUP: no component dies of it (egw-natsd used to); it reaches
#     the ones that reload (egw-api replaces its workers, egw-applier
#     reconciles) and not the local nats-server (which logged an error).
#   - `egw-supervisor status` after the supervisor was killed with -9 (its
#     supervisor.json left behind): not running, exit 3.
#   - An enforcing configuration without a scope: `egw-supervisor -n`,
#     its run and `egw-admin check-config` refuse it as egw-applier does
#     (exit 2, the same message), creating nothing.
#   - One of its components exiting 2 (configuration refused): it is not
#     restarted, the whole gateway stops and the supervisor exits 2.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init supervisor_control
need_root
need_cmd nginx nats-server curl ip jq

. "$EGW_TOP_SRCDIR/tests/e2e/lib_supervisor.sh"
sup_env supctl 2
export EGW_LOG_LEVEL=info
child_pid() { cat "$run/$1.pid" 2>/dev/null; }
quiet() { "$@" > /dev/null 2>&1; }
children="nats-server egw-applier egw-api egw-natsd egw-flowlog nginx"
snapshot() {
	for c in $children; do
		printf '%s=%s ' "$c" "$(child_pid "$c")"
	done
}
all_alive() {
	for c in $children; do
		p=$(child_pid "$c")
		[ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
	done
}

# ---- SIGHUP ----
start hup --local-nats "$nats_port"
ok "the gateway comes up" wait_for 30 health_ok
ok "every component runs" wait_for 10 all_alive
before=$(snapshot)
workers_before=$(pgrep -P "$(child_pid egw-api)" | sort | tr '\n' ' ')
hups_before=$(grep -c '"trigger":"sighup"' "$T/hup.log")
for i in 1 2 3; do
	kill -HUP "$SUP_PID"
	sleep 0.3
done
sleep 2
ok "after three SIGHUPs the supervisor runs" kill -0 "$SUP_PID"
ok "every component is the same process ($before)" test "$(snapshot)" = "$before"
ok "and alive" all_alive
ok "no component exited" sh -c "! grep -q 'exited (' '$T/hup.log'"
ok "the applier reconciled on SIGHUP" \
	test "$(grep -c '"trigger":"sighup"' "$T/hup.log")" -gt "$hups_before"
workers_after=$(pgrep -P "$(child_pid egw-api)" | sort | tr '\n' ' ')
ok "egw-api replaced its workers ($workers_before -> $workers_after)" \
	test -n "$workers_after" -a "$workers_after" != "$workers_before"
ok "the local nats-server was not sent it (no reload error)" \
	sh -c "! grep -qE '^\[[0-9]+\] .*\[ERR\]' '$T/hup.log'"
ok "the API answers" wait_for 5 health_ok
# Sent by hand, straight to the components that have nothing to reload.
for c in egw-natsd egw-flowlog; do
	p=$(child_pid "$c")
	kill -HUP "$p"
	sleep 0.5
	ok "$c survives a SIGHUP sent to it directly" kill -0 "$p"
done
stop

# ---- status ----
start status --local-nats "$nats_port"
ok "status: 0 while every component runs" wait_for 30 "$sup" status
kill -KILL "$SUP_PID"
wait "$SUP_PID" 2>/dev/null
ok "after the supervisor's SIGKILL its children follow it" \
	wait_for 30 sh -c "test -z \"\$(ip netns pids $ns)\""
ok "supervisor.json is left behind (it says every child runs)" \
	quiet jq -e '[.children[].state] | all(. == "running")' "$run/supervisor.json"
out=$("$sup" status 2>&1)
rc=$?
ok "status of the dead gateway: exit 3 ($rc)" test "$rc" -eq 3
ok "status says it is not running" sh -c "printf '%s' '$out' | grep -q 'not running'"
out=$(EGW_RUN_DIR="$T/never" "$sup" status 2>&1)
ok "status with a run directory never used: exit 3" test $? -eq 3
rm -f "$run/supervisor.json"

# ---- an enforcing configuration without a scope ----
scope_msg="DRY_RUN=false needs EGW_MANAGED_SOURCES and/or EGW_MANAGED_IFACES"
noscope() { env DRY_RUN=false EGW_RUN_DIR="$T/noscope/run" EGW_STATE_DIR="$T/noscope/state" "$@"; }
out=$(noscope "$EGW_TOP_BUILDDIR/egw-applier" -n 2>&1)
ok "egw-applier -n refuses it: exit 2" test $? -eq 2
applier_line=$(printf '%s\n' "$out" | sed 's/^egw-applier: //')
for cmd in "egw-supervisor -n" "egw-supervisor run" "egw-admin check-config"; do
	bin=${cmd%% *} arg=${cmd#* }
	# Bounded: a supervisor that accepted it would run until stopped.
	out=$(noscope timeout 20 ip netns exec "$ns" "$EGW_TOP_BUILDDIR/$bin" $arg 2>&1)
	rc=$?
	ok "$cmd refuses it: exit 2 ($rc)" test "$rc" -eq 2
	ok "$cmd: the applier's message" test "$(printf '%s\n' "$out" | sed "s/^$bin: //")" = "$applier_line"
done
ok "nothing created on disk" test ! -e "$T/noscope"
ok "EGW_MANAGED_SOURCES=none is accepted by egw-supervisor -n" \
	quiet noscope env EGW_MANAGED_SOURCES=none "$sup" -n
ok "and by egw-admin check-config" \
	quiet noscope env EGW_MANAGED_SOURCES=none "$EGW_TOP_BUILDDIR/egw-admin" check-config

# ---- a component that refuses its configuration ----
# The supervisor runs the components found next to itself: a copy of it
# beside the real programs and an egw-applier that refuses, as the real
# one does when its configuration is wrong.
mkdir -p "$T/bin"
cp "$sup" "$T/bin/egw-supervisor"
for p in egw-admin egw-api egw-natsd egw-flowlog; do
	ln -s "$EGW_TOP_BUILDDIR/$p" "$T/bin/$p"
done
cat > "$T/bin/egw-applier" <<'SH'
#!/bin/sh
echo "egw-applier: configuration error: refused by the test" >&2
exit 2
SH
chmod 755 "$T/bin" "$T/bin/egw-applier"
sup="$T/bin/egw-supervisor"
start refused --local-nats "$nats_port"
ok "the supervisor stops when egw-applier exits 2" wait_for 15 exited
if exited; then
	wait "$SUP_PID"
	rc=$?
else
	stop
	rc=running
fi
ok "its exit status is 2 ($rc)" test "$rc" = 2
ok "egw-applier was started once, not restarted" \
	test "$(grep -c 'refused by the test' "$T/refused.log")" -eq 1
ok "the log says why" grep -q 'egw-applier refused its configuration (exit status 2' "$T/refused.log"
ok "no process left in the namespace" test -z "$(ip netns pids "$ns")"
ok "no pid file or status file left" \
	test -z "$(ls "$run"/*.pid "$run/supervisor.json" 2>/dev/null)"
e2e_done
