#!/bin/bash
# SPDX-License-Identifier: MIT
# Benchmark of egw-natsd with real processes:
#  1. scenario.created published -> policy committed and -> applied by
#     egw-applier in dry run (DRY_RUN=true; the applier runs in a network
#     namespace created here): p50/p99;
#  2. the same with egw-applier enforcing (DRY_RUN=false) inside a second,
#     fresh network namespace created here (only its loopback, nothing
#     linked to the root namespace): published -> applied in that
#     namespace's kernel (table inet forge_egress), p50/p99; afterwards
#     the kernel's table is read back and every scenario's source -> mark
#     element and allowlist must be there (the run fails otherwise);
#  3. outbox -> audit.egress throughput of egw-natsd (JetStream acks,
#     marked delivered in SQLite) vs a bare cnats publisher sending the
#     same payloads (JetStream async with acks; and core publish + flush);
#     prints the ratios (target: natsd / bare JetStream >= 0.5).
# Passes 1 and 2 each have their own state directory (database) and their
# own egw-natsd and egw-applier; their scenario ids and sources differ
# (lat-dry-* on 100.64.0.0/11, lat-kern-* on 100.96.0.0/11).  Nothing is
# ever loaded in the root namespace's nftables; every process started here
# is stopped by its PID and both namespaces are deleted at exit.  Every
# wait is bounded in count and in time.
# usage: bench/nats/run.sh BUILDDIR [OUTBOX_EVENTS] [LATENCY_EVENTS]
set -u
B=$(cd "${1:?usage: run.sh BUILDDIR [OUTBOX_EVENTS] [LATENCY_EVENTS]}" && pwd)
N=${2:-50000}
L=${3:-300}
[ "$N" -ge 1000 ] && [ "$N" -le 1000000 ] || { echo "OUTBOX_EVENTS: 1000-1000000"; exit 2; }
[ "$L" -ge 10 ] && [ "$L" -le 8192 ] || { echo "LATENCY_EVENTS: 10-8192"; exit 2; }
T=$(mktemp -d /tmp/egw-bench-nats-XXXXXX)
PIDS=()
NSS=()
NATSD=
APPLIER=
FAILED=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
	done
	for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
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

# within SECONDS CMD...: run CMD every 0.1 s until it succeeds; at most
# 10 * SECONDS + 1 tries and SECONDS of wall clock, however slow CMD is.
within() {
	local end=$(( $(date +%s%N) / 1000000 + $1 * 1000 )) n=0 max=$(( $1 * 10 + 1 ))
	shift
	while [ "$n" -lt "$max" ]; do
		"$@" > /dev/null 2>&1 && return 0
		[ $(( $(date +%s%N) / 1000000 )) -ge "$end" ] && return 1
		sleep 0.1
		n=$((n + 1))
	done
	return 1
}

