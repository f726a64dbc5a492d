#!/usr/bin/env bash
# 31_pgbouncer_transaction_pool — the request context never outlives its transaction behind a
# real PgBouncer in transaction pooling mode, where many clients share few server connections
# and every transaction may run on a connection the previous client just used.
#
# Scenario 30 simulates the pooler with one psql session; this one runs PgBouncer itself
# (127.0.0.1 on a free port, pool_mode = transaction, default_pool_size = 2, no server_reset_query:
# isolation must not depend on the pooler cleaning up), in front of a preloaded cluster with
# brandbos.jwt_secret_file set.  A non-superuser role `app` (LOGIN, member of
# brandbos_context_admin) reads `items` under brandbos.enable_tenant_isolation, where tenant
# tK (K = 1..8) owns 10*K rows and has three users uK_1..uK_3; a token per user is signed in
# advance with brandbos.sign_token.
#
#   1. pgbench through PgBouncer, 16 clients over 2 server connections, for
#      BB_POOLER_SECONDS (default 20) seconds, extended query protocol (unnamed statements;
#      PgBouncer 1.18 cannot pool named prepared statements in transaction mode), three
#      weighted scripts:
#        ctx   BEGIN; set_context(random user of a random tenant); check; COMMIT
#              (one in four ends with ROLLBACK, then an autocommit check without context)
#        auth  BEGIN; authenticate(random signed token); check; COMMIT
#        none  an autocommit check and a transaction, both without any context
#      The check, observe(), runs as `app` inside the request: it appends a row to the
#      unrestricted req_log (expected and seen tenant/user, seen row count, rows of another
#      tenant, app role, backend pid, pgbench client id) and raises when the helpers or the
#      visible rows are not exactly the expected ones, so pgbench aborts that client
#      (non-zero exit).  Afterwards: exit 0, no failed transaction, thousands of logged
#      requests (as many as pgbench counted per script), every one seen == expected
#      (recomputed against the superuser's count per tenant), at most 2 server backends for
#      16 clients (and the same pids in PgBouncer's SHOW SERVERS), tenants switching on the
#      same backend, no-context requests right after another client's context on the same
#      backend, and zero rows seen without a context.
#   2. two psql clients through a second alias with pool_size = 1: client A sets a context
#      in an open transaction, client B waits for the only server connection and, once A
#      commits, gets that very backend and sees no context and no row.  Then A ends its
#      context every other way (ROLLBACK, error, savepoint, COMMIT AND CHAIN, authenticate,
#      disconnect mid-transaction) and each time the next client sees nothing.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C=s31_pgbouncer
PGB_PORT_S31=${BB_PORT_S31_PGBOUNCER:-56431}
POOL_SIZE=2
CLIENTS=16
SECS=${BB_POOLER_SECONDS:-20}
DIR=$(bb_clusterdir "$C")

if [[ ! -x $PGBOUNCER ]]; then
	fail "PgBouncer is installed ($PGBOUNCER)" "run test/deps.sh (Debian package pgbouncer)"
	sc_finish
fi
sc_pgbouncer_stop "$C"   # one left behind by an earlier run killed before its trap ran

# ---- cluster, roles, data ----------------------------------------------------------------------
sc_cluster "$C" "${BB_PORT_S31:-55531}" yes
SECRET="s31-$(head -c 24 /dev/urandom | od -An -v -tx1 | tr -d ' \n')"
sc_write_secret "$DIR/jwt.secret" "$SECRET"
sc_conf_set "$C" brandbos.jwt_secret_file "$DIR/jwt.secret"
bb_cluster_restart "$C"

# shellcheck disable=SC2016   # dollar quotes are SQL
bb_psql "$C" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE ROLE app LOGIN;
GRANT brandbos_context_admin TO app;

CREATE TABLE items (id serial PRIMARY KEY, tenant_id text, v int);
INSERT INTO items (tenant_id, v)
	SELECT 't' || k, g FROM generate_series(1, 8) k, generate_series(1, 10 * k) g;
