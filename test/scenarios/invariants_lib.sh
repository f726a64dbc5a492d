# shellcheck shell=bash
# test/scenarios/invariants_lib.sh — the mixed workload over every pillar and the invariants
# that must hold after it, shared by scenarios 24 (crashes) and 50 (soak).
# Sourced after lib.sh, not run (not executable, and its name starts with no digit, so
# test/run.sh skips it).
#
# Set-up
#   inv_setup NAME [SESSIONS]    in database $BB_DB of cluster NAME: the extension, the roles
#                                and tables below, SESSIONS (default 8) deliberation sessions,
#                                and the pgbench script $(inv_dir NAME)/mixed.sql
#   inv_app_pgbench NAME ARGS... pgbench -n ARGS as the application role (scripts: absolute paths)
#   inv_as ROLE NAME ARGS...     psql as ROLE (bench_app, bench_reader, bench_auditor)
#   inv_wait_ready NAME [SECS]   until the server accepts a query
#   inv_ledger_count NAME        committed transactions of the mixed workload
#
# Roles (all LOGIN, none superuser):
#   bench_app     member of brandbos_context_admin; runs every workload transaction
#   bench_reader  member of brandbos_decryptor; reads bench_secrets_decrypted
#   bench_auditor member of brandbos_auditor; seals
# Tables (public):
#   bench_secrets   (id, token)  token protected (protect_column), audited: a 200-byte value
#                   bench_token(id) = 'PLAINTEXT-MARKER-<id>-<md5 padding>'
#   bench_accounts  (id, balance, updates)  100 rows, audited (enable_audit), receives UPDATEs
#   bench_sessions  (k, sid, user_id, tenant_id)  the deliberation sessions, k = 1..SESSIONS,
#                   session k belongs to user bench-u<k> of tenant bench-t<k % 3>
#   bench_ledger    plain, unaudited: one row per committed workload transaction, written in
#                   that transaction: its xid, what it inserted, updated and contributed, and
#                   CONTROL-MARKER-<id> (an unprotected marker that the disk scan must find).
#                   It never holds the plaintext: the token is recomputed from secret_id.
#                   (kind 'mixed'; scenario 50 adds kind 'event' rows for its log_event calls)
# A mixed transaction: set_context for the session's user and tenant, INSERT a protected
# token, UPDATE an audited account, add_contribution (cost, tokens) to a random session,
# INSERT its ledger row.  The marker is built inside the server (bench_token, whose body
# holds it only in pieces), so no SQL text, function body or log line ever contains it.
#
# Invariants (each prints ok / not ok lines prefixed by LABEL):
#   inv_no_plaintext NAME LABEL      CHECKPOINT, then the marker is in no file of the data
#                                    directory (heap, WAL, everything) nor the server log,
#                                    while the control marker is found in base/ and pg_wal/
#   inv_audit_complete NAME LABEL    every ledger update has its audit 'update' row (same xid,
#                                    account, details->'new'->>'balance'); counts equal; each
#                                    protected insert is audited once, token shown as
#                                    "[protected]"; every ledger event has its log_event row
#   inv_audit_verifies NAME LABEL    seal_audit() until nothing is unsealed, verify_audit()
#                                    returns no row, a fresh digest verifies
#   inv_session_totals NAME LABEL    per session: total_cost, total_tokens and the summary's
#                                    contribution count = sums of the contribution rows =
#                                    the ledger's sums; ledger and contributions match row
#                                    for row
#   inv_decrypts NAME LABEL          as bench_reader, every protected row decrypts through
#                                    bench_secrets_decrypted to bench_token(id); the raw
#                                    column holds only envelopes
#   inv_check_all NAME LABEL         all five

INV_MARKER=PLAINTEXT-MARKER-
INV_CONTROL=CONTROL-MARKER-
INV_SESSIONS=8

inv_dir() { bb_clusterdir "$1"; }

inv_q() { bb_psql_value "$1" "$2"; }

