#!/usr/bin/env bash
# 28_audit_guard — issue 11 points 1 and 2 with committed transactions (pgTAP's
# 42_audit_guard runs in one rolled-back transaction, where the recording worker cannot see
# the extension, and where no transaction commits).
#
#   1. a table owner who is not a superuser tries to silence the audit of its table: each
#      refused attempt leaves a tamper_attempt row naming the role and the command;
#      DROP TABLE leaves a table_dropped row.
#   2. a superuser who gets past the append-only trigger through the catalog and deletes a
#      committed row before it is sealed: the sealer does not count that id as rolled back
#      (the preloaded xid ring knows its transaction committed), so verify_audit reports it;
#      ids of really rolled-back writers (ROLLBACK, ROLLBACK TO SAVEPOINT) stay clean.  Then a
#      superuser's swallowing CREATE TRIGGER on audit_entries is refused and recorded, and
#      later events still arrive.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=audit_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/audit_lib.sh"

C=audit_guard
audit_cluster "$C" "${BB_SCENARIO_PORT:-55528}" yes "brandbos.audit_seal_interval = 1h"
bb_psql "$C" -c 'CREATE EXTENSION brandbos'
install_sqlstate_of "$C"
bb_psql "$C" >/dev/null <<'SQL'
CREATE ROLE bb25_owner LOGIN;
CREATE SCHEMA bb25 AUTHORIZATION bb25_owner;
GRANT EXECUTE ON FUNCTION public.sqlstate_of(text) TO bb25_owner;
SET ROLE bb25_owner;
CREATE TABLE bb25.t (id int PRIMARY KEY, v text);
CREATE TABLE bb25.gone (id int PRIMARY KEY);
SELECT brandbos.enable_audit('bb25.t');
SELECT brandbos.enable_audit('bb25.gone');
SQL

owner() { q "$C" "SET ROLE bb25_owner; $1"; }
wait_rows() {   # wait_rows SQL-count MIN
	local i
	for ((i = 0; i < 50; i++)); do
		if (( $(q "$C" "$1") >= $2 )); then return 0; fi
		sleep 0.2
	done
	return 1
}

# ---- 1. the table owner ---------------------------------------------------------------------
is "$(owner "SELECT sqlstate_of('ALTER TRIGGER zz_brandbos_audit ON bb25.t RENAME TO quiet')")" 42501 \
	"the owner's ALTER TRIGGER ... RENAME is refused (42501)"
is "$(owner "SELECT sqlstate_of('CREATE OR REPLACE TRIGGER zz_brandbos_audit AFTER INSERT OR UPDATE OR DELETE ON bb25.t FOR EACH ROW WHEN (false) EXECUTE FUNCTION brandbos.audit_trigger()')")" 42501 \
	"the owner's CREATE OR REPLACE TRIGGER ... WHEN (false) is refused (42501)"
is "$(owner "SELECT sqlstate_of('ALTER TABLE bb25.t DISABLE TRIGGER ALL')")" 42501 \
	"the owner's DISABLE TRIGGER ALL on an audited table is refused (42501)"
check "the three refusals are recorded as tamper_attempt rows" \
	wait_rows "SELECT count(*) FROM brandbos.audit_entries WHERE action = 'tamper_attempt'
	            AND details->>'attempted_by' = 'bb25_owner' AND details->>'statement' LIKE '% on table bb25.t'" 3
is "$(q "$C" "SELECT string_agg(details->>'statement', ' | ' ORDER BY details->>'statement') FROM brandbos.audit_entries
               WHERE action = 'tamper_attempt' AND details->>'attempted_by' = 'bb25_owner'")" \
	"ALTER TABLE on table bb25.t | ALTER TRIGGER on table bb25.t | CREATE TRIGGER on table bb25.t" \
	"each tamper_attempt row names the command and the table"
is "$(q "$C" "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'bb25.t'::regclass AND tgname LIKE 'zz_brandbos_audit%'
               AND tgenabled = 'A' AND tgqual IS NULL")" 2 "the audit triggers are untouched"
