-- Persona and deliberation-session bookkeeping (SPEC section 5): tables, triggers, functions,
-- status machine, exact totals, budget and rounds, audit rows, RLS between users and tenants.
--
-- Part 1 runs as the superuser without a request context (a DBA: every session is
-- visible to the functions) and also writes the tables directly.  Part 2 runs as a
-- non-superuser application role with contexts, for Row Level Security; it never goes
-- back to the superuser (a set context locks the role when brandbos is preloaded).
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(164);

CREATE ROLE bb70_app NOLOGIN;          -- the application's backend role
CREATE ROLE bb70_nobody NOLOGIN;       -- no group role at all
GRANT brandbos_context_admin, brandbos_auditor TO bb70_app;

-- ---------------------------------------------------------------------------------------
-- schema
-- ---------------------------------------------------------------------------------------
SELECT has_table('brandbos', t, 'table brandbos.' || t)
  FROM unnest(ARRAY['users', 'personas', 'sessions', 'contributions', 'votes']) t;
SELECT is((SELECT count(*)::int FROM pg_class c
            WHERE c.relnamespace = 'brandbos'::regnamespace
              AND c.relname IN ('users', 'personas', 'sessions', 'contributions', 'votes')
              AND c.relrowsecurity), 5, 'RLS is enabled on the five tables');
SELECT is((SELECT count(*)::int FROM pg_extension e, unnest(e.extconfig) r
            WHERE e.extname = 'brandbos'
              AND r::regclass::text IN ('brandbos.users', 'brandbos.personas', 'brandbos.sessions',
                                        'brandbos.contributions', 'brandbos.votes',
                                        'brandbos.personas_id_seq', 'brandbos.contributions_id_seq',
                                        'brandbos.votes_id_seq')), 8,
          'tables and serial sequences are registered for pg_dump');
SELECT has_index('brandbos', 'sessions', 'sessions_user_id', ARRAY['user_id'], 'index on sessions(user_id)');
SELECT has_index('brandbos', 'sessions', 'sessions_tenant_status', ARRAY['tenant_id', 'status'],
                 'index on sessions(tenant_id, status)');
SELECT has_index('brandbos', 'contributions', 'contributions_session_id', ARRAY['session_id'],
                 'index on contributions(session_id)');
SELECT has_index('brandbos', 'votes', 'votes_session_id', ARRAY['session_id'], 'index on votes(session_id)');
SELECT ok(has_table_privilege('bb70_nobody', 'brandbos.personas', 'SELECT')
          AND NOT has_table_privilege('bb70_nobody', 'brandbos.personas', 'INSERT,UPDATE,DELETE'),
          'PUBLIC reads personas and writes none');
SELECT ok(NOT has_table_privilege('bb70_nobody', 'brandbos.sessions', 'INSERT,UPDATE,DELETE,TRUNCATE')
          AND NOT has_table_privilege('bb70_nobody', 'brandbos.contributions', 'INSERT,UPDATE,DELETE,TRUNCATE')
          AND NOT has_table_privilege('bb70_nobody', 'brandbos.votes', 'INSERT,UPDATE,DELETE,TRUNCATE'),
          'PUBLIC writes sessions, contributions and votes only through the functions');
SELECT ok(has_function_privilege('bb70_nobody', 'brandbos.add_contribution(text, text, text, text, numeric, integer, text)', 'EXECUTE')
          AND has_function_privilege('bb70_nobody', 'brandbos.start_session(text, jsonb, integer, numeric)', 'EXECUTE'),
          'the session functions are executable by PUBLIC');
SELECT ok(NOT has_function_privilege('bb70_nobody', 'brandbos.upsert_persona(text, text, text, text)', 'EXECUTE')
          AND NOT has_function_privilege('bb70_nobody', 'brandbos.seed_personas(jsonb)', 'EXECUTE')
          AND has_function_privilege('bb70_app', 'brandbos.seed_personas(jsonb)', 'EXECUTE'),
          'personas are written by brandbos_context_admin only');

-- ---------------------------------------------------------------------------------------
-- personas
-- ---------------------------------------------------------------------------------------
SELECT is(brandbos.seed_personas($$[
            {"code": "growth", "name": "Zara", "expertise": "growth", "system_prompt": "You grow."},
            {"code": "cfo", "name": "Cal", "expertise": "money"},
            {"code": "ethics", "name": "Eve", "expertise": null, "system_prompt": "Be good."}]$$), 3,
          'seed_personas returns the number of personas written');
