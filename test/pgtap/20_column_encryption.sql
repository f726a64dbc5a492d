-- Transparent column encryption: the trigger's semantics, the views, the
-- column functions and every kind of bad input.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(90);

CREATE TABLE ga4_credentials (
    id            int PRIMARY KEY,
    user_id       text UNIQUE,
    property_id   text,
    refresh_token text,
    token_blob    bytea
);
SELECT lives_ok($$SELECT brandbos.protect_column('ga4_credentials', 'refresh_token')$$,
                'protect a text column');
SELECT lives_ok($$SELECT brandbos.protect_column('ga4_credentials', 'token_blob')$$,
                'protect a bytea column of the same table');
SELECT lives_ok($$SELECT brandbos.protect_column('ga4_credentials', 'refresh_token')$$,
                'protect_column is idempotent');
SELECT is((SELECT count(*)::int FROM brandbos.protected_columns
            WHERE table_name = 'ga4_credentials'::regclass), 2, 'two columns registered once each');
SELECT trigger_is('ga4_credentials', 'zz_brandbos_protect', 'protect_trigger', 'the C trigger is installed');
SELECT has_view('ga4_credentials_decrypted', 'the _decrypted view exists');
SELECT has_view('ga4_credentials_safe', 'the _safe view exists');
SELECT ok((SELECT 'security_invoker=true' = ANY (reloptions) FROM pg_class
            WHERE oid = 'ga4_credentials_decrypted'::regclass), '_decrypted is security_invoker');
SELECT columns_are('ga4_credentials_safe', ARRAY['id', 'user_id', 'property_id'],
                   '_safe has every column but the protected ones');

-- sealing on INSERT
INSERT INTO ga4_credentials VALUES
    (1, 'u1', 'p1', 'refresh-token-one', '\x0102'),
    (2, 'u2', 'p2', '', ''),
    (3, 'u3', 'p3', NULL, NULL);
SELECT ok((SELECT bool_and(refresh_token LIKE 'bbx1:%') FROM ga4_credentials WHERE id IN (1, 2)),
          'text values are stored as printable envelopes');
SELECT ok((SELECT bool_and(substring(token_blob, 1, 3) = '\xbb7802'::bytea) FROM ga4_credentials WHERE id IN (1, 2)),
          'bytea values are stored as raw envelopes (format 2)');
SELECT ok((SELECT refresh_token NOT LIKE '%refresh-token-one%' FROM ga4_credentials WHERE id = 1),
          'no plaintext in the stored value');
SELECT results_eq('SELECT id, refresh_token, token_blob FROM ga4_credentials_decrypted ORDER BY id',
                  $$VALUES (1, 'refresh-token-one'::text, '\x0102'::bytea), (2, '', ''), (3, NULL, NULL)$$,
                  'the _decrypted view returns plaintext, empty strings and NULLs');
SELECT is((SELECT refresh_token FROM ga4_credentials WHERE id = 3), NULL, 'NULL stays NULL');
SELECT isnt((SELECT refresh_token FROM ga4_credentials WHERE id = 2), '', 'empty string is sealed too');

-- UPDATE of other columns leaves envelopes byte-identical
CREATE TEMP TABLE before_update AS SELECT id, refresh_token, token_blob FROM ga4_credentials;
UPDATE ga4_credentials SET property_id = 'p1-new' WHERE id = 1;
SELECT is((SELECT refresh_token FROM ga4_credentials WHERE id = 1),
          (SELECT refresh_token FROM before_update WHERE id = 1),
          'UPDATE of another column keeps the text envelope byte-identical');
SELECT is((SELECT token_blob FROM ga4_credentials WHERE id = 1),
          (SELECT token_blob FROM before_update WHERE id = 1),
          'UPDATE of another column keeps the bytea envelope byte-identical');

-- UPDATE with new plaintext re-seals
UPDATE ga4_credentials SET refresh_token = 'refresh-token-one-b' WHERE id = 1;
SELECT is((SELECT refresh_token FROM ga4_credentials_decrypted WHERE id = 1), 'refresh-token-one-b',
          'UPDATE with plaintext seals the new value');

