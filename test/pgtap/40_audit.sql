-- Audit log: writing, sealing, verifying, digests, redaction, pruning,
-- append-only rules and bad input.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(94);

-- shape
SELECT has_view('brandbos', 'audit_log', 'brandbos.audit_log exists');
SELECT columns_are('brandbos', 'audit_log',
    ARRAY['id', 'occurred_at', 'txid', 'tenant_id', 'user_id', 'db_user', 'action', 'resource_type',
          'resource_id', 'details', 'ip_address', 'user_agent', 'leaf_hash', 'block_id'],
    'audit_log has the columns of the spec');
SELECT has_table('brandbos', 'audit_blocks', 'brandbos.audit_blocks exists');
SELECT is((SELECT count(*)::int FROM pg_trigger
            WHERE tgrelid IN ('brandbos.audit_entries'::regclass, 'brandbos.audit_blocks'::regclass)
              AND tgenabled = 'A'), 4, 'the append-only triggers are ENABLE ALWAYS');

-- log_event
SELECT is(brandbos.log_event('login', 'user', 'u-1', '{"ok": true}'), 1::bigint, 'log_event returns the new id');
SELECT is(brandbos.log_event('logout', 'user'), 2::bigint, 'resource_id and details are optional');
SELECT results_eq($$SELECT action, resource_type, resource_id, details, db_user::text FROM brandbos.audit_log WHERE id = 1$$,
                  $$VALUES ('login'::text, 'user'::text, 'u-1'::text, '{"ok": true}'::jsonb, current_user::text)$$,
                  'the row holds what was logged and the database role');
SELECT is((SELECT length(leaf_hash) FROM brandbos.audit_log WHERE id = 1), 32, 'each row is hashed when written');
SELECT is((SELECT block_id FROM brandbos.audit_log WHERE id = 1), NULL, 'not sealed yet');
SELECT is((SELECT txid FROM brandbos.audit_log WHERE id = 1), pg_current_xact_id(), 'txid is the writing transaction');
SELECT throws_ok($$SELECT brandbos.log_event(NULL, 'user')$$, '22004', NULL, 'NULL action: 22004');
SELECT throws_ok($$SELECT brandbos.log_event('x', NULL)$$, '22004', NULL, 'NULL resource_type: 22004');
SELECT throws_ok($$SELECT brandbos.log_event('', 'user')$$, '22023', NULL, 'empty action: 22023');

-- table auditing
CREATE TABLE accounts (id int PRIMARY KEY, name text, token text, balance numeric, flags jsonb);
SELECT brandbos.protect_column('accounts', 'token');
SELECT lives_ok($$SELECT brandbos.enable_audit('accounts')$$, 'enable_audit');
SELECT is((SELECT action FROM brandbos.audit_log ORDER BY id DESC LIMIT 1), 'audit_enabled', 'enabling is itself audited');
SELECT throws_ok($$SELECT brandbos.enable_audit('accounts')$$, '42710', NULL, 'enabling twice: 42710');
INSERT INTO accounts VALUES (1, 'alice', 'tok-secret-1', 10.5, '{"vip": true}');
UPDATE accounts SET name = 'alicia' WHERE id = 1;
UPDATE accounts SET balance = balance + 1 WHERE id = 1;
DELETE FROM accounts WHERE id = 1;
INSERT INTO accounts VALUES (2, 'bob', NULL, 'NaN', NULL), (3, 'carol', 't3', 0, '[]');
TRUNCATE accounts;
SELECT results_eq($$SELECT action, resource_id FROM brandbos.audit_log WHERE resource_type = 'public.accounts' ORDER BY id$$,
                  $$VALUES ('insert'::text, '1'::text), ('update', '1'), ('update', '1'), ('delete', '1'),
                           ('insert', '2'), ('insert', '3'), ('truncate', NULL)$$,
                  'every change is logged with the primary key as resource_id');
SELECT is((SELECT details FROM brandbos.audit_log WHERE resource_type = 'public.accounts' AND action = 'insert' AND resource_id = '1'),
          '{"new": {"id": 1, "name": "alice", "token": "[protected]", "flags": {"vip": true}, "balance": 10.5}}'::jsonb,
          'an insert records the new row, protected columns as "[protected]"');
