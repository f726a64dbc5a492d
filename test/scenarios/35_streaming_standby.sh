#!/usr/bin/env bash
# 35_streaming_standby — a streaming hot standby made with pg_basebackup, then promoted
# (README "Replicas and standbys").
#
#   1. primary (preloaded, sealer every 200 ms): a protected and audited table under tenant
#      isolation (two tenants), a deliberation session; everything sealed, a digest kept
#   2. standby (bb_cluster_standby: same root key file, the primary's settings):
#      - <table>_decrypted gives the plaintext, the envelopes are the primary's bytes;
#      - set_context / current_tenant_id and the policies: each tenant sees only its rows
#        (also through the _decrypted view), no context sees none, sessions likewise;
#      - verify_audit() is clean and the primary's digest verifies (read-only);
#      - no brandbos background worker runs, and no ERROR/FATAL line in its log;
#      - DML and every brandbos function that writes fail with 25006, the server survives
#        and goes on replaying
#      - a key destroyed on the primary (force) is gone from a standby session that had
#        unwrapped it: the next read fails with 55000
#   3. the primary's sealer is slowed down to leave audit rows unsealed, then it stops and the
#      standby is promoted: its sealer starts and seals the rows the old primary left, and the
#      new writes; verify_audit() is clean, the old digest still verifies, the new one too
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

P=s35_primary
S=s35_standby
SC_CLUSTERS+=("$P" "$S")
bb_cluster_create "$P" 56335 yes
sc_conf_set "$P" brandbos.audit_seal_interval 200ms
sc_conf_set "$P" log_line_prefix '%m [%p] %b '	# %b: the backend type, to tell the sealer's lines
bb_cluster_start "$P"
sc_helpers "$P"

# shellcheck disable=SC2016   # dollar quotes are SQL
bb_psql "$P" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE ROLE s35_app NOLOGIN;
GRANT brandbos_context_admin, brandbos_decryptor TO s35_app;
CREATE TABLE docs (id int PRIMARY KEY, tenant_id text NOT NULL, secret text, body text);
SELECT brandbos.protect_column('docs', 'secret');
SELECT brandbos.enable_audit('docs');
INSERT INTO docs SELECT g, CASE WHEN g % 2 = 0 THEN 'tenant-a' ELSE 'tenant-b' END,
                        'secret-' || g, 'body ' || g FROM generate_series(1, 20) g;
UPDATE docs SET body = 'edited' WHERE id = 1;
SELECT brandbos.enable_tenant_isolation('docs');
GRANT SELECT ON docs, docs_decrypted TO s35_app;
SELECT brandbos.seed_personas('[{"code": "cfo", "name": "CFO", "expertise": "finance", "system_prompt": "p"}]');
BEGIN;
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT brandbos.start_session('standby question', NULL, 5, 10) AS sid \gset
SELECT brandbos.add_contribution(:'sid', 'cfo', 'an answer', 'initial_round', 0.0100, 100, 'm');
COMMIT;
-- an unprotected helper table the standby reads to know what to expect
CREATE TABLE expected_plain AS SELECT g AS id, 'secret-' || g AS secret FROM generate_series(1, 20) g;
SQL
SID=$(bb_psql_value "$P" "SELECT id FROM brandbos.sessions WHERE problem_statement = 'standby question'")

# shellcheck disable=SC2317   # wait_sealed and wait_replay are called through check
# wait until the background worker sealed every audit row (no seal_audit() call)
wait_sealed() {
	local name=$1 i left=""
	for ((i = 0; i < 150; i++)); do
		left=$(bb_psql_value "$name" 'SELECT count(*) FROM brandbos.audit_log WHERE block_id IS NULL')
		if [[ $left == 0 ]]; then return 0; fi
		sleep 0.2
	done
	echo "# $name: still $left unsealed audit rows" >&2
	return 1
}
# shellcheck disable=SC2317   # (as above)
# wait until the standby replayed everything the primary wrote so far
wait_replay() {
	local lsn i
	lsn=$(bb_psql_value "$P" 'SELECT pg_current_wal_lsn()')
	for ((i = 0; i < 300; i++)); do
		if [[ $(bb_psql_value "$S" "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn") == t ]]; then return 0; fi
		sleep 0.1
	done
	echo "# standby did not replay up to $lsn" >&2
	return 1
}