-- a valid envelope for the same row and column passes through unchanged
CREATE TEMP TABLE saved AS SELECT * FROM ga4_credentials WHERE id = 1;
DELETE FROM ga4_credentials WHERE id = 1;
INSERT INTO ga4_credentials SELECT * FROM saved;
SELECT is((SELECT refresh_token FROM ga4_credentials WHERE id = 1), (SELECT refresh_token FROM saved),
          'a re-inserted envelope of the same row passes through (restore, COPY)');
SELECT is((SELECT refresh_token FROM ga4_credentials_decrypted WHERE id = 1), 'refresh-token-one-b',
          'and still decrypts');
UPDATE ga4_credentials SET refresh_token = (SELECT refresh_token FROM saved) WHERE id = 1;
SELECT is((SELECT refresh_token FROM ga4_credentials WHERE id = 1), (SELECT refresh_token FROM saved),
          'writing the row''s own envelope back is not double-encrypted');

-- envelopes from another row or column are rejected
SELECT throws_ok($$UPDATE ga4_credentials SET refresh_token = (SELECT refresh_token FROM ga4_credentials WHERE id = 2) WHERE id = 1$$,
                 'XX001', NULL, 'an envelope copied from another row is rejected');
SELECT throws_ok($$INSERT INTO ga4_credentials (id, user_id, refresh_token) SELECT 9, 'u9', refresh_token FROM saved$$,
                 'XX001', NULL, 'an envelope inserted under another primary key is rejected');
CREATE TABLE other_secrets (id int PRIMARY KEY, secret text);
SELECT brandbos.protect_column('other_secrets', 'secret');
INSERT INTO other_secrets VALUES (1, 'other');
SELECT throws_ok($$UPDATE ga4_credentials SET refresh_token = (SELECT secret FROM other_secrets WHERE id = 1) WHERE id = 1$$,
                 'XX001', NULL, 'an envelope from another column with the same key is rejected');
SELECT throws_ok($$UPDATE ga4_credentials SET refresh_token = brandbos.encrypt_text('forged') WHERE id = 1$$,
                 'XX001', NULL, 'an envelope with other associated data is rejected');
SELECT throws_ok($$UPDATE ga4_credentials SET refresh_token = 'bbx1:AAAA' WHERE id = 1$$,
                 '22P03', NULL, 'a truncated printable envelope is rejected');
SELECT throws_ok($$UPDATE ga4_credentials SET refresh_token = 'bbx1:not base64 at all!' WHERE id = 1$$,
                 '22P03', NULL, 'garbage after the envelope prefix is rejected');
SELECT throws_ok($$UPDATE ga4_credentials SET refresh_token = left((SELECT refresh_token FROM saved), 60) WHERE id = 1$$,
                 '22P03', NULL, 'a cut-off envelope is rejected');
SELECT throws_ok($$UPDATE ga4_credentials SET token_blob = substring((SELECT token_blob FROM saved) FOR 47) || '\x00'::bytea WHERE id = 1$$,
                 'XX001', NULL, 'a bytea envelope with a changed tag is rejected');
SELECT is((SELECT refresh_token FROM ga4_credentials_decrypted WHERE id = 1), 'refresh-token-one-b',
          'rejected writes left the value intact');

-- primary-key change re-seals under the new key values
CREATE TEMP TABLE before_pk AS SELECT refresh_token FROM ga4_credentials WHERE id = 1;
UPDATE ga4_credentials SET id = 10 WHERE id = 1;
SELECT isnt((SELECT refresh_token FROM ga4_credentials WHERE id = 10), (SELECT refresh_token FROM before_pk),
            'a primary-key change re-seals the envelope');
SELECT is((SELECT refresh_token FROM ga4_credentials_decrypted WHERE id = 10), 'refresh-token-one-b',
          'the re-sealed value decrypts under the new key');
SELECT is((SELECT token_blob FROM ga4_credentials_decrypted WHERE id = 10), '\x0102'::bytea,
          'the bytea value moved with it');

-- INSERT ... ON CONFLICT
INSERT INTO ga4_credentials (id, user_id, refresh_token) VALUES (10, 'u1', 'upserted-on-pk')
    ON CONFLICT (id) DO UPDATE SET refresh_token = EXCLUDED.refresh_token;
