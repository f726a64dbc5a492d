#!/usr/bin/env bash
# 30_pooler_context_leak — the request context never outlives its transaction (SPEC section 4),
# as a transaction-pooling connection pooler (PgBouncer, Supavisor) needs: one server
# connection serves request after request of different tenants.
#
# A non-superuser application role `app` (member of brandbos_context_admin) reads a table
# under brandbos.enable_tenant_isolation; tenant tK owns 10*K rows.
#   1. one psql session runs 300 transactions: set_context / authenticate for alternating
#      tenants, committed, rolled back, failed, with savepoints, COMMIT AND CHAIN, admin
#      contexts (after SET LOCAL ROLE to a brandbos_tenant_admin role), and
#      transactions without any context; after every transaction an autocommit probe must
#      see no row, NULL helpers and the login role.  set_request metadata must not leak.
#   2. set_context / authenticate outside a transaction block fail with 25P01.
#   3. pgbench, 2 clients, prepared statements: scripts alternate tenants per transaction
#      (set_context + an INSERT with the default tenant, authenticate) or use no context; a
#      PL/pgSQL check raises when a row of another tenant is visible.  Zero failures.
#   4. the context cannot be smuggled in through PGOPTIONS or ALTER ROLE ... SET.
#   5. no token and no JWT secret in the server log after refused tokens.
#   6. without brandbos.jwt_secret_file and without a root key, authenticate fails with 55000;
#      with the secret and no root key it works.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C=s30_pooler
sc_cluster "$C" 55530 yes
sc_helpers "$C"
DIR=$(bb_clusterdir "$C")
SECRET="s30-$(head -c 24 /dev/urandom | od -An -v -tx1 | tr -d ' \n')"
sc_write_secret "$DIR/jwt.secret" "$SECRET"
sc_conf_set "$C" brandbos.jwt_secret_file "$DIR/jwt.secret"
bb_cluster_restart "$C"
assert_eq "brandbos.jwt_secret_file is set from postgresql.conf" "$DIR/jwt.secret" \
	"$(bb_psql_value "$C" "SELECT current_setting('brandbos.jwt_secret_file')")"

# psql as the application role (non-superuser: superusers bypass RLS)
app_psql() {
	bb_run_as_pg "$PGBIN/psql" -X -q -h "$(bb_sockdir "$C")" -p "$(bb_port "$C")" -U app -d postgres "$@"
}

# shellcheck disable=SC2016   # dollar quotes are SQL
bb_psql "$C" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE ROLE app LOGIN;
GRANT brandbos_context_admin TO app;
-- admin requests: app switches to ops (SET LOCAL ROLE) before setting an admin context
-- (app inherits ops's privileges, as PostgreSQL 15 role membership goes; the pgTAP file
-- 51_tenant_policies shows that an admin app role alone crosses nothing)
CREATE ROLE ops NOLOGIN;
GRANT brandbos_context_admin, brandbos_tenant_admin TO ops;
GRANT ops TO app;
CREATE TABLE items (id serial PRIMARY KEY, tenant_id text, v int);
INSERT INTO items (tenant_id, v)
	SELECT 't' || k, g FROM generate_series(1, 5) k, generate_series(1, 10 * k) g;
SELECT brandbos.enable_tenant_isolation('items');
GRANT SELECT, INSERT, UPDATE, DELETE ON items TO app, ops;
GRANT USAGE ON SEQUENCE items_id_seq TO app;

CREATE TABLE tokens (t int PRIMARY KEY, tok text NOT NULL);
INSERT INTO tokens
	SELECT k, brandbos.sign_token(jsonb_build_object('sub', 'user' || k, 'tenant_id', 't' || k), '1 day')
	  FROM generate_series(1, 5) k;
CREATE TABLE bad_tokens (k text PRIMARY KEY, tok text NOT NULL);
INSERT INTO bad_tokens VALUES
	('expired', brandbos.sign_token(jsonb_build_object('sub', 'user1', 'tenant_id', 't1',
	                                                   'exp', extract(epoch FROM now())::bigint - 3600))),
	('forged', (SELECT left(tok, length(tok) - 6) || 'AAAAAA' FROM tokens WHERE t = 2));
