#!/usr/bin/env bash
# 40_deliberation_concurrency — session totals stay exact under concurrent writers (SPEC
# section 5, issue #5).  Everything runs as a non-superuser application role `app` (member
# of brandbos_context_admin) inside request contexts of user u1 / tenant t1.
#
#   1. pgbench, 2 clients x 500 transactions, each: set_context + add_contribution(cost
#      0.0123, tokens random 1..100) on one session (budget NULL, max_rounds 10).  Exactly
#      1000 contributions; total_cost and total_tokens equal the sums of the rows (and
#      total_cost = 1000 * 0.0123); pgbench reports no failed transaction.
#   2. pgbench, 2 clients x 500 transactions of direct DML on brandbos.contributions: an
#      INSERT, a DELETE of the oldest contribution, an UPDATE of cost and tokens.  The
#      totals still equal the sums of the remaining rows.
#   3. a session with budget 0.5, two concurrent psql sessions each trying 10 times to add
#      a contribution of cost 0.1, one transaction per try: exactly 5 succeed, the other 15
#      fail with 23514, total_cost = 0.5000.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C=s40_deliberation
sc_cluster "$C" 55540 no
DIR=$(bb_clusterdir "$C")

# psql and pgbench as the application role (non-superuser: RLS applies to it)
app_psql() {
	bb_run_as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(bb_sockdir "$C")" -p "$(bb_port "$C")" \
		-U app -d postgres "$@"
}
app_pgbench() {
	PGHOST=$(bb_sockdir "$C") PGPORT=$(bb_port "$C") PGUSER=app \
		bb_run_as_pg "$PGBIN/pgbench" -n "$@" postgres
}
q() { bb_psql_value "$C" "$1"; }

bb_psql "$C" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE ROLE app LOGIN;
GRANT brandbos_context_admin TO app;
-- phase 2 writes the table directly (PUBLIC holds no INSERT, UPDATE or DELETE on it)
GRANT INSERT, UPDATE, DELETE ON brandbos.contributions TO app;
GRANT USAGE ON SEQUENCE brandbos.contributions_id_seq TO app;
SQL

