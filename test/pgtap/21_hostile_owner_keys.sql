-- A table owner who is not a superuser attacks key management (issue 10,
-- points 1 and 2): code planted on a protected column must never run under
-- anybody else's rights, and one broken table must not stop key management
-- for the others.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(26);

CREATE ROLE bb_mallory LOGIN;
CREATE ROLE bb_kim LOGIN IN ROLE brandbos_keymaster;
CREATE SCHEMA mal AUTHORIZATION bb_mallory;
-- whoever runs the planted code leaves their name here
CREATE TABLE public.bb_trap_log (who name, at text);
GRANT INSERT ON public.bb_trap_log TO PUBLIC;

-- the event-trigger guards refuse ALTER COLUMN TYPE (22_protect_guard); this
-- file is about what the rest of brandbos does if a column got changed anyway
-- (as a superuser who edits the catalog: with preload ALTER EVENT TRIGGER is refused)
CREATE FUNCTION pg_temp.guards(on_ boolean) RETURNS void LANGUAGE sql AS $$
    UPDATE pg_event_trigger SET evtenabled = CASE WHEN on_ THEN 'A' ELSE 'D' END
     WHERE evtname LIKE 'brandbos%';
$$;

SET ROLE bb_mallory;
CREATE TABLE mal.creds (id int PRIMARY KEY, token text);
CREATE TABLE mal.other (id int PRIMARY KEY, token text);
SELECT brandbos.protect_column('mal.creds', 'token');
SELECT brandbos.protect_column('mal.other', 'token');
INSERT INTO mal.creds VALUES (1, 'secret-one'), (2, 'secret-two');
INSERT INTO mal.other VALUES (1, 'other-secret');

-- a type with an implicit cast to text whose function tries to climb
CREATE TYPE mal.evil AS (v text);
CREATE FUNCTION mal.evil_to_text(mal.evil) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.bb_trap_log VALUES (current_user, 'cast');
    BEGIN
        EXECUTE 'ALTER ROLE bb_mallory SUPERUSER';
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
    RETURN ($1).v;
END $$;
CREATE CAST (mal.evil AS text) WITH FUNCTION mal.evil_to_text(mal.evil) AS IMPLICIT;
CREATE FUNCTION mal.evil_eq(mal.evil, mal.evil) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.bb_trap_log VALUES (current_user, 'operator');
    RETURN ($1).v = ($2).v;
END $$;
CREATE OPERATOR mal.<> (LEFTARG = mal.evil, RIGHTARG = mal.evil, FUNCTION = mal.evil_eq);
RESET ROLE;

SELECT pg_temp.guards(false);
DROP VIEW mal.creds_decrypted, mal.creds_safe;
SET ROLE bb_mallory;
ALTER TABLE mal.creds ALTER COLUMN token TYPE mal.evil USING ROW(token)::mal.evil;
RESET ROLE;
SELECT pg_temp.guards(true);
DELETE FROM public.bb_trap_log;   -- the ALTER itself ran the cast as mallory: fine

-- 1. nothing the owner planted runs when others look at the keys
SET ROLE bb_kim;
SELECT lives_ok('SELECT * FROM brandbos.key_status()', 'key_status works with a column of a planted type');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM public.bb_trap_log), 0, 'key_status ran none of the owner''s code');
SELECT is((SELECT rows_using FROM brandbos.key_status() WHERE status = 'active'), 1::bigint,
          'key_status still counts the readable table''s value');
SELECT is((SELECT count(*)::int FROM brandbos.protected_columns), 2,
          'a superuser reads protected_columns');
SELECT is((SELECT count(*)::int FROM public.bb_trap_log), 0, 'reading protected_columns as superuser ran no owner code');
SELECT matches((SELECT problem FROM brandbos.protected_columns WHERE table_name = 'mal.creds'::regclass),
               'not text or bytea', 'the changed column is reported as broken');
SELECT is((SELECT key_versions FROM brandbos.protected_columns WHERE table_name = 'mal.other'::regclass),
          ARRAY[1], 'the other table still shows its key versions');
SELECT is((SELECT problem FROM brandbos.protected_columns WHERE table_name = 'mal.other'::regclass),
          NULL, 'the other table has no problem');
