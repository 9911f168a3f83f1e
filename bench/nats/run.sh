#!/bin/bash
# SPDX-License-Identifier: MIT
# Benchmark of egw-natsd with real processes:
#  1. scenario.created published -> policy committed and -> applied by
#     egw-applier in dry run (DRY_RUN=true; the applier runs in a network
#     namespace created here and deleted afterwards): p50/p99;
#  2. outbox -> audit.egress throughput of egw-natsd (JetStream acks,
#     marked delivered in SQLite) vs a bare cnats publisher sending the
#     same payloads (JetStream async with acks; and core publish + flush);
#     prints the ratios (target: natsd / bare JetStream >= 0.5).
# usage: bench/nats/run.sh BUILDDIR [OUTBOX_EVENTS] [LATENCY_EVENTS]
set -u
B=$(cd "${1:?usage: run.sh BUILDDIR [OUTBOX_EVENTS] [LATENCY_EVENTS]}" && pwd)
N=${2:-50000}
L=${3:-300}
[ "$N" -ge 1000 ] && [ "$N" -le 1000000 ] || { echo "OUTBOX_EVENTS: 1000-1000000"; exit 2; }
[ "$L" -ge 10 ] && [ "$L" -le 10000 ] || { echo "LATENCY_EVENTS: 10-10000"; exit 2; }
T=$(mktemp -d /tmp/egw-bench-nats-XXXXXX)
PIDS=()
NS=""
cleanup() {
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
	done
	[ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

PROBE=$B/tests/e2e/natsprobe
GEN=$B/tests/e2e/nats_outboxgen
BENCH=$B/bench/nats/bench_nats
for f in "$PROBE" "$GEN" "$BENCH" "$B/egw-natsd" "$B/egw-applier"; do
	[ -x "$f" ] || { echo "missing $f (make check builds it)"; exit 2; }
done

PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000 ))
mkdir -p "$T/nats" "$T/state" "$T/run"
nats-server -js -a 127.0.0.1 -p "$PORT" -sd "$T/nats" > "$T/nats.log" 2>&1 &
PIDS+=($!)
export NATS_URL="nats://127.0.0.1:$PORT" EGW_STATE_DIR="$T/state" EGW_RUN_DIR="$T/run"
export EGW_LOG_LEVEL=warn DRY_RUN=true
DB=$T/state/egw.db
for _ in $(seq 100); do "$PROBE" jsinfo 2>/dev/null && break; sleep 0.1; done
"$PROBE" stream-add SCENARIOS scenario.created,scenario.completed || exit 1

wait_backlog0() {
	for _ in $(seq 600); do
		[ "$(sqlite3 "$DB" "SELECT count(*) FROM outbox WHERE delivered_at IS NULL" 2>/dev/null)" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

echo "== scenario.created -> policy (egw-natsd + egw-applier, DRY_RUN=true), $L events"
"$B/egw-natsd" 2> "$T/natsd.log" &
NATSD=$!
PIDS+=($NATSD)
sleep 1
if [ "$(id -u)" -eq 0 ] && command -v ip > /dev/null; then
	NS="egwbench$$"
	ip netns add "$NS" && ip -n "$NS" link set lo up
	ip netns exec "$NS" "$B/egw-applier" 2> "$T/applier.log" &
	PIDS+=($!)
	sleep 1
	"$BENCH" latency "$NATS_URL" "$DB" "$L" applied || echo "latency run incomplete"
else
	echo "(not root: no namespace for the applier; measuring commit latency only)"
	"$BENCH" latency "$NATS_URL" "$DB" "$L" || echo "latency run incomplete"
fi
wait_backlog0 || echo "outbox did not drain"
kill -TERM "$NATSD"; wait "$NATSD" 2>/dev/null

echo "== outbox -> audit.egress, $N events"
"$GEN" "$DB" "$N" 0 5000 > /dev/null || exit 1
"$BENCH" bare "$NATS_URL" "$DB" "$N" | tee "$T/bare.json" || exit 1
"$B/egw-natsd" 2>> "$T/natsd.log" &
NATSD=$!
PIDS+=($NATSD)
"$BENCH" drain "$DB" 120 | tee "$T/natsd.json" || exit 1
"$PROBE" stream-info AUDIT
python3 - "$T/bare.json" "$T/natsd.json" <<'PY'
import json, sys
bare = json.load(open(sys.argv[1])); nd = json.load(open(sys.argv[2]))
r_js = nd["natsd_per_s"] / bare["bare_js_async_acked_per_s"]
r_core = nd["natsd_per_s"] / bare["bare_core_flush_per_s"]
print(json.dumps({"natsd_per_s": nd["natsd_per_s"],
                  "bare_js_async_acked_per_s": bare["bare_js_async_acked_per_s"],
                  "bare_core_flush_per_s": bare["bare_core_flush_per_s"],
                  "ratio_vs_bare_jetstream": round(r_js, 3),
                  "ratio_vs_bare_core": round(r_core, 3),
                  "target_met": r_js >= 0.5}))
PY
grep -h '"level":"\(warn\|error\)"' "$T/natsd.log" | tail -5