GRANT SELECT ON tokens, bad_tokens TO app;

-- raises when the transaction sees anything but tenant t<t>'s rows
CREATE FUNCTION check_tenant(t int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
	foreign_rows bigint;
BEGIN
	IF brandbos.current_tenant_id() IS DISTINCT FROM 't' || t THEN
		RAISE EXCEPTION 'context leak: tenant is %, expected t%', brandbos.current_tenant_id(), t;
	END IF;
	SELECT count(*), count(*) FILTER (WHERE tenant_id IS DISTINCT FROM 't' || t)
	  INTO n, foreign_rows FROM items;
	IF foreign_rows > 0 OR n < 10 * t THEN
		RAISE EXCEPTION 'tenant leak: t% sees % rows, % of another tenant', t, n, foreign_rows;
	END IF;
	RETURN n;
END
$$;
-- raises when a transaction without context sees any row or any context
CREATE FUNCTION check_none() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	SELECT count(*) INTO n FROM items;
	IF n > 0 OR brandbos.current_tenant_id() IS NOT NULL OR brandbos.current_user_id() IS NOT NULL
	   OR brandbos.claims() IS NOT NULL THEN
		RAISE EXCEPTION 'context leak: no context, but % rows and tenant %', n, brandbos.current_tenant_id();
	END IF;
	RETURN n;
END
$$;
SQL

# ---- 1. one session, 300 transactions ------------------------------------------------------
N=300
SCRIPT=$DIR/session.sql
EXPECTED=$DIR/session.expected
: >"$SCRIPT"
: >"$EXPECTED"
errors_expected=0

emit() { printf '%s\n' "$@" >>"$SCRIPT"; }
probe() {
	emit "SELECT '$1', count(*), coalesce(string_agg(DISTINCT tenant_id, ','), '-'),
	         coalesce(brandbos.current_tenant_id(), '-'), coalesce(brandbos.current_user_id(), '-') FROM items;"
}
want() { echo "$1|$((10 * $2))|t$2|t$2|user$2" >>"$EXPECTED"; }
want_none() { echo "$1|0|-|-|-" >>"$EXPECTED"; }
want_admin() { echo "$1|$((10 * $2))|t$2|t$2|$3" >>"$EXPECTED"; }
ctx() { emit "SELECT brandbos.set_context('user$1', 't$1') \\g /dev/null"; }
auth() { emit "SELECT brandbos.authenticate(tok) FROM tokens WHERE t = $1 \\g /dev/null"; }

emit '\set ON_ERROR_STOP 0'
probe P0; want_none P0
for ((i = 1; i <= N; i++)); do
	k=$(( (i * 7) % 5 + 1 ))
	k2=$(( k % 5 + 1 ))
	case $(( i % 10 )) in
		0|1|2)	# set_context, COMMIT
			emit 'BEGIN;'; ctx "$k"; probe "L$i"; want "L$i" "$k"; emit 'COMMIT;' ;;
		3)		# authenticate, COMMIT
			emit 'BEGIN;'; auth "$k"; probe "L$i"; want "L$i" "$k"; emit 'COMMIT;' ;;
		4)		# an explicit transaction without context
			emit 'BEGIN;'; probe "L$i"; want_none "L$i"; emit 'COMMIT;' ;;
		5)		# set_context, ROLLBACK
			emit 'BEGIN;'; ctx "$k"; probe "L$i"; want "L$i" "$k"; emit 'ROLLBACK;' ;;
		6)		# set_context, an error, ROLLBACK
			emit 'BEGIN;'; ctx "$k"; probe "L$i"; want "L$i" "$k"
			emit 'SELECT 1 / 0;' 'ROLLBACK;'
			errors_expected=$((errors_expected + 1)) ;;
		7)		# a nested context rolled back to its savepoint
			emit 'BEGIN;'; ctx "$k"; emit 'SAVEPOINT s;'; ctx "$k2"
			probe "L${i}b"; want "L${i}b" "$k2"
			emit 'ROLLBACK TO SAVEPOINT s;'; probe "L$i"; want "L$i" "$k"; emit 'COMMIT;' ;;
		8)		# COMMIT AND CHAIN: the chained transaction starts without context
			emit 'BEGIN;'; ctx "$k"; probe "L${i}a"; want "L${i}a" "$k"
			emit 'COMMIT AND CHAIN;'; probe "L$i"; want_none "L$i"; emit 'COMMIT;' ;;
		9)		# admin contexts, or authenticate then set_context
			case $(( i % 30 )) in
				9)	# SET LOCAL ROLE to a brandbos_tenant_admin role, service_role: still its own tenant only
					emit 'BEGIN;' 'SET LOCAL ROLE ops;' \
						"SELECT brandbos.set_context('root', 't$k', 'service_role') \\g /dev/null"
					probe "L$i"; want_admin "L$i" "$k" root; emit 'COMMIT;' ;;
				19)	# the tenant admin role with an ordinary context: its own tenant only
					emit 'BEGIN;' 'SET LOCAL ROLE ops;' "SELECT brandbos.set_context('user$k', 't$k') \\g /dev/null"
					probe "L$i"; want "L$i" "$k"; emit 'COMMIT;' ;;
				*)
					emit 'BEGIN;'; auth "$k"; ctx "$k2"; probe "L$i"; want "L$i" "$k2"; emit 'COMMIT;' ;;
			esac ;;
	esac
	# the pooler hands the connection to the next client: an autocommit probe
	probe "P$i"; want_none "P$i"
	emit "SELECT 'R$i', current_user;"; echo "R$i|app" >>"$EXPECTED"
