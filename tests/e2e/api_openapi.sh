#!/bin/bash
# SPDX-License-Identifier: MIT
# docs/openapi.yaml against the running API: every documented route is
# served (egw-api --routes) and answers through nginx, and every served
# route is documented.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_openapi

DOC=$EGW_TOP_SRCDIR/docs/openapi.yaml
# "METHOD /path" for every operation under paths: (2-space path keys,
# 4-space method keys), in upper case.
awk '/^paths:/ { in_paths = 1; next }
	/^[^ ]/ { in_paths = 0 }
	in_paths && /^  \// { sub(/:$/, "", $1); path = $1 }
	in_paths && /^    (get|post|put|patch|delete|head|options):/ {
		m = $1; sub(/:$/, "", m); print toupper(m), path }' "$DOC" | sort > "$T/documented"
"$(egw_bin egw-api)" --routes | awk '{ print $1, $2 }' | sort > "$T/served"
ok "the document lists operations" test "$(wc -l < "$T/documented")" -ge 10
ok "every served route is documented" bash -c "! comm -23 '$T/served' '$T/documented' | grep ."
ok "every documented route is served" bash -c "! comm -13 '$T/served' '$T/documented' | grep ."
ok "openapi version line" grep -q '^openapi: 3\.' "$DOC"
ok "every \$ref points at a defined component" bash -c "
	for r in \$(grep -o '#/components/[a-zA-Z]*/[A-Za-z]*' '$DOC' | sort -u); do
		kind=\$(echo \$r | cut -d/ -f3); name=\$(echo \$r | cut -d/ -f4)
		awk -v k=\"  \$kind:\" -v n=\"    \$name:\" '\$0 == k { s = 1; next } /^  [a-z]/ { s = 0 } s && index(\$0, n) == 1 { f = 1 } END { exit !f }' '$DOC' || { echo \"missing \$r\"; exit 1; }
	done"

export EGW_AUTH=off
start_api 2
start_nginx
api POST /v1/policies '{"scenario_id":"oa-1","profile":"none"}'
ok "fixture policy created" status_is 201
while read -r method path; do
	p=${path//\{scenario_id\}/oa-1}
	body=
	case "$method $path" in
	"POST /v1/policies") body='{"scenario_id":"oa-2"}' ;;
	esac
	api "$method" "$p" "$body"
	code=$(cat "$T/status")
	if [ "$path" = /readyz ]; then
		ok "$method $path answers (200 or 503 without an applier)" bash -c "[ $code = 200 ] || [ $code = 503 ]"
	else
		ok "$method $path answers 2xx ($code)" bash -c "[ $code -ge 200 ] && [ $code -lt 300 ]"
	fi
done < <(sort -r "$T/documented")
e2e_done
