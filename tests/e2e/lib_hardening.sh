# SPDX-License-Identifier: MIT
# Helpers of the hardening scenarios (hostile_*.sh, chaos.sh, valgrind.sh);
# source after lib.sh (and lib_api.sh / lib_netns.sh when used).
#
#   hard_gw_netns          one namespace "gw" for egw-applier (DRY_RUN=false),
#                          sets NS_GW; no veth, no traffic needed
#   state_snapshot FILE    the policy tables of the database (sqlite3 .dump)
#                          plus the desired/applied generations
#   kernel_snapshot FILE   `nft -j list table inet forge_egress` inside NS_GW
#   same_file A B          byte-for-byte comparison with a diff on failure
#
# Left out of the snapshot, because they change without any request:
# component_status (heartbeats), policy_counters (kernel counters read back
# by the applier), applier_state's timestamps/durations and applier_rendered (the
# reconcile loop rewrites them; the generations are kept), egress_log
# (packets; no traffic flows in these tests).

hard_gw_netns() {
	need_root
	need_cmd ip nft sqlite3
	NS_GW=$(make_netns gw)
	# The gateway's own address on the scenario subnet, so the applier has
	# something to protect; both ends of the veth stay in the namespace.
	ip -n "$NS_GW" link add g0 type veth peer name g0p || exit 99
	ip -n "$NS_GW" addr add 100.64.1.1/24 dev g0
	ip -n "$NS_GW" link set g0 up
	ip -n "$NS_GW" link set g0p up
	export NS_GW
}

HARD_TABLES="profiles profile_rules track_profiles policies policy_sources \
policy_dns_servers policy_destinations policy_history outbox api_tokens"

state_snapshot() {
	# shellcheck disable=SC2086
	sqlite3 -cmd '.timeout 5000' "$EGW_STATE_DIR/egw.db" ".dump $HARD_TABLES" > "$1" &&
	sqlite3 -cmd '.timeout 5000' "$EGW_STATE_DIR/egw.db" \
		"SELECT 'generations', desired_generation, applied_generation FROM applier_state" >> "$1"
}

# One JSON object per line (jq -c '.nftables[]'), so a difference is a
# readable line diff; the content is exactly nft's.
kernel_snapshot() {
	ip netns exec "$NS_GW" nft -j list table inet forge_egress > "$1.raw" &&
	jq -c '.nftables[]' < "$1.raw" > "$1"
}

same_file() {
	cmp -s "$1" "$2" && return 0
	diff "$1" "$2" | head -n 20 | cut -c 1-240 | sed 's/^/# /'
	return 1
}

# Counting helper: every hostile case bumps HARD_CASES.
HARD_CASES=0
