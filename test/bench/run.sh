#!/usr/bin/env bash
# brandbos benchmarks: SPEC section 7, measured as ratios in one throwaway cluster.
#
#   test/bench/run.sh                      (or: make bench, which builds and installs first)
#
# Knobs (environment):
#   BENCH_SECONDS  duration of each pgbench run            (default 15)
#   BENCH_ROWS     rows for the bulk INSERT and read rows  (default 100000)
#   BENCH_ONLY     space-separated row groups to run       (default: all, see BENCH_GROUPS)
#   BENCH_KEEP=1   leave the cluster running afterwards    (default: destroy it)
#   BENCH_PORT     first port tried for the cluster        (default 55700)
#
# Each row group is one function group_<name> that measures, then calls report_row (a row
# with a target) or report_info (a peer baseline, no target).  To add a pillar: write its
# <pillar>_setup.sql and workload files beside this script, add group_<name> functions below
# and list them in BENCH_GROUPS.
#
# Exit status: 0 when every measurement ran, even if a target was missed (benchmarks report,
# they do not fail CI); non-zero only when something errored.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BB_ROOT=${BB_ROOT:-$(cd "$BENCH_DIR/../.." && pwd)}
export BB_ROOT
# shellcheck source-path=SCRIPTDIR/../lib source=cluster.sh
. "$BB_ROOT/test/lib/cluster.sh"

BENCH_SECONDS=${BENCH_SECONDS:-15}
BENCH_ROWS=${BENCH_ROWS:-100000}
BENCH_ONLY=${BENCH_ONLY:-}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_PORT=${BENCH_PORT:-55700}
BENCH_CLUSTER=bench
BENCH_CLIENTS=2			# SPEC 7: 1-client runs on 2-core VMs measure wake-up latency
INSERT_RUNS=3			# pgbench runs per side, interleaved; the median counts
BULK_RUNS=3				# bulk INSERT repetitions per side; median counts
READ_RUNS=5				# read repetitions per side; median counts
SEAL_RUNS=3				# seal_audit() of BENCH_ROWS fresh rows, repeated; median counts
RESULTS_DIR=$BENCH_DIR/results

BENCH_GROUPS=(tce_insert tce_bulk tce_read audit_insert audit_scaling audit_seal tenant_seq tenant_index deliberation)

for knob in BENCH_SECONDS BENCH_ROWS BENCH_PORT; do
	if ! [[ ${!knob} =~ ^[1-9][0-9]*$ ]]; then
		echo "bench: $knob must be a positive integer, got '${!knob}'" >&2
		exit 2
	fi
done
if (( BENCH_ROWS < 100 )); then
	echo "bench: BENCH_ROWS must be at least 100" >&2
	exit 2
fi
PGP_ROWS=$(( BENCH_ROWS / 10 ))	# pgp_sym_encrypt is slow: measured on a tenth, as a rate

