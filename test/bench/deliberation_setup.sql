-- Deliberation benchmarks (SPEC section 5, issue #5): add_contribution against a plain
-- INSERT of the same values into an equivalent table.
--   brandbos.contributions  written by brandbos.add_contribution (C), which locks the
--                           session row and hands it to the BEFORE trigger; the trigger
--                           checks status and budget and fills owner, tenant and
--                           round; the AFTER trigger adds cost and
--                           tokens to the session's totals; foreign keys to sessions and
--                           personas; RLS for the application role
--   bench_contrib_plain     the same columns, CHECKs and indexes (session_id, user_id), no
--                           triggers, no foreign keys, no RLS
-- Same request shape on both sides (deliberation_add.sql, deliberation_plain.sql): each
-- transaction sets up the request as its application would — brandbos.set_context on
-- brandbos's side, a transaction-local request.jwt.claims with the same user and tenant on
-- the baseline's — and then writes one contribution.
-- 50 sessions of one user spread the writes, so that the two clients rarely queue on one
-- session row; bench_delib_sessions maps 1..50 to their ids for both sides.
-- Both sides run as the non-superuser role bench_delib_app (RLS applies to it).
\o /dev/null
CREATE EXTENSION IF NOT EXISTS brandbos;

DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_delib_app') THEN
		CREATE ROLE bench_delib_app LOGIN;
	END IF;
END $$;
GRANT brandbos_context_admin TO bench_delib_app;

SELECT brandbos.seed_personas('[
	{"code": "cfo", "name": "Cal", "expertise": "money"},
	{"code": "growth", "name": "Zara", "expertise": "growth"},
	{"code": "ethics", "name": "Eve", "expertise": "ethics"}]');

CREATE TABLE bench_delib_sessions (n int PRIMARY KEY, id text NOT NULL);
BEGIN;
SELECT brandbos.set_context('bench-u1', 'bench-t1');
INSERT INTO bench_delib_sessions
	SELECT g, brandbos.start_session('bench problem ' || g, NULL, 10, NULL)
	  FROM generate_series(1, 50) g;
COMMIT;
GRANT SELECT ON bench_delib_sessions TO bench_delib_app;

CREATE TABLE bench_contrib_plain (
	id				bigserial PRIMARY KEY,
	session_id		text NOT NULL,
	user_id			text,
	tenant_id		text,
	persona_code	text NOT NULL,
	content			text NOT NULL,
	round_number	integer NOT NULL,
	phase			text NOT NULL
		CHECK (phase IN ('problem_decomposition', 'initial_round', 'deliberation',
						 'moderator_intervention', 'voting', 'synthesis')),
	cost			numeric(10,4) NOT NULL CHECK (cost >= 0),
	tokens			integer NOT NULL CHECK (tokens >= 0),
	model			text,
	created_at		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON bench_contrib_plain (session_id);
CREATE INDEX ON bench_contrib_plain (user_id);
ALTER TABLE bench_contrib_plain SET (autovacuum_enabled = off);
GRANT INSERT ON bench_contrib_plain TO bench_delib_app;
GRANT USAGE ON SEQUENCE bench_contrib_plain_id_seq TO bench_delib_app;