SELECT is((SELECT count(*)::int FROM brandbos.personas), 3, 'three personas');
SELECT is(brandbos.seed_personas('[{"code": "cfo", "name": "Cal Jr"}, {"code": "legal", "name": "Lee"}]'), 2,
          'seeding again upserts');
SELECT is((SELECT name FROM brandbos.personas WHERE code = 'cfo'), 'Cal Jr', 'an existing persona was updated');
SELECT is(brandbos.seed_personas('[{"code": "x", "name": "first"}, {"code": "x", "name": "last"}]'), 1,
          'a code twice in one array is written once');
SELECT is((SELECT name FROM brandbos.personas WHERE code = 'x'), 'last', 'the last object of a code wins');
SELECT throws_ok($$SELECT brandbos.seed_personas('{"code": "a", "name": "b"}')$$, '22023', NULL,
                 'seed_personas of an object: 22023');
SELECT throws_ok($$SELECT brandbos.seed_personas('[1, 2]')$$, '22023', NULL, 'an array of numbers: 22023');
SELECT throws_ok($$SELECT brandbos.seed_personas('[{"code": "a"}]')$$, '22023', NULL, 'an object without name: 22023');
SELECT throws_ok($$SELECT brandbos.seed_personas('[{"code": "", "name": "n"}]')$$, '22023', NULL, 'an empty code: 22023');
SELECT throws_ok($$SELECT brandbos.seed_personas('[{"code": 7, "name": "n"}]')$$, '22023', NULL, 'a numeric code: 22023');
SELECT throws_ok($$SELECT brandbos.seed_personas('[{"code": "a", "name": "n", "expertise": []}]')$$, '22023', NULL,
                 'a non-string expertise: 22023');
SELECT throws_ok($$SELECT brandbos.seed_personas(NULL)$$, '22004', NULL, 'seed_personas(NULL): 22004');
SELECT is(brandbos.seed_personas('[]'), 0, 'an empty array seeds nothing');

SELECT ok(brandbos.upsert_persona('vc', 'Val', 'funding', 'You invest.') > 0, 'upsert_persona returns the id');
SELECT is(brandbos.upsert_persona('vc', 'Val C', 'funding', NULL),
          (SELECT id FROM brandbos.personas WHERE code = 'vc'), 'upserting the same code keeps its id');
SELECT is((SELECT name || '/' || coalesce(system_prompt, '-') FROM brandbos.personas WHERE code = 'vc'), 'Val C/-',
          'and replaces its fields');
SELECT throws_ok($$SELECT brandbos.upsert_persona(NULL, 'n', NULL, NULL)$$, '22004', NULL, 'a null code: 22004');
SELECT throws_ok($$SELECT brandbos.upsert_persona('', 'n', NULL, NULL)$$, '22023', NULL, 'an empty code: 22023');
SELECT throws_ok($$SELECT brandbos.upsert_persona('c', NULL, NULL, NULL)$$, '22004', NULL, 'a null name: 22004');

-- ---------------------------------------------------------------------------------------
-- Part 1: a DBA without a request context
-- ---------------------------------------------------------------------------------------
SELECT throws_ok($$SELECT brandbos.start_session('problem')$$, '55000', NULL,
                 'start_session without a request context: 55000');

INSERT INTO brandbos.sessions (id, user_id, tenant_id, problem_statement, max_rounds, budget)
VALUES ('s1', 'u1', 't1', 'Should we raise?', 2, 10),
       ('s2', 'u1', 't1', 'Pricing', 10, NULL),
       ('s3', 'u1', 't1', 'Hiring', 10, NULL);
SELECT is((SELECT status || '/' || phase || '/' || round_number || '/' || total_cost || '/' || total_tokens
             FROM brandbos.sessions WHERE id = 's1'),
          'active/problem_decomposition/1/0.0000/0', 'a new session: active, problem_decomposition, round 1, zero totals');

-- add_contribution and exact totals
SELECT ok(brandbos.add_contribution('s1', 'growth', 'grow', 'initial_round', 1.25, 100, 'm1') > 0,
          'add_contribution returns the id');
SELECT lives_ok($$SELECT brandbos.add_contribution('s1', 'cfo', 'save', 'initial_round', 0.5001, 250, 'm1')$$,
                'a second contribution');