# ---------------------------------------------------------------------------------------------
# output helpers
# ---------------------------------------------------------------------------------------------

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# ratio A B: A/B with two decimals ("n/a" when B is zero)
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# median X...: middle value (mean of the two middle ones for an even count)
median() {
	if (( $# == 0 )); then
		echo "bench: no measurement to take the median of" >&2
		return 1
	fi
	printf '%s\n' "$@" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}


# fmt_num X [DECIMALS]: round for display
fmt_num() { awk -v x="$1" -v d="${2:-0}" 'BEGIN { printf ("%." d "f\n"), x }'; }

# rate ROWS MS: rows per second, as "123k rows/s"
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0fk rows/s\n", n / ms }'; }

RESULT_ROWS=()

# report_row BENCHMARK BASELINE BRANDBOS RATIO OP TARGET
#   OP is ">=" (higher is better) or "<="; status compares the ratio as printed.
report_row() {
	local status
	status=$(awk -v r="$4" -v op="$5" -v t="$6" 'BEGIN {
		if (r == "n/a") { print "MISS"; exit }
		ok = (op == ">=") ? (r + 0 >= t + 0) : (r + 0 <= t + 0)
		print (ok ? "PASS" : "MISS") }')
	RESULT_ROWS+=("| $1 | $2 | $3 | ${4}x | $5 ${6}x | $status |")
	say "result: $1: ${4}x (target $5 ${6}x) $status"
}

# report_info BENCHMARK BASELINE MEASURED RATIO: a peer's figure, reported without a target
report_info() {
	RESULT_ROWS+=("| $1 | $2 | $3 | ${4}x | — | info |")
	say "info: $1: ${4}x"
}

# ---------------------------------------------------------------------------------------------
# cluster and SQL helpers
# ---------------------------------------------------------------------------------------------

CLUSTER_UP=0
FAILED=1

cleanup() {
	local rc=$?
	if (( FAILED )) && (( CLUSTER_UP )); then
		echo "bench: failed; last lines of the server log ($(bb_logfile "$BENCH_CLUSTER")):" >&2
		tail -n 30 "$(bb_logfile "$BENCH_CLUSTER")" >&2 || true
	fi
	if (( CLUSTER_UP )); then
		if [[ $BENCH_KEEP == 1 ]]; then
			say "cluster '$BENCH_CLUSTER' left running: $(bb_conninfo "$BENCH_CLUSTER")"
		else
			bb_cluster_stop "$BENCH_CLUSTER" >/dev/null 2>&1 || true
			bb_cluster_destroy "$BENCH_CLUSTER" >/dev/null 2>&1 || true
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT

# Settings: big enough that the data set stays in memory and no checkpoint lands inside a
# run, otherwise stock.  synchronous_commit stays on: every pgbench INSERT waits for its
# WAL flush, as an application's would.  JIT is off so that it cannot switch on for one
# side of a comparison and not the other.
BENCH_SETTINGS=(
	"shared_buffers = '256MB'"
	"max_wal_size = '4GB'"
	"checkpoint_timeout = '30min'"
	"synchronous_commit = on"
	"jit = off"
	"brandbos.audit_database = 'bench'"
	"brandbos.audit_seal_interval = '1s'"
)

cluster_up() {
	say "creating cluster '$BENCH_CLUSTER' (preload yes)"
	bb_cluster_create "$BENCH_CLUSTER" "$BENCH_PORT" yes
	bb_cluster_start "$BENCH_CLUSTER"
	CLUSTER_UP=1
	say "cluster '$BENCH_CLUSTER' listens on port $(bb_port "$BENCH_CLUSTER")"
	local s
	for s in "${BENCH_SETTINGS[@]}"; do
		BB_DB=postgres bb_psql "$BENCH_CLUSTER" -c "ALTER SYSTEM SET $s"
	done
	bb_cluster_stop "$BENCH_CLUSTER"
	bb_cluster_start "$BENCH_CLUSTER"
	BB_DB=postgres bb_psql "$BENCH_CLUSTER" -c 'CREATE DATABASE bench'
	export BB_DB=bench
	if [[ $(bb_psql_value "$BENCH_CLUSTER" "SELECT current_setting('shared_buffers')") != 256MB ]]; then
		echo "bench: cluster settings did not take effect" >&2
		return 1
	fi
}

SETUP_DONE=" "

# require_setup NAME: run NAME_setup.sql once per bench run
require_setup() {
	[[ $SETUP_DONE == *" $1 "* ]] && return 0
	say "setting up '$1' ($1_setup.sql)"
	bb_psql "$BENCH_CLUSTER" -f "$BENCH_DIR/$1_setup.sql"
	SETUP_DONE+="$1 "
}

# sql_exec SQL: run statements in the bench database
sql_exec() { bb_psql "$BENCH_CLUSTER" -c "$1"; }

# pgbench_tps SCRIPT TABLE [SECONDS [CLIENTS]]: one pgbench run against TABLE; prints tps
pgbench_tps() {
	local out tps clients=${4:-$BENCH_CLIENTS}
	if ! out=$(bb_run_as_pg "$PGBIN/pgbench" -n -c "$clients" -j "$clients" \
			-T "${3:-$BENCH_SECONDS}" -f "$BENCH_DIR/$1" -D tbl="$2" \
			"$(bb_conninfo "$BENCH_CLUSTER")" 2>&1); then
		printf '%s\n' "$out" >&2
		echo "bench: pgbench failed on $2" >&2
		return 1
	fi
	tps=$(printf '%s\n' "$out" | awk '/^tps = / { print $3; exit }')
	if [[ -z $tps ]] || printf '%s\n' "$out" | grep -Eq '^number of failed transactions: [1-9]'; then
		printf '%s\n' "$out" >&2
		echo "bench: pgbench reported no tps or failed transactions on $2" >&2
		return 1
	fi
	printf '%s\n' "$tps"
}

# Timed statements inside one psql session.  timed_begin / timed_end LABEL emit psql text;
# the interval is taken on the server with clock_timestamp(), and since every statement
# commits on its own, it includes the timed statement's commit.  run_timed runs a script
# built from them and prints "LABEL MS" lines.
timed_begin() { echo 'SELECT extract(epoch FROM clock_timestamp()) AS bb_t0 \gset'; }
timed_end() {
	echo "SELECT '$1', round(((extract(epoch FROM clock_timestamp()) - :bb_t0) * 1000)::numeric, 3);"
}
run_timed() { bb_psql "$BENCH_CLUSTER" -At -F ' ' -f -; }

# median_of LABEL < "LABEL MS" lines: the median MS of LABEL
median_of() {
	local values
	values=$(awk -v l="$1" '$1 == l { print $2 }')
	if [[ -z $values ]]; then
		echo "bench: no timing for '$1'" >&2
		return 1
	fi
	# shellcheck disable=SC2086  # one number per word
	median $values
}

# ---------------------------------------------------------------------------------------------
# Row groups: transparent column encryption (SPEC section 2)
# ---------------------------------------------------------------------------------------------

# A. single-row INSERT of a 200-character token, pgbench with 2 clients
group_tce_insert() {
	require_setup tce
	local run side tps plain=() tce=() pgp=()
	# untimed warm-up: a fresh cluster first has to create its WAL segments (later runs
	# recycle them after the CHECKPOINT) and the CPUs to wake up
	local warm=$(( BENCH_SECONDS < 5 ? BENCH_SECONDS : 5 ))
	sql_exec "TRUNCATE bench_plain, bench_tce RESTART IDENTITY; CHECKPOINT;"
	tps=$(pgbench_tps tce_insert.sql bench_plain "$warm")
	tps=$(pgbench_tps tce_insert.sql bench_tce "$warm")
	say "  warm-up done (${warm}s plain, ${warm}s protected)"
	for (( run = 1; run <= INSERT_RUNS; run++ )); do
		for side in plain tce pgp; do
			sql_exec "TRUNCATE bench_$side RESTART IDENTITY; CHECKPOINT;"
			tps=$(pgbench_tps tce_insert.sql "bench_$side")
			say "  single-row INSERT, bench_$side, run $run/$INSERT_RUNS: $(fmt_num "$tps") tps"
			case $side in
				plain) plain+=("$tps") ;;
				tce) tce+=("$tps") ;;
				pgp) pgp+=("$tps") ;;
			esac
		done
	done
	local p t g
	p=$(median "${plain[@]}"); t=$(median "${tce[@]}"); g=$(median "${pgp[@]}")
	report_row "single-row INSERT, protected 200-byte token (pgbench -c $BENCH_CLIENTS, ${BENCH_SECONDS}s, median of $INSERT_RUNS)" \
		"plain table: $(fmt_num "$p") tps" "$(fmt_num "$t") tps" "$(ratio "$t" "$p")" ">=" 0.90
	report_info "↳ peer: pgcrypto pgp_sym_encrypt from a PL/pgSQL trigger" \
		"plain table: $(fmt_num "$p") tps" "$(fmt_num "$g") tps" "$(ratio "$g" "$p")"
}

