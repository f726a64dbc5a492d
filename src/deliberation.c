/*
 * deliberation.c — persona and deliberation-session bookkeeping (SPEC 5).
 *
 * Tables brandbos.personas, sessions, contributions and votes (install
 * script) are kept consistent by the C triggers below, whichever way a row
 * is written:
 *
 *   session_guard       BEFORE UPDATE on sessions: the status machine
 *                       (active <-> paused; active/paused -> completed,
 *                       failed, killed; terminal states are final), the
 *                       timestamps, killed_by, one audit row per change
 *                       with kill_reason as the reason (fail_session and
 *                       kill_session both store their reason there).
 *   contribution_guard  BEFORE INSERT/UPDATE on contributions: locks the
 *                       session row (FOR UPDATE), refuses an INSERT into a
 *                       session that is not active, a cost over the budget
 *                       and a move to another session, copies owner and
 *                       tenant from the session, defaults the round.  (An
 *                       UPDATE or DELETE of an ended session's rows is a
 *                       correction and is allowed; the totals follow.)
 *   contribution_totals AFTER INSERT/UPDATE/DELETE on contributions: one
 *                       UPDATE of the session's totals.  The row lock on
 *                       the session makes concurrent writers queue, so the
 *                       totals stay exact.
 *   vote_guard          BEFORE INSERT/UPDATE on votes: active session,
 *                       owner and tenant from the session.
 *
 * Internal statements run through SPI as the extension owner with a pinned
 * search_path (brandbos_spi_begin).  The owner is exempt from the tables'
 * RLS, so find_session applies the policies' rule itself, by calling the
 * function the policies consist of, brandbos.context_sees(user_id,
 * tenant_id).  A caller with no context at all who has the extension
 * owner's privileges (a DBA) sees every session.  An invisible session is
 * reported as unknown (42704).
 */
#include "brandbos.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "utils/rls.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

static const char *const session_statuses[] = {
	"active", "paused", "completed", "failed", "killed", NULL
};

static const char *const session_phases[] = {
	"problem_decomposition", "initial_round", "deliberation",
	"moderator_intervention", "voting", "synthesis", NULL
};

static bool
in_list(const char *value, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(value, *list) == 0)
			return true;
	return false;
}

static bool
is_terminal(const char *status)
{
	return strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
		strcmp(status, "killed") == 0;
}

/* ---------------------------------------------------------------------
 * SPI helpers
 * --------------------------------------------------------------------- */

/* run a statement with parameters (nulls: NULL or ' '/'n' per argument) */
static int
spi_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
		 bool read_only)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);

	if (rc < 0)
		elog(ERROR, "internal statement failed (%d): %s", rc, sql);
	return rc;
}

/*
 * The same, through a plan prepared once per backend: for the statements
 * on the path of every contribution and vote.  sql must be a string
 * constant (the cache is keyed by its address).  The plan cache replans
 * after DDL, and the search_path and role are always the same here.
 */
#define MAX_CACHED_PLANS 16

typedef struct InternalPlan
{
	const char *sql;
	SPIPlanPtr	plan;
} InternalPlan;

static InternalPlan cached_plans[MAX_CACHED_PLANS];
static int	n_cached_plans = 0;

static int
spi_exec_cached(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
				bool read_only)
{
	SPIPlanPtr	plan = NULL;
	int			i;
	int			rc;

	for (i = 0; i < n_cached_plans; i++)
		if (cached_plans[i].sql == sql)
		{
			plan = cached_plans[i].plan;
			break;
		}
	if (plan == NULL)
	{
		plan = SPI_prepare(sql, nargs, types);
		if (plan == NULL)
			elog(ERROR, "could not prepare internal statement (%d): %s", SPI_result, sql);
		if (n_cached_plans < MAX_CACHED_PLANS && SPI_keepplan(plan) == 0)
		{
			cached_plans[n_cached_plans].sql = sql;
			cached_plans[n_cached_plans].plan = plan;
			n_cached_plans++;
		}
	}
	rc = SPI_execute_plan(plan, values, nulls, read_only, 0);
	if (rc < 0)
		elog(ERROR, "internal statement failed (%d): %s", rc, sql);
	return rc;
}

static char *
spi_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

static Datum
spi_datum(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/* ---------------------------------------------------------------------
 * Argument checks
 * --------------------------------------------------------------------- */

static char *
required_text(FunctionCallInfo fcinfo, int argno, const char *what)
{
	char	   *s;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));
	return s;
}

