-- The baseline of the add_contribution row: the request an application without brandbos
-- makes to record the same contribution.  Same request shape as deliberation_add.sql: one
-- transaction per request, which first sets up the request (the caller's identity as a
-- transaction-local setting, as PostgREST does with request.jwt.claims for its policies and
-- as an application does for its own, holding the same user and tenant that
-- brandbos.set_context sets on the other side), then writes the row: one plain INSERT of the
-- same values into :tbl (bench_contrib_plain, see deliberation_setup.sql).  Owner, tenant and
-- round are written literally: brandbos's trigger takes them from the session.  The set-up
-- is the application's own, not brandbos.set_context: calling a brandbos function would
-- charge part of brandbos's cost to the baseline.
\set s random(1, 50)
\set tok random(1, 100)
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "bench-u1", "tenant_id": "bench-t1", "role": "authenticated"}', true);
INSERT INTO :tbl (session_id, user_id, tenant_id, persona_code, content, round_number, phase,
                  cost, tokens, model)
VALUES ((SELECT id FROM bench_delib_sessions WHERE n = :s), 'bench-u1', 'bench-t1', 'cfo',
        'The unit economics hold if churn stays under three percent a month.',
        1, 'deliberation', 0.0123, :tok, 'bench-model');
COMMIT;