# ---- set-up as app: personas and the session ------------------------------------------------
seeded=$(app_psql -At -c "SELECT brandbos.seed_personas('[
	{\"code\": \"cfo\", \"name\": \"Cal\", \"expertise\": \"money\"},
	{\"code\": \"growth\", \"name\": \"Zara\", \"expertise\": \"growth\"},
	{\"code\": \"ethics\", \"name\": \"Eve\", \"system_prompt\": \"Be good.\"}]')")
assert_eq "app seeds 3 personas" 3 "$seeded"

SID=$(app_psql -At <<'SQL'
BEGIN;
SELECT brandbos.set_context('u1', 't1') \g /dev/null
SELECT brandbos.start_session('How do we price the product?', NULL, 10, NULL);
COMMIT;
SQL
)
assert_match "app starts a session as u1/t1 (budget NULL, max_rounds 10)" '^[0-9a-f-]{36}$' "$SID"
assert_eq "the session belongs to u1/t1, budget NULL, max_rounds 10" "u1|t1|true|10|0.0000|0" \
	"$(q "SELECT user_id || '|' || tenant_id || '|' || (budget IS NULL) || '|' || max_rounds || '|'
	         || total_cost || '|' || total_tokens FROM brandbos.sessions WHERE id = '$SID'")"

# ---- 1. two concurrent writers through add_contribution ------------------------------------
cat >"$DIR/add.sql" <<SQL
\set tok random(1, 100)
\set p random(1, 3)
BEGIN;
SELECT brandbos.set_context('u1', 't1');
SELECT brandbos.add_contribution('$SID', (ARRAY['cfo', 'growth', 'ethics'])[:p],
       'contribution of client ' || :client_id, 'initial_round', 0.0123, :tok, 'model-x');
COMMIT;
SQL
chmod 0644 "$DIR/add.sql"

t0=$(date +%s.%N)
rc=0
app_pgbench -c 2 -j 2 -t 500 -f "$DIR/add.sql" >"$DIR/pgbench_add.out" 2>&1 || rc=$?
diag "add_contribution run: $(awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f s", t1 - t0 }');" \
	"$(grep -E '^(tps|latency average)' "$DIR/pgbench_add.out" | tr '\n' ' ')"
assert_eq "pgbench (2 clients x 500 add_contribution transactions) exits 0" 0 "$rc"
if (( rc != 0 )); then diag "$(tail -n 20 "$DIR/pgbench_add.out")"; fi
assert_eq "pgbench processed 1000 transactions" 1000 \
	"$(awk '/^number of transactions actually processed:/ { split($NF, a, "/"); print a[1] }' "$DIR/pgbench_add.out")"
assert_eq "pgbench reports 0 failed transactions" 0 \
	"$(awk '/^number of failed transactions:/ { print $5 }' "$DIR/pgbench_add.out")"

assert_eq "exactly 1000 contributions" 1000 \
	"$(q "SELECT count(*) FROM brandbos.contributions WHERE session_id = '$SID'")"
assert_eq "every contribution carries u1/t1, round 1, cost 0.0123" 1000 \
	"$(q "SELECT count(*) FROM brandbos.contributions WHERE session_id = '$SID' AND user_id = 'u1'
	         AND tenant_id = 't1' AND round_number = 1 AND cost = 0.0123")"
assert_eq "total_cost = sum(cost) = 1000 * 0.0123 = 12.3000" "12.3000|12.3000" \
	"$(q "SELECT s.total_cost || '|' || (SELECT sum(cost) FROM brandbos.contributions c WHERE c.session_id = s.id)
	        FROM brandbos.sessions s WHERE id = '$SID'")"
sum_tok=$(q "SELECT sum(tokens) FROM brandbos.contributions WHERE session_id = '$SID'")
assert_eq "total_tokens = sum(tokens) ($sum_tok)" "$sum_tok" \
	"$(q "SELECT total_tokens FROM brandbos.sessions WHERE id = '$SID'")"
cmp=$(q "SELECT count(DISTINCT tokens) > 50 FROM brandbos.contributions WHERE session_id = '$SID'")
assert_eq "tokens vary (random 1..100)" t "$cmp"
assert_eq "both clients wrote contributions" 2 \
	"$(q "SELECT count(DISTINCT content) FROM brandbos.contributions WHERE session_id = '$SID'")"
assert_eq "app sees its 1000 contributions under RLS in its context" 1000 \
	"$(app_psql -At -c "BEGIN" -c "SELECT brandbos.set_context('u1', 't1')" \
		-c "SELECT count(*) FROM brandbos.contributions" -c "COMMIT" | tail -n 1)"

# ---- 2. direct INSERT / DELETE / UPDATE from two concurrent clients -------------------------
cat >"$DIR/ins.sql" <<SQL
\set tok random(1, 100)
\set c random(1, 999)
BEGIN;
SELECT brandbos.set_context('u1', 't1');
INSERT INTO brandbos.contributions (session_id, persona_code, content, phase, cost, tokens, model)
VALUES ('$SID', 'growth', 'direct insert', 'initial_round', :c / 10000.0, :tok, 'model-y');
COMMIT;
SQL
cat >"$DIR/del.sql" <<SQL
BEGIN;
SELECT brandbos.set_context('u1', 't1');
DELETE FROM brandbos.contributions
 WHERE id = (SELECT min(id) FROM brandbos.contributions WHERE session_id = '$SID');
COMMIT;
SQL
cat >"$DIR/upd.sql" <<SQL
\set tok random(0, 500)
\set c random(0, 999)
\set k random(1, 1000000)
BEGIN;
SELECT brandbos.set_context('u1', 't1');
UPDATE brandbos.contributions SET cost = :c / 10000.0, tokens = :tok
 WHERE id = (SELECT max(id) FROM brandbos.contributions WHERE session_id = '$SID' AND id % 7 = :k % 7);
COMMIT;
SQL
chmod 0644 "$DIR/ins.sql" "$DIR/del.sql" "$DIR/upd.sql"

rc=0
app_pgbench -c 2 -j 2 -t 500 -f "$DIR/ins.sql@4" -f "$DIR/del.sql@3" -f "$DIR/upd.sql@3" \
	>"$DIR/pgbench_dml.out" 2>&1 || rc=$?
diag "direct DML run: $(grep -E '^(tps|latency average)' "$DIR/pgbench_dml.out" | tr '\n' ' ')"
assert_eq "pgbench (2 clients x 500 INSERT / DELETE / UPDATE transactions) exits 0" 0 "$rc"
if (( rc != 0 )); then diag "$(tail -n 20 "$DIR/pgbench_dml.out")"; fi
assert_eq "pgbench reports 0 failed DML transactions" 0 \
	"$(awk '/^number of failed transactions:/ { print $5 }' "$DIR/pgbench_dml.out")"
n_ins=$(q "SELECT count(*) FROM brandbos.contributions WHERE session_id = '$SID' AND content = 'direct insert'")
n_all=$(q "SELECT count(*) FROM brandbos.contributions WHERE session_id = '$SID'")
diag "after the DML run: $n_all contributions, $n_ins of them inserted directly"
cmp_ok=$(( n_ins > 100 && n_all < 1000 + n_ins ))
assert_eq "the run inserted and deleted rows" 1 "$cmp_ok"
assert_eq "total_cost = sum(cost) after direct INSERT / DELETE / UPDATE" t \
	"$(q "SELECT s.total_cost = (SELECT coalesce(sum(cost), 0) FROM brandbos.contributions c WHERE c.session_id = s.id)
	        FROM brandbos.sessions s WHERE id = '$SID'")"
assert_eq "total_tokens = sum(tokens) after direct INSERT / DELETE / UPDATE" t \
	"$(q "SELECT s.total_tokens = (SELECT coalesce(sum(tokens), 0) FROM brandbos.contributions c WHERE c.session_id = s.id)
	        FROM brandbos.sessions s WHERE id = '$SID'")"
diag "totals: $(q "SELECT total_cost || ' / ' || total_tokens FROM brandbos.sessions WHERE id = '$SID'")"
assert_eq "inserted rows got owner, tenant and round from the session" "$n_ins" \
	"$(q "SELECT count(*) FROM brandbos.contributions WHERE session_id = '$SID' AND content = 'direct insert'
	         AND user_id = 'u1' AND tenant_id = 't1' AND round_number = 1")"

# ---- 3. the budget under two concurrent writers ---------------------------------------------
BSID=$(app_psql -At <<'SQL'
BEGIN;
SELECT brandbos.set_context('u1', 't1') \g /dev/null
SELECT brandbos.start_session('A budgeted question', NULL, 10, 0.5);
COMMIT;
SQL
)
assert_match "a session with budget 0.5" '^[0-9a-f-]{36}$' "$BSID"
# one transaction per try; the function returns the try's SQLSTATE (00000 on success) and
# holds the session's row lock a little, so that the two writers queue on each other
# shellcheck disable=SC2016   # dollar quotes are SQL
bb_psql "$C" >/dev/null <<'SQL'
CREATE FUNCTION public.try_add(sid text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM brandbos.add_contribution(sid, 'cfo', 'budget try', 'initial_round', 0.1, 10, 'model-z');
	PERFORM pg_sleep(0.005);
	RETURN '00000';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END $$;
GRANT EXECUTE ON FUNCTION public.try_add(text) TO app;
SQL
tries() {
	local i
	for ((i = 0; i < 10; i++)); do
		echo "BEGIN;"
		echo "SELECT brandbos.set_context('u1', 't1') \\g /dev/null"
		echo "SELECT public.try_add('$BSID');"
		echo "COMMIT;"
	done
}
tries >"$DIR/tries.sql"
chmod 0644 "$DIR/tries.sql"
(app_psql -At -f "$DIR/tries.sql" >"$DIR/tries.1.out" 2>&1 || echo "psql failed" >>"$DIR/tries.1.out") &
w1=$!
(app_psql -At -f "$DIR/tries.sql" >"$DIR/tries.2.out" 2>&1 || echo "psql failed" >>"$DIR/tries.2.out") &
w2=$!
wait "$w1" "$w2"
results=$(cat "$DIR/tries.1.out" "$DIR/tries.2.out")
diag "writer 1: $(tr '\n' ' ' <"$DIR/tries.1.out")" "writer 2: $(tr '\n' ' ' <"$DIR/tries.2.out")"
assert_eq "20 tries ran" 20 "$(grep -cE '^[0-9A-Z]{5}$' <<<"$results" || true)"
assert_eq "exactly 5 tries succeeded" 5 "$(grep -c '^00000$' <<<"$results" || true)"
assert_eq "the other 15 failed with 23514" 15 "$(grep -c '^23514$' <<<"$results" || true)"
assert_eq "total_cost = 0.5000 = sum(cost), 5 contributions" "0.5000|0.5000|5" \
	"$(q "SELECT s.total_cost || '|' || sum(c.cost) || '|' || count(c.id)
	        FROM brandbos.sessions s LEFT JOIN brandbos.contributions c ON c.session_id = s.id
	       WHERE s.id = '$BSID' GROUP BY s.total_cost")"

errors=$(grep -E 'PANIC|FATAL|server process .* terminated' "$(bb_logfile "$C")" || true)
assert_eq "the server log has no FATAL, PANIC or crashed backend" "" "$errors"

sc_finish