SELECT is((SELECT details->'changed' FROM brandbos.audit_log WHERE resource_type = 'public.accounts' AND action = 'update' ORDER BY id LIMIT 1),
          '["name"]'::jsonb, 'an update records the changed columns');
SELECT is((SELECT details->'old'->>'name' FROM brandbos.audit_log WHERE resource_type = 'public.accounts' AND action = 'update' ORDER BY id LIMIT 1),
          'alice', 'an update records the old row');
SELECT is((SELECT details->'old'->>'name' FROM brandbos.audit_log WHERE resource_type = 'public.accounts' AND action = 'delete'),
          'alicia', 'a delete records the old row');
SELECT is((SELECT details->'new'->>'balance' FROM brandbos.audit_log WHERE resource_type = 'public.accounts' AND resource_id = '2'),
          'NaN', 'NaN is recorded as a string (not a JSON number)');
SELECT is((SELECT details FROM brandbos.audit_log WHERE action = 'truncate'), '{"row_count": 2}'::jsonb,
          'TRUNCATE records the row count');
SELECT ok((SELECT bool_and(details::text NOT LIKE '%tok-secret-1%') FROM brandbos.audit_log),
          'no plaintext of a protected column reaches the audit log');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'accounts'::regclass AND tgname LIKE 'zz_brandbos_audit%' AND tgenabled = 'A'),
          2, 'the audit triggers fire even under session_replication_role = replica');
SELECT lives_ok($$SELECT brandbos.disable_audit('accounts')$$, 'disable_audit');
SELECT is((SELECT action FROM brandbos.audit_log ORDER BY id DESC LIMIT 1), 'audit_disabled', 'disabling is itself audited');
INSERT INTO accounts VALUES (9, 'quiet', NULL, 0, NULL);
SELECT is((SELECT count(*)::int FROM brandbos.audit_log WHERE resource_id = '9'), 0, 'no entries after disable_audit');
SELECT throws_ok($$SELECT brandbos.disable_audit('accounts')$$, '42704', NULL, 'disabling what is not enabled: 42704');

-- bad input to enable_audit
CREATE TABLE no_pk (a int);
CREATE VIEW a_view AS SELECT 1 AS a;
SELECT throws_ok($$SELECT brandbos.enable_audit('no_pk')$$, '55000', NULL, 'table without primary key: 55000');
SELECT throws_ok($$SELECT brandbos.enable_audit('nope')$$, '42P01', NULL, 'unknown table: 42P01');
SELECT throws_ok($$SELECT brandbos.enable_audit('a_view')$$, '42809', NULL, 'a view: 42809');
SELECT throws_ok($$SELECT brandbos.enable_audit(NULL)$$, '22004', NULL, 'NULL table: 22004');
SELECT throws_ok($$SELECT brandbos.enable_audit('brandbos.audit_entries')$$, '0A000', NULL, 'the audit tables themselves: 0A000');

-- append-only, owner and superuser included
SELECT throws_ok($$UPDATE brandbos.audit_entries SET action = 'x' WHERE id = 1$$, '42501', NULL, 'UPDATE of the log fails');
SELECT throws_ok($$DELETE FROM brandbos.audit_entries WHERE id = 1$$, '42501', NULL, 'DELETE from the log fails');
SELECT throws_ok($$TRUNCATE brandbos.audit_entries$$, '42501', NULL, 'TRUNCATE of the log fails');
SELECT throws_ok($$UPDATE brandbos.audit_log SET action = 'x' WHERE id = 1$$, NULL, NULL, 'the audit_log view cannot be updated');
SET LOCAL session_replication_role = replica;
SELECT throws_ok($$DELETE FROM brandbos.audit_entries WHERE id = 1$$, '42501', NULL,
                 'session_replication_role = replica does not skip the guard');
SET LOCAL session_replication_role = origin;

-- sealing
SELECT is(brandbos.seal_audit(), 1::bigint, 'seal_audit returns the new block id');
SELECT is(brandbos.seal_audit(), NULL, 'nothing new: NULL');
SELECT results_eq($$SELECT first_id, row_count, length(root_hash), length(signature), length(public_key) FROM brandbos.audit_blocks$$,
                  $$VALUES (1::bigint, (SELECT count(*) FROM brandbos.audit_entries), 32, 64, 32)$$,
                  'block 1 covers every row with a Merkle root and an Ed25519 signature');
