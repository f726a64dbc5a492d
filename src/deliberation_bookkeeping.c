/*
 * deliberation_bookkeeping.c — contributions and votes, and the costs and
 * tokens they add to their session (SPEC 5).
 *
 *   contribution_guard  BEFORE INSERT/UPDATE on contributions: locks the
 *                       session row (FOR UPDATE), refuses an INSERT into a
 *                       session that is not active, a cost over the budget
 *                       and a move to another session, copies owner and
 *                       tenant from the session, defaults the round.  (An
 *                       UPDATE or DELETE of an ended session's rows is a
 *                       correction and is allowed; the totals follow.)
 *   contribution_totals AFTER INSERT/UPDATE/DELETE on contributions: one
 *                       UPDATE of the session's totals.
 *   vote_guard          BEFORE INSERT/UPDATE on votes: active session,
 *                       owner and tenant from the session.
 *
 * Invariants:
 *   - A session's total_cost and total_tokens are the sums over its
 *     contributions, under any number of concurrent writers.  The guard
 *     takes the session row FOR UPDATE for every INSERT and UPDATE, whoever
 *     writes (add_contribution already holds it from its lookup), and keeps
 *     it to commit: writers of one session queue, and each checks the budget
 *     against the total the previous one committed.  The totals UPDATE adds
 *     a delta (total + x), never a value computed in C, so a DELETE, which
 *     the guard does not see, is counted exactly too.
 *   - A contribution or vote carries its session's user_id and tenant_id,
 *     whatever the writer gave, so the policies need no subquery.
 *   - add_contribution and cast_vote reach only the sessions the policies'
 *     rule lets the caller reach (delib_open_session).
 *   - Rows restored with row_security off are kept as they come and are
 *     not counted again (delib_loading_rows).
 */
#include "deliberation.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/rel.h"

/* the guards are BEFORE INSERT OR UPDATE row triggers */
static void
require_before_write(TriggerData *td, const char *name)
{
	if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.%s() must be a BEFORE INSERT OR UPDATE row trigger", name)));
}

/*
 * Lock the row's session with sql (its columns start status, user_id,
 * tenant_id; inside SPI) and return its status; 42704 when there is none.
 */
static char *
lock_session(const char *sql, const char *session_id)
{
	Oid			type = TEXTOID;
	Datum		arg = CStringGetTextDatum(session_id);

	delib_exec_cached(sql, 1, &type, &arg, NULL, false);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("session \"%s\" does not exist", session_id)));
	return delib_text(0, 1);
}

/* owner and tenant of the session lock_session read, into cols/values/nulls [0] and [1] */
static void
copy_owner(TupleDesc tupdesc, int *cols, Datum *values, bool *nulls)
{
	cols[0] = delib_attnum_of(tupdesc, "user_id");
	values[0] = delib_datum(0, 2, &nulls[0]);
	values[0] = nulls[0] ? (Datum) 0 : SPI_datumTransfer(values[0], false, -1);
	cols[1] = delib_attnum_of(tupdesc, "tenant_id");
	values[1] = delib_datum(0, 3, &nulls[1]);
	values[1] = nulls[1] ? (Datum) 0 : SPI_datumTransfer(values[1], false, -1);
}

PG_FUNCTION_INFO_V1(brandbos_contribution_guard);
/* SQL: brandbos.contribution_guard() returns trigger — BEFORE INSERT OR UPDATE ON brandbos.contributions */
Datum
brandbos_contribution_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = delib_trigger_data(fcinfo, "contribution_guard");
	TupleDesc	tupdesc = RelationGetDescr(td->tg_relation);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
	HeapTuple	newtup = is_update ? td->tg_newtuple : td->tg_trigtuple;
	BrandbosInternalState state;
	char	   *session_id = delib_tuple_text(newtup, tupdesc, "session_id");
	bool		isnull,
				cost_null,
				round_null;
	char	   *status;
	Datum		cost,
				total,
				budget;
	bool		budget_null;
	int			cols[3];
	Datum		values[3];
	bool		nulls[3];
	static const char lock_session_sql[] =
		"SELECT status, user_id, tenant_id, round_number, total_cost, budget "
		"FROM brandbos.sessions WHERE id = $1 FOR UPDATE";

	if (delib_loading_rows())
		return delib_row_as_is(td);

	require_before_write(td, "contribution_guard");
	if (session_id == NULL)
		return PointerGetDatum(newtup);	/* NOT NULL says the rest */
	if (is_update)
	{
		char	   *old_session = delib_tuple_text(td->tg_trigtuple, tupdesc, "session_id");

		if (strcmp(old_session, session_id) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a contribution cannot move to another session")));
	}

	cost = heap_getattr(newtup, delib_attnum_of(tupdesc, "cost"), tupdesc, &cost_null);
	(void) heap_getattr(newtup, delib_attnum_of(tupdesc, "round_number"), tupdesc, &round_null);

	brandbos_spi_begin(&state, brandbos_extension_owner());
	status = lock_session(lock_session_sql, session_id);
	if (!is_update && strcmp(status, "active") != 0)
		delib_refuse_inactive(session_id, status, "contributions");

	/* owner and tenant always come from the session */
	copy_owner(tupdesc, cols, values, nulls);
	cols[2] = delib_attnum_of(tupdesc, "round_number");
	values[2] = delib_datum(0, 4, &isnull);
	nulls[2] = false;

	total = delib_datum(0, 5, &isnull);
	budget = delib_datum(0, 6, &budget_null);
	if (!budget_null && !cost_null)
	{
		Datum		after = DirectFunctionCall2(numeric_add, total, cost);

		if (is_update)
		{
			bool		old_null;
			Datum		old_cost = heap_getattr(td->tg_trigtuple, delib_attnum_of(tupdesc, "cost"),
											   tupdesc, &old_null);

			if (!old_null)
				after = DirectFunctionCall2(numeric_sub, after, old_cost);
		}
		if (DatumGetBool(DirectFunctionCall2(numeric_gt, after, budget)))
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("contribution exceeds the budget of session \"%s\"", session_id),
					 errdetail("The session would cost %s against a budget of %s.",
							   DatumGetCString(DirectFunctionCall1(numeric_out, after)),
							   DatumGetCString(DirectFunctionCall1(numeric_out, budget)))));
	}
	brandbos_spi_end(&state);

	newtup = heap_modify_tuple_by_cols(newtup, tupdesc, round_null ? 3 : 2, cols, values, nulls);
	return PointerGetDatum(newtup);
}

