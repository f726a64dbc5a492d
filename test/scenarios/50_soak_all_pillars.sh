#!/usr/bin/env bash
# 50_soak_all_pillars — a bounded soak over every pillar at once (shared_preload_libraries =
# 'brandbos': the background sealer, the role lock and the audit guard are on).
#
# pgbench, 2 clients for BB_SOAK_SECONDS (default 60), as the non-superuser bench_app, a mix
# of four scripts:
#   mixed.sql   @5  the workload of invariants_lib.sh: context, protected insert, audited
#                   update, add_contribution, ledger row
#   tenant.sql  @2  set_context for a random tenant, then read bench_docs (under
#                   enable_tenant_isolation): bench_check_tenant raises when a row of another
#                   tenant is visible, when one of the tenant's own rows is missing, or when
#                   a probe by primary key finds another tenant's row
#   auth.sql    @2  authenticate() with a signed HS256 JWT of a random tenant, the same
#                   tenant check, then log_event('login') recorded in the ledger
#   creds.sql   @1  verify_password (Argon2id) and verify_api_key, right and wrong
# Meanwhile bench_auditor calls seal_audit() every 2 s (besides the background worker).
# Any error aborts a pgbench client, so the run must end with exit status 0, every client
# done and 0 failed transactions.  Then: all invariants of invariants_lib.sh, pgbench's
# per-script counts equal what the database committed (nothing lost), the concurrent sealer
# never failed, and the throughput is printed.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=invariants_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/invariants_lib.sh"

C=s50_soak
SOAK=${BB_SOAK_SECONDS:-60}
TENANTS=10
DOCS_PER_TENANT=50

sc_cluster "$C" 55550 yes
inv_setup "$C" 8
DIR=$(inv_dir "$C")

# ---- set-up of the other pillars ------------------------------------------------------------