check "primary: the background worker seals every audit row" wait_sealed "$P"
AUDIT_ROWS=$(bb_psql_value "$P" 'SELECT count(*) FROM brandbos.audit_log')
DIGEST=$(bb_psql_value "$P" 'SELECT brandbos.audit_digest()')
ENVELOPES=$(bb_psql_value "$P" "SELECT md5(string_agg(secret, ',' ORDER BY id)) FROM docs")
PLAIN_SQL="SELECT md5(string_agg(id || ':' || secret, ',' ORDER BY id)) FROM docs_decrypted"
EXPECT=$(bb_psql_value "$P" "SELECT md5(string_agg(id || ':' || secret, ',' ORDER BY id)) FROM expected_plain")
assert_eq "primary: docs_decrypted gives the plaintext" "$EXPECT" "$(sc_try "$P" "$PLAIN_SQL")"

# ---- the standby ----------------------------------------------------------------------------
bb_cluster_standby "$S" 56336 "$P"
assert_eq "standby: its root key file is mode 0600" "600" "$(stat -c %a "$(bb_keyfile "$S")")"
assert_eq "standby: its root key is the primary's" "$(cat "$(bb_keyfile "$P")")" "$(cat "$(bb_keyfile "$S")")"
bb_cluster_start "$S"
check "standby: replays the primary's WAL" wait_replay
assert_eq "standby: pg_is_in_recovery()" "t" "$(sc_try "$S" 'SELECT pg_is_in_recovery()')"
assert_eq "standby: loaded the same root key (fingerprint of the data keys)" "t" \
	"$(sc_try "$S" 'SELECT brandbos.root_key_loaded()')"

assert_eq "standby: docs_decrypted gives the plaintext of all 20 rows" "$EXPECT" "$(sc_try "$S" "$PLAIN_SQL")"
assert_eq "standby: the stored envelopes are the primary's bytes" "$ENVELOPES" \
	"$(sc_try "$S" "SELECT md5(string_agg(secret, ',' ORDER BY id)) FROM docs")"
assert_eq "standby: no plaintext is stored in docs" "0" \
	"$(sc_try "$S" "SELECT count(*) FROM docs WHERE secret LIKE 'secret-%'")"
assert_eq "standby: key_status() reads (one active key)" "1:active" \
	"$(sc_try "$S" "SELECT string_agg(version || ':' || status, ' ') FROM brandbos.key_status()")"

# as an ordinary role with a request context: each tenant sees only its rows
as_tenant() {
	local tenant=$1 sql=$2
	# (set_context's void result is the first line of the output)
	bb_psql "$S" -At -c "BEGIN" -c "SET LOCAL ROLE s35_app" \
		-c "SELECT brandbos.set_context('user-' || right('$tenant', 1), '$tenant')" \
		-c "$sql" -c "COMMIT" 2>&1 | tail -n +2 || true
}
assert_eq "standby: set_context + current_tenant_id()/current_user_id()" "tenant-a|user-a" \
	"$(as_tenant tenant-a "SELECT brandbos.current_tenant_id() || '|' || brandbos.current_user_id()")"
assert_eq "standby: tenant A sees only its 10 rows" "10|0" \
	"$(as_tenant tenant-a "SELECT count(*) || '|' || count(*) FILTER (WHERE tenant_id <> 'tenant-a') FROM docs")"
assert_eq "standby: tenant B sees only its 10 rows" "10|0" \
	"$(as_tenant tenant-b "SELECT count(*) || '|' || count(*) FILTER (WHERE tenant_id <> 'tenant-b') FROM docs")"
assert_eq "standby: tenant A reads its plaintext through docs_decrypted, nothing of B" "10|secret-10|secret-8" \
	"$(as_tenant tenant-a "SELECT count(*) || '|' || min(secret) || '|' || max(secret) FROM docs_decrypted")"