SELECT is((SELECT refresh_token FROM ga4_credentials_decrypted WHERE id = 10), 'upserted-on-pk',
          'ON CONFLICT (pk) DO UPDATE SET col = EXCLUDED.col stores the new value once');
INSERT INTO ga4_credentials (id, user_id, refresh_token) VALUES (77, 'u1', 'upserted-on-user')
    ON CONFLICT (user_id) DO UPDATE SET refresh_token = EXCLUDED.refresh_token;
SELECT is((SELECT refresh_token FROM ga4_credentials_decrypted WHERE id = 10), 'upserted-on-user',
          'ON CONFLICT on another unique key re-seals EXCLUDED for the existing row');
SELECT is((SELECT count(*)::int FROM ga4_credentials), 3, 'no row was added by the upserts');

-- the reserved prefix
SELECT throws_ok($$INSERT INTO ga4_credentials (id, user_id, refresh_token) VALUES (20, 'u20', 'bbx1:looks like an envelope')$$,
                 '22P03', NULL, 'plaintext starting with bbx1: is refused, never stored');

-- bad input to protect_column
CREATE TABLE no_pk (a text);
CREATE TABLE typed (id int PRIMARY KEY, n int, v varchar(10));
CREATE TABLE text_pk (k text PRIMARY KEY, v text);
CREATE VIEW some_view AS SELECT 1 AS id, 'x'::text AS t;
SELECT throws_ok($$SELECT brandbos.protect_column('no_pk', 'a')$$, '55000', NULL, 'table without primary key: 55000');
SELECT throws_ok($$SELECT brandbos.protect_column('typed', 'n')$$, '42804', NULL, 'int column: 42804');
SELECT throws_ok($$SELECT brandbos.protect_column('typed', 'v')$$, '42804', NULL, 'varchar column: 42804');
SELECT throws_ok($$SELECT brandbos.protect_column('typed', 'nope')$$, '42703', NULL, 'unknown column: 42703');
SELECT throws_ok($$SELECT brandbos.protect_column('text_pk', 'k')$$, '0A000', NULL, 'primary-key column: 0A000');
SELECT throws_ok($$SELECT brandbos.protect_column('no_such_table', 'a')$$, '42P01', NULL, 'unknown table: 42P01');
SELECT throws_ok($$SELECT brandbos.protect_column('some_view', 't')$$, '42809', NULL, 'a view: 42809');
SELECT throws_ok($$SELECT brandbos.protect_column(NULL, 'a')$$, '22004', NULL, 'NULL table: 22004');
SELECT throws_ok($$SELECT brandbos.protect_column('typed', NULL)$$, '22004', NULL, 'NULL column: 22004');

-- existing rows are sealed by protect_column
CREATE TABLE legacy (id bigint PRIMARY KEY, token text);
INSERT INTO legacy SELECT g, 'legacy-' || g FROM generate_series(1, 50) g;
SELECT brandbos.protect_column('legacy', 'token');
SELECT is((SELECT count(*)::int FROM legacy WHERE token LIKE 'bbx1:%'), 50, 'existing rows are sealed');
SELECT is((SELECT string_agg(token, ',' ORDER BY id) FROM legacy_decrypted WHERE id <= 3),
          'legacy-1,legacy-2,legacy-3', 'and decrypt to their old values');

-- encrypt / decrypt functions
SELECT is(brandbos.decrypt(brandbos.encrypt('\xdeadbeef'::bytea, '\x01'::bytea), '\x01'::bytea),
          '\xdeadbeef'::bytea, 'encrypt/decrypt round trip');
SELECT is(brandbos.decrypt(brandbos.encrypt(''::bytea)), ''::bytea, 'empty bytea round trip');
SELECT is(brandbos.decrypt_text(brandbos.encrypt_text('héllo ✓', 'ad')::text, 'ad'), 'héllo ✓',
          'encrypt_text/decrypt_text round trip with multibyte text');
