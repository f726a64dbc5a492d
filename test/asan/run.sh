#!/usr/bin/env bash
# test/asan/run.sh — the pgTAP suite and the pg_regress tests against a server that runs
# brandbos built with AddressSanitizer + UndefinedBehaviorSanitizer (gcc's runtimes).
# Any sanitizer report counts as a failure.  Run it from anywhere once the build
# dependencies exist (`make deps`); `make test-asan` calls it.  Nothing under /usr is
# written: the server, its extension files and pgTAP come from a private copy.
#
# Steps, in order:
#   tree     copy the PostgreSQL installation (bindir, pkglibdir, sharedir of pg_config)
#            to the same paths below $W/pg.  PostgreSQL finds its lib and share
#            directories relative to the running binary, so a server started from the
#            copy loads extensions from the copy only; this is checked.
#   build    copy Makefile, brandbos.control, sql/, src/ to $W/build (the repo's src/*.o
#            stay untouched), build there with -fsanitize=address,undefined and no
#            bitcode, then put brandbos.so, the control file and the SQL scripts into
#            the private tree.
#   clusters two throwaway clusters, one after the other, made with test/lib/cluster.sh:
#            asan_preload (shared_preload_libraries = 'brandbos', so the background
#            workers run sanitized too) and asan_plain (brandbos loaded by CREATE
#            EXTENSION).  Only the server gets LD_PRELOAD and ASAN_OPTIONS; psql,
#            pg_prove and pg_regress run normally.  On each cluster: proof that the
#            sanitizer is live (a backend maps libasan and the private, instrumented
#            brandbos.so), pg_regress (REGRESS and REGRESS_OPTS of the Makefile), pg_prove
#            on every test/pgtap/*.sql, a fast shutdown.
#   reports  the sanitizers write to the server's stderr, i.e. the server log.  After each
#            step the new part of the log is scanned: a sanitizer report ("runtime
#            error:", "==PID==ERROR: AddressSanitizer ...") or a crash (a process ended by
#            a signal or an unexpected exit code, a crash restart) fails that step, and
#            the report is printed (its first 60 lines, then a list of the others).  A
#            background worker's report is charged to the step that was running.
#
# Notes
#   * The postgres binary itself is not instrumented: palloc'd memory lives in big
#     malloc'd blocks, so an overrun inside a memory context is seen only when it leaves
#     the block.  Stack, global and malloc'd objects (libsodium's, our own) and all UB
#     checks in brandbos code are covered.
#   * PostgreSQL (and so PGXS) compiles with -fwrapv, which makes signed overflow defined
#     and makes gcc drop the signed-integer-overflow check.  brandbos does not rely on
#     wrapping, so this build adds -fno-wrapv to get that check (BB_ASAN_WRAPV=1: don't).
#   * UBSan recovers (reports and goes on), so one run lists every distinct UB site;
#     ASan ends the process at the first error (the postmaster then restarts the
#     cluster).  Leak detection is off: backends free their memory by exiting.
#   * A small preloaded helper library ($W/lib/bb_asan_helper.so, built here) is needed
#     for two reasons:
#     - gcc's libasan, preloaded into postgres, hangs at start-up: libgpg-error's
#       constructor (gnutls, ldap) calls bindtextdomain before ASan is initialised;
#       ASan initialises inside glibc's gettext lock and calls dlerror() after looking up
#       swift_demangle; dlerror translates its message, fails to take the same lock,
#       releases it anyway and leaves it corrupt (cf. google/sanitizers#1270).  The
#       helper defines swift_demangle (returning NULL: "not a Swift name").
#     - gcc's UBSan runtime (libubsan, separate from libasan) initialises at its first
#       report and reads its options from /proc/self/environ, which a backend has
#       overwritten with its process title by then, so UBSAN_OPTIONS is never seen.  The
#       helper supplies them through the __ubsan_default_options hook instead.
#
# Environment
#   BB_WORK               scratch root (default <repo>/tmp_check); everything goes to
#                         $BB_WORK/asan: pg/ (private tree), build/, lib/, clusters/,
#                         logs/ (build log, pg_prove logs, server logs), regress/
#   BB_ASAN_PORT_PRELOAD  first port tried for asan_preload (55570; a busy one is skipped)
#   BB_ASAN_PORT_PLAIN    first port tried for asan_plain (55571)
#   BB_ASAN_TIMEOUT       seconds per pg_prove / pg_regress run (300)
#   BB_KEEP=1             keep the clusters (stopped) instead of removing them
#   BB_ASAN_WRAPV=1       build with PostgreSQL's -fwrapv (no signed-overflow check)
#   BB_ASAN_CFLAGS        extra compiler flags for the sanitized build
#   BB_ASAN_SRC           take Makefile, brandbos.control, sql/ and src/ from this directory
#                         instead of the repository (e.g. a copy with a planted bug, to
#                         see that a report fails the run)
#   PG_CONFIG             pg_config of the PostgreSQL to copy and build against
#                         (default /usr/lib/postgresql/15/bin/pg_config)
#
# The last line of output is always "N passed, M failed", counting the set-up checks,
# pg_regress tests and pgTAP assertions per cluster, and one failure per sanitizer
# report or crash.  Exit status is non-zero when anything failed or nothing passed.

