#!/usr/bin/env bash
# test/demo/demo.sh — a readable walkthrough of brandbos (`make demo`).
#
# Starts a throwaway cluster `demo` (port 55600 or the next free one, shared_preload_libraries = 'brandbos',
# a freshly generated root key), shows every feature with the SQL and its output, and
# removes the cluster at the end.  Exits 0 when everything behaved as shown.
#
#   BB_KEEP=1 test/demo/demo.sh     keep the cluster running afterwards to play with it
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
export LC_ALL=C

DEMO=demo
DEMO_PORT=${BB_DEMO_PORT:-55600}
DEMO_DIGEST=${BB_WORK:-$BB_ROOT/tmp_check}/demo_audit_digest.json

cleanup() {
	local rc=$?
	if (( rc != 0 )); then
		echo
		echo "demo FAILED (exit $rc); last lines of the server log:" >&2
		tail -n 20 "$(bb_logfile "$DEMO")" >&2 2>/dev/null || true
	fi
	if [[ ${BB_KEEP:-0} == 1 && $rc == 0 ]]; then
		echo
		echo "cluster kept running: psql \"$(bb_conninfo "$DEMO")\""
		echo "remove it with: (. test/lib/cluster.sh; bb_cluster_destroy $DEMO)"
	else
		bb_cluster_destroy "$DEMO" >/dev/null 2>&1 || true
	fi
	exit "$rc"
}
trap cleanup EXIT

if [[ -t 1 ]]; then B=$'\e[1m'; D=$'\e[2m'; R=$'\e[0m'; else B=; D=; R=; fi

banner() {
	echo
	echo "${B}==========================================================================${R}"
	echo "${B}  $*${R}"
	echo "${B}==========================================================================${R}"
}
say() { echo; echo "${D}-- $*${R}"; }

# Run SQL from stdin, echoing each statement before its output (psql -e).
sql() { bb_psql "$DEMO" -e -P pager=off; }

# Check one value behind the scenes (the output above is for people; this is for make demo).
expect() {
	local what=$1 want=$2 got
	got=$(bb_psql_value "$DEMO" "$3")
	if [[ $got != "$want" ]]; then
		echo "demo: $what: expected '$want', got '$got'" >&2
		return 1
	fi
}

# Run SQL from stdin that must fail with an error matching PATTERN; show the error.
sql_fails() {
	local pattern=$1 out rc=0
	shift
	out=$(bb_psql "$DEMO" -e -P pager=off "$@" 2>&1) || rc=$?
	echo "$out"
	if (( rc == 0 )) || ! grep -qE -- "$pattern" <<<"$out"; then
		echo "demo: expected an error matching '$pattern'" >&2
		return 1
	fi
	echo "${D}   (refused, as it should be)${R}"
}

# ---------------------------------------------------------------------------------------------
banner "brandbos demo — a throwaway cluster with a generated root key"
bb_cluster_create "$DEMO" "$DEMO_PORT" yes
bb_cluster_start "$DEMO"
echo "cluster:  $(bb_datadir "$DEMO")"
echo "connect:  psql \"$(bb_conninfo "$DEMO")\""
echo "root key: $(bb_keyfile "$DEMO") ($(stat -c %a "$(bb_keyfile "$DEMO")"), never stored in the database)"
echo "server log: $(bb_logfile "$DEMO")"
grep -h 'brandbos root key' "$(bb_logfile "$DEMO")" | sed 's/^/  log: /' || true

sql <<'SQL'
CREATE EXTENSION brandbos;
SELECT brandbos.root_key_loaded();
SHOW shared_preload_libraries;
SQL

# ---------------------------------------------------------------------------------------------
banner "1. Transparent column encryption"
say "an application table holding OAuth tokens, as applications usually have it"
sql <<'SQL'
CREATE TABLE ga4_credentials (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       text,
    property_id   text,
    refresh_token text,
    access_token  text,
    created_at    timestamptz DEFAULT now()
);
SQL

say "one call protects the refresh token: a C trigger seals it before it reaches the heap or the WAL"
sql <<'SQL'
SELECT brandbos.protect_column('ga4_credentials', 'refresh_token');
SQL

