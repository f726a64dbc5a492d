-- What verification trusts (issue 11, points 3, 8 and 9), each as the attacker's role:
--  * an ordinary login role cannot write the actions brandbos writes itself (42939),
--    so it cannot forge an audit_pruned (or tamper_attempt, audit_enabled, ...) event;
--  * pruning is trusted only through signed prune records over a prefix of the chain:
--    a prune record a superuser inserts (unsigned, or with a signature replayed from
--    another block) blinds nothing, and rows still present in a "pruned" block are checked;
--  * verify_audit_digest answers false (not an error) for a chain rebuilt from its first
--    block in this database, and keeps 42704 for another database;
--  * a digest passed to verify_audit supplies the trusted key (the root key is loaded
--    here; scenario 25 runs without one).
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(24);

CREATE ROLE bb_trust_app LOGIN;                 -- any application login role
CREATE ROLE bb_trust_auditor LOGIN;
GRANT brandbos_auditor TO bb_trust_auditor;
CREATE FUNCTION pg_temp.sqlstate_of(sql text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE sql;
    RETURN '00000';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$f$;

-- ---- 1. the reserved namespace ------------------------------------------------------------
SET LOCAL ROLE bb_trust_app;
SELECT throws_ok($$SELECT brandbos.log_event('audit_pruned', 'audit_log', NULL, '{"first_block": 1, "last_block": 9}')$$,
                 '42939', 'audit action "audit_pruned" is reserved for brandbos',
                 'a login role cannot write an audit_pruned event: 42939');
SELECT throws_ok($$SELECT brandbos.log_event('tamper_attempt', 'audit_log')$$, '42939', NULL,
                 'a login role cannot write a tamper_attempt event: 42939');
SELECT is((SELECT array_agg(a ORDER BY a) FROM unnest(ARRAY[
              'audit_enabled', 'audit_disabled', 'audit_redacted', 'audit_pruned', 'tamper_attempt',
              'table_dropped', 'insert', 'update', 'delete', 'truncate', 'session_started',
              'session_status', 'gdpr_erased', 'AUDIT_PRUNED', ' audit_pruned ', 'Tamper_Attempt',
              'brandbos_anything', 'audit_anything_new']) a
            WHERE pg_temp.sqlstate_of(format('SELECT brandbos.log_event(%L, %L)', a, 'audit_log')) <> '42939'),
          NULL, 'every reserved action (any case, surrounding blanks) is refused with 42939');
SELECT lives_ok($$SELECT brandbos.log_event('login', 'user', 'u-1')$$, 'an ordinary action is still logged');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM brandbos.audit_entries WHERE action <> 'login'), 0,
          'the refused calls wrote nothing');

-- ---- 2. a genuine prune: signed, and the chain still verifies --------------------------------
SELECT brandbos.log_event('payment', 'invoice', 'old-' || i) FROM generate_series(1, 3) i;
SELECT is(brandbos.seal_audit(), 1::bigint, 'block 1 sealed');
SET LOCAL ROLE bb_trust_auditor;
SELECT is(brandbos.prune_audit(clock_timestamp()), 4::bigint, 'the auditor prunes block 1');
RESET ROLE;
SELECT is((SELECT length(signature) FROM brandbos.audit_prunes WHERE block_id = 1), 64,
          'the prune record is signed');
SELECT is(brandbos.seal_audit(), 2::bigint, 'block 2 seals the audit_pruned event');
SET LOCAL ROLE bb_trust_auditor;
SELECT is((SELECT count(*)::int FROM brandbos.verify_audit()), 0, 'a genuine prune verifies');
RESET ROLE;

-- ---- 3. a forged prune blinds nothing --------------------------------------------------------
SELECT brandbos.log_event('payment', 'invoice', 'inv-' || i, jsonb_build_object('amount', i * 100))
  FROM generate_series(1, 3) i;
SELECT is(brandbos.seal_audit(), 3::bigint, 'block 3 sealed');
-- the login role's forged event is refused ...
SET LOCAL ROLE bb_trust_app;
SELECT is(pg_temp.sqlstate_of($$SELECT brandbos.log_event('audit_pruned', 'audit_log', NULL,
                                 '{"first_block": 2, "last_block": 3}')$$), '42939',
          'the login role cannot claim that blocks 2 and 3 were pruned');