set -uo pipefail        # no -e: a failing step is counted and the run goes on
export LC_ALL=C

# ---- settings ---------------------------------------------------------------------------

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BASE_WORK=${BB_WORK:-$ROOT/tmp_check}
if [[ $BASE_WORK != /* ]]; then BASE_WORK=$PWD/$BASE_WORK; fi
W=$BASE_WORK/asan
SRC=${BB_ASAN_SRC:-$ROOT}
SYS_PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PORT_PRELOAD=${BB_ASAN_PORT_PRELOAD:-55570}
PORT_PLAIN=${BB_ASAN_PORT_PLAIN:-55571}
TIMEOUT=${BB_ASAN_TIMEOUT:-300}
TREE=$W/pg
BUILD=$W/build
LOGS=$W/logs
HELPER=$W/lib/bb_asan_helper.so

SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1"
if [[ ${BB_ASAN_WRAPV:-0} != 1 ]]; then SAN_FLAGS+=" -fno-wrapv"; fi
SAN_FLAGS+="${BB_ASAN_CFLAGS:+ $BB_ASAN_CFLAGS}"
# for the server only; UBSan's options are compiled into the helper (see Notes)
ASAN_OPTS="detect_leaks=0:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1"
UBSAN_OPTS="print_stacktrace=1:halt_on_error=0"

# what marks a sanitizer report, and a crash, in the server log
REPORT_RE='runtime error: |^==[0-9]+==ERROR: |^==[0-9]+==.*CHECK failed'
CRASH_RE='terminated by signal|exited with exit code ([2-9]|[1-9][0-9]+)|terminating any other active server processes'

PASSED=0
FAILED=0
CLUSTERS=()              # clusters made here (removed on exit unless BB_KEEP=1)
SCANNED=0                # bytes of the current cluster's server log already scanned

# section, pass, fail, count, pg_prove_result, regress_result
# shellcheck source-path=SCRIPTDIR source=../lib/results.sh
. "$ROOT/test/lib/results.sh"
ok() { echo "  ok   $*"; pass 1; }
notok() { echo "  FAIL $*"; fail 1; }
rel() { echo "${1#"$ROOT"/}"; }

finish() {
	section "summary ($((SECONDS - START))s)"
	if (( PASSED + FAILED == 0 )); then echo "no test ran"; fi
	echo "$PASSED passed, $FAILED failed"
	if (( FAILED > 0 || PASSED == 0 )); then exit 1; fi
	exit 0
}

# Set-up failed: stop here, still with the summary line.
abort() { notok "$*"; finish; }

# ---- private PostgreSQL tree ------------------------------------------------------------

# Copy bindir, pkglibdir and sharedir of $SYS_PG_CONFIG to the same paths below $TREE;
# sets PGBIN, PKGLIB, EXTDIR.
make_tree() {
	local d bindir pkglibdir sharedir got
	bindir=$("$SYS_PG_CONFIG" --bindir) && pkglibdir=$("$SYS_PG_CONFIG" --pkglibdir) &&
		sharedir=$("$SYS_PG_CONFIG" --sharedir) || return 1
	rm -rf "$TREE" || return 1
	for d in "$bindir" "$pkglibdir" "$sharedir"; do
		mkdir -p "$TREE$(dirname "$d")" && cp -a "$d" "$TREE$d" || return 1
	done
	PGBIN=$TREE$bindir
	PKGLIB=$TREE$pkglibdir
	EXTDIR=$TREE$sharedir/extension
	# a brandbos installed in the system must not be picked up by mistake
	rm -rf "$PKGLIB/brandbos.so" "$PKGLIB/bitcode/brandbos" "$PKGLIB/bitcode/brandbos.index.bc" \
		"$EXTDIR"/brandbos.control "$EXTDIR"/brandbos--*.sql
	got=$("$PGBIN/pg_config" --pkglibdir --sharedir | tr '\n' ' ')
	if [[ $got != "$PKGLIB $TREE$sharedir " ]]; then
		echo "  the copied server would not use the copy: its pg_config says $got"
		return 1
	fi
}

# The preloaded helper library (see Notes in the header).
make_helper() {
	local c=$W/lib/bb_asan_helper.c
	mkdir -p "$W/lib" || return 1
	cat >"$c" <<-EOF || return 1
		/* generated by test/asan/run.sh */
		#include <stddef.h>
		char *swift_demangle(const char *, size_t, char *, size_t *, unsigned);
		const char *__ubsan_default_options(void);

		char *
		swift_demangle(const char *name, size_t len, char *out, size_t *out_len, unsigned flags)
		{
			return NULL;
		}

		const char *
		__ubsan_default_options(void)
		{
			return "$UBSAN_OPTS";
		}
	EOF
	gcc -shared -fPIC -O2 -o "$HELPER" "$c"
}

# ---- sanitized build --------------------------------------------------------------------

build_asan() {
	local log=$LOGS/build.log
	rm -rf "$BUILD" && mkdir -p "$BUILD" || return 1
	tar -C "$SRC" --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
		-cf - Makefile brandbos.control sql src | tar -C "$BUILD" -xf - || return 1
	# COPT is PGXS's hook: added to the compile and the link lines
	if ! make -C "$BUILD" --no-print-directory -j"$(nproc 2>/dev/null || echo 2)" \
			PG_CONFIG="$SYS_PG_CONFIG" with_llvm=no COPT="$SAN_FLAGS" all >"$log" 2>&1 </dev/null; then
		tail -n 40 "$log" | sed 's/^/    /'
		return 1
	fi
	cp "$BUILD/brandbos.so" "$PKGLIB/" && cp "$BUILD/brandbos.control" "$BUILD"/sql/brandbos--*.sql "$EXTDIR/"
}

check_instrumented() {
	local needed syms      # whole outputs: `nm | grep -q` fails by SIGPIPE under pipefail
	needed=$(readelf -d "$PKGLIB/brandbos.so" 2>/dev/null)
	syms=$(nm -D "$PKGLIB/brandbos.so" 2>/dev/null)
	if grep -q 'NEEDED.*libasan' <<<"$needed" && grep -q '__asan_report_' <<<"$syms" &&
			grep -q '__ubsan_handle_' <<<"$syms"; then
		ok "brandbos.so needs libasan; calls $(grep -c '__asan_report_' <<<"$syms") __asan_report_* and $(grep -c '__ubsan_handle_' <<<"$syms") __ubsan_handle_* functions"
	else
		notok "brandbos.so in the private tree is not instrumented"
	fi
}

# ---- servers and their logs -------------------------------------------------------------

start_sanitized() {
	local c=$1 log rc
	log=$(bb_logfile "$c")
	bb_run_as_pg env LD_PRELOAD="$LIBASAN:$HELPER" ASAN_OPTIONS="$ASAN_OPTS" \
		"$PGBIN/pg_ctl" -D "$(bb_datadir "$c")" -l "$log" -w -t 120 -s start >/dev/null 2>&1
	rc=$?
	if (( rc != 0 )); then
		echo "    ---- last lines of $(rel "$log") ----"
		tail -n 30 "$log" | sed 's/^/    /'
	fi
	return "$rc"
}

# Scan the part of cluster $1's server log written since the last scan.  Sets FOUND (the
# number of sanitizer reports, or 1 for a crash without a report, or 0) and SCAN_TEXT
# (what to print about them, indented).
scan_log() {
	local c=$1 log win size reports crashes first
	log=$(bb_logfile "$c")
	win=$LOGS/window.txt
	size=$(stat -c %s "$log" 2>/dev/null) || size=0
	tail -c +"$((SCANNED + 1))" "$log" 2>/dev/null | head -c "$((size - SCANNED))" >"$win"
	SCANNED=$size
	reports=$(count "$REPORT_RE" "$win")
	crashes=$(count "$CRASH_RE" "$win")
	FOUND=$reports
	if (( reports == 0 && crashes > 0 )); then FOUND=1; fi
	SCAN_TEXT=
	(( FOUND > 0 )) || return 0
	first=$(grep -nE "$REPORT_RE|$CRASH_RE" "$win" | head -n 1 | cut -d: -f1)
	SCAN_TEXT=$(
		echo "    ---- server log: $reports sanitizer report(s), $crashes crash line(s); from the first: ----"
		tail -n +"$first" "$win" | head -n 60 | sed 's/^/    | /'
		if (( reports > 1 )); then
			echo "    ---- all report and crash lines ----"
			grep -E "$REPORT_RE|$CRASH_RE" "$win" | head -n 30 | sed 's/^/    | /'
		fi
	)
}

# Scan, and count and print what was found as failures of STEP ($2).
scan_step() {
	scan_log "$1"
	if (( FOUND > 0 )); then
		echo "  FAIL $1: $FOUND sanitizer report(s) or crash during $2"
		echo "$SCAN_TEXT"
		fail "$FOUND"
	fi
}

# Evidence that the sanitizer is live: a backend that has loaded brandbos maps libasan
# and the instrumented brandbos.so of the private tree (not the system one).
check_live() {
	local c=$1 maps so=$PKGLIB/brandbos.so
	maps=$(bb_psql "$c" -At -c "LOAD 'brandbos'" -c "SELECT pg_read_file('/proc/self/maps')" 2>&1)
	if grep -q '/libasan\.so' <<<"$maps"; then
		ok "$c: a backend maps $(grep -oE '/[^ ]*/libasan\.so[^ ]*' <<<"$maps" | head -n 1)"
	else
		notok "$c: no libasan in a backend's /proc/self/maps"
		head -n 5 <<<"$maps" | sed 's/^/    /'
	fi
	if grep -qF " $so" <<<"$maps"; then
		ok "$c: a backend loaded $(rel "$so")"
	else
		notok "$c: a backend did not load $so; it maps: $(grep -o '[^ ]*brandbos[^ ]*' <<<"$maps" | sort -u | tr '\n' ' ')"
	fi
}

# ---- pg_regress -------------------------------------------------------------------------

run_regress() {
	local c=$1 out=$W/regress/$1 log rc ok bad
	log=$LOGS/regress_$c.log
	rm -rf "$out" && mkdir -p "$out"
	# shellcheck disable=SC2086   # REGRESS_OPTS and REGRESS are word lists
	timeout -k 10 "$TIMEOUT" "$PG_REGRESS" --inputdir="$ROOT" --outputdir="$out" --bindir="$PGBIN" \
		--host="$(bb_sockdir "$c")" --port="$(bb_port "$c")" --user=postgres \
		--dbname=contrib_regression $REGRESS_OPTS $REGRESS >"$log" 2>&1 </dev/null
	rc=$?
	regress_result "$log" "$rc"
	ok=$R_OK; bad=$R_BAD
	if (( bad > 0 )) && [[ -f $out/regression.diffs ]]; then
		echo "  ---- $(rel "$out")/regression.diffs (first 100 lines) ----"
		head -n 100 "$out/regression.diffs"
	fi
	pass "$ok"; fail "$bad"
	scan_step "$c" "pg_regress"
}

# ---- pgTAP ------------------------------------------------------------------------------

run_pgtap() {
	local c=$1 f base log rc sok=0 sbad=0 sreports=0
	if ! { bb_psql "$c" -c 'DROP DATABASE IF EXISTS tap' -c 'CREATE DATABASE tap' &&
			BB_DB=tap bb_psql "$c" -c 'CREATE EXTENSION IF NOT EXISTS pgtap'; } >"$LOGS/pgtap_${c}_setup.log" 2>&1; then
		notok "$c: could not create database tap with pgtap:"
		sed 's/^/    /' "$LOGS/pgtap_${c}_setup.log"
		return
	fi
	for f in "${PGTAP_FILES[@]}"; do
		base=$(basename "$f" .sql)
		log=$LOGS/pgtap_${c}_$base.log
		timeout -k 10 "$TIMEOUT" pg_prove --verbose --ext .sql --psql-bin "$PGBIN/psql" \
			-h "$(bb_sockdir "$c")" -p "$(bb_port "$c")" -U postgres -d tap "$f" >"$log" 2>&1 </dev/null
		rc=$?
		pg_prove_result "$log" "$rc" "$base"
		scan_log "$c"
		if (( T_FAIL == 0 && FOUND == 0 )); then
			echo "  ok   $base ($T_OK tests)"
		else
			echo "  FAIL $base: $T_OK passed, $T_FAIL failed, $FOUND sanitizer report(s) or crash (log: $(rel "$log"))"
			if (( rc == 124 || rc == 137 )); then echo "    (timed out after ${TIMEOUT}s)"; fi
			grep -E '^not ok|^#|ERROR|FATAL|psql:|Parse errors|planned|Bad plan|Wstat' "$log" \
				| head -n 40 | sed 's/^/    /'
			if (( FOUND > 0 )); then echo "$SCAN_TEXT"; fi
		fi
		sok=$((sok + T_OK)); sbad=$((sbad + T_FAIL)); sreports=$((sreports + FOUND))
	done
	echo "  $c: $sok pgTAP assertions passed, $sbad failed; $sreports sanitizer report(s) or crash(es)"
	pass "$sok"; fail "$((sbad + sreports))"
}

run_cluster() {
	local c=$1 port=$2 preload=$3
	section "cluster $c (shared_preload_libraries $([[ $preload == yes ]] && echo brandbos || echo none))"
	CLUSTERS+=("$c")
	SCANNED=0
	if ! bb_cluster_create "$c" "$port" "$preload" >"$LOGS/${c}_create.log" 2>&1; then
		notok "$c: could not be created:"
		tail -n 20 "$LOGS/${c}_create.log" | sed 's/^/    /'
		return
	fi
	echo "  $c: port $(bb_port "$c")"
	# JIT would load llvmjit.so (and could inline a system brandbos' bitcode): keep it off
	echo "jit = off" >>"$(bb_datadir "$c")/postgresql.conf"
	if ! start_sanitized "$c"; then
		notok "$c: the sanitized server did not start"
		return
	fi
	ok "$c: sanitized server started"
	check_live "$c"
	scan_step "$c" "start-up"

	if [[ -n ${REGRESS// /} ]]; then run_regress "$c"; fi
	run_pgtap "$c"

	# fast shutdown: backends and workers exit through their normal paths
	if ! bb_cluster_stop "$c" fast >>"$LOGS/${c}_stop.log" 2>&1; then
		notok "$c: did not stop (fast); killed"
		bb_cluster_kill9 "$c" >>"$LOGS/${c}_stop.log" 2>&1
	fi
	scan_step "$c" "the shutdown"
	if (( $(count "$REPORT_RE|$CRASH_RE" "$(bb_logfile "$c")") == 0 )); then
		ok "$c: no sanitizer report and no crash in the whole server log"
	fi
	cp "$(bb_logfile "$c")" "$LOGS/$c.server.log" 2>/dev/null
	echo "  $c: server log in $(rel "$LOGS/$c.server.log")"
}

cleanup() {
	local c
	for c in "${CLUSTERS[@]}"; do
		cp "$(bb_logfile "$c")" "$LOGS/$c.server.log" 2>/dev/null
		if [[ ${BB_KEEP:-0} == 1 ]]; then
			bb_cluster_stop "$c" fast >/dev/null 2>&1
		else
			bb_cluster_destroy "$c" >>"$LOGS/cleanup.log" 2>&1
		fi
	done
	CLUSTERS=()
}
exec 9>&2
trap cleanup EXIT
trap 'echo "asan/run.sh: interrupted; removing the clusters" >&9; exit 130' INT TERM

# ---- main -------------------------------------------------------------------------------

START=$SECONDS
if ! { mkdir -p "$W" && rm -rf "$LOGS" "$W/regress" && mkdir -p "$LOGS"; }; then
	echo "asan/run.sh: cannot create $W"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "brandbos under ASan+UBSan: sources $(rel "$SRC")/, work tree $(rel "$W")"

section "set-up"
[[ -x $SYS_PG_CONFIG ]] || abort "$SYS_PG_CONFIG not found (run test/deps.sh)"
command -v gcc >/dev/null || abort "gcc not found (run test/deps.sh)"
command -v pg_prove >/dev/null || abort "pg_prove not found (run test/deps.sh)"
LIBASAN=$(readlink -f "$(gcc -print-file-name=libasan.so)")
[[ $LIBASAN == /* && -r $LIBASAN ]] || abort "gcc has no libasan.so (apt-get install libasan8)"

make_tree || abort "could not copy the PostgreSQL installation to $TREE"
ok "private PostgreSQL tree: $(rel "$PGBIN")"
make_helper || abort "could not build $HELPER"
build_asan || abort "the sanitized build failed (log $(rel "$LOGS/build.log"))"
ok "brandbos.so built with $SAN_FLAGS (log $(rel "$LOGS/build.log"))"
check_instrumented

# cluster.sh: clusters under $W/clusters, binaries from the private tree
export BB_WORK=$W PGBIN
# shellcheck source-path=SCRIPTDIR source=../lib/cluster.sh
. "$ROOT/test/lib/cluster.sh"

PG_REGRESS=$(dirname "$("$PGBIN/pg_config" --pgxs)")/../../src/test/regress/pg_regress
make_var() {    # the value of a variable of the Makefile
	# shellcheck disable=SC2016   # $(...) is for make, not the shell
	make -s -C "$ROOT" --no-print-directory -f Makefile -f - bb-print-var PG_CONFIG="$SYS_PG_CONFIG" \
		<<<"bb-print-var: ; @echo \"\$($1)\"" 2>/dev/null
}
REGRESS=$(make_var REGRESS) || REGRESS=
REGRESS_OPTS=$(make_var REGRESS_OPTS) || REGRESS_OPTS=
mapfile -t PGTAP_FILES < <(find "$ROOT/test/pgtap" -maxdepth 1 -name '*.sql' 2>/dev/null | sort)
if (( ${#PGTAP_FILES[@]} == 0 )); then notok "no test/pgtap/*.sql files"; fi
echo "  pgTAP files: ${#PGTAP_FILES[@]}; pg_regress tests: ${REGRESS:-none}"

run_cluster asan_preload "$PORT_PRELOAD" yes
run_cluster asan_plain "$PORT_PLAIN" no
cleanup

finish
