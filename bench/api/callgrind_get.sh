#!/bin/bash
# SPDX-License-Identifier: MIT
# This file counts where one API worker's instructions go per policy read
# (not a test): egw-api with one worker under callgrind, behind a real
# nginx, serves N `GET /v1/policies/{id}` over 10,000 seeded policies
# whose stored documents a run without valgrind built first (auth
# on, access log on); then the inclusive count per request of worker_run
# and of the functions it spends most in.  Counts do not drift with the
# VM's load the way times do, but valgrind counts a `rep stosb` (memset)
# per byte, so memset looks far dearer than it is.
#
# usage: bench/api/callgrind_get.sh [BUILD_DIR] [N]   (default ./build, 2000)
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
B=$(cd "${1:-$top/build}" && pwd) N=${2:-2000}
for c in valgrind callgrind_annotate nginx sqlite3 curl; do
	command -v $c >/dev/null || { echo "$c is not installed" >&2; exit 2; }
done
[ -x "$B/egw-api" ] || { echo "no egw-api in $B" >&2; exit 2; }
T=$(mktemp -d /tmp/egw-cg-XXXXXX)
pids=
. "$here/lib.sh"
cleanup() {
	# shellcheck disable=SC2086
	stop_pids 10 $pids
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

export EGW_STATE_DIR=$T/state EGW_RUN_DIR=$T/run EGW_WORKERS=1 EGW_AUTH=on
export EGW_LOG_LEVEL=info DRY_RUN=true
export EGW_FCGI_SOCKET=$T/run/api.sock EGW_APPLIER_SOCKET=$T/run/applier.sock
mkdir -p "$EGW_STATE_DIR" "$EGW_RUN_DIR" "$T/cg" "$T/nginx"
cg_prepare_database "$B" "$T/prefill.log" || exit 1
TOKEN=$("$B/egw-admin" token create bench read) || exit 1
cg_start_pool "$B" || exit 1
for i in $(seq 1 "$N"); do
	printf 'url = "http://127.0.0.1:%d/v1/policies/bench-%05d"\noutput = "/dev/null"\n' \
		"$PORT" $((RANDOM % 10000))
done > "$T/urls"
echo "# HTTP status of the $N reads:"
curl -s -K "$T/urls" -H "Authorization: Bearer $TOKEN" -w '%{http_code}\n' | sort | uniq -c
# valgrind writes the profiles as the processes end.
# shellcheck disable=SC2086
stop_pids 20 $pids
pids=
# The worker is the profile that ran worker_run.
for f in "$T"/cg/cg.*; do
	callgrind_annotate --inclusive=yes "$f" 2>/dev/null | grep -q ':worker_run ' || continue
	echo "# instructions per request (inclusive), $(basename "$f")"
	callgrind_annotate --inclusive=yes "$f" 2>/dev/null |
		awk -v n="$N" 'match($0, /:(worker_run|store_policy_get|codec_policy_to_json|http_resp_json|auth_check|log_emit|http_req_parse|route_find|store_read_begin|store_read_end|FCGX_Accept_r|FCGX_Finish_r|__memset[a-z0-9_]*) /) {
			name = substr($0, RSTART + 1, RLENGTH - 2); v = $1; gsub(",", "", v)
			if (!(name in seen)) { seen[name] = 1; printf "%-28s %9.0f\n", name, v / n }
		}'
done