# stop_pid PID: SIGTERM, at most 5 s, then SIGKILL (only our own children).
stop_pid() {
	kill -TERM "$1" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

fail() {
	echo "FAIL: $*"
	FAILED+=("$*")
}

# q DB SQL: one query, waiting at most 2 s for a lock
q() { sqlite3 -cmd '.timeout 2000' "$1" "$2"; }

# natsd_up DB PID / applier_up DB PID: the process reported in
# component_status (the applier writes its first heartbeat after its start
# reconcile, so the table exists by then)
natsd_up() {
	[ "$(q "$1" "SELECT pid || ',' || json_extract(info, '\$.running') || ','
		|| json_extract(info, '\$.connected') FROM component_status
		WHERE component = 'natsd'" 2>/dev/null)" = "$2,1,1" ]
}
applier_up() {
	kill -0 "$2" 2>/dev/null &&
	[ "$(q "$1" "SELECT pid FROM component_status WHERE component = 'applier'" 2>/dev/null)" = "$2" ]
}
backlog0() {
	[ "$(q "$1" "SELECT count(*) FROM outbox WHERE delivered_at IS NULL" 2>/dev/null)" = 0 ]
}
# new_netns NAME: a fresh namespace with only its loopback up
new_netns() {
	ip netns add "$1" || return 1
	NSS+=("$1")
	ip -n "$1" link set lo up
}

# kernel_check EXPECTED TABLE_JSON N: EXPECTED holds sqlite3 rows
# "policy_id|source|apply_status|gen_ok" of the scenarios, TABLE_JSON the
# output of nft -j list table inet forge_egress from the applier's
# namespace.  Every scenario must be applied in SQLite, its source must map
# to its mark (the policy id) in map src4, and its allowlist
# (training-updates: tcp 80 and 443 to anywhere) must be in one of the
# allow4_* sets.  Prints a one-line summary; returns 1 on any miss.
kernel_check() {
	python3 - "$@" <<'PY'
import json
import sys


def unwrap(e):
    # {"elem": {"val": X, "counter": ...}} -> X
    while isinstance(e, dict) and "elem" in e:
        e = e["elem"]["val"] if isinstance(e["elem"], dict) else e["elem"]
    return e


def addr(v):
    if isinstance(v, str):
        return v if "/" in v else v + "/32"
    if isinstance(v, dict) and "prefix" in v:
        return "%s/%d" % (v["prefix"]["addr"], v["prefix"]["len"])
    if isinstance(v, dict) and "range" in v:
        return "%s-%s" % tuple(v["range"])
    return repr(v)


def main():
    exp_path, table_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    expected = []
    for line in open(exp_path):
        f = line.strip().split("|")
        if len(f) == 4:
            expected.append((int(f[0]), f[1], f[2], f[3]))
    problems = []
    if len(expected) != n:
        problems.append("%d benchmark scenarios in SQLite, expected %d" % (len(expected), n))
    not_applied = [e for e in expected if e[2] != "applied" or e[3] != "1"]
    if not_applied:
        problems.append("%d scenarios not applied in SQLite (first: %r)"
                        % (len(not_applied), not_applied[0]))

    doc = json.load(open(table_path))
    src4 = {}
    allow = {}          # mark -> {(proto, port)} with destination anywhere
    per_mark = {}       # mark -> elements in any set or map keyed by mark
    n_elems = 0
    have_table = False
    for obj in doc.get("nftables", []):
        if "table" in obj and obj["table"].get("name") == "forge_egress":
            have_table = True
        s = obj.get("set") or obj.get("map")
        if s is None or s.get("table") != "forge_egress":
            continue
        elems = s.get("elem", [])
        n_elems += len(elems)
        name = s["name"]
        for e in elems:
            if name == "src4":
                key, mark = e
                key = unwrap(key)
                parts = key["concat"] if isinstance(key, dict) and "concat" in key else [key]
                src4[addr(parts[-1])] = mark
                continue
            e = unwrap(e)
            if isinstance(e, dict) and "concat" in e and isinstance(e["concat"][0], int):
                mark = e["concat"][0]
                per_mark[mark] = per_mark.get(mark, 0) + 1
                c = e["concat"]
                if name.startswith("allow4") and len(c) == 4 and addr(c[1]) == "0.0.0.0/0":
                    allow.setdefault(mark, set()).add((c[2], c[3]))
    if not have_table:
        problems.append("no table inet forge_egress in the listing")

    src_ok = sum(1 for pid, src, _, _ in expected if src4.get(src) == pid)
    allow_ok = sum(1 for pid, _, _, _ in expected
                   if {("tcp", 80), ("tcp", 443)} <= allow.get(pid, set()))
    if src_ok != len(expected):
        miss = [(pid, src, src4.get(src)) for pid, src, _, _ in expected if src4.get(src) != pid]
        problems.append("%d sources missing or with the wrong mark in src4 (first: "
                        "policy %d %s -> %r)" % (len(miss), miss[0][0], miss[0][1], miss[0][2]))
    if allow_ok != len(expected):
        miss = [pid for pid, _, _, _ in expected
                if not {("tcp", 80), ("tcp", 443)} <= allow.get(pid, set())]
        problems.append("%d allowlists missing in allow4_* (first: mark %d)"
                        % (len(miss), miss[0]))
    marks = [pid for pid, _, _, _ in expected]
    mark_elems = sum(per_mark.get(m, 0) for m in marks)
    print("kernel check: %d/%d sources in map src4 with their marks, %d/%d allowlists "
          "(tcp 80+443) in allow4_*, %d mark-keyed elements of these scenarios, "
          "%d elements in table inet forge_egress"
          % (src_ok, len(expected), allow_ok, len(expected), mark_elems, n_elems))
    for p in problems:
        print("kernel check FAILED: " + p)
    return 1 if problems else 0


sys.exit(main())
PY
}

PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000 ))
mkdir -p "$T/nats" "$T/state" "$T/run" "$T/state-kern" "$T/run-kern"
nats-server -js -a 127.0.0.1 -p "$PORT" -sd "$T/nats" > "$T/nats.log" 2>&1 &
PIDS+=("$!")
# The gateway's settings for both applier passes (only DRY_RUN differs):
# managed sources 100.64.0.0/10, a documentation-range resolver.
export NATS_URL="nats://127.0.0.1:$PORT" EGW_STATE_DIR="$T/state" EGW_RUN_DIR="$T/run"
export EGW_LOG_LEVEL=warn DRY_RUN=true EGW_NFLOG_GROUP=7
export EGW_MANAGED_SOURCES=100.64.0.0/10 EGW_DNS_SERVERS=192.0.2.53
DB=$T/state/egw.db
DB2=$T/state-kern/egw.db
within 10 timeout 5 "$PROBE" jsinfo || { echo "nats-server did not start"; exit 1; }
"$PROBE" stream-add SCENARIOS scenario.created,scenario.completed || exit 1
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && command -v ip > /dev/null && command -v nft > /dev/null && IS_ROOT=1