SELECT is(brandbos.decrypt_text(brandbos.encrypt_text('')), '', 'empty text round trip');
SELECT isnt(brandbos.encrypt_text('same'), brandbos.encrypt_text('same'), 'random nonces: equal plaintexts differ');
SELECT is(brandbos.encrypt(NULL), NULL, 'encrypt(NULL) is NULL');
SELECT is(brandbos.decrypt_text(NULL), NULL, 'decrypt_text(NULL) is NULL');
SELECT throws_ok($$SELECT brandbos.decrypt_text(brandbos.encrypt_text('x', 'a'), 'b')$$, 'XX001', NULL,
                 'wrong associated data: XX001');
SELECT throws_ok($$SELECT brandbos.decrypt('\x00'::bytea)$$, '22P03', NULL, 'garbage bytea: 22P03');
SELECT throws_ok($$SELECT brandbos.decrypt(''::bytea)$$, '22P03', NULL, 'empty bytea: 22P03');
SELECT throws_ok($$SELECT brandbos.decrypt_text('plain words')$$, '22P03', NULL, 'not an envelope: 22P03');
SELECT throws_ok($$SELECT brandbos.decrypt(substring(brandbos.encrypt('abc') FOR 40))$$, '22P03', NULL,
                 'truncated bytea envelope: 22P03');
SELECT throws_ok($$SELECT brandbos.decrypt(overlay(brandbos.encrypt('abc') PLACING '\x03' FROM 3 FOR 1))$$,
                 '22P03', NULL, 'unknown format version: 22P03');
SELECT throws_ok($$SELECT brandbos.decrypt(overlay(brandbos.encrypt('abc') PLACING '\x000003e7' FROM 4 FOR 4))$$,
                 '42704', NULL, 'unknown data key version: 42704');
SELECT is(brandbos.envelope_key_version(brandbos.encrypt_text('v')), 1, 'envelope_key_version reads the header');
SELECT throws_ok($$SELECT brandbos.envelope_key_version('bbx1:%%%%')$$, '22P03', NULL,
                 'envelope_key_version of garbage: 22P03');

-- privileges
CREATE ROLE bb_tce_reader NOLOGIN;
CREATE ROLE bb_tce_writer NOLOGIN;
GRANT brandbos_decryptor TO bb_tce_reader;
GRANT SELECT, INSERT, UPDATE ON ga4_credentials TO bb_tce_reader, bb_tce_writer;
GRANT EXECUTE ON FUNCTION brandbos.decrypt_text(text, text) TO bb_tce_writer;
SET LOCAL ROLE bb_tce_writer;
SELECT lives_ok($$INSERT INTO ga4_credentials (id, user_id, refresh_token) VALUES (30, 'u30', 'writer-token')$$,
                'a role without decryptor can write a protected column');
SELECT throws_ok('SELECT * FROM ga4_credentials_decrypted', '42501', NULL,
                 'a role without decryptor cannot read the _decrypted view');
SELECT throws_ok($$SELECT brandbos.decrypt_text(refresh_token) FROM ga4_credentials WHERE id = 30$$, '42501', NULL,
                 'decrypt_text checks brandbos_decryptor in C even when EXECUTE was granted');
SELECT throws_ok($$SELECT brandbos.unprotect_column('ga4_credentials', 'refresh_token')$$, '42501', NULL,
                 'only the owner may unprotect');
SELECT throws_ok($$SELECT brandbos.protect_column('ga4_credentials', 'property_id')$$, '42501', NULL,
                 'only the owner may protect');
RESET ROLE;
SET LOCAL ROLE bb_tce_reader;
SELECT is((SELECT refresh_token FROM ga4_credentials_decrypted WHERE id = 30), 'writer-token',
          'a decryptor reads the plaintext');
RESET ROLE;

-- rename keeps the column id
ALTER TABLE ga4_credentials RENAME COLUMN refresh_token TO rt;
SELECT is((SELECT count(*)::int FROM brandbos.column_registry WHERE table_oid = 'ga4_credentials'::regclass AND column_name = 'rt'),
          1, 'a renamed column keeps its registry entry');
INSERT INTO ga4_credentials (id, user_id, rt) VALUES (40, 'u40', 'after-rename');
SELECT ok((SELECT rt LIKE 'bbx1:%' FROM ga4_credentials WHERE id = 40), 'a renamed column is still sealed');
SELECT is((SELECT refresh_token FROM ga4_credentials_decrypted WHERE id = 40), 'after-rename',
          'and still decrypts through the view');