SELECT lives_ok($$SELECT brandbos.add_contribution('s1', 'growth', 'more', 'initial_round', 0.0003, 7, NULL)$$,
                'a third (model may be null)');
SELECT is((SELECT total_cost FROM brandbos.sessions WHERE id = 's1'), 1.7504::numeric(10,4), 'total_cost is exact');
SELECT is((SELECT total_tokens FROM brandbos.sessions WHERE id = 's1'), 357::bigint, 'total_tokens is exact');
SELECT is((SELECT string_agg(DISTINCT user_id || '/' || tenant_id || '/' || round_number, ',')
             FROM brandbos.contributions WHERE session_id = 's1'), 'u1/t1/1',
          'owner, tenant and round come from the session');

SELECT throws_ok($$SELECT brandbos.add_contribution('s1', 'cfo', 'x', 'initial_round', -0.01, 1, 'm')$$, '22023', NULL,
                 'a negative cost: 22023');
SELECT throws_ok($$SELECT brandbos.add_contribution('s1', 'cfo', 'x', 'initial_round', 0, -1, 'm')$$, '22023', NULL,
                 'negative tokens: 22023');
SELECT throws_ok($$SELECT brandbos.add_contribution('s1', 'cfo', 'x', 'brainstorm', 0, 1, 'm')$$, '22023', NULL,
                 'an unknown phase: 22023');
SELECT throws_ok($$SELECT brandbos.add_contribution('nope', 'cfo', 'x', 'initial_round', 0, 1, 'm')$$, '42704', NULL,
                 'an unknown session: 42704');
SELECT throws_ok($$SELECT brandbos.add_contribution('s1', 'ghost', 'x', 'initial_round', 0, 1, 'm')$$, '42704', NULL,
                 'an unknown persona: 42704');
SELECT throws_ok($$SELECT brandbos.add_contribution('s1', 'cfo', NULL, 'initial_round', 0, 1, 'm')$$, '22004', NULL,
                 'null content: 22004');
SELECT throws_ok($$SELECT brandbos.add_contribution('s1', 'cfo', 'x', 'initial_round', NULL, 1, 'm')$$, '22004', NULL,
                 'null cost: 22004');
SELECT throws_ok($$SELECT brandbos.add_contribution('s1', 'cfo', 'x', 'initial_round', 8.2497, 1, 'm')$$, '23514', NULL,
                 'a contribution over the budget: 23514');
SELECT lives_ok($$SELECT brandbos.add_contribution('s1', 'cfo', 'x', 'initial_round', 8.2496, 1, 'm')$$,
                'a contribution that reaches the budget exactly');
SELECT is((SELECT total_cost::text FROM brandbos.sessions WHERE id = 's1'), '10.0000', 'the budget is spent, no more');
SELECT throws_ok($$SELECT brandbos.add_contribution('s1', 'cfo', 'x', 'initial_round', 0.0001, 1, 'm')$$, '23514', NULL,
                 'one more ten-thousandth: 23514');

-- direct INSERT / UPDATE / DELETE keep the totals exact
SELECT lives_ok($$INSERT INTO brandbos.contributions (session_id, persona_code, content, phase, cost, tokens)
                  VALUES ('s2', 'growth', 'a', 'deliberation', 0.1, 10), ('s2', 'cfo', 'b', 'deliberation', 0.2, 20),
                         ('s2', 'ethics', 'c', 'deliberation', 0.3, 30)$$,
                'a direct multi-row INSERT');
SELECT is((SELECT total_cost || '/' || total_tokens FROM brandbos.sessions WHERE id = 's2'), '0.6000/60',
          'totals after a direct INSERT');
SELECT is((SELECT count(*)::int FROM brandbos.contributions WHERE session_id = 's2' AND user_id = 'u1'
             AND tenant_id = 't1' AND round_number = 1), 3, 'the trigger filled owner, tenant and round');
SELECT lives_ok($$INSERT INTO brandbos.contributions (session_id, user_id, tenant_id, persona_code, content, round_number,
                                                      phase, cost, tokens)
                  VALUES ('s2', 'intruder', 't9', 'cfo', 'forged', 4, 'deliberation', 0, 0)$$,
                'a direct INSERT naming another owner');
