-- The guard of protected columns (src/protect_guard.c): a table owner who is
-- not a superuser cannot switch protection off, nor read plaintext through a
-- trigger, rule or view it plants.  Every refusal is asserted by SQLSTATE, as
-- the owner; legitimate DDL still works; the checker reports what a superuser
-- broke behind the guard's back.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(70);

CREATE ROLE bb22_mallory NOLOGIN;       -- the migration role: owns the table, not a superuser
CREATE ROLE bb22_reader NOLOGIN;        -- a decryptor
GRANT brandbos_decryptor TO bb22_reader;
CREATE SCHEMA bb22 AUTHORIZATION bb22_mallory;   -- owning the schema lets one DROP others' objects in it
GRANT USAGE ON SCHEMA bb22 TO bb22_reader;

SET LOCAL ROLE bb22_mallory;
CREATE TABLE bb22.t (id int PRIMARY KEY, secret text, note text);
INSERT INTO bb22.t VALUES (1, 'plain-before-protect', 'n1');
CREATE TABLE bb22.leak (v text);
CREATE FUNCTION bb22.copy_secret() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN INSERT INTO bb22.leak VALUES (row_to_json(NEW)::text); RETURN NEW; END$$;
CREATE FUNCTION bb22.later() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN NEW.note := coalesce(NEW.note, 'set-by-later'); RETURN NEW; END$$;
GRANT SELECT ON bb22.t TO bb22_reader;
SELECT lives_ok($$SELECT brandbos.protect_column('bb22.t', 'secret')$$, 'the owner protects its column');

-- what protect_column made
SELECT is((SELECT tgenabled::text FROM pg_trigger WHERE tgrelid = 'bb22.t'::regclass AND tgname = 'zz_brandbos_protect'),
          'A', 'the protect trigger is ENABLE ALWAYS');
SELECT is((SELECT relowner FROM pg_class WHERE oid = 'bb22.t_decrypted'::regclass),
          (SELECT relowner FROM pg_class WHERE oid = 'brandbos.data_keys'::regclass),
          '_decrypted is owned by the extension owner');
SELECT is((SELECT relowner FROM pg_class WHERE oid = 'bb22.t_safe'::regclass),
          (SELECT relowner FROM pg_class WHERE oid = 'brandbos.data_keys'::regclass),
          '_safe is owned by the extension owner');
SELECT ok((SELECT 'security_invoker=true' = ANY (reloptions) FROM pg_class WHERE oid = 'bb22.t_decrypted'::regclass),
          '_decrypted is still security_invoker');
SELECT results_eq('SELECT id, note FROM bb22.t_safe', $$VALUES (1, 'n1'::text)$$, 'the owner reads _safe');
SELECT throws_ok('SELECT * FROM bb22.t_decrypted', '42501', NULL, 'the owner does not read _decrypted');
SELECT lives_ok('GRANT SELECT ON bb22.t_safe TO bb22_reader', 'the owner may grant _safe on');
SELECT is(brandbos.protection_problem('bb22.t', 'secret'), NULL, 'the checker finds nothing wrong');

-- switching the trigger off, every spelling
SELECT throws_ok('ALTER TABLE bb22.t DISABLE TRIGGER zz_brandbos_protect', '42501', NULL, 'DISABLE TRIGGER zz_brandbos_protect is refused');
SELECT throws_ok('ALTER TABLE bb22.t DISABLE TRIGGER ALL', '42501', NULL, 'DISABLE TRIGGER ALL is refused');
SELECT throws_ok('ALTER TABLE bb22.t DISABLE TRIGGER USER', '42501', NULL, 'DISABLE TRIGGER USER is refused');
SELECT throws_ok('ALTER TABLE bb22.t ENABLE TRIGGER zz_brandbos_protect', '42501', NULL,
                 'ENABLE (origin only: session_replication_role = replica would skip it) is refused');
