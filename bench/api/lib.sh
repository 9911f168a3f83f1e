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