static char *
optional_text(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

static void
check_phase(const char *phase)
{
	if (!in_list(phase, session_phases))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown phase \"%s\"", phase),
				 errdetail("A phase is one of problem_decomposition, initial_round, deliberation, moderator_intervention, voting, synthesis.")));
}

static bool
numeric_is_negative(Datum n)
{
	return DatumGetBool(DirectFunctionCall2(numeric_lt, n,
											DirectFunctionCall1(int4_numeric, Int32GetDatum(0))));
}

/* may this caller see every session (a DBA without a request context)? */
static bool
caller_is_privileged(void)
{
	return superuser() || has_privs_of_role(GetUserId(), brandbos_extension_owner());
}

/*
 * Find a session visible to the caller (inside spi_begin), optionally
 * locking it; raises 42704 when there is none.  Returns its status in
 * *status (palloc'd in the SPI context) and leaves the row in SPI_tuptable:
 * 1 status, 2 round_number, 3 max_rounds.
 */
static void
find_session(const char *session_id, bool privileged, bool lock, char **status)
{
	Oid			types[2] = {TEXTOID, BOOLOID};
	Datum		values[2];

#define FIND_SESSION_SQL \
	"SELECT s.status, s.round_number, s.max_rounds FROM brandbos.sessions s " \
	"WHERE s.id OPERATOR(pg_catalog.=) $1 AND (brandbos.context_sees(s.user_id, s.tenant_id) " \
	"  OR ($2 AND brandbos.current_user_id() IS NULL))"
	static const char find_locked[] = FIND_SESSION_SQL " FOR UPDATE";
	static const char find_plain[] = FIND_SESSION_SQL;

	values[0] = CStringGetTextDatum(session_id);
	values[1] = BoolGetDatum(privileged);
	spi_exec_cached(lock ? find_locked : find_plain, 2, types, values, NULL, !lock);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("session \"%s\" does not exist", session_id)));
	*status = spi_text(0, 1);
}

static void
require_persona(const char *code)
{
	Oid			type = TEXTOID;
	Datum		value = CStringGetTextDatum(code);
	static const char sql[] = "SELECT 1 FROM brandbos.personas WHERE code = $1";

	spi_exec_cached(sql, 1, &type, &value, NULL, true);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("persona \"%s\" does not exist", code)));
}

static void
refuse_inactive(const char *session_id, const char *status, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("session \"%s\" is %s", session_id, status),
			 errdetail("Only an active session accepts %s.", what)));
}

/* ---------------------------------------------------------------------
 * Triggers
 * --------------------------------------------------------------------- */

static TriggerData *
trigger_data(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.%s() must be called as a trigger", name)));
	return (TriggerData *) fcinfo->context;
}

/*
 * Rows loaded by pg_restore (or a superuser with row_security off) are kept
 * as they come: the sessions arrive with their totals and statuses, so the
 * contributions must neither add to the totals again nor be refused for an
 * ended session.  pg_dump and pg_restore always run with row_security = off;
 * an ordinary role cannot write these tables with it off (its statements
 * fail on their row-level security), so only roles that bypass row security
 * anyway can skip the bookkeeping.
 */
static bool
loading_rows(void)
{
	return !row_security;
}

/* the tuple a BEFORE trigger returns unchanged */
static Datum
row_as_is(TriggerData *td)
{
	if (TRIGGER_FIRED_AFTER(td->tg_event))
		return PointerGetDatum(NULL);
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);
}

static int
attnum_of(TupleDesc tupdesc, const char *name)
{
	int			attnum = SPI_fnumber(tupdesc, name);

	if (attnum <= 0)
		elog(ERROR, "column \"%s\" is missing", name);
	return attnum;
}

