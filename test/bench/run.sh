#!/usr/bin/env bash
# brandbos benchmarks: SPEC section 7, measured as ratios in one throwaway cluster, brandbos
# side by side with the peers built beside it (test/bench/peers.sh).
#
#   test/bench/run.sh                      (or: make bench, which builds and installs brandbos
#                                           and the peers first)
#
# Knobs (environment):
#   BENCH_SECONDS  duration of each pgbench run                       (default 5)
#   BENCH_ROWS     rows for the bulk INSERT and the read rows         (default 100000)
#   BENCH_ONLY     space-separated row groups to run                  (default: all, see BENCH_GROUPS)
#   BENCH_SYNC     synchronous_commit settings measured               (default "on off")
#   BENCH_CLIENTS  pgbench client counts measured                     (default "2 8")
#   BENCH_PEERS    file with peers.sh's output ("ok NAME" / "missing NAME: reason"); without
#                  it a peer whose extension is not installed is reported missing
#   BENCH_KEEP=1   leave the cluster running afterwards               (default: destroy it)
#   BENCH_PORT     first port tried for the cluster                   (default 55700)
#
# Each row group is one function group_<name>.  It measures every variant of its workload
# (plain = the baseline, brandbos, then the peers) with the runs alternating across variants,
# for each synchronous_commit setting and (pgbench rows) each client count, and reports one
# row per setting x clients with add_row.  A peer that is not available is reported as
# "missing: reason", never as a number.
#
# Exit status: 0 when every measurement ran, even if a target was missed (benchmarks report,
# they do not fail CI); non-zero only when something errored.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BB_ROOT=${BB_ROOT:-$(cd "$BENCH_DIR/../.." && pwd)}
export BB_ROOT
# shellcheck source-path=SCRIPTDIR/../lib source=cluster.sh
. "$BB_ROOT/test/lib/cluster.sh"

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_ROWS=${BENCH_ROWS:-100000}
BENCH_ONLY=${BENCH_ONLY:-}
BENCH_SYNC=${BENCH_SYNC:-on off}
BENCH_CLIENTS=${BENCH_CLIENTS:-2 8}
BENCH_PEERS=${BENCH_PEERS:-}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_PORT=${BENCH_PORT:-55700}
BENCH_CLUSTER=bench
PGBENCH_RUNS=3			# pgbench runs per variant, alternating; the median counts
BULK_RUNS=3				# bulk INSERT repetitions per variant; median counts
READ_RUNS=5				# read repetitions per variant; median counts
SEAL_RUNS=3				# seal_audit() of BENCH_ROWS fresh rows, repeated; median counts
UPDATE_ROWS=10000		# rows of each table the audited UPDATE picks from
RESULTS_DIR=$BENCH_DIR/results

BENCH_GROUPS=(tce_insert tce_bulk tce_read tce_point audit_insert audit_update audit_seal
			  tenant_seq tenant_index deliberation)

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
for s in $BENCH_SYNC; do
	[[ $s == on || $s == off ]] || { echo "bench: BENCH_SYNC takes on and/or off, got '$s'" >&2; exit 2; }
done
for c in $BENCH_CLIENTS; do
	[[ $c =~ ^[1-9][0-9]?$ ]] || { echo "bench: BENCH_CLIENTS takes client counts, got '$c'" >&2; exit 2; }