# psql text that empties TABLE and times one bulk INSERT of ROWS rows into it as LABEL
bulk_insert_script() {
	local table=$1 rows=$2 label=$3
	echo "TRUNCATE $table RESTART IDENTITY;"
	echo "CHECKPOINT;"
	echo "\\set tbl $table"
	echo "\\set rows $rows"
	timed_begin
	echo "\\i $BENCH_DIR/tce_bulk.sql"
	timed_end "$label"
}

# B. one-statement INSERT ... SELECT of BENCH_ROWS rows
group_tce_bulk() {
	require_setup tce
	local run out
	out=$(
		for (( run = 1; run <= BULK_RUNS; run++ )); do
			bulk_insert_script bench_plain "$BENCH_ROWS" plain
			bulk_insert_script bench_tce "$BENCH_ROWS" tce
			bulk_insert_script bench_cbc "$BENCH_ROWS" cbc
			bulk_insert_script bench_pgp "$PGP_ROWS" pgp
		done | run_timed
	)
	say "  bulk INSERT times (ms): $(printf '%s\n' "$out" | tr '\n' ';' | sed 's/;/; /g')"
	local p t c g
	p=$(median_of plain <<<"$out")
	t=$(median_of tce <<<"$out")
	c=$(median_of cbc <<<"$out")
	g=$(median_of pgp <<<"$out")
	local rows_k=$(( BENCH_ROWS / 1000 ))k pgp_k=$(( PGP_ROWS / 1000 ))k
	report_row "INSERT ... SELECT of $rows_k rows, protected column (median of $BULK_RUNS)" \
		"plain table: $(fmt_num "$p") ms ($(rate "$BENCH_ROWS" "$p"))" \
		"$(fmt_num "$t") ms ($(rate "$BENCH_ROWS" "$t"))" "$(ratio "$p" "$t")" ">=" 0.75
	report_info "↳ peer: pgcrypto encrypt_iv AES-CBC from a PL/pgSQL trigger" \
		"plain table: $(rate "$BENCH_ROWS" "$p")" \
		"$(fmt_num "$c") ms ($(rate "$BENCH_ROWS" "$c"))" "$(ratio "$p" "$c")"
	# throughput ratio = pgp rate / plain rate, pgp measured on a tenth of the rows
	report_info "↳ peer: pgcrypto pgp_sym_encrypt from a PL/pgSQL trigger (measured on $pgp_k rows, compared as rows/s)" \
		"plain table: $(rate "$BENCH_ROWS" "$p")" \
		"$(fmt_num "$g") ms for $pgp_k ($(rate "$PGP_ROWS" "$g"))" \
		"$(awk -v p="$p" -v n="$BENCH_ROWS" -v g="$g" -v m="$PGP_ROWS" \
			'BEGIN { printf "%.2f\n", (m / g) / (n / p) }')"
}

# make sure TABLE holds exactly BENCH_ROWS rows (loaded by group_tce_bulk, or here)
ensure_rows() {
	local table=$1 n
	n=$(bb_psql_value "$BENCH_CLUSTER" "SELECT count(*) FROM $table")
	if [[ $n != "$BENCH_ROWS" ]]; then
		say "  loading $BENCH_ROWS rows into $table"
		bb_psql "$BENCH_CLUSTER" -v tbl="$table" -v rows="$BENCH_ROWS" \
			-c "TRUNCATE $table RESTART IDENTITY" -f "$BENCH_DIR/tce_bulk.sql"
	fi
}