SELECT is((SELECT count(*)::int FROM brandbos.audit_log WHERE block_id = 1), (SELECT count(*)::int FROM brandbos.audit_entries),
          'audit_log shows each row''s block');
SELECT throws_ok($$UPDATE brandbos.audit_blocks SET row_count = 0$$, '42501', NULL, 'UPDATE of blocks fails');
SELECT throws_ok($$DELETE FROM brandbos.audit_blocks$$, '42501', NULL, 'DELETE of blocks fails');
SELECT is((SELECT count(*)::int FROM brandbos.verify_audit()), 0, 'a clean log verifies');

-- ids left unused by rollbacks are not deletions
SAVEPOINT before_rollback;
SELECT brandbos.log_event('rolled', 'back');
ROLLBACK TO before_rollback;
SELECT brandbos.log_event('after', 'rollback');
SELECT is(brandbos.seal_audit(), 2::bigint, 'block 2');
SELECT is((SELECT array_length(missing_ids, 1) FROM brandbos.audit_blocks WHERE block_id = 2), 1,
          'the rolled-back id is recorded as missing');
SELECT is((SELECT count(*)::int FROM brandbos.verify_audit()), 0, 'and verification stays clean');
SELECT is((SELECT prev_hash FROM brandbos.audit_blocks WHERE block_id = 2),
          (SELECT block_hash FROM brandbos.audit_blocks WHERE block_id = 1), 'blocks are chained');

-- digest
CREATE TEMP TABLE digest_1 AS SELECT brandbos.audit_digest() AS d;
SELECT is((SELECT (d->>'block_id')::int FROM digest_1), 2, 'the digest names the latest block');
SELECT ok((SELECT d ? 'public_key' AND d ? 'signature' AND d ? 'chain_id' AND d ? 'database' FROM digest_1),
          'the digest carries the key, signature and database identity');
SELECT ok(brandbos.verify_audit_digest((SELECT d FROM digest_1)), 'the digest verifies');
SELECT brandbos.log_event('more', 'events');
SELECT brandbos.seal_audit();
SELECT ok(brandbos.verify_audit_digest((SELECT d FROM digest_1)), 'an older digest still verifies as the chain grows');
SELECT throws_ok($$SELECT brandbos.verify_audit_digest('{"format": "nope"}')$$, '22023', NULL, 'malformed digest: 22023');
SELECT throws_ok($$SELECT brandbos.verify_audit_digest('[1, 2]')$$, '22023', NULL, 'a digest that is not an object: 22023');
SELECT throws_ok($$SELECT brandbos.verify_audit_digest((SELECT d || '{"block_hash": "zz"}' FROM digest_1))$$, '22023', NULL,
                 'a digest with a malformed hash: 22023');
SELECT throws_ok($$SELECT brandbos.verify_audit_digest((SELECT d || jsonb_build_object('chain_id', repeat('ab', 32), 'database', 'elsewhere') FROM digest_1))$$,
                 '42704', NULL, 'a digest from another database: 42704');
SELECT throws_ok($$SELECT brandbos.verify_audit_digest('{not json')$$, '22P02', NULL, 'text that is not JSON: 22P02');
-- a digest is untrusted input, checked member by member
SELECT ok(brandbos.verify_audit_digest((SELECT d - 'signature' - 'public_key' - 'sealed_at' FROM digest_1)),
          'signature, public key and other extra members are optional');
SELECT throws_ok($$SELECT brandbos.verify_audit_digest((SELECT d || '{"block_id": 2.5}' FROM digest_1))$$, '22023',
                 'malformed audit digest', 'a fractional block_id: 22023');
SELECT throws_ok($$SELECT brandbos.verify_audit_digest((SELECT d || '{"block_id": "2"}' FROM digest_1))$$, '22023',
                 'malformed audit digest', 'a block_id given as a string: 22023');
SELECT throws_ok($$SELECT brandbos.verify_audit_digest((SELECT d || '{"signature": "abc"}' FROM digest_1))$$, '22023',
                 'malformed audit digest', 'a malformed signature member: 22023');
SELECT throws_ok($$SELECT brandbos.verify_audit_digest((SELECT d || jsonb_build_object('note', (repeat('[', 40) || repeat(']', 40))::jsonb) FROM digest_1))$$,
                 '22023', 'malformed audit digest', 'nesting deeper than 32 levels: 22023');
