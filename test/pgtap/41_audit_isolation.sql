-- seal_audit needs READ COMMITTED: an older snapshot could miss committed rows.
BEGIN ISOLATION LEVEL REPEATABLE READ;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(2);
SELECT brandbos.log_event('a', 'b');
SELECT throws_ok($$SELECT brandbos.seal_audit()$$, '25001', NULL, 'seal_audit refuses REPEATABLE READ: 25001');
SELECT is((SELECT count(*)::int FROM brandbos.audit_blocks), 0, 'and sealed nothing');
SELECT * FROM finish();
ROLLBACK;