SELECT throws_ok('ALTER TABLE bb22.t ENABLE REPLICA TRIGGER zz_brandbos_protect', '42501', NULL, 'ENABLE REPLICA TRIGGER is refused');
SELECT throws_ok('DROP TRIGGER zz_brandbos_protect ON bb22.t', '42501', NULL, 'DROP TRIGGER is refused');
SELECT throws_ok('DROP TRIGGER zz_brandbos_protect ON bb22.t CASCADE', '42501', NULL, 'DROP TRIGGER ... CASCADE is refused');
SELECT throws_ok('ALTER TRIGGER zz_brandbos_protect ON bb22.t RENAME TO aa_protect', '42501', NULL, 'ALTER TRIGGER RENAME is refused');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER zz_brandbos_protect BEFORE INSERT OR UPDATE ON bb22.t
                   FOR EACH ROW EXECUTE FUNCTION bb22.copy_secret()$$, '42501', NULL,
                 'CREATE OR REPLACE TRIGGER with another function is refused');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER zz_brandbos_protect BEFORE INSERT OR UPDATE ON bb22.t
                   FOR EACH ROW WHEN (false) EXECUTE FUNCTION brandbos.protect_trigger()$$, '42501', NULL,
                 'CREATE OR REPLACE TRIGGER with a WHEN clause is refused');

-- planting something that sees the plaintext first
SELECT throws_ok($$CREATE TRIGGER aa_copy BEFORE INSERT OR UPDATE ON bb22.t
                   FOR EACH ROW EXECUTE FUNCTION bb22.copy_secret()$$, '42501', NULL,
                 'an earlier-named BEFORE row trigger is refused');
SELECT throws_ok($$CREATE TRIGGER zz_brandbos_prot BEFORE UPDATE OF note ON bb22.t
                   FOR EACH ROW EXECUTE FUNCTION bb22.copy_secret()$$, '42501', NULL,
                 'a BEFORE UPDATE OF trigger whose name is a prefix (sorts first) is refused');
SELECT throws_ok($$CREATE TRIGGER "zz_brandbos_protect_0" BEFORE INSERT OR UPDATE ON bb22.t
                   FOR EACH ROW EXECUTE FUNCTION bb22.copy_secret()$$, '42501', NULL,
                 'a BEFORE trigger named like the protect trigger (it would sort first on a Citus shard) is refused');
SELECT throws_ok($$CREATE RULE copy_secret AS ON INSERT TO bb22.t DO ALSO INSERT INTO bb22.leak VALUES (NEW.secret)$$,
                 '42501', NULL, 'a rule that sees the statement''s values is refused');
SELECT lives_ok($$CREATE TRIGGER zzz_later BEFORE INSERT OR UPDATE ON bb22.t
                  FOR EACH ROW EXECUTE FUNCTION bb22.later()$$,
                'a later-named BEFORE trigger is allowed (it only sees envelopes)');
SELECT lives_ok($$CREATE TRIGGER aa_after AFTER INSERT ON bb22.t
                  FOR EACH ROW EXECUTE FUNCTION bb22.copy_secret()$$,
                'an AFTER trigger is allowed (it only sees envelopes)');
INSERT INTO bb22.t (id, secret) VALUES (2, 'written-by-the-app');
SELECT is((SELECT count(*)::int FROM bb22.leak WHERE v LIKE '%written-by-the-app%'), 0,
          'no trigger the owner could plant saw the plaintext');
SELECT is((SELECT note FROM bb22.t WHERE id = 2), 'set-by-later', 'the later trigger ran');

-- the column type
SELECT throws_ok('ALTER TABLE bb22.t ALTER COLUMN secret TYPE varchar', '0A000', NULL,
                 'ALTER COLUMN TYPE of the protected column is refused (the view brandbos owns depends on it)');
SELECT col_type_is('bb22', 't', 'secret', 'text', 'the protected column is still text');

-- the companion views
SELECT throws_ok('DROP VIEW bb22.t_decrypted', '42501', NULL, 'the schema owner cannot DROP the _decrypted view');
SELECT throws_ok('DROP VIEW bb22.t_safe', '42501', NULL, 'nor the _safe view');
SELECT throws_ok('DROP VIEW bb22.t_decrypted CASCADE', '42501', NULL, 'nor with CASCADE');
SELECT throws_ok($$CREATE OR REPLACE VIEW bb22.t_decrypted AS SELECT * FROM bb22.t$$, '42501', NULL,
                 'the owner cannot CREATE OR REPLACE the _decrypted view');
SELECT throws_ok('ALTER VIEW bb22.t_decrypted RENAME TO t_old', '42501', NULL, 'nor rename it');
SELECT throws_ok('ALTER VIEW bb22.t_decrypted SET (security_invoker = false)', '42501', NULL, 'nor alter it');
SELECT throws_ok('ALTER TABLE bb22.t DROP COLUMN note CASCADE', '42501', NULL,
                 'a DROP COLUMN ... CASCADE that would drop the views is refused');