echo "== 1. scenario.created -> policy (egw-natsd + egw-applier, DRY_RUN=true), $L events"
"$B/egw-natsd" 2> "$T/natsd.log" &
NATSD=$!
PIDS+=("$NATSD")
UP=1
within 15 natsd_up "$DB" "$NATSD" || { fail "egw-natsd (pass 1) did not connect"; UP=0; }
if [ "$UP" = 0 ]; then
	echo "(pass 1 skipped)"
elif [ "$IS_ROOT" = 1 ]; then
	NSD="egwbench-d$$"
	new_netns "$NSD" || exit 1
	# ip execs the program: $! is the applier's own PID
	DRY_RUN=true ip netns exec "$NSD" "$B/egw-applier" 2> "$T/applier.log" &
	APPLIER=$!
	PIDS+=("$APPLIER")
	if within 15 applier_up "$DB" "$APPLIER"; then
		timeout $((120 + L / 5)) "$BENCH" latency "$NATS_URL" "$DB" "$L" applied | tee "$T/lat-dry.json"
		[ "${PIPESTATUS[0]}" = 0 ] || fail "dry-run latency run incomplete"
	else
		fail "egw-applier (dry run) did not start"
	fi
	# a dry run must leave its namespace's kernel untouched
	[ -z "$(timeout 10 ip netns exec "$NSD" nft list tables 2>&1)" ] ||
		fail "the dry run changed the kernel of $NSD"
else
	echo "(not root or no ip/nft: no namespaces for the applier; commit latency only, no kernel pass)"
	timeout $((120 + L / 5)) "$BENCH" latency "$NATS_URL" "$DB" "$L" | tee "$T/lat-dry.json"
	[ "${PIPESTATUS[0]}" = 0 ] || fail "latency run incomplete"
fi
within 60 backlog0 "$DB" || fail "outbox (pass 1) did not drain"
[ -n "$APPLIER" ] && stop_pid "$APPLIER"
stop_pid "$NATSD"
APPLIER=