setup_tenants_and_credentials() {
	# shellcheck disable=SC2016   # dollar quotes are SQL
	bb_psql "$C" >/dev/null <<SQL
CREATE TABLE bench_docs (id int PRIMARY KEY, tenant_id text NOT NULL, body text NOT NULL);
INSERT INTO bench_docs SELECT g, 'bench-t' || (g % $TENANTS), 'document ' || g
  FROM generate_series(1, $((TENANTS * DOCS_PER_TENANT))) g;
SELECT brandbos.enable_tenant_isolation('bench_docs');
GRANT SELECT ON bench_docs TO bench_app;

-- raises unless the request context is EXPECTED (and USER_ID when given), the tenant sees
-- exactly its own rows, and a probe of row PROBE by primary key finds it only when it is
-- the tenant's
CREATE FUNCTION public.bench_check_tenant(expected text, probe int, user_id text DEFAULT NULL)
RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE
	visible int;
	foreign_rows int;
	probe_seen int;
	probe_own int;
BEGIN
	IF brandbos.current_tenant_id() IS DISTINCT FROM expected
	   OR (user_id IS NOT NULL AND brandbos.current_user_id() IS DISTINCT FROM user_id) THEN
		RAISE EXCEPTION 'context is %/%, expected %/%', brandbos.current_user_id(),
			brandbos.current_tenant_id(), user_id, expected;
	END IF;
	SELECT count(*), count(*) FILTER (WHERE tenant_id <> expected) INTO visible, foreign_rows
	  FROM public.bench_docs;
	IF foreign_rows > 0 THEN
		RAISE EXCEPTION 'tenant % sees % rows of other tenants', expected, foreign_rows;
	END IF;
	IF visible <> $DOCS_PER_TENANT THEN
		RAISE EXCEPTION 'tenant % sees % of its $DOCS_PER_TENANT rows', expected, visible;
	END IF;
	SELECT count(*) INTO probe_seen FROM public.bench_docs WHERE id = probe;
	probe_own := ('bench-t' || (probe % $TENANTS) = expected)::int;
	IF probe_seen <> probe_own THEN
		RAISE EXCEPTION 'tenant % probing row % sees % rows', expected, probe, probe_seen;
	END IF;
	RETURN visible;
END
\$\$;
GRANT EXECUTE ON FUNCTION public.bench_check_tenant(text, int, text) TO bench_app;

-- one signed token per tenant (two hours, longer than any soak)
CREATE TABLE bench_tokens (k int PRIMARY KEY, token text NOT NULL);
INSERT INTO bench_tokens SELECT g, brandbos.sign_token(jsonb_build_object('sub', 'jwt-user-' || g,
	'tenant_id', 'bench-t' || g), '2 hours') FROM generate_series(0, $((TENANTS - 1))) g;
GRANT SELECT ON bench_tokens TO bench_app;

-- passwords hashed with cheap Argon2id parameters (verification uses the hash's own), and
-- API keys: the checks raise when a right one fails or a wrong one passes
SET brandbos.password_opslimit = 1;
SET brandbos.password_memlimit_kb = 8192;
CREATE TABLE bench_creds (k int PRIMARY KEY, password text, hash text, api_key text, key_hash bytea);
INSERT INTO bench_creds
SELECT g, 'password number ' || g, brandbos.hash_password('password number ' || g), a.api_key, a.key_hash
  FROM generate_series(1, 4) g, LATERAL brandbos.generate_api_key('bench' || g) a;  -- correlated: one key per row
GRANT SELECT ON bench_creds TO bench_app;
CREATE FUNCTION public.bench_check_creds(n int) RETURNS boolean LANGUAGE plpgsql AS \$\$
DECLARE
	c record;
	other record;
BEGIN
	SELECT * INTO STRICT c FROM public.bench_creds WHERE k = n;
	SELECT * INTO STRICT other FROM public.bench_creds WHERE k = n % 4 + 1;
	IF NOT brandbos.verify_password(c.password, c.hash) THEN
		RAISE EXCEPTION 'the right password of % is refused', n;
	END IF;
	IF brandbos.verify_password(other.password, c.hash) THEN
		RAISE EXCEPTION 'a wrong password passes for %', n;
	END IF;
	IF NOT brandbos.verify_api_key(c.api_key, c.key_hash) THEN
		RAISE EXCEPTION 'the right API key of % is refused', n;
	END IF;
	IF brandbos.verify_api_key(other.api_key, c.key_hash) THEN
		RAISE EXCEPTION 'a wrong API key passes for %', n;
	END IF;
	RETURN true;
END
\$\$;
GRANT EXECUTE ON FUNCTION public.bench_check_creds(int) TO bench_app;
SQL
}

write_scripts() {
	cat >"$DIR/tenant.sql" <<SQL
\\set t random(0, $((TENANTS - 1)))
\\set d random(1, $((TENANTS * DOCS_PER_TENANT)))
BEGIN;
SELECT brandbos.set_context('reader-' || :t, 'bench-t' || :t);
SELECT public.bench_check_tenant('bench-t' || :t, :d);
COMMIT;
SQL
	cat >"$DIR/auth.sql" <<SQL
\\set t random(0, $((TENANTS - 1)))
\\set d random(1, $((TENANTS * DOCS_PER_TENANT)))
BEGIN;
SELECT brandbos.authenticate(token) FROM bench_tokens WHERE k = :t;
SELECT public.bench_check_tenant('bench-t' || :t, :d, 'jwt-user-' || :t);
SELECT brandbos.log_event('login', 'bench', 'jwt-user-' || :t, '{"via": "jwt"}') AS aid \\gset
INSERT INTO bench_ledger (kind, audit_id) VALUES ('event', :aid);
COMMIT;
SQL
	cat >"$DIR/creds.sql" <<SQL
\\set k random(1, 4)
SELECT public.bench_check_creds(:k);
SQL
	chmod 0644 "$DIR/tenant.sql" "$DIR/auth.sql" "$DIR/creds.sql"
}

# ---- the concurrent sealer --------------------------------------------------------------------

# seal_audit() every 2 s as bench_auditor until STOP exists (or this script is gone, or a
# deadline passed); one output line per successful call, errors to seal.err
seal_loop() {
	local stop=$1 deadline=$((SECONDS + SOAK + 120))
	while [[ ! -e $stop ]] && kill -0 "$$" 2>/dev/null && (( SECONDS < deadline )); do
		inv_as bench_auditor "$C" -At -c "SELECT coalesce(brandbos.seal_audit()::text, 'none')" \
			>>"$DIR/seal.out" 2>>"$DIR/seal.err" || true
		sleep 2
	done
}

# ---- the soak -----------------------------------------------------------------------------

setup_tenants_and_credentials
write_scripts
: >"$DIR/seal.out"
: >"$DIR/seal.err"
seal_loop "$DIR/seal.stop" &
SEAL_PID=$!

diag "soak: pgbench -c 2 -j 2 -T $SOAK, scripts mixed@5 tenant@2 auth@2 creds@1, seal_audit() every 2 s"
rc=0
inv_app_pgbench "$C" -c 2 -j 2 -T "$SOAK" \
	-f "$DIR/mixed.sql@5" -f "$DIR/tenant.sql@2" -f "$DIR/auth.sql@2" -f "$DIR/creds.sql@1" \
	>"$DIR/pgbench.out" 2>&1 || rc=$?
touch "$DIR/seal.stop"
wait "$SEAL_PID" || true
OUT="$DIR/pgbench.out"

# ---- what pgbench says ------------------------------------------------------------------------

# the count of transactions of script N (1-based) from pgbench's per-script report
script_count() {
	awk -v n="$1" '$1 == "SQL" && $2 == "script" && $3 == n ":" { s = 1; next }
	               s && /- [0-9]+ transactions/ { for (i = 1; i <= NF; i++) if ($i == "transactions") { print $(i - 1); exit } }' "$OUT"
}

assert_eq "pgbench exits 0 (no client aborted by an error)" 0 "$rc"
if (( rc != 0 )) || grep -q 'aborted' "$OUT"; then
	diag "$(grep -vE '^(SQL script|  *-|  *[0-9.]+ )' "$OUT" | head -n 30)"
fi
total=$(awk '/^number of transactions actually processed:/ { split($NF, a, "/"); print a[1] }' "$OUT")
failed=$(awk '/^number of failed transactions:/ { print $5 }' "$OUT")
tps=$(awk '/^tps = / { printf "%.1f", $3 }' "$OUT")
assert_eq "pgbench reports 0 failed transactions" 0 "${failed:-missing}"
assert_eq "no client aborted" "" "$(grep -i 'aborted' "$OUT" || true)"
assert_match "pgbench processed transactions" '^[1-9][0-9]*$' "${total:-}"
n_mixed=$(script_count 1)
n_tenant=$(script_count 2)
n_auth=$(script_count 3)
n_creds=$(script_count 4)
diag "pgbench: $total transactions: mixed $n_mixed, tenant reads $n_tenant, JWT logins $n_auth, credential checks $n_creds"
assert_eq "each of the four scripts ran" 1 \
	"$(( ${n_mixed:-0} > 0 && ${n_tenant:-0} > 0 && ${n_auth:-0} > 0 && ${n_creds:-0} > 0 ))"

# ---- nothing lost -------------------------------------------------------------------------------

ledger_mixed=$(inv_ledger_count "$C")
ledger_events=$(inv_q "$C" "SELECT count(*) FROM bench_ledger WHERE kind = 'event'")
# pgbench -T stops counting when time is up: a transaction whose COMMIT was already sent can
# be committed yet missing from pgbench's tally, at most one per client (2).  So the ledger
# holds every counted transaction, and at most 2 more.
counted_within() {   # counted_within DESC COUNTED IN_DB
	if [[ $2 =~ ^[0-9]+$ && $3 =~ ^[0-9]+$ ]] && (( $3 >= $2 && $3 - $2 <= 2 )); then
		pass "$1 ($2 counted, $3 committed)"
	else
		fail "$1" "pgbench counted: ${2:-?}" "committed in the ledger: ${3:-?} (expected 0 to 2 more)"
	fi
}
counted_within "every mixed transaction pgbench counted is committed in the ledger" "${n_mixed:-}" "$ledger_mixed"
counted_within "every JWT login pgbench counted is committed in the ledger" "${n_auth:-}" "$ledger_events"
assert_eq "the contributions table holds one row per mixed transaction" "$ledger_mixed" \
	"$(inv_q "$C" 'SELECT count(*) FROM brandbos.contributions')"

# ---- the concurrent sealer ----------------------------------------------------------------------

seals=$(wc -l <"$DIR/seal.out")
assert_eq "the concurrent seal_audit() loop never failed" "" "$(head -n 5 "$DIR/seal.err")"
assert_eq "the concurrent seal_audit() loop ran during the soak ($seals calls)" 1 "$(( seals >= SOAK / 4 ))"
diag "sealing during the soak: $seals seal_audit() calls, $(grep -vc '^none$' "$DIR/seal.out" || true) made a block;" \
	"$(inv_q "$C" 'SELECT count(*) FROM brandbos.audit_blocks') blocks in all (with the background worker's)"

# ---- the invariants -----------------------------------------------------------------------------

inv_check_all "$C" soak
assert_eq "no backend crashed, no PANIC" "" \
	"$(grep -E 'terminated by signal|PANIC' "$(bb_logfile "$C")" || true)"

verdict="nothing lost"
if (( SC_FAILED > 0 )); then verdict="$SC_FAILED CHECKS FAILED"; fi
echo "# soak: $total transactions in $SOAK s = $tps tps, ${failed:-?} failed, $verdict" \
	"($ledger_mixed mixed and $ledger_events JWT-login transactions committed in the ledger," \
	"$(inv_q "$C" 'SELECT count(*) FROM brandbos.audit_entries') audit rows sealed and verified)"
sc_finish
