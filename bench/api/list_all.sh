#!/bin/bash
# SPDX-License-Identifier: MIT
# This file contains the list benchmark (not a test): GET /v1/policies
# through a real nginx with N policies stored (default 10,000), one pool
# worker, a fresh pool per target so that the worker's VmHWM (peak RSS)
# belongs to that target's requests alone.
#
# usage: bench/api/list_all.sh [BUILD_DIR]
# env:   N (policies, default 10000), ROUNDS (requests per target, default 5),
#        TARGETS (default: "all limit1000 walk1000 limit100")
#   all        GET /v1/policies (the whole list when the build has no
#              default page; one page of 100 on earlier builds)
#   limit1000  GET /v1/policies?limit=1000 (the largest page)
#   walk1000   every page of 1000, following next_cursor (time is the walk)
#   limit100   GET /v1/policies?limit=100
# Prints per target: median and max seconds, bytes, the worker's VmHWM
# before and after, and whether the body of "all" holds every policy once.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-$top/build}
[ -x "$build/egw-api" ] || { echo "no egw-api in $build" >&2; exit 2; }
for c in nginx sqlite3 curl jq; do
	command -v $c >/dev/null || { echo "$c is not installed" >&2; exit 2; }
done
N=${N:-10000} ROUNDS=${ROUNDS:-5}
TARGETS=${TARGETS:-all limit1000 walk1000 limit100}

T=$(mktemp -d /tmp/egw-list-XXXXXX)
pids= api_pid=
. "$here/lib.sh"
cleanup() {
	# shellcheck disable=SC2086
	stop_pids 5 $api_pid $pids
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM


export EGW_STATE_DIR=$T/state EGW_RUN_DIR=$T/run EGW_WORKERS=1
export EGW_AUTH=off EGW_LOG_LEVEL=warn DRY_RUN=true
export EGW_FCGI_SOCKET=$T/run/api.sock EGW_APPLIER_SOCKET=$T/run/applier.sock
mkdir -p "$EGW_STATE_DIR" "$EGW_RUN_DIR"
DB=$EGW_STATE_DIR/egw.db

"$build/egw-admin" migrate >/dev/null || exit 1
seed_policies "$DB" "$N" || exit 1
sqlite3 "$DB" 'SELECT scenario_id FROM policies ORDER BY scenario_id' > "$T/ids.db"

PORT=$(free_port)
mkdir -p "$T/nginx"
"$top/scripts/render-nginx-conf" --standalone "$T/nginx" --listen "127.0.0.1:$PORT" \
	--socket "$EGW_FCGI_SOCKET" --access-log off > "$T/nginx/nginx.conf" || exit 1
nginx -e "$T/nginx/error.log" -c "$T/nginx/nginx.conf" -g 'daemon off;' &
pids="$pids $!"
URL=http://127.0.0.1:$PORT

# A fresh pool of one worker; sets api_pid and wpid.
start_pool() {
	[ -n "$api_pid" ] && stop_pids 5 "$api_pid"
	rm -f "$EGW_RUN_DIR/egw-api.workers"
	"$build/egw-api" 2>> "$T/api.log" &
	api_pid=$!
	for _ in $(seq 1 100); do
		[ -s "$EGW_RUN_DIR/egw-api.workers" ] &&
			curl -s -o /dev/null "$URL/health" && break
		sleep 0.1
	done
	wpid=$(awk '{ print $2; exit }' "$EGW_RUN_DIR/egw-api.workers")
}
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$wpid/status"; }

# get PATH: one request into $T/body; prints "seconds bytes status"
get() { curl -sS -o "$T/body" -w '%{time_total} %{size_download} %{http_code}\n' "$URL$1"; }

# walk: every page of 1000; prints the summed request times (jq's time
# between requests is not the server's), total bytes and the last status
walk() {
	local wpath="/v1/policies?limit=1000" secs=0 bytes=0 code=200 c
	: > "$T/walk.ids"
	while :; do
		set -- $(get "$wpath")
		secs=$(awk -v a="$secs" -v b="$1" 'BEGIN { printf "%.6f", a + b }')
		bytes=$((bytes + $2)); [ "$3" = 200 ] || code=$3
		jq -r '.policies[].scenario_id' "$T/body" >> "$T/walk.ids"
		c=$(jq -r .next_cursor "$T/body")
		[ "$c" = null ] && break
		wpath="/v1/policies?limit=1000&cursor=$c"
	done
	echo "$secs $bytes $code"
}

echo "# $N policies, $ROUNDS requests per target, 1 worker, $(nproc) CPUs, build $build"
printf '%-10s %9s %9s %10s %6s %12s %12s  %s\n' target med_s max_s bytes status \
	hwm_before_kB hwm_after_kB check
for t in $TARGETS; do
	case $t in
	all) path=/v1/policies ;;
	limit1000) path='/v1/policies?limit=1000' ;;
	limit100) path='/v1/policies?limit=100' ;;
	walk1000) path= ;;
	*) echo "unknown target $t" >&2; exit 2 ;;
	esac
	start_pool
	before=$(hwm)
	: > "$T/times"
	for _ in $(seq 1 "$ROUNDS"); do
		if [ -n "$path" ]; then get "$path"; else walk; fi >> "$T/times"
	done
	after=$(hwm)
	check=-
	if [ "$t" = all ]; then
		# Valid JSON, the count, no cursor, and every stored id once in order.
		if jq -e --argjson n "$N" '.count == $n and (.policies | length) == $n and .next_cursor == null' \
			"$T/body" >/dev/null && jq -r '.policies[].scenario_id' "$T/body" | cmp -s - "$T/ids.db"; then
			check="ok: count $N, every id once, next_cursor null"
		else
			check="NOT the whole list: $(jq -c '{count, next_cursor}' "$T/body" 2>&1 | head -c 200)"
		fi
	elif [ "$t" = walk1000 ]; then
		cmp -s "$T/walk.ids" "$T/ids.db" && check="ok: every id once" || check="walk differs"
	fi
	med=$(sort -g "$T/times" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	max=$(sort -g "$T/times" | tail -1 | awk '{ print $1 }')
	last=$(tail -1 "$T/times")
	printf '%-10s %9s %9s %10s %6s %12s %12s  %s\n' "$t" "$med" "$max" \
		"$(echo "$last" | awk '{ print $2 }')" "$(echo "$last" | awk '{ print $3 }')" \
		"$before" "$after" "$check"
done