# psql as one of the bench roles: inv_as ROLE NAME [psql args...]
inv_as() {
	local role=$1 name=$2
	shift 2
	bb_run_as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(bb_sockdir "$name")" \
		-p "$(bb_port "$name")" -U "$role" -d "${BB_DB:-postgres}" "$@"
}

inv_app_pgbench() {
	local name=$1
	shift
	PGHOST=$(bb_sockdir "$name") PGPORT=$(bb_port "$name") PGUSER=bench_app \
		bb_run_as_pg "$PGBIN/pgbench" -n "$@" "${BB_DB:-postgres}"
}

inv_wait_ready() {
	local name=$1 timeout=${2:-60} i
	for ((i = 0; i < timeout * 5; i++)); do
		if bb_psql_value "$name" 'SELECT 1' >/dev/null 2>&1; then return 0; fi
		sleep 0.2
	done
	echo "# server $name did not accept a query within ${timeout}s" >&2
	return 1
}

inv_ledger_count() { inv_q "$1" "SELECT count(*) FROM bench_ledger WHERE kind = 'mixed'"; }

# ---- set-up ---------------------------------------------------------------------------------

inv_setup() {
	local name=$1 k
	INV_SESSIONS=${2:-8}
	# shellcheck disable=SC2016   # dollar quotes are SQL
	bb_psql "$name" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE ROLE bench_app LOGIN;
GRANT brandbos_context_admin TO bench_app;
CREATE ROLE bench_reader LOGIN;
GRANT brandbos_decryptor TO bench_reader;
CREATE ROLE bench_auditor LOGIN;
GRANT brandbos_auditor TO bench_auditor;

-- the secret of row n; the marker is assembled from pieces so that no catalog row holds it
CREATE FUNCTION public.bench_token(n bigint) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN 'PLAINTEXT' || '-MARKER-' || n || '-'
	       || substr(repeat(md5(n::text), 7), 1, 200 - 18 - length(n::text) - 1);

CREATE TABLE bench_secrets (id bigserial PRIMARY KEY, token text NOT NULL);
SELECT brandbos.protect_column('bench_secrets', 'token');
SELECT brandbos.enable_audit('bench_secrets');
GRANT INSERT ON bench_secrets TO bench_app;
GRANT USAGE ON SEQUENCE bench_secrets_id_seq TO bench_app;
GRANT SELECT ON bench_secrets TO bench_reader;

CREATE TABLE bench_accounts (id int PRIMARY KEY, balance bigint NOT NULL, updates int NOT NULL DEFAULT 0);
SELECT brandbos.enable_audit('bench_accounts');
INSERT INTO bench_accounts (id, balance) SELECT g, 0 FROM generate_series(1, 100) g;
GRANT SELECT, UPDATE ON bench_accounts TO bench_app;

CREATE TABLE bench_sessions (k int PRIMARY KEY, sid text NOT NULL UNIQUE, user_id text NOT NULL,
                             tenant_id text NOT NULL);
GRANT SELECT ON bench_sessions TO bench_app;

CREATE TABLE bench_ledger (
	id				bigserial PRIMARY KEY,
	kind			text NOT NULL,                     -- mixed | event
	txid			xid8 NOT NULL DEFAULT pg_current_xact_id(),
	secret_id		bigint,
	account_id		int,
	new_balance		bigint,
	session_id		text,
	contribution_id	bigint,
	cost			numeric(10,4),
	tokens			int,
	audit_id		bigint,                            -- log_event's id (kind event)
	control			text
);
GRANT INSERT ON bench_ledger TO bench_app;
GRANT USAGE ON SEQUENCE bench_ledger_id_seq TO bench_app;
SQL

	inv_as bench_app "$name" -At -c "SELECT brandbos.seed_personas('[
		{\"code\": \"cfo\", \"name\": \"Cal\", \"expertise\": \"money\"},
		{\"code\": \"growth\", \"name\": \"Zara\", \"expertise\": \"growth\"},
		{\"code\": \"ethics\", \"name\": \"Eve\", \"expertise\": \"ethics\"}]')" >/dev/null
	for ((k = 1; k <= INV_SESSIONS; k++)); do
		inv_as bench_app "$name" -At >/dev/null <<SQL
BEGIN;
SELECT brandbos.set_context('bench-u$k', 'bench-t$((k % 3))');
SELECT brandbos.start_session('Question $k of the mixed workload', NULL, 10, NULL);
COMMIT;
SQL
	done
	# the sessions, as the superuser sees them (owner and tenant from the contexts above)
	bb_psql "$name" -c "INSERT INTO bench_sessions (k, sid, user_id, tenant_id)
		SELECT replace(user_id, 'bench-u', '')::int, id, user_id, tenant_id
		  FROM brandbos.sessions WHERE user_id LIKE 'bench-u%'"
	inv_write_mixed_script "$name"
}

# The mixed transaction (see the header).  :n is the protected row's id, taken from its
# sequence first so the ledger can name it; the token is computed in the server from it.
inv_write_mixed_script() {
	local f
	f="$(inv_dir "$1")/mixed.sql"
	cat >"$f" <<SQL
\\set k random(1, $INV_SESSIONS)
\\set a random(1, 100)
\\set v random(1, 1000000000)
\\set tok random(0, 2000)
\\set c random(0, 999)
\\set p random(1, 3)
BEGIN;
SELECT brandbos.set_context('bench-u' || :k, 'bench-t' || (:k % 3));
SELECT nextval('bench_secrets_id_seq') AS n \\gset
INSERT INTO bench_secrets (id, token) VALUES (:n, public.bench_token(:n));
UPDATE bench_accounts SET balance = :v, updates = updates + 1 WHERE id = :a;
SELECT brandbos.add_contribution(s.sid, (ARRAY['cfo', 'growth', 'ethics'])[:p],
       'mixed workload contribution', 'initial_round', :c / 10000.0, :tok, 'bench-model') AS cid
  FROM bench_sessions s WHERE s.k = :k \\gset
INSERT INTO bench_ledger (kind, secret_id, account_id, new_balance, session_id, contribution_id,
                          cost, tokens, control)
VALUES ('mixed', :n, :a, :v, (SELECT sid FROM bench_sessions WHERE k = :k), :cid, :c / 10000.0, :tok, '$INV_CONTROL' || :n);
COMMIT;
SQL
	chmod 0644 "$f"
}

# ---- invariants -----------------------------------------------------------------------------

# inv_eq LABEL DESC EXPECTED ACTUAL
inv_eq() { assert_eq "$1: $2" "$3" "$4"; }

# files under the data directory (relative; AREAS space separated) whose bytes contain STRING
_inv_files_with() {
	local name=$1 string=$3 areas
	read -r -a areas <<<"$2"
	(cd "$(bb_datadir "$name")" && grep -rlaF --binary-files=text -- "$string" "${areas[@]}" 2>/dev/null) || true
}

inv_no_plaintext() {
	local name=$1 label=$2 hits
	bb_psql "$name" -c 'CHECKPOINT'
	hits=$(_inv_files_with "$name" "base global" "$INV_CONTROL")
	if [[ -n $hits ]]; then
		pass "$label: the control marker is found in base/ or global/ (the scan works)"
	else
		fail "$label: the control marker is found in base/ or global/ (the scan works)"
	fi
	hits=$(_inv_files_with "$name" pg_wal "$INV_CONTROL")
	if [[ -n $hits ]]; then
		pass "$label: the control marker is found in pg_wal/ (the scan works)"
	else
		fail "$label: the control marker is found in pg_wal/ (the scan works)"
	fi
	hits=$(_inv_files_with "$name" . "$INV_MARKER")
	if [[ -z $hits ]]; then
		pass "$label: no file of the data directory (heap, WAL, everything) holds the plaintext marker"
	else
		fail "$label: no file of the data directory (heap, WAL, everything) holds the plaintext marker" \
			"found in: $(head -n 10 <<<"$hits" | tr '\n' ' ')"
	fi
	if grep -aqF -- "$INV_MARKER" "$(bb_logfile "$name")"; then
		fail "$label: the server log holds no plaintext marker" \
			"$(grep -aF -- "$INV_MARKER" "$(bb_logfile "$name")" | head -n 3)"
	else
		pass "$label: the server log holds no plaintext marker"
	fi
}

inv_audit_complete() {
	local name=$1 label=$2 ledger events got
	ledger=$(inv_ledger_count "$name")
	got=$(inv_q "$name" "SELECT count(*) FROM bench_ledger l WHERE l.kind = 'mixed' AND NOT EXISTS (
		SELECT 1 FROM brandbos.audit_log a
		 WHERE a.action = 'update' AND a.resource_type = 'public.bench_accounts'
		   AND a.resource_id = l.account_id::text AND a.txid = l.txid
		   AND a.details->'new'->>'balance' = l.new_balance::text)")
	inv_eq "$label" "every committed account update ($ledger in the ledger) has its audit row (same xid, id, new balance)" 0 "$got"
	got=$(inv_q "$name" "SELECT count(*) FROM brandbos.audit_log
		WHERE action = 'update' AND resource_type = 'public.bench_accounts'")
	inv_eq "$label" "audit update rows of bench_accounts = ledger entries (none from aborted transactions)" "$ledger" "$got"
	got=$(inv_q "$name" "SELECT sum(updates) FROM bench_accounts")
	inv_eq "$label" "sum of bench_accounts.updates = ledger entries" "$ledger" "$got"
	got=$(inv_q "$name" "SELECT count(*) || '|' || count(DISTINCT a.resource_id) || '|'
		|| count(*) FILTER (WHERE a.details->'new'->>'token' = '[protected]'
		                      AND l.txid = a.txid AND l.secret_id::text = a.resource_id)
		FROM brandbos.audit_log a LEFT JOIN bench_ledger l ON l.secret_id::text = a.resource_id AND l.kind = 'mixed'
		WHERE a.action = 'insert' AND a.resource_type = 'public.bench_secrets'")
	inv_eq "$label" "each protected insert is audited once, in its transaction, the token as \"[protected]\"" \
		"$ledger|$ledger|$ledger" "$got"
	events=$(inv_q "$name" "SELECT count(*) FROM bench_ledger WHERE kind = 'event'")
	got=$(inv_q "$name" "SELECT count(*) || '|' || count(*) FILTER (WHERE NOT EXISTS (
		SELECT 1 FROM brandbos.audit_log a WHERE a.id = l.audit_id AND a.txid = l.txid
		   AND a.action = 'login' AND a.resource_type = 'bench'))
		FROM bench_ledger l WHERE l.kind = 'event'")
	inv_eq "$label" "every log_event of the ledger ($events) has its audit row, and no other exists" \
		"$(inv_q "$name" "SELECT count(*) FROM brandbos.audit_log WHERE action = 'login' AND resource_type = 'bench'")|0" \
		"$got"
}

# seal_audit() until no row is left unsealed (writers must have stopped)
inv_seal_all() {
	local name=$1 timeout=${2:-30} start=$SECONDS left
	while :; do
		inv_as bench_auditor "$name" -At -c 'SELECT brandbos.seal_audit()' >/dev/null
		left=$(inv_q "$name" 'SELECT count(*) FROM brandbos.audit_log WHERE block_id IS NULL')
		if [[ $left == 0 ]]; then return 0; fi
		if (( SECONDS - start > timeout )); then
			echo "# still $left unsealed audit rows after ${timeout}s" >&2
			return 1
		fi
		sleep 0.2
	done
}

inv_audit_verifies() {
	local name=$1 label=$2 got
	check "$label: seal_audit() seals every audit row" inv_seal_all "$name" 30
	got=$(inv_as bench_auditor "$name" -At -c "SELECT block_id || ' ' || coalesce(audit_id::text, '-')
		|| ' ' || problem || ' ' || coalesce(detail, '') FROM brandbos.verify_audit() LIMIT 10" 2>&1 || true)
	inv_eq "$label" "verify_audit() returns no row" "" "$got"
	got=$(inv_as bench_auditor "$name" -At -c "SELECT brandbos.verify_audit_digest(brandbos.audit_digest())" 2>&1 || true)
	inv_eq "$label" "a fresh audit digest verifies" t "$got"
}

inv_session_totals() {
	local name=$1 label=$2 got
	# one line per session whose numbers disagree anywhere
	got=$(inv_q "$name" "
		WITH c AS (SELECT session_id, count(*) AS n, sum(cost) AS cost, sum(tokens) AS tokens
		             FROM brandbos.contributions GROUP BY session_id),
		     l AS (SELECT session_id, count(*) AS n, sum(cost) AS cost, sum(tokens) AS tokens
		             FROM bench_ledger WHERE kind = 'mixed' GROUP BY session_id),
		     x AS (SELECT b.k, s.total_cost, s.total_tokens,
		                  (brandbos.session_summary(s.id)->>'contributions')::bigint AS summary_n,
		                  coalesce(c.n, 0) AS c_n, coalesce(c.cost, 0) AS c_cost, coalesce(c.tokens, 0) AS c_tokens,
		                  coalesce(l.n, 0) AS l_n, coalesce(l.cost, 0) AS l_cost, coalesce(l.tokens, 0) AS l_tokens
		             FROM bench_sessions b JOIN brandbos.sessions s ON s.id = b.sid
		             LEFT JOIN c ON c.session_id = s.id LEFT JOIN l ON l.session_id = s.id)
		SELECT format('session %s: total_cost %s sum %s ledger %s; total_tokens %s sum %s ledger %s; contributions summary %s rows %s ledger %s',
		              k, total_cost, c_cost, l_cost, total_tokens, c_tokens, l_tokens, summary_n, c_n, l_n)
		  FROM x
		 WHERE total_cost <> c_cost OR c_cost <> l_cost OR total_tokens <> c_tokens OR c_tokens <> l_tokens
		    OR summary_n <> c_n OR c_n <> l_n
		 ORDER BY k")
	inv_eq "$label" "every session's total_cost, total_tokens and contribution count = sums of its contributions = the ledger's" "" "$got"
	got=$(inv_q "$name" "SELECT count(*) FROM brandbos.contributions c
		FULL JOIN (SELECT * FROM bench_ledger WHERE kind = 'mixed') l ON l.contribution_id = c.id
		WHERE c.id IS NULL OR l.id IS NULL OR c.session_id <> l.session_id OR c.cost <> l.cost
		   OR c.tokens <> l.tokens")
	inv_eq "$label" "contributions and ledger match row for row (session, cost, tokens)" 0 "$got"
	got=$(inv_q "$name" "SELECT count(*) FROM brandbos.sessions s JOIN bench_sessions b ON b.sid = s.id
		WHERE s.status = 'active' AND s.user_id = b.user_id AND s.tenant_id = b.tenant_id")
	inv_eq "$label" "all $INV_SESSIONS sessions still active, owner and tenant unchanged" "$INV_SESSIONS" "$got"
}

inv_decrypts() {
	local name=$1 label=$2 ledger got
	ledger=$(inv_ledger_count "$name")
	got=$(inv_as bench_reader "$name" -At -c "SELECT count(*) || '|' || count(*) FILTER (WHERE token = public.bench_token(id))
		FROM bench_secrets_decrypted" 2>&1 || true)
	inv_eq "$label" "as bench_reader every protected row decrypts to the value inserted ($ledger rows)" "$ledger|$ledger" "$got"
	got=$(inv_q "$name" "SELECT count(*) FILTER (WHERE token NOT LIKE 'bbx1:%') || '|'
		|| count(*) FILTER (WHERE l.id IS NULL)
		FROM bench_secrets s LEFT JOIN bench_ledger l ON l.secret_id = s.id AND l.kind = 'mixed'")
	inv_eq "$label" "the raw column holds only envelopes, and every protected row is in the ledger" "0|0" "$got"
}

inv_check_all() {
	local name=$1 label=$2
	inv_no_plaintext "$name" "$label"
	inv_audit_complete "$name" "$label"
	inv_audit_verifies "$name" "$label"
	inv_session_totals "$name" "$label"
	inv_decrypts "$name" "$label"
}
