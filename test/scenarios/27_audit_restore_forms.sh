#!/usr/bin/env bash
# 27_audit_restore_forms — the three ways to restore a database with audited, protected and
# tenant-isolated tables keep the audit history and every secret (issue 11 point 7).
#
# Database src (preload): creds (protected token, audited, tenant isolation), notes (audited),
# a sealed block, later unsealed events, a 1100-byte user agent of 3-byte characters cut by
# set_request (issue 11 point 5: its dump must restore).  Copies:
#   full   pg_restore of the whole archive (nothing special needed)
#   split  pg_restore --schema-only, then PGOPTIONS='-c brandbos.restore_mode=on'
#          pg_restore --data-only
#   trig   pg_restore --schema-only, then PGOPTIONS='-c brandbos.restore_mode=on'
#          pg_restore --data-only --disable-triggers
# On each copy: pg_restore exits 0, row counts, decrypted values and the audit rows equal src,
# verify_audit is clean after sealing, brandbos's triggers are still ENABLE ALWAYS, new
# writes by an ordinary login role are audited with fresh ids and isolation still holds.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C=s27_audit_restore
PRELOAD=${S27_PRELOAD:-yes}		# S27_PRELOAD=no: the same on a cluster without preload
sc_cluster "$C" "${BB_PORT_S27:-55527}" "$PRELOAD"
# the restore session's options (without preload, brandbos must be loaded before the first
# ALTER TABLE of pg_restore, hence session_preload_libraries)
RESTORE_OPTS='-c brandbos.restore_mode=on'
if [[ $PRELOAD == no ]]; then RESTORE_OPTS+=' -c session_preload_libraries=brandbos'; fi
SOCK=$(bb_sockdir "$C")
PORT=$(bb_port "$C")
DIR=$(bb_clusterdir "$C")
pgtool() { bb_run_as_pg "$@" -h "$SOCK" -p "$PORT" -U postgres; }
in_db() { local db=$1; shift; BB_DB=$db "$@"; }

bb_psql "$C" >/dev/null <<'SQL'
CREATE DATABASE src;
CREATE ROLE app LOGIN;
SQL
in_db src bb_psql "$C" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE TABLE creds (id bigint PRIMARY KEY, tenant_id text NOT NULL, token text);
SELECT brandbos.protect_column('creds', 'token');
SELECT brandbos.enable_audit('creds');
SELECT brandbos.enable_tenant_isolation('creds');
CREATE TABLE notes (id bigint PRIMARY KEY, body text);
SELECT brandbos.enable_audit('notes');
GRANT brandbos_context_admin TO app;
GRANT SELECT, INSERT ON creds, notes TO app;
INSERT INTO creds SELECT g, 't' || (g % 2), 'tok-' || g || '-€' FROM generate_series(1, 20) g;
INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 10) g;
UPDATE notes SET body = 'changed' WHERE id = 3;
DELETE FROM notes WHERE id = 4;
SQL
# as the ordinary login role: an over-long user agent of 3-byte characters
in_db src bb_psql "$C" >/dev/null <<'SQL'
SET ROLE app;
BEGIN;
SELECT brandbos.set_request('10.0.0.1', repeat('€', 367));
SELECT brandbos.log_event('login', 'user', 'u1');
COMMIT;
RESET ROLE;
SELECT brandbos.seal_audit();
SELECT brandbos.log_event('after_seal', 'user', 'u2');
SQL

# with preload: a table owner (no superuser) whose refused attempt is recorded with names
# long enough that the recorded statement has to be cut (issue 11 point 5)
if [[ $PRELOAD == yes ]]; then
	bb_psql "$C" >/dev/null <<'SQL'
CREATE ROLE owner27 LOGIN;
SQL
	in_db src bb_psql "$C" >/dev/null <<'SQL'