SELECT is((SELECT user_id || '/' || tenant_id || '/' || round_number FROM brandbos.contributions WHERE content = 'forged'),
          'u1/t1/4', 'owner and tenant are the session''s whatever was given; an explicit round is kept');
SELECT lives_ok($$UPDATE brandbos.contributions SET cost = 1.5, tokens = 100 WHERE session_id = 's2' AND content = 'a'$$,
                'a direct UPDATE of cost and tokens');
SELECT is((SELECT total_cost || '/' || total_tokens FROM brandbos.sessions WHERE id = 's2'), '2.0000/150',
          'totals after a direct UPDATE');
SELECT lives_ok($$DELETE FROM brandbos.contributions WHERE session_id = 's2' AND content IN ('b', 'forged')$$,
                'a direct DELETE');
SELECT is((SELECT total_cost || '/' || total_tokens FROM brandbos.sessions WHERE id = 's2'), '1.8000/130',
          'totals after a direct DELETE');
SELECT is((SELECT total_cost || '/' || total_tokens FROM brandbos.sessions WHERE id = 's2'),
          (SELECT sum(cost)::numeric(10,4) || '/' || sum(tokens) FROM brandbos.contributions WHERE session_id = 's2'),
          'totals equal the sum of the rows');
SELECT throws_ok($$UPDATE brandbos.contributions SET session_id = 's3' WHERE content = 'a'$$, '0A000', NULL,
                 'moving a contribution to another session: 0A000');
SELECT throws_ok($$INSERT INTO brandbos.contributions (session_id, persona_code, content, phase, cost, tokens)
                   VALUES ('s2', 'cfo', 'x', 'deliberation', -1, 0)$$, '23514', NULL,
                 'a direct INSERT with a negative cost: 23514');
SELECT throws_ok($$INSERT INTO brandbos.contributions (session_id, persona_code, content, phase, cost, tokens)
                   VALUES ('s2', 'cfo', 'x', 'nap', 0, 0)$$, '23514', NULL,
                 'a direct INSERT with an unknown phase: 23514');
SELECT throws_ok($$INSERT INTO brandbos.contributions (session_id, persona_code, content, phase, cost, tokens)
                   VALUES ('nope', 'cfo', 'x', 'deliberation', 0, 0)$$, '42704', NULL,
                 'a direct INSERT into an unknown session: 42704');
SELECT throws_ok($$UPDATE brandbos.contributions SET cost = 100 WHERE session_id = 's1' AND content = 'grow'$$,
                 '23514', NULL, 'a direct UPDATE that passes the budget: 23514');

-- rounds and phases
SELECT is(brandbos.next_round('s1'), 2, 'next_round returns the new round');
SELECT throws_ok($$SELECT brandbos.next_round('s1')$$, '23514', NULL, 'a round past max_rounds: 23514');
SELECT throws_ok($$SELECT brandbos.next_round('nope')$$, '42704', NULL, 'next_round of an unknown session: 42704');
SELECT lives_ok($$SELECT brandbos.add_contribution('s2', 'cfo', 'r', 'deliberation', 0, 0, 'm')$$, 'a contribution in s2');
SELECT is(brandbos.next_round('s2'), 2, 'next round of s2');
SELECT lives_ok($$SELECT brandbos.add_contribution('s2', 'cfo', 'r2', 'deliberation', 0, 0, 'm')$$, 'a contribution in round 2');
SELECT is((SELECT round_number FROM brandbos.contributions WHERE content = 'r2'), 2, 'it is in the session''s current round');
SELECT lives_ok($$SELECT brandbos.set_phase('s2', 'voting')$$, 'set_phase');
SELECT is((SELECT phase FROM brandbos.sessions WHERE id = 's2'), 'voting', 'the phase changed');
SELECT throws_ok($$SELECT brandbos.set_phase('s2', 'party')$$, '22023', NULL, 'an unknown phase: 22023');
SELECT throws_ok($$SELECT brandbos.set_phase('nope', 'voting')$$, '42704', NULL, 'set_phase of an unknown session: 42704');

