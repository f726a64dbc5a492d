/*
 * deliberation_sessions.c — the life of a deliberation session (SPEC 5):
 * its status machine, rounds and phases, the functions that start, steer
 * and end it, and its summary.
 *
 * Invariants:
 *   - Status moves only active <-> paused, or from active/paused to
 *     completed, failed or killed; those three are final (55000).  The
 *     session_guard trigger holds this for every UPDATE, by a function or
 *     by hand.  The functions are stricter still: each names the statuses
 *     it starts from, so resuming an active session is refused too.
 *   - Every status change writes one audit row (from, to, reason and, for a
 *     kill, killed_by); completed_at / killed_at and killed_by are set by
 *     the trigger, never by the caller; updated_at follows every UPDATE.
 *   - next_round never takes round_number past max_rounds (23514), and only
 *     an active session takes a new round or phase.
 *   - Every function other than start_session acts on a session found by
 *     delib_open_session (deliberation.c): the policies' rule decides
 *     whether the caller reaches it, and changes lock the row first, so two
 *     callers changing one session run one after the other.
 *   - Rows restored with row_security off keep their status and
 *     timestamps (delib_loading_rows).
 */
#include "deliberation.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

static const char *const session_statuses[] = {
	"active", "paused", "completed", "failed", "killed", NULL
};

static bool
is_terminal(const char *status)
{
	return strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
		strcmp(status, "killed") == 0;
}

static const char *
actor_or_admin(void)
{
	const char *user,
			   *tenant,
			   *ip,
			   *agent;

	brandbos_context_actor(&user, &tenant, &ip, &agent);
	return user ? user : "admin";
}

PG_FUNCTION_INFO_V1(brandbos_session_guard);
/* SQL: brandbos.session_guard() returns trigger — BEFORE UPDATE ON brandbos.sessions */
Datum
brandbos_session_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = delib_trigger_data(fcinfo, "session_guard");
	TupleDesc	tupdesc = RelationGetDescr(td->tg_relation);
	HeapTuple	newtup = td->tg_newtuple;
	char	   *from = delib_tuple_text(td->tg_trigtuple, tupdesc, "status");
	char	   *to = delib_tuple_text(newtup, tupdesc, "status");
	char	   *id = delib_tuple_text(td->tg_trigtuple, tupdesc, "id");
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			cols[3];
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	int			n = 0;

	if (delib_loading_rows())
		return delib_row_as_is(td);

	if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_BY_UPDATE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.session_guard() must be a BEFORE UPDATE row trigger")));

	cols[n] = delib_attnum_of(tupdesc, "updated_at");
	values[n++] = TimestampTzGetDatum(now);

	if (to != NULL && from != NULL && strcmp(from, to) != 0)
	{
		BrandbosDetails details;
		char	   *reason = NULL;

		if (!delib_in_list(to, session_statuses))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown session status \"%s\"", to),
					 errdetail("A status is one of active, paused, completed, failed, killed.")));
		if (is_terminal(from))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("session \"%s\" is %s", id, from),
					 errdetail("Completed, failed and killed sessions are final.")));
		/* from is active or paused: every other change is allowed */
		if (strcmp(to, "completed") == 0 || strcmp(to, "failed") == 0)
		{
			cols[n] = delib_attnum_of(tupdesc, "completed_at");
			values[n++] = TimestampTzGetDatum(now);
		}
		else if (strcmp(to, "killed") == 0)
		{
			cols[n] = delib_attnum_of(tupdesc, "killed_at");
			values[n++] = TimestampTzGetDatum(now);
			cols[n] = delib_attnum_of(tupdesc, "killed_by");
			values[n++] = CStringGetTextDatum(actor_or_admin());
		}
		if (strcmp(to, "failed") == 0 || strcmp(to, "killed") == 0)
			reason = delib_tuple_text(newtup, tupdesc, "kill_reason");

		brandbos_details_begin(&details);
		brandbos_details_text(&details, "from", from);
		brandbos_details_text(&details, "to", to);
		brandbos_details_text(&details, "reason", reason);
		if (strcmp(to, "killed") == 0)
			brandbos_details_text(&details, "killed_by", actor_or_admin());
		brandbos_audit_append("session_status", "session", id, brandbos_details_end(&details));
	}

	newtup = heap_modify_tuple_by_cols(newtup, tupdesc, n, cols, values, nulls);
	return PointerGetDatum(newtup);
}

PG_FUNCTION_INFO_V1(brandbos_start_session);
/*
 * SQL: brandbos.start_session(problem_statement text, problem_context jsonb default null,
 *                             max_rounds int default 10, budget numeric default null) returns text
 */