# C. reading BENCH_ROWS rows through <table>_decrypted vs the same rows raw
group_tce_read() {
	require_setup tce
	local table
	for table in bench_plain bench_tce bench_cbc; do
		ensure_rows "$table"
	done
	sql_exec "VACUUM ANALYZE bench_plain, bench_tce, bench_cbc"
	# the read really decrypts: every decrypted value is the 200-character token, no raw one is
	local check
	check=$(bb_psql_value "$BENCH_CLUSTER" \
		"SELECT (SELECT count(*) FROM bench_tce_decrypted WHERE length(refresh_token) = 200)
		      = $BENCH_ROWS
		    AND (SELECT count(*) FROM bench_tce WHERE length(refresh_token) = 200) = 0
		    AND (SELECT count(*) FROM bench_cbc_decrypted WHERE length(refresh_token) = 200)
		      = $BENCH_ROWS")
	if [[ $check != t ]]; then
		echo "bench: read set-up check failed (decrypted values are not the 200-character tokens)" >&2
		return 1
	fi
	local rels=(bench_tce bench_tce_decrypted bench_cbc bench_cbc_decrypted bench_plain)
	local run rel out
	out=$(
		# one backend for every read: caches and the unwrapped data key are warm after the
		# first (untimed) pass; parallel query off so that each figure is one CPU's work
		{
			echo "SET max_parallel_workers_per_gather = 0;"
			for rel in "${rels[@]}"; do
				echo "\\set rel $rel"
				echo "\\i $BENCH_DIR/tce_read.sql"
			done
			for (( run = 1; run <= READ_RUNS; run++ )); do
				for rel in "${rels[@]}"; do
					echo "\\set rel $rel"
					timed_begin
					echo "\\i $BENCH_DIR/tce_read.sql"
					timed_end "$rel"
				done
			done
		} | run_timed
	)
	say "  read times (ms): $(printf '%s\n' "$out" | tr '\n' ';' | sed 's/;/; /g')"
	local raw dec craw cdec plain
	raw=$(median_of bench_tce <<<"$out")
	dec=$(median_of bench_tce_decrypted <<<"$out")
	craw=$(median_of bench_cbc <<<"$out")
	cdec=$(median_of bench_cbc_decrypted <<<"$out")
	plain=$(median_of bench_plain <<<"$out")
	local rows_k=$(( BENCH_ROWS / 1000 ))k
	report_row "read $rows_k rows through bench_tce_decrypted, sum(length(token)) (median of $READ_RUNS)" \
		"same rows raw: $(fmt_num "$raw" 1) ms" "$(fmt_num "$dec" 1) ms" "$(ratio "$dec" "$raw")" "<=" 2.0
	report_info "↳ peer: pgcrypto decrypt_iv AES-CBC view (unauthenticated)" \
		"same rows raw: $(fmt_num "$craw" 1) ms" "$(fmt_num "$cdec" 1) ms" "$(ratio "$cdec" "$craw")"
	report_info "↳ bench_tce_decrypted vs the plaintext table bench_plain" \
		"plaintext table: $(fmt_num "$plain" 1) ms" "$(fmt_num "$dec" 1) ms" "$(ratio "$dec" "$plain")"
}

# ---------------------------------------------------------------------------------------------
# Row groups: the audit log (SPEC section 3)
# ---------------------------------------------------------------------------------------------

# one pgbench run of audit_insert.sql on a truncated TABLE with CLIENTS clients
audit_run() {
	local table=$1 clients=$2
	sql_exec "TRUNCATE $table RESTART IDENTITY; CHECKPOINT;"
	pgbench_tps audit_insert.sql "$table" "$BENCH_SECONDS" "$clients"
}

# D. audited single-row INSERT, 2 clients: against no audit and against the PL/pgSQL trigger
group_audit_insert() {
	require_setup audit
	local run side tps plain=() audited=() supa=()
	audit_run bench_aplain 2 >/dev/null
	audit_run bench_audited 2 >/dev/null
	for (( run = 1; run <= INSERT_RUNS; run++ )); do
		for side in aplain audited supa; do
			tps=$(audit_run "bench_$side" 2)
			say "  audited INSERT, bench_$side, run $run/$INSERT_RUNS: $(fmt_num "$tps") tps"
			case $side in
				aplain) plain+=("$tps") ;;
				audited) audited+=("$tps") ;;
				supa) supa+=("$tps") ;;
			esac
		done
	done
	local p a s
	p=$(median "${plain[@]}"); a=$(median "${audited[@]}"); s=$(median "${supa[@]}")
	report_row "single-row INSERT into an audited table (pgbench -c 2, ${BENCH_SECONDS}s, median of $INSERT_RUNS)" \
		"no audit: $(fmt_num "$p") tps" "$(fmt_num "$a") tps" "$(ratio "$a" "$p")" ">=" 0.90
	report_row "↳ the same against a PL/pgSQL jsonb audit trigger of supa_audit's shape" \
		"PL/pgSQL trigger: $(fmt_num "$s") tps" "$(fmt_num "$a") tps" "$(ratio "$a" "$s")" ">=" 4
	report_info "↳ PL/pgSQL jsonb audit trigger against no audit" \
		"no audit: $(fmt_num "$p") tps" "$(fmt_num "$s") tps" "$(ratio "$s" "$p")"

	# The same without waiting for the WAL flush: what the triggers cost in CPU, which the
	# durable runs above hide behind each commit's fsync.
	sql_exec "ALTER DATABASE bench SET synchronous_commit = off"
	plain=(); audited=(); supa=()
	for (( run = 1; run <= INSERT_RUNS; run++ )); do
		for side in aplain audited supa; do
			tps=$(audit_run "bench_$side" 2)
			say "  audited INSERT (synchronous_commit off), bench_$side, run $run/$INSERT_RUNS: $(fmt_num "$tps") tps"
			case $side in
				aplain) plain+=("$tps") ;;
				audited) audited+=("$tps") ;;
				supa) supa+=("$tps") ;;
			esac
		done
	done
	sql_exec "ALTER DATABASE bench RESET synchronous_commit"
	p=$(median "${plain[@]}"); a=$(median "${audited[@]}"); s=$(median "${supa[@]}")
	report_row "↳ audited INSERT with synchronous_commit = off (CPU cost, no fsync wait)" \
		"no audit: $(fmt_num "$p") tps" "$(fmt_num "$a") tps" "$(ratio "$a" "$p")" ">=" 0.90
	report_row "↳ the same against the PL/pgSQL trigger, synchronous_commit = off" \
		"PL/pgSQL trigger: $(fmt_num "$s") tps" "$(fmt_num "$a") tps" "$(ratio "$a" "$s")" ">=" 4
}