say "the application keeps writing plain text"
sql <<'SQL'
INSERT INTO ga4_credentials (user_id, property_id, refresh_token, access_token) VALUES
    ('alice', 'properties/1001', '1//0gLx-alice-refresh-token', 'ya29.alice-access'),
    ('bob',   'properties/2002', '1//0gQz-bob-refresh-token',   'ya29.bob-access');
SQL

say "what the table really holds: only bbx1: envelopes (XChaCha20-Poly1305, bound to row and column)"
sql <<'SQL'
SELECT user_id, left(refresh_token, 40) || '...' AS refresh_token_as_stored,
       length(refresh_token) AS len,
       brandbos.envelope_key_version(refresh_token) AS key_version
  FROM ga4_credentials ORDER BY user_id;
SQL
expect "only envelopes in the table" 0 \
	"SELECT count(*) FROM ga4_credentials WHERE refresh_token NOT LIKE 'bbx1:%'"

say "what is protected, and under which data-key versions"
sql <<'SQL'
SELECT table_name, column_name, key_versions FROM brandbos.protected_columns;
SQL

say "the _safe view: every column except the protected ones"
sql <<'SQL'
SELECT * FROM ga4_credentials_safe ORDER BY user_id;
SQL

say "the _decrypted view: plaintext, for members of brandbos_decryptor (a superuser here)"
sql <<'SQL'
SELECT user_id, refresh_token FROM ga4_credentials_decrypted ORDER BY user_id;
SQL

say "an envelope copied into another row does not open there"
sql_fails 'not sealed for this row' <<'SQL'
UPDATE ga4_credentials
   SET refresh_token = (SELECT refresh_token FROM ga4_credentials WHERE user_id = 'alice')
 WHERE user_id = 'bob';
SQL

# ---------------------------------------------------------------------------------------------
banner "2. Who may read plaintext"
sql <<'SQL'
CREATE ROLE app_reader;                          -- e.g. the token refresher
CREATE ROLE app_writer;                          -- e.g. the OAuth callback handler
GRANT brandbos_decryptor TO app_reader;
GRANT SELECT ON ga4_credentials, ga4_credentials_decrypted, ga4_credentials_safe
   TO app_reader, app_writer;
GRANT INSERT ON ga4_credentials TO app_writer;
SQL

say "app_writer stores a token it will never be able to read back"
sql <<'SQL'
SET ROLE app_writer;
INSERT INTO ga4_credentials (user_id, property_id, refresh_token)
VALUES ('carol', 'properties/3003', '1//0gZk-carol-refresh-token');
SELECT user_id, property_id FROM ga4_credentials_safe ORDER BY user_id;
SQL

say "app_writer cannot read the _decrypted view"
sql_fails 'permission denied' <<'SQL'
SET ROLE app_writer;
SELECT user_id, refresh_token FROM ga4_credentials_decrypted;
SQL

say "nor call the decrypt functions directly"
sql_fails 'permission denied' <<'SQL'
SET ROLE app_writer;
SELECT brandbos.decrypt_text(refresh_token) FROM ga4_credentials;
SQL

say "app_reader (a brandbos_decryptor) reads plaintext, including carol's new row"
sql <<'SQL'
SET ROLE app_reader;
SELECT user_id, refresh_token FROM ga4_credentials_decrypted ORDER BY user_id;
SQL

# ---------------------------------------------------------------------------------------------
banner "3. Key rotation"
say "data keys are stored wrapped under the root key; metadata only is visible"
sql <<'SQL'
SELECT * FROM brandbos.key_status();
SQL

say "rotate: version 2 becomes active; old values stay readable under the retired version 1"
sql <<'SQL'
SELECT brandbos.rotate_key();
INSERT INTO ga4_credentials (user_id, property_id, refresh_token)
VALUES ('dave', 'properties/4004', '1//0gAa-dave-refresh-token');
SELECT user_id, brandbos.envelope_key_version(refresh_token) AS key_version
  FROM ga4_credentials ORDER BY user_id;
SELECT * FROM brandbos.key_status();
SQL

say "destroying version 1 is refused while values still use it"
sql_fails 'still seals' <<'SQL'
SELECT brandbos.destroy_key(1);
SQL