SELECT ok(brandbos.verify_audit_digest((SELECT d || jsonb_build_object('note', (repeat('[', 20) || repeat(']', 20))::jsonb) FROM digest_1)),
          'an extra member nested 20 levels deep is skipped');

-- redaction (GDPR)
SELECT lives_ok($$SELECT brandbos.redact_audit(1, 'erasure request 42')$$, 'redact_audit');
SELECT results_eq($$SELECT details, ip_address::text, user_agent FROM brandbos.audit_log WHERE id = 1$$,
                  $$VALUES (NULL::jsonb, NULL::text, NULL::text)$$, 'the payload is cleared');
SELECT is((SELECT length(leaf_hash) FROM brandbos.audit_log WHERE id = 1), 32, 'the hash is kept');
SELECT is((SELECT action FROM brandbos.audit_log ORDER BY id DESC LIMIT 1), 'audit_redacted', 'the redaction is logged');
SELECT is((SELECT count(*)::int FROM brandbos.verify_audit()), 0, 'verification still passes after redaction');
SELECT throws_ok($$SELECT brandbos.redact_audit(999999, 'x')$$, '42704', NULL, 'unknown row: 42704');
SELECT throws_ok($$SELECT brandbos.redact_audit(1, '')$$, '22023', NULL, 'empty reason: 22023');

-- pruning: whole sealed blocks, headers stay, the chain still verifies
SELECT brandbos.seal_audit();
CREATE TEMP TABLE before_prune AS
    SELECT (SELECT count(*) FROM brandbos.audit_blocks) AS blocks,
           (SELECT max(last_id) FROM brandbos.audit_blocks) AS sealed_up_to;
SELECT brandbos.log_event('after', 'the cut');
SELECT is(brandbos.prune_audit(clock_timestamp()),
          (SELECT count(*) FROM brandbos.audit_entries WHERE id <= (SELECT sealed_up_to FROM before_prune)),
          'prune_audit deletes the rows of every block sealed before the cut');
SELECT is((SELECT count(*) FROM brandbos.audit_blocks), (SELECT blocks FROM before_prune), 'block headers stay');
SELECT is((SELECT count(*)::int FROM brandbos.audit_entries WHERE action = 'after'), 1, 'unsealed rows stay');
SELECT is((SELECT count(*)::int FROM brandbos.audit_log WHERE action = 'audit_pruned'), 1, 'the prune is logged');
SELECT is((SELECT count(*)::int FROM brandbos.verify_audit()), 0, 'the chain still verifies after pruning');
SELECT is(brandbos.prune_audit(clock_timestamp()), 0::bigint, 'pruning again finds nothing');
SELECT throws_ok($$SELECT brandbos.prune_audit(NULL)$$, '22004', NULL, 'NULL cut: 22004');


-- privileges
CREATE ROLE bb_audit_app NOLOGIN;
CREATE ROLE bb_audit_reader NOLOGIN;
GRANT brandbos_auditor TO bb_audit_reader;
SET LOCAL ROLE bb_audit_app;
SELECT lives_ok($$SELECT brandbos.log_event('app', 'event')$$, 'any role may log events');
SELECT throws_ok($$SELECT * FROM brandbos.audit_log$$, '42501', NULL, 'a non-auditor cannot read the log');
SELECT throws_ok($$SELECT * FROM brandbos.verify_audit()$$, '42501', NULL, 'a non-auditor cannot verify');
SELECT throws_ok($$SELECT brandbos.seal_audit()$$, '42501', NULL, 'a non-auditor cannot seal');
SELECT throws_ok($$SELECT brandbos.redact_audit(1, 'x')$$, '42501', NULL, 'a non-auditor cannot redact');
RESET ROLE;
SET LOCAL ROLE bb_audit_reader;
SELECT is((SELECT count(*)::int FROM brandbos.verify_audit()), 0, 'an auditor verifies');
SELECT ok((SELECT count(*) > 0 FROM brandbos.audit_log), 'an auditor reads the log');
RESET ROLE;

