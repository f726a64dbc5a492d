-- add_contribution hands the session row it has locked to the contribution_guard of its own
-- INSERT (deliberation_bookkeeping.c, LockedSession), so that the guard does not look the
-- row up a second time.  The guard must fall back to its own lookup whenever the row it
-- was handed may be stale or is not the row's session: here triggers that fire before it
-- (named to sort before contribution_guard) change the session or the row's session_id.
-- Runs as the superuser without a request context (a DBA reaches every session).
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(37);

SELECT brandbos.seed_personas('[{"code": "cfo", "name": "Cal", "expertise": "money"}]');
INSERT INTO brandbos.sessions (id, user_id, tenant_id, problem_statement, max_rounds, budget, round_number)
VALUES ('h1', 'u1', 't1', 'Raise?', 10, 10, 3),
       ('h2', 'u2', 't2', 'Hire?', 10, NULL, 5),
       ('h3', 'u1', 't1', 'Paused', 10, NULL, 1);
UPDATE brandbos.sessions SET status = 'paused' WHERE id = 'h3';

-- the handed row: owner, tenant, round and totals as the guard would read them
SELECT lives_ok($$SELECT brandbos.add_contribution('h1', 'cfo', 'a', 'deliberation', 1.5, 10, 'm')$$,
                'add_contribution with the handed-over row');
SELECT is((SELECT user_id || '/' || tenant_id || '/' || round_number FROM brandbos.contributions
            WHERE session_id = 'h1'), 'u1/t1/3', 'owner, tenant and round come from the session');
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'h1'),
          '1.5000/10', 'the totals count it once');
SELECT throws_ok($$SELECT brandbos.add_contribution('h1', 'cfo', 'a', 'deliberation', 8.5001, 1, 'm')$$,
                 '23514', NULL, 'the budget is checked against the handed-over total: 23514');
SELECT lives_ok($$SELECT brandbos.add_contribution('h1', 'cfo', 'a', 'deliberation', 8.5, 1, 'm')$$,
                'a contribution that reaches the budget exactly');
UPDATE brandbos.sessions SET budget = 100 WHERE id = 'h1';

-- errors keep their order: unknown session, then inactive, then unknown persona
SELECT throws_ok($$SELECT brandbos.add_contribution('nope', 'ghost', 'a', 'deliberation', 0, 1, 'm')$$,
                 '42704', 'session "nope" does not exist', 'an unknown session first: 42704');
SELECT throws_ok($$SELECT brandbos.add_contribution('h3', 'ghost', 'a', 'deliberation', 0, 1, 'm')$$,
                 '55000', 'session "h3" is paused', 'then a session that is not active: 55000');
SELECT throws_ok($$SELECT brandbos.add_contribution('h1', 'ghost', 'a', 'deliberation', 0, 1, 'm')$$,
                 '42704', 'persona "ghost" does not exist', 'then an unknown persona: 42704');

-- a trigger before the guard lowers the budget: the guard reads the session itself
CREATE FUNCTION pg_temp.shrink_budget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE brandbos.sessions SET budget = 0 WHERE id = NEW.session_id;
	RETURN NEW;
END $$;
CREATE TRIGGER a_shrink_budget BEFORE INSERT ON brandbos.contributions
	FOR EACH ROW EXECUTE FUNCTION pg_temp.shrink_budget();
SELECT throws_ok($$SELECT brandbos.add_contribution('h1', 'cfo', 'a', 'deliberation', 0.0001, 1, 'm')$$,
                 '23514', NULL, 'a budget lowered before the guard runs is enforced: 23514');
DROP TRIGGER a_shrink_budget ON brandbos.contributions;

-- a trigger before the guard pauses the session: refused
CREATE FUNCTION pg_temp.pause_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE brandbos.sessions SET status = 'paused' WHERE id = NEW.session_id;
	RETURN NEW;
END $$;
CREATE TRIGGER a_pause_it BEFORE INSERT ON brandbos.contributions
	FOR EACH ROW EXECUTE FUNCTION pg_temp.pause_it();
SELECT throws_ok($$SELECT brandbos.add_contribution('h1', 'cfo', 'a', 'deliberation', 0, 1, 'm')$$,
                 '55000', NULL, 'a session paused before the guard runs takes no contribution: 55000');
DROP TRIGGER a_pause_it ON brandbos.contributions;