static char *
tuple_text(HeapTuple tuple, TupleDesc tupdesc, const char *name)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, attnum_of(tupdesc, name), tupdesc, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
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
	TriggerData *td = trigger_data(fcinfo, "session_guard");
	TupleDesc	tupdesc = RelationGetDescr(td->tg_relation);
	HeapTuple	newtup = td->tg_newtuple;
	char	   *from = tuple_text(td->tg_trigtuple, tupdesc, "status");
	char	   *to = tuple_text(newtup, tupdesc, "status");
	char	   *id = tuple_text(td->tg_trigtuple, tupdesc, "id");
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			cols[3];
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	int			n = 0;

	if (loading_rows())
		return row_as_is(td);

	if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_BY_UPDATE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.session_guard() must be a BEFORE UPDATE row trigger")));

	cols[n] = attnum_of(tupdesc, "updated_at");
	values[n++] = TimestampTzGetDatum(now);

	if (to != NULL && from != NULL && strcmp(from, to) != 0)
	{
		StringInfoData details;
		char	   *reason = NULL;

		if (!in_list(to, session_statuses))
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
			cols[n] = attnum_of(tupdesc, "completed_at");
			values[n++] = TimestampTzGetDatum(now);
		}
		else if (strcmp(to, "killed") == 0)
		{
			cols[n] = attnum_of(tupdesc, "killed_at");
			values[n++] = TimestampTzGetDatum(now);
			cols[n] = attnum_of(tupdesc, "killed_by");
			values[n++] = CStringGetTextDatum(actor_or_admin());
		}
		if (strcmp(to, "failed") == 0 || strcmp(to, "killed") == 0)
			reason = tuple_text(newtup, tupdesc, "kill_reason");

		initStringInfo(&details);
		appendStringInfoString(&details, "{\"from\":");
		escape_json(&details, from);
		appendStringInfoString(&details, ",\"to\":");
		escape_json(&details, to);
		appendStringInfoString(&details, ",\"reason\":");
		if (reason)
			escape_json(&details, reason);
		else
			appendStringInfoString(&details, "null");
		if (strcmp(to, "killed") == 0)
		{
			appendStringInfoString(&details, ",\"killed_by\":");
			escape_json(&details, actor_or_admin());
		}
		appendStringInfoChar(&details, '}');
		brandbos_audit_append("session_status", "session", id,
							  DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																 CStringGetDatum(details.data))));
	}

	newtup = heap_modify_tuple_by_cols(newtup, tupdesc, n, cols, values, nulls);
	return PointerGetDatum(newtup);
}

