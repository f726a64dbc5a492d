-- Every value of a protected column is an envelope that authenticates for its
-- row, or the write fails (issue 10, points 4, 6 and 13): attached
-- partitions, inheritance, values that look like envelopes, a trigger without
-- a registered column, forced row level security, long associated data.
-- Run as a table owner who is not a superuser.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(28);

CREATE ROLE bb_owner LOGIN;
CREATE ROLE bb_reader LOGIN IN ROLE brandbos_decryptor;
CREATE ROLE bb_km LOGIN IN ROLE brandbos_keymaster;
CREATE SCHEMA own AUTHORIZATION bb_owner;
GRANT USAGE ON SCHEMA own TO bb_reader, bb_km;

SET ROLE bb_owner;

-- ATTACH PARTITION: the rows a partition brings are sealed on attach
CREATE TABLE own.events (id int, region text, token text, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE own.events_eu PARTITION OF own.events FOR VALUES IN ('eu');
SELECT brandbos.protect_column('own.events', 'token');
CREATE TABLE own.events_us (id int, region text, token text, PRIMARY KEY (id, region));
INSERT INTO own.events_us VALUES (1, 'us', 'us-secret-1'), (2, 'us', 'us-secret-2'), (3, 'us', NULL);
ALTER TABLE own.events ATTACH PARTITION own.events_us FOR VALUES IN ('us');
SELECT is((SELECT count(*)::int FROM own.events_us WHERE token LIKE 'bbx1:%'), 2,
          'rows of an attached partition are sealed by the attach');
SELECT is((SELECT count(*)::int FROM own.events_us WHERE token LIKE '%us-secret%'), 0,
          'no plaintext is left in the attached partition');
INSERT INTO own.events VALUES (4, 'us', 'us-secret-4');
SELECT is((SELECT count(*)::int FROM own.events WHERE token LIKE 'bbx1:%'), 3, 'writes after the attach are sealed');

SELECT throws_ok($$ALTER TABLE own.events DETACH PARTITION own.events_us$$, '0A000', NULL,
                 'DETACH PARTITION of a protected table: 0A000 (the partition would lose its trigger)');

-- inheritance is refused both ways
CREATE TABLE own.base (id int PRIMARY KEY, token text);
SELECT brandbos.protect_column('own.base', 'token');
SELECT throws_ok($$CREATE TABLE own.kid (extra int) INHERITS (own.base)$$, '0A000',
                 NULL, 'CREATE TABLE ... INHERITS a protected table: 0A000');
CREATE TABLE own.loose (id int PRIMARY KEY, token text);
SELECT throws_ok($$ALTER TABLE own.loose INHERIT own.base$$, '0A000', NULL,
                 'ALTER TABLE ... INHERIT a protected table: 0A000');
CREATE TABLE own.parent (id int PRIMARY KEY, token text);
CREATE TABLE own.child () INHERITS (own.parent);
SELECT throws_ok($$SELECT brandbos.protect_column('own.parent', 'token')$$, '0A000', NULL,
                 'protect_column of an inheritance parent: 0A000');
SELECT throws_ok($$SELECT brandbos.protect_column('own.child', 'token')$$, '0A000', NULL,
                 'protect_column of an inheritance child: 0A000');

-- values that only look like envelopes are sealed, not trusted
CREATE TABLE own.legacy (id int PRIMARY KEY, token text, blob bytea);
INSERT INTO own.legacy VALUES (1, 'bbx1:looks-like-an-envelope', '\xbb7801000000010000'),
                              (2, 'plain', 'plain');
CREATE TABLE own.sealed_elsewhere (id int PRIMARY KEY, token text);
SELECT brandbos.protect_column('own.sealed_elsewhere', 'token');
INSERT INTO own.sealed_elsewhere VALUES (3, 'sealed for another table');
INSERT INTO own.legacy SELECT id, token, NULL FROM own.sealed_elsewhere;
CREATE TEMP TABLE legacy_before AS SELECT * FROM own.legacy;
GRANT SELECT ON legacy_before, own.legacy TO bb_reader;
SELECT brandbos.protect_column('own.legacy', 'token');
SELECT brandbos.protect_column('own.legacy', 'blob');
SELECT is((SELECT count(*)::int FROM own.legacy l JOIN legacy_before b USING (id)
            WHERE l.token IS DISTINCT FROM b.token), 3,
          'every existing text value was sealed, including those that looked like envelopes');
SELECT is((SELECT count(*)::int FROM own.legacy l JOIN legacy_before b USING (id)
            WHERE l.blob IS DISTINCT FROM b.blob), 2, 'every existing bytea value was sealed');
RESET ROLE;
SET ROLE bb_reader;
SELECT results_eq($$SELECT l.id, l.token FROM own.legacy_decrypted l ORDER BY id$$,
                  $$SELECT id, token FROM legacy_before ORDER BY id$$,
                  'they decrypt to exactly what was stored before');
RESET ROLE;
SET ROLE bb_owner;
CREATE TEMP TABLE legacy_sealed AS SELECT * FROM own.legacy;
SELECT brandbos.protect_column('own.legacy', 'token');
SELECT is((SELECT count(*)::int FROM own.legacy l JOIN legacy_sealed s USING (id)
            WHERE l.token IS DISTINCT FROM s.token), 0,
          'a second protect_column keeps envelopes that authenticate as they are');

-- a protect trigger without a registered column refuses the row (fail closed)
CREATE TABLE own.unregistered (id int PRIMARY KEY, token text);
CREATE TRIGGER zz_brandbos_protect BEFORE INSERT OR UPDATE ON own.unregistered
    FOR EACH ROW EXECUTE FUNCTION brandbos.protect_trigger();
SELECT throws_ok($$INSERT INTO own.unregistered VALUES (1, 'would be stored unsealed')$$, '55000', NULL,
                 'a protect trigger that finds no registered column refuses the row');
SELECT is((SELECT count(*)::int FROM own.unregistered), 0, 'nothing was stored');

-- FORCE ROW LEVEL SECURITY hides rows from the owner: they are sealed and re-sealed all the same
CREATE TABLE own.tenanted (id int PRIMARY KEY, tenant_id text, token text);
INSERT INTO own.tenanted SELECT g, 't' || (g % 3), 'tenant-secret-' || g FROM generate_series(1, 30) g;
SELECT brandbos.enable_tenant_isolation('own.tenanted');
SELECT is((SELECT count(*)::int FROM own.tenanted), 0, 'without a context the owner sees no row');
SELECT lives_ok($$SELECT brandbos.protect_column('own.tenanted', 'token')$$,
                'protect_column under FORCE ROW LEVEL SECURITY');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM own.tenanted WHERE token LIKE 'bbx1:%'), 30,
          'every row was sealed, also those the owner cannot see');
