-- The guard of the audit log (src/audit_guard.c, issue 11 points 1 and 2).
-- As a table owner who is not a superuser: every way to stop or bend the
-- audit triggers of its table is refused (42501), whatever their name;
-- dropping an audited table is recorded (table_dropped); tables brandbos does
-- not audit keep DISABLE TRIGGER ALL.  As a superuser: no new trigger, rule
-- or policy on the audit tables, and a committed change never lacks its
-- audit row, even where (without preload) the guard can be switched off.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(52);

CREATE ROLE bb42_owner NOLOGIN;          -- owns its tables and schemas, not a superuser
CREATE SCHEMA bb42 AUTHORIZATION bb42_owner;
CREATE SCHEMA bb42_doomed AUTHORIZATION bb42_owner;

SET LOCAL ROLE bb42_owner;
CREATE TABLE bb42.t (id int PRIMARY KEY, v text);
CREATE TABLE bb42.unaudited (id int PRIMARY KEY, v text);
CREATE TABLE bb42.gone (id int PRIMARY KEY);
CREATE TABLE bb42_doomed.inside (id int PRIMARY KEY);
CREATE FUNCTION bb42.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
SELECT brandbos.enable_audit('bb42.t');
SELECT brandbos.enable_audit('bb42.gone');
SELECT brandbos.enable_audit('bb42_doomed.inside');

-- renaming first, then disabling under the new name: the rename is refused
SELECT throws_ok('ALTER TRIGGER zz_brandbos_audit ON bb42.t RENAME TO quiet', '42501', NULL,
                 'ALTER TRIGGER zz_brandbos_audit RENAME is refused');
SELECT throws_ok('ALTER TRIGGER zz_brandbos_audit_truncate ON bb42.t RENAME TO quiet', '42501', NULL,
                 'ALTER TRIGGER zz_brandbos_audit_truncate RENAME is refused');
-- every spelling of disabling
SELECT throws_ok('ALTER TABLE bb42.t DISABLE TRIGGER zz_brandbos_audit', '42501', NULL, 'DISABLE TRIGGER zz_brandbos_audit is refused');
SELECT throws_ok('ALTER TABLE bb42.t DISABLE TRIGGER zz_brandbos_audit_truncate', '42501', NULL, 'DISABLE TRIGGER of the TRUNCATE trigger is refused');
SELECT throws_ok('ALTER TABLE bb42.t DISABLE TRIGGER ALL', '42501', NULL, 'DISABLE TRIGGER ALL on an audited table is refused');
SELECT throws_ok('ALTER TABLE bb42.t DISABLE TRIGGER USER', '42501', NULL, 'DISABLE TRIGGER USER on an audited table is refused');
SELECT throws_ok('ALTER TABLE bb42.t ENABLE TRIGGER zz_brandbos_audit', '42501', NULL,
                 'ENABLE TRIGGER (origin only: replica mode would skip it) is refused');
SELECT throws_ok('ALTER TABLE bb42.t ENABLE REPLICA TRIGGER zz_brandbos_audit', '42501', NULL, 'ENABLE REPLICA TRIGGER is refused');
-- dropping
SELECT throws_ok('DROP TRIGGER zz_brandbos_audit ON bb42.t', '42501', NULL, 'DROP TRIGGER zz_brandbos_audit is refused');
SELECT throws_ok('DROP TRIGGER zz_brandbos_audit_truncate ON bb42.t CASCADE', '42501', NULL, 'DROP TRIGGER ... CASCADE of the TRUNCATE trigger is refused');
-- replacing
SELECT throws_ok($$CREATE OR REPLACE TRIGGER zz_brandbos_audit AFTER INSERT OR UPDATE OR DELETE ON bb42.t
                   FOR EACH ROW WHEN (false) EXECUTE FUNCTION brandbos.audit_trigger()$$, '42501', NULL,
                 'CREATE OR REPLACE TRIGGER ... WHEN (false) is refused');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER zz_brandbos_audit AFTER INSERT OR UPDATE OF v OR DELETE ON bb42.t
                   FOR EACH ROW EXECUTE FUNCTION brandbos.audit_trigger()$$, '42501', NULL,
                 'CREATE OR REPLACE TRIGGER with a column list is refused');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER zz_brandbos_audit AFTER INSERT ON bb42.t
                   FOR EACH ROW EXECUTE FUNCTION brandbos.audit_trigger()$$, '42501', NULL,
                 'CREATE OR REPLACE TRIGGER on fewer events is refused');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER zz_brandbos_audit AFTER INSERT OR UPDATE OR DELETE ON bb42.t
                   FOR EACH ROW EXECUTE FUNCTION bb42.noop()$$, '42501', NULL,
                 'CREATE OR REPLACE TRIGGER with another function is refused');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER zz_brandbos_audit AFTER INSERT OR UPDATE OR DELETE ON bb42.t
                   FOR EACH ROW EXECUTE FUNCTION brandbos.audit_trigger('quiet')$$, '42501', NULL,
                 'CREATE OR REPLACE TRIGGER with arguments is refused');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER zz_brandbos_audit_truncate AFTER TRUNCATE ON bb42.t
                   FOR EACH STATEMENT EXECUTE FUNCTION bb42.noop()$$, '42501', NULL,
                 'CREATE OR REPLACE of the TRUNCATE trigger is refused');

