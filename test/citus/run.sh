#!/usr/bin/env bash
# make test-citus: build Citus if needed (build.sh), then run every test/citus/NN_*.sh on its
# own three-node cluster and print a summary.  BB_CITUS_ONLY=02,03 runs a subset.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export PGBIN
PG_CONFIG=${PG_CONFIG:-$PGBIN/pg_config} "$here/build.sh"
export BB_WORK=${BB_WORK:-$root/tmp_check/citus}
mkdir -p "$BB_WORK"
. "$root/test/lib/results.sh"

total_pass=0 total_fail=0 failed=()
for script in "$here"/[0-9][0-9]_*.sh; do
	name=$(basename "$script" .sh)
	if [[ -n ${BB_CITUS_ONLY:-} && ,$BB_CITUS_ONLY, != *,${name%%_*},* ]]; then continue; fi
	log=$BB_WORK/$name.log
	rc=0
	timeout "${BB_CITUS_TIMEOUT:-900}" bash "$script" >"$log" 2>&1 || rc=$?
	tap_count "$log" || true; p=$T_OK f=$T_FAIL
	total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
	if (( rc != 0 || f > 0 || p == 0 )); then
		failed+=("$name"); echo "citus $name: FAILED ($p passed, $f failed, exit $rc; log $log)"
		grep -E '^not ok|^#' "$log" | head -20 | sed 's/^/    /'
	else
		echo "citus $name: $p passed"
	fi
done
echo "citus: $total_pass passed, $total_fail failed"
(( ${#failed[@]} == 0 ))
