# shellcheck shell=bash
# shellcheck disable=SC2034   # T_*, R_* are results for the caller
# test/lib/results.sh — counting test results, shared by test/run.sh and test/asan/run.sh.
#
# Source it; the caller defines PASSED and FAILED (set to 0).
#   section TEXT...          "==== TEXT ====" header
#   pass N / fail N          add N to PASSED / FAILED
#   count REGEX FILE         number of lines of FILE matching REGEX (0 when none or no file)
#   tap_count LOG            TAP results of LOG: sets T_OK, T_FAIL (not-ok without TODO, plus
#                            planned tests that never ran) and T_RUN.  Only unindented
#                            "ok N"/"not ok N" lines count (subtests are indented; prove's own
#                            trailing "ok" has no number).
#   pg_prove_result LOG RC NAME
#                            tap_count, then a pg_prove exit status RC without a counted
#                            failure (bad plan, SQL error) and a log without TAP output each
#                            count as one failure
#   regress_result LOG RC    pg_regress results of LOG (PG15 "name ... ok|FAILED", newer TAP
#                            "ok N - name"): prints them, sets R_OK and R_BAD; an exit status
#                            RC without a failed test, or no result at all, is one failure

section() { printf '\n==== %s ====\n' "$*"; }
pass() { PASSED=$((PASSED + $1)); }
fail() { FAILED=$((FAILED + $1)); }
count() { local n; n=$(grep -cE "$1" "$2" 2>/dev/null) || true; echo "${n:-0}"; }

tap_count() {
	local log=$1 ok notok todo planned
	ok=$(count '^ok [0-9]+' "$log")
	notok=$(count '^not ok [0-9]+' "$log")
	todo=$(grep -E '^not ok [0-9]+' "$log" 2>/dev/null | grep -ciE '#[[:space:]]*todo') || true
	planned=$(grep -oE '^1\.\.[0-9]+' "$log" 2>/dev/null | cut -c4- | awk '{s += $1} END {print s + 0}')
	T_RUN=$((ok + notok))
	T_OK=$((ok + ${todo:-0}))
	T_FAIL=$((notok - ${todo:-0}))
	if (( planned > T_RUN )); then
		T_FAIL=$((T_FAIL + planned - T_RUN))
	fi
}

pg_prove_result() {
	local log=$1 rc=$2 name=$3
	tap_count "$log"
	if (( rc != 0 && T_FAIL == 0 )); then
		T_FAIL=1
	fi
	if (( T_FAIL == 0 && T_RUN == 0 )); then
		T_FAIL=1
		echo "  FAIL $name: no TAP output"
	fi
}

regress_result() {
	local log=$1 rc=$2
	R_OK=$(count '\.\.\. +ok|^ok [0-9]+ ' "$log")
	R_BAD=$(count '\.\.\. +FAILED|^not ok [0-9]+ ' "$log")
	grep -E '\.\.\. |^(not )?ok [0-9]+ ' "$log" | sed 's/^/  /'
	if (( rc != 0 && R_BAD == 0 )); then
		R_BAD=1
		echo "  FAIL pg_regress exited $rc without a failed test; its output:"
		tail -n 40 "$log" | sed 's/^/    /'
	elif (( rc == 0 && R_OK == 0 )); then
		R_BAD=1
		echo "  FAIL no pg_regress result found in $log"
	fi
}
