-- supa_audit peer (supa_audit 0.3.1 from ../shared/vendor): audit.enable_tracking adds its
-- row triggers to bench_supa; every change becomes one row of audit.record_version (jsonb
-- images of the rows, record ids from the primary key).
CREATE EXTENSION IF NOT EXISTS supa_audit CASCADE;	-- and uuid-ossp, which it requires
CREATE TABLE bench_supa (id bigserial PRIMARY KEY, user_id int, note text, amount numeric);
ALTER TABLE bench_supa SET (autovacuum_enabled = off);
ALTER TABLE audit.record_version SET (autovacuum_enabled = off);
SELECT audit.enable_tracking('public.bench_supa'::regclass) \g /dev/null