-- votes
SELECT ok(brandbos.cast_vote('s2', 'growth', 'raise', 'momentum', 0.9) > 0, 'cast_vote returns the id');
SELECT lives_ok($$SELECT brandbos.cast_vote('s2', 'cfo', 'wait', 'runway', 0.6)$$, 'a second persona votes');
SELECT lives_ok($$SELECT brandbos.cast_vote('s2', 'ethics', 'raise', 'fine')$$, 'confidence may be omitted');
SELECT is(brandbos.cast_vote('s2', 'cfo', 'raise', 'convinced', 1),
          (SELECT id FROM brandbos.votes WHERE session_id = 's2' AND persona_code = 'cfo'),
          'a second vote of the same persona keeps its row');
SELECT is((SELECT count(*)::int || '/' || string_agg(vote_choice || ':' || coalesce(confidence::text, '-'), ',' ORDER BY persona_code)
             FROM brandbos.votes WHERE session_id = 's2'), '3/raise:1,raise:-,raise:0.9',
          'and replaces the first');
SELECT throws_ok($$SELECT brandbos.cast_vote('s2', 'vc', 'x', 'r', 1.01)$$, '22023', NULL, 'confidence above 1: 22023');
SELECT throws_ok($$SELECT brandbos.cast_vote('s2', 'vc', 'x', 'r', -0.01)$$, '22023', NULL, 'negative confidence: 22023');
SELECT throws_ok($$SELECT brandbos.cast_vote('s2', 'vc', 'x', 'r', 'NaN')$$, '22023', NULL, 'NaN confidence: 22023');
SELECT throws_ok($$SELECT brandbos.cast_vote('s2', 'ghost', 'x', 'r')$$, '42704', NULL, 'a vote of an unknown persona: 42704');
SELECT throws_ok($$SELECT brandbos.cast_vote('nope', 'vc', 'x', 'r')$$, '42704', NULL, 'a vote in an unknown session: 42704');
SELECT throws_ok($$SELECT brandbos.cast_vote('s2', 'vc', NULL, 'r')$$, '22004', NULL, 'a null vote_choice: 22004');
SELECT lives_ok($$SELECT brandbos.cast_vote('s2', 'vc', 'wait', 'r', 0.2)$$, 'a dissenting vote');
SELECT is((SELECT user_id || '/' || tenant_id FROM brandbos.votes WHERE persona_code = 'vc'), 'u1/t1',
          'votes get owner and tenant from the session');

-- summary
SELECT is(brandbos.session_summary('s2') - 'session_id',
          '{"status": "active", "phase": "voting", "round_number": 2, "max_rounds": 10, "budget": null,
            "total_cost": 1.8000, "total_tokens": 130, "contributions": 4,
            "personas": {"cfo": {"cost": 0.0000, "tokens": 0, "contributions": 2},
                         "ethics": {"cost": 0.3000, "tokens": 30, "contributions": 1},
                         "growth": {"cost": 1.5000, "tokens": 100, "contributions": 1}},
            "rounds": {"1": 3, "2": 1},
            "votes": {"total": 4, "tally": {"raise": 3, "wait": 1}, "winning_choice": "raise",
                      "tied": false, "consensus": 0.7500}}'::jsonb,
          'session_summary: totals, per persona, per round, the tally');
SELECT is(brandbos.session_summary('s3') -> 'votes',
          '{"total": 0, "tally": {}, "winning_choice": null, "tied": false, "consensus": null}'::jsonb,
          'a summary without votes');
SELECT throws_ok($$SELECT brandbos.session_summary('nope')$$, '42704', NULL, 'the summary of an unknown session: 42704');

-- the status machine, through the functions
SELECT lives_ok($$SELECT brandbos.pause_session('s2')$$, 'pause_session');
SELECT is((SELECT status FROM brandbos.sessions WHERE id = 's2'), 'paused', 'paused');
SELECT throws_ok($$SELECT brandbos.add_contribution('s2', 'cfo', 'x', 'voting', 0, 0, 'm')$$, '55000', NULL,
                 'a contribution to a paused session: 55000');
SELECT throws_ok($$INSERT INTO brandbos.contributions (session_id, persona_code, content, phase, cost, tokens)
                   VALUES ('s2', 'cfo', 'x', 'voting', 0, 0)$$, '55000', NULL,
                 'a direct INSERT into a paused session: 55000');
