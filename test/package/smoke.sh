#!/usr/bin/env bash
# test/package/smoke.sh — a smoke test of each pillar against an installed brandbos.
#
# Sourced by test/package/deb_test.sh (after the package is installed) for smoke_pillars;
# run on its own it makes a preloaded throwaway cluster from $PGBIN and tests whatever
# brandbos that installation holds:
#
#   PGBIN=/opt/pg-x/usr/lib/postgresql/15/bin test/package/smoke.sh
#
#   smoke_pillars CLUSTER   CREATE EXTENSION (at brandbos.control's default_version), then
#     encryption  a protected column reads back through <table>_decrypted; the table holds
#                 only envelopes, and after CHECKPOINT its heap file holds no plaintext
#                 (while a control marker in a plain column is found there)
#     audit       an audited UPDATE is logged (the protected column as "[protected]"),
#                 seal_audit() seals it, verify_audit() is clean, and reports a row
#                 rewritten behind the triggers' back
#     isolation   enable_tenant_isolation + set_context: two tenants see only their rows,
#                 no context sees none, one tenant cannot update the other's
#     deliberation  a session's totals are the sums of its contributions
# Output is TAP (test/scenarios/lib.sh's pass/fail); run alone it ends with "N passed, M failed".

# Reads back through psql; fails the check (not the script) when psql fails.
_smoke_q() { sc_try "$1" "$2"; }

