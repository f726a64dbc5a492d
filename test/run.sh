#!/usr/bin/env bash
# test/run.sh — the `make test` driver.  `make test` installs dependencies, builds and
# installs the extension, then runs this script; it can also be run by hand after
# `make install`.
#
# Steps, in order:
#   regress    pg_regress (REGRESS in the Makefile, via `make installcheck`) on both clusters
#   pgtap      pg_prove on every test/pgtap/*.sql, in database `tap`, on both clusters
#   unit       `make -C test/unit check` (TAP output), when test/unit/Makefile exists
#   fuzz       test/fuzz/run.sh: every libFuzzer target for $BB_FUZZ_SECONDS (60) each
#   lint       test/lint.sh: cppcheck and clang-tidy over src/, zero findings
#   scenarios  every executable test/scenarios/*.sh, each in its own throwaway clusters,
#              with a time limit; output in $BB_WORK/logs/<name>.log
#   asan       test/asan/run.sh: the extension built with ASan+UBSan, pg_regress and the
#              pgTAP suite against servers that load it; any sanitizer report fails
#   citus      test/citus/run.sh: Citus 13.2.2 built from ../shared/vendor/ once (cached in
#              /var/cache/brandbos/) and installed
#              beside the extension, then every test/citus/NN_*.sh on a coordinator and two
#              workers of its own; each check counts
#   package    test/package/meta_check.py (META.json), and as root test/package/deb_test.sh:
#              the Debian package built, installed with dpkg in place of the system tree's
#              brandbos files, smoke-tested, purged, and the files put back
# regress and pgtap run against two clusters made here: regress_preload (with
# shared_preload_libraries = 'brandbos') and regress_plain (without).
#
# Environment:
#   BB_ONLY=regress|pgtap|unit|fuzz|lint|scenarios|asan|citus|package
#                                         run only these steps (comma or space separated)
#   BB_FUZZ_SECONDS                       seconds per fuzz target (60)
#   BB_PORT_PRELOAD / BB_PORT_PLAIN       first port tried for each of the two clusters
#                                         (55432 / 55433); a busy one is skipped, see
#                                         "Ports" in test/lib/cluster.sh
#   BB_SCENARIO_TIMEOUT                   seconds per scenario (600)
#   BB_PGTAP_ONLY=GLOB                    pgTAP files whose name matches GLOB only (e.g. '5*')
#   BB_SCENARIO_ONLY=GLOB                 scenarios whose name matches GLOB only (e.g. '17_*')
#   BB_KEEP=1                             keep the two clusters running afterwards
#   BB_WORK                               scratch tree (default tmp_check/, see test/lib/cluster.sh)
#
# Runs can go side by side on one machine (every server takes a free port, see "Ports" in
# test/lib/cluster.sh) as long as each has its own BB_WORK: a second run on a BB_WORK that a
# live run is using stops at once ("0 passed, 1 failed").  Runs from different checkouts
# have different BB_WORKs by default; a second run from the same checkout (another
# PostgreSQL major, say) needs BB_WORK set, e.g. BB_WORK=tmp_check/pg18.
#
# The last line of output is always "N passed, M failed", counting pg_regress tests (per
# cluster), pgTAP assertions (per cluster), unit-test assertions, fuzz targets and lint tools
# (one each), scenarios (one each) and the sanitized run's own tests.
# Exit status is non-zero when anything failed or when no test ran at all.

set -uo pipefail        # no -e: a failing step is counted and the run goes on

# shellcheck source-path=SCRIPTDIR source=lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"
# shellcheck source-path=SCRIPTDIR source=lib/results.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/results.sh"
cd "$BB_ROOT" || exit 1
export LC_ALL=C          # stable sort order and untranslated tool output to parse

PORT_PRELOAD=${BB_PORT_PRELOAD:-55432}
PORT_PLAIN=${BB_PORT_PLAIN:-55433}
SCENARIO_TIMEOUT=${BB_SCENARIO_TIMEOUT:-600}
LOGS=$BB_WORK/logs

PASSED=0
FAILED=0
STEPS=()                 # which steps to run
CLUSTERS=()              # clusters this script created (stopped and removed on exit)
READY=()                 # ... of which these started

# ---- helpers --------------------------------------------------------------------------------

want() { [[ " ${STEPS[*]} " == *" $1 "* ]]; }