say "re-encrypt the table under the active key, then version 1 can be destroyed"
sql <<'SQL'
SELECT brandbos.reencrypt('ga4_credentials');
SELECT user_id, brandbos.envelope_key_version(refresh_token) AS key_version
  FROM ga4_credentials ORDER BY user_id;
SELECT brandbos.destroy_key(1);
SELECT * FROM brandbos.key_status();
SELECT user_id, refresh_token FROM ga4_credentials_decrypted ORDER BY user_id;
SQL
expect "every token reads back after rotation" \
	"1//0gLx-alice-refresh-token 1//0gQz-bob-refresh-token 1//0gZk-carol-refresh-token 1//0gAa-dave-refresh-token" \
	"SELECT string_agg(refresh_token, ' ' ORDER BY user_id) FROM ga4_credentials_decrypted"
expect "key versions after reencrypt and destroy" "1:destroyed 2:active" \
	"SELECT string_agg(version || ':' || status, ' ' ORDER BY version) FROM brandbos.key_status()"

say "a table owner who is not a superuser cannot switch protection off, nor plant code for others"
sql <<'SQL'
CREATE ROLE migrator LOGIN;
CREATE SCHEMA crm AUTHORIZATION migrator;
SET ROLE migrator;
CREATE TABLE crm.contacts (id int PRIMARY KEY, email text, api_token text);
INSERT INTO crm.contacts VALUES (1, 'a@example.com', 'tok-before-protect');
SELECT brandbos.protect_column('crm.contacts', 'api_token');
SELECT id, left(api_token, 24) || '...' AS stored FROM crm.contacts;
SQL
sql_fails 'unguarded|refused' <<'SQL'
SET ROLE migrator;
ALTER TABLE crm.contacts DISABLE TRIGGER zz_brandbos_protect;
SQL
sql_fails 'unguarded|refused' <<'SQL'
SET ROLE migrator;
CREATE FUNCTION crm.peek() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER aa_peek BEFORE INSERT ON crm.contacts FOR EACH ROW EXECUTE FUNCTION crm.peek();
SQL
sql_fails 'must be owner|permission denied|unguarded' <<'SQL'
SET ROLE migrator;
CREATE OR REPLACE VIEW crm.contacts_decrypted AS SELECT id, email, api_token FROM crm.contacts;
SQL
say "key counts and protected_columns read the values in C: no cast or operator of the owner runs"
sql <<'SQL'
SELECT table_name, column_name, key_versions, problem FROM brandbos.protected_columns ORDER BY 1;
SQL
expect "contacts sealed under the active key" "{2}" \
	"SELECT key_versions FROM brandbos.protected_columns WHERE table_name = 'crm.contacts'::regclass"

# ---------------------------------------------------------------------------------------------
banner "4. Password hashing (Argon2id)"
sql <<'SQL'
SELECT brandbos.hash_password('correct horse battery staple') AS hash \gset
\echo :hash
SELECT brandbos.verify_password('correct horse battery staple', :'hash') AS right_password,
       brandbos.verify_password('Tr0ub4dor&3', :'hash')                   AS wrong_password,
       brandbos.password_needs_rehash(:'hash')                            AS needs_rehash;
SQL
expect "password hashing" "t|f" \
	"SELECT brandbos.verify_password('pw', h), brandbos.verify_password('pw2', h)
	   FROM brandbos.hash_password('pw') h"

# ---------------------------------------------------------------------------------------------
banner "5. API keys (keyed BLAKE2b, shown once, never stored)"
sql <<'SQL'
SELECT api_key, key_prefix, key_hash FROM brandbos.generate_api_key('bb') \gset
\echo give this to the client once:  :api_key
\echo store only these:               :key_prefix  :key_hash
SELECT brandbos.verify_api_key(:'api_key', :'key_hash'::bytea)               AS genuine_key,
       brandbos.verify_api_key(:'api_key' || 'x', :'key_hash'::bytea)        AS tampered_key;
SQL
expect "API keys" "t|f|t" \
	"SELECT brandbos.verify_api_key(api_key, key_hash), brandbos.verify_api_key(api_key || 'x', key_hash),
	        starts_with(api_key, key_prefix)
	   FROM brandbos.generate_api_key('bb')"