if [ "$IS_ROOT" = 1 ]; then
	NSK="egwbench-k$$"
	echo "== 2. scenario.created -> policy applied in the kernel (egw-natsd + egw-applier, DRY_RUN=false, namespace $NSK), $L events"
	EGW_STATE_DIR="$T/state-kern" EGW_RUN_DIR="$T/run-kern" "$B/egw-natsd" 2> "$T/natsd-kern.log" &
	NATSD=$!
	PIDS+=("$NATSD")
	UP=1
	within 15 natsd_up "$DB2" "$NATSD" || { fail "egw-natsd (pass 2) did not connect"; UP=0; }
	new_netns "$NSK" || exit 1
	EGW_STATE_DIR="$T/state-kern" EGW_RUN_DIR="$T/run-kern" DRY_RUN=false \
		ip netns exec "$NSK" "$B/egw-applier" 2> "$T/applier-kern.log" &
	APPLIER=$!
	PIDS+=("$APPLIER")
	within 15 applier_up "$DB2" "$APPLIER" || { fail "egw-applier (DRY_RUN=false) did not start"; UP=0; }
	within 10 bash -c "timeout 5 ip netns exec '$NSK' nft list tables | grep -qx 'table inet forge_egress'" ||
		{ fail "no table inet forge_egress in $NSK after the applier's start"; UP=0; }
	if [ "$UP" = 1 ]; then
		timeout $((120 + L / 5)) "$BENCH" latency "$NATS_URL" "$DB2" "$L" kernel | tee "$T/lat-kern.json"
		[ "${PIPESTATUS[0]}" = 0 ] || fail "kernel latency run incomplete"
	fi
	# What the kernel holds, read back from the namespace: every lat-kern
	# scenario's source -> mark (its policy id) in map src4 and its
	# allowlist (tcp 80 and 443 of training-updates) in the allow4_* sets.
	q "$DB2" "SELECT p.id, s.value, p.apply_status, p.applied_generation >= p.generation
		FROM policies p JOIN policy_sources s ON s.policy_id = p.id
		WHERE p.scenario_id LIKE 'lat-kern-%' ORDER BY p.id" > "$T/expected.txt"
	timeout 60 ip netns exec "$NSK" nft -j list table inet forge_egress > "$T/table.json" ||
		fail "cannot list table inet forge_egress in $NSK"
	kernel_check "$T/expected.txt" "$T/table.json" "$L" ||
		fail "the kernel of $NSK does not hold the scenarios' elements"
	[ "$(q "$DB2" "SELECT desired_generation = applied_generation FROM applier_state")" = 1 ] ||
		fail "applier_state: applied generation behind the desired one"
	within 60 backlog0 "$DB2" || fail "outbox (pass 2) did not drain"
	stop_pid "$APPLIER"
	stop_pid "$NATSD"
	grep -h '"level":"\(warn\|error\)"' "$T/applier-kern.log" | tail -n 5
fi

echo "== scenario.created published -> (ms, $L events each)"
python3 - "$T/lat-dry.json" "$T/lat-kern.json" <<'PY'
import json, sys
rows = []
def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None
d, k = load(sys.argv[1]), load(sys.argv[2])
if d:
    rows.append(("committed in SQLite (pass 1)", d.get("publish_to_commit")))
    rows.append(("applied, dry run (DRY_RUN=true)", d.get("publish_to_applied_dry_run")))
if k:
    rows.append(("committed in SQLite (pass 2)", k.get("publish_to_commit")))
    rows.append(("applied in the kernel (DRY_RUN=false)", k.get("publish_to_applied_kernel")))
print("%-40s %6s %8s %8s %8s" % ("", "n", "p50", "p99", "max"))
for name, s in rows:
    if s:
        print("%-40s %6d %8.1f %8.1f %8.1f" % (name, s["n"], s["p50_ms"], s["p99_ms"], s["max_ms"]))
PY

echo "== 3. outbox -> audit.egress, $N events"
"$GEN" "$DB" "$N" 0 5000 > /dev/null || exit 1
"$BENCH" bare "$NATS_URL" "$DB" "$N" | tee "$T/bare.json" || exit 1
"$B/egw-natsd" 2>> "$T/natsd.log" &
NATSD=$!
PIDS+=("$NATSD")
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
grep -h '"level":"\(warn\|error\)"' "$T/natsd.log" | tail -n 5
if [ "${#FAILED[@]}" -gt 0 ]; then
	echo "FAILED (${#FAILED[@]}):"
	printf '  %s\n' "${FAILED[@]}"
	exit 1
fi