done
# request metadata (set_request) is transaction-local too
emit 'BEGIN;' "SELECT brandbos.set_context('user3', 't3') \\g /dev/null" \
	"SELECT brandbos.set_request('198.51.100.9', 'leaky-agent/1.0') \\g /dev/null" \
	"SELECT brandbos.log_event('s30_with_request', 'pooler') \\g /dev/null" 'COMMIT;' \
	"SELECT brandbos.log_event('s30_after_request', 'pooler') \\g /dev/null"

got_rc=0
app_psql -At -F '|' -f - <"$SCRIPT" >"$DIR/session.out" 2>"$DIR/session.err" || got_rc=$?
assert_eq "the 300-transaction session ran to its end" 0 "$got_rc"
assert_eq "the session printed one line per probe ($(wc -l <"$EXPECTED") lines)" \
	"$(wc -l <"$EXPECTED" | tr -d ' ')" "$(wc -l <"$DIR/session.out" | tr -d ' ')"
if diff -u "$EXPECTED" "$DIR/session.out" >"$DIR/session.diff"; then
	pass "every transaction saw exactly its own tenant's rows, and every probe after it saw nothing"
else
	fail "every transaction saw exactly its own tenant's rows, and every probe after it saw nothing" \
		"$(head -n 40 "$DIR/session.diff")"
fi
assert_eq "the session's only errors were the $errors_expected intended divisions by zero" \
	"$errors_expected errors, $errors_expected divisions by zero" \
	"$(grep -c ERROR "$DIR/session.err" || true) errors, $(grep -c 'division by zero' "$DIR/session.err" || true) divisions by zero"
if grep -v 'division by zero' "$DIR/session.err" | grep -q ERROR; then
	diag "$(grep -v 'division by zero' "$DIR/session.err" | grep ERROR | head -n 5)"
fi
assert_eq "set_request metadata and the context stay in their transaction (audit rows)" \
	"s30_with_request|t3|user3|198.51.100.9|leaky-agent/1.0;s30_after_request|-|-|-|-" \
	"$(sc_try "$C" "SELECT string_agg(concat_ws('|', action, coalesce(tenant_id, '-'), coalesce(user_id, '-'),
	                        coalesce(host(ip_address), '-'), coalesce(user_agent, '-')), ';' ORDER BY id)
	                  FROM brandbos.audit_log WHERE resource_type = 'pooler'")"

