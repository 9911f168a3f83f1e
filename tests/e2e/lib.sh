# SPDX-License-Identifier: MIT
# Shared helpers of the end-to-end scenarios.  Source it first thing:
#
#   . "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
#   e2e_init api_policies          # temp dir, cleanup trap, TAP counters
#   start_nats; start_stack ...    # real components, pid files in $T
#   ok "description" test ...      # one TAP line per check
#   e2e_done                       # plan line, exit status
#
# Every process a test starts is recorded in $T/pids and stopped by PID at
# exit (never by name); every namespace it creates is recorded and deleted.
# Exit 77 = skip (a tool is missing), 99 = the harness itself failed.

set -u

: "${EGW_TOP_SRCDIR:?run through make check or scripts/test}"
: "${EGW_TOP_BUILDDIR:?run through make check or scripts/test}"
E2E_N=0
E2E_FAILED=0
# glibc writes its fatal messages (an abort()'s reason) to /dev/tty
# unless told otherwise; in a test they belong in its log.
export LIBC_FATAL_STDERR_=1

e2e_init() {
	E2E_NAME=$1
	T=$(mktemp -d "/tmp/egw-e2e-$1-XXXXXX") || exit 99
	export T
	: > "$T/pids"
	: > "$T/netns"
	trap e2e_cleanup EXIT
	trap 'exit 99' INT TERM
}

# Stop what we started, newest first, by PID only.
e2e_cleanup() {
	rc=$?
	if [ -s "$T/pids" ]; then
		for pid in $(tac "$T/pids"); do
			kill -TERM "$pid" 2>/dev/null
		done
		for pid in $(tac "$T/pids"); do
			i=0
			while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
				sleep 0.1; i=$((i + 1))
			done
			kill -KILL "$pid" 2>/dev/null
		done
	fi
	for ns in $(cat "$T/netns" 2>/dev/null); do
		ip netns del "$ns" 2>/dev/null
	done
	if [ "$rc" -ne 0 ] || [ "$E2E_FAILED" -ne 0 ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "# ---- last lines of $(basename "$f") ----"
			tail -n 15 "$f" | sed 's/^/# /'
		done
	fi
	[ -n "${E2E_KEEP:-}" ] || rm -rf "$T"
	exit "$rc"
}

# Remember a PID for cleanup.
track_pid() {
	echo "$1" >> "$T/pids"
}

ok() {
	desc=$1
	shift
	E2E_N=$((E2E_N + 1))
	if "$@"; then
		echo "ok $E2E_N - $desc"
	else
		echo "not ok $E2E_N - $desc"
		E2E_FAILED=$((E2E_FAILED + 1))
	fi
}

diag() {
	echo "# $*"
}

skip_all() {
	echo "1..0 # SKIP $*"
	exit 77
}

e2e_done() {
	echo "1..$E2E_N"
	[ "$E2E_FAILED" -eq 0 ] || exit 1
	exit 0
}

# need_cmd nginx nats-server ... : the set-up installs these, so a missing
# one is a harness failure, not a skip.
need_cmd() {
	for c in "$@"; do
		if ! command -v "$c" >/dev/null 2>&1; then
			echo "Bail out! $c not installed (scripts/setup installs it)"
			exit 99
		fi
	done
}

need_root() {
	[ "$(id -u)" -eq 0 ] || skip_all "needs root for network namespaces"
}

# A free TCP port on loopback (the kernel picks; race window is tiny).
free_port() {
	while :; do
		# Below the ephemeral range (32768+) so no client socket can hold it.
		p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000 ))
		ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}

# wait_for SECONDS CMD...: poll CMD every 50 ms until it succeeds.
wait_for() {
	limit=$(( $1 * 20 ))
	shift
	i=0
	while [ $i -lt $limit ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

# fault_preload SOURCE PROGRAM: build tests/e2e/SOURCE.c (an LD_PRELOAD
# fault injector) into $T and set FAULT_PRELOAD to the preload list for
# PROGRAM; a sanitizer build needs its runtime first in that list.
fault_preload() {
	need_cmd cc
	cc -shared -fPIC -o "$T/$1.so" "$EGW_TOP_SRCDIR/tests/e2e/$1.c" -ldl ||
		{ echo "Bail out! cannot build the fault injector $1"; exit 99; }
	FAULT_PRELOAD="$T/$1.so"
	asan=$(ldd "$(egw_bin "$2")" | awk '/libasan|libclang_rt\.asan/ { print $3 }')
	[ -n "$asan" ] && FAULT_PRELOAD="$asan $FAULT_PRELOAD"
}

# Create a namespace that is deleted at exit.  Names carry the test's PID so
# parallel runs never collide.
make_netns() {
	ns="egw$$-$1"
	ip netns add "$ns" || exit 99
	echo "$ns" >> "$T/netns"
	ip -n "$ns" link set lo up
	echo "$ns"
}

# A real nats-server with JetStream on a loopback port, store under $T.
# Sets NATS_PORT and NATS_URL.
start_nats() {
	need_cmd nats-server
	NATS_PORT=$(free_port)
	mkdir -p "$T/nats"
	nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$T/nats" \
		> "$T/nats.log" 2>&1 &
	NATS_PID=$!
	track_pid "$NATS_PID"
	NATS_URL="nats://127.0.0.1:$NATS_PORT"
	export NATS_URL NATS_PORT
	wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT" ||
		{ echo "Bail out! nats-server did not start"; exit 99; }
}

stop_nats() {
	kill -TERM "$NATS_PID" 2>/dev/null
	wait "$NATS_PID" 2>/dev/null
}

# Environment for the gateway's programs, everything under $T.
egw_env() {
	export EGW_STATE_DIR="$T/state" EGW_RUN_DIR="$T/run"
	export EGW_LOG_LEVEL="${EGW_LOG_LEVEL:-info}"
	mkdir -p "$EGW_STATE_DIR" "$EGW_RUN_DIR"
}

egw_bin() {
	echo "$EGW_TOP_BUILDDIR/$1"
}