SELECT throws_ok($$SELECT brandbos.cast_vote('s2', 'cfo', 'x', 'r')$$, '55000', NULL, 'a vote in a paused session: 55000');
SELECT throws_ok($$SELECT brandbos.next_round('s2')$$, '55000', NULL, 'next_round of a paused session: 55000');
SELECT throws_ok($$SELECT brandbos.pause_session('s2')$$, '55000', NULL, 'pausing a paused session: 55000');
SELECT lives_ok($$SELECT brandbos.resume_session('s2')$$, 'resume_session');
SELECT throws_ok($$SELECT brandbos.resume_session('s2')$$, '55000', NULL, 'resuming an active session: 55000');
SELECT lives_ok($$SELECT brandbos.complete_session('s2')$$, 'complete_session');
SELECT is((SELECT status || '/' || (completed_at IS NOT NULL) || '/' || (killed_at IS NULL) FROM brandbos.sessions WHERE id = 's2'),
          'completed/true/true', 'completed, with completed_at');
SELECT throws_ok($$SELECT brandbos.resume_session('s2')$$, '55000', NULL, 'resuming a completed session: 55000');
SELECT throws_ok($$SELECT brandbos.kill_session('s2', 'late')$$, '55000', NULL, 'killing a completed session: 55000');
SELECT throws_ok($$UPDATE brandbos.sessions SET status = 'active' WHERE id = 's2'$$, '55000', NULL,
                 'a plain UPDATE out of a terminal state: 55000');
SELECT lives_ok($$DELETE FROM brandbos.contributions WHERE content = 'r2'$$,
                'deleting a contribution of a completed session still works');
SELECT is((SELECT status || '/' || total_tokens FROM brandbos.sessions WHERE id = 's2'), 'completed/130',
          'and keeps the status');
SELECT lives_ok($$SELECT brandbos.fail_session('s3', 'model outage')$$, 'fail_session');
SELECT is((SELECT status || '/' || kill_reason || '/' || (completed_at IS NOT NULL) FROM brandbos.sessions WHERE id = 's3'),
          'failed/model outage/true', 'failed, with the reason and completed_at');
SELECT throws_ok($$UPDATE brandbos.sessions SET status = 'bogus' WHERE id = 's1'$$, '22023', NULL,
                 'an unknown status: 22023');
SELECT lives_ok($$UPDATE brandbos.sessions SET status = 'killed', killed_by = 'someone else', kill_reason = 'runaway'
                  WHERE id = 's1'$$, 'a plain UPDATE to killed');
SELECT is((SELECT killed_by || '/' || kill_reason || '/' || (killed_at IS NOT NULL) FROM brandbos.sessions WHERE id = 's1'),
          'admin/runaway/true', 'killed_by is ''admin'' without a context, whatever the UPDATE said');
SELECT is((SELECT string_agg(details ->> 'from' || '>' || (details ->> 'to') || ':' || coalesce(details ->> 'reason', '-'),
                             ',' ORDER BY id)
             FROM brandbos.audit_log WHERE action = 'session_status'),
          'active>paused:-,paused>active:-,active>completed:-,active>failed:model outage,active>killed:runaway',
          'every status change is in the audit log with its reason');
SELECT is((SELECT resource_type || '/' || resource_id || '/' || (details ->> 'killed_by') FROM brandbos.audit_log
            WHERE action = 'session_status' AND details ->> 'to' = 'killed'), 'session/s1/admin',
          'the kill names the session and the actor');

-- ---------------------------------------------------------------------------------------
-- Part 2: an application role with request contexts (RLS; never back to the superuser)
-- ---------------------------------------------------------------------------------------
INSERT INTO brandbos.sessions (id, user_id, tenant_id, problem_statement) VALUES ('other-tenant', 'u3', 't2', 'elsewhere');
INSERT INTO brandbos.users (id, tenant_id, email, auth_provider) VALUES ('u1', 't1', 'u1@example.com', 'github');
SET LOCAL ROLE bb70_nobody;
SELECT throws_ok($$SELECT brandbos.gdpr_export('u1')$$, '42501', NULL,
                 'gdpr_export of another user without brandbos_context_admin: 42501');
SELECT throws_ok($$SELECT brandbos.gdpr_erase('u1')$$, '42501', NULL,
                 'gdpr_erase of another user without brandbos_context_admin: 42501');
SELECT throws_ok($$SELECT brandbos.upsert_persona('p', 'n', NULL, NULL)$$, '42501', NULL,
                 'upsert_persona without brandbos_context_admin: 42501');