SELECT brandbos.enable_tenant_isolation('items');
GRANT SELECT ON items TO app;

-- what each tenant must see (read by observe(); the final checks use the superuser's count)
CREATE TABLE tenants (tenant_id text PRIMARY KEY, n_rows bigint NOT NULL);
INSERT INTO tenants SELECT 't' || k, 10 * k FROM generate_series(1, 8) k;

-- one signed token per user: i = 1..24, users uK_1..uK_3 of tenant tK
CREATE TABLE tokens (i int PRIMARY KEY, tenant_id text NOT NULL, user_id text NOT NULL, tok text NOT NULL);
INSERT INTO tokens
	SELECT (k - 1) * 3 + j, 't' || k, 'u' || k || '_' || j,
	       brandbos.sign_token(jsonb_build_object('sub', 'u' || k || '_' || j, 'tenant_id', 't' || k), '1 day')
	  FROM generate_series(1, 8) k, generate_series(1, 3) j;
GRANT SELECT ON tenants, tokens TO app;

-- one row per checked request; no row security
CREATE TABLE req_log (
	id          bigserial PRIMARY KEY,
	kind        text NOT NULL,
	client      int,
	exp_tenant  text,
	exp_user    text,
	seen_tenant text,
	seen_user   text,
	seen_role   text,
	seen_count  bigint,
	foreign_rows bigint,
	db_user     text,
	pid         int NOT NULL
);
GRANT INSERT ON req_log TO app;
GRANT USAGE ON SEQUENCE req_log_id_seq TO app;

-- Runs inside the request, as app (SECURITY INVOKER: row security applies).  Logs what the
-- request sees, then raises unless it is exactly the expected context and the expected
-- tenant's rows (no context: NULL helpers, no claims, no row).
CREATE FUNCTION observe(kind text, client int, exp_tenant text, exp_user text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	st text := brandbos.current_tenant_id();
	su text := brandbos.current_user_id();
	sr text := brandbos.current_app_role();
	sc jsonb := brandbos.claims();
	n bigint;
	f bigint;
	want bigint;
	want_role text := CASE WHEN exp_tenant IS NULL THEN NULL ELSE 'authenticated' END;
BEGIN
	SELECT count(*), count(*) FILTER (WHERE tenant_id IS DISTINCT FROM exp_tenant)
	  INTO n, f FROM items;
	want := coalesce((SELECT t.n_rows FROM tenants t WHERE t.tenant_id = exp_tenant), 0);
	INSERT INTO req_log (kind, client, exp_tenant, exp_user, seen_tenant, seen_user, seen_role,
	                     seen_count, foreign_rows, db_user, pid)
	VALUES (kind, client, exp_tenant, exp_user, st, su, sr, n, f, current_user, pg_backend_pid());
	IF st IS DISTINCT FROM exp_tenant OR su IS DISTINCT FROM exp_user
	   OR sr IS DISTINCT FROM want_role
	   OR (exp_tenant IS NULL AND sc IS NOT NULL)
	   OR (kind = 'auth' AND sc ->> 'sub' IS DISTINCT FROM exp_user)
	   OR n <> want OR f <> 0 OR current_user <> 'app' THEN
		RAISE EXCEPTION 'brandbos context leak (% request, client %, backend %): expected tenant % user % (% rows), saw tenant % user % role %, % rows (% of another tenant)',
			kind, client, pg_backend_pid(), exp_tenant, exp_user, want, st, su, sr, n, f;
	END IF;
	RETURN n;
END
$$;
SQL
assert_eq "ground truth: tenant tK owns 10*K rows (K = 1..8), 24 tokens signed" \
	"t1:10 t2:20 t3:30 t4:40 t5:50 t6:60 t7:70 t8:80|24" \
	"$(sc_try "$C" "SELECT (SELECT string_agg(tenant_id || ':' || n, ' ' ORDER BY tenant_id)
	                          FROM (SELECT tenant_id, count(*) n FROM items GROUP BY 1) s)
	                   || '|' || (SELECT count(*) FROM tokens)")"

# ---- PgBouncer ----------------------------------------------------------------------------------
# bbpool: the application's pool (default_pool_size); bbone: one server connection only
# (lib.sh's sc_pgbouncer: transaction mode, no server_reset_query).  pgb_psql connects as app.
pgb_rc=0
sc_pgbouncer "$C" "$PGB_PORT_S31" "$POOL_SIZE" app 2>"$DIR/pgbouncer.err" || pgb_rc=$?
if (( pgb_rc == 0 )); then
	pass "PgBouncer (pid $(cat "$PGB_PIDFILE" 2>/dev/null || echo '?')) accepts connections on 127.0.0.1:$PGB_PORT"
else
	fail "PgBouncer accepts connections on 127.0.0.1:${PGB_PORT:-$PGB_PORT_S31}" "$(cat "$DIR/pgbouncer.err")"
	sc_finish
fi
assert_eq "PgBouncer runs in transaction mode, default_pool_size = $POOL_SIZE, no server_reset_query" \
	"transaction|$POOL_SIZE|" \
	"$(pgb_admin 'SHOW CONFIG' | awk -F'|' '$1 == "pool_mode" { m = $2 } $1 == "default_pool_size" { s = $2 }
	                                       $1 == "server_reset_query" { r = $2 } END { print m "|" s "|" r }')"
assert_eq "through PgBouncer, app without a context sees no row" "app|0" \
	"$(pgb_psql bbpool -At -F '|' -c 'SELECT current_user, count(*) FROM items' 2>&1)"

# ---- 1. pgbench: 16 clients over 2 server connections -----------------------------------------
cat >"$DIR/ctx.sql" <<'SQL'
\set t random(1, 8)
\set u random(1, 3)
\set rb random(0, 3)
BEGIN;
SELECT brandbos.set_context('u' || :t || '_' || :u, 't' || :t);
SELECT observe('ctx', :client_id, 't' || :t, 'u' || :t || '_' || :u);
\if :rb = 0
ROLLBACK;
SELECT observe('after_rollback', :client_id, NULL, NULL);
\else
COMMIT;
\endif
SQL
cat >"$DIR/auth.sql" <<'SQL'
\set i random(1, 24)
BEGIN;
SELECT brandbos.authenticate(tok) FROM tokens WHERE i = :i;
SELECT observe('auth', :client_id, tenant_id, user_id) FROM tokens WHERE i = :i;
COMMIT;
SQL
cat >"$DIR/none.sql" <<'SQL'
SELECT observe('none', :client_id, NULL, NULL);
BEGIN;
SELECT observe('none_tx', :client_id, NULL, NULL);
COMMIT;
SQL
chmod 0644 "$DIR/ctx.sql" "$DIR/auth.sql" "$DIR/none.sql"

pgbench_rc=0
PGHOST=127.0.0.1 PGPORT=$PGB_PORT PGUSER=app \
	bb_run_as_pg "$PGBIN/pgbench" -n -M extended -c "$CLIENTS" -j 2 -T "$SECS" \
	-f "$DIR/ctx.sql@4" -f "$DIR/auth.sql@3" -f "$DIR/none.sql@3" bbpool \
	>"$DIR/pgbench.out" 2>&1 || pgbench_rc=$?
assert_eq "pgbench ($CLIENTS clients, ${SECS} s, through PgBouncer) exits 0" 0 "$pgbench_rc"
# a failed check aborts its pgbench client (and rolls its req_log row back)
aborted=$(grep -c 'aborted in command' "$DIR/pgbench.out" || true)
if (( pgbench_rc != 0 )); then
	diag "$(grep -E 'ERROR|aborted|leak|error' "$DIR/pgbench.out" | head -n 10)"
fi
assert_eq "pgbench ran $CLIENTS clients" "$CLIENTS" \
	"$(awk -F': ' '/^number of clients:/ { print $2 }' "$DIR/pgbench.out")"
assert_match "pgbench reports 0 failed transactions" '^0( |$)' \
	"$(awk -F': ' '/^number of failed transactions:/ { print $2 }' "$DIR/pgbench.out")"

# transactions pgbench completed per script (ctx, auth, none), from its per-script report
per_script=$(awk '/^SQL script [0-9]+:/ { s = $4 }
	/^ - [0-9]+ transactions/ && s != "" { sub(/.*\//, "", s); n[s] = $2 }
	END { print n["ctx.sql"] + 0 "|" n["auth.sql"] + 0 "|" n["none.sql"] + 0 }' "$DIR/pgbench.out")
IFS='|' read -r n_ctx n_auth n_none <<<"$per_script"
# pgbench -T stops counting when time is up: a request whose COMMIT was already sent can be
# in req_log yet missing from pgbench's tally, at most one per client (a none transaction
# logs twice).  So req_log holds every counted request, and at most 2 per client more.
logged=$(sc_try "$C" "SELECT count(*) FILTER (WHERE kind IN ('ctx', 'after_rollback')) || '|' ||
                            count(*) FILTER (WHERE kind = 'auth') || '|' ||
                            count(*) FILTER (WHERE kind IN ('none', 'none_tx')) FROM req_log")
IFS='|' read -r l_ctx l_auth l_none <<<"$logged"
extra=$(( (l_ctx - n_ctx) + (l_auth - n_auth) + (l_none - 2 * n_none) ))
if (( l_ctx >= n_ctx && l_auth >= n_auth && l_none >= 2 * n_none && extra <= 2 * CLIENTS )); then
	pass "req_log holds every request pgbench counted (ctx $n_ctx, auth $n_auth, none $n_none; $extra in flight at the end)"
else
	fail "req_log holds one row per counted ctx and auth transaction and two per none transaction" \
		"pgbench counted ctx|auth|2*none: $n_ctx|$n_auth|$((2 * n_none))" "req_log: $logged"
fi

requests=$(sc_try "$C" "SELECT count(*) FROM req_log")
min_requests=$((100 * SECS))
if [[ $requests =~ ^[0-9]+$ ]] && (( requests >= min_requests )); then
	pass "$requests requests checked (at least $min_requests)"
else
	fail "at least $min_requests requests checked" "req_log rows: $requests"
fi

# seen == expected, recomputed here against the superuser's count per tenant
bad=$(sc_try "$C" "
	WITH truth AS (SELECT tenant_id, count(*) AS n FROM items GROUP BY tenant_id)
	SELECT count(*) FROM req_log l LEFT JOIN truth t ON t.tenant_id = l.exp_tenant
	 WHERE l.seen_tenant IS DISTINCT FROM l.exp_tenant
	    OR l.seen_user IS DISTINCT FROM l.exp_user
	    OR l.seen_role IS DISTINCT FROM CASE WHEN l.exp_tenant IS NULL THEN NULL ELSE 'authenticated' END
	    OR l.seen_count IS DISTINCT FROM coalesce(t.n, 0)
	    OR l.foreign_rows IS DISTINCT FROM 0::bigint
	    OR l.db_user IS DISTINCT FROM 'app'")
assert_eq "every logged request saw exactly its own tenant, user and rows" 0 "$bad"
if [[ $bad != 0 ]]; then
	diag "$(sc_try "$C" "SELECT * FROM req_log WHERE seen_tenant IS DISTINCT FROM exp_tenant
	                        OR seen_user IS DISTINCT FROM exp_user OR foreign_rows <> 0 LIMIT 5")"
fi
assert_eq "requests without a context saw 0 rows and no tenant, user or app role" "0|0" \
	"$(sc_try "$C" "SELECT coalesce(sum(seen_count), 0) || '|' ||
	                       count(*) FILTER (WHERE num_nonnulls(seen_tenant, seen_user, seen_role) > 0)
	                  FROM req_log WHERE exp_tenant IS NULL")"
assert_eq "the requests covered all 8 tenants and 24 users, with and without context" "8|24|true|true|true|true" \
	"$(sc_try "$C" "SELECT count(DISTINCT exp_tenant) || '|' || count(DISTINCT exp_user) || '|' ||
	                       bool_or(kind = 'ctx') || '|' || bool_or(kind = 'auth') || '|' ||
	                       bool_or(kind = 'after_rollback') || '|' || bool_or(kind = 'none_tx') FROM req_log")"

IFS='|' read -r pids clients <<<"$(sc_try "$C" "SELECT count(DISTINCT pid) || '|' || count(DISTINCT client) FROM req_log")"
if [[ $pids =~ ^[0-9]+$ ]] && (( pids >= 1 && pids <= POOL_SIZE )); then
	pass "the requests ran on $pids server backend(s), at most default_pool_size = $POOL_SIZE"
else
	fail "the requests ran on at most default_pool_size = $POOL_SIZE server backends" "distinct backend pids: $pids"
fi
if [[ $clients == "$CLIENTS" ]] && [[ $pids =~ ^[0-9]+$ ]] && (( clients > pids )); then
	pass "$clients pgbench clients were multiplexed over those $pids backend(s)"
else
	fail "all $CLIENTS pgbench clients were multiplexed over fewer backends" "clients: $clients, backends: $pids"
fi
# the backends in the log are PgBouncer's server connections of bbpool
srv=$(pgb_admin 'SHOW SERVERS' | awk -F'|' '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	col["database"] && $col["database"] == "bbpool" && $col["remote_pid"] ~ /^[0-9]+$/ { print $col["remote_pid"] }' | sort -n | paste -sd, -)
logpids=$(sc_try "$C" "SELECT string_agg(DISTINCT pid::text, ',') FROM (SELECT pid FROM req_log ORDER BY pid) s")
logpids=$(tr ',' '\n' <<<"$logpids" | sort -n | paste -sd, -)
assert_eq "PgBouncer's SHOW SERVERS lists exactly the backends the requests ran on" "$logpids" "$srv"

# on one backend, consecutive requests of different tenants, and context-free requests
# right after another client's context: where a leak would have shown
IFS='|' read -r switches after_ctx <<<"$(sc_try "$C" "
	SELECT count(*) FILTER (WHERE prev_client <> client AND prev_tenant IS NOT NULL AND exp_tenant IS NOT NULL
	                          AND prev_tenant <> exp_tenant) || '|' ||
	       count(*) FILTER (WHERE prev_client <> client AND prev_tenant IS NOT NULL AND exp_tenant IS NULL)
	  FROM (SELECT client, exp_tenant, lag(client) OVER w AS prev_client, lag(exp_tenant) OVER w AS prev_tenant
	          FROM req_log WINDOW w AS (PARTITION BY pid ORDER BY id)) s")"
if [[ $switches =~ ^[0-9]+$ && $after_ctx =~ ^[0-9]+$ ]] && (( switches >= 5 * SECS && after_ctx >= 5 * SECS )); then
	pass "one backend served one client's tenant right after another's ($switches times) and no context right after another client's context ($after_ctx times)"
else
	fail "backends switched clients and tenants between requests" "tenant switches: $switches, no-context after context: $after_ctx"
fi

# ---- 2. two psql clients, one server connection ------------------------------------------------
# A sets a context and holds the only server connection of bbone; B queues behind it.
probe="SELECT pg_backend_pid(), coalesce(brandbos.current_tenant_id(), '-'), coalesce(brandbos.current_user_id(), '-'), count(*) FROM items"
pgb_psql bbone -At -F '|' -v ON_ERROR_STOP=1 >"$DIR/a.out" 2>&1 <<SQL &
BEGIN;
SELECT brandbos.set_context('u1_2', 't1') \\g /dev/null
$probe;
SELECT pg_sleep(1.5) \\g /dev/null
COMMIT;
SQL
a_job=$!
sleeping=0
for ((i = 0; i < 100; i++)); do
	sleeping=$(sc_try "$C" "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND state = 'active' AND query LIKE '%pg_sleep%'")
	if [[ $sleeping == 1 ]]; then break; fi
	sleep 0.1
done
assert_eq "client A holds bbone's server connection in a transaction with a context" 1 "$sleeping"
b_out=$(pgb_psql bbone -At -F '|' -c "$probe" 2>&1 || true)
a_rc=0
wait "$a_job" || a_rc=$?
a_out=$(cat "$DIR/a.out")
a_pid=${a_out%%|*}
assert_match "client A saw its own tenant: t1, u1_2, 10 rows" '^[0-9]+\|t1\|u1_2\|10$' "$a_out"
assert_eq "client A's session ended without error" 0 "$a_rc"
assert_eq "client B, served right after A's COMMIT on the same backend, sees no context and no row" \
	"$a_pid|-|-|0" "$b_out"

# A ends its context in other ways; each time the next client must see nothing.
# ab_case NAME SQL same|any [REGEX another line of A's output must match]
ab_case() {
	local name=$1 sql=$2 same=$3 extra=${4:-} out pid b
	out=$(pgb_psql bbone -At -F '|' -v ON_ERROR_STOP=0 -f - <<<"$sql" 2>&1 || true)
	pid=$(grep -E '^[0-9]+\|' <<<"$out" | head -n 1 | cut -d'|' -f1)
	if ! grep -qE '^[0-9]+\|t2\|u2_1\|20$' <<<"$out" || { [[ -n $extra ]] && ! grep -qE "$extra" <<<"$out"; }; then
		fail "$name: client A saw its own context${extra:+ (and $extra)}" "$out"
		return 0
	fi
	b=$(pgb_psql bbone -At -F '|' -c "$probe" 2>&1 || true)
	if [[ $same == same ]]; then
		assert_eq "$name: the next client, on the same backend, sees no context and no row" "$pid|-|-|0" "$b"
	else
		assert_match "$name: the next client sees no context and no row (backend ${b%%|*}, A's was $pid)" \
			'^[0-9]+\|-\|-\|0$' "$b"
	fi
}
ctx2="SELECT brandbos.set_context('u2_1', 't2') \\g /dev/null"
ab_case "ROLLBACK" "BEGIN;
$ctx2
$probe;
ROLLBACK;" same
ab_case "an error, then ROLLBACK" "BEGIN;
$ctx2
$probe;
SELECT 1 / 0;
ROLLBACK;" same
ab_case "a context changed in a released savepoint" "BEGIN;
SELECT brandbos.set_context('u3_1', 't3') \\g /dev/null
SAVEPOINT s;
$ctx2
RELEASE SAVEPOINT s;
$probe;
COMMIT;" same
ab_case "COMMIT AND CHAIN, then COMMIT" "BEGIN;
$ctx2
$probe;
COMMIT AND CHAIN;
SELECT 'chained', coalesce(brandbos.current_tenant_id(), '-'), count(*) FROM items;
COMMIT;" same '^chained\|-\|0$'
ab_case "authenticate, COMMIT" "BEGIN;
SELECT brandbos.authenticate(tok) FROM tokens WHERE i = 4 \\g /dev/null
$probe;
COMMIT;" same
ab_case "the client disconnects inside its transaction" "BEGIN;
$ctx2
$probe;" any

if sc_pgbouncer_stop && [[ ! -e /proc/$(cat "$PGB_PIDFILE" 2>/dev/null || echo none) ]]; then
	pass "PgBouncer stopped"
else
	fail "PgBouncer stopped"
fi
if sc_server_crashed "$C"; then
	fail "no backend crashed" "$(grep -E 'terminated by signal|PANIC' "$(bb_logfile "$C")" | head -n 5)"
else
	pass "no backend crashed"
fi

diag "pooler: $requests requests checked through PgBouncer ($CLIENTS clients over $pids server connections), $((bad + aborted)) saw another's context or rows"
sc_finish