/* add sign * (cost, tokens) of a contribution row to its session */
static void
apply_totals(HeapTuple tuple, TupleDesc tupdesc, int sign)
{
	Oid			types[4] = {TEXTOID, NUMERICOID, INT8OID, INT4OID};
	Datum		values[4];
	bool		isnull;
	static const char sql[] =
		"UPDATE brandbos.sessions SET total_cost = total_cost + $4 * $2, "
		"total_tokens = total_tokens + $4 * $3 WHERE id = $1";

	values[0] = heap_getattr(tuple, delib_attnum_of(tupdesc, "session_id"), tupdesc, &isnull);
	values[1] = heap_getattr(tuple, delib_attnum_of(tupdesc, "cost"), tupdesc, &isnull);
	values[2] = Int64GetDatum(DatumGetInt32(heap_getattr(tuple, delib_attnum_of(tupdesc, "tokens"),
														 tupdesc, &isnull)));
	values[3] = Int32GetDatum(sign);
	delib_exec_cached(sql, 4, types, values, NULL, false);
}

PG_FUNCTION_INFO_V1(brandbos_contribution_totals);
/* SQL: brandbos.contribution_totals() returns trigger — AFTER INSERT OR UPDATE OR DELETE ON brandbos.contributions */
Datum
brandbos_contribution_totals(PG_FUNCTION_ARGS)
{
	TriggerData *td = delib_trigger_data(fcinfo, "contribution_totals");
	TupleDesc	tupdesc = RelationGetDescr(td->tg_relation);
	BrandbosInternalState state;

	if (delib_loading_rows())
		return delib_row_as_is(td);

	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.contribution_totals() must be an AFTER row trigger")));

	brandbos_spi_begin(&state, brandbos_extension_owner());
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		apply_totals(td->tg_trigtuple, tupdesc, 1);
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		apply_totals(td->tg_trigtuple, tupdesc, -1);
	else
	{
		/* one statement: the new values in, the old ones out */
		apply_totals(td->tg_trigtuple, tupdesc, -1);
		apply_totals(td->tg_newtuple, tupdesc, 1);
	}
	brandbos_spi_end(&state);
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(brandbos_vote_guard);
/* SQL: brandbos.vote_guard() returns trigger — BEFORE INSERT OR UPDATE ON brandbos.votes */
Datum
brandbos_vote_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = delib_trigger_data(fcinfo, "vote_guard");
	TupleDesc	tupdesc = RelationGetDescr(td->tg_relation);
	HeapTuple	newtup = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	char	   *session_id = delib_tuple_text(newtup, tupdesc, "session_id");
	BrandbosInternalState state;
	char	   *status;
	int			cols[2];
	Datum		values[2];
	bool		nulls[2];
	static const char share_session_sql[] =
		"SELECT status, user_id, tenant_id FROM brandbos.sessions WHERE id = $1 FOR SHARE";

	if (delib_loading_rows())
		return delib_row_as_is(td);

	require_before_write(td, "vote_guard");
	if (session_id == NULL)
		return PointerGetDatum(newtup);

	brandbos_spi_begin(&state, brandbos_extension_owner());
	status = lock_session(share_session_sql, session_id);
	if (strcmp(status, "active") != 0)
		delib_refuse_inactive(session_id, status, "votes");
	copy_owner(tupdesc, cols, values, nulls);
	brandbos_spi_end(&state);

	newtup = heap_modify_tuple_by_cols(newtup, tupdesc, 2, cols, values, nulls);
	return PointerGetDatum(newtup);
}

