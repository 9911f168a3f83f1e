#!/bin/bash
# SPDX-License-Identifier: MIT
# This file counts where the pool's instructions go per policy upsert (not
# a test): egw-api with two workers under callgrind, behind a real nginx,
# takes N `POST /v1/policies` upserts over 10,000 seeded policies from 8
# curl clients at once (so the writer commits them in batches), auth on,
# access log on; then, per upsert, the writer's instructions (inclusive
# writer_run) and the workers' (inclusive worker_serve, summed), and the
# writer's functions it spends most in.  Counts do not drift with the
# VM's load the way times do; valgrind counts a `rep stosb` or `rep movsb`
# (memset, memcpy) per byte, so large ones look far dearer than they are.
#
# usage: bench/api/callgrind_upsert.sh [BUILD_DIR] [N]   (default ./build, 1600;
#        BENCH_KEEP=1 keeps the profiles and prints where)
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
B=$(cd "${1:-$top/build}" && pwd) N=${2:-1600}
CLIENTS=8
for c in valgrind callgrind_annotate nginx sqlite3 curl; do
	command -v $c >/dev/null || { echo "$c is not installed" >&2; exit 2; }
done
[ -x "$B/egw-api" ] || { echo "no egw-api in $B" >&2; exit 2; }
T=$(mktemp -d /tmp/egw-cgu-XXXXXX)
pids=
. "$here/lib.sh"
cleanup() {
	# shellcheck disable=SC2086
	stop_pids 10 $pids
	[ -n "${BENCH_KEEP:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

export EGW_STATE_DIR=$T/state EGW_RUN_DIR=$T/run EGW_WORKERS=2 EGW_AUTH=on
export EGW_LOG_LEVEL=info DRY_RUN=true
export EGW_FCGI_SOCKET=$T/run/api.sock EGW_APPLIER_SOCKET=$T/run/applier.sock
mkdir -p "$EGW_STATE_DIR" "$EGW_RUN_DIR" "$T/cg" "$T/nginx"
cg_prepare_database "$B" "$T/prefill.log" || exit 1
TOKEN=$("$B/egw-admin" token create bench write 2>/dev/null) || exit 1
cg_start_pool "$B" || exit 1
# One curl config per client: each request its own scenario and port, as
# upsert.lua sends them ("next" between requests: curl's options reset).
for k in $(seq 1 $CLIENTS); do
	for i in $(seq 1 $((N / CLIENTS))); do
		[ "$i" = 1 ] || echo next
		id=$(printf 'bench-%05d' $((RANDOM % 10000)))
		printf 'url = "http://127.0.0.1:%d/v1/policies"\noutput = "/dev/null"\n' "$PORT"
		printf 'header = "Content-Type: application/json"\nheader = "Authorization: Bearer %s"\n' "$TOKEN"
		printf 'data = "{\\"scenario_id\\":\\"%s\\",\\"network_id\\":\\"%s\\",\\"profile\\":\\"custom\\",\\"allowed_hosts\\":[\\"203.0.113.7\\"],\\"allowed_ports\\":[%d]}"\n' \
			"$id" "$id" $((1024 + RANDOM % 60000))
	done > "$T/urls.$k"
done
curls=
for k in $(seq 1 $CLIENTS); do
	curl -s -K "$T/urls.$k" &
	curls="$curls $!"
done
# shellcheck disable=SC2086
wait $curls
N=$((N / CLIENTS * CLIENTS))
# valgrind writes the profiles as the processes end; the workers write
# their held access lines as they stop.
# shellcheck disable=SC2086
stop_pids 20 $pids
pids=
echo "# answers to the $N upserts (the pool's access lines):"
grep '"path":"/v1/policies"' "$T/api.log" | grep -o '"status":"[0-9]*"' | sort | uniq -c
writer=
for f in "$T"/cg/cg.*; do
	callgrind_annotate --inclusive=yes "$f" 2>/dev/null > "$f.txt"
	grep -q ':writer_run ' "$f.txt" && writer=$f
done
echo "# instructions per upsert (inclusive)"
for f in "$T"/cg/cg.*.txt; do
	# the first line of each: callgrind_annotate lists a function once
	# per file it has code from
	grep -m1 ':writer_run ' "$f"
	grep -m1 ':worker_serve ' "$f"
done | awk -v n="$N" 'match($0, /:(writer_run|worker_serve) /) {
	name = substr($0, RSTART + 1, RLENGTH - 2); v = $1; gsub(",", "", v); s[name] += v
} END { printf "%-28s %9.0f\n%-28s %9.0f\n", "writer (writer_run)", s["writer_run"] / n,
	"workers (worker_serve, all)", s["worker_serve"] / n }'
[ -n "$writer" ] || { echo "no writer profile" >&2; exit 1; }
echo "# the writer's own functions (inclusive, per upsert)"
grep -E '/src/[a-z_]+\.c:[a-z_]+ ' "$writer.txt" | awk -v n="$N" '{
	v = $1; gsub(",", "", v); match($0, /\/src\/[a-z_]+\.c:[a-z_]+/)
	name = substr($0, RSTART + 5, RLENGTH - 5)
	if (!(name in seen) && v / n >= 5000) { seen[name] = 1; printf "%-40s %9.0f\n", name, v / n }
}' | grep -v -E '^(api_main|pool)\.c' | sort -k2 -rn | head -25
