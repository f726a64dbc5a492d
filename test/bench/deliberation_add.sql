-- one add_contribution per transaction, in a request context (set on both sides of the
-- comparison); the session is one of 50, picked at random
\set s random(1, 50)
\set tok random(1, 100)
BEGIN;
SELECT brandbos.set_context('bench-u1', 'bench-t1');
SELECT brandbos.add_contribution((SELECT id FROM bench_delib_sessions WHERE n = :s), 'cfo',
       'The unit economics hold if churn stays under three percent a month.',
       'deliberation', 0.0123, :tok, 'bench-model');
COMMIT;