# E. scaling: 2 clients against 1; and 8 clients, audited against plain, durable and with
# synchronous_commit = off, the two sides alternating, medians of 3 or more runs (INSERT_RUNS when larger)
group_audit_scaling() {
	require_setup audit
	local p1 p2 a1 a2
	p1=$(audit_run bench_aplain 1); a1=$(audit_run bench_audited 1)
	p2=$(audit_run bench_aplain 2); a2=$(audit_run bench_audited 2)
	say "  tps: plain 1c $(fmt_num "$p1"), 2c $(fmt_num "$p2"); audited 1c $(fmt_num "$a1"), 2c $(fmt_num "$a2")"
	local plain_scale audited_scale
	plain_scale=$(awk -v a="$p2" -v b="$p1" 'BEGIN { printf "%.3f\n", a / b }')
	audited_scale=$(awk -v a="$a2" -v b="$a1" 'BEGIN { printf "%.3f\n", a / b }')
	report_row "audited INSERT scaling, 2 clients vs 1 (relative to the plain table's own scaling)" \
		"plain: $(fmt_num "$plain_scale" 2)x from 1 to 2 clients" "audited: $(fmt_num "$audited_scale" 2)x" \
		"$(ratio "$audited_scale" "$plain_scale")" ">=" 0.90

	local setting run side tps plain audited p a runs=$(( INSERT_RUNS > 3 ? INSERT_RUNS : 3 ))
	for setting in on off; do
		sql_exec "ALTER DATABASE bench SET synchronous_commit = $setting"
		plain=(); audited=()
		for (( run = 1; run <= runs; run++ )); do
			for side in aplain audited; do
				tps=$(audit_run "bench_$side" 8)
				say "  audited INSERT, 8 clients, synchronous_commit $setting, bench_$side, run $run/$runs: $(fmt_num "$tps") tps"
				if [[ $side == aplain ]]; then plain+=("$tps"); else audited+=("$tps"); fi
			done
		done
		p=$(median "${plain[@]}"); a=$(median "${audited[@]}")
		if [[ $setting == on ]]; then
			report_row "audited INSERT, 8 clients (writers never wait on each other; median of $runs)" \
				"no audit: $(fmt_num "$p") tps" "$(fmt_num "$a") tps" "$(ratio "$a" "$p")" ">=" 0.90
		else
			report_row "↳ the same with synchronous_commit = off" \
				"no audit: $(fmt_num "$p") tps" "$(fmt_num "$a") tps" "$(ratio "$a" "$p")" ">=" 0.90
		fi
	done
	sql_exec "ALTER DATABASE bench RESET synchronous_commit"
}

# F. seal_audit() throughput on BENCH_ROWS committed rows
group_audit_seal() {
	require_setup audit
	local out ms rows check r
	# SEAL_RUNS blocks of BENCH_ROWS rows each; the median seal time counts
	out=$(
		{
			echo "SELECT brandbos.seal_audit();"
			for ((r = 0; r < SEAL_RUNS; r++)); do
				echo "SELECT count(*) FROM (SELECT brandbos.log_event('bench', 'seal', g::text, '{\"k\": 1}') FROM generate_series(1, $BENCH_ROWS) g) s;"
				timed_begin
				echo "SELECT brandbos.seal_audit();"
				timed_end seal
			done
		} | run_timed
	)
	ms=$(median_of seal <<<"$out")
	rows=$(bb_psql_value "$BENCH_CLUSTER" "SELECT row_count FROM brandbos.audit_blocks ORDER BY block_id DESC LIMIT 1")
	check=$(bb_psql_value "$BENCH_CLUSTER" "SELECT count(*) FROM brandbos.verify_audit()")
	if [[ $check != 0 ]]; then
		echo "bench: verify_audit reports problems after sealing" >&2
		return 1
	fi
	local per_s
	per_s=$(awk -v n="$rows" -v ms="$ms" 'BEGIN { printf "%.0f\n", n / ms * 1000 }')
	report_row "seal_audit() of $rows committed rows (one block each, verify_audit clean; median of $SEAL_RUNS)" \
		"target 1M rows/s" "$(fmt_num "$ms" 1) ms ($(fmt_num "$per_s") rows/s)" \
		"$(awk -v r="$per_s" 'BEGIN { printf "%.2f\n", r / 1000000 }')" ">=" 1.00
}