Datum
brandbos_start_session(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	const char *user,
			   *tenant,
			   *ip,
			   *agent;
	char	   *statement = delib_required_text(fcinfo, 0, "problem_statement");
	Oid			types[6] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, INT4OID, NUMERICOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	char	   *id;
	MemoryContext caller = CurrentMemoryContext;

	brandbos_context_actor(&user, &tenant, &ip, &agent);
	if (user == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no request context is set"),
				 errdetail("A session belongs to the user of the request context."),
				 errhint("Call brandbos.authenticate() or brandbos.set_context() first, in the same transaction.")));
	if (PG_ARGISNULL(2) || PG_GETARG_INT32(2) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rounds must be a positive integer")));
	if (!PG_ARGISNULL(3) && delib_numeric_is_negative(PG_GETARG_DATUM(3)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("budget must not be negative")));

	values[0] = CStringGetTextDatum(user);
	values[1] = tenant ? CStringGetTextDatum(tenant) : (Datum) 0;
	nulls[1] = tenant ? ' ' : 'n';
	values[2] = CStringGetTextDatum(statement);
	values[3] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[3] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[4] = PG_GETARG_DATUM(2);
	values[5] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[5] = PG_ARGISNULL(3) ? 'n' : ' ';

	brandbos_spi_begin(&state, brandbos_extension_owner());
	brandbos_sql_exec("INSERT INTO brandbos.sessions (user_id, tenant_id, problem_statement, problem_context, "
					  "max_rounds, budget) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id", 6, types, values, nulls, false, BRANDBOS_SQL_ANY);
	id = MemoryContextStrdup(caller, delib_text(0, 1));
	brandbos_spi_end(&state);

	brandbos_audit_append("session_started", "session", id, NULL);
	PG_RETURN_TEXT_P(cstring_to_text(id));
}

PG_FUNCTION_INFO_V1(brandbos_next_round);
/* SQL: brandbos.next_round(session_id text) returns int */
Datum
brandbos_next_round(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	char	   *session_id = delib_required_text(fcinfo, 0, "session_id");
	DelibSession session;
	bool		isnull;
	int32		round;
	Oid			type = TEXTOID;
	Datum		arg = CStringGetTextDatum(session_id);

	delib_open_session(&state, session_id, true, &session);
	if (strcmp(session.status, "active") != 0)
		delib_refuse_inactive(session_id, session.status, "a new round");
	if (session.round_number >= session.max_rounds)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("session \"%s\" has reached its last round (%d)", session_id,
						session.max_rounds)));
	brandbos_sql_exec("UPDATE brandbos.sessions SET round_number = round_number + 1 WHERE id = $1 "
					  "RETURNING round_number", 1, &type, &arg, NULL, false, BRANDBOS_SQL_ANY);
	round = DatumGetInt32(delib_datum(0, 1, &isnull));
	brandbos_spi_end(&state);
	PG_RETURN_INT32(round);
}

PG_FUNCTION_INFO_V1(brandbos_set_phase);
/* SQL: brandbos.set_phase(session_id text, phase text) returns void */
Datum
brandbos_set_phase(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	char	   *session_id = delib_required_text(fcinfo, 0, "session_id");
	char	   *phase = delib_required_text(fcinfo, 1, "phase");
	DelibSession session;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	delib_check_phase(phase);
	values[0] = CStringGetTextDatum(session_id);
	values[1] = CStringGetTextDatum(phase);
	delib_open_session(&state, session_id, true, &session);
	if (strcmp(session.status, "active") != 0)
		delib_refuse_inactive(session_id, session.status, "a change of phase");
	brandbos_sql_exec("UPDATE brandbos.sessions SET phase = $2 WHERE id = $1", 2, types, values, NULL, false, BRANDBOS_SQL_ANY);
	brandbos_spi_end(&state);
	PG_RETURN_VOID();
}

/*
 * Change the status of a visible session; allowed_from lists the statuses
 * it may come from (the trigger enforces the machine for plain UPDATEs).
 */
static void
change_status(FunctionCallInfo fcinfo, const char *to, const char *const *allowed_from,
			  bool with_reason)
{
	BrandbosInternalState state;
	char	   *session_id = delib_required_text(fcinfo, 0, "session_id");
	char	   *reason = with_reason ? delib_optional_text(fcinfo, 1) : NULL;
	DelibSession session;
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	values[0] = CStringGetTextDatum(session_id);
	values[1] = CStringGetTextDatum(to);
	values[2] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[2] = reason ? ' ' : 'n';

	delib_open_session(&state, session_id, true, &session);
	if (!delib_in_list(session.status, allowed_from))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("session \"%s\" is %s", session_id, session.status),
				 errdetail("A %s session cannot become %s.", session.status, to)));
	if (with_reason)
		brandbos_sql_exec("UPDATE brandbos.sessions SET status = $2, kill_reason = $3 WHERE id = $1", 3, types, values, nulls, false, BRANDBOS_SQL_ANY);
	else
		brandbos_sql_exec("UPDATE brandbos.sessions SET status = $2 WHERE id = $1", 2, types, values, nulls, false, BRANDBOS_SQL_ANY);
	brandbos_spi_end(&state);
}