# ---- 2. outside a transaction block: 25P01 -------------------------------------------------
out=$(app_psql -v VERBOSITY=verbose -At -c "SELECT brandbos.set_context('user1', 't1')" 2>&1 || true)
assert_match "set_context outside a transaction block: 25P01" 'ERROR: +25P01' "$out"
out=$(app_psql -v VERBOSITY=verbose -At -c "SELECT brandbos.authenticate(tok) FROM tokens WHERE t = 1" 2>&1 || true)
assert_match "authenticate outside a transaction block: 25P01" 'ERROR: +25P01' "$out"
# Inside a PL/pgSQL exception block the call runs in a subtransaction, which PostgreSQL
# reports as a transaction block, so it is not refused there (a documented limit); the
# context still ends with the statement, which is what matters:
sc_sqlstate "$C" "SELECT brandbos.set_context('user1', 't1')" >/dev/null
sc_sqlstate "$C" "SELECT brandbos.authenticate(tok) FROM tokens WHERE t = 1" >/dev/null
assert_eq "a context set inside an autocommit statement is gone at its end: nothing visible" "0|-" \
	"$(app_psql -At -F '|' -c "SELECT count(*), coalesce(brandbos.current_tenant_id(), '-') FROM items" 2>&1)"

# ---- 3. pgbench: 2 clients alternating tenants per transaction ----------------------------
cat >"$DIR/ctx.sql" <<'SQL'
\set t random(1, 5)
BEGIN;
SELECT brandbos.set_context('user' || :t, 't' || :t);
SELECT check_tenant(:t);
INSERT INTO items (v) VALUES (-(:t::int));
COMMIT;
SQL
cat >"$DIR/auth.sql" <<'SQL'
\set t random(1, 5)
BEGIN;
SELECT brandbos.authenticate(tok) FROM tokens WHERE t = :t;
SELECT check_tenant(:t);
COMMIT;
SQL
cat >"$DIR/none.sql" <<'SQL'
SELECT check_none();
BEGIN;
SELECT check_none();
COMMIT;
SQL
chmod 0644 "$DIR/ctx.sql" "$DIR/auth.sql" "$DIR/none.sql"
pgbench_rc=0
PGHOST=$(bb_sockdir "$C") PGPORT=$(bb_port "$C") PGUSER=app \
	bb_run_as_pg "$PGBIN/pgbench" -n -c 2 -j 2 -t 3000 -M prepared \
	-f "$DIR/ctx.sql@4" -f "$DIR/auth.sql@3" -f "$DIR/none.sql@3" postgres >"$DIR/pgbench.out" 2>&1 || pgbench_rc=$?
assert_eq "pgbench (2 clients x 3000 transactions, -M prepared) exits 0" 0 "$pgbench_rc"
if (( pgbench_rc != 0 )); then grep -E 'ERROR|aborted|leak' "$DIR/pgbench.out" | head -n 10 | sed 's/^/#   /'; fi
assert_eq "pgbench processed every transaction" "6000/6000" \
	"$(awk '/^number of transactions actually processed:/ { print $NF }' "$DIR/pgbench.out")"
assert_match "pgbench reports 0 failed transactions" '^0( |$)' \
	"$(awk -F': ' '/^number of failed transactions:/ { print $2 }' "$DIR/pgbench.out")"
inserted=$(sc_try "$C" "SELECT count(*) FROM items WHERE v < 0")
assert_match "the set_context transactions inserted rows ($inserted)" '^[1-9][0-9]*$' "$inserted"
assert_eq "every inserted row got the tenant of its own transaction by default" 0 \
	"$(sc_try "$C" "SELECT count(*) FROM items WHERE v < 0 AND tenant_id IS DISTINCT FROM 't' || (-v)")"

# ---- 4. no other way in ----------------------------------------------------------------------
# (stdout only: a refused setting may come as a WARNING or a failed connection)
out=$(PGOPTIONS='-c brandbos.request_tenant_id=t1' app_psql -At -c "SELECT count(*) FROM items" 2>"$DIR/pgoptions.err" || true)
if [[ $out =~ ^[0-9]+$ ]] && (( out > 0 )); then
	fail "PGOPTIONS=-c brandbos.request_tenant_id=t1 does not give a context" "saw $out rows"
