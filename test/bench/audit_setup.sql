-- Audit benchmarks: the same narrow table once per variant.
--   bench_aplain   no audit
--   bench_audited  brandbos.enable_audit (C row trigger, hashed append-only rows)
-- The peers' tables are set up by audit_supa_setup.sql (the real supa_audit extension) and
-- audit_pgaudit_setup.sql (pgaudit object auditing), when those are available.
CREATE EXTENSION IF NOT EXISTS brandbos;

CREATE TABLE bench_aplain  (id bigserial PRIMARY KEY, user_id int, note text, amount numeric);
CREATE TABLE bench_audited (id bigserial PRIMARY KEY, user_id int, note text, amount numeric);
ALTER TABLE bench_aplain  SET (autovacuum_enabled = off);
ALTER TABLE bench_audited SET (autovacuum_enabled = off);
SELECT brandbos.enable_audit('bench_audited') \g /dev/null
