#!/usr/bin/env bash
# test/fuzz/run.sh — build and run every libFuzzer target for SECONDS each, as TAP.
#
#   test/fuzz/run.sh [SECONDS]        (default 60; make fuzz passes FUZZ_SECONDS)
#
# Each target is seeded from corpus/<name> and keeps what it learns in work/<name>
# (ignored by git).  A target passes when libFuzzer ran for the whole time and found no
# crash, leak, timeout or sanitizer report; its executions are printed either way.  The
# inputs of a failure are left as crash-*/leak-*/timeout-*/oom-* files in test/fuzz.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
SECONDS_EACH=${1:-60}
TARGETS=$(make -s --no-print-directory print-targets) || exit 1

if ! make -s --no-print-directory all >build.log 2>&1; then
	echo "not ok 1 - the fuzz targets build (clang-14 with libFuzzer)"
	sed 's/^/# /' build.log | tail -n 30
	echo "1..1"
	exit 1
fi

n=0
failed=0
for t in $TARGETS; do
	n=$((n + 1))
	name=${t#fuzz_}
	mkdir -p "work/$name"
	log=work/$name.log
	./"$t" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -artifact_prefix=./ \
		"work/$name" "corpus/$name" >"$log" 2>&1
	rc=$?
	execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || true)
	if (( rc == 0 )) && [[ -n $execs ]] && ! grep -qE 'ERROR: |runtime error:' "$log"; then
		echo "ok $n - $t: ${execs} executions in ${SECONDS_EACH}s, 0 crashes"
	else
		failed=$((failed + 1))
		echo "not ok $n - $t: libFuzzer exited $rc after ${execs:-?} executions"
		grep -E 'ERROR|runtime error|SUMMARY|Test unit written|#0 |#1 |#2 ' "$log" | head -n 20 | sed 's/^/# /'
	fi
done
echo "1..$n"
(( failed == 0 ))