# an ordinary login role's refused commands on the audit tables write nothing and start no
# recording worker (they would fail PostgreSQL's own permission checks anyway)
q "$C" "CREATE ROLE bb28_nobody LOGIN; GRANT EXECUTE ON FUNCTION public.sqlstate_of(text) TO bb28_nobody" >/dev/null
is "$(q "$C" "SET ROLE bb28_nobody;
              SELECT string_agg(DISTINCT sqlstate_of(c), ',') FROM (VALUES
                ('TRUNCATE brandbos.audit_entries'), ('TRUNCATE brandbos.audit_blocks'),
                ('ALTER TABLE brandbos.audit_entries DISABLE TRIGGER ALL'),
                ('TRUNCATE brandbos.audit_entries'), ('TRUNCATE brandbos.audit_entries')) v(c)")" 42501 \
	"an ordinary role's TRUNCATE / ALTER of the audit tables is refused (42501)"
sleep 2
is "$(q "$C" "SELECT count(*) FROM brandbos.audit_entries WHERE action = 'tamper_attempt'
               AND details->>'attempted_by' = 'bb28_nobody'")" 0 \
	"... and writes no tamper_attempt row (no worker per statement for a role that could not do it)"
is "$(owner "SELECT sqlstate_of('DROP TABLE bb25.gone')")" 00000 "the owner may drop an audited table"
is "$(q "$C" "SELECT format('%s %s %s', resource_id, details->>'dropped_by', db_user) FROM brandbos.audit_entries
               WHERE action = 'table_dropped'")" "bb25.gone bb25_owner bb25_owner" \
	"the drop is recorded as table_dropped, by the owner"

# ---- 2. the superuser -------------------------------------------------------------------------
check "everything so far seals" seal_until_sealed "$C"

bb_psql "$C" -At >/dev/null <<'SQL'
SELECT brandbos.log_event('ev', 'bb25', 'kept-1');
SELECT brandbos.log_event('ev', 'bb25', 'victim');
BEGIN;
SELECT brandbos.log_event('ev', 'bb25', 'rolled-back');
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT brandbos.log_event('ev', 'bb25', 'rolled-back-savepoint');
ROLLBACK TO SAVEPOINT s;
SELECT brandbos.log_event('ev', 'bb25', 'kept-2');
COMMIT;
SQL
victim=$(q "$C" "SELECT id FROM brandbos.audit_entries WHERE resource_id = 'victim'")
# past the append-only trigger through the catalog (no hook sees it), before the next seal
bb_psql "$C" >/dev/null <<'SQL'
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'brandbos.audit_entries'::regclass AND tgname = 'append_only';
DELETE FROM brandbos.audit_entries WHERE resource_id = 'victim';
UPDATE pg_trigger SET tgenabled = 'A' WHERE tgrelid = 'brandbos.audit_entries'::regclass AND tgname = 'append_only';
SQL
check "the rows after the deletion seal" seal_until_sealed "$C"
is "$(q "$C" "SELECT count(*) FROM brandbos.audit_blocks WHERE $victim = ANY (missing_ids)")" 0 \
	"the deleted row's id is not sealed as rolled back"
is "$(q "$C" "SELECT count(*) FROM brandbos.audit_blocks WHERE $((victim + 1)) = ANY (missing_ids)
                                                           AND $((victim + 2)) = ANY (missing_ids)")" 1 \
	"the ids of the ROLLBACK and the ROLLBACK TO SAVEPOINT are sealed as rolled back"
is "$(q "$C" "SELECT string_agg(format('%s %s', audit_id, problem), ', ') FROM brandbos.verify_audit()")" \
	"$victim deleted row" "verify_audit reports the committed row that was deleted before its seal, and nothing else"

bb_psql "$C" -c "CREATE FUNCTION public.swallow() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN RETURN NULL; END\$\$" >/dev/null
is "$(q "$C" "SELECT sqlstate_of('CREATE TRIGGER swallow BEFORE INSERT ON brandbos.audit_entries FOR EACH ROW EXECUTE FUNCTION public.swallow()')")" \
	42501 "a superuser's swallowing trigger on audit_entries is refused (42501)"
check "and recorded" wait_rows "SELECT count(*) FROM brandbos.audit_entries WHERE action = 'tamper_attempt'
	AND details->>'statement' LIKE 'CREATE TRIGGER swallow%'" 1
q "$C" "SELECT brandbos.log_event('ev', 'bb25', 'after-swallow')" >/dev/null
is "$(q "$C" "SELECT count(*) FROM brandbos.audit_entries WHERE resource_id = 'after-swallow'")" 1 \
	"an event written afterwards is in the log"

finish