else
	pass "PGOPTIONS=-c brandbos.request_tenant_id=t1 does not give a context"
	diag "(outcome: rows '${out}', stderr: $(head -c 300 "$DIR/pgoptions.err" | tr '\n' ' '))"
fi
alter=$(sc_sqlstate "$C" "ALTER ROLE app SET brandbos.request_tenant_id = 't1'")
out=$(app_psql -At -c "SELECT count(*) FROM items" 2>/dev/null || true)
if [[ $alter == 42501 ]] || [[ $out != [1-9]* ]]; then
	pass "ALTER ROLE ... SET brandbos.request_tenant_id gives no context (refused: $alter; a new session sees: ${out//$'\n'/ })"
else
	fail "ALTER ROLE ... SET brandbos.request_tenant_id gives no context" "ALTER ROLE: $alter" "new session: $out"
fi
bb_psql "$C" -c "ALTER ROLE app RESET ALL" >/dev/null

# ---- 5. refused tokens leave no token and no secret in the server log ----------------------
out=$(app_psql -v VERBOSITY=verbose -At -c 'BEGIN' -c "SELECT brandbos.authenticate(tok) FROM bad_tokens WHERE k = 'expired'" 2>&1 || true)
assert_match "an expired token: 28000" 'ERROR: +28000' "$out"
out=$(app_psql -v VERBOSITY=verbose -At -c 'BEGIN' -c "SELECT brandbos.authenticate(tok) FROM bad_tokens WHERE k = 'forged'" 2>&1 || true)
assert_match "a forged signature: 28000" 'ERROR: +28000' "$out"
leaks=0
while IFS= read -r tok; do
	for seg in "$tok" "$(cut -d. -f2 <<<"$tok")" "$(cut -d. -f3 <<<"$tok")"; do
		if grep -qF -- "$seg" "$(bb_logfile "$C")"; then leaks=$((leaks + 1)); fi
	done
done < <(sc_try "$C" "SELECT tok FROM tokens UNION ALL SELECT tok FROM bad_tokens")
if grep -qF -- "$SECRET" "$(bb_logfile "$C")"; then leaks=$((leaks + 1)); fi
assert_eq "the server log holds no token, token segment or JWT secret" 0 "$leaks"

# ---- 6. no secret at all: 55000; the JWT secret alone needs no root key ---------------------
sc_conf_unset "$C" brandbos.jwt_secret_file
sc_conf_set "$C" brandbos.root_key_file "$DIR/no-such-root.key"
bb_cluster_restart "$C"
out=$(bb_psql "$C" -v VERBOSITY=verbose -At -c 'BEGIN' -c "SELECT brandbos.authenticate(tok) FROM tokens WHERE t = 1" 2>&1 || true)
assert_match "no jwt_secret_file and no root key: authenticate fails with 55000" 'ERROR: +55000' "$out"
out=$(bb_psql "$C" -v VERBOSITY=verbose -At -c "SELECT brandbos.sign_token('{\"sub\": \"u\"}')" 2>&1 || true)
assert_match "no jwt_secret_file and no root key: sign_token fails with 55000" 'ERROR: +55000' "$out"
sc_conf_set "$C" brandbos.jwt_secret_file "$DIR/jwt.secret"
bb_cluster_restart "$C"
t4_rows=$(sc_try "$C" "SELECT count(*) FROM items WHERE tenant_id = 't4'")
out=$(app_psql -At -F '|' -c 'BEGIN' -c "SELECT brandbos.authenticate(tok) ->> 'sub' FROM tokens WHERE t = 4" \
	-c "SELECT count(*), string_agg(DISTINCT tenant_id, ','), brandbos.current_tenant_id() FROM items" -c 'COMMIT' 2>&1 || true)
assert_eq "with brandbos.jwt_secret_file and no root key, tokens verify and isolate" "$(printf 'user4\n%s|t4|t4' "$t4_rows")" "$out"

if sc_server_crashed "$C"; then
	fail "no backend crashed" "$(grep -E 'terminated by signal|PANIC' "$(bb_logfile "$C")" | head -n 5)"
else
	pass "no backend crashed"
fi

sc_finish