SELECT throws_ok('CREATE VIEW bb22.t_decrypted AS SELECT 1', '42P07', NULL,
                 'no relation can be created under a companion view''s name');

-- partitions
CREATE TABLE bb22.p (id int, k int, secret text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
CREATE TABLE bb22.p1 PARTITION OF bb22.p FOR VALUES IN (1);
SELECT lives_ok($$SELECT brandbos.protect_column('bb22.p', 'secret')$$, 'a partitioned table is protected');
SELECT lives_ok('CREATE TABLE bb22.p2 PARTITION OF bb22.p FOR VALUES IN (2)', 'a new partition can be created');
SELECT is((SELECT string_agg(tgenabled::text, '' ORDER BY tgrelid) FROM pg_trigger
            WHERE tgname = 'zz_brandbos_protect' AND tgrelid IN ('bb22.p1'::regclass, 'bb22.p2'::regclass)),
          'AA', 'the partitions'' clones are ENABLE ALWAYS');
SELECT throws_ok('ALTER TABLE bb22.p1 DISABLE TRIGGER zz_brandbos_protect', '42501', NULL,
                 'disabling the clone on a partition is refused');
SELECT throws_ok($$CREATE TRIGGER aa_copy BEFORE INSERT ON bb22.p2 FOR EACH ROW EXECUTE FUNCTION bb22.copy_secret()$$,
                 '42501', NULL, 'an earlier BEFORE trigger on a partition is refused');
CREATE TABLE bb22.p3 (id int, k int, secret text, PRIMARY KEY (id, k));
CREATE TRIGGER aa_copy BEFORE INSERT ON bb22.p3 FOR EACH ROW EXECUTE FUNCTION bb22.copy_secret();
SELECT throws_ok($$ALTER TABLE bb22.p ATTACH PARTITION bb22.p3 FOR VALUES IN (3)$$, '42501', NULL,
                 'attaching a partition with an earlier BEFORE trigger is refused');

-- legitimate DDL
SELECT lives_ok('ALTER TABLE bb22.t ADD COLUMN extra int', 'adding another column works');
SELECT lives_ok('ALTER TABLE bb22.t RENAME COLUMN secret TO token', 'renaming the protected column works');
INSERT INTO bb22.t (id, token) VALUES (3, 'after-rename');
SELECT ok((SELECT token LIKE 'bbx1:%' FROM bb22.t WHERE id = 3), 'the renamed column is still sealed');
SET LOCAL ROLE bb22_reader;
SELECT is((SELECT secret FROM bb22.t_decrypted WHERE id = 3), 'after-rename', 'and still decrypts through the view');
SET LOCAL ROLE bb22_mallory;
SELECT is(brandbos.protection_problem('bb22.t', 'token'), NULL, 'the renamed column is guarded');
SELECT lives_ok('ALTER TABLE bb22.t RENAME TO t_moved', 'renaming the protected table works');
SELECT is((SELECT string_agg(relname::text, ',' ORDER BY relname) FROM pg_class
            WHERE relnamespace = 'bb22'::regnamespace AND relkind = 'v' AND relname LIKE 't%'),
          't_moved_decrypted,t_moved_safe', 'the companion views follow the table''s name');
SELECT is(brandbos.protection_problem('bb22.t_moved', 'token'), NULL, 'the renamed table is guarded');
SELECT throws_ok('ALTER TABLE bb22.t_moved SET SCHEMA public', '42501', NULL,
                 'moving the protected table to another schema is refused (its views stay behind)');
SELECT lives_ok('ALTER TABLE bb22.t_moved RENAME TO t', 'renaming it back works');

-- protect_column refuses a table with something planted before it
CREATE TABLE bb22.u (id int PRIMARY KEY, secret text);
CREATE TRIGGER aa_copy BEFORE INSERT ON bb22.u FOR EACH ROW EXECUTE FUNCTION bb22.copy_secret();
SELECT throws_ok($$SELECT brandbos.protect_column('bb22.u', 'secret')$$, '55000', NULL,
                 'protect_column refuses a table with an earlier BEFORE trigger');
CREATE TABLE bb22.w (id int PRIMARY KEY, secret text);
CREATE TRIGGER zz_brandbos_protect BEFORE INSERT OR UPDATE ON bb22.w FOR EACH ROW EXECUTE FUNCTION bb22.copy_secret();
SELECT throws_ok($$SELECT brandbos.protect_column('bb22.w', 'secret')$$, '55000', NULL,
                 'protect_column refuses a look-alike zz_brandbos_protect trigger');

-- unprotect and protect again (unprotect needs a decryptor)
RESET ROLE;
GRANT brandbos_decryptor TO bb22_mallory;
SET LOCAL ROLE bb22_mallory;
SELECT lives_ok($$SELECT brandbos.unprotect_column('bb22.t', 'token')$$, 'unprotect_column works');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'bb22.t'::regclass AND tgname = 'zz_brandbos_protect'),
          0, 'it dropped the trigger');