# ---------------------------------------------------------------------------------------------
banner "6. Immutable, tamper-evident audit log"
say "audit every change of ga4_credentials; protected columns are never copied into the log"
sql <<'SQL'
SELECT brandbos.enable_audit('ga4_credentials');
UPDATE ga4_credentials SET property_id = 'properties/999' WHERE user_id = (SELECT min(user_id) FROM ga4_credentials);
SELECT brandbos.log_event('token_refreshed', 'ga4_credentials', 'u-1001', '{"by": "refresher job"}');
SELECT id, action, resource_type, left(resource_id, 8) AS resource, details->'changed' AS changed,
       details->'new'->>'refresh_token' AS refresh_token_in_log, block_id
  FROM brandbos.audit_log ORDER BY id;
SQL
say "seal: committed rows become a signed block chained to the previous one (the background worker does this every second too)"
sql <<'SQL'
SELECT brandbos.seal_audit() IS NOT NULL OR EXISTS (SELECT 1 FROM brandbos.audit_blocks) AS sealed;
SELECT block_id, first_id, last_id, row_count, left(encode(block_hash, 'hex'), 16) AS block_hash,
       left(encode(signature, 'hex'), 16) AS signature
  FROM brandbos.audit_blocks ORDER BY block_id;
SELECT * FROM brandbos.verify_audit();
SQL
expect "clean audit log" "0" "SELECT count(*) FROM brandbos.verify_audit()"
say "a digest to keep outside the database"
bb_psql "$DEMO" -At -c "SELECT brandbos.audit_digest()" >"$DEMO_DIGEST"
cat "$DEMO_DIGEST"
say "the guard refuses to disable the log's triggers, and records the attempt"
sql_fails 'append-only' <<'SQL'
ALTER TABLE brandbos.audit_entries DISABLE TRIGGER append_only;
SQL
sleep 1
sql <<'SQL'
SELECT id, action, details FROM brandbos.audit_log WHERE action = 'tamper_attempt';
SQL
say "a superuser goes around it through the catalog and rewrites history..."
sql <<'SQL'
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'brandbos.audit_entries'::regclass;
SQL
sql <<'SQL'
UPDATE brandbos.audit_entries SET details = '{"by": "nobody"}' WHERE action = 'token_refreshed';
DELETE FROM brandbos.audit_entries WHERE id = (SELECT min(id) FROM brandbos.audit_entries WHERE action = 'update');
SQL
say "...and verification catches both"
sql <<'SQL'
SELECT * FROM brandbos.verify_audit();
SQL
expect "tampering detected" "changed row,deleted row" \
	"SELECT string_agg(problem, ',' ORDER BY problem) FROM brandbos.verify_audit()"
sql <<'SQL'
UPDATE pg_trigger SET tgenabled = 'A' WHERE tgrelid = 'brandbos.audit_entries'::regclass;
SQL

# ---------------------------------------------------------------------------------------------
banner "7. Tenant context and Row Level Security"
say "one call isolates a table by tenant: forced RLS, a policy per command, a default, an index"
sql <<'SQL'
CREATE TABLE documents (id bigserial PRIMARY KEY, tenant_id text NOT NULL, title text);
SELECT brandbos.enable_tenant_isolation('documents');
SELECT polname, pg_get_expr(polqual, polrelid) AS using_expr FROM pg_policy
 WHERE polrelid = 'documents'::regclass ORDER BY polname;