RESET ROLE;
SET LOCAL ROLE bb70_app;
SELECT throws_ok($$SELECT brandbos.add_contribution('s2', 'cfo', 'x', 'voting', 0, 0, 'm')$$, '42704', NULL,
                 'a non-superuser without a context sees no session: 42704');
SELECT brandbos.set_context('u1', 't1');
SELECT lives_ok($$SELECT brandbos.start_session('Expand to Europe?', '{"market": "EU"}', 3, 5)$$,
                'start_session with a context');
SELECT is((SELECT user_id || '/' || tenant_id || '/' || max_rounds || '/' || budget || '/' || (problem_context ->> 'market')
             FROM brandbos.sessions WHERE problem_statement = 'Expand to Europe?'),
          'u1/t1/3/5.0000/EU', 'owner and tenant come from the context');
SELECT throws_ok($$SELECT brandbos.start_session('p', NULL, 0)$$, '22023', NULL, 'max_rounds 0: 22023');
SELECT throws_ok($$SELECT brandbos.start_session('p', NULL, 3, -1)$$, '22023', NULL, 'a negative budget: 22023');
SELECT throws_ok($$SELECT brandbos.start_session(NULL)$$, '22004', NULL, 'a null problem statement: 22004');
SELECT throws_ok($$SELECT brandbos.start_session('')$$, '22023', NULL, 'an empty problem statement: 22023');
SELECT is((SELECT count(*)::int FROM brandbos.sessions), 4, 'u1 sees its four sessions');
SELECT is((SELECT count(*)::int FROM brandbos.contributions), 7, 'and their contributions');

-- u2 of the same tenant
SELECT brandbos.set_context('u2', 't1');
CREATE TEMP TABLE t70_ids ON COMMIT DROP AS SELECT brandbos.start_session('u2 problem') AS id;
SELECT lives_ok($$SELECT brandbos.add_contribution((SELECT id FROM t70_ids), 'cfo', 'mine', 'initial_round', 0.5, 5, 'm')$$,
                'u2 contributes to its own session');
SELECT results_eq($$SELECT user_id FROM brandbos.sessions$$, ARRAY['u2'], 'u2 sees only its own session');
SELECT results_eq($$SELECT content FROM brandbos.contributions$$, ARRAY['mine'], 'and only its own contributions');
SELECT is((SELECT count(*)::int FROM brandbos.votes), 0, 'and no votes of u1');
SELECT throws_ok($$SELECT brandbos.add_contribution('s2', 'cfo', 'x', 'voting', 0, 0, 'm')$$, '42704', NULL,
                 'u1''s session id looks unknown to add_contribution');
SELECT throws_ok($$SELECT brandbos.kill_session('s2', 'x')$$, '42704', NULL, 'and to kill_session');
SELECT throws_ok($$SELECT brandbos.session_summary('s2')$$, '42704', NULL, 'and to session_summary');
SELECT throws_ok($$SELECT brandbos.cast_vote('s2', 'cfo', 'x', 'r')$$, '42704', NULL, 'and to cast_vote');
SELECT throws_ok($$INSERT INTO brandbos.contributions (session_id, persona_code, content, phase, cost, tokens)
                   VALUES ((SELECT id FROM t70_ids), 'cfo', 'x', 'voting', 0, 0)$$, '42501', NULL,
                 'no direct INSERT for the application role: 42501');
SELECT throws_ok($$UPDATE brandbos.sessions SET status = 'completed'$$, '42501', NULL,
                 'no direct UPDATE for the application role: 42501');
SELECT lives_ok($$SELECT brandbos.kill_session((SELECT id FROM t70_ids), 'changed my mind')$$, 'u2 kills its session');
SELECT is((SELECT status || '/' || killed_by || '/' || total_cost FROM brandbos.sessions), 'killed/u2/0.5000',
          'killed_by is the context''s user');

-- an admin of tenant t1 sees the tenant, not t2
SELECT brandbos.set_context('boss', 't1', 'admin');
SELECT is((SELECT count(*)::int FROM brandbos.sessions), 5, 'an admin sees every session of its tenant');
SELECT is((SELECT count(*)::int FROM brandbos.sessions WHERE tenant_id = 't2'), 0, 'but none of another tenant');
SELECT is((brandbos.session_summary('s2') ->> 'total_tokens')::int, 130, 'an admin may summarise a session of its tenant');
SELECT throws_ok($$SELECT brandbos.session_summary('other-tenant')$$, '42704', NULL,
                 'a session of another tenant looks unknown to an admin');
