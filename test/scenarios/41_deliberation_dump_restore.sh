#!/usr/bin/env bash
# 41_deliberation_dump_restore — pg_dump / pg_restore of the bookkeeping tables.
#
# The sessions arrive with their totals and statuses; the triggers must neither add the
# restored contributions to the totals again nor refuse the contributions of ended
# sessions (pg_restore runs with row_security = off, which the triggers take as "rows
# being loaded as they are").  Afterwards the triggers work as before.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C=s41_delib_restore
sc_cluster "$C" 55541 no
DIR=$(bb_clusterdir "$C")
SOCK=$(bb_sockdir "$C")
PORT=$(bb_port "$C")
pgtool() { bb_run_as_pg "$@" -h "$SOCK" -p "$PORT" -U postgres; }
in_db() { local db=$1; shift; BB_DB=$db "$@"; }

bb_psql "$C" -c 'CREATE DATABASE src' >/dev/null
in_db src bb_psql "$C" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
SELECT brandbos.seed_personas('[{"code": "cfo", "name": "CFO", "expertise": "finance", "system_prompt": "p"},
                                {"code": "cto", "name": "CTO", "expertise": "tech", "system_prompt": "p"}]');
BEGIN;
SELECT brandbos.set_context('u1', 't1');
SELECT brandbos.start_session('done one', NULL, 5, 10) AS s1 \gset
SELECT brandbos.add_contribution(:'s1', 'cfo', 'a', 'initial_round', 0.0100, 100, 'm');
SELECT brandbos.add_contribution(:'s1', 'cto', 'b', 'initial_round', 0.0200, 200, 'm');
SELECT brandbos.cast_vote(:'s1', 'cfo', 'yes', 'r', 0.9);
SELECT brandbos.complete_session(:'s1');
SELECT brandbos.start_session('open one') AS s2 \gset
SELECT brandbos.add_contribution(:'s2', 'cfo', 'c', 'initial_round', 0.0300, 300, 'm');
SELECT brandbos.start_session('killed one') AS s3 \gset
SELECT brandbos.add_contribution(:'s3', 'cto', 'd', 'initial_round', 0.0400, 400, 'm');
SELECT brandbos.kill_session(:'s3', 'runaway');
COMMIT;
SQL
snapshot="SELECT string_agg(id || ':' || status || ':' || total_cost || ':' || total_tokens, ',' ORDER BY problem_statement) FROM brandbos.sessions"
src_state=$(in_db src bb_psql_value "$C" "$snapshot")

pgtool pg_dump -Fc -f "$DIR/src.dump" src
pgtool createdb dst
out=$(pgtool pg_restore -d dst "$DIR/src.dump" 2>&1) && rc=0 || rc=$?
assert_eq "pg_restore exits 0" 0 "$rc"
assert_eq "pg_restore printed nothing" "" "$out"
assert_eq "sessions, statuses and totals are restored unchanged" "$src_state" \
	"$(in_db dst bb_psql_value "$C" "$snapshot")"
assert_eq "every contribution and vote is restored" "4|1" \
	"$(in_db dst bb_psql_value "$C" "SELECT (SELECT count(*) FROM brandbos.contributions) || '|' || (SELECT count(*) FROM brandbos.votes)")"
assert_eq "totals equal the sums of the restored contributions" 0 \
	"$(in_db dst bb_psql_value "$C" "SELECT count(*) FROM brandbos.sessions s WHERE total_cost <> (SELECT coalesce(sum(cost), 0) FROM brandbos.contributions c WHERE c.session_id = s.id) OR total_tokens <> (SELECT coalesce(sum(tokens), 0) FROM brandbos.contributions c WHERE c.session_id = s.id)")"

# after the restore the bookkeeping works as before
s2=$(in_db dst bb_psql_value "$C" "SELECT id FROM brandbos.sessions WHERE problem_statement = 'open one'")
in_db dst bb_psql "$C" >/dev/null <<SQL
BEGIN;
SELECT brandbos.set_context('u1', 't1');
SELECT brandbos.add_contribution('$s2', 'cto', 'e', 'deliberation', 0.0050, 50, 'm');
COMMIT;
SQL
assert_eq "a new contribution after the restore adds to the restored total once" "0.0350|350" \
	"$(in_db dst bb_psql_value "$C" "SELECT total_cost || '|' || total_tokens FROM brandbos.sessions WHERE id = '$s2'")"
s1=$(in_db dst bb_psql_value "$C" "SELECT id FROM brandbos.sessions WHERE problem_statement = 'done one'")
out=$(in_db dst bb_psql "$C" -v VERBOSITY=verbose 2>&1 <<SQL || true
BEGIN;
SELECT brandbos.set_context('u1', 't1');
SELECT brandbos.add_contribution('$s1', 'cfo', 'x', 'synthesis', 0, 0, 'm');
ROLLBACK;
SQL
)
assert_match "a completed session still refuses contributions (55000)" 'ERROR: +55000' "$out"
sc_finish