assert_eq "standby: tenant A probing a row of B by key finds nothing" "0" \
	"$(as_tenant tenant-a "SELECT count(*) FROM docs WHERE id = 1")"
assert_eq "standby: without a context the role sees no row" "0" \
	"$(bb_psql "$S" -At -c 'SET ROLE s35_app' -c 'SELECT count(*) FROM docs' 2>&1 || true)"
assert_eq "standby: the session is visible to its tenant with its totals" "1|0.0100|100" \
	"$(as_tenant tenant-a "SELECT count(*) || '|' || min(total_cost) || '|' || min(total_tokens) FROM brandbos.sessions")"
assert_eq "standby: session_summary() of tenant A's session reads" "t" \
	"$(as_tenant tenant-a "SELECT brandbos.session_summary('$SID') IS NOT NULL")"
assert_eq "standby: tenant B does not see tenant A's session" "0" \
	"$(as_tenant tenant-b "SELECT count(*) FROM brandbos.sessions")"

assert_eq "standby: verify_audit() finds no problem" "0" "$(sc_try "$S" 'SELECT count(*) FROM brandbos.verify_audit()')"
assert_eq "standby: the primary's digest verifies (verify_audit_digest)" "t" \
	"$(sc_try "$S" "SELECT brandbos.verify_audit_digest('$DIGEST')")"
assert_eq "standby: verify_audit(NULL, digest) finds no problem" "0" \
	"$(sc_try "$S" "SELECT count(*) FROM brandbos.verify_audit(NULL, '$DIGEST')")"
assert_eq "standby: audit_digest() is the primary's digest" "$DIGEST" "$(sc_try "$S" 'SELECT brandbos.audit_digest()')"
assert_eq "standby: docs_safe reads (20 rows)" "20" "$(sc_try "$S" 'SELECT count(*) FROM docs_safe')"
assert_eq "standby: the audit rows arrived, all in blocks" "$AUDIT_ROWS|0" \
	"$(sc_try "$S" "SELECT count(*) || '|' || count(*) FILTER (WHERE block_id IS NULL) FROM brandbos.audit_log")"

# the sealer is registered to start once recovery has finished: not here, not even later
sleep 2	# ten seal intervals
assert_eq "standby: no brandbos background worker in pg_stat_activity" "0" \
	"$(sc_try "$S" "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'brandbos%'")"
assert_eq "primary: its sealer runs (pg_stat_activity)" "1" \
	"$(sc_try "$P" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'brandbos audit sealer'")"
got=$(grep -E '(ERROR|FATAL|PANIC):' "$(bb_logfile "$S")" || true)
assert_eq "standby: no ERROR/FATAL line in its server log (before any write was tried)" "" "$got"

# ---- writes on the standby: PostgreSQL's read-only SQLSTATE --------------------------------
while IFS='|' read -r what sql; do
	assert_eq "standby: $what fails with 25006" "25006" "$(sc_sqlstate "$S" "$sql")"