ALTER TABLE ga4_credentials RENAME COLUMN rt TO refresh_token;

-- reencrypt
SELECT brandbos.rotate_key();
SELECT is(brandbos.reencrypt('ga4_credentials', 2), 4::bigint, 'reencrypt re-seals every row holding a value (batches of 2)');
SELECT is((SELECT key_versions FROM brandbos.protected_columns
            WHERE table_name = 'ga4_credentials'::regclass AND column_name = 'refresh_token'), ARRAY[2],
          'every value now uses the active key');
SELECT is(brandbos.reencrypt('ga4_credentials'), 0::bigint, 'reencrypt is resumable: nothing left to move');
SELECT is((SELECT refresh_token FROM ga4_credentials_decrypted WHERE id = 10), 'upserted-on-user',
          'values decrypt after reencrypt');
SELECT throws_ok($$SELECT brandbos.reencrypt('ga4_credentials', 0)$$, '22023', NULL, 'batch_size 0: 22023');
SELECT throws_ok($$SELECT brandbos.reencrypt('typed')$$, '42704', NULL, 'table without protected columns: 42704');

-- unprotect
SELECT lives_ok($$SELECT brandbos.unprotect_column('ga4_credentials', 'refresh_token')$$, 'unprotect a column');
SELECT is((SELECT refresh_token FROM ga4_credentials WHERE id = 10), 'upserted-on-user',
          'the unprotected column holds plaintext again');
SELECT ok((SELECT token_blob = '\x0102'::bytea FROM ga4_credentials_decrypted WHERE id = 10),
          'the other protected column still decrypts through the rebuilt view');
SELECT throws_ok($$SELECT brandbos.unprotect_column('ga4_credentials', 'refresh_token')$$, '42704', NULL,
                 'unprotecting an unprotected column: 42704');
SELECT lives_ok($$SELECT brandbos.unprotect_column('ga4_credentials', 'token_blob')$$, 'unprotect the last column');
SELECT hasnt_trigger('ga4_credentials', 'zz_brandbos_protect', 'the trigger is gone with the last column');
SELECT hasnt_view('ga4_credentials_decrypted', 'the views are gone with the last column');

-- partitioned tables: the trigger fires on the partitions, which are
-- protected through their root
CREATE TABLE tokens_by_tenant (tenant text, id int, token text, PRIMARY KEY (tenant, id))
    PARTITION BY LIST (tenant);
CREATE TABLE tokens_t1 PARTITION OF tokens_by_tenant FOR VALUES IN ('t1');
INSERT INTO tokens_by_tenant VALUES ('t1', 1, 'before-protect');
SELECT brandbos.protect_column('tokens_by_tenant', 'token');
CREATE TABLE tokens_t2 PARTITION OF tokens_by_tenant FOR VALUES IN ('t2');
INSERT INTO tokens_by_tenant VALUES ('t1', 2, 'part-one'), ('t2', 1, 'part-two');
SELECT is((SELECT count(*)::int FROM tokens_by_tenant WHERE token LIKE 'bbx1:%'), 3,
          'rows of every partition are sealed, including one created after protect_column');
SELECT is((SELECT string_agg(token, ',' ORDER BY tenant, id) FROM tokens_by_tenant_decrypted),
          'before-protect,part-one,part-two', 'and decrypt through the root''s view');
SELECT throws_ok($$INSERT INTO tokens_t2 SELECT 't2', 2, token FROM tokens_t1 WHERE id = 1$$, 'XX001', NULL,
                 'an envelope moved between partitions is rejected');

-- dropping a table cleans the registry
CREATE TEMP TABLE legacy_oid AS SELECT 'legacy'::regclass::oid AS oid;
SET LOCAL client_min_messages = warning;
DROP TABLE legacy CASCADE;
RESET client_min_messages;
SELECT is((SELECT count(*)::int FROM brandbos.column_registry WHERE table_oid::oid = (SELECT oid FROM legacy_oid)), 0,
          'DROP TABLE removes its registry rows');

SELECT * FROM finish();
ROLLBACK;
