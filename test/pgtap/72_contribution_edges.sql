-- add_contribution at its edges: a NaN cost, a cost with more decimals than the column keeps,
-- a BEFORE trigger that changes or skips the row, and add_contribution called from a trigger
-- on contributions (triggers there need the superuser: PUBLIC has no TRIGGER right).
-- Runs as the superuser without a request context (a DBA reaches every session).
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(12);

SELECT brandbos.seed_personas('[{"code": "cfo", "name": "Cal", "expertise": "money"}]');
INSERT INTO brandbos.sessions (id, user_id, tenant_id, problem_statement, max_rounds, budget, round_number)
VALUES ('e1', 'u1', 't1', 'Raise?', 10, 1, 1),
       ('e2', 'u2', 't2', 'Hire?', 10, NULL, 1);

-- totals equal the rows' sums
CREATE FUNCTION pg_temp.totals_match(sid text) RETURNS boolean LANGUAGE sql AS $$
	SELECT s.total_cost = coalesce(sum(c.cost), 0) AND s.total_tokens = coalesce(sum(c.tokens), 0)
	  FROM brandbos.sessions s LEFT JOIN brandbos.contributions c ON c.session_id = s.id
	 WHERE s.id = sid GROUP BY s.total_cost, s.total_tokens
$$;

-- a NaN cost passes cost >= 0 but would make the totals NaN
SELECT throws_ok($$SELECT brandbos.add_contribution('e1', 'cfo', 'nan', 'deliberation', 'NaN', 1, 'm')$$,
                 '22023', NULL, 'a NaN cost: 22023');
SELECT is((SELECT total_cost::text FROM brandbos.sessions WHERE id = 'e1'), '0.0000',
          'and the total stays a number');

-- more decimals than numeric(10,4): counted as the row stores them
SELECT lives_ok($$SELECT brandbos.add_contribution('e1', 'cfo', 'a', 'deliberation', 0.00015, 1, 'm')$$,
                'a cost with a fifth decimal');
SELECT lives_ok($$SELECT brandbos.add_contribution('e1', 'cfo', 'b', 'deliberation', 0.00005, 1, 'm')$$,
                'and another');
SELECT ok(pg_temp.totals_match('e1'), 'the total is the sum of the stored costs');
SELECT lives_ok($$SELECT brandbos.add_contribution('e1', 'cfo', 'c', 'deliberation',
                        1 - (SELECT total_cost FROM brandbos.sessions WHERE id = 'e1') + 0.00004, 1, 'm')$$,
                'a cost that reaches the budget exactly once stored');

-- a BEFORE trigger that doubles the cost: the totals count what the row carries
CREATE FUNCTION pg_temp.double_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.cost := NEW.cost * 2;
	RETURN NEW;
END $$;
CREATE TRIGGER a_double_it BEFORE INSERT ON brandbos.contributions
	FOR EACH ROW EXECUTE FUNCTION pg_temp.double_it();
SELECT lives_ok($$SELECT brandbos.add_contribution('e2', 'cfo', 'doubled', 'deliberation', 1.25, 3, 'm')$$,
                'a row whose cost a trigger changed');
DROP TRIGGER a_double_it ON brandbos.contributions;
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'e2'),
          '2.5000/3', 'the totals count what the row carries, not the arguments');

-- a BEFORE trigger that skips the row: the call fails instead of reporting a row never stored
CREATE FUNCTION pg_temp.skip_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RETURN NULL;
END $$;
CREATE TRIGGER a_skip_it BEFORE INSERT ON brandbos.contributions
	FOR EACH ROW EXECUTE FUNCTION pg_temp.skip_it();
SELECT throws_ok($$SELECT brandbos.add_contribution('e2', 'cfo', 'skipped', 'deliberation', 1, 1, 'm')$$,
                 '27000', NULL, 'a row a trigger skips fails the call: 27000');
DROP TRIGGER a_skip_it ON brandbos.contributions;
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'e2'),
          '2.5000/3', 'and leaves the totals as they were');

-- add_contribution from a trigger on contributions: every row counted once
CREATE FUNCTION pg_temp.answer_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.content <> 'answer' THEN
		PERFORM brandbos.add_contribution(NEW.session_id, 'cfo', 'answer', 'deliberation', 0.5, 1, 'm');
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER z_answer_it AFTER INSERT ON brandbos.contributions
	FOR EACH ROW EXECUTE FUNCTION pg_temp.answer_it();
SELECT lives_ok($$SELECT brandbos.add_contribution('e2', 'cfo', 'question', 'deliberation', 1, 1, 'm')$$,
                'add_contribution inside add_contribution');
DROP TRIGGER z_answer_it ON brandbos.contributions;
SELECT is((SELECT total_cost::text || '/' || total_tokens FROM brandbos.sessions WHERE id = 'e2'),
          '4.0000/5', 'both rows counted once');

SELECT * FROM finish();
ROLLBACK;
