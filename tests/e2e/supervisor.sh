#!/bin/bash
# SPDX-License-Identifier: MIT
# egw-supervisor runs the whole gateway (local nats-server, applier, API
# pool, NATS bridge, flow-log reader, nginx) inside a network namespace this
# test creates.  Each child is killed with SIGKILL in turn under steady API
# load: it must be back within 2 s and the API must keep answering.  As root
# the components must run as EGW_USER with exactly the expected capability
# sets, and SIGTERM must leave no process, socket or pid file behind.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init supervisor
need_root
need_cmd nginx nats-server curl ip wrk jq

ns=$(make_netns sup)
chmod 755 "$T"
export EGW_STATE_DIR="$T/state" EGW_RUN_DIR="$T/run"
export EGW_HTTP_LISTEN=127.0.0.1:18089 EGW_WORKERS=2 EGW_SPARE_WORKERS=2 EGW_AUTH=off
export EGW_USER=nobody EGW_NGINX_RENDER="$EGW_TOP_SRCDIR/scripts/render-nginx-conf"
export EGW_RECONCILE_INTERVAL=5 DRY_RUN=true
unset NATS_URL
sup="$EGW_TOP_BUILDDIR/egw-supervisor"

in_ns() { ip netns exec "$ns" "$@"; }
http_code() { in_ns curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:18089$1"; }
health_ok() { [ "$(http_code /health)" = 200 ]; }

# ip netns exec execs the command: $! is the supervisor itself.
ip netns exec "$ns" "$sup" --local-nats 14222 run > "$T/supervisor.log" 2>&1 &
SUP_PID=$!
track_pid "$SUP_PID"

ok "gateway answers /health through nginx" wait_for 20 health_ok
ok "egw-supervisor status reports every child running" \
	wait_for 10 "$sup" status
year=$(date -u +%Y)
ok "supervisor.json: each child's since is this year's wall-clock time" \
	jq -e --arg y "$year" '[.children[].since] | length > 0 and all(startswith($y))' "$EGW_RUN_DIR/supervisor.json"

child_pid() { cat "$EGW_RUN_DIR/$1.pid" 2>/dev/null; }

# Steady load for 4 s with wrk inside the namespace (bounded by time); the
# kill happens 1 s in.  Failed = non-2xx answers + socket errors.
load_start() {
	ip netns exec "$ns" wrk -t1 -c4 -d4s http://127.0.0.1:18089/health > "$T/wrk.out" 2>&1 &
	LOAD_PID=$!
	sleep 1
}
# Call after `wait "$LOAD_PID"` in the test's own shell (not in $(...)).
load_failed() {
	total=$(awk '/requests in/ { print $1 }' "$T/wrk.out")
	non2xx=$(awk '/Non-2xx/ { print $NF }' "$T/wrk.out")
	sock=$(awk '/Socket errors/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$T/wrk.out")
	echo "$(( ${non2xx:-0} + ${sock:-0} )) ${total:-0}"
}

check_restart() {
	child=$1 old=$2 kind=$3
	load_start
	kill -KILL "$old"
	t0=$(date +%s%N)
	back() { p=$(child_pid "$child"); [ -n "$p" ] && [ "$p" != "$old" ] && kill -0 "$p"; }
	if [ "$kind" = worker ]; then
		back() { [ "$(pgrep -P "$(child_pid egw-api)" | wc -l)" -ge 2 ] && ! kill -0 "$old" 2>/dev/null; }
	fi
	ok "$child ($kind) restarted after SIGKILL" wait_for 5 back
	t1=$(date +%s%N)
	ms=$(( (t1 - t0) / 1000000 ))
	ok "$child ($kind) back within 2 s (took $ms ms)" test "$ms" -le 2000
	wait "$LOAD_PID"
	read -r failed total <<< "$(load_failed)"
	[ "$total" -gt 100 ] || sed "s/^/# wrk: /" "$T/wrk.out"
	ok "load ran during the $child restart ($total requests)" test "$total" -gt 100
	ok "API answers after the $child restart" wait_for 5 health_ok
	diag "$child ($kind): $failed of $total requests failed around the restart"
	case $kind in
	worker) ok "$child worker crash: only in-flight requests fail ($failed <= 4)" test "$failed" -le 4 ;;
	front)
		# nginx (or the whole pool) is the way in: requests fail while it
		# is down, which is bounded by the restart time checked above.
		# Once back, nothing may fail.
		ip netns exec "$ns" wrk -t1 -c4 -d2s http://127.0.0.1:18089/health > "$T/wrk.out" 2>&1
		read -r after total_after <<< "$(load_failed)"
		ok "$child crash: no request fails once it is back ($after of $total_after)" \
			test "$after" -eq 0 -a "$total_after" -gt 100 ;;
	*) ok "$child crash: no request failed ($failed of $total)" test "$failed" -eq 0 ;;
	esac
}