PG_FUNCTION_INFO_V1(brandbos_contribution_guard);
/* SQL: brandbos.contribution_guard() returns trigger — BEFORE INSERT OR UPDATE ON brandbos.contributions */
Datum
brandbos_contribution_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = trigger_data(fcinfo, "contribution_guard");
	TupleDesc	tupdesc = RelationGetDescr(td->tg_relation);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
	HeapTuple	newtup = is_update ? td->tg_newtuple : td->tg_trigtuple;
	BrandbosInternalState state;
	char	   *session_id = tuple_text(newtup, tupdesc, "session_id");
	Oid			type = TEXTOID;
	Datum		arg;
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

	if (loading_rows())
		return row_as_is(td);

	if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.contribution_guard() must be a BEFORE INSERT OR UPDATE row trigger")));
	if (session_id == NULL)
		return PointerGetDatum(newtup);	/* NOT NULL says the rest */
	if (is_update)
	{
		char	   *old_session = tuple_text(td->tg_trigtuple, tupdesc, "session_id");

		if (strcmp(old_session, session_id) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a contribution cannot move to another session")));
	}

	cost = heap_getattr(newtup, attnum_of(tupdesc, "cost"), tupdesc, &cost_null);
	(void) heap_getattr(newtup, attnum_of(tupdesc, "round_number"), tupdesc, &round_null);

	brandbos_spi_begin(&state, brandbos_extension_owner());
	arg = CStringGetTextDatum(session_id);
	spi_exec_cached(lock_session_sql, 1, &type, &arg, NULL, false);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("session \"%s\" does not exist", session_id)));
	status = spi_text(0, 1);
	if (!is_update && strcmp(status, "active") != 0)
		refuse_inactive(session_id, status, "contributions");

	/* owner and tenant always come from the session */
	cols[0] = attnum_of(tupdesc, "user_id");
	values[0] = spi_datum(0, 2, &nulls[0]);
	values[0] = nulls[0] ? (Datum) 0 : SPI_datumTransfer(values[0], false, -1);
	cols[1] = attnum_of(tupdesc, "tenant_id");
	values[1] = spi_datum(0, 3, &nulls[1]);
	values[1] = nulls[1] ? (Datum) 0 : SPI_datumTransfer(values[1], false, -1);
	cols[2] = attnum_of(tupdesc, "round_number");
	values[2] = spi_datum(0, 4, &isnull);
	nulls[2] = false;

	total = spi_datum(0, 5, &isnull);
	budget = spi_datum(0, 6, &budget_null);
	if (!budget_null && !cost_null)
	{
		Datum		after = DirectFunctionCall2(numeric_add, total, cost);

		if (is_update)
		{
			bool		old_null;
			Datum		old_cost = heap_getattr(td->tg_trigtuple, attnum_of(tupdesc, "cost"),
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

	values[0] = heap_getattr(tuple, attnum_of(tupdesc, "session_id"), tupdesc, &isnull);
	values[1] = heap_getattr(tuple, attnum_of(tupdesc, "cost"), tupdesc, &isnull);
	values[2] = Int64GetDatum(DatumGetInt32(heap_getattr(tuple, attnum_of(tupdesc, "tokens"),
														 tupdesc, &isnull)));
	values[3] = Int32GetDatum(sign);
	spi_exec_cached(sql, 4, types, values, NULL, false);
}

PG_FUNCTION_INFO_V1(brandbos_contribution_totals);
/* SQL: brandbos.contribution_totals() returns trigger — AFTER INSERT OR UPDATE OR DELETE ON brandbos.contributions */
Datum
brandbos_contribution_totals(PG_FUNCTION_ARGS)
{
	TriggerData *td = trigger_data(fcinfo, "contribution_totals");
	TupleDesc	tupdesc = RelationGetDescr(td->tg_relation);
	BrandbosInternalState state;

	if (loading_rows())
		return row_as_is(td);

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
	TriggerData *td = trigger_data(fcinfo, "vote_guard");
	TupleDesc	tupdesc = RelationGetDescr(td->tg_relation);
	HeapTuple	newtup = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	char	   *session_id = tuple_text(newtup, tupdesc, "session_id");
	BrandbosInternalState state;
	Oid			type = TEXTOID;
	Datum		arg;
	char	   *status;
	int			cols[2];
	Datum		values[2];
	bool		nulls[2];
	static const char share_session_sql[] =
		"SELECT status, user_id, tenant_id FROM brandbos.sessions WHERE id = $1 FOR SHARE";

	if (loading_rows())
		return row_as_is(td);

	if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.vote_guard() must be a BEFORE INSERT OR UPDATE row trigger")));
	if (session_id == NULL)
		return PointerGetDatum(newtup);

	brandbos_spi_begin(&state, brandbos_extension_owner());
	arg = CStringGetTextDatum(session_id);
	spi_exec_cached(share_session_sql, 1, &type, &arg, NULL, false);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("session \"%s\" does not exist", session_id)));
	status = spi_text(0, 1);
	if (strcmp(status, "active") != 0)
		refuse_inactive(session_id, status, "votes");
	cols[0] = attnum_of(tupdesc, "user_id");
	values[0] = spi_datum(0, 2, &nulls[0]);
	values[0] = nulls[0] ? (Datum) 0 : SPI_datumTransfer(values[0], false, -1);
	cols[1] = attnum_of(tupdesc, "tenant_id");
	values[1] = spi_datum(0, 3, &nulls[1]);
	values[1] = nulls[1] ? (Datum) 0 : SPI_datumTransfer(values[1], false, -1);
	brandbos_spi_end(&state);

	newtup = heap_modify_tuple_by_cols(newtup, tupdesc, 2, cols, values, nulls);
	return PointerGetDatum(newtup);
}

/* ---------------------------------------------------------------------
 * Personas
 * --------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(brandbos_upsert_persona);
/* SQL: brandbos.upsert_persona(code text, name text, expertise text, system_prompt text) returns int */
Datum
brandbos_upsert_persona(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	char	   *code;
	char	   *name;
	bool		isnull;
	int32		id;

	brandbos_require_role(BRANDBOS_ROLE_CONTEXT_ADMIN, "manage personas");
	code = required_text(fcinfo, 0, "code");
	name = required_text(fcinfo, 1, "name");
	values[0] = CStringGetTextDatum(code);
	values[1] = CStringGetTextDatum(name);
	values[2] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	values[3] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[2] = PG_ARGISNULL(2) ? 'n' : ' ';
	nulls[3] = PG_ARGISNULL(3) ? 'n' : ' ';

	brandbos_spi_begin(&state, brandbos_extension_owner());
	spi_exec("INSERT INTO brandbos.personas (code, name, expertise, system_prompt) "
			 "VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, "
			 "expertise = EXCLUDED.expertise, system_prompt = EXCLUDED.system_prompt RETURNING id",
			 4, types, values, nulls, false);
	id = DatumGetInt32(spi_datum(0, 1, &isnull));
	brandbos_spi_end(&state);
	PG_RETURN_INT32(id);
}

