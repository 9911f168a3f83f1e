#!/bin/bash
# SPDX-License-Identifier: MIT
# Hostile scenario events over a real nats-server (JetStream, durable
# consumers) into egw-natsd, with egw-applier enforcing in a namespace of
# its own: nft syntax, shell metacharacters, ';' / newline / quotes / NUL,
# unicode look-alikes, overlong ids and path traversal in every string field
# of scenario.created and scenario.completed, wrong types, out-of-range and
# non-integer numbers, deep nesting, huge arrays, oversized and non-JSON
# bodies.  Each must be terminated and recorded exactly once as an
# "event.rejected" audit event (in SQLite and on the AUDIT stream), nothing
# is left pending or redelivered, and the policy tables of the database
# (everything but the outbox, which gains exactly those rows) and the kernel
# table are byte-for-byte unchanged.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_netns.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_hardening.sh"
e2e_init hostile_nats
need_cmd jq
start_nats
hard_gw_netns
applier_env
. "$EGW_TOP_SRCDIR/tests/e2e/nats_lib.sh"
export EGW_MAX_BODY=65536
HARD_TABLES="profiles profile_rules track_profiles policies policy_sources \
policy_dns_servers policy_destinations policy_history api_tokens"

quiet "$PROBE" stream-add SCENARIOS scenario.created,scenario.completed ||
	{ echo "Bail out! cannot create the scenario stream"; exit 99; }
start_applier
start_natsd
ok "setup: bound to the durable consumers" wait_until 10 natsd_info_is created_mode durable

pub() {	# pub SUBJECT BODY-FILE
	"$PROBE" jspub "$1" - < "$2" > /dev/null ||
		{ echo "Bail out! publish failed"; exit 99; }
}
BASE='{"scenario_id":"nx","network_id":"net-nx","track":"cissp","profile":"custom",
 "sources":["100.64.20.0/24"],"interfaces":["veth-nx"],"dns_servers":["198.51.100.20"],
 "allowed_hosts":["203.0.113.20"],"allowed_ports":[8443],"mode":"enforce",
 "custom_rules":[{"proto":"tcp","dest":"203.0.113.10","ports":[443]}]}'
BASE=$(echo "$BASE" | jq -c .)
printf '%s' "$BASE" > "$T/base.json"
pub scenario.created "$T/base.json"
printf '{"scenario_id":"ny","network_id":"net-ny","track":"netplus","sources":["100.64.21.0/24"]}' > "$T/ny.json"
pub scenario.created "$T/ny.json"
ok "setup: both valid events became policies" wait_until 10 q_eq \
	"SELECT count(*) FROM policies WHERE scenario_id IN ('nx','ny')" 2
ok "setup: applied to the kernel" wait_until 15 gen_applied
settled() {
	gen_applied && q_eq "SELECT count(*) FROM policies WHERE applied_generation <>
		(SELECT desired_generation FROM applier_state)" 0
}
ok "setup: the applier's bookkeeping settled" wait_until 15 settled
state_snapshot "$T/db.before"
kernel_snapshot "$T/nft.before"
OUT_MAX=$(q "SELECT coalesce(max(id), 0) FROM outbox")
REJ0=$(q "SELECT count(*) FROM outbox WHERE type = 'event.rejected'")
q "SELECT id, event_id, type, scenario_id, payload FROM outbox ORDER BY id" > "$T/outbox.before"
ok "setup: snapshots taken" test -s "$T/db.before" -a -s "$T/nft.before"

N=0
bad() {	# bad SUBJECT BODY
	N=$((N + 1))
	printf '%s' "$2" > "$T/ev.json"
	pub "$1" "$T/ev.json"
}
bad_file() {	# bad_file SUBJECT FILE
	N=$((N + 1))
	pub "$1" "$2"
}
with() {	# with JQ-PATH VALUE: BASE with one string set
	printf '%s' "$BASE" | jq -c --argjson p "$1" --arg v "$2" 'setpath($p; $v)'
}

