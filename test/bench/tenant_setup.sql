-- Bench set-up for SPEC section 7, tenant policy rows (run.sh groups tenant_seq, tenant_index).
--
-- 1M rows across 1000 tenants ('t0000' .. 't0999', 1000 rows each, interleaved: every heap
-- page holds rows of many tenants), the same rows in three tables of one shape,
-- (id bigserial primary key, tenant_id text, payload int):
--   bench_tenant_plain  no RLS, an index on tenant_id: the baseline, queried with a
--                       literal WHERE tenant_id = 't0042'
--   bench_tenant_rls    brandbos.enable_tenant_isolation (ENABLE + FORCE RLS, the policies,
--                       and the index leading with tenant_id it creates)
--   bench_tenant_supa   peer "current_setting": tenant_id = auth_tenant(), a SQL helper over
--                       current_setting('request.jwt.claims') (no index: it is measured as a
--                       sequential scan only)
--   bench_tenant_uid    peer "auth.uid() unwrapped": Supabase's own policy shape,
--                       user_id = auth.uid(), with auth.uid() defined as Supabase defines it
--                       (request.jwt.claim.sub, else request.jwt.claims ->> 'sub', as uuid);
--                       user_id is a uuid derived from the tenant (md5 of its name), so the
--                       same 1000 rows match; index on user_id
--   bench_tenant_uidw   peer "auth.uid() wrapped": the same with (select auth.uid()), the
--                       wrapping Supabase's docs recommend (an InitPlan evaluated once)
-- The tables belong to the bench's superuser; every timed query runs as the role
-- bench_tenant_app (no superuser, no BYPASSRLS), which is what makes the policies apply.
-- Autovacuum is off; the tables are vacuumed here so that index-only scans see an
-- all-visible heap.
CREATE EXTENSION IF NOT EXISTS brandbos;

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_tenant_app') THEN
		CREATE ROLE bench_tenant_app NOLOGIN;
	END IF;
END
$$;
GRANT brandbos_context_admin TO bench_tenant_app;

CREATE TABLE bench_tenant_plain (
	id			bigserial PRIMARY KEY,
	tenant_id	text,
	payload		integer
) WITH (autovacuum_enabled = false);
INSERT INTO bench_tenant_plain (tenant_id, payload)
	SELECT 't' || lpad((g % 1000)::text, 4, '0'), ((g::bigint * 7919) % 100000)::int
	  FROM generate_series(0, 999999) g;
CREATE INDEX bench_tenant_plain_tenant_id ON bench_tenant_plain (tenant_id);

CREATE TABLE bench_tenant_rls (
	id			bigint PRIMARY KEY,
	tenant_id	text,
	payload		integer
) WITH (autovacuum_enabled = false);
INSERT INTO bench_tenant_rls SELECT * FROM bench_tenant_plain ORDER BY id;
DO $$ BEGIN PERFORM brandbos.enable_tenant_isolation('bench_tenant_rls'); END $$;

CREATE TABLE bench_tenant_supa (
	id			bigint PRIMARY KEY,
	tenant_id	text,
	payload		integer
) WITH (autovacuum_enabled = false);
INSERT INTO bench_tenant_supa SELECT * FROM bench_tenant_plain ORDER BY id;

-- Supabase-style helper, as users write it next to auth.uid(): a SQL function over
-- PostgREST's request.jwt.claims (inlined by the planner, evaluated per row)
CREATE FUNCTION auth_tenant() RETURNS text LANGUAGE sql STABLE AS $$
	select nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'tenant_id'
$$;
ALTER TABLE bench_tenant_supa ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench_tenant_supa FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON bench_tenant_supa USING (tenant_id = auth_tenant());

-- Supabase's auth.uid(), as its auth schema defines it
CREATE SCHEMA IF NOT EXISTS auth;
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
	select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
					(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;
GRANT USAGE ON SCHEMA auth TO bench_tenant_app;

CREATE TABLE bench_tenant_uid (
	id			bigint PRIMARY KEY,
	user_id		uuid,
	payload		integer
) WITH (autovacuum_enabled = false);
INSERT INTO bench_tenant_uid SELECT id, md5(tenant_id)::uuid, payload FROM bench_tenant_plain ORDER BY id;
CREATE INDEX bench_tenant_uid_user_id ON bench_tenant_uid (user_id);
CREATE TABLE bench_tenant_uidw (LIKE bench_tenant_uid INCLUDING ALL) WITH (autovacuum_enabled = false);
INSERT INTO bench_tenant_uidw SELECT * FROM bench_tenant_uid ORDER BY id;
ALTER TABLE bench_tenant_uid ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench_tenant_uid FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON bench_tenant_uid USING (user_id = auth.uid());
ALTER TABLE bench_tenant_uidw ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench_tenant_uidw FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON bench_tenant_uidw USING (user_id = (select auth.uid()));

GRANT SELECT ON bench_tenant_plain, bench_tenant_rls, bench_tenant_supa, bench_tenant_uid,
	bench_tenant_uidw TO bench_tenant_app;

VACUUM (ANALYZE) bench_tenant_plain;
VACUUM (ANALYZE) bench_tenant_rls;
VACUUM (ANALYZE) bench_tenant_supa;
VACUUM (ANALYZE) bench_tenant_uid;
VACUUM (ANALYZE) bench_tenant_uidw;
