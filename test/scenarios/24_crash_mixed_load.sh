#!/usr/bin/env bash
# 24_crash_mixed_load — every pillar's guarantees survive kill -9 in the middle of a mixed
# load (shared_preload_libraries = 'brandbos', so the background sealer runs meanwhile).
#
# The workload of invariants_lib.sh: each transaction sets a request context, inserts a
# protected 200-byte token, updates an audited row, adds a contribution (cost, tokens) to one
# of 8 deliberation sessions and records all of it in a plain ledger table, in the same
# transaction.  BB_CRASH_ROUNDS rounds (default 3), each:
#   1. pgbench -c 2 -j 2 runs the workload in the background;
#   2. once work flows, after a random pause, a crash: odd rounds kill -9 one random backend
#      of the workload (the postmaster then resets every backend), even rounds kill -9 the
#      postmaster and all its children, then start the server again;
#   3. the server accepts queries again, no transaction committed before the crash is lost,
#      and all invariants hold: no plaintext anywhere in the data directory after
#      CHECKPOINT, every committed audited change in the audit log (and nothing from the
#      aborted ones), seal + verify_audit clean, session totals = sums of contributions =
#      the ledger's, every protected row decrypts to what was inserted.
# pgbench's own counts are not used (clients abort at the crash); the ledger is the truth.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=invariants_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/invariants_lib.sh"

C=s24_crash_mixed
ROUNDS=${BB_CRASH_ROUNDS:-3}
WORKLOAD_SECONDS=8     # each round's pgbench -T; the crash comes well before its end

sc_cluster "$C" 55524 yes
inv_setup "$C" 8
DIR=$(inv_dir "$C")
LOG=$(bb_logfile "$C")

PGBENCH_PID=
start_workload() {   # start_workload ROUND
	inv_app_pgbench "$C" -c 2 -j 2 -T "$WORKLOAD_SECONDS" -f "$DIR/mixed.sql" \
		>"$DIR/pgbench.$1.out" 2>&1 &
	PGBENCH_PID=$!
}

# wait for pgbench (its clients abort at the crash); prints its exit status
wait_workload() {
	local i rc=0
	for ((i = 0; i < 600; i++)); do
		if ! kill -0 "$PGBENCH_PID" 2>/dev/null; then break; fi
		sleep 0.1
	done
	if kill -0 "$PGBENCH_PID" 2>/dev/null; then
		kill "$PGBENCH_PID" 2>/dev/null || true
	fi
	wait "$PGBENCH_PID" || rc=$?
	echo "$rc"
}

# until the ledger holds at least N committed transactions
wait_ledger() {
	local want=$1 i
	for ((i = 0; i < 200; i++)); do
		if (( $(inv_ledger_count "$C") >= want )); then return 0; fi
		sleep 0.1
	done
	echo "# the ledger did not reach $want rows within 20 s" >&2
	return 1
}

# a random backend of the workload (pgbench's connections as bench_app)
workload_backend() {
	inv_q "$C" "SELECT pid FROM pg_stat_activity WHERE usename = 'bench_app'
	             AND application_name = 'pgbench' AND backend_type = 'client backend'
	           ORDER BY random() LIMIT 1"
}

count_in_log() { grep -c -- "$1" "$LOG" || true; }

# until the postmaster logged one more reset than BEFORE (it has seen the backend die)
# shellcheck disable=SC2317   # called through check
wait_reset() {
	local before=$1 i
	for ((i = 0; i < 300; i++)); do
		if (( $(count_in_log 'all server processes terminated; reinitializing') > before )); then
			return 0
		fi
		sleep 0.1
	done
	echo "# the postmaster logged no reset within 30 s" >&2
	return 1
}

crash_backend() {   # crash_backend ROUND: kill -9 one random workload backend
	local r=$1 victim resets killed
	victim=$(workload_backend)
	if [[ -z $victim ]]; then
		fail "round $r: a workload backend to kill" "no pgbench backend in pg_stat_activity"
		return 0
	fi
	resets=$(count_in_log 'all server processes terminated; reinitializing')
	killed=$(count_in_log "(PID $victim) was terminated by signal 9")
	kill -9 "$victim"
	diag "round $r: kill -9 of backend $victim"
	check "round $r: the postmaster resets all backends after backend $victim died" wait_reset "$resets"
	assert_eq "round $r: the server log names backend $victim as killed by signal 9" $((killed + 1)) \
		"$(count_in_log "(PID $victim) was terminated by signal 9")"
}

crash_postmaster() {   # crash_postmaster ROUND: kill -9 of the postmaster and its children, restart
	local r=$1 recoveries
	recoveries=$(count_in_log 'database system was interrupted\|not properly shut down')
	bb_cluster_kill9 "$C"
	diag "round $r: kill -9 of the postmaster and all its children"
	bb_cluster_start "$C"
	assert_eq "round $r: the restarted server ran crash recovery" 1 \
		"$(( $(count_in_log 'database system was interrupted\|not properly shut down') > recoveries ))"
}

SURVIVED=0
run_round() {
	local r=$1 failed_before=$SC_FAILED start committed pause rc after
	start=$(inv_ledger_count "$C")
	start_workload "$r"
	wait_ledger $((start + 100))
	# a random moment 0.3 .. 2.8 s after work is flowing
	pause=$(printf '%d.%03d' $((RANDOM % 3)) $((RANDOM % 1000)))
	pause=$(awk -v p="$pause" 'BEGIN { print (p > 2.5 ? 2.5 : p) + 0.3 }')
	sleep "$pause"
	committed=$(inv_ledger_count "$C")
	if (( r % 2 == 1 )); then crash_backend "$r"; else crash_postmaster "$r"; fi
	rc=$(wait_workload)
	diag "round $r: crash ${pause}s after work was flowing; pgbench exited $rc (expected: clients aborted)"
	check "round $r: the server accepts queries again" inv_wait_ready "$C" 60
	after=$(inv_ledger_count "$C")
	assert_eq "round $r: no transaction committed before the crash is lost (ledger $after >= $committed)" 1 \
		"$(( after >= committed ))"
	assert_eq "round $r: the round did work (ledger grew from $start to $after)" 1 "$(( after > start ))"
	inv_check_all "$C" "round $r"
	if (( SC_FAILED == failed_before )); then SURVIVED=$((SURVIVED + 1)); fi
}

for ((round = 1; round <= ROUNDS; round++)); do
	run_round "$round"
done

assert_eq "no backend died of anything but our SIGKILLs, no PANIC" "" \
	"$(grep -E 'terminated by signal [0-9]+|PANIC' "$LOG" | grep -v 'terminated by signal 9:' || true)"
diag "ledger: $(inv_ledger_count "$C") committed mixed transactions over $ROUNDS rounds," \
	"audit rows: $(inv_q "$C" 'SELECT count(*) FROM brandbos.audit_entries'), blocks: $(inv_q "$C" 'SELECT count(*) FROM brandbos.audit_blocks')"
echo "# crash rounds survived with invariants held: $SURVIVED/$ROUNDS"
assert_eq "every crash round survived with all invariants held" "$ROUNDS/$ROUNDS" "$SURVIVED/$ROUNDS"
sc_finish
