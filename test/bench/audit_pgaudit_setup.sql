-- pgaudit peer (Debian's postgresql-15-pgaudit, preloaded by run.sh): object auditing.
-- run.sh sets pgaudit.role = 'bench_auditor' (and leaves pgaudit.log = none), so pgaudit
-- writes one AUDIT line to the server log for each statement touching a relation on which
-- bench_auditor holds the privilege used: here INSERT and UPDATE on bench_pgaudit only.
CREATE EXTENSION IF NOT EXISTS pgaudit;
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_auditor') THEN
		CREATE ROLE bench_auditor NOLOGIN;
	END IF;
END
$$;
CREATE TABLE bench_pgaudit (id bigserial PRIMARY KEY, user_id int, note text, amount numeric);
ALTER TABLE bench_pgaudit SET (autovacuum_enabled = off);
GRANT INSERT, UPDATE ON bench_pgaudit TO bench_auditor;
