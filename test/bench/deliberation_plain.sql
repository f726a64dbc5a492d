-- the same values as deliberation_add.sql, one plain INSERT per transaction into :tbl, in
-- the same request shape (the request context is set first, as every request of an
-- application on brandbos does; owner, tenant and round written literally: brandbos's
-- trigger takes them from the session)
\set s random(1, 50)
\set tok random(1, 100)
BEGIN;
SELECT brandbos.set_context('bench-u1', 'bench-t1');
INSERT INTO :tbl (session_id, user_id, tenant_id, persona_code, content, round_number, phase,
                  cost, tokens, model)
VALUES ((SELECT id FROM bench_delib_sessions WHERE n = :s), 'bench-u1', 'bench-t1', 'cfo',
        'The unit economics hold if churn stays under three percent a month.',
        1, 'deliberation', 0.0123, :tok, 'bench-model');
COMMIT;