RESET ROLE;
-- ... and a superuser's prune records (no signature; one replayed from block 1) are not trusted
INSERT INTO brandbos.audit_prunes (block_id, pruned_at, pruned_by, signature)
    SELECT 2, now(), current_user, signature FROM brandbos.audit_prunes WHERE block_id = 1;
INSERT INTO brandbos.audit_prunes (block_id, pruned_at, pruned_by) VALUES (3, now(), current_user);
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'brandbos.audit_entries'::regclass;
ANALYZE brandbos.audit_entries;     -- rebuilds the cached trigger list
UPDATE brandbos.audit_entries SET details = '{"amount": 1}' WHERE resource_id = 'inv-2';
SET LOCAL ROLE bb_trust_auditor;
SELECT results_eq($$SELECT block_id, audit_id, problem FROM brandbos.verify_audit()$$,
                  $$SELECT 3::bigint, id, 'changed row'::text FROM brandbos.audit_entries WHERE resource_id = 'inv-2'$$,
                  'a sealed row edited in a block with a forged prune record is reported');
RESET ROLE;
DELETE FROM brandbos.audit_entries WHERE id BETWEEN (SELECT first_id FROM brandbos.audit_blocks WHERE block_id = 2)
                                            AND (SELECT last_id FROM brandbos.audit_blocks WHERE block_id = 3);
SET LOCAL ROLE bb_trust_auditor;
SELECT results_eq($$SELECT block_id, audit_id, problem FROM brandbos.verify_audit() ORDER BY 1$$,
                  $$VALUES (2::bigint, NULL::bigint, 'deleted row'::text), (3, NULL, 'deleted row')$$,
                  'blocks emptied under forged prune records are reported as deleted rows');
SELECT alike((SELECT detail FROM brandbos.verify_audit() WHERE block_id = 2),
            '%signature of its prune record does not verify%',
            'a prune signature replayed from another block does not verify');
SELECT results_eq($$SELECT block_id, problem FROM brandbos.verify_audit(3)$$,
                  $$VALUES (3::bigint, 'deleted row'::text)$$,
                  'from_block does not blind it either');
RESET ROLE;

-- ---- 4. digests: a chain rebuilt from its first block ----------------------------------------
SET LOCAL ROLE bb_trust_auditor;
CREATE TEMP TABLE d AS SELECT brandbos.audit_digest() AS digest;
SELECT ok(brandbos.verify_audit_digest((SELECT digest FROM d)), 'the digest verifies');
SELECT results_eq($$SELECT block_id, problem FROM brandbos.verify_audit(NULL, (SELECT digest FROM d)) ORDER BY 1$$,
                  $$VALUES (2::bigint, 'deleted row'::text), (3, 'deleted row')$$,
                  'verify_audit accepts a digest as the trusted key (the root key is loaded: same findings)');
SELECT throws_ok($$SELECT * FROM brandbos.verify_audit(NULL, '{"format": "nope"}')$$, '22023', NULL,
                 'a malformed digest passed to verify_audit: 22023');
SELECT throws_ok($$SELECT * FROM brandbos.verify_audit(NULL, (SELECT digest - 'public_key' FROM d))$$, '22023', NULL,
                 'a digest without public_key cannot name the trusted key: 22023');
SELECT results_eq($$SELECT block_id, problem FROM brandbos.verify_audit(NULL, (SELECT digest || jsonb_build_object('public_key', repeat('ab', 32)) FROM d))
                     WHERE block_id IS NULL$$,
                  $$VALUES (NULL::bigint, 'bad signature'::text)$$,
                  'a digest whose key is not the root-derived one is reported');
RESET ROLE;
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'brandbos.audit_blocks'::regclass;
ANALYZE brandbos.audit_blocks;
DELETE FROM brandbos.audit_blocks;            -- the whole chain, then sealed again from block 1
SELECT brandbos.log_event('after', 'the rebuild');
SELECT ok(brandbos.seal_audit() IS NOT NULL, 'the superuser seals a new chain from block 1');
SET LOCAL ROLE bb_trust_auditor;
SELECT is(brandbos.verify_audit_digest((SELECT digest FROM d)), false,
          'the old digest returns false for the rebuilt chain (no error)');
SELECT throws_ok($$SELECT brandbos.verify_audit_digest((SELECT digest || '{"database": "elsewhere"}' FROM d))$$,
                 '42704', NULL, 'a digest of another database still raises 42704');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
