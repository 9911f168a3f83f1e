#!/bin/bash
# SPDX-License-Identifier: MIT
# The database the programs create answers every view the README documents
# with the sqlite3 CLI, every view in the database is documented, and the
# README's example queries run.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init sql_views
need_cmd sqlite3

export EGW_STATE_DIR="$T/state" EGW_RUN_DIR="$T/run"
mkdir -p "$EGW_STATE_DIR"
db="$EGW_STATE_DIR/egw.db"
ok "egw-admin migrate creates the database" "$EGW_TOP_BUILDDIR/egw-admin" migrate
ok "schema version is reported" test "$("$EGW_TOP_BUILDDIR/egw-admin" schema-version)" -ge 1

readme="$EGW_TOP_SRCDIR/README.md"
documented=$(sed -n 's/^| `\(v_[a-z_]*\)` |.*/\1/p' "$readme" | sort -u)
in_db=$(sqlite3 "$db" "SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name")
ok "README documents at least 4 views" test "$(echo "$documented" | wc -l)" -ge 4
ok "every view in the database is documented and vice versa" test "$documented" = "$in_db"
for v in $documented; do
	ok "sqlite3 answers SELECT * FROM $v" sqlite3 "$db" "SELECT * FROM $v"
done

# Some rows, so the views have something to aggregate.
sqlite3 "$db" <<'SQL'
INSERT INTO egress_log (ts, scenario_id, action, src_ip, dst_ip, dst_port, protocol, reason) VALUES
 ('2026-11-28T10:01:00.000Z', 'lab-1', 'deny', '100.64.1.2', '203.0.113.10', 443, 'tcp', 'default'),
 ('2026-11-28T10:02:00.000Z', 'lab-1', 'deny', '100.64.1.2', '203.0.113.11', 443, 'tcp', 'default'),
 ('2026-11-28T10:03:00.000Z', 'lab-1', 'allow', '100.64.1.2', '10.1.1.1', 80, 'tcp', 'allowlist');
SQL
ok "denies are counted per scenario and hour" \
	test "$(sqlite3 "$db" "SELECT scenario_id || ' ' || hour || ' ' || denies || ' ' || distinct_destinations FROM v_denies_per_scenario_hour")" = "lab-1 2026-11-28T10:00Z 2 2"

# The README's example queries (lines starting with sqlite3 and the db path).
n=0
while IFS= read -r q; do
	n=$((n + 1))
	ok "README example query $n runs" sqlite3 "$db" "$q"
done < <(awk '/^sqlite3 \/var\/lib\/forge-egress-gateway\/egw.db/ {
		line = $0
		while (line ~ /\\$/) { sub(/\\$/, "", line); getline nxt; line = line nxt }
		sub(/^sqlite3 [^ ]+ +/, "", line); gsub(/^"|"$/, "", line); print line }' "$readme")
ok "README has example queries" test "$n" -ge 3
e2e_done