-- a trigger before the guard moves the row to another session: that session's owner and totals
CREATE FUNCTION pg_temp.move_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.session_id := 'h2';
	RETURN NEW;
END $$;
CREATE TRIGGER a_move_it BEFORE INSERT ON brandbos.contributions
	FOR EACH ROW EXECUTE FUNCTION pg_temp.move_it();
SELECT lives_ok($$SELECT brandbos.add_contribution('h1', 'cfo', 'moved', 'deliberation', 2, 20, 'm')$$,
                'a row moved to another session before the guard runs');
DROP TRIGGER a_move_it ON brandbos.contributions;
SELECT is((SELECT user_id || '/' || tenant_id || '/' || round_number FROM brandbos.contributions
            WHERE content = 'moved'), 'u2/t2/5', 'it carries the other session''s owner, tenant and round');
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'h2'),
          '2.0000/20', 'and counts in that session''s totals');
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'h1'),
          '10.0000/11', 'not in the first one''s');

-- add_contribution adds the amount to the totals ahead of its INSERT; contribution_totals
-- settles it against the row actually written
CREATE FUNCTION pg_temp.double_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.cost := NEW.cost * 2;
	NEW.tokens := NEW.tokens * 2;
	RETURN NEW;
END $$;
CREATE TRIGGER a_double_it BEFORE INSERT ON brandbos.contributions
	FOR EACH ROW EXECUTE FUNCTION pg_temp.double_it();
UPDATE brandbos.sessions SET budget = NULL WHERE id = 'h2';
SELECT lives_ok($$SELECT brandbos.add_contribution('h2', 'cfo', 'doubled', 'deliberation', 1.25, 3, 'm')$$,
                'a row whose cost a trigger changed before the guard');
DROP TRIGGER a_double_it ON brandbos.contributions;
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'h2'),
          '4.5000/26', 'the totals count what the row carries (2.5 and 6 more), not the arguments');

CREATE FUNCTION pg_temp.skip_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RETURN NULL;
END $$;
CREATE TRIGGER a_skip_it BEFORE INSERT ON brandbos.contributions
	FOR EACH ROW EXECUTE FUNCTION pg_temp.skip_it();
SELECT throws_ok($$SELECT brandbos.add_contribution('h2', 'cfo', 'skipped', 'deliberation', 1, 1, 'm')$$,
                 '27000', NULL, 'a row a trigger skips fails the call: 27000');
DROP TRIGGER a_skip_it ON brandbos.contributions;
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'h2'),
          '4.5000/26', 'and leaves the totals as they were');

ALTER TABLE brandbos.contributions DISABLE TRIGGER contribution_totals;
SELECT lives_ok($$SELECT brandbos.add_contribution('h2', 'cfo', 'uncounted', 'deliberation', 1, 1, 'm')$$,
                'with contribution_totals disabled');
ALTER TABLE brandbos.contributions ENABLE TRIGGER contribution_totals;
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'h2'),
          '4.5000/26', 'the amount added ahead is taken back: the totals do not count the row, as before');

-- a failed call leaves nothing behind for a later direct INSERT of the same transaction
SAVEPOINT before_fail;
SELECT throws_ok($$SELECT brandbos.add_contribution('h1', 'cfo', 'a', 'deliberation', 1000, 1, 'm')$$,
                 '23514', NULL, 'a call that fails on the budget');
ROLLBACK TO before_fail;
UPDATE brandbos.sessions SET round_number = 7, user_id = 'u9' WHERE id = 'h1';
INSERT INTO brandbos.contributions (session_id, persona_code, content, round_number, phase, cost, tokens)
VALUES ('h1', 'cfo', 'direct', 1, 'deliberation', 0.25, 2);
SELECT is((SELECT user_id || '/' || round_number FROM brandbos.contributions WHERE content = 'direct'),
          'u9/1', 'a direct INSERT afterwards reads the session itself (owner now u9, its own round)');
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'h1'),
          '10.2500/13', 'and the totals stay exact');

-- the amount added ahead is the cost as the row stores it (numeric(10,4)): an argument with
-- more decimals neither inflates the totals nor fails a contribution that reaches the budget
INSERT INTO brandbos.sessions (id, user_id, tenant_id, problem_statement, budget)
VALUES ('h4', 'u1', 't1', 'Round?', 1);
SELECT lives_ok($$SELECT brandbos.add_contribution('h4', 'cfo', 'r', 'deliberation', 0.00015, 1, 'm')$$,
                'a cost with a fifth decimal');