SELECT is(brandbos.column_key_versions('mal.creds', 'token'), NULL,
          'column_key_versions of the broken column: NULL, not the owner''s cast');
SELECT is((SELECT count(*)::int FROM public.bb_trap_log), 0, 'column_key_versions ran no owner code');
SELECT is(brandbos.rotate_key(), 2, 'rotation works');
SET ROLE bb_kim;
SELECT throws_ok('SELECT brandbos.destroy_key(1)', '55006', NULL,
                 'destroy_key refuses when a protected column cannot be read');
SELECT lives_ok('SELECT brandbos.destroy_key(1, force => true)', 'force still shreds on purpose');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM public.bb_trap_log), 0, 'destroy_key ran no owner code');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'bb_mallory'), false, 'mallory is not a superuser');

-- 2. one value that is not an envelope does not break key management
DROP TABLE mal.creds CASCADE;
SELECT pg_temp.guards(false);
SET LOCAL session_replication_role = replica;
ALTER TABLE mal.other DISABLE TRIGGER zz_brandbos_protect;
INSERT INTO mal.other VALUES (2, 'stored-unsealed');
ALTER TABLE mal.other ENABLE ALWAYS TRIGGER zz_brandbos_protect;
SET LOCAL session_replication_role = origin;
SELECT pg_temp.guards(true);
CREATE TABLE public.fine (id int PRIMARY KEY, token text);
SELECT brandbos.protect_column('public.fine', 'token');
INSERT INTO public.fine VALUES (1, 'fine-secret');
SET ROLE bb_kim;
SELECT lives_ok('SELECT * FROM brandbos.key_status()', 'key_status works with a plaintext value in a protected column');
SELECT is((SELECT rows_using FROM brandbos.key_status() WHERE version = 2), 1::bigint,
          'the envelope of the good table counts under the active version');
RESET ROLE;
SELECT matches((SELECT problem FROM brandbos.protected_columns WHERE table_name = 'mal.other'::regclass),
               '1 values are not envelopes', 'the plaintext value is reported for its table only');
SELECT is((SELECT problem FROM brandbos.protected_columns WHERE table_name = 'public.fine'::regclass),
          NULL, 'the good table has no problem');
SELECT is(brandbos.rotate_key(), 3, 'rotate again');
UPDATE public.fine SET token = 'fine-secret-3';
SET ROLE bb_kim;
SELECT lives_ok('SELECT brandbos.destroy_key(2)', 'destroy_key works for a version no readable column uses');
RESET ROLE;

-- ordinary roles see no key versions of tables they cannot read
CREATE ROLE bb_nobody LOGIN;
SET ROLE bb_nobody;
SELECT is((SELECT count(*)::int FROM brandbos.protected_columns WHERE key_versions IS NOT NULL OR problem IS NOT NULL), 0,
          'a role without SELECT sees neither key versions nor problems');
RESET ROLE;
SET ROLE bb_mallory;
SELECT is((SELECT key_versions FROM brandbos.protected_columns WHERE table_name = 'mal.other'::regclass),
          ARRAY[1], 'the owner sees the key versions of its own table');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM public.bb_trap_log), 0, 'no planted code ran at any point');

-- counting stays exact over many key versions and toasted envelopes (the counts must not
-- live in the per-row memory the scan resets)
CREATE TABLE public.many (id int PRIMARY KEY, token text);
SELECT brandbos.protect_column('public.many', 'token');
DO $$
BEGIN
    FOR i IN 1..12 LOOP
        PERFORM brandbos.rotate_key();
        INSERT INTO public.many
        SELECT i, string_agg(md5(random()::text || g), '') FROM generate_series(1, 100) g;
    END LOOP;
END $$;
SELECT is((SELECT count(*)::int FROM brandbos.key_status()
            WHERE version > 3 AND rows_using = 1), 12,
          'key_status counts one toasted value under each of 12 versions');
SELECT is((SELECT cardinality(key_versions) FROM brandbos.protected_columns
            WHERE table_name = 'public.many'::regclass), 12,
          'protected_columns lists the 12 versions');

SELECT * FROM finish();
ROLLBACK;