done
[[ -n ${BENCH_SYNC// } && -n ${BENCH_CLIENTS// } ]] || { echo "bench: BENCH_SYNC and BENCH_CLIENTS must not be empty" >&2; exit 2; }

# ---------------------------------------------------------------------------------------------
# the variants and the peers' availability
# ---------------------------------------------------------------------------------------------

# Column-encryption variants: the table written, the relation the decrypted reads go through,
# the pgbench INSERT script, the bulk script, and the divisor of BENCH_ROWS they are measured
# on (slow peers are measured on a tenth, compared as rows/s or scaled time).
declare -A V_TABLE=(
	[plain]=bench_plain [brandbos]=bench_tce [pgsodium_tce]=bench_pgs_tce
	[pgsodium_det]=bench_pgs_det [vault]=vault.secrets [pgcrypto_aes]=bench_cbc
	[pgcrypto_pgp]=bench_pgp)
declare -A V_READ=(
	[plain]=bench_plain [brandbos]=bench_tce_decrypted [pgsodium_tce]=bench_pgs_tce_read
	[pgsodium_det]=bench_pgs_det_read [vault]=bench_vault_read [pgcrypto_aes]=bench_cbc_decrypted
	[pgcrypto_pgp]=bench_pgp_read)
declare -A V_SCALE=([vault]=10 [pgcrypto_pgp]=10)
# the extension each peer variant needs
declare -A V_EXT=(
	[pgsodium_tce]=pgsodium [pgsodium_det]=pgsodium [vault]=supabase_vault
	[pgcrypto_aes]=pgcrypto [pgcrypto_pgp]=pgcrypto [supa_audit]=supa_audit [pgaudit]=pgaudit)
TCE_VARIANTS=(plain brandbos pgsodium_tce pgsodium_det vault pgcrypto_aes pgcrypto_pgp)

PG_CONFIG_BIN=$PGBIN/pg_config
[[ -x $PG_CONFIG_BIN ]] || PG_CONFIG_BIN=$(command -v pg_config || echo pg_config)
PG_SHAREDIR=$("$PG_CONFIG_BIN" --sharedir)
PG_LIBDIR=$("$PG_CONFIG_BIN" --pkglibdir)

# MISSING[extension] = reason: from peers.sh's output when given, then whatever is not installed
declare -A MISSING=()
if [[ -n $BENCH_PEERS ]]; then
	if [[ ! -r $BENCH_PEERS ]]; then
		echo "bench: BENCH_PEERS names '$BENCH_PEERS', which cannot be read" >&2
		exit 2
	fi
	while IFS= read -r line; do
		if [[ $line == "missing "*": "* ]]; then
			line=${line#missing }
			MISSING[${line%%: *}]=${line#*: }
		fi
	done <"$BENCH_PEERS"
fi
for ext in pgsodium supabase_vault supa_audit pgaudit pgcrypto; do
	[[ -n ${MISSING[$ext]:-} ]] && continue
	if [[ ! -f $PG_SHAREDIR/extension/$ext.control ]]; then
		MISSING[$ext]="not installed in $PG_SHAREDIR (test/bench/peers.sh builds it)"
	fi
done
for lib in pgsodium pgaudit; do
	if [[ -z ${MISSING[$lib]:-} && ! -f $PG_LIBDIR/$lib.so ]]; then
		MISSING[$lib]="$lib.so not in $PG_LIBDIR"
	fi
done
if [[ -n ${MISSING[pgsodium]:-} && -z ${MISSING[supabase_vault]:-} ]]; then
	MISSING[supabase_vault]="needs pgsodium, which is missing"
fi

# variant_missing VARIANT: the reason it cannot be measured, empty when it can
variant_missing() {
	local ext=${V_EXT[$1]:-}
	if [[ -n $ext ]]; then
		printf '%s' "${MISSING[$ext]:-}"
	fi
}

# ---------------------------------------------------------------------------------------------
# output helpers
# ---------------------------------------------------------------------------------------------

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

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

# setting_name on|off: how a synchronous_commit setting is printed
setting_name() { if [[ $1 == on ]]; then echo durable; else echo "sync off"; fi; }

RESULT_ROWS=()
PEER_LINES=()

# add_row WORKLOAD SETTING CLIENTS KIND UNIT TARGET RULE NOTE PLAIN BRANDBOS [PEER=VALUE ...]
#   KIND  hi: higher is better (tps, rows/s), ratio = value / plain, target ratio >= TARGET
#         lo: lower is better (time), ratio = value / plain, target ratio <= TARGET
#   UNIT  tps | rows/s | ms | us  (how values print)
#   RULE  what brandbos must also do against the peers: "" nothing, "all" ahead of every
#         peer, or "peer:min,peer:min" (brandbos / peer >= min, in the better direction)
#   NOTE  non-empty: the row misses for that reason whatever the numbers
#   PEER=VALUE a peer's median; PEER=missing:REASON when it is not available
#   "brandbos / peer" is how many times better brandbos does than the peer (> 1: ahead).
add_row() {
	local workload=$1 setting=$2 clients=$3 kind=$4 unit=$5 target=$6 rule=$7 note=$8
	local plain=$9 bb=${10}
	shift 10
	local peers="" out
	if (( $# > 0 )); then peers=$(printf '%s\t' "$@"); fi
	out=$(awk -v kind="$kind" -v unit="$unit" -v target="$target" -v rule="$rule" -v note="$note" \
			-v plain="$plain" -v bb="$bb" -v peers="$peers" '
		function fmt(v) {
			if (unit == "tps") return sprintf("%.0f tps", v)
			if (unit == "rows/s") return sprintf("%.0fk rows/s", v / 1000)
			if (unit == "ms") return sprintf("%.1f ms", v)
			return sprintf("%.1f µs", v)
		}
		function r2(x) { return sprintf("%.2f", x) + 0 }
		BEGIN {
			r = r2(bb / plain)
			ratio_ok = (kind == "hi") ? (r >= target + 0) : (r <= target + 0)
			np = split(peers, p, "\t")
			best = ""; list = ""; navail = 0
			for (i = 1; i <= np; i++) {
				if (p[i] == "") continue
				eq = index(p[i], "=")
				name = substr(p[i], 1, eq - 1); val = substr(p[i], eq + 1)
				if (val ~ /^missing:/) {
					miss[name] = 1
					list = list (list == "" ? "" : "; ") name " missing: " substr(val, 9)
					continue
				}
				navail++
				pr[name] = r2(val / plain)
				adv[name] = (kind == "hi") ? r2(r / pr[name]) : r2(pr[name] / r)
				list = list (list == "" ? "" : "; ") sprintf("%s %s = %.2fx (brandbos / it %.2f)", name, fmt(val), pr[name], adv[name])
				if (best == "" || (kind == "hi" ? pr[name] > pr[best] : pr[name] < pr[best])) best = name
			}
			rule_ok = 1; incomplete = 0; rule_txt = ""
			if (rule == "all") {
				rule_txt = ", ahead of every peer"
				if (navail == 0 && np > 0) incomplete = 1
				for (n in adv) if (adv[n] <= 1.00) rule_ok = 0
				for (n in miss) incomplete = 1
			} else if (rule != "") {
				nr = split(rule, rs, ",")
				for (i = 1; i <= nr; i++) {
					split(rs[i], kv, ":")
					rule_txt = rule_txt sprintf(", >= %sx %s", kv[2], kv[1])
					if (kv[1] in miss || !(kv[1] in adv)) incomplete = 1
					else if (adv[kv[1]] < kv[2] + 0) rule_ok = 0
				}
			}
			if (note != "") status = "MISS (" note ")"
			else if (!ratio_ok || !rule_ok) status = "MISS"
			else if (incomplete) status = "INCOMPLETE (a peer the target names is missing)"
			else status = "PASS"
			bestcol = (best == "") ? (np > 0 ? "all missing" : "—") : sprintf("%s: %.2fx", best, pr[best])
			advcol = (best == "") ? "—" : sprintf("%.2f", adv[best])
			printf "%.2f\t%s\t%s\t%s %sx%s\t%s\t%s\t%s\t%s\n", r, bestcol, advcol,
				(kind == "hi" ? ">=" : "<="), target, rule_txt, status, fmt(plain), fmt(bb),
				(list == "" ? "no peers" : list)
		}')
	local r best adv tgt status fp fb list
	IFS=$'\t' read -r r best adv tgt status fp fb list <<<"$out"
	local sname
	sname=$(setting_name "$setting")
	RESULT_ROWS+=("| $workload | $sname | $clients | $fp | $fb | ${r}x | $best | $adv | $tgt | $status |")
	PEER_LINES+=("- $workload, $sname, $clients: $list")
	say "result: $workload, $sname, $clients: brandbos ${r}x of plain, best peer $best, brandbos / best peer $adv; target $tgt: $status"
}

# peer_args VARIANT...: "NAME=VALUE" (VALUE from the associative array MED) or
# "NAME=missing:REASON" for each peer variant
peer_args() {
	local v why
	for v in "$@"; do
		why=$(variant_missing "$v")
		if [[ -n $why ]]; then
			printf '%s\n' "$v=missing:$why"
		else
			printf '%s\n' "$v=${MED[$v]}"
		fi
	done
}

# available VARIANT...: the ones that are not missing, one a line
available() {
	local v
	for v in "$@"; do
		[[ -z $(variant_missing "$v") ]] && printf '%s\n' "$v"
	done
	return 0
}

# ---------------------------------------------------------------------------------------------
# cluster and SQL helpers
# ---------------------------------------------------------------------------------------------

CLUSTER_UP=0
FAILED=1

cleanup() {
	local rc=$?
	if (( FAILED )) && (( CLUSTER_UP )); then
		echo "bench: failed; last lines of the server log ($(bb_logfile "$BENCH_CLUSTER")), pgaudit's AUDIT lines left out:" >&2
		grep -v 'AUDIT: ' "$(bb_logfile "$BENCH_CLUSTER")" | tail -n 30 >&2 || true
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
# run, otherwise stock.  synchronous_commit is set per database by each row group (on, then
# off).  JIT is off so that it cannot switch on for one side of a comparison and not the
# other.  The preloaded peers' settings are added by cluster_up.
BENCH_SETTINGS=(
	"shared_buffers = '256MB'"
	"max_wal_size = '4GB'"
	"checkpoint_timeout = '30min'"
	"jit = off"
	"brandbos.audit_database = 'bench'"
	"brandbos.audit_seal_interval = '1s'"
)

cluster_up() {
	local preload=brandbos
	[[ -z ${MISSING[pgsodium]:-} ]] && preload+=",pgsodium"
	[[ -z ${MISSING[pgaudit]:-} ]] && preload+=",pgaudit"
	BENCH_SETTINGS+=("shared_preload_libraries = '$preload'")
	if [[ -z ${MISSING[pgsodium]:-} ]]; then
		BENCH_SETTINGS+=("pgsodium.getkey_script = '$BENCH_DIR/pgsodium_getkey.sh'")
	fi
	if [[ -z ${MISSING[pgaudit]:-} ]]; then
		# object auditing only: what bench_auditor may do is logged, nothing by class
		BENCH_SETTINGS+=("pgaudit.role = 'bench_auditor'" "pgaudit.log = 'none'")
	fi
	say "creating cluster '$BENCH_CLUSTER' (shared_preload_libraries = '$preload')"
	bb_cluster_create "$BENCH_CLUSTER" "$BENCH_PORT" yes
	# pgsodium's root key for this run, read by pgsodium_getkey.sh at server start
	local key
	key="$(bb_clusterdir "$BENCH_CLUSTER")/pgsodium_root.key"
	( umask 077 && { head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n'; echo; } >"$key" )
	if [[ $EUID -eq 0 ]]; then
		chown "$BB_PG_OSUSER" "$key"
	fi
	# the settings go into postgresql.conf before the first start: the preloaded peers'
	# parameters do not exist for ALTER SYSTEM until their library is loaded
	{
		echo "# ---- added by test/bench/run.sh ----"
		printf '%s\n' "${BENCH_SETTINGS[@]}"
	} >>"$(bb_datadir "$BENCH_CLUSTER")/postgresql.conf"
	bb_cluster_start "$BENCH_CLUSTER"
	CLUSTER_UP=1
	say "cluster '$BENCH_CLUSTER' listens on port $(bb_port "$BENCH_CLUSTER")"
	BB_DB=postgres bb_psql "$BENCH_CLUSTER" -c 'CREATE DATABASE bench'
	export BB_DB=bench
	if [[ $(bb_psql_value "$BENCH_CLUSTER" "SELECT current_setting('shared_buffers') || ' ' || current_setting('shared_preload_libraries')") != "256MB $preload" ]]; then
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

# tce_setup: the column-encryption tables of every available variant
tce_setup() {
	require_setup tce
	if [[ -z ${MISSING[pgsodium]:-} ]]; then require_setup tce_pgsodium; fi
	if [[ -z ${MISSING[supabase_vault]:-} ]]; then require_setup tce_vault; fi
}

# sql_exec SQL: run statements in the bench database
sql_exec() { bb_psql "$BENCH_CLUSTER" -c "$1"; }

# set_sync on|off: synchronous_commit of every later session of the bench database
set_sync() { sql_exec "ALTER DATABASE bench SET synchronous_commit = $1"; }

PGB_CONNINFO=""		# when set, pgbench connects with it instead of the superuser's

# pgbench_tps CLIENTS SECONDS SCRIPT TABLE [pgbench args...]: one pgbench run; prints tps
pgbench_tps() {
	local clients=$1 seconds=$2 script=$3 table=$4 out tps
	shift 4
	if ! out=$(bb_run_as_pg "$PGBIN/pgbench" -n -c "$clients" -j "$clients" -T "$seconds" \
			-f "$BENCH_DIR/$script" -D tbl="$table" "$@" \
			"${PGB_CONNINFO:-$(bb_conninfo "$BENCH_CLUSTER")}" 2>&1); then
		printf '%s\n' "$out" >&2
		echo "bench: pgbench $script failed on $table" >&2
		return 1
	fi
	tps=$(printf '%s\n' "$out" | awk '/^tps = / { print $3; exit }')
	if [[ -z $tps ]] || printf '%s\n' "$out" | grep -Eq '^number of failed transactions: [1-9]'; then
		printf '%s\n' "$out" >&2
		echo "bench: pgbench reported no tps or failed transactions ($script on $table)" >&2
		return 1
	fi
	printf '%s\n' "$tps"
}

declare -A MED=()

# pgbench_rows WORKLOAD TARGET RULE RESET_FN ARGS_FN VARIANT...
#   For each setting of BENCH_SYNC and each client count of BENCH_CLIENTS: PGBENCH_RUNS runs of
#   every available VARIANT (the first is the baseline, the second brandbos, the rest peers),
#   alternating; RESET_FN VARIANT runs before each run, ARGS_FN VARIANT prints "SCRIPT TABLE
#   [pgbench args]".  One add_row per setting x clients, medians of the tps.
pgbench_rows() {
	local workload=$1 target=$2 rule=$3 reset_fn=$4 args_fn=$5
	shift 5
	local variants=("$@") avail v setting clients run tps args
	mapfile -t avail < <(available "${variants[@]}")
	local warm=$(( BENCH_SECONDS < 3 ? BENCH_SECONDS : 3 ))
	# untimed warm-up of the baseline and brandbos: a fresh cluster first has to create its
	# WAL segments (later runs recycle them) and the CPUs to wake up
	for v in "${variants[@]:0:2}"; do
		"$reset_fn" "$v"
		read -ra args <<<"$("$args_fn" "$v")"
		pgbench_tps 2 "$warm" "${args[@]}" >/dev/null
	done
	declare -A runs
	for setting in $BENCH_SYNC; do
		set_sync "$setting"
		for clients in $BENCH_CLIENTS; do
			runs=()
			for (( run = 1; run <= PGBENCH_RUNS; run++ )); do
				for v in "${avail[@]}"; do
					"$reset_fn" "$v"
					read -ra args <<<"$("$args_fn" "$v")"
					tps=$(pgbench_tps "$clients" "$BENCH_SECONDS" "${args[@]}")
					runs[$v]+="$tps "
				done
			done
			MED=()
			for v in "${avail[@]}"; do
				# shellcheck disable=SC2086  # one number per word
				MED[$v]=$(median ${runs[$v]})
				say "  $workload, $(setting_name "$setting"), $clients clients, $v: ${runs[$v]}tps"
			done
			local peers
			mapfile -t peers < <(peer_args "${variants[@]:2}")
			add_row "$workload" "$setting" "$clients" hi tps "$target" "$rule" "" \
				"${MED[${variants[0]}]}" "${MED[${variants[1]}]}" "${peers[@]}"
		done
	done
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

# rows_of VARIANT: the rows it is measured on (BENCH_ROWS, or a tenth for the slow peers)
rows_of() { echo $(( BENCH_ROWS / ${V_SCALE[$1]:-1} )); }

# truncate_sql VARIANT: SQL that empties its table (and restarts its ids)
truncate_sql() {
	if [[ $1 == vault ]]; then
		echo "TRUNCATE vault.secrets;"
	else
		echo "TRUNCATE ${V_TABLE[$1]} RESTART IDENTITY;"
	fi
}

tce_reset() { sql_exec "$(truncate_sql "$1") CHECKPOINT;"; }
tce_insert_args() {
	if [[ $1 == vault ]]; then echo "vault_insert.sql vault.secrets"; else echo "tce_insert.sql ${V_TABLE[$1]}"; fi
}

# A. single-row INSERT of a 200-character token
group_tce_insert() {
	tce_setup
	pgbench_rows "single-row INSERT, 200-byte token" 0.90 all tce_reset tce_insert_args "${TCE_VARIANTS[@]}"
}

# psql text that empties VARIANT's table and times one bulk INSERT of its rows as LABEL VARIANT
bulk_insert_script() {
	local v=$1 script=tce_bulk.sql
	[[ $v == vault ]] && script=vault_bulk.sql
	truncate_sql "$v"
	echo "CHECKPOINT;"
	echo "\\set tbl ${V_TABLE[$v]}"
	echo "\\set rows $(rows_of "$v")"
	timed_begin
	echo "\\i $BENCH_DIR/$script"
	timed_end "$v"
}

# B. one-statement INSERT ... SELECT of BENCH_ROWS rows (a tenth for the slow peers), as rows/s
group_tce_bulk() {
	tce_setup
	local avail setting run v out ms
	mapfile -t avail < <(available "${TCE_VARIANTS[@]}")
	for setting in $BENCH_SYNC; do
		set_sync "$setting"
		out=$(
			for (( run = 1; run <= BULK_RUNS; run++ )); do
				for v in "${avail[@]}"; do bulk_insert_script "$v"; done
			done | run_timed
		)
		say "  bulk INSERT times (ms), $(setting_name "$setting"): $(printf '%s\n' "$out" | tr '\n' ';' | sed 's/;/; /g')"
		MED=()
		for v in "${avail[@]}"; do
			ms=$(median_of "$v" <<<"$out")
			MED[$v]=$(awk -v n="$(rows_of "$v")" -v ms="$ms" 'BEGIN { printf "%.1f\n", n / ms * 1000 }')
		done
		local peers
		mapfile -t peers < <(peer_args "${TCE_VARIANTS[@]:2}")
		add_row "INSERT ... SELECT of $(( BENCH_ROWS / 1000 ))k rows" "$setting" 1 hi rows/s 0.75 "" "" \
			"${MED[plain]}" "${MED[brandbos]}" "${peers[@]}"
	done
}

# ensure_rows VARIANT: its table holds exactly its rows, ids 1..n (loaded here when not)
ensure_rows() {
	local v=$1 n want
	want=$(rows_of "$v")
	n=$(bb_psql_value "$BENCH_CLUSTER" "SELECT count(*) FROM ${V_TABLE[$v]}")
	if [[ $n != "$want" ]]; then
		say "  loading $want rows into ${V_TABLE[$v]}"
		if [[ $v == vault ]]; then
			bb_psql "$BENCH_CLUSTER" -v rows="$want" -c "TRUNCATE vault.secrets" -f "$BENCH_DIR/vault_bulk.sql"
		else
			bb_psql "$BENCH_CLUSTER" -v tbl="${V_TABLE[$v]}" -v rows="$want" \
				-c "TRUNCATE ${V_TABLE[$v]} RESTART IDENTITY" -f "$BENCH_DIR/tce_bulk.sql"
		fi
	fi
}

# read_setup VARIANT...: load, vacuum and check the read relations of the variants: every
# value read is the 200-character token, and brandbos's table itself holds none
read_setup() {
	local v check
	for v in "$@"; do
		ensure_rows "$v"
		sql_exec "VACUUM ANALYZE ${V_TABLE[$v]}"
		check=$(bb_psql_value "$BENCH_CLUSTER" \
			"SELECT count(*) FILTER (WHERE length(refresh_token) = 200) FROM ${V_READ[$v]}")
		if [[ $check != "$(rows_of "$v")" ]]; then
			echo "bench: $v: $check of $(rows_of "$v") values read through ${V_READ[$v]} are the 200-character token" >&2
			return 1
		fi
	done
	check=$(bb_psql_value "$BENCH_CLUSTER" "SELECT count(*) FROM bench_tce WHERE length(refresh_token) = 200")
	if [[ $check != 0 ]]; then
		echo "bench: bench_tce holds $check raw tokens" >&2
		return 1
	fi
}

# C. reading every row through <table>_decrypted (and the peers' decrypting relations) against
# the same rows in the plaintext table; time scaled to BENCH_ROWS for the peers measured on a tenth
group_tce_read() {
	tce_setup
	local avail setting run v out ms
	mapfile -t avail < <(available "${TCE_VARIANTS[@]}")
	read_setup "${avail[@]}"
	for setting in $BENCH_SYNC; do
		set_sync "$setting"
		out=$(
			# one backend for every read: caches and the unwrapped keys are warm after the
			# first (untimed) pass; parallel query off so that each figure is one CPU's work
			{
				echo "SET max_parallel_workers_per_gather = 0;"
				for v in "${avail[@]}"; do
					echo "\\set rel ${V_READ[$v]}"
					echo "\\i $BENCH_DIR/tce_read.sql"
				done
				for (( run = 1; run <= READ_RUNS; run++ )); do
					for v in "${avail[@]}"; do
						echo "\\set rel ${V_READ[$v]}"
						timed_begin
						echo "\\i $BENCH_DIR/tce_read.sql"
						timed_end "$v"
					done
				done
			} | run_timed
		)
		say "  read times (ms), $(setting_name "$setting"): $(printf '%s\n' "$out" | tr '\n' ';' | sed 's/;/; /g')"
		MED=()
		for v in "${avail[@]}"; do
			ms=$(median_of "$v" <<<"$out")
			MED[$v]=$(awk -v ms="$ms" -v s="${V_SCALE[$v]:-1}" 'BEGIN { printf "%.3f\n", ms * s }')
		done
		local peers
		mapfile -t peers < <(peer_args "${TCE_VARIANTS[@]:2}")
		add_row "read $(( BENCH_ROWS / 1000 ))k rows decrypted, sum(length(token))" "$setting" 1 lo ms 2.0 "" "" \
			"${MED[plain]}" "${MED[brandbos]}" "${peers[@]}"
	done
}

POINT_VARIANTS=(plain brandbos pgsodium_tce pgsodium_det pgcrypto_aes pgcrypto_pgp)
point_reset() { :; }
point_args() { echo "point_read.sql ${V_READ[$1]} -D rows=$(rows_of "$1")"; }

# D. point read of one decrypted row by a random id, pgbench (Vault's ids are uuids: no row)
group_tce_point() {
	tce_setup
	local avail v plan
	mapfile -t avail < <(available "${POINT_VARIANTS[@]}")
	read_setup "${avail[@]}"
	for v in "${avail[@]}"; do
		plan=$(bb_psql_value "$BENCH_CLUSTER" "EXPLAIN (COSTS OFF) SELECT refresh_token FROM ${V_READ[$v]} WHERE id = 42")
		if ! grep -q 'Index Cond: (id = ' <<<"$plan"; then
			echo "bench: $v: the point read of ${V_READ[$v]} has no index condition on id:" >&2
			echo "$plan" >&2
			return 1
		fi
	done
	pgbench_rows "point read of one decrypted row by id" 0.95 "" point_reset point_args "${POINT_VARIANTS[@]}"
}

# ---------------------------------------------------------------------------------------------
# Row groups: the audit log (SPEC section 3)
# ---------------------------------------------------------------------------------------------

AUDIT_VARIANTS=(plain brandbos supa_audit pgaudit)
declare -A A_TABLE=([plain]=bench_aplain [brandbos]=bench_audited [supa_audit]=bench_supa [pgaudit]=bench_pgaudit)
AUDIT_RULE="supa_audit:4,pgaudit:1.0"

audit_setup() {
	require_setup audit
	if [[ -z ${MISSING[supa_audit]:-} ]]; then require_setup audit_supa; fi
	if [[ -z ${MISSING[pgaudit]:-} ]]; then require_setup audit_pgaudit; fi
}

audit_insert_reset() {
	local extra=""
	[[ $1 == supa_audit ]] && extra="TRUNCATE audit.record_version;"
	sql_exec "TRUNCATE ${A_TABLE[$1]} RESTART IDENTITY; $extra CHECKPOINT;"
}
audit_insert_args() { echo "audit_insert.sql ${A_TABLE[$1]}"; }

# audit_checks: the peers really audited what they were measured on; pgaudit logged its
# table's writes, and no other table's
audit_checks() {
	local n log
	if [[ -z ${MISSING[supa_audit]:-} ]]; then
		n=$(bb_psql_value "$BENCH_CLUSTER" "SELECT count(*) FROM audit.record_version WHERE table_name = 'bench_supa' AND op IN ('INSERT', 'UPDATE')")
		if [[ $n == 0 ]]; then
			echo "bench: supa_audit recorded nothing for bench_supa" >&2
			return 1
		fi
	fi
	if [[ -z ${MISSING[pgaudit]:-} ]]; then
		log=$(bb_logfile "$BENCH_CLUSTER")
		n=$(grep -c 'AUDIT: OBJECT,.*public\.bench_pgaudit' "$log" || true)
		if [[ $n == 0 ]] || grep 'AUDIT: ' "$log" | grep -vq 'public\.bench_pgaudit'; then
			echo "bench: pgaudit's server log lines are not those of bench_pgaudit alone ($n lines for it)" >&2
			return 1
		fi
		say "  pgaudit wrote $n AUDIT lines for bench_pgaudit to the server log so far"
	fi
}

# E. audited single-row INSERT against no audit, supa_audit and pgaudit
group_audit_insert() {
	audit_setup
	pgbench_rows "audited single-row INSERT" 0.90 "$AUDIT_RULE" audit_insert_reset audit_insert_args "${AUDIT_VARIANTS[@]}"
	audit_checks
}

audit_update_reset() { sql_exec "VACUUM ${A_TABLE[$1]}"; sql_exec "CHECKPOINT"; }
audit_update_args() { echo "audit_update.sql ${A_TABLE[$1]} -D rows=$UPDATE_ROWS"; }

# F. audited single-row UPDATE of a random one of UPDATE_ROWS rows
group_audit_update() {
	audit_setup
	local v
	for v in $(available "${AUDIT_VARIANTS[@]}"); do
		audit_insert_reset "$v"
		sql_exec "INSERT INTO ${A_TABLE[$v]} (user_id, note, amount)
		            SELECT g, 'bench note', 12.50 FROM generate_series(1, $UPDATE_ROWS) g"
	done
	pgbench_rows "audited single-row UPDATE" 0.90 "$AUDIT_RULE" audit_update_reset audit_update_args "${AUDIT_VARIANTS[@]}"
	audit_checks
}

# G. seal_audit() throughput on BENCH_ROWS committed rows
group_audit_seal() {
	require_setup audit
	local setting out ms rows check r per_s
	for setting in $BENCH_SYNC; do
		set_sync "$setting"
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
		per_s=$(awk -v n="$rows" -v ms="$ms" 'BEGIN { printf "%.0f\n", n / ms * 1000 }')
		say "  seal_audit of $rows rows: $(fmt_num "$ms" 1) ms ($per_s rows/s), verify_audit clean"
		add_row "seal_audit() of $rows committed rows (plain = the 1M rows/s target)" "$setting" 1 hi rows/s 1.00 "" "" \
			1000000 "$per_s"
	done
}

# ---------------------------------------------------------------------------------------------
# Row groups: tenant policies (SPEC section 4)
# ---------------------------------------------------------------------------------------------

TENANT_LOOPS=${BENCH_TENANT_LOOPS:-1000}	# counts per timing in the index row
TENANT_UID=""		# the uuid auth.uid() returns for tenant t0042's user (set by tenant_prepare)
TENANT_CLAIMS=""
declare -A T_TABLE=([plain]=bench_tenant_plain [brandbos]=bench_tenant_rls [current_setting]=bench_tenant_supa
					[auth_uid]=bench_tenant_uid [auth_uid_wrapped]=bench_tenant_uidw)

TENANT_TABLES=(bench_tenant_plain bench_tenant_rls bench_tenant_supa bench_tenant_uid bench_tenant_uidw)

# every tenant table all-visible, so that each side may plan an index-only scan: a VACUUM
# that ran while another transaction (the audit sealer, an earlier group) held a snapshot
# leaves pages not all-visible, and that side alone then reads the heap
tenant_all_visible() {
	local t try short
	for t in "${TENANT_TABLES[@]}"; do
		for (( try = 1; ; try++ )); do
			short=$(bb_psql_value "$BENCH_CLUSTER" "SELECT relpages - relallvisible FROM pg_class WHERE oid = '$t'::regclass")
			[[ $short == 0 ]] && break
			if (( try > 5 )); then
				echo "bench: $t stays $short pages short of all-visible after VACUUM" >&2
				return 1
			fi
			sleep 1
			sql_exec "VACUUM (ANALYZE) $t"
		done
	done
}

tenant_prepare() {
	require_setup tenant
	tenant_all_visible
	TENANT_UID=$(bb_psql_value "$BENCH_CLUSTER" "SELECT md5('t0042')::uuid")
	TENANT_CLAIMS="{\"sub\": \"$TENANT_UID\", \"role\": \"authenticated\", \"tenant_id\": \"t0042\"}"
}

# tenant_own SIDE: the condition that picks tenant t0042's rows of SIDE's table
tenant_own() {
	case $1 in
		auth_uid|auth_uid_wrapped) echo "user_id = '$TENANT_UID'" ;;
		*) echo "tenant_id = 't0042'" ;;
	esac
}

# psql text that opens a transaction on SIDE (plain | brandbos | current_setting | auth_uid |
# auth_uid_wrapped) for tenant t0042: the request context of that side, index scans off for
# MODE seq, and psql variables tbl and filter for tenant_count.sql / tenant_loop.sql.  The
# caller ends the transaction.
tenant_begin() {
	local side=$1 mode=$2
	echo "BEGIN;"
	if [[ $mode == seq ]]; then
		echo "SET LOCAL enable_indexscan = off;"
		echo "SET LOCAL enable_indexonlyscan = off;"
		echo "SET LOCAL enable_bitmapscan = off;"
	fi
	echo "\\set tbl ${T_TABLE[$side]}"
	case $side in
		plain)
			echo "\\set filter 'tenant_id = ''t0042'''" ;;
		brandbos)
			echo "SELECT brandbos.set_context('bench-user', 't0042') \\g /dev/null"
			echo "\\set filter true" ;;
		*)
			echo "SELECT set_config('request.jwt.claims', '$TENANT_CLAIMS', true) \\g /dev/null"
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

# tenant_check MODE SIDE...: every side counts the 1000 rows of t0042, and nothing else
tenant_check() {
	local mode=$1 side n
	shift
	for side in "$@"; do
		n=$({
			tenant_session
			tenant_begin "$side" "$mode"
			echo "SELECT count(*) FILTER (WHERE $(tenant_own "$side")) || '/' || count(*) FROM :\"tbl\" WHERE :filter;"
			echo "COMMIT;"
		} | bb_psql "$BENCH_CLUSTER" -At -f -)
		if [[ $n != 1000/1000 ]]; then
			echo "bench: $side ($mode scan) counts '$n' rows of t0042/all, expected 1000/1000" >&2
			return 1
		fi
	done
}

# tenant_times MODE LOOPS SIDE...: psql text of an untimed pass and READ_RUNS timed passes of
# every side, alternating; LOOPS is empty for one count (tenant_count.sql), else the loop count
# (tenant_loop.sql), as "SIDE=N" words to give a side its own
tenant_times() {
	local mode=$1 loops=$2 run side script=tenant_count.sql
	shift 2
	[[ -n $loops ]] && script=tenant_loop.sql
	tenant_session
	for (( run = 0; run <= READ_RUNS; run++ )); do
		for side in "$@"; do
			if [[ -n $loops ]]; then
				echo "\\set loops $(tenant_loops_of "$side" "$loops")"
			fi
			tenant_begin "$side" "$mode"
			(( run > 0 )) && timed_begin
			echo "\\i $BENCH_DIR/$script"
			(( run > 0 )) && timed_end "$side"
			echo "COMMIT;"
		done
	done
}

declare -A T_LOOPS=()
tenant_loops_of() { echo "${T_LOOPS[$1]:-$2}"; }

TENANT_SEQ_SIDES=(plain brandbos current_setting auth_uid auth_uid_wrapped)

# H. count(*) of one tenant's rows under the tenant policy, sequential scan
group_tenant_seq() {
	tenant_prepare
	tenant_check seq "${TENANT_SEQ_SIDES[@]}"
	local side plan note=""
	for side in "${TENANT_SEQ_SIDES[@]}"; do
		plan=$(tenant_plan "$side" seq)
		if ! grep -q 'Seq Scan' <<<"$plan" || grep -q 'Index' <<<"$plan"; then
			echo "bench: $side: expected a sequential scan, got:" >&2
			echo "$plan" >&2
			return 1
		fi
	done
	say "  plan under the brandbos policy: $(tr '\n' ' ' <<<"$(tenant_plan brandbos seq)" | sed 's/  */ /g')"
	if grep -Eq 'SubPlan|InitPlan' <<<"$(tenant_plan brandbos seq)"; then
		note="the plan holds a sub-plan"
	fi
	local quals
	quals=$(bb_psql_value "$BENCH_CLUSTER" "SELECT string_agg(coalesce(qual, '') || ' ' || coalesce(with_check, ''), ' ')
		FROM pg_policies WHERE tablename = 'bench_tenant_rls'")
	if grep -Eiq '\bselect\b' <<<"$quals"; then
		note+="${note:+; }a policy wraps its helper in (select ...)"
	fi
	local setting out
	for setting in $BENCH_SYNC; do
		set_sync "$setting"
		out=$(tenant_times seq "" "${TENANT_SEQ_SIDES[@]}" | run_timed)
		say "  seq scan count times (ms), $(setting_name "$setting"): $(printf '%s\n' "$out" | tr '\n' ';' | sed 's/;/; /g')"
		MED=()
		for side in "${TENANT_SEQ_SIDES[@]}"; do
			MED[$side]=$(median_of "$side" <<<"$out")
		done
		add_row "count(*) of 1 tenant in 1M rows under the tenant policy, seq scan" "$setting" 1 lo ms 1.1 "" "$note" \
			"${MED[plain]}" "${MED[brandbos]}" \
			"current_setting=${MED[current_setting]}" "auth_uid=${MED[auth_uid]}" \
			"auth_uid_wrapped=${MED[auth_uid_wrapped]}"
	done
}

TENANT_INDEX_SIDES=(plain brandbos auth_uid auth_uid_wrapped)

# I. the same count with the index on the tenant column: the helper must give an index
# condition; the auth.uid() peers use their index on user_id
group_tenant_index() {
	tenant_prepare
	tenant_check index "${TENANT_INDEX_SIDES[@]}"
	local plan_rls plan_plain note="" side plan
	plan_rls=$(tenant_plan brandbos index)
	plan_plain=$(tenant_plan plain index)
	say "  plan under the brandbos policy: $(tr '\n' ' ' <<<"$plan_rls" | sed 's/  */ /g')"
	say "  plan with the literal:          $(tr '\n' ' ' <<<"$plan_plain" | sed 's/  */ /g')"
	T_LOOPS=()
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
	local few=$(( TENANT_LOOPS >= 100 ? TENANT_LOOPS / 100 : 1 ))
	[[ -n $note ]] && T_LOOPS[brandbos]=$few
	for side in auth_uid auth_uid_wrapped; do
		plan=$(tenant_plan "$side" index)
		say "  plan under $side:  $(tr '\n' ' ' <<<"$plan" | sed 's/  */ /g')"
		grep -q 'Index Cond: (user_id = ' <<<"$plan" || T_LOOPS[$side]=$few
	done
	local setting out
	for setting in $BENCH_SYNC; do
		set_sync "$setting"
		out=$(tenant_times index "$TENANT_LOOPS" "${TENANT_INDEX_SIDES[@]}" | run_timed)
		say "  index count times (ms per timing), $(setting_name "$setting"): $(printf '%s\n' "$out" | tr '\n' ';' | sed 's/;/; /g')"
		MED=()
		for side in "${TENANT_INDEX_SIDES[@]}"; do
			MED[$side]=$(awk -v ms="$(median_of "$side" <<<"$out")" -v n="$(tenant_loops_of "$side" "$TENANT_LOOPS")" \
				'BEGIN { printf "%.3f\n", ms * 1000 / n }')
		done
		add_row "the same with an index on the tenant column (µs per count)" "$setting" 1 lo us 1.1 "" "$note" \
			"${MED[plain]}" "${MED[brandbos]}" \
			"auth_uid=${MED[auth_uid]}" "auth_uid_wrapped=${MED[auth_uid_wrapped]}"
	done
}

# ---------------------------------------------------------------------------------------------
# Row groups: deliberation bookkeeping (SPEC section 5)
# ---------------------------------------------------------------------------------------------

# empty both tables (DELETE on brandbos's side, so that the triggers zero the totals)
delib_reset() {
	sql_exec "DELETE FROM brandbos.contributions; TRUNCATE bench_contrib_plain RESTART IDENTITY;"
	sql_exec "VACUUM brandbos.contributions, brandbos.sessions, bench_contrib_plain"
	sql_exec "CHECKPOINT"
}
delib_args() { echo "deliberation_$1.sql bench_contrib_plain"; }

# J. add_contribution against a plain INSERT of the same values into an equivalent table,
# 50 sessions; both sides as the non-superuser bench_delib_app, each setting up its request the
# way its application would: brandbos.set_context, or request.jwt.claims without brandbos
group_deliberation() {
	require_setup deliberation
	PGB_CONNINFO="$(bb_conninfo "$BENCH_CLUSTER") user=bench_delib_app"
	pgbench_rows "add_contribution, 50 sessions, same request shape on both sides" 0.80 "" delib_reset delib_args plain add
	PGB_CONNINFO=""
	# the measured writes kept the totals exact (the last run of each setting x clients is add's)
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
say "brandbos benchmarks: groups ${selected[*]}; BENCH_SECONDS=$BENCH_SECONDS BENCH_ROWS=$BENCH_ROWS; synchronous_commit: $BENCH_SYNC; clients: $BENCH_CLIENTS"
for ext in pgsodium supabase_vault supa_audit pgaudit pgcrypto; do
	if [[ -n ${MISSING[$ext]:-} ]]; then say "peer $ext: missing: ${MISSING[$ext]}"; else say "peer $ext: ok"; fi
done
cluster_up
if [[ $(bb_psql_value "$BENCH_CLUSTER" "SELECT 1 FROM pg_available_extensions WHERE name = 'brandbos'") != 1 ]]; then
	echo "bench: brandbos is not installed (run make install, or make bench)" >&2
	exit 1
fi
pg_version=$(bb_psql_value "$BENCH_CLUSTER" "SHOW server_version")
peer_versions=$(bb_psql_value "$BENCH_CLUSTER" "SELECT string_agg(name || ' ' || default_version, ', ' ORDER BY name)
	FROM pg_available_extensions WHERE name IN ('pgsodium', 'supabase_vault', 'supa_audit', 'pgaudit', 'pgcrypto')")

for g in "${selected[@]}"; do
	say "group $g"
	"group_$g"
done
sql_exec "ALTER DATABASE bench RESET synchronous_commit"

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
	echo "- BENCH_SECONDS=$BENCH_SECONDS BENCH_ROWS=$BENCH_ROWS; pgbench runs: median of $PGBENCH_RUNS per variant, variants alternating; clients: $BENCH_CLIENTS"
	echo "- settings: durable = synchronous_commit on, sync off = synchronous_commit off (ALTER DATABASE)"
	printf -- '- cluster: %s\n' "$(printf '%s, ' "${BENCH_SETTINGS[@]}" | sed 's/, $//')"
	echo "- peers: ${peer_versions:-none installed}"
	for ext in pgsodium supabase_vault supa_audit pgaudit pgcrypto; do
		if [[ -n ${MISSING[$ext]:-} ]]; then echo "- missing peer $ext: ${MISSING[$ext]}"; fi
	done
	echo "- ratio to plain: brandbos / plain (tps, rows/s) or brandbos time / plain time (ms, µs);"
	echo "  brandbos / best peer: how many times better brandbos does than the best peer (> 1: ahead)"
	echo
	echo "| workload | setting | clients | plain | brandbos | ratio to plain | best peer (name: ratio) | brandbos / best peer | target | status |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${RESULT_ROWS[@]}"
	echo
	echo "Every peer (value, ratio to plain, brandbos / it):"
	echo
	printf '%s\n' "${PEER_LINES[@]}"
} >"$RESULTS_DIR/latest.md.tmp"
mv "$RESULTS_DIR/latest.md.tmp" "$RESULTS_DIR/latest.md"

echo
cat "$RESULTS_DIR/latest.md"
echo
say "done in ${elapsed}s; written to ${RESULTS_DIR#"$BB_ROOT"/}/latest.md"
FAILED=0