# Our clusters' server logs are kept in $LOGS; the clusters themselves are removed.
cleanup_clusters() {
	local c
	for c in "${CLUSTERS[@]}"; do
		cp "$(bb_logfile "$c")" "$LOGS/$c.server.log" 2>/dev/null || true
		if [[ ${BB_KEEP:-0} == 1 ]]; then
			continue
		fi
		bb_cluster_destroy "$c" >>"$LOGS/cleanup.log" 2>&1 || true
	done
	if [[ ${BB_KEEP:-0} != 1 ]]; then
		CLUSTERS=()
	fi
}
# shellcheck disable=SC2317   # called from the EXIT trap
release_work() {
	if [[ $(cat "$BB_WORK/.run.pid" 2>/dev/null) == "$$" ]]; then rm -f "$BB_WORK/.run.pid"; fi
}
# (fd 9 is the real stderr: a trap may fire inside a call whose output is redirected)
exec 9>&2
trap 'cleanup_clusters; release_work' EXIT
trap 'echo "run.sh: interrupted; removing the clusters" >&9; exit 130' INT TERM

# Stop clusters that a scenario left running (after a timeout, say); data stays for a look.
stop_leftover_clusters() {
	local d name
	for d in "$BB_WORK"/clusters/*/; do
		[[ -d $d ]] || continue
		name=$(basename "$d")
		if [[ " ${CLUSTERS[*]} " == *" $name "* ]]; then
			continue
		fi
		if bb_cluster_running "$name"; then
			echo "  (stopping cluster '$name' left running by the scenario)"
			bb_cluster_stop "$name" immediate >/dev/null 2>&1 || bb_cluster_kill9 "$name" >/dev/null 2>&1 || true
		fi
	done
}

# ---- which steps ----------------------------------------------------------------------------

if [[ -n ${BB_ONLY:-} ]]; then
	for s in ${BB_ONLY//,/ }; do
		case $s in
			regress|pgtap|unit|fuzz|lint|scenarios|asan|citus|package) STEPS+=("$s") ;;
			*) echo "run.sh: unknown step '$s' in BB_ONLY (regress, pgtap, unit, fuzz, lint, scenarios, asan, citus, package)" >&2
			   echo "0 passed, 1 failed"; exit 2 ;;
		esac
	done
else
	STEPS=(regress pgtap unit fuzz lint scenarios asan citus package)
fi

# Runs of this script that use the system's PostgreSQL tree hold a shared lock on it for
# their whole run; the package step swaps the brandbos files of that tree for the package's
# for a minute, so it waits for the exclusive lock (no other run using the tree), and takes
# the shared one back afterwards.  Runs against a private tree (PGBIN elsewhere) are apart.
SYSTEM_TREE_LOCK=/tmp/brandbos-system-pg-tree.lock
if [[ $PGBIN == /usr/lib/postgresql/* ]]; then
	exec 8>>"$SYSTEM_TREE_LOCK"
	chmod a+rw "$SYSTEM_TREE_LOCK" 2>/dev/null || true
	flock -s 8
fi

# One run per BB_WORK: $BB_WORK/.run.pid names the run using it (a stale one, from a run
# that was killed, is taken over).
mkdir -p "$BB_WORK" || { echo "0 passed, 1 failed"; exit 2; }
exec {WORK_LOCK}>>"$BB_WORK/.run.lock"
flock "$WORK_LOCK"
other=$(cat "$BB_WORK/.run.pid" 2>/dev/null) || other=""
if [[ $other =~ ^[0-9]+$ && $other != "$$" ]] && _bb_alive "$other" &&
		tr '\0' ' ' <"/proc/$other/cmdline" 2>/dev/null | grep -q 'run\.sh'; then
	echo "run.sh: another test run (pid $other) is using $BB_WORK; give this one its own BB_WORK=DIR" >&2
	echo "0 passed, 1 failed"
	exit 2
fi
echo "$$" >"$BB_WORK/.run.pid"
exec {WORK_LOCK}<&-
rm -rf "$LOGS"
mkdir -p "$LOGS"
START=$SECONDS
echo "brandbos tests: steps ${STEPS[*]}; logs in ${LOGS#"$BB_ROOT"/}"

if [[ ! -e $("$PGBIN/pg_config" --sharedir 2>/dev/null)/extension/brandbos.control ]]; then
	echo "warning: brandbos is not installed for $PGBIN; run 'make install' (make test does)" >&2
fi

# ---- the two shared clusters ----------------------------------------------------------------

if want regress || want pgtap; then
	section "clusters"
	for spec in "regress_preload $PORT_PRELOAD yes" "regress_plain $PORT_PLAIN no"; do
		read -r name port preload <<<"$spec"
		CLUSTERS+=("$name")
		if bb_cluster_create "$name" "$port" "$preload" && bb_cluster_start "$name"; then
			READY+=("$name")
			echo "  $name: port $(bb_port "$name"), shared_preload_libraries $( [[ $preload == yes ]] && echo brandbos || echo none)"
		else
			echo "  FAIL $name: could not be set up (its regress and pgtap steps are skipped)"
			fail 1
		fi
	done
fi

# ---- pg_regress -----------------------------------------------------------------------------

run_regress() {
	local c=$1 port sock log rc ok bad total
	port=$(bb_port "$c"); sock=$(bb_sockdir "$c")
	log=$LOGS/regress_$c.log
	section "pg_regress on $c"
	PGHOST=$sock PGPORT=$port PGUSER=postgres \
		make -C "$BB_ROOT" --no-print-directory installcheck PG_CONFIG="$PGBIN/pg_config" \
		PGHOST="$sock" PGPORT="$port" PGUSER=postgres >"$log" 2>&1 </dev/null
	rc=$?
	regress_result "$log" "$rc"
	ok=$R_OK; bad=$R_BAD
	if (( bad > 0 )) && [[ -f $BB_ROOT/regression.diffs ]]; then
		cp "$BB_ROOT/regression.diffs" "$LOGS/regress_$c.diffs"
		echo "  ---- regression.diffs (first 200 lines; all in ${LOGS#"$BB_ROOT"/}/regress_$c.diffs) ----"
		head -n 200 "$BB_ROOT/regression.diffs"
	fi
	total=$((ok + bad))
	echo "  $c: $ok of $total pg_regress tests passed"
	pass "$ok"; fail "$bad"
}

if want regress; then
	# shellcheck disable=SC2016   # $(REGRESS) is for make, not the shell
	regress_tests=$(make -s -C "$BB_ROOT" --no-print-directory -f Makefile -f - bb-print-regress \
		<<<'bb-print-regress: ; @echo "$(REGRESS)"' 2>/dev/null) || regress_tests=
	if [[ -z ${regress_tests// /} ]]; then
		section "pg_regress"
		echo "  REGRESS is empty in the Makefile: nothing to run"
	else
		for c in "${READY[@]}"; do run_regress "$c"; done
	fi
fi

# ---- pgTAP ----------------------------------------------------------------------------------

run_pgtap() {
	local c=$1 port sock f base log rc ok=0 bad=0
	port=$(bb_port "$c"); sock=$(bb_sockdir "$c")
	section "pgTAP on $c"
	if ! { bb_psql "$c" -c 'DROP DATABASE IF EXISTS tap' -c 'CREATE DATABASE tap' &&
			BB_DB=tap bb_psql "$c" -c 'CREATE EXTENSION IF NOT EXISTS pgtap'; } >"$LOGS/pgtap_${c}_setup.log" 2>&1; then
		echo "  FAIL could not create database tap with pgtap:"
		sed 's/^/    /' "$LOGS/pgtap_${c}_setup.log"
		fail 1
		return
	fi
	for f in "${PGTAP_FILES[@]}"; do
		base=$(basename "$f" .sql)
		log=$LOGS/pgtap_${c}_$base.log
		pg_prove --verbose --ext .sql --psql-bin "$PGBIN/psql" \
			-h "$sock" -p "$port" -U postgres -d tap "$f" >"$log" 2>&1 </dev/null
		rc=$?
		pg_prove_result "$log" "$rc" "$base"
		if (( T_FAIL == 0 )); then
			echo "  ok   $base ($T_OK tests)"
		else
			echo "  FAIL $base: $T_OK passed, $T_FAIL failed (log: ${log#"$BB_ROOT"/})"
			grep -E '^not ok|^#|ERROR|FATAL|psql:|Parse errors|planned|Bad plan|Wstat' "$log" \
				| head -n 80 | sed 's/^/    /'
		fi
		ok=$((ok + T_OK)); bad=$((bad + T_FAIL))
	done
	echo "  $c: $ok pgTAP assertions passed, $bad failed"
	pass "$ok"; fail "$bad"
}

if want pgtap; then
	mapfile -t PGTAP_FILES < <(find "$BB_ROOT/test/pgtap" -maxdepth 1 -name '*.sql' \
		-name "${BB_PGTAP_ONLY:-*}.sql" 2>/dev/null | sort)
	if (( ${#PGTAP_FILES[@]} == 0 )); then
		section "pgTAP"
		echo "  no test/pgtap/*.sql files"
	elif ! command -v pg_prove >/dev/null; then
		section "pgTAP"
		echo "  FAIL pg_prove not found (run test/deps.sh)"
		fail 1
	else
		for c in "${READY[@]}"; do run_pgtap "$c"; done
	fi
fi

# The shared clusters are not needed any more: free the memory and CPU for the scenarios.
cleanup_clusters

# ---- unit tests -----------------------------------------------------------------------------

if want unit && [[ -f $BB_ROOT/test/unit/Makefile ]]; then
	section "unit tests (test/unit)"
	log=$LOGS/unit.log
	make -C "$BB_ROOT/test/unit" --no-print-directory check >"$log" 2>&1 </dev/null
	rc=$?
	tap_count "$log"
	if (( rc != 0 && T_FAIL == 0 )); then
		T_FAIL=1
	fi
	if (( T_RUN == 0 && T_FAIL == 0 )); then
		T_OK=1                # no TAP output: the step itself counts as one test
	fi
	if (( T_FAIL == 0 )); then
		echo "  ok   $T_OK unit tests passed"
	else
		echo "  FAIL $T_OK passed, $T_FAIL failed (exit $rc); log ${log#"$BB_ROOT"/}:"
		grep -E '^not ok|^#|error|Error' "$log" | head -n 60 | sed 's/^/    /'
		tail -n 20 "$log" | sed 's/^/    | /'
	fi
	pass "$T_OK"; fail "$T_FAIL"
fi

# ---- fuzzing and static analysis (TAP scripts: one test per target / tool) -----------------

# run_tap_script TITLE LOG CMD...: run a TAP-printing script, show its ok/not ok lines
run_tap_script() {
	local title=$1 log=$2 rc
	shift 2
	section "$title"
	"$@" >"$log" 2>&1 </dev/null
	rc=$?
	tap_count "$log"
	grep -E '^(not )?ok [0-9]+' "$log" | sed 's/^/  /'
	if (( rc != 0 && T_FAIL == 0 )); then
		T_FAIL=1
		echo "  FAIL exited $rc; end of ${log#"$BB_ROOT"/}:"
		tail -n 20 "$log" | sed 's/^/    | /'
	elif (( T_FAIL > 0 )); then
		grep -E '^# ' "$log" | head -n 40 | sed 's/^/  /'
	fi
	pass "$T_OK"; fail "$T_FAIL"
}

if want fuzz; then
	run_tap_script "fuzzing (test/fuzz, ${BB_FUZZ_SECONDS:-60}s per target)" "$LOGS/fuzz.log" \
		"$BB_ROOT/test/fuzz/run.sh" "${BB_FUZZ_SECONDS:-60}"
fi

if want lint; then
	run_tap_script "static analysis (test/lint.sh)" "$LOGS/lint.log" "$BB_ROOT/test/lint.sh"
fi

# ---- scenarios ------------------------------------------------------------------------------

if want scenarios; then
	section "scenarios (test/scenarios, ${SCENARIO_TIMEOUT}s each)"
	# scenarios are NN_name.sh; other .sh files there are libraries they source
	mapfile -t SCENARIOS < <(find "$BB_ROOT/test/scenarios" -maxdepth 1 -name '[0-9]*.sh' \
		-name "${BB_SCENARIO_ONLY:-*}.sh" 2>/dev/null | sort)
	if (( ${#SCENARIOS[@]} == 0 )); then
		echo "  no test/scenarios/*.sh scripts"
	fi
	for s in "${SCENARIOS[@]}"; do
		name=$(basename "$s" .sh)
		if [[ ! -x $s ]]; then
			echo "  skip $name: not executable (chmod +x it)"
			continue
		fi
		log=$LOGS/$name.log
		t0=$SECONDS
		timeout -k 15 "$SCENARIO_TIMEOUT" "$s" >"$log" 2>&1 </dev/null
		rc=$?
		dt=$((SECONDS - t0))
		if (( rc == 0 )); then
			echo "  PASS $name (${dt}s)"
			pass 1
		else
			why="exit $rc"
			if (( rc == 124 || rc == 137 )); then why="timed out after ${SCENARIO_TIMEOUT}s"; fi
			echo "  FAIL $name ($why, ${dt}s); last 100 lines of ${log#"$BB_ROOT"/}:"
			tail -n 100 "$log" | sed 's/^/    | /'
			fail 1
		fi
		stop_leftover_clusters
	done
fi

# ---- sanitized server ----------------------------------------------------------------------

if want asan; then
	section "sanitized server (test/asan/run.sh: ASan + UBSan build, pg_regress and pgTAP)"
	log=$LOGS/asan.log
	t0=$SECONDS
	"$BB_ROOT/test/asan/run.sh" >"$log" 2>&1 </dev/null
	rc=$?
	last=$(tail -n 1 "$log")
	grep -E '^  (ok|FAIL|not ok)|^(not )?ok [0-9]+ - (sanitizer|the|no )|reports?' "$log" | head -n 40 | sed 's/^/  /'
	if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		a_ok=${BASH_REMATCH[1]}; a_bad=${BASH_REMATCH[2]}
	else
		a_ok=0; a_bad=0
	fi
	if (( rc != 0 && a_bad == 0 )); then a_bad=1; fi
	if (( a_ok + a_bad == 0 )); then a_bad=1; fi
	echo "  asan: $a_ok passed, $a_bad failed ($((SECONDS - t0))s; log ${log#"$BB_ROOT"/})"
	if (( a_bad > 0 )); then
		tail -n 60 "$log" | sed 's/^/    | /'
	fi
	pass "$a_ok"; fail "$a_bad"
fi

# ---- Citus ----------------------------------------------------------------------------------

if want citus; then
	section "Citus (test/citus: build once, then each scenario on a coordinator and two workers)"
	log=$LOGS/citus.log
	t0=$SECONDS
	mkdir -p "$LOGS"
	BB_WORK=$BB_WORK/citus PGBIN=$PGBIN "$BB_ROOT/test/citus/run.sh" >"$log" 2>&1
	rc=$?
	if [[ $(tail -n 1 "$log") =~ ^citus:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
		c_ok=${BASH_REMATCH[1]}; c_bad=${BASH_REMATCH[2]}
	else
		c_ok=0; c_bad=0
	fi
	if (( rc != 0 && c_bad == 0 )); then c_bad=1; fi
	if (( c_ok + c_bad == 0 )); then c_bad=1; fi
	grep -E '^citus ' "$log" | sed 's/^/  /'
	echo "  citus: $c_ok passed, $c_bad failed ($((SECONDS - t0))s; log ${log#"$BB_ROOT"/})"
	if (( rc != 0 )); then
		tail -n 40 "$log" | sed 's/^/    | /'
	fi
	pass "$c_ok"; fail "$c_bad"
fi

# ---- packaging ------------------------------------------------------------------------------

if want package; then
	run_tap_script "PGXN META.json (test/package/meta_check.py)" "$LOGS/meta.log" \
		python3 "$BB_ROOT/test/package/meta_check.py"
	if [[ $EUID -ne 0 ]]; then
		section "Debian package (test/package/deb_test.sh)"
		echo "  FAIL the package test installs with dpkg and needs root (run make test as root, or BB_ONLY without package)"
		fail 1
	elif [[ $PGBIN != /usr/lib/postgresql/* ]]; then
		section "Debian package (test/package/deb_test.sh)"
		echo "  not run: PGBIN=$PGBIN is a private tree; the package serves the system's PostgreSQL (make test-deb)"
	else
		flock -u 8
		if flock -x -w 900 8; then
			run_tap_script "Debian package (test/package/deb_test.sh: build, dpkg -i, smoke test, purge)" \
				"$LOGS/deb.log" "$BB_ROOT/test/package/deb_test.sh"
			flock -s 8
		else
			section "Debian package (test/package/deb_test.sh)"
			echo "  FAIL another test run used the system's PostgreSQL tree for 15 minutes; the package was not swapped in"
			fail 1
		fi
	fi
fi

# ---- summary --------------------------------------------------------------------------------

section "summary ($((SECONDS - START))s)"
if (( PASSED + FAILED == 0 )); then
	echo "no test ran"
fi
echo "$PASSED passed, $FAILED failed"
if (( FAILED > 0 || PASSED == 0 )); then
	exit 1
fi
exit 0