/*
 * What add_contribution and cast_vote end with: find the session the caller
 * reaches (holding it FOR UPDATE when lock is set), refuse one that is not
 * active and an unknown persona, run insert_sql (a string constant, for the
 * plan cache) and return the new row's id.
 */
static int64
insert_into_session(const char *session_id, const char *persona, bool lock, const char *what,
					const char *insert_sql, int nargs, Oid *types, Datum *values,
					const char *nulls)
{
	BrandbosInternalState state;
	DelibSession session;
	bool		isnull;
	int64		id;

	delib_open_session(&state, session_id, lock, &session);
	if (strcmp(session.status, "active") != 0)
		delib_refuse_inactive(session_id, session.status, what);
	delib_require_persona(persona);
	delib_exec_cached(insert_sql, nargs, types, values, nulls, false);
	/* a BEFORE trigger (only a superuser can add one) may have skipped the row */
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
				 errmsg("a trigger on brandbos.%s skipped the row", what)));
	id = DatumGetInt64(delib_datum(0, 1, &isnull));
	brandbos_spi_end(&state);
	return id;
}

PG_FUNCTION_INFO_V1(brandbos_add_contribution);
/*
 * SQL: brandbos.add_contribution(session_id text, persona_code text, content text, phase text,
 *                                cost numeric, tokens int, model text) returns bigint
 */
Datum
brandbos_add_contribution(PG_FUNCTION_ARGS)
{
	char	   *session_id = delib_required_text(fcinfo, 0, "session_id");
	char	   *persona = delib_required_text(fcinfo, 1, "persona_code");
	char	   *phase = delib_required_text(fcinfo, 3, "phase");
	Oid			types[7] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, NUMERICOID, INT4OID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	static const char insert_sql[] =
		"INSERT INTO brandbos.contributions (session_id, persona_code, content, phase, cost, "
		"tokens, model) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("content must not be null")));
	if (PG_ARGISNULL(4) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cost and tokens must not be null")));
	if (delib_numeric_is_negative(PG_GETARG_DATUM(4)) || PG_GETARG_INT32(5) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cost and tokens must not be negative")));
	if (numeric_is_nan(PG_GETARG_NUMERIC(4)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cost must be a number, not NaN"),
				 errdetail("A NaN cost would turn the session's total_cost into NaN, which no budget check can refuse.")));
	delib_check_phase(phase);

	values[0] = CStringGetTextDatum(session_id);
	values[1] = CStringGetTextDatum(persona);
	values[2] = PG_GETARG_DATUM(2);
	values[3] = CStringGetTextDatum(phase);
	values[4] = PG_GETARG_DATUM(4);
	values[5] = PG_GETARG_DATUM(5);
	values[6] = PG_ARGISNULL(6) ? (Datum) 0 : PG_GETARG_DATUM(6);
	nulls[6] = PG_ARGISNULL(6) ? 'n' : ' ';

	/* the trigger fills owner, tenant and round, and checks the budget */
	PG_RETURN_INT64(insert_into_session(session_id, persona, true, "contributions",
										insert_sql, 7, types, values, nulls));
}

PG_FUNCTION_INFO_V1(brandbos_cast_vote);
/*
 * SQL: brandbos.cast_vote(session_id text, persona_code text, vote_choice text, reasoning text,
 *                         confidence numeric default null) returns bigint
 */
Datum
brandbos_cast_vote(PG_FUNCTION_ARGS)
{
	char	   *session_id = delib_required_text(fcinfo, 0, "session_id");
	char	   *persona = delib_required_text(fcinfo, 1, "persona_code");
	char	   *choice = delib_required_text(fcinfo, 2, "vote_choice");
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, NUMERICOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	static const char insert_sql[] =
		"INSERT INTO brandbos.votes (session_id, persona_code, vote_choice, reasoning, confidence) "
		"VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, persona_code) DO UPDATE SET "
		"vote_choice = EXCLUDED.vote_choice, reasoning = EXCLUDED.reasoning, "
		"confidence = EXCLUDED.confidence, created_at = now() RETURNING id";

	if (!PG_ARGISNULL(4))
	{
		Datum		c = PG_GETARG_DATUM(4);

		if (delib_numeric_is_negative(c) ||
			DatumGetBool(DirectFunctionCall2(numeric_gt, c,
											 DirectFunctionCall1(int4_numeric, Int32GetDatum(1)))) ||
			numeric_is_nan(DatumGetNumeric(c)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("confidence must be between 0 and 1")));
	}
	values[0] = CStringGetTextDatum(session_id);
	values[1] = CStringGetTextDatum(persona);
	values[2] = CStringGetTextDatum(choice);
	values[3] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[3] = PG_ARGISNULL(3) ? 'n' : ' ';
	values[4] = PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4);
	nulls[4] = PG_ARGISNULL(4) ? 'n' : ' ';

	PG_RETURN_INT64(insert_into_session(session_id, persona, false, "votes",
										insert_sql, 5, types, values, nulls));
}