PG_FUNCTION_INFO_V1(brandbos_seed_personas);
/* SQL: brandbos.seed_personas(personas jsonb) returns int */
Datum
brandbos_seed_personas(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	Oid			type = JSONBOID;
	Datum		arg;
	bool		isnull;
	bool		valid;
	int			count;

	brandbos_require_role(BRANDBOS_ROLE_CONTEXT_ADMIN, "manage personas");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("personas must not be null")));
	arg = PG_GETARG_DATUM(0);

	brandbos_spi_begin(&state, brandbos_extension_owner());
	spi_exec("SELECT CASE WHEN jsonb_typeof($1) <> 'array' THEN false ELSE NOT EXISTS ("
			 " SELECT 1 FROM jsonb_array_elements($1) e(p)"
			 " WHERE jsonb_typeof(p) <> 'object'"
			 "    OR jsonb_typeof(p -> 'code') IS DISTINCT FROM 'string' OR p ->> 'code' = ''"
			 "    OR jsonb_typeof(p -> 'name') IS DISTINCT FROM 'string'"
			 "    OR coalesce(jsonb_typeof(p -> 'expertise'), 'null') NOT IN ('string', 'null')"
			 "    OR coalesce(jsonb_typeof(p -> 'system_prompt'), 'null') NOT IN ('string', 'null')) END",
			 1, &type, &arg, NULL, true);
	valid = DatumGetBool(spi_datum(0, 1, &isnull));
	if (!valid)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("personas must be a JSON array of persona objects"),
				 errdetail("Each element needs string members \"code\" (not empty) and \"name\"; \"expertise\" and \"system_prompt\" are strings or absent.")));
	/* the last object of a code wins */
	spi_exec("INSERT INTO brandbos.personas (code, name, expertise, system_prompt) "
			 "SELECT DISTINCT ON (p ->> 'code') p ->> 'code', p ->> 'name', p ->> 'expertise', p ->> 'system_prompt' "
			 "  FROM jsonb_array_elements($1) WITH ORDINALITY e(p, n) ORDER BY p ->> 'code', n DESC "
			 "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, "
			 "expertise = EXCLUDED.expertise, system_prompt = EXCLUDED.system_prompt",
			 1, &type, &arg, NULL, false);
	count = (int) SPI_processed;
	brandbos_spi_end(&state);
	PG_RETURN_INT32(count);
}

/* ---------------------------------------------------------------------
 * Sessions
 * --------------------------------------------------------------------- */

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
	char	   *statement = required_text(fcinfo, 0, "problem_statement");
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
	if (!PG_ARGISNULL(3) && numeric_is_negative(PG_GETARG_DATUM(3)))
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
	spi_exec("INSERT INTO brandbos.sessions (user_id, tenant_id, problem_statement, problem_context, "
			 "max_rounds, budget) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
			 6, types, values, nulls, false);
	id = MemoryContextStrdup(caller, spi_text(0, 1));
	brandbos_spi_end(&state);

	brandbos_audit_append("session_started", "session", id, NULL);
	PG_RETURN_TEXT_P(cstring_to_text(id));
}

PG_FUNCTION_INFO_V1(brandbos_add_contribution);
/*
 * SQL: brandbos.add_contribution(session_id text, persona_code text, content text, phase text,
 *                                cost numeric, tokens int, model text) returns bigint
 */
