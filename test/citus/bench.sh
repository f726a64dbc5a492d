#!/usr/bin/env bash
# make bench-citus: the Citus row of the benchmarks (issue #15), on the three-node cluster of
# test/citus/lib.sh.  A tenant-routed single-row INSERT through the coordinator into a
# distributed table with a protected 200-byte token, against the same INSERT into the same
# table shape without brandbos (no protected column), same cluster, same run: pgbench at 2
# clients, both settings (synchronous_commit on / off), variants alternating, median of
# BENCH_RUNS.  Prints a markdown table; the target is the single-node one (>= 0.90x).
#
# Knobs: BENCH_SECONDS (default 10), BENCH_RUNS (default 3), BENCH_CLIENTS (default 2).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export PGBIN
PG_CONFIG=${PG_CONFIG:-$PGBIN/pg_config} "$here/build.sh"
export BB_WORK=${BB_WORK:-$root/tmp_check/citus-bench}
mkdir -p "$BB_WORK"
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_CLIENTS=${BENCH_CLIENTS:-2}
for knob in BENCH_SECONDS BENCH_RUNS BENCH_CLIENTS; do
	[[ ${!knob} =~ ^[1-9][0-9]*$ ]] || { echo "bench-citus: $knob must be a positive integer" >&2; exit 2; }
done

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
ct_cluster "max_connections = 200"
say() { printf '[bench-citus %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

ct_psql coord \
	-c "CREATE TABLE plain_tokens (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id))" \
	-c "SELECT create_distributed_table('plain_tokens', 'tenant_id')" \
	-c "CREATE TABLE tokens (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id))" \
	-c "SELECT create_distributed_table('tokens', 'tenant_id')" >/dev/null
protect_state=$(ct_sqlstate coord "SELECT brandbos.protect_column('tokens', 'token')")
if [[ $protect_state != 00000 ]]; then
	say "protect_column on a distributed table: $protect_state ($(ct_try coord "SELECT brandbos.protect_column('tokens', 'token')" | grep -m1 ERROR))"
fi

dir=$BB_WORK/scripts
mkdir -p "$dir"
for t in plain_tokens tokens; do
	# a tenant out of 1000, its uuid made on the coordinator (constant folded, so routed to one shard)
	cat >"$dir/$t.sql" <<EOF
\\set t random(1, 1000)
\\set id random(1, 9000000000000000)
INSERT INTO $t VALUES (md5(:t::text)::uuid, :id, repeat('r', 180) || lpad(:id::text, 20, '0')) ON CONFLICT DO NOTHING;
EOF
done

# tps SCRIPT: one pgbench run against the coordinator, prints its tps (whole)
tps() {
	"$PGBIN/pgbench" -n -h 127.0.0.1 -p "$(bb_port coord)" -U postgres \
		-c "$BENCH_CLIENTS" -j "$BENCH_CLIENTS" -T "$BENCH_SECONDS" -f "$dir/$1.sql" "$BB_DB" 2>/dev/null |
		sed -nE 's/^tps = ([0-9]+).*/\1/p'
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

rows=()
for sync in on off; do
	for n in coord w1 w2; do	# every node: the worker commits the row
		ct_psql "$n" -c "ALTER SYSTEM SET synchronous_commit = $sync" -c "SELECT pg_reload_conf()" >/dev/null
	done
	sleep 1
	plain=() prot=()
	for ((r = 1; r <= BENCH_RUNS; r++)); do
		plain+=("$(tps plain_tokens)")
		if [[ $protect_state == 00000 ]]; then prot+=("$(tps tokens)"); fi
		say "sync=$sync run $r: plain ${plain[-1]} tps${prot:+, protected ${prot[-1]} tps}"
	done
	p=$(median "${plain[@]}")
	if [[ $protect_state == 00000 ]]; then
		q=$(median "${prot[@]}")
		ratio=$(awk -v a="$q" -v b="$p" 'BEGIN { printf "%.2f", a / b }')
		status=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.90) ? "PASS" : "MISS" }')
		rows+=("| tenant-routed protected INSERT via the coordinator, $BENCH_CLIENTS clients, synchronous_commit=$sync | ${p} tps plain | ${q} tps | ${ratio}x | >= 0.90x | $status |")
	else
		rows+=("| tenant-routed protected INSERT via the coordinator, $BENCH_CLIENTS clients, synchronous_commit=$sync | ${p} tps plain | n/a (protect_column: $protect_state) | n/a | >= 0.90x | MISS |")
	fi
done
echo
echo "| benchmark | baseline | measured | ratio | target | status |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
SC_FINISHED=1