# ---------------------------------------------------------------------------------------------
# Row groups: tenant policies (SPEC section 4)
# ---------------------------------------------------------------------------------------------

TENANT_LOOPS=${BENCH_TENANT_LOOPS:-1000}	# counts per timing in the index row
TENANT_CLAIMS='{"sub": "bench-user", "role": "authenticated", "tenant_id": "t0042"}'

# psql text that opens a transaction on SIDE (plain | rls | supa) for tenant t0042: the
# request context of that side, index scans off for MODE seq, and psql variables tbl and
# filter for tenant_count.sql / tenant_loop.sql.  The caller ends the transaction.
tenant_begin() {
	local side=$1 mode=$2
	echo "BEGIN;"
	if [[ $mode == seq ]]; then
		echo "SET LOCAL enable_indexscan = off;"
		echo "SET LOCAL enable_indexonlyscan = off;"
		echo "SET LOCAL enable_bitmapscan = off;"
	fi
	case $side in
		plain)
			echo "\\set tbl bench_tenant_plain"
			echo "\\set filter 'tenant_id = ''t0042'''" ;;
		rls)
			echo "SELECT brandbos.set_context('bench-user', 't0042') \\g /dev/null"
			echo "\\set tbl bench_tenant_rls"
			echo "\\set filter true" ;;
		supa)
			echo "SELECT set_config('request.jwt.claims', '$TENANT_CLAIMS', true) \\g /dev/null"
			echo "\\set tbl bench_tenant_supa"
			echo "\\set filter true" ;;
	esac
}

# every session: the application role (policies apply to it; superusers bypass them) and
# no parallel query, so that each figure is one CPU's work
tenant_session() {
	echo "SET ROLE bench_tenant_app;"
	echo "SET max_parallel_workers_per_gather = 0;"
}

# tenant_plan SIDE MODE: EXPLAIN (COSTS OFF) of the timed count, as the application role
tenant_plan() {
	{
		tenant_session
		tenant_begin "$1" "$2"
		echo "EXPLAIN (COSTS OFF) SELECT count(*) FROM :\"tbl\" WHERE :filter;"
		echo "COMMIT;"
	} | bb_psql "$BENCH_CLUSTER" -At -f -
}

# tenant_check MODE: every side counts the 1000 rows of t0042, and nothing else
tenant_check() {
	local side n
	for side in plain rls supa; do
		n=$({
			tenant_session
			tenant_begin "$side" "$1"
			echo "SELECT count(*) FILTER (WHERE tenant_id = 't0042') || '/' || count(*) FROM :\"tbl\" WHERE :filter;"
			echo "COMMIT;"
		} | bb_psql "$BENCH_CLUSTER" -At -f -)
		if [[ $n != 1000/1000 ]]; then
			echo "bench: $side ($1 scan) counts '$n' rows of t0042/all, expected 1000/1000" >&2
			return 1
		fi
	done
}