SELECT is(brandbos.rotate_key(), 2, 'rotate');
SET ROLE bb_km;
SELECT is(brandbos.reencrypt('own.tenanted'), 30::bigint, 'reencrypt moves every row under FORCE RLS');
RESET ROLE;
SELECT is((SELECT key_versions FROM brandbos.protected_columns WHERE table_name = 'own.tenanted'::regclass),
          ARRAY[2], 'only the active key is left in the table');
SET ROLE bb_km;
SELECT is(brandbos.reencrypt('own.tenanted'), 0::bigint, 'a second reencrypt finds nothing to move');
RESET ROLE;

-- a primary key that cannot bind stably is refused up front, even on an empty table
SET ROLE bb_owner;
CREATE TYPE own.pair AS (a int, b int);
CREATE TABLE own.composite_key (id own.pair PRIMARY KEY, token text);
SELECT throws_ok($$SELECT brandbos.protect_column('own.composite_key', 'token')$$, '0A000', NULL,
                 'protect_column of an empty table with a composite primary key: 0A000');
RESET ROLE;

-- unprotect_column decrypts in place without writing the plaintext into the audit log,
-- also under FORCE ROW LEVEL SECURITY (issue 11, point 6)
SET ROLE bb_owner;
CREATE TABLE own.audited (id int PRIMARY KEY, tenant_id text, token text);
INSERT INTO own.audited VALUES (1, 't1', 'audited-secret-1'), (2, 't2', 'audited-secret-2');
SELECT brandbos.protect_column('own.audited', 'token');
SELECT brandbos.enable_audit('own.audited');
SELECT brandbos.enable_tenant_isolation('own.audited');
RESET ROLE;
GRANT brandbos_decryptor TO bb_owner;
SET ROLE bb_owner;
SELECT lives_ok($$SELECT brandbos.unprotect_column('own.audited', 'token')$$,
                'the owner (a decryptor) unprotects the column');
RESET ROLE;
REVOKE brandbos_decryptor FROM bb_owner;
SELECT is((SELECT string_agg(token, ',' ORDER BY id) FROM own.audited), 'audited-secret-1,audited-secret-2',
          'every value is plaintext again, also the rows FORCE RLS hides from the owner');
SELECT is((SELECT count(*)::int FROM brandbos.audit_entries WHERE details::text LIKE '%audited-secret%'), 0,
          'no plaintext reached the audit log');
SELECT cmp_ok((SELECT count(*)::int FROM brandbos.audit_entries
                WHERE resource_type = 'own.audited' AND action = 'update'), '>=', 2,
              'the decrypting updates were audited, with the column as [protected]');

-- upsert on a unique non-key column with associated data longer than 256 bytes
SET ROLE bb_owner;
CREATE TABLE own.longkey (k text PRIMARY KEY, u text UNIQUE, token text);
SELECT brandbos.protect_column('own.longkey', 'token');
GRANT SELECT ON own.longkey TO bb_reader;
INSERT INTO own.longkey VALUES (repeat('k', 400), 'u1', 'first');
SELECT lives_ok($$INSERT INTO own.longkey VALUES (repeat('j', 400), 'u1', 'second')
                  ON CONFLICT (u) DO UPDATE SET token = EXCLUDED.token$$,
                'ON CONFLICT ... EXCLUDED with a 400-byte primary key');
RESET ROLE;
SET ROLE bb_reader;
SELECT is((SELECT token FROM own.longkey_decrypted WHERE u = 'u1'), 'second', 'the upserted value decrypts');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