CREATE ROLE app_api NOLOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON documents TO app_api;
GRANT USAGE ON SEQUENCE documents_id_seq TO app_api;
GRANT brandbos_context_admin TO app_api;
SQL
say "the identity provider signs a token per user (brandbos.sign_token stands in for it here)"
TOKEN_ACME=$(bb_psql_value "$DEMO" "SELECT brandbos.sign_token('{\"sub\": \"alice\", \"tenant_id\": \"acme\", \"role\": \"authenticated\"}')")
TOKEN_GLOBEX=$(bb_psql_value "$DEMO" "SELECT brandbos.sign_token('{\"sub\": \"bob\", \"tenant_id\": \"globex\", \"role\": \"authenticated\"}')")
echo "acme:   ${TOKEN_ACME:0:40}..."
echo "globex: ${TOKEN_GLOBEX:0:40}..."
say "each request: BEGIN, switch to the API role, authenticate, work, COMMIT"
sql <<SQL
BEGIN;
SET LOCAL ROLE app_api;
SELECT brandbos.authenticate('$TOKEN_ACME') ->> 'sub' AS authenticated_as;
INSERT INTO documents (title) VALUES ('acme roadmap'), ('acme budget');
SELECT brandbos.current_tenant_id(), count(*) AS visible_rows FROM documents;
COMMIT;
BEGIN;
SET LOCAL ROLE app_api;
SELECT brandbos.authenticate('$TOKEN_GLOBEX') ->> 'sub' AS authenticated_as;
INSERT INTO documents (title) VALUES ('globex plan');
SELECT tenant_id, title FROM documents ORDER BY id;
UPDATE documents SET title = 'hijacked' WHERE tenant_id = 'acme';
COMMIT;
SQL
say "no context, no rows: a pooled connection starts every transaction empty"
sql <<'SQL'
BEGIN;
SET LOCAL ROLE app_api;
SELECT brandbos.current_tenant_id() AS tenant, count(*) AS visible_rows FROM documents;
COMMIT;
SQL
expect "isolation" "2|1|0" \
	"SELECT (SELECT count(*) FROM documents WHERE tenant_id = 'acme'), (SELECT count(*) FROM documents WHERE tenant_id = 'globex'), (SELECT count(*) FROM documents WHERE title = 'hijacked')"