-- a user of t2
SELECT brandbos.set_context('u3', 't2');
SELECT results_eq($$SELECT id FROM brandbos.sessions$$, ARRAY['other-tenant'], 'a user of t2 sees only its session');
SELECT is((SELECT count(*)::int FROM brandbos.personas), 6, 'personas are readable by everyone');

-- GDPR export and erasure of u1
SELECT brandbos.set_context('u1', 't1');
CREATE TEMP TABLE t70_export ON COMMIT DROP AS SELECT brandbos.gdpr_export('u1') AS doc;
SELECT is((SELECT jsonb_array_length(doc -> 'sessions') FROM t70_export), 4, 'gdpr_export lists the user''s sessions');
SELECT is((SELECT doc #>> '{user,email}' FROM t70_export), 'u1@example.com', 'and the users row');
SELECT is((SELECT sum(jsonb_array_length(x -> 'contributions'))::int || '/' || sum(jsonb_array_length(x -> 'votes'))
             FROM t70_export, jsonb_array_elements(doc -> 'sessions') x), '7/4', 'with their contributions and votes');
SELECT is((SELECT jsonb_array_length(doc -> 'audit') FROM t70_export), 6,
          'and the audit rows about the user or their sessions');
CREATE TEMP TABLE t70_leaves ON COMMIT DROP AS
	SELECT id, leaf_hash, payload_hash FROM brandbos.audit_entries
	 WHERE resource_type = 'session' AND details IS NOT NULL;
SELECT is(brandbos.gdpr_erase('u1'),
          '{"sessions": 4, "contributions": 7, "votes": 4, "users": 1, "audit_rows_redacted": 5}'::jsonb,
          'gdpr_erase says what it removed');
SELECT is((SELECT count(*)::int FROM brandbos.sessions), 0, 'the user''s sessions are gone');
SELECT is(brandbos.gdpr_export('u1') - 'exported_at' - 'audit',
          '{"user_id": "u1", "user": null, "sessions": []}'::jsonb,
          'a new export finds no user and no sessions');
SELECT is((SELECT count(*)::int FROM brandbos.audit_entries e JOIN t70_leaves l USING (id)
            WHERE e.details IS NULL AND e.leaf_hash = l.leaf_hash AND e.payload_hash = l.payload_hash), 5,
          'the audit payloads are cleared, their hashes kept');
SELECT is((SELECT count(*)::int FROM brandbos.audit_redactions r JOIN t70_leaves l ON l.id = r.audit_id
            WHERE r.reason = 'gdpr erasure'), 5, 'each redaction is recorded');
SELECT is((SELECT count(*)::int FROM brandbos.audit_entries e JOIN t70_leaves l ON e.resource_id = l.id::text
            WHERE e.action = 'audit_redacted'), 5, 'with an audit_redacted event each');
SELECT is((SELECT details ->> 'audit_rows_redacted' FROM brandbos.audit_entries
            WHERE action = 'gdpr_erased' AND resource_type = 'user' AND resource_id = 'u1'), '5',
          'the erasure itself is logged');
SELECT is((SELECT count(*)::int FROM brandbos.verify_audit()), 0, 'the audit log still verifies');
SELECT brandbos.set_context('boss', 't1', 'admin');
SELECT results_eq($$SELECT user_id FROM brandbos.sessions$$, ARRAY['u2'], 'other users keep their sessions');

-- row_security = off means "rows being restored" to the triggers; a caller cannot use it to
-- slip past the bookkeeping of brandbos's own functions
SELECT brandbos.set_context('rs-user', 't1');
SELECT brandbos.start_session('row security probe', NULL, 3, 0.01) AS rs_sid \gset
SET LOCAL row_security = off;
SELECT throws_ok(format($$SELECT brandbos.add_contribution(%L, 'cfo', 'x', 'initial_round', 0.5, 1, 'm')$$, :'rs_sid'),
                 '23514', NULL, 'with row_security off, add_contribution still enforces the budget');
SET LOCAL row_security = on;
SELECT is((SELECT total_cost FROM brandbos.sessions WHERE id = :'rs_sid'), 0.0000::numeric(10,4),
          'and the totals are untouched');

SELECT * FROM finish();
ROLLBACK;