Datum
brandbos_add_contribution(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	bool		privileged = caller_is_privileged();
	char	   *session_id = required_text(fcinfo, 0, "session_id");
	char	   *persona = required_text(fcinfo, 1, "persona_code");
	char	   *phase = required_text(fcinfo, 3, "phase");
	char	   *status;
	Oid			types[7] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, NUMERICOID, INT4OID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	int64		id;
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
	if (numeric_is_negative(PG_GETARG_DATUM(4)) || PG_GETARG_INT32(5) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cost and tokens must not be negative")));
	check_phase(phase);

	values[0] = CStringGetTextDatum(session_id);
	values[1] = CStringGetTextDatum(persona);
	values[2] = PG_GETARG_DATUM(2);
	values[3] = CStringGetTextDatum(phase);
	values[4] = PG_GETARG_DATUM(4);
	values[5] = PG_GETARG_DATUM(5);
	values[6] = PG_ARGISNULL(6) ? (Datum) 0 : PG_GETARG_DATUM(6);
	nulls[6] = PG_ARGISNULL(6) ? 'n' : ' ';

	brandbos_spi_begin(&state, brandbos_extension_owner());
	find_session(session_id, privileged, true, &status);
	if (strcmp(status, "active") != 0)
		refuse_inactive(session_id, status, "contributions");
	require_persona(persona);
	/* the trigger fills owner, tenant and round, and checks the budget */
	spi_exec_cached(insert_sql, 7, types, values, nulls, false);
	id = DatumGetInt64(spi_datum(0, 1, &isnull));
	brandbos_spi_end(&state);
	PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(brandbos_next_round);
/* SQL: brandbos.next_round(session_id text) returns int */
Datum
brandbos_next_round(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	bool		privileged = caller_is_privileged();
	char	   *session_id = required_text(fcinfo, 0, "session_id");
	char	   *status;
	bool		isnull;
	int32		round,
				max_rounds;
	Oid			type = TEXTOID;
	Datum		arg = CStringGetTextDatum(session_id);

	brandbos_spi_begin(&state, brandbos_extension_owner());
	find_session(session_id, privileged, true, &status);
	round = DatumGetInt32(spi_datum(0, 2, &isnull));
	max_rounds = DatumGetInt32(spi_datum(0, 3, &isnull));
	if (strcmp(status, "active") != 0)
		refuse_inactive(session_id, status, "a new round");
	if (round >= max_rounds)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("session \"%s\" has reached its last round (%d)", session_id, max_rounds)));
	spi_exec("UPDATE brandbos.sessions SET round_number = round_number + 1 WHERE id = $1 "
			 "RETURNING round_number", 1, &type, &arg, NULL, false);
	round = DatumGetInt32(spi_datum(0, 1, &isnull));
	brandbos_spi_end(&state);
	PG_RETURN_INT32(round);
}

PG_FUNCTION_INFO_V1(brandbos_set_phase);
/* SQL: brandbos.set_phase(session_id text, phase text) returns void */
Datum
brandbos_set_phase(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	bool		privileged = caller_is_privileged();
	char	   *session_id = required_text(fcinfo, 0, "session_id");
	char	   *phase = required_text(fcinfo, 1, "phase");
	char	   *status;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	check_phase(phase);
	values[0] = CStringGetTextDatum(session_id);
	values[1] = CStringGetTextDatum(phase);
	brandbos_spi_begin(&state, brandbos_extension_owner());
	find_session(session_id, privileged, true, &status);
	if (strcmp(status, "active") != 0)
		refuse_inactive(session_id, status, "a change of phase");
	spi_exec("UPDATE brandbos.sessions SET phase = $2 WHERE id = $1", 2, types, values, NULL, false);
	brandbos_spi_end(&state);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_cast_vote);
/*
 * SQL: brandbos.cast_vote(session_id text, persona_code text, vote_choice text, reasoning text,
 *                         confidence numeric default null) returns bigint
 */