done <<SQL
INSERT into a protected table|INSERT INTO docs VALUES (100, 'tenant-a', 'x', 'y')
UPDATE of a protected column|UPDATE docs SET secret = 'changed' WHERE id = 2
DELETE from an audited table|DELETE FROM docs WHERE id = 2
seal_audit()|SELECT brandbos.seal_audit()
log_event()|SELECT brandbos.log_event('standby', 'test', 'x', '{}')
rotate_key()|SELECT brandbos.rotate_key()
destroy_key()|SELECT brandbos.destroy_key(1, force => true)
rewrap_keys()|SELECT brandbos.rewrap_keys()
reencrypt()|SELECT brandbos.reencrypt('docs')
protect_column()|SELECT brandbos.protect_column('docs', 'body')
unprotect_column()|SELECT brandbos.unprotect_column('docs', 'secret')
enable_audit()|SELECT brandbos.enable_audit('expected_plain')
disable_audit()|SELECT brandbos.disable_audit('docs')
enable_tenant_isolation()|SELECT brandbos.enable_tenant_isolation('expected_plain', 'secret')
disable_isolation()|SELECT brandbos.disable_isolation('docs')
upsert_persona()|SELECT brandbos.upsert_persona('cto', 'CTO', 'tech', 'p')
seed_personas()|SELECT brandbos.seed_personas('[{"code": "cto", "name": "CTO", "expertise": "t", "system_prompt": "p"}]')
cast_vote()|SELECT brandbos.cast_vote('$SID', 'cfo', 'yes', 'r', 0.9)
complete_session()|SELECT brandbos.complete_session('$SID')
kill_session()|SELECT brandbos.kill_session('$SID', 'standby')
gdpr_erase()|SELECT brandbos.gdpr_erase('user-a')
retire_key()|SELECT brandbos.retire_key(1)
redact_audit()|SELECT brandbos.redact_audit(1, 'standby')
prune_audit()|SELECT brandbos.prune_audit(now())
SQL
assert_match "standby: add_contribution() in a context fails with 25006" 'ERROR: +25006' \
	"$(bb_psql "$S" -v VERBOSITY=verbose -c "BEGIN" -c "SELECT brandbos.set_context('user-a', 'tenant-a')" \
		-c "SELECT brandbos.add_contribution('$SID', 'cfo', 'late', 'deliberation', 0, 1, 'm')" 2>&1 || true)"
check "standby: no backend crashed" bash -c "! grep -qE 'terminated by signal|PANIC' '$(bb_logfile "$S")'"
bb_psql "$P" -c "INSERT INTO docs VALUES (21, 'tenant-b', 'secret-21', 'late row')" \
	-c "INSERT INTO expected_plain VALUES (21, 'secret-21')" >/dev/null
check "standby: still replays after the refused writes" wait_replay
EXPECT=$(bb_psql_value "$P" "SELECT md5(string_agg(id || ':' || secret, ',' ORDER BY id)) FROM expected_plain")
assert_eq "standby: a row written on the primary since then decrypts" "$EXPECT" "$(sc_try "$S" "$PLAIN_SQL")"

# ---- a key destroyed on the primary is gone from open standby sessions ------------------------
# (the primary's relcache invalidation of brandbos.data_keys is in its WAL; replaying it
# flushes the unwrapped keys of every standby backend)
bb_psql "$P" >/dev/null <<'SQL'
CREATE TABLE shred (id int PRIMARY KEY, tok text);
SELECT brandbos.protect_column('shred', 'tok');
INSERT INTO shred VALUES (1, 'shred-me');
SQL
check "standby: replays the table to shred" wait_replay
sc_session_open "$S"
sc_session 'SELECT tok FROM shred_decrypted'
assert_eq "standby session: reads the value (and keeps data key 1 unwrapped)" "shred-me" "$SC_SESSION_RESULT"
bb_psql "$P" -At >/dev/null <<'SQL'
SELECT brandbos.rotate_key();
SELECT brandbos.reencrypt('docs');
SELECT brandbos.destroy_key(1, force => true);
SQL
check "standby: replays rotate_key, reencrypt and destroy_key" wait_replay
sc_session 'SELECT tok FROM shred_decrypted'
assert_match "standby session: the same session can no longer read the shredded value (55000)" \
	'^ERROR: +55000: data key version 1 has been destroyed' "$SC_SESSION_RESULT"
sc_session "$PLAIN_SQL"
assert_eq "standby session: docs, re-sealed under key 2, still decrypt" "$EXPECT" "$SC_SESSION_RESULT"
sc_session_close

# ---- promotion ------------------------------------------------------------------------------
check "primary: everything is sealed before the slow-down" wait_sealed "$P"
# the old primary's sealer waits an hour from now on, so audit rows stay unsealed there
bb_psql "$P" -c "ALTER SYSTEM SET brandbos.audit_seal_interval = '1h'" -c 'SELECT pg_reload_conf()' >/dev/null
sleep 1
BASE=$(bb_psql_value "$P" 'SELECT count(*) FROM brandbos.audit_log')
bb_psql "$P" -c "UPDATE docs SET body = 'before failover' WHERE id IN (3, 4, 5)" >/dev/null
UNSEALED=$(bb_psql_value "$P" 'SELECT count(*) FROM brandbos.audit_log WHERE block_id IS NULL')
assert_eq "old primary: the 3 updates since the slow-down are left unsealed" "3" "$UNSEALED"
check "standby: replays the unsealed rows" wait_replay
bb_cluster_stop "$P"