for child in egw-applier egw-natsd egw-flowlog nats-server egw-api nginx; do
	old=$(child_pid "$child")
	if [ -z "$old" ]; then
		ok "$child has a pid file" false
		continue
	fi
	case $child in
	egw-api)
		check_restart egw-api "$(pgrep -P "$old" | head -n1)" worker
		check_restart egw-api "$(child_pid egw-api)" front ;;
	nginx) check_restart nginx "$old" front ;;
	*) check_restart "$child" "$old" component ;;
	esac
done

# Privilege separation: user and capability sets per component.
nobody_uid=$(id -u nobody)
cap_of() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
uid_of() { awk '$1 == "Uid:" { print $2 }' "/proc/$1/status"; }
for child in egw-applier egw-flowlog; do
	p=$(child_pid "$child")
	ok "$child runs as EGW_USER" test "$(uid_of "$p")" = "$nobody_uid"
	ok "$child has only CAP_NET_ADMIN effective" test "$(cap_of "$p" CapEff)" = 0000000000001000
	ok "$child bounding set is only CAP_NET_ADMIN" test "$(cap_of "$p" CapBnd)" = 0000000000001000
	ok "$child has no_new_privs" test "$(awk '$1 == "NoNewPrivs:" { print $2 }' "/proc/$p/status")" = 1
done
for child in egw-api egw-natsd nginx nats-server; do
	p=$(child_pid "$child")
	ok "$child runs as EGW_USER" test "$(uid_of "$p")" = "$nobody_uid"
	ok "$child has no capabilities" test "$(cap_of "$p" CapEff)$(cap_of "$p" CapPrm)" = 00000000000000000000000000000000
done
api=$(child_pid egw-api)
for w in $(pgrep -P "$api"); do
	ok "API worker $w has no capabilities" test "$(cap_of "$w" CapEff)" = 0000000000000000
done