Datum
brandbos_cast_vote(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	bool		privileged = caller_is_privileged();
	char	   *session_id = required_text(fcinfo, 0, "session_id");
	char	   *persona = required_text(fcinfo, 1, "persona_code");
	char	   *choice = required_text(fcinfo, 2, "vote_choice");
	char	   *status;
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, NUMERICOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	int64		id;
	static const char insert_sql[] =
		"INSERT INTO brandbos.votes (session_id, persona_code, vote_choice, reasoning, confidence) "
		"VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, persona_code) DO UPDATE SET "
		"vote_choice = EXCLUDED.vote_choice, reasoning = EXCLUDED.reasoning, "
		"confidence = EXCLUDED.confidence, created_at = now() RETURNING id";

	if (!PG_ARGISNULL(4))
	{
		Datum		c = PG_GETARG_DATUM(4);

		if (numeric_is_negative(c) ||
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

	brandbos_spi_begin(&state, brandbos_extension_owner());
	find_session(session_id, privileged, false, &status);
	if (strcmp(status, "active") != 0)
		refuse_inactive(session_id, status, "votes");
	require_persona(persona);
	spi_exec_cached(insert_sql, 5, types, values, nulls, false);
	id = DatumGetInt64(spi_datum(0, 1, &isnull));
	brandbos_spi_end(&state);
	PG_RETURN_INT64(id);
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
	bool		privileged = caller_is_privileged();
	char	   *session_id = required_text(fcinfo, 0, "session_id");
	char	   *reason = with_reason ? optional_text(fcinfo, 1) : NULL;
	char	   *status;
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	values[0] = CStringGetTextDatum(session_id);
	values[1] = CStringGetTextDatum(to);
	values[2] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[2] = reason ? ' ' : 'n';

	brandbos_spi_begin(&state, brandbos_extension_owner());
	find_session(session_id, privileged, true, &status);
	if (!in_list(status, allowed_from))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("session \"%s\" is %s", session_id, status),
				 errdetail("A %s session cannot become %s.", status, to)));
	if (with_reason)
		spi_exec("UPDATE brandbos.sessions SET status = $2, kill_reason = $3 WHERE id = $1",
				 3, types, values, nulls, false);
	else
		spi_exec("UPDATE brandbos.sessions SET status = $2 WHERE id = $1",
				 2, types, values, nulls, false);
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
	bool		privileged = caller_is_privileged();
	char	   *session_id = required_text(fcinfo, 0, "session_id");
	char	   *status;
	Oid			type = TEXTOID;
	Datum		arg = CStringGetTextDatum(session_id);
	Datum		result;
	bool		isnull;

	brandbos_spi_begin(&state, brandbos_extension_owner());
	find_session(session_id, privileged, false, &status);
	spi_exec("WITH c AS (SELECT * FROM brandbos.contributions WHERE session_id = $1), "
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
			 " FROM brandbos.sessions s WHERE s.id = $1",
			 1, &type, &arg, NULL, true);
	result = spi_datum(0, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	brandbos_spi_end(&state);
	PG_RETURN_DATUM(result);
}

/* ---------------------------------------------------------------------
 * GDPR
 * --------------------------------------------------------------------- */

/*
 * The data subject may export or erase their own data; so may members of
 * brandbos_context_admin (the application's backend, which could act as
 * any user through set_context anyway) and superusers.  Anyone else: 42501.
 */
static char *
gdpr_subject(FunctionCallInfo fcinfo, const char *action)
{
	char	   *user_id = required_text(fcinfo, 0, "user_id");
	const char *ctx_user,
			   *ctx_tenant,
			   *ip,
			   *agent;

	brandbos_context_actor(&ctx_user, &ctx_tenant, &ip, &agent);
	if ((ctx_user == NULL || strcmp(ctx_user, user_id) != 0) &&
		!brandbos_has_role(BRANDBOS_ROLE_CONTEXT_ADMIN))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s the data of another user", action),
				 errdetail("Only the user of the request context, or a role with the privileges of \"%s\", may do this.",
						   BRANDBOS_ROLE_CONTEXT_ADMIN)));
	return user_id;
}

PG_FUNCTION_INFO_V1(brandbos_gdpr_export);
/*
 * SQL: brandbos.gdpr_export(user_id text) returns jsonb
 *
 * Everything held about a user: the users row, their sessions with their
 * contributions and votes, and the audit rows naming them as actor or
 * concerning one of their sessions.
 */
