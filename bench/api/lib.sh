# SPDX-License-Identifier: MIT
# This file holds what the API benchmark scripts share (sourced): stopping
# their processes, a free port, the seeded policies.

# stop_pids SECONDS PID...: SIGTERM each process we started, wait up to
# SECONDS for each to end, then SIGKILL what is left.  By PID only.
stop_pids() {
	limit=$(($1 * 10))
	shift
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	for p in "$@"; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt $limit ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$p" 2>/dev/null
	done
}

# free_port: a loopback TCP port nothing listens on
free_port() {
	while :; do
		p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000 ))
		ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}

# seed_policies DB N: N policies bench-00000 ..., each its own network_id,
# with profile none, in one transaction straight into the migrated database
# (the API would take minutes), and desired generation 1 so that the
# applier has nothing to do (egw-api records each one's derived
# interface when it starts)
seed_policies() {
	sqlite3 "$1" <<SQL
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $2 - 1)
INSERT INTO policies (scenario_id, network_id, profile, generation, created_at, updated_at)
SELECT printf('bench-%05d', i), printf('bench-%05d', i), 'none', 1,
       '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' FROM n;
UPDATE applier_state SET desired_generation = 1 WHERE id = 1;
COMMIT;
SQL
}

# callgrind_*.sh: a database in $EGW_STATE_DIR with 10,000 seeded policies
# whose stored documents a run of "$1/egw-api" outside valgrind built (the
# pool builds them when it starts; under callgrind that would be most of
# the count).  $2: where that run's log goes.
cg_prepare_database() {
	local i prefill
	"$1/egw-admin" migrate >/dev/null 2>&1 || return 1
	seed_policies "$EGW_STATE_DIR/egw.db" 10000 || return 1
	"$1/egw-api" 2> "$2" &
	prefill=$!
	for i in $(seq 1 100); do
		[ "$(sqlite3 "$EGW_STATE_DIR/egw.db" "SELECT count(*) FROM policies WHERE api_json IS NULL")" = 0 ] && break
		sleep 0.2
	done
	stop_pids 10 $prefill
	echo "# stored documents: $(sqlite3 "$EGW_STATE_DIR/egw.db" "SELECT count(*) FROM policies WHERE api_json IS NOT NULL") of 10000"
}

# callgrind_*.sh: "$1/egw-api" under callgrind (profiles in $T/cg, log in
# $T/api.log) behind an nginx on a free loopback port, which goes to PORT;
# both pids are added to pids.  Returns once /healthz answers.
cg_start_pool() {
	local i
	valgrind --tool=callgrind --trace-children=yes \
		--callgrind-out-file="$T/cg/cg.%p" "$1/egw-api" 2> "$T/api.log" &
	pids="$pids $!"
	PORT=$(free_port)
	"$top/scripts/render-nginx-conf" --standalone "$T/nginx" --listen "127.0.0.1:$PORT" \
		--socket "$EGW_FCGI_SOCKET" --access-log off > "$T/nginx/nginx.conf" || return 1
	nginx -e "$T/nginx/error.log" -c "$T/nginx/nginx.conf" -g 'daemon off;' &
	pids="$pids $!"
	for i in $(seq 1 200); do
		curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0
		sleep 0.5
	done
	echo "the pool did not answer /healthz" >&2
	return 1
}