LONG=$(head -c 300 /dev/zero | tr '\0' a)
PAYLOADS=(
	'1.2.3.4; flush ruleset'
	'x" accept; add rule inet forge_egress forward accept #'
	'$(touch /tmp/egw-pwned)'
	'`id>/tmp/egw-pwned`'
	$'eth0\nadd table ip evil { }'
	$'a\'b"c'
	'NUL_MARK'
	'сustom'
	'１９２.０.２.１'
	"$LONG"
	'../../etc/passwd'
	$'a\u200bb'
)
# created: every string field
for f in '["scenario_id"]' '["network_id"]' '["track"]' '["profile"]' \
    '["allowed_hosts",0]' '["sources",0]' '["interfaces",0]' \
    '["custom_rules",0,"dest"]' '["custom_rules",0,"proto"]' '["mode"]'; do
	for v in "${PAYLOADS[@]}"; do
		b=$(with "$f" "$v")
		bad scenario.created "${b//NUL_MARK/a\\u0000b}"
	done
done
# completed: the id fields
for f in scenario_id network_id; do
	for v in "${PAYLOADS[@]}"; do
		b=$(jq -cn --arg k "$f" --arg v "$v" '{scenario_id:"nx"} + {($k): $v}')
		bad scenario.completed "${b//NUL_MARK/a\\u0000b}"
	done