# Clean stop.
pids=$(cat "$EGW_RUN_DIR"/*.pid 2>/dev/null | sort -u)
workers=$(pgrep -P "$api" | tr '\n' ' ')
kill -TERM "$SUP_PID"
stopped() { ! kill -0 "$SUP_PID" 2>/dev/null; }
ok "supervisor exits on SIGTERM" wait_for 30 stopped
wait "$SUP_PID"
ok "supervisor exit status 0" test $? -eq 0
alive=""
for p in $pids $workers; do
	kill -0 "$p" 2>/dev/null && alive="$alive $p"
done
ok "no component process left (${alive:-none})" test -z "$alive"
ok "no pid file left" test -z "$(ls "$EGW_RUN_DIR"/*.pid 2>/dev/null)"
ok "no socket left" test -z "$(find "$EGW_RUN_DIR" -type s)"
ok "no supervisor status file left" test ! -e "$EGW_RUN_DIR/supervisor.json"

# The supervisor killed with SIGKILL (no chance to stop anything): its
# children, running as EGW_USER, must follow it (the parent-death signal
# survives the privilege drop), or a restarted supervisor would run a
# second pool and a second applier beside them.
ip netns exec "$ns" "$sup" --local-nats 14222 run > "$T/supervisor2.log" 2>&1 &
SUP_PID=$!
track_pid "$SUP_PID"
ok "supervisor started again" wait_for 20 health_ok
pids=$(cat "$EGW_RUN_DIR"/*.pid 2>/dev/null | sort -u | grep -vx "$SUP_PID" | tr '\n' ' ')
api=$(child_pid egw-api)
workers=$(pgrep -P "$api" | tr '\n' ' ')
for p in $pids $workers; do track_pid "$p"; done
ok "children to watch: $(echo $pids | wc -w) components, $(echo $workers | wc -w) API processes" \
	test "$(echo $pids | wc -w)" -ge 5 -a -n "$workers"
kill -KILL "$SUP_PID"
wait "$SUP_PID" 2>/dev/null
orphans() {
	left=""
	for p in $pids $workers; do
		kill -0 "$p" 2>/dev/null && left="$left $p"
	done
	[ -z "$left" ]
}
ok "every child exits after the supervisor's SIGKILL" wait_for 30 orphans
[ -n "${left:-}" ] && diag "still running:$left"

# What a component run by hand as root leaves behind: a lock file only
# root may open and a stale socket only root may connect to.  The
# supervisor hands the one to EGW_USER and clears the other, so its
# children start (they would otherwise fail until it gave up on them).
API_SOCK="$EGW_RUN_DIR/api.sock"	# EGW_FCGI_SOCKET's default
rm -f "$EGW_RUN_DIR/egw-api.lock" "$API_SOCK"
(umask 077; : > "$EGW_RUN_DIR/egw-api.lock")
python3 -c "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$API_SOCK"
chmod 600 "$API_SOCK"
ok "root's leftovers: a 0600 lock file and a stale socket" \
	test "$(stat -c '%U %a' "$EGW_RUN_DIR/egw-api.lock") $(stat -c '%U %F' "$API_SOCK")" = "root 600 root socket"
ip netns exec "$ns" "$sup" --local-nats 14222 run > "$T/supervisor3.log" 2>&1 &
SUP_PID=$!
track_pid "$SUP_PID"
ok "with root's leftovers the gateway still comes up" wait_for 20 health_ok
ok "the lock file is EGW_USER's now" test "$(stat -c '%U' "$EGW_RUN_DIR/egw-api.lock")" = nobody

# A second gateway (its own run directory and ports) whose settings name
# the first one's live API socket and, for the applier, an ordinary file:
# its components refuse to start, and stopping it removes neither.
echo precious > "$T/precious.txt"
sock_ino=$(stat -c %i "$API_SOCK")
mkdir -p "$T/b/state" "$T/b/run"
chown nobody "$T/b/state" "$T/b/run"
EGW_STATE_DIR="$T/b/state" EGW_RUN_DIR="$T/b/run" EGW_HTTP_LISTEN=127.0.0.1:18090 \
	EGW_FCGI_SOCKET="$API_SOCK" EGW_APPLIER_SOCKET="$T/precious.txt" \
	ip netns exec "$ns" "$sup" --local-nats 14223 run > "$T/supervisor_b.log" 2>&1 &
SUP_B=$!
track_pid "$SUP_B"
ok "the second gateway's egw-api refuses the first one's socket" \
	wait_for 20 grep -q "is served by another process; not taking it over" "$T/supervisor_b.log"
ok "its applier refuses to replace the file" \
	wait_for 20 grep -q "exists and is not a socket" "$T/supervisor_b.log"
kill -TERM "$SUP_B"
ok "the second supervisor stops" wait_for 30 sh -c "! kill -0 $SUP_B 2>/dev/null"
wait "$SUP_B" 2>/dev/null
ok "the first gateway's socket is still there, the same one" test "$(stat -c %i "$API_SOCK" 2>/dev/null)" = "$sock_ino"
ok "the file is intact" test "$(cat "$T/precious.txt")" = precious
ok "the first gateway still answers" wait_for 5 health_ok
kill -TERM "$SUP_PID"
ok "the first supervisor stops" wait_for 30 sh -c "! kill -0 $SUP_PID 2>/dev/null"
wait "$SUP_PID" 2>/dev/null
e2e_done
