-- Audit benchmarks: the same narrow table three times.
--   bench_aplain   no audit
--   bench_audited  brandbos.enable_audit (C row trigger, hashed append-only rows)
--   bench_supa     a PL/pgSQL jsonb audit trigger of supa_audit's shape: record ids derived
--                  from the primary key, to_jsonb of the new and old rows, one row per change
--                  in a separate history table
CREATE EXTENSION IF NOT EXISTS brandbos;

CREATE TABLE bench_aplain  (id bigserial PRIMARY KEY, user_id int, note text, amount numeric);
CREATE TABLE bench_audited (id bigserial PRIMARY KEY, user_id int, note text, amount numeric);
CREATE TABLE bench_supa    (id bigserial PRIMARY KEY, user_id int, note text, amount numeric);
ALTER TABLE bench_aplain  SET (autovacuum_enabled = off);
ALTER TABLE bench_audited SET (autovacuum_enabled = off);
ALTER TABLE bench_supa    SET (autovacuum_enabled = off);
SELECT brandbos.enable_audit('bench_audited');

CREATE TABLE bench_supa_history (
    id            bigserial PRIMARY KEY,
    record_id     uuid,
    old_record_id uuid,
    op            text NOT NULL,
    ts            timestamptz NOT NULL DEFAULT now(),
    table_oid     oid NOT NULL,
    table_schema  name NOT NULL,
    table_name    name NOT NULL,
    record        jsonb,
    old_record    jsonb
);
CREATE INDEX ON bench_supa_history (ts);
CREATE INDEX ON bench_supa_history (table_oid);
ALTER TABLE bench_supa_history SET (autovacuum_enabled = off);

-- supa_audit derives a record id from the table oid and primary-key values
CREATE FUNCTION bench_supa_record_id(rel oid, pk_values text[]) RETURNS uuid
    LANGUAGE sql IMMUTABLE AS $$ SELECT md5(rel::text || array_to_string(pk_values, ','))::uuid $$;

CREATE FUNCTION bench_supa_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pkey_cols text[] := ARRAY['id'];
    record_jsonb jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
    old_record_jsonb jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
BEGIN
    INSERT INTO bench_supa_history (record_id, old_record_id, op, table_oid, table_schema, table_name,
                                    record, old_record)
    VALUES (
        CASE WHEN record_jsonb IS NOT NULL THEN
            bench_supa_record_id(TG_RELID, ARRAY(SELECT record_jsonb ->> c FROM unnest(pkey_cols) c)) END,
        CASE WHEN old_record_jsonb IS NOT NULL THEN
            bench_supa_record_id(TG_RELID, ARRAY(SELECT old_record_jsonb ->> c FROM unnest(pkey_cols) c)) END,
        TG_OP, TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, record_jsonb, old_record_jsonb);
    RETURN coalesce(NEW, OLD);
END $$;
CREATE TRIGGER audit_i_u_d AFTER INSERT OR UPDATE OR DELETE ON bench_supa
    FOR EACH ROW EXECUTE FUNCTION bench_supa_trigger();