-- the utility hook (only when preloaded) refuses the DDL that would disable the guard
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
    THEN throws_ok($$ALTER TABLE brandbos.audit_entries DISABLE TRIGGER append_only$$, '42501', NULL,
                   'preloaded: ALTER TABLE ... DISABLE TRIGGER on the log is refused')
    ELSE skip('the utility hook needs shared_preload_libraries (runs on the preloaded cluster)', 1) END;
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
    THEN throws_ok($$DROP TABLE brandbos.audit_blocks$$, '42501', NULL, 'preloaded: DROP TABLE of the blocks is refused')
    ELSE skip('the utility hook needs shared_preload_libraries (runs on the preloaded cluster)', 1) END;
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
    THEN throws_ok($$ALTER TABLE accounts DISABLE TRIGGER ALL$$, '42501', NULL,
                   'preloaded: disabling all triggers of a table is refused')
    ELSE skip('the utility hook needs shared_preload_libraries (runs on the preloaded cluster)', 1) END;

-- the row image maps each type to its jsonb value
CREATE DOMAIN small_count AS int CHECK (VALUE >= 0);
CREATE TYPE pair AS (a int, b text);
CREATE TABLE typed (
    id int PRIMARY KEY, b boolean, i2 smallint, i8 bigint, o oid, n numeric, n_nan numeric,
    n_inf numeric, f8 float8, f8_nan float8, f8_inf float8, f4 real, j json, jb jsonb, t text,
    d small_count, arr int[], p pair, ts timestamptz, by bytea, u uuid, nul text);
SELECT brandbos.enable_audit('typed');
INSERT INTO typed VALUES (1, true, -7, 9007199254740993, 42, 12.50, 'NaN', 'Infinity',
    1.5e300, 'NaN', '-Infinity', 0.25, '{"z": [1, 2], "a": null}', '{"k": {"x": 1}}',
    E'quote " and \\ and é', 3, '{1,2}', '(1,"x y")', '2026-01-02 03:04:05+00', '\x00ff',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', NULL);
SET LOCAL timezone = 'UTC';
SELECT is((SELECT details->'new' FROM brandbos.audit_log WHERE resource_type = 'public.typed' AND action = 'insert'),
          jsonb_build_object('id', 1, 'b', true, 'i2', -7, 'i8', 9007199254740993, 'o', 42,
              'n', 12.50, 'n_nan', 'NaN', 'n_inf', 'Infinity', 'f8', 1.5e300, 'f8_nan', 'NaN',
              'f8_inf', '-Infinity', 'f4', 0.25, 'j', '{"z": [1, 2], "a": null}'::jsonb,
              'jb', '{"k": {"x": 1}}'::jsonb, 't', E'quote " and \\ and é', 'd', 3,
              'arr', '{1,2}', 'p', '(1,"x y")', 'ts', '2026-01-02 03:04:05+00',
              'by', '\x00ff', 'u', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'nul', NULL),
          'the row image: numbers, booleans, NaN/Infinity as strings, json nested, the rest as printed');
SELECT is((SELECT jsonb_typeof(details->'new'->'n') || ' ' || (details->'new'->>'n')
             FROM brandbos.audit_log WHERE resource_type = 'public.typed' AND action = 'insert'),
          'number 12.50', 'a numeric keeps its scale in the row image');
UPDATE typed SET t = 'changed', nul = 'now set' WHERE id = 1;
SELECT is((SELECT details->'changed' FROM brandbos.audit_log WHERE resource_type = 'public.typed' AND action = 'update'),
          '["t", "nul"]'::jsonb, 'an update lists the changed columns in column order');
CREATE TABLE typed_pair (a int, b text, PRIMARY KEY (a, b));
SELECT brandbos.enable_audit('typed_pair');
INSERT INTO typed_pair VALUES (5, 'x "y"');
SELECT is((SELECT resource_id FROM brandbos.audit_log WHERE resource_type = 'public.typed_pair'),
          '[5,"x \"y\""]', 'a composite key is a compact JSON array as resource_id');

-- tampering by a superuser who edits the catalog to disable the guard
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'brandbos.audit_entries'::regclass;
ANALYZE brandbos.audit_entries;     -- rebuilds the cached trigger list
SELECT brandbos.seal_audit();
UPDATE brandbos.audit_entries SET details = '{"ok": false}' WHERE action = 'after';
SELECT results_eq($$SELECT audit_id, problem FROM brandbos.verify_audit()$$,
                  $$SELECT id, 'changed row'::text FROM brandbos.audit_entries WHERE action = 'after'$$,
                  'a changed sealed row is reported');

SELECT * FROM finish();
ROLLBACK;