GRANT CREATE ON SCHEMA public TO owner27;
GRANT CREATE ON DATABASE src TO owner27;
SET ROLE owner27;
SELECT format('CREATE SCHEMA %I', repeat('è', 31)) \gexec
SELECT format('CREATE TABLE %I.%I (id int PRIMARY KEY)', repeat('è', 31), repeat('é', 31)) \gexec
SELECT brandbos.enable_audit(format('%I.%I', repeat('è', 31), repeat('é', 31)));
SQL
	q=$(in_db src bb_psql_value "$C" "SELECT format('SET ROLE owner27; ALTER TABLE %I.%I DISABLE TRIGGER %I',
	                                         repeat('è', 31), repeat('é', 31), 'zz_brandbos_audit')")
	out=$(in_db src sc_try "$C" "$q")
	assert_match "src: the table owner's attempt to disable its audit trigger is refused" "ERROR" "$out"
	for _ in $(seq 50); do
		got=$(in_db src bb_psql_value "$C" "SELECT count(*) FROM brandbos.audit_entries WHERE action = 'tamper_attempt'")
		if [[ $got != 0 ]]; then break; fi
		sleep 0.2
	done
	got=$(in_db src sc_try "$C" "SELECT octet_length(details->>'statement') <= 123,
	                                    convert_from(convert_to(details::text, 'UTF8'), 'UTF8') = details::text,
	                                    details->>'statement' LIKE 'ALTER TABLE on table %é'
	                               FROM brandbos.audit_entries WHERE action = 'tamper_attempt'")
	assert_eq "src: the recorded attempt is cut at a character boundary (valid UTF-8)" "t|t|t" "$got"
fi

creds_fp="SELECT count(*) || ' ' || md5(string_agg(id || '|' || tenant_id || '|' || token, ',' ORDER BY id)) FROM creds_decrypted"
notes_fp="SELECT count(*) || ' ' || md5(string_agg(id || '|' || body, ',' ORDER BY id)) FROM notes"
audit_fp="SELECT count(*) || ' ' || max(id) || ' ' || md5(string_agg(id || ':' || encode(leaf_hash, 'hex'), ',' ORDER BY id)) FROM brandbos.audit_entries"
blocks_fp="SELECT count(*) || ' ' || md5(string_agg(block_id || ':' || encode(block_hash, 'hex'), ',' ORDER BY block_id)) FROM brandbos.audit_blocks"
SRC_CREDS=$(in_db src bb_psql_value "$C" "$creds_fp")
SRC_NOTES=$(in_db src bb_psql_value "$C" "$notes_fp")
SRC_AUDIT=$(in_db src bb_psql_value "$C" "$audit_fp")
SRC_BLOCKS=$(in_db src bb_psql_value "$C" "$blocks_fp")
SRC_MAX=$(in_db src bb_psql_value "$C" "SELECT max(id) FROM brandbos.audit_entries")
assert_match "src: 20 creds rows" "^20 " "$SRC_CREDS"
got=$(in_db src sc_try "$C" "SELECT octet_length(user_agent), length(user_agent),
                                    convert_from(convert_to(user_agent, 'UTF8'), 'UTF8') = user_agent
                               FROM brandbos.audit_entries WHERE action = 'login'")
assert_eq "src: the user agent was cut at a character boundary (1023 bytes, 341 characters)" "1023|341|t" "$got"

pgtool pg_dump -Fc -f "$DIR/src.dump" src

restore_form() {
	local form=$1 rc=0 out
	pgtool createdb "$form"
	case $form in
	full)
		out=$(pgtool pg_restore -d full "$DIR/src.dump" 2>&1) || rc=$?
		;;
	split)
		out=$(pgtool pg_restore --schema-only -d split "$DIR/src.dump" 2>&1) || rc=$?
		if (( rc == 0 )); then
			out=$(PGOPTIONS=$RESTORE_OPTS \
				pgtool pg_restore --data-only -d split "$DIR/src.dump" 2>&1) || rc=$?
		fi
		;;
	trig)
		out=$(pgtool pg_restore --schema-only -d trig "$DIR/src.dump" 2>&1) || rc=$?
		if (( rc == 0 )); then
			out=$(PGOPTIONS=$RESTORE_OPTS \
				pgtool pg_restore --data-only --disable-triggers -d trig "$DIR/src.dump" 2>&1) || rc=$?
		fi
		;;
	esac
	assert_eq "$form: pg_restore exits 0 without an error" "0" "$rc$(grep -E 'ERROR|error:' <<<"$out" || true)"
}