SELECT lives_ok($$SELECT brandbos.protect_column('bb22.t', 'token')$$, 'protect_column again works');
SELECT is((SELECT token FROM bb22.t_decrypted WHERE id = 2), 'written-by-the-app', 'the values decrypt again');

-- session_replication_role = replica (superuser-only) does not skip the trigger
RESET ROLE;
SET LOCAL session_replication_role = replica;
INSERT INTO bb22.t (id, token) VALUES (4, 'written-as-replica');
RESET session_replication_role;
SELECT ok((SELECT token LIKE 'bbx1:%' FROM bb22.t WHERE id = 4), 'a write under session_replication_role = replica is sealed');

-- the guard's event triggers: the owner cannot touch them; with preload, nor can a superuser
SET LOCAL ROLE bb22_mallory;
SELECT throws_ok('ALTER EVENT TRIGGER brandbos_zz_protect_guard_end DISABLE', '42501', NULL,
                 'the table owner cannot disable the guard''s event trigger');
RESET ROLE;
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
       THEN throws_ok('ALTER EVENT TRIGGER brandbos_zz_protect_guard_end DISABLE', '42501', NULL,
                      'with preload, a superuser cannot disable the guard''s event trigger')
       ELSE lives_ok('ALTER EVENT TRIGGER brandbos_zz_protect_guard_end DISABLE; ALTER EVENT TRIGGER brandbos_zz_protect_guard_end ENABLE ALWAYS',
                     'without preload, a superuser can disable the guard''s event trigger (README)') END;
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
       THEN throws_ok('DROP EVENT TRIGGER brandbos_zz_protect_guard_start', '42501', NULL,
                      'with preload, a superuser cannot drop it')
       ELSE pass('without preload, a superuser can drop it (README)') END;
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
       THEN throws_ok('ALTER EVENT TRIGGER brandbos_registry_rename RENAME TO x', '42501', NULL,
                      'with preload, a superuser cannot rename brandbos''s event triggers')
       ELSE pass('without preload, a superuser can rename them (README)') END;

-- a superuser can still break it behind the guard's back (a catalog edit no hook sees);
-- the checker says so
UPDATE pg_event_trigger SET evtenabled = 'D' WHERE evtname = 'brandbos_zz_protect_guard_end';
ALTER TABLE bb22.t DISABLE TRIGGER zz_brandbos_protect;
SELECT is(brandbos.protection_problem('bb22.t', 'token'), 'trigger zz_brandbos_protect is disabled, not enabled always',
          'the checker reports the disabled trigger');
DROP VIEW bb22.t_decrypted, bb22.t_safe;
ALTER TABLE bb22.t ENABLE ALWAYS TRIGGER zz_brandbos_protect;
ALTER TABLE bb22.t ALTER COLUMN token TYPE varchar;
SELECT is(brandbos.protection_problem('bb22.t', 'token'), 'column type is character varying, not text or bytea',
          'the checker reports the changed type');
ALTER TABLE bb22.t ALTER COLUMN token TYPE text;
SELECT is(brandbos.protection_problem('bb22.t', 'token'), 'view t_decrypted is missing',
          'the checker reports the missing view');
UPDATE pg_event_trigger SET evtenabled = 'A' WHERE evtname = 'brandbos_zz_protect_guard_end';
SET LOCAL ROLE bb22_mallory;
SELECT lives_ok('ALTER TABLE bb22.t ADD COLUMN extra2 int', 'an already broken table does not block DDL');
SELECT lives_ok($$SELECT brandbos.protect_column('bb22.t', 'token')$$, 'protect_column repairs it');
SELECT is(brandbos.protection_problem('bb22.t', 'token'), NULL, 'and the checker agrees');

SELECT * FROM finish();
ROLLBACK;