-- nothing of that stuck, and auditing goes on
SELECT is((SELECT string_agg(format('%s %s %s %s', tgname, tgenabled, tgqual IS NULL, tgattr), ', ' ORDER BY tgname)
             FROM pg_trigger WHERE tgrelid = 'bb42.t'::regclass),
          'zz_brandbos_audit A t , zz_brandbos_audit_truncate A t ',
          'both audit triggers are as enable_audit made them');
INSERT INTO bb42.t VALUES (1, 'one');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM brandbos.audit_entries WHERE resource_type = 'bb42.t' AND resource_id = '1'), 1,
          'an insert after every refused attempt is audited');
SET LOCAL ROLE bb42_owner;

-- legitimate DDL of the owner still works
SELECT lives_ok('ALTER TABLE bb42.t ADD COLUMN note text', 'the owner adds a column to an audited table');
SELECT lives_ok($$CREATE TRIGGER aa_other AFTER INSERT ON bb42.t FOR EACH ROW EXECUTE FUNCTION bb42.noop()$$,
                'the owner adds a trigger of its own to an audited table');
SELECT lives_ok('ALTER TABLE bb42.t DISABLE TRIGGER aa_other', 'and may disable its own trigger');
SELECT lives_ok('DROP TRIGGER aa_other ON bb42.t', 'and drop it');

SELECT lives_ok('ALTER TABLE bb42.t ENABLE ALWAYS TRIGGER zz_brandbos_audit',
                'ENABLE ALWAYS (what pg_restore issues after CREATE TRIGGER) is allowed');
SELECT lives_ok('ALTER TABLE bb42.t RENAME TO t_renamed', 'the owner may rename an audited table');
SELECT lives_ok('ALTER TABLE bb42.t_renamed RENAME TO t', 'and rename it back');

-- an audited partitioned table: its partitions' cloned triggers are guarded too
CREATE TABLE bb42.p (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE bb42.p1 PARTITION OF bb42.p FOR VALUES FROM (0) TO (100);
CREATE TABLE bb42.p2 PARTITION OF bb42.p FOR VALUES FROM (100) TO (200);
SELECT brandbos.enable_audit('bb42.p');
SELECT throws_ok('ALTER TABLE bb42.p1 DISABLE TRIGGER ALL', '42501', NULL, 'disabling a partition''s cloned audit trigger is refused');
SELECT throws_ok('ALTER TABLE bb42.p DETACH PARTITION bb42.p1', '42501', NULL,
                 'DETACH PARTITION (which drops the cloned audit trigger) is refused');
SELECT lives_ok('DROP TABLE bb42.p2', 'the owner may drop a partition of an audited table');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM brandbos.audit_entries WHERE action = 'table_dropped' AND resource_id = 'bb42.p2'), 1,
          'dropping the partition is recorded');
SET LOCAL ROLE bb42_owner;

-- tables brandbos does not audit: DISABLE TRIGGER ALL works (pg_restore --disable-triggers)
SELECT lives_ok('ALTER TABLE bb42.unaudited DISABLE TRIGGER ALL', 'DISABLE TRIGGER ALL on an unaudited table works');
SELECT lives_ok('ALTER TABLE bb42.unaudited ENABLE TRIGGER ALL', 'ENABLE TRIGGER ALL on an unaudited table works');

-- dropping an audited table is allowed, and recorded in the same transaction
SELECT lives_ok('DROP TABLE bb42.gone', 'the owner may drop an audited table');
RESET ROLE;
SELECT is((SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s', action, resource_type, resource_id, db_user,
                                    details->>'table', details->>'dropped_by', details->>'command'), ', ')
             FROM brandbos.audit_entries WHERE action = 'table_dropped' AND resource_id = 'bb42.gone'),
          'table_dropped|table|bb42.gone|bb42_owner|bb42.gone|bb42_owner|DROP TABLE',
                  'DROP TABLE of an audited table leaves a table_dropped row naming the table and the role');
SET LOCAL ROLE bb42_owner;
SELECT lives_ok('DROP SCHEMA bb42_doomed CASCADE', 'the owner may drop a schema holding an audited table');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM brandbos.audit_entries
            WHERE action = 'table_dropped' AND resource_id = 'bb42_doomed.inside' AND details->>'command' = 'DROP SCHEMA'), 1,
          'DROP SCHEMA ... CASCADE records the audited table it drops');