SELECT is((SELECT total_cost::text FROM brandbos.sessions WHERE id = 'h4'), '0.0002',
          'counts as the row stores it (0.0002), once');
SELECT lives_ok($$SELECT brandbos.add_contribution('h4', 'cfo', 'r', 'deliberation', 0.99975, 1, 'm')$$,
                'a cost that, as stored, reaches the budget exactly');
SELECT is((SELECT total_cost::text FROM brandbos.sessions WHERE id = 'h4'), '1.0000',
          'and the totals are the sum of the rows');

-- a trigger on contributions that calls add_contribution itself (a moderator answering every
-- contribution, say): the inner call must not take the outer call's hand-over with it
INSERT INTO brandbos.sessions (id, user_id, tenant_id, problem_statement)
VALUES ('h5', 'u1', 't1', 'Outer'), ('h6', 'u1', 't1', 'Inner');
CREATE FUNCTION pg_temp.answer_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.session_id = 'h5' AND NEW.content = 'ask' THEN
		PERFORM brandbos.add_contribution('h6', 'cfo', 'answer', 'deliberation', 2, 20, 'm');
	ELSIF NEW.session_id = 'h5' AND NEW.content = 'ask paused' THEN
		BEGIN
			PERFORM brandbos.add_contribution('h3', 'cfo', 'answer', 'deliberation', 4, 40, 'm');
		EXCEPTION WHEN object_not_in_prerequisite_state THEN
			NULL;
		END;
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER a_answer_it BEFORE INSERT ON brandbos.contributions
	FOR EACH ROW EXECUTE FUNCTION pg_temp.answer_it();
CREATE TRIGGER z_answer_it AFTER INSERT ON brandbos.contributions
	FOR EACH ROW EXECUTE FUNCTION pg_temp.answer_it();
SELECT lives_ok($$SELECT brandbos.add_contribution('h5', 'cfo', 'ask', 'deliberation', 1, 10, 'm')$$,
                'add_contribution whose INSERT fires add_contribution (before and after)');
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'h5'),
          '1.0000/10', 'the outer contribution counts once');
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'h6'),
          '4.0000/40', 'the inner ones count once each');
SELECT lives_ok($$SELECT brandbos.add_contribution('h5', 'cfo', 'ask paused', 'deliberation', 1, 10, 'm')$$,
                'an inner call that fails and is caught');
DROP TRIGGER a_answer_it ON brandbos.contributions;
DROP TRIGGER z_answer_it ON brandbos.contributions;
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'h5'),
          '2.0000/20', 'leaves the outer one counted once');

-- a trigger after the guard inserts another row into the same session: that row is checked
-- against the total with add_contribution's amount in
INSERT INTO brandbos.sessions (id, user_id, tenant_id, problem_statement, budget)
VALUES ('h7', 'u1', 't1', 'Nested', 10);
CREATE FUNCTION pg_temp.add_beside() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.content LIKE 'outer%' THEN
		INSERT INTO brandbos.contributions (session_id, persona_code, content, round_number, phase,
											cost, tokens)
		VALUES (NEW.session_id, 'cfo', 'beside', 1, 'deliberation', substr(NEW.content, 7)::numeric, 1);
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER z_add_beside BEFORE INSERT ON brandbos.contributions
	FOR EACH ROW EXECUTE FUNCTION pg_temp.add_beside();
SELECT throws_ok($$SELECT brandbos.add_contribution('h7', 'cfo', 'outer 6', 'deliberation', 6, 1, 'm')$$,
                 '23514', NULL, 'a row inserted beside it that would pass the budget: 23514');
SELECT lives_ok($$SELECT brandbos.add_contribution('h7', 'cfo', 'outer 4', 'deliberation', 6, 1, 'm')$$,
                'one that reaches the budget exactly');
DROP TRIGGER z_add_beside ON brandbos.contributions;
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'h7'),
          '10.0000/2', 'both counted once');

-- a NaN cost passes cost >= 0 but would make the totals NaN: refused before the lookup
SELECT throws_ok($$SELECT brandbos.add_contribution('h2', 'cfo', 'nan', 'deliberation', 'NaN', 1, 'm')$$,
                 '22023', NULL, 'a NaN cost: 22023');
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'h2'),
          '4.5000/26', 'and the totals stay a number');

SELECT * FROM finish();
ROLLBACK;