static const char *const from_active[] = {"active", NULL};
static const char *const from_paused[] = {"paused", NULL};
static const char *const from_running[] = {"active", "paused", NULL};

PG_FUNCTION_INFO_V1(brandbos_pause_session);
/* SQL: brandbos.pause_session(session_id text) returns void */
Datum
brandbos_pause_session(PG_FUNCTION_ARGS)
{
	change_status(fcinfo, "paused", from_active, false);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_resume_session);
/* SQL: brandbos.resume_session(session_id text) returns void */
Datum
brandbos_resume_session(PG_FUNCTION_ARGS)
{
	change_status(fcinfo, "active", from_paused, false);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_complete_session);
/* SQL: brandbos.complete_session(session_id text) returns void */
Datum
brandbos_complete_session(PG_FUNCTION_ARGS)
{
	change_status(fcinfo, "completed", from_running, false);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_fail_session);
/* SQL: brandbos.fail_session(session_id text, reason text) returns void */
Datum
brandbos_fail_session(PG_FUNCTION_ARGS)
{
	change_status(fcinfo, "failed", from_running, true);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_kill_session);
/* SQL: brandbos.kill_session(session_id text, reason text) returns void — killed_by from the context or 'admin' */
Datum
brandbos_kill_session(PG_FUNCTION_ARGS)
{
	change_status(fcinfo, "killed", from_running, true);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_session_summary);
/*
 * SQL: brandbos.session_summary(session_id text) returns jsonb
 *
 * Totals, per-persona cost/tokens/contributions, contributions per round,
 * and the vote tally: the winning choice is the one with most votes (ties
 * broken by total confidence, then by name; "tied" says whether there was
 * a tie on votes), consensus is its share of all votes.
 */
Datum
brandbos_session_summary(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	char	   *session_id = delib_required_text(fcinfo, 0, "session_id");
	DelibSession session;
	Oid			type = TEXTOID;
	Datum		arg = CStringGetTextDatum(session_id);
	Datum		result;
	bool		isnull;

	delib_open_session(&state, session_id, false, &session);
	brandbos_sql_exec("WITH c AS (SELECT * FROM brandbos.contributions WHERE session_id = $1), "
					  "v AS (SELECT * FROM brandbos.votes WHERE session_id = $1), "
					  "tally AS (SELECT vote_choice, count(*) AS votes, coalesce(sum(confidence), 0) AS conf "
					  "          FROM v GROUP BY vote_choice), "
					  "ranked AS (SELECT *, rank() OVER (ORDER BY votes DESC) AS r FROM tally) "
					  "SELECT jsonb_build_object("
					  " 'session_id', s.id, 'status', s.status, 'phase', s.phase,"
					  " 'round_number', s.round_number, 'max_rounds', s.max_rounds,"
					  " 'total_cost', s.total_cost, 'total_tokens', s.total_tokens, 'budget', s.budget,"
					  " 'contributions', (SELECT count(*) FROM c),"
					  " 'personas', coalesce((SELECT jsonb_object_agg(persona_code, o) FROM ("
					  "    SELECT persona_code, jsonb_build_object('cost', sum(cost), 'tokens', sum(tokens),"
					  "           'contributions', count(*)) AS o FROM c GROUP BY persona_code) x), '{}'),"
					  " 'rounds', coalesce((SELECT jsonb_object_agg(round_number::text, n) FROM ("
					  "    SELECT round_number, count(*) AS n FROM c GROUP BY round_number) x), '{}'),"
					  " 'votes', jsonb_build_object("
					  "    'total', (SELECT count(*) FROM v),"
					  "    'tally', coalesce((SELECT jsonb_object_agg(vote_choice, votes) FROM tally), '{}'),"
					  "    'winning_choice', (SELECT vote_choice FROM tally ORDER BY votes DESC, conf DESC, vote_choice LIMIT 1),"
					  "    'tied', (SELECT count(*) > 1 FROM ranked WHERE r = 1),"
					  "    'consensus', (SELECT round(max(votes)::numeric / nullif(sum(votes), 0), 4) FROM tally)))"
					  " FROM brandbos.sessions s WHERE s.id = $1", 1, &type, &arg, NULL, true, BRANDBOS_SQL_ANY);
	result = delib_datum(0, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	brandbos_spi_end(&state);
	PG_RETURN_DATUM(result);
}