SET LOCAL ROLE bb42_owner;
SAVEPOINT before_rollback;
DROP TABLE bb42.t;
ROLLBACK TO before_rollback;
RESET ROLE;
SELECT is((SELECT count(*)::int FROM brandbos.audit_entries WHERE action = 'table_dropped' AND resource_id = 'bb42.t'), 0,
          'a DROP TABLE that rolls back leaves no table_dropped row');
SET LOCAL ROLE bb42_owner;

-- disable_audit is the way out; afterwards the table is an ordinary one
SELECT lives_ok($$SELECT brandbos.disable_audit('bb42.t')$$, 'disable_audit drops the audit triggers past the guard');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'bb42.t'::regclass), 0, 'no audit trigger is left');
SELECT lives_ok('ALTER TABLE bb42.t DISABLE TRIGGER ALL', 'DISABLE TRIGGER ALL works once auditing is disabled');
SELECT lives_ok($$SELECT brandbos.enable_audit('bb42.t')$$, 'auditing can be enabled again');
RESET ROLE;

-- ---- point 2: a superuser and the audit tables ---------------------------------------------
CREATE FUNCTION bb42.swallow() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
SELECT throws_ok($$CREATE TRIGGER swallow BEFORE INSERT ON brandbos.audit_entries
                   FOR EACH ROW EXECUTE FUNCTION bb42.swallow()$$, '42501', NULL,
                 'a superuser''s BEFORE INSERT trigger on audit_entries is refused');
SELECT throws_ok($$CREATE TRIGGER swallow AFTER INSERT ON brandbos.audit_blocks
                   FOR EACH ROW EXECUTE FUNCTION bb42.swallow()$$, '42501', NULL,
                 'a trigger on audit_blocks is refused');
SELECT throws_ok($$CREATE RULE swallow AS ON INSERT TO brandbos.audit_entries DO INSTEAD NOTHING$$, '42501', NULL,
                 'a rule on audit_entries is refused');
SELECT throws_ok($$CREATE POLICY hide ON brandbos.audit_entries USING (action <> 'delete')$$, '42501', NULL,
                 'a policy on audit_entries is refused');
SELECT throws_ok('ALTER TABLE brandbos.audit_entries FORCE ROW LEVEL SECURITY', '42501', NULL,
                 'forcing row security on audit_entries is refused');
SELECT throws_ok('DROP TRIGGER append_only ON brandbos.audit_entries', '42501', NULL,
                 'dropping the append-only trigger is refused');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'brandbos.audit_entries'::regclass), 2,
          'audit_entries still has exactly its two append-only triggers');

-- Without preload a superuser can switch the event trigger off and plant the trigger; then
-- the writer refuses to append, so the audited change fails instead of committing unrecorded.
-- With preload the event trigger cannot be switched off.
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
    THEN throws_ok('ALTER EVENT TRIGGER brandbos_zz_audit_guard_end DISABLE', '42501', NULL,
                   'preloaded: the audit guard''s event trigger cannot be disabled')
    ELSE lives_ok('ALTER EVENT TRIGGER brandbos_zz_audit_guard_end DISABLE',
                  'plain: a superuser can disable the audit guard''s event trigger') END;
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
    THEN throws_ok($$CREATE TRIGGER swallow BEFORE INSERT ON brandbos.audit_entries
                     FOR EACH ROW EXECUTE FUNCTION bb42.swallow()$$, '42501', NULL,
                   'preloaded: the swallowing trigger is still refused')
    ELSE lives_ok($$CREATE TRIGGER swallow BEFORE INSERT ON brandbos.audit_entries
                    FOR EACH ROW EXECUTE FUNCTION bb42.swallow()$$,
                  'plain: with the event trigger off, the swallowing trigger is created') END;
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
    THEN lives_ok($$INSERT INTO bb42.t VALUES (100, 'hundred')$$, 'preloaded: audited inserts go on')
    ELSE throws_ok($$INSERT INTO bb42.t VALUES (100, 'hundred')$$, '42501', NULL,
                   'plain: an audited insert fails while audit_entries has an INSERT trigger') END;
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
    THEN lives_ok($$SELECT brandbos.log_event('ev', 'bb42', 'x')$$, 'preloaded: log_event goes on')
    ELSE throws_ok($$SELECT brandbos.log_event('ev', 'bb42', 'x')$$, '42501', NULL,
                   'plain: log_event fails while audit_entries has an INSERT trigger') END;
SELECT is((SELECT count(*)::int FROM bb42.t WHERE id = 100),
          (SELECT count(*)::int FROM brandbos.audit_entries WHERE resource_type = 'bb42.t' AND resource_id = '100'),
          'the change and its audit row exist together or not at all');

SELECT * FROM finish();
ROLLBACK;