smoke_pillars() {
	local c=$1 want marker control heap got
	want=$("$BB_ROOT/test/package/version.sh" control)
	marker="deb-smoke-secret-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	control="deb-smoke-control-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"

	bb_psql "$c" -c 'CREATE EXTENSION brandbos' >/dev/null
	assert_eq "CREATE EXTENSION brandbos installs version $want" "$want" \
		"$(_smoke_q "$c" "SELECT extversion FROM pg_extension WHERE extname = 'brandbos'")"
	assert_eq "the preloaded library has loaded the root key" "t" \
		"$(_smoke_q "$c" 'SELECT brandbos.root_key_loaded()')"

	# ---- transparent column encryption ----
	bb_psql "$c" >/dev/null <<-SQL
		CREATE TABLE creds (id int PRIMARY KEY, user_id text, note text, token text);
		SELECT brandbos.protect_column('creds', 'token');
		INSERT INTO creds VALUES (1, 'alice', '$control', '$marker'), (2, 'bob', 'plain', 'other-token');
	SQL
	assert_eq "a protected value reads back through creds_decrypted" "$marker" \
		"$(_smoke_q "$c" 'SELECT token FROM creds_decrypted WHERE id = 1')"
	assert_eq "the table itself holds only bbx1: envelopes" "0" \
		"$(_smoke_q "$c" "SELECT count(*) FROM creds WHERE token NOT LIKE 'bbx1:%'")"
	bb_psql "$c" -c 'CHECKPOINT' >/dev/null
	heap="$(bb_datadir "$c")/$(_smoke_q "$c" "SELECT pg_relation_filepath('creds')")"
	if [[ -f $heap ]] && grep -qaF "$control" "$heap"; then
		pass "the heap file holds the plain column's control marker (the scan sees the data)"
	else
		fail "the heap file holds the plain column's control marker (the scan sees the data)" "file: $heap"
	fi
	if [[ -f $heap ]] && ! grep -qaF "$marker" "$heap"; then
		pass "the protected plaintext is not in the heap file"
	else
		fail "the protected plaintext is not in the heap file" "file: $heap"
	fi

	# ---- tamper-evident audit log ----
	bb_psql "$c" >/dev/null <<-'SQL'
		SELECT brandbos.enable_audit('creds');
		UPDATE creds SET user_id = 'alice2' WHERE id = 1;
	SQL
	assert_eq "the audited UPDATE is logged with its changed column" 'update|1|["user_id"]' \
		"$(_smoke_q "$c" "SELECT action, resource_id, details->'changed' FROM brandbos.audit_log
		                   WHERE resource_type = 'public.creds' AND action = 'update'")"
	assert_eq "the log shows the protected column as [protected], not its value" '[protected]|0' \
		"$(_smoke_q "$c" "SELECT details->'new'->>'token', count(*) FILTER (WHERE details::text LIKE '%$marker%')
		                    OVER () FROM brandbos.audit_log WHERE action = 'update'")"
	bb_psql "$c" -c 'SELECT brandbos.seal_audit()' >/dev/null
	assert_eq "after seal_audit() every log row is in a block" "0" \
		"$(_smoke_q "$c" 'SELECT count(*) FROM brandbos.audit_log WHERE block_id IS NULL')"
	got=$(_smoke_q "$c" 'SELECT count(*) >= 1 FROM brandbos.audit_blocks')
	assert_eq "seal_audit() wrote a signed block" "t" "$got"
	assert_eq "verify_audit() is clean" "0" "$(_smoke_q "$c" 'SELECT count(*) FROM brandbos.verify_audit()')"
	bb_psql "$c" >/dev/null <<-'SQL'
		UPDATE pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'brandbos.audit_entries'::regclass;
		UPDATE brandbos.audit_entries SET details = '{"forged": true}' WHERE action = 'update';
		UPDATE pg_trigger SET tgenabled = 'A' WHERE tgrelid = 'brandbos.audit_entries'::regclass;
	SQL
	assert_eq "verify_audit() reports the row rewritten behind the triggers" "changed row" \
		"$(_smoke_q "$c" 'SELECT string_agg(DISTINCT problem, $$,$$) FROM brandbos.verify_audit()')"

	# ---- tenant context and row level security ----
	bb_psql "$c" >/dev/null <<-'SQL'
		CREATE TABLE docs (id bigserial PRIMARY KEY, tenant_id text NOT NULL, title text);
		SELECT brandbos.enable_tenant_isolation('docs');
		CREATE ROLE smoke_api NOLOGIN;
		GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO smoke_api;
		GRANT USAGE ON SEQUENCE docs_id_seq TO smoke_api;
		GRANT brandbos_context_admin TO smoke_api;
		BEGIN;
		SET LOCAL ROLE smoke_api;
		SELECT brandbos.set_context('alice', 'acme');
		INSERT INTO docs (title) VALUES ('acme roadmap'), ('acme budget');
		COMMIT;
		BEGIN;
		SET LOCAL ROLE smoke_api;
		SELECT brandbos.set_context('bob', 'globex');
		INSERT INTO docs (title) VALUES ('globex plan');
		COMMIT;
	SQL
	seen() {   # TENANT: what a request of TENANT (or none) sees
		local ctx=""
		if [[ -n $1 ]]; then ctx="SELECT brandbos.set_context('u', '$1');"; fi
		_smoke_q "$c" "BEGIN; SET LOCAL ROLE smoke_api; $ctx
		               SELECT count(*) || ':' || coalesce(string_agg(DISTINCT tenant_id, ','), '') FROM docs;
		               COMMIT;" | grep -E '^[0-9]+:' || true
	}
	assert_eq "acme's request sees its 2 rows only" "2:acme" "$(seen acme)"
	assert_eq "globex's request sees its 1 row only" "1:globex" "$(seen globex)"
	assert_eq "a request without a context sees no row" "0:" "$(seen '')"
	got=$(_smoke_q "$c" "BEGIN; SET LOCAL ROLE smoke_api; SELECT brandbos.set_context('bob', 'globex');
	                      WITH u AS (UPDATE docs SET title = 'hijacked' WHERE tenant_id = 'acme' RETURNING 1)
	                      SELECT 'updated:' || count(*) FROM u; COMMIT;" | grep '^updated:' || true)
	assert_eq "globex cannot update acme's rows" "updated:0" "$got"
	assert_eq "tenant_id defaults to the context's tenant" "acme,acme,globex" \
		"$(_smoke_q "$c" 'SELECT string_agg(tenant_id, $$,$$ ORDER BY id) FROM docs')"

	# ---- deliberation bookkeeping ----
	got=$(bb_psql "$c" -At 2>&1 <<-'SQL'
		SELECT brandbos.seed_personas('[{"code": "cfo", "name": "The CFO", "expertise": "finance", "system_prompt": "Mind the margins."},
		                                 {"code": "cto", "name": "The CTO", "expertise": "engineering", "system_prompt": "Mind the debt."}]'::jsonb) IS NOT NULL;
		BEGIN;
		SELECT brandbos.set_context('alice', 'acme') IS NOT NULL;
		SELECT brandbos.start_session('Expand to Spain?', '{}', 3, 1.00) AS sid \gset
		SELECT brandbos.add_contribution(:'sid', 'cfo', 'Margins are thin.', 'initial_round', 0.0120, 610, 'model-a') IS NOT NULL;
		SELECT brandbos.add_contribution(:'sid', 'cto', 'Two sprints of work.', 'initial_round', 0.0085, 440, 'model-a') IS NOT NULL;
		SELECT 'totals:' || total_cost || '|' || total_tokens || '|' ||
		       (SELECT count(*) FROM brandbos.contributions WHERE session_id = :'sid')
		  FROM brandbos.sessions WHERE id = :'sid';
		COMMIT;
	SQL
	)
	assert_eq "a session's totals are the sums of its two contributions" "totals:0.0205|1050|2" \
		"$(grep '^totals:' <<<"$got" || echo "$got")"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
	# shellcheck source-path=SCRIPTDIR source=../scenarios/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/../scenarios/lib.sh"
	sc_cluster deb_smoke "${BB_SMOKE_PORT:-55641}" yes
	smoke_pillars deb_smoke
	SC_FINISHED=1
	printf '1..%d\n' "$SC_N"
	echo "$((SC_N - SC_FAILED)) passed, $SC_FAILED failed"
	(( SC_FAILED == 0 ))
fi