# A. count(*) of one tenant's rows under the tenant policy, sequential scan
group_tenant_seq() {
	require_setup tenant
	tenant_check seq
	local side plan notes=()
	for side in plain rls supa; do
		plan=$(tenant_plan "$side" seq)
		if ! grep -q 'Seq Scan' <<<"$plan" || grep -q 'Index' <<<"$plan"; then
			echo "bench: $side: expected a sequential scan, got:" >&2
			echo "$plan" >&2
			return 1
		fi
	done
	say "  plan under the brandbos policy: $(tr '\n' ' ' <<<"$(tenant_plan rls seq)" | sed 's/  */ /g')"
	if grep -Eq 'SubPlan|InitPlan' <<<"$(tenant_plan rls seq)"; then
		notes+=("the plan holds a sub-plan")
	fi
	local quals
	quals=$(bb_psql_value "$BENCH_CLUSTER" "SELECT string_agg(coalesce(qual, '') || ' ' || coalesce(with_check, ''), ' ')
		FROM pg_policies WHERE tablename = 'bench_tenant_rls'")
	if grep -Eiq '\bselect\b' <<<"$quals"; then
		notes+=("a policy wraps its helper in (select ...)")
	fi
	local run out
	out=$(
		{
			tenant_session
			for side in plain rls supa; do	# untimed warm-up pass
				tenant_begin "$side" seq
				echo "\\i $BENCH_DIR/tenant_count.sql"
				echo "COMMIT;"
			done
			for (( run = 1; run <= READ_RUNS; run++ )); do
				for side in plain rls supa; do
					tenant_begin "$side" seq
					timed_begin
					echo "\\i $BENCH_DIR/tenant_count.sql"
					timed_end "$side"
					echo "COMMIT;"
				done
			done
		} | run_timed
	)
	say "  seq scan count times (ms): $(printf '%s\n' "$out" | tr '\n' ';' | sed 's/;/; /g')"
	local p r s ratio_rls
	p=$(median_of plain <<<"$out")
	r=$(median_of rls <<<"$out")
	s=$(median_of supa <<<"$out")
	ratio_rls=$(ratio "$r" "$p")
	local what="count(*) over 1M rows / 1000 tenants under enable_tenant_isolation, seq scan (median of $READ_RUNS)"
	if (( ${#notes[@]} > 0 )); then
		report_row "$what" "literal tenant: $(fmt_num "$p" 1) ms" \
			"$(fmt_num "$r" 1) ms = ${ratio_rls}x, but $(IFS=';'; echo "${notes[*]}")" "n/a" "<=" 1.1
	else
		report_row "$what" "literal tenant: $(fmt_num "$p" 1) ms" "$(fmt_num "$r" 1) ms" "$ratio_rls" "<=" 1.1
	fi
	report_info "↳ peer: Supabase-style policy, tenant_id = auth_tenant(), a SQL helper over request.jwt.claims" \
		"literal tenant: $(fmt_num "$p" 1) ms" "$(fmt_num "$s" 1) ms" "$(ratio "$s" "$p")"
}

# B. the same count with the index on tenant_id: the helper must give an index condition
group_tenant_index() {
	require_setup tenant
	tenant_check index
	local plan_rls plan_plain note=""
	plan_rls=$(tenant_plan rls index)
	plan_plain=$(tenant_plan plain index)
	say "  plan under the brandbos policy: $(tr '\n' ' ' <<<"$plan_rls" | sed 's/  */ /g')"
	say "  plan with the literal:          $(tr '\n' ' ' <<<"$plan_plain" | sed 's/  */ /g')"
	if ! grep -Eq 'Index Cond: \(tenant_id = brandbos\.current_tenant_id\(\)\)' <<<"$plan_rls" \
			|| grep -Eq 'Seq Scan|SubPlan|InitPlan' <<<"$plan_rls"; then
		note="no index condition on tenant_id in the plan"
	fi
	if ! grep -q 'Index Cond: (tenant_id = ' <<<"$plan_plain"; then
		echo "bench: the baseline does not use the tenant index:" >&2
		echo "$plan_plain" >&2
		return 1
	fi
	# without an index condition every count is a full scan: time fewer of them
	local loops=$TENANT_LOOPS
	if [[ -n $note ]]; then
		loops=$(( TENANT_LOOPS >= 100 ? TENANT_LOOPS / 100 : 1 ))
	fi
	local run side out
	out=$(
		{
			tenant_session
			echo "\\set loops $loops"
			for side in plain rls; do	# untimed warm-up pass
				tenant_begin "$side" index
				echo "\\i $BENCH_DIR/tenant_loop.sql"
				echo "COMMIT;"
			done
			for (( run = 1; run <= READ_RUNS; run++ )); do
				for side in plain rls; do
					tenant_begin "$side" index
					timed_begin
					echo "\\i $BENCH_DIR/tenant_loop.sql"
					timed_end "$side"
					echo "COMMIT;"
				done
			done
		} | run_timed
	)
	say "  index count times, $loops counts each (ms): $(printf '%s\n' "$out" | tr '\n' ';' | sed 's/;/; /g')"
	local p r us_p us_r rat
	p=$(median_of plain <<<"$out")
	r=$(median_of rls <<<"$out")
	us_p=$(awk -v ms="$p" -v n="$loops" 'BEGIN { printf "%.1f\n", ms * 1000 / n }')
	us_r=$(awk -v ms="$r" -v n="$loops" 'BEGIN { printf "%.1f\n", ms * 1000 / n }')
	rat=$(ratio "$r" "$p")
	local what="the same with the index on tenant_id, index condition in the plan ($loops counts per timing, median of $READ_RUNS)"
	if [[ -n $note ]]; then
		report_row "$what" "literal tenant: $us_p µs/count" "$us_r µs/count = ${rat}x, but $note" "n/a" "<=" 1.1
	else
		report_row "$what" "literal tenant: $us_p µs/count" "$us_r µs/count" "$rat" "<=" 1.1
	fi
}

# ---------------------------------------------------------------------------------------------
# Row groups: deliberation bookkeeping (SPEC section 5)
# ---------------------------------------------------------------------------------------------

# A. add_contribution against a plain INSERT of the same values into an equivalent table,
# pgbench with 2 clients, 50 sessions; both sides as the non-superuser bench_delib_app.
# The brandbos side's transaction also runs set_context (as an application's would); the
# plain side's is the INSERT alone.
group_deliberation() {
	require_setup deliberation
	local conninfo
	conninfo="$(bb_conninfo "$BENCH_CLUSTER") user=bench_delib_app"
	# delib_tps SCRIPT SECONDS: one pgbench run as bench_delib_app; prints tps
	delib_tps() {
		local out tps
		if ! out=$(bb_run_as_pg "$PGBIN/pgbench" -n -c "$BENCH_CLIENTS" -j "$BENCH_CLIENTS" -T "$2" \
				-f "$BENCH_DIR/$1" -D tbl=bench_contrib_plain "$conninfo" 2>&1); then
			printf '%s\n' "$out" >&2
			echo "bench: pgbench failed on $1" >&2
			return 1
		fi
		tps=$(printf '%s\n' "$out" | awk '/^tps = / { print $3; exit }')
		if [[ -z $tps ]] || printf '%s\n' "$out" | grep -Eq '^number of failed transactions: [1-9]'; then
			printf '%s\n' "$out" >&2
			echo "bench: pgbench reported no tps or failed transactions on $1" >&2
			return 1
		fi
		printf '%s\n' "$tps"
	}
	# empty both tables (DELETE on brandbos's side, so that the triggers zero the totals)
	delib_reset() {
		sql_exec "DELETE FROM brandbos.contributions; TRUNCATE bench_contrib_plain RESTART IDENTITY;"
		sql_exec "VACUUM brandbos.contributions, brandbos.sessions, bench_contrib_plain"
		sql_exec "CHECKPOINT"
	}
	local warm=$(( BENCH_SECONDS < 5 ? BENCH_SECONDS : 5 )) run side tps plain=() delib=()
	delib_reset
	tps=$(delib_tps deliberation_plain.sql "$warm")
	tps=$(delib_tps deliberation_add.sql "$warm")
	say "  warm-up done (${warm}s plain, ${warm}s add_contribution)"
	for (( run = 1; run <= INSERT_RUNS; run++ )); do
		for side in plain add; do
			delib_reset
			tps=$(delib_tps "deliberation_$side.sql" "$BENCH_SECONDS")
			say "  deliberation, $side, run $run/$INSERT_RUNS: $(fmt_num "$tps") tps"
			case $side in
				plain) plain+=("$tps") ;;
				add) delib+=("$tps") ;;
			esac
		done
	done
	# the measured writes kept the totals exact
	local check
	check=$(bb_psql_value "$BENCH_CLUSTER" "SELECT count(*) FILTER (WHERE s.total_cost IS DISTINCT FROM c.cost
	                                                      OR s.total_tokens IS DISTINCT FROM c.tokens)
	                                         || '/' || sum(c.n)
	                                    FROM brandbos.sessions s
	                                    JOIN (SELECT session_id, sum(cost) AS cost, sum(tokens) AS tokens, count(*) AS n
	                                            FROM brandbos.contributions GROUP BY session_id) c
	                                      ON c.session_id = s.id")
	if [[ ! $check =~ ^0/[1-9][0-9]*$ ]]; then
		echo "bench: session totals differ from the sums of their contributions ($check: sessions off/rows)" >&2
		return 1
	fi
	say "  totals exact over ${check#0/} contributions of the last run"
	local p d
	p=$(median "${plain[@]}"); d=$(median "${delib[@]}")
	report_row "add_contribution, 50 sessions, both sides in a request context (pgbench -c $BENCH_CLIENTS, ${BENCH_SECONDS}s, median of $INSERT_RUNS)" \
		"plain INSERT into an equivalent table: $(fmt_num "$p") tps" "$(fmt_num "$d") tps" \
		"$(ratio "$d" "$p")" ">=" 0.80
}

# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

selected=()
if [[ -n $BENCH_ONLY ]]; then
	for g in $BENCH_ONLY; do
		if ! declare -F "group_$g" >/dev/null; then
			echo "bench: unknown group '$g' in BENCH_ONLY (known: ${BENCH_GROUPS[*]})" >&2
			exit 2
		fi
		selected+=("$g")
	done
else
	selected=("${BENCH_GROUPS[@]}")
fi

started=$(date +%s)
say "brandbos benchmarks: groups ${selected[*]}; BENCH_SECONDS=$BENCH_SECONDS BENCH_ROWS=$BENCH_ROWS"
cluster_up
if [[ $(bb_psql_value "$BENCH_CLUSTER" "SELECT 1 FROM pg_available_extensions WHERE name = 'brandbos'") != 1 ]]; then
	echo "bench: brandbos is not installed (run make install, or make bench)" >&2
	exit 1
fi
pg_version=$(bb_psql_value "$BENCH_CLUSTER" "SHOW server_version")

for g in "${selected[@]}"; do
	say "group $g"
	"group_$g"
done

elapsed=$(( $(date +%s) - started ))
commit=$(git -C "$BB_ROOT" rev-parse --short HEAD 2>/dev/null || echo none)
if [[ -n $(git -C "$BB_ROOT" status --porcelain 2>/dev/null) ]]; then
	commit+=" (with uncommitted changes)"
fi

mkdir -p "$RESULTS_DIR"
{
	echo "# brandbos benchmarks — latest run"
	echo
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, PostgreSQL $pg_version, $(nproc) CPUs, ${elapsed}s"
	echo "- BENCH_SECONDS=$BENCH_SECONDS BENCH_ROWS=$BENCH_ROWS; pgbench -c $BENCH_CLIENTS -j $BENCH_CLIENTS"
	printf -- '- cluster: %s\n' "$(printf '%s, ' "${BENCH_SETTINGS[@]}" | sed 's/, $//')"
	echo
	echo "| benchmark | baseline | brandbos | ratio | target | status |"
	echo "|---|---|---|---|---|---|"
	printf '%s\n' "${RESULT_ROWS[@]}"
} >"$RESULTS_DIR/latest.md.tmp"
mv "$RESULTS_DIR/latest.md.tmp" "$RESULTS_DIR/latest.md"

echo
cat "$RESULTS_DIR/latest.md"
echo
say "done in ${elapsed}s; written to ${RESULTS_DIR#"$BB_ROOT"/}/latest.md"
FAILED=0