LOG_BEFORE=$(wc -l <"$(bb_logfile "$S")")
assert_eq "pg_promote() on the standby" "t" "$(sc_try "$S" 'SELECT pg_promote(true, 60)')"
assert_eq "promoted: pg_is_in_recovery() is false" "f" "$(sc_try "$S" 'SELECT pg_is_in_recovery()')"
sealer=0
for ((i = 0; i < 100; i++)); do
	sealer=$(sc_try "$S" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'brandbos audit sealer'")
	if [[ $sealer == 1 ]]; then break; fi
	sleep 0.1
done
assert_eq "promoted: the sealer starts (pg_stat_activity)" "1" "$sealer"
check "promoted: the sealer seals the rows the old primary left" wait_sealed "$S"

bb_psql "$S" >/dev/null <<'SQL'
INSERT INTO docs SELECT g, 'tenant-a', 'secret-' || g, 'after failover' FROM generate_series(22, 26) g;
INSERT INTO expected_plain SELECT g, 'secret-' || g FROM generate_series(22, 26) g;
UPDATE docs SET secret = 'secret-2' WHERE id = 2;
SELECT brandbos.log_event('failover', 'cluster', 'promoted', '{"from": "standby"}');
SQL
assert_eq "promoted: new protected rows decrypt" "26|0" \
	"$(sc_try "$S" "SELECT count(*) || '|' || count(*) FILTER (WHERE d.secret <> e.secret) FROM docs_decrypted d JOIN expected_plain e USING (id)")"
assert_eq "promoted: the new envelopes are sealed, not plaintext" "0" \
	"$(sc_try "$S" "SELECT count(*) FROM docs WHERE secret LIKE 'secret-%'")"
check "promoted: the sealer seals the new audit rows (no seal_audit() call)" wait_sealed "$S"
assert_eq "promoted: every audit row is in a block (the 3 updates, then 5 inserts, 1 update, 1 event)" "$((BASE + UNSEALED + 7))|0" \
	"$(sc_try "$S" "SELECT count(*) || '|' || count(*) FILTER (WHERE block_id IS NULL) FROM brandbos.audit_log")"
assert_eq "promoted: verify_audit() finds no problem" "0" "$(sc_try "$S" 'SELECT count(*) FROM brandbos.verify_audit()')"
assert_eq "promoted: the digest taken on the old primary still verifies" "t" \
	"$(sc_try "$S" "SELECT brandbos.verify_audit_digest('$DIGEST')")"
assert_eq "promoted: verify_audit(NULL, old digest) finds no problem" "0" \
	"$(sc_try "$S" "SELECT count(*) FROM brandbos.verify_audit(NULL, '$DIGEST')")"
assert_eq "promoted: a new digest verifies" "t" \
	"$(sc_try "$S" "SELECT brandbos.verify_audit_digest(brandbos.audit_digest())")"
assert_eq "promoted: seal_audit() works (nothing left: NULL)" "" "$(sc_try "$S" 'SELECT brandbos.seal_audit()')"
assert_eq "promoted: rotate_key() works" "3" "$(sc_try "$S" 'SELECT brandbos.rotate_key()')"
got=$(tail -n +"$((LOG_BEFORE + 1))" "$(bb_logfile "$S")" | grep -E '(ERROR|FATAL|PANIC):' | grep -vE '\] walreceiver ' || true)
assert_eq "promoted: no ERROR/FATAL line since the promotion (the sealer's included)" "" "$got"
got=$(grep -E '\] brandbos audit sealer .*(ERROR|FATAL|PANIC):' "$(bb_logfile "$S")" || true)
assert_eq "the sealer never logged an error on this node" "" "$got"
sc_finish