for form in full split trig; do
	restore_form "$form"
	assert_eq "$form: creds rows and their decrypted tokens equal src" "$SRC_CREDS" "$(in_db "$form" sc_try "$C" "$creds_fp")"
	assert_eq "$form: notes rows equal src" "$SRC_NOTES" "$(in_db "$form" sc_try "$C" "$notes_fp")"
	assert_eq "$form: the audit rows equal src (no row added, none lost)" "$SRC_AUDIT" "$(in_db "$form" sc_try "$C" "$audit_fp")"
	assert_eq "$form: the sealed blocks equal src" "$SRC_BLOCKS" "$(in_db "$form" sc_try "$C" "$blocks_fp")"
	got=$(in_db "$form" sc_try "$C" "SELECT string_agg(t.tgrelid::regclass || '.' || t.tgname || '=' || t.tgenabled::text, ' ' ORDER BY 1)
	                                   FROM pg_trigger t WHERE t.tgname LIKE 'zz_brandbos%' AND NOT t.tgisinternal
	                                    AND t.tgenabled <> 'A'")
	assert_eq "$form: every brandbos trigger is still ENABLE ALWAYS" "" "$got"
	got=$(in_db "$form" sc_try "$C" "SELECT count(*) FROM brandbos.column_registry
	                                  WHERE brandbos.protection_problem(table_oid, column_name) IS NOT NULL")
	assert_eq "$form: the protected column is guarded" "0" "$got"
	# new writes by the ordinary login role: audited with fresh ids, sealed, verified
	got=$(in_db "$form" sc_try "$C" "SET ROLE app;
	                                 BEGIN;
	                                 SELECT brandbos.set_context('u9', 't1');
	                                 INSERT INTO creds VALUES (100, 't1', 'tok-new');
	                                 INSERT INTO notes VALUES (100, 'new note');
	                                 SELECT count(*) FROM creds;
	                                 COMMIT;" | tail -n1)
	assert_eq "$form: isolation holds for the login role (its tenant's 10 rows + its new one)" "11" "$got"
	got=$(in_db "$form" sc_try "$C" "SELECT count(*) || ' ' || min(id) FROM brandbos.audit_entries WHERE id > $SRC_MAX")
	assert_eq "$form: the login role's two inserts are audited after the restored ids" "2 $((SRC_MAX + 1))" "$got"
	in_db "$form" bb_psql_value "$C" "SELECT brandbos.seal_audit()" >/dev/null
	got=$(in_db "$form" sc_try "$C" "SELECT count(*) FROM brandbos.audit_log WHERE block_id IS NULL")
	assert_eq "$form: every row is sealed" "0" "$got"
	got=$(in_db "$form" sc_try "$C" "SELECT coalesce(string_agg(concat_ws(':', block_id, audit_id, problem), ' '), 'clean') FROM brandbos.verify_audit()")
	assert_eq "$form: verify_audit is clean on the copy" "clean" "$got"
	got=$(in_db "$form" sc_try "$C" "SELECT octet_length(user_agent) || ' ' || (convert_from(convert_to(user_agent, 'UTF8'), 'UTF8') = user_agent)
	                                   FROM brandbos.audit_entries WHERE action = 'login'")
	assert_eq "$form: the cut user agent arrived intact" "1023 true" "$got"
done

# restore mode is a superuser's, at connection start only
got=$(in_db full sc_try "$C" "SELECT brandbos.current_user_id(); SET brandbos.restore_mode = on" 2>&1)
assert_match "restore mode cannot be switched on inside a session" "cannot be (set|changed)" "$got"
out=$(PGOPTIONS=$RESTORE_OPTS bb_run_as_pg psql -X -At -q -h "$SOCK" -p "$PORT" -U app -d full \
	-c "BEGIN; SELECT brandbos.set_context('u9', 't1'); INSERT INTO notes VALUES (301, 'app in restore mode'); COMMIT;" 2>&1 || true)
got=$(in_db full sc_try "$C" "SELECT (SELECT count(*) FROM notes WHERE id = 301) || '=' ||
                                     (SELECT count(*) FROM brandbos.audit_entries WHERE resource_type = 'public.notes' AND resource_id = '301')")
if [[ $got == 1=1 || ( $got == 0=0 && $out == *'permission denied'* ) ]]; then
	pass "an ordinary login role asking for restore mode is refused or audited as usual ($got)"
else
	fail "an ordinary login role asking for restore mode is refused or audited as usual" "$got" "$out"
fi
got=$(PGOPTIONS=$RESTORE_OPTS bb_run_as_pg psql -X -At -h "$SOCK" -p "$PORT" -U postgres -d full \
	-c "SET ROLE app; BEGIN; SELECT brandbos.set_context('u9', 't1'); INSERT INTO notes VALUES (200, 'as app'); COMMIT;
	    RESET ROLE; SELECT count(*) FROM brandbos.audit_entries WHERE resource_id = '200'" 2>&1 | tail -n1 || true)
assert_eq "restore mode of a superuser's session does not silence a SET ROLE to a login role" "1" "$got"

# the guards keep working in restore mode: only DISABLE/ENABLE TRIGGER ALL is skipped
rm_sql() { PGOPTIONS=$RESTORE_OPTS bb_run_as_pg psql -X -At -q -h "$SOCK" -p "$PORT" -U postgres -d full -c "$1" 2>&1 || true; }
got=$(rm_sql "ALTER TABLE creds DISABLE TRIGGER zz_brandbos_protect")
assert_match "restore mode: disabling the protect trigger by name is still refused" "ERROR" "$got"
if [[ $PRELOAD == yes ]]; then		# the audit guard exists with preload only (README)
	got=$(rm_sql "ALTER TABLE notes DISABLE TRIGGER USER")
	assert_match "restore mode: DISABLE TRIGGER USER on an audited table is still refused" "ERROR" "$got"
	got=$(rm_sql "ALTER TABLE notes DISABLE TRIGGER ALL, ADD COLUMN extra int")
	assert_match "restore mode: DISABLE TRIGGER ALL combined with another change is not skipped" "ERROR" "$got"
fi
got=$(rm_sql "ALTER TABLE creds DISABLE TRIGGER ALL, ADD COLUMN extra int")
assert_match "restore mode: DISABLE TRIGGER ALL with another change on a protected table is not skipped" "ERROR" "$got"
got=$(in_db full sc_try "$C" "SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('creds'::regclass, 'notes'::regclass)
                                AND tgname LIKE 'zz_brandbos%' AND tgenabled <> 'A'")
assert_eq "restore mode: brandbos's triggers are all still ENABLE ALWAYS" "0" "$got"
if grep -q 'brandbos restore mode: audit triggers write nothing in this session' "$(bb_logfile "$C")"; then
	pass "restore mode is named in the server log"
else
	fail "restore mode is named in the server log"
fi

check "server did not crash" bash -c "! grep -qE 'terminated by signal|PANIC' '$(bb_logfile "$C")'"
sc_finish