Datum
brandbos_gdpr_export(PG_FUNCTION_ARGS)
{
	char	   *user_id = gdpr_subject(fcinfo, "export");
	BrandbosInternalState state;
	Oid			type = TEXTOID;
	Datum		arg = CStringGetTextDatum(user_id);
	Datum		result;
	bool		isnull;

	brandbos_spi_begin(&state, brandbos_extension_owner());
	spi_exec("SELECT jsonb_build_object("
			 " 'user_id', $1::text, 'exported_at', now(),"
			 " 'user', (SELECT to_jsonb(u) FROM brandbos.users u WHERE u.id = $1),"
			 " 'sessions', coalesce((SELECT jsonb_agg(to_jsonb(s) || jsonb_build_object("
			 "     'contributions', coalesce((SELECT jsonb_agg(to_jsonb(c) ORDER BY c.id) FROM brandbos.contributions c"
			 "                                 WHERE c.session_id = s.id), '[]'),"
			 "     'votes', coalesce((SELECT jsonb_agg(to_jsonb(v) ORDER BY v.id) FROM brandbos.votes v"
			 "                         WHERE v.session_id = s.id), '[]')) ORDER BY s.created_at, s.id)"
			 "   FROM brandbos.sessions s WHERE s.user_id = $1), '[]'),"
			 " 'audit', coalesce((SELECT jsonb_agg(jsonb_build_object('id', e.id, 'occurred_at', e.occurred_at,"
			 "     'action', e.action, 'resource_type', e.resource_type, 'resource_id', e.resource_id,"
			 "     'details', e.details, 'ip_address', e.ip_address, 'user_agent', e.user_agent) ORDER BY e.id)"
			 "   FROM brandbos.audit_entries e WHERE e.user_id = $1 OR (e.resource_type = 'session' AND"
			 "     e.resource_id IN (SELECT s.id FROM brandbos.sessions s WHERE s.user_id = $1))), '[]'))",
			 1, &type, &arg, NULL, true);
	result = SPI_datumTransfer(spi_datum(0, 1, &isnull), false, -1);
	brandbos_spi_end(&state);
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(brandbos_gdpr_erase);
/*
 * SQL: brandbos.gdpr_erase(user_id text) returns jsonb
 *
 * Deletes the user's sessions (their contributions and votes go with them)
 * and users row, redacts the payload of the audit rows that gdpr_export
 * would list (as redact_audit does: hashes kept, so verification passes),
 * and logs the erasure.  Returns what was removed.
 */
Datum
brandbos_gdpr_erase(PG_FUNCTION_ARGS)
{
	char	   *user_id = gdpr_subject(fcinfo, "erase");
	BrandbosInternalState state;
	Oid			types[3] = {TEXTOID, INT8OID, TEXTOID};
	Datum		values[3];
	bool		isnull;
	int64		contributions,
				votes,
				sessions,
				users;
	int64	   *ids;
	uint64		nids,
				i;
	StringInfoData details;
	const char *who = GetUserNameFromId(GetUserId(), false);

	values[0] = CStringGetTextDatum(user_id);
	brandbos_spi_begin(&state, brandbos_extension_owner());

	/* audit rows to redact, found before the sessions go */
	spi_exec("SELECT e.id FROM brandbos.audit_entries e "
			 "WHERE (e.user_id = $1 OR (e.resource_type = 'session' AND e.resource_id IN "
			 "       (SELECT s.id FROM brandbos.sessions s WHERE s.user_id = $1))) "
			 "  AND (e.details IS NOT NULL OR e.ip_address IS NOT NULL OR e.user_agent IS NOT NULL) "
			 "ORDER BY e.id FOR SHARE", 1, types, values, NULL, false);
	nids = SPI_processed;
	ids = palloc(sizeof(int64) * (nids + 1));
	for (i = 0; i < nids; i++)
		ids[i] = DatumGetInt64(spi_datum(i, 1, &isnull));

	spi_exec("SELECT (SELECT count(*) FROM brandbos.contributions c JOIN brandbos.sessions s ON s.id = c.session_id"
			 "         WHERE s.user_id = $1),"
			 "       (SELECT count(*) FROM brandbos.votes v JOIN brandbos.sessions s ON s.id = v.session_id"
			 "         WHERE s.user_id = $1)", 1, types, values, NULL, true);
	contributions = DatumGetInt64(spi_datum(0, 1, &isnull));
	votes = DatumGetInt64(spi_datum(0, 2, &isnull));
	spi_exec("DELETE FROM brandbos.sessions WHERE user_id = $1", 1, types, values, NULL, false);
	sessions = (int64) SPI_processed;
	spi_exec("DELETE FROM brandbos.users WHERE id = $1", 1, types, values, NULL, false);
	users = (int64) SPI_processed;

	values[2] = CStringGetTextDatum(who);
	for (i = 0; i < nids; i++)
	{
		values[1] = Int64GetDatum(ids[i]);
		spi_exec("INSERT INTO brandbos.audit_redactions (audit_id, reason, redacted_at, redacted_by) "
				 "VALUES ($2, 'gdpr erasure', now(), $3::name) ON CONFLICT (audit_id) DO NOTHING",
				 3, types, values, NULL, false);
		brandbos_audit_maintenance = true;
		PG_TRY();
		{
			spi_exec("UPDATE brandbos.audit_entries SET details = NULL, ip_address = NULL, user_agent = NULL "
					 "WHERE id = $2", 3, types, values, NULL, false);
		}
		PG_FINALLY();
		{
			brandbos_audit_maintenance = false;
		}
		PG_END_TRY();
		brandbos_audit_append("audit_redacted", "audit_log", psprintf(INT64_FORMAT, ids[i]),
							  DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																 CStringGetDatum("{\"reason\": \"gdpr erasure\"}"))));
	}
	brandbos_spi_end(&state);

	initStringInfo(&details);
	appendStringInfo(&details, "{\"sessions\": " INT64_FORMAT ", \"contributions\": " INT64_FORMAT
					 ", \"votes\": " INT64_FORMAT ", \"users\": " INT64_FORMAT
					 ", \"audit_rows_redacted\": " UINT64_FORMAT "}",
					 sessions, contributions, votes, users, nids);
	brandbos_audit_append("gdpr_erased", "user", user_id,
						  DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(details.data))));
	PG_RETURN_JSONB_P(DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(details.data))));
}