done
num() { b=$(printf '%s' "$BASE" | jq -c --argjson p "$1" 'setpath($p; "NUM_MARK")'); bad scenario.created "${b//\"NUM_MARK\"/$2}"; }
num '["allowed_ports",0]' 0
num '["allowed_ports",0]' 65536
num '["allowed_ports",0]' -443
num '["allowed_ports",0]' 443.0
num '["allowed_ports",0]' 1e3
num '["allowed_ports",0]' '"0x1bb"'
num '["allowed_ports",0]' 18446744073709551616
num '["custom_rules",0,"ports",0]' '"9000-8000"'
num '["sources",0]' '"100.64.20.1/24"'
num '["sources",0]' '"100.64.20.0/33"'
# outside the managed scenario networks, or the gateway's own
num '["sources",0]' '"10.9.0.0/24"'
num '["sources",0]' '"127.0.0.1"'
num '["interfaces",0]' '"lo"'
# wrong types
for kv in 'scenario_id:42' 'scenario_id:null' 'track:["cissp"]' 'track:{"a":1}' 'enabled:"yes"' \
    'allowed_hosts:"203.0.113.20"' 'custom_rules:"tcp 443 accept"' 'sources:true' 'profile:7'; do
	k=${kv%%:*} v=${kv#*:}
	bad scenario.created "$(printf '%s' "$BASE" | jq -c --arg k "$k" --argjson v "$v" '.[$k] = $v')"
done
bad scenario.created "$(printf '%s' "$BASE" | jq -c '.verdict = "accept"')"
bad scenario.completed '{"scenario_id":["nx"]}'
bad scenario.completed '{"scenario_id":"nx","reason":"; flush ruleset"}'
bad scenario.completed '{}'
# structure and size
bad scenario.created ''
bad scenario.created 'flush ruleset'
bad scenario.created '[{"scenario_id":"nx"}]'
bad scenario.created 'null'
bad scenario.created "$BASE$BASE"
bad scenario.created '{"scenario_id":"nx","profile":"none"'
printf '{"scenario_id":"nx\000"}' > "$T/nul.json"; bad_file scenario.created "$T/nul.json"
printf '{"scenario_id":"n\xffx"}' > "$T/utf8.json"; bad_file scenario.completed "$T/utf8.json"
bad scenario.created "{\"scenario_id\":\"nx\",\"x\":$(printf '[%.0s' $(seq 17))$(printf ']%.0s' $(seq 17))}"
bad scenario.created "{\"a\":$(printf '{"a":%.0s' $(seq 3000))1$(printf '}%.0s' $(seq 3000))}"
python3 -c 'import json; print(json.dumps({"scenario_id":"nx","sources":["100.64.20.0/24"],"profile":"custom","allowed_hosts":["203.0.%d.%d" % (i // 256, i % 256) for i in range(257)]}))' > "$T/h257.json"
bad_file scenario.created "$T/h257.json"
python3 -c 'import json; print(json.dumps({"scenario_id":"nx","allowed_ports":[443]*9000}))' > "$T/p9000.json"
bad_file scenario.created "$T/p9000.json"
python3 -c 'print("{\"scenario_id\":\"nx\",\"pad\":\"" + "a" * 900000 + "\"}")' > "$T/900k.json"
bad_file scenario.created "$T/900k.json"
python3 -c 'print("{\"scenario_id\":\"nx\",\"pad\":\"" + "a" * 70000 + "\"}")' > "$T/70k.json"
bad_file scenario.completed "$T/70k.json"
diag "$N hostile events published"

ok "every hostile event recorded once as event.rejected ($N)" wait_until 30 q_eq \
	"SELECT count(*) FROM outbox WHERE type = 'event.rejected'" "$((REJ0 + N))"
ok "created consumer: nothing pending or unacknowledged" wait_until 10 \
	consumer_is SCENARIOS egress_gateway_created num_ack_pending 0
ok "completed consumer: nothing pending or unacknowledged" wait_until 10 \
	consumer_is SCENARIOS egress_gateway_completed num_ack_pending 0
ok "no hostile event was redelivered (created)" consumer_is SCENARIOS egress_gateway_created num_redelivered 0
ok "no hostile event was redelivered (completed)" consumer_is SCENARIOS egress_gateway_completed num_redelivered 0
ok "the outbox gained only event.rejected rows" q_is \
	"SELECT count(*) FROM outbox WHERE id > $OUT_MAX AND type <> 'event.rejected'" 0
q "SELECT id, event_id, type, scenario_id, payload FROM outbox WHERE id <= $OUT_MAX ORDER BY id" > "$T/outbox.after"
ok "earlier outbox rows unchanged" same_file "$T/outbox.before" "$T/outbox.after"
ok "every rejected event reached the AUDIT stream once (ids unique)" wait_until 20 bash -c \
	"[ \"\$('$PROBE' stream-dump AUDIT | jq -r 'select(.data.type == \"event.rejected\") | .data.event_id' | sort -u | wc -l)\" -ge $((REJ0 + N)) ]"
dups=$("$PROBE" stream-dump AUDIT | jq -r '.data.event_id' | sort | uniq -d | wc -l)
ok "no event id twice on the AUDIT stream ($dups)" test "$dups" -eq 0
ok "no command of the payloads ran" test ! -e /tmp/egw-pwned
ok "egw-natsd is still running" kill -0 "$NATSD_PID"
wait_until 10 settled
state_snapshot "$T/db.after"
kernel_snapshot "$T/nft.after"
ok "database policy tables byte-for-byte unchanged" same_file "$T/db.before" "$T/db.after"
ok "kernel table inet forge_egress byte-for-byte unchanged" same_file "$T/nft.before" "$T/nft.after"

# Duplicate keys last (codec.c lets the last one win: requests-hardening.md B2).
N2=0
for b in '{"scenario_id":"nx","scenario_id":"nz","sources":["100.64.22.0/24"]}' \
    '{"scenario_id":"ny","profile":"none","profile":"custom","allowed_ports":[1,"2-65535"],"sources":["100.64.21.0/24"]}'; do
	N2=$((N2 + 1))
	bad scenario.created "$b"
done
ok "duplicate-key events are rejected too" wait_until 15 q_eq \
	"SELECT count(*) FROM outbox WHERE type = 'event.rejected'" "$((REJ0 + N))"  # bad() counted N2 into N too
sleep 2
wait_until 10 settled
state_snapshot "$T/db.after2"
kernel_snapshot "$T/nft.after2"
ok "database unchanged after the duplicate-key events" same_file "$T/db.before" "$T/db.after2"
ok "kernel table unchanged after the duplicate-key events" same_file "$T/nft.before" "$T/nft.after2"
HARD_CASES=$((N + N2))
diag "$HARD_CASES hostile NATS cases"
ok "at least 150 hostile NATS cases ran ($HARD_CASES)" test "$HARD_CASES" -ge 150
e2e_done
