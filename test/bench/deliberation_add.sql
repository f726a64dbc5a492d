-- The brandbos side of the add_contribution row: one request per transaction, in the same
-- shape as deliberation_plain.sql.  The request is set up with brandbos.set_context (the
-- same user and tenant the baseline puts in its transaction-local request.jwt.claims), then
-- one brandbos.add_contribution records the contribution: it finds and locks the session
-- under the policies' rule, checks status, persona and budget, fills owner, tenant and round
-- and keeps the session's totals.  The session is one of 50, picked at random.
\set s random(1, 50)
\set tok random(1, 100)
BEGIN;
SELECT brandbos.set_context('bench-u1', 'bench-t1');
SELECT brandbos.add_contribution((SELECT id FROM bench_delib_sessions WHERE n = :s), 'cfo',
       'The unit economics hold if churn stays under three percent a month.',
       'deliberation', 0.0123, :tok, 'bench-model');
COMMIT;