say "a forged token (signed with another secret, or alg none) is refused"
FORGED="${TOKEN_ACME%.*}.$(printf 'forgedsignatureforgedsignatureforgedsig0')"
sql_fails 'token refused' <<SQL
BEGIN;
SELECT brandbos.authenticate('$FORGED');
SQL
sql_fails 'token refused' <<'SQL'
BEGIN;
SELECT brandbos.authenticate('eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5IiwidGVuYW50X2lkIjoiYWNtZSJ9.');
SQL
say "and the context cannot be written around authenticate()"
sql_fails 'can only be set by' <<'SQL'
BEGIN;
SELECT set_config('brandbos.request_tenant_id', 'acme', true);
SQL
say "nor can the request climb to another role, not even through a function's SET clause"
sql <<'SQL'
CREATE FUNCTION public.climb() RETURNS text LANGUAGE sql SET role = 'postgres' AS 'SELECT current_user';
GRANT EXECUTE ON FUNCTION public.climb() TO app_api;
SQL
sql_fails 'not allowed while a brandbos request context is set' <<'SQL'
BEGIN;
SET LOCAL ROLE app_api;
SELECT brandbos.set_context('alice', 'acme');
SELECT public.climb();
SQL
say "isolation always narrows: tenant and owner isolation on one table mean both, and a permissive policy of the owner's cannot widen it"
sql <<'SQL'
CREATE TABLE notes (id bigserial PRIMARY KEY, tenant_id text NOT NULL, user_id text NOT NULL, body text);
SELECT brandbos.enable_tenant_isolation('notes');
SELECT brandbos.enable_owner_isolation('notes');
CREATE POLICY everyone_reads ON notes FOR SELECT USING (true);   -- a careless extra policy
GRANT SELECT, INSERT ON notes TO app_api;
GRANT USAGE ON SEQUENCE notes_id_seq TO app_api;
BEGIN;
SET LOCAL ROLE app_api;
SELECT brandbos.set_context('alice', 'acme');
INSERT INTO notes (body) VALUES ('alice private');
COMMIT;
BEGIN;
SET LOCAL ROLE app_api;
SELECT brandbos.set_context('dave', 'acme');
INSERT INTO notes (body) VALUES ('dave private');
SELECT user_id, body FROM notes;   -- only dave's own note
COMMIT;
SQL
seen=$(bb_psql_value "$DEMO" "BEGIN; SET LOCAL ROLE app_api; SELECT brandbos.set_context('dave', 'acme');
	SELECT string_agg(user_id, ',') FROM notes; COMMIT;" | tail -n 1)
if [[ $seen != dave ]]; then echo "demo: owner isolation: dave saw '$seen'" >&2; exit 1; fi
say "every partition of an isolated table is isolated, also one created later"
sql <<'SQL'
CREATE TABLE events (tenant_id text NOT NULL, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT brandbos.enable_tenant_isolation('events');
CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
SELECT c.relname, c.relforcerowsecurity AS forced, count(p.*) AS policies
  FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
 WHERE c.relname LIKE 'events%' AND c.relkind IN ('r', 'p') GROUP BY 1, 2 ORDER BY 1;
SQL
sql <<'SQL'
SELECT * FROM brandbos.rls_report() WHERE table_name::text IN ('documents', 'notes', 'events', 'events_2026', 'events_2027');
SQL

# ---------------------------------------------------------------------------------------------
banner "8. Persona / deliberation-session bookkeeping"
say "personas, as a personas.json file would hold them"
sql <<'SQL'
SELECT brandbos.seed_personas('[
  {"code": "cfo", "name": "The CFO", "expertise": "finance", "system_prompt": "Guard the margins."},
  {"code": "cmo", "name": "The CMO", "expertise": "marketing", "system_prompt": "Grow the brand."},
  {"code": "cto", "name": "The CTO", "expertise": "engineering", "system_prompt": "Mind the debt."}
]'::jsonb) AS personas_written;
SQL
say "a session with two rounds, contributions, votes and a summary (all inside one request context)"
sql <<'SQL'
BEGIN;
SELECT brandbos.set_context('alice', 'acme');
SELECT brandbos.start_session('Should acme expand to Spain?', '{"market": "ES"}', 3, 1.00) AS sid \gset
SELECT brandbos.add_contribution(:'sid', 'cfo', 'Margins in Spain are thin.', 'initial_round', 0.0120, 610, 'gpt-4o');
SELECT brandbos.add_contribution(:'sid', 'cmo', 'The brand is unknown there.', 'initial_round', 0.0085, 440, 'gpt-4o');
SELECT brandbos.next_round(:'sid') AS round;
SELECT brandbos.set_phase(:'sid', 'deliberation');
SELECT brandbos.add_contribution(:'sid', 'cto', 'Localisation costs two sprints.', 'deliberation', 0.0100, 520, 'gpt-4o');
SELECT brandbos.set_phase(:'sid', 'voting');
SELECT brandbos.cast_vote(:'sid', 'cfo', 'no', 'Too risky now', 0.8);
SELECT brandbos.cast_vote(:'sid', 'cmo', 'yes', 'First mover', 0.6);
SELECT brandbos.cast_vote(:'sid', 'cto', 'no', 'Not this year', 0.7);
SELECT status, phase, round_number, total_cost, total_tokens FROM brandbos.sessions WHERE id = :'sid';
SELECT jsonb_pretty(brandbos.session_summary(:'sid'));
SELECT brandbos.complete_session(:'sid');
COMMIT;
SQL
say "a runaway session is killed; terminal states are final"
sql <<'SQL'
BEGIN;
SELECT brandbos.set_context('alice', 'acme');
SELECT brandbos.start_session('Loop forever?') AS sid2 \gset
SELECT brandbos.kill_session(:'sid2', 'token budget alarm');
SELECT status, killed_by, kill_reason, killed_at IS NOT NULL AS killed_at_set FROM brandbos.sessions WHERE id = :'sid2';
COMMIT;
SQL
sql_fails 'final|terminal' <<'SQL'
UPDATE brandbos.sessions SET status = 'active' WHERE status = 'killed';
SQL
expect "deliberation totals" "3|0.0305|1570" \
	"SELECT (SELECT count(*) FROM brandbos.contributions), (SELECT sum(total_cost) FROM brandbos.sessions WHERE status = 'completed'), (SELECT sum(total_tokens) FROM brandbos.sessions WHERE status = 'completed')"
say "every status change is in the audit log, with the actor"
sql <<'SQL'
SELECT action, user_id, tenant_id, details->>'from' AS "from", details->>'to' AS "to"
  FROM brandbos.audit_log WHERE action = 'session_status' ORDER BY id;
SQL

banner "done"
if grep -qE 'terminated by signal|PANIC' "$(bb_logfile "$DEMO")"; then
	echo "demo: the server log shows a crash" >&2
	exit 1
fi
echo "every step behaved as shown; the cluster is removed on exit (BB_KEEP=1 keeps it)"
