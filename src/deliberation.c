/*
 * deliberation.c — what every deliberation file relies on (SPEC 5): the
 * internal statements, the argument checks, the trigger plumbing, and the
 * one way a function finds the session its caller names.
 *
 * Finding a session.  Who may reach a row of sessions, contributions, votes
 * and users is written once, in the install script: brandbos.context_sees
 * (user_id, tenant_id) — the row's user is the context's user, or the row's
 * tenant is the context's tenant and the context is an admin.  Each table's
 * only policy is that function, and delib_open_session's statement calls the
 * same function; no copy of the rule lives in C.  The statement has to
 * apply it itself because it runs as the extension owner, whom the policies
 * exempt (the tables are not FORCEd, so restores and the triggers' own
 * statements see every row): running it as the caller instead would need
 * UPDATE on sessions for the row lock, which callers do not hold, and would
 * let a superuser or a BYPASSRLS role with a context act on sessions outside
 * that context.  The one exemption is the policies' own: a caller with the
 * extension owner's privileges (or a superuser) and no request context at
 * all is a DBA and reaches every session.  Everybody else, whatever their
 * role, row_security setting or group memberships, reaches exactly the rows
 * the policies grant their context (what a SELECT shows an ordinary role
 * with that context).  An unreachable session is reported as unknown
 * (42704), never as someone else's.
 *
 * Locking.  A lookup for a change takes the session row FOR UPDATE in the
 * same statement that checks visibility, so the status, round and budget a
 * function reads stay true until it commits, and concurrent writers of one
 * session queue on that row (which is what keeps the totals exact; see
 * deliberation_bookkeeping.c).
 *
 * Internal statements run through SPI as the extension owner with a pinned
 * search_path and row_security on (brandbos_spi_begin): a caller's settings
 * never reach them.
 */
#include "deliberation.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/rls.h"

static const char *const session_phases[] = {
	"problem_decomposition", "initial_round", "deliberation",
	"moderator_intervention", "voting", "synthesis", NULL
};

bool
delib_in_list(const char *value, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(value, *list) == 0)
			return true;
	return false;
}

/* ---------------------------------------------------------------------
 * SPI helpers
 * --------------------------------------------------------------------- */

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

int
delib_exec_cached(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
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

char *
delib_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

Datum
delib_datum(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/* ---------------------------------------------------------------------
 * Argument checks
 * --------------------------------------------------------------------- */

char *
delib_required_text(FunctionCallInfo fcinfo, int argno, const char *what)
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

char *
delib_optional_text(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

void
delib_check_phase(const char *phase)
{
	if (!delib_in_list(phase, session_phases))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown phase \"%s\"", phase),
				 errdetail("A phase is one of problem_decomposition, initial_round, deliberation, moderator_intervention, voting, synthesis.")));
}

bool
delib_numeric_is_negative(Datum n)
{
	return DatumGetBool(DirectFunctionCall2(numeric_lt, n,
											DirectFunctionCall1(int4_numeric, Int32GetDatum(0))));
}

/*
 * Is the caller a DBA: a superuser or a role with the extension owner's
 * privileges (both exempt from the policies, as the owner is)?  Only with
 * no request context at all does that reach every session.
 */
static bool
caller_is_privileged(void)
{
	return superuser() || has_privs_of_role(GetUserId(), brandbos_extension_owner());
}

/*
 * Connect SPI as the extension owner and find the session the caller may
 * reach (see the file header), taking its row FOR UPDATE when lock is set;
 * 42704 when there is none.  Whether the caller is a DBA is decided before
 * the switch to the owner.  The caller ends with brandbos_spi_end(state).
 */
void
delib_open_session(BrandbosInternalState *state, const char *session_id, bool lock,
				   DelibSession *session)
{
	bool		privileged = caller_is_privileged();
	Oid			types[2] = {TEXTOID, BOOLOID};
	Datum		values[2];
	bool		isnull;

#define FIND_SESSION_SQL \
	"SELECT s.status, s.round_number, s.max_rounds FROM brandbos.sessions s " \
	"WHERE s.id OPERATOR(pg_catalog.=) $1 AND (brandbos.context_sees(s.user_id, s.tenant_id) " \
	"  OR ($2 AND brandbos.current_user_id() IS NULL))"
	static const char find_locked[] = FIND_SESSION_SQL " FOR UPDATE";
	static const char find_plain[] = FIND_SESSION_SQL;

	values[0] = CStringGetTextDatum(session_id);
	values[1] = BoolGetDatum(privileged);
	brandbos_spi_begin(state, brandbos_extension_owner());
	delib_exec_cached(lock ? find_locked : find_plain, 2, types, values, NULL, !lock);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("session \"%s\" does not exist", session_id)));
	session->status = delib_text(0, 1);
	session->round_number = DatumGetInt32(delib_datum(0, 2, &isnull));
	session->max_rounds = DatumGetInt32(delib_datum(0, 3, &isnull));
}

void
delib_require_persona(const char *code)
{
	Oid			type = TEXTOID;
	Datum		value = CStringGetTextDatum(code);
	static const char sql[] = "SELECT 1 FROM brandbos.personas WHERE code = $1";

	delib_exec_cached(sql, 1, &type, &value, NULL, true);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("persona \"%s\" does not exist", code)));
}

void
delib_refuse_inactive(const char *session_id, const char *status, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("session \"%s\" is %s", session_id, status),
			 errdetail("Only an active session accepts %s.", what)));
}

/* ---------------------------------------------------------------------
 * Trigger plumbing
 * --------------------------------------------------------------------- */

TriggerData *
delib_trigger_data(FunctionCallInfo fcinfo, const char *name)
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
bool
delib_loading_rows(void)
{
	return !row_security;
}

/* the tuple a BEFORE trigger returns unchanged */
Datum
delib_row_as_is(TriggerData *td)
{
	if (TRIGGER_FIRED_AFTER(td->tg_event))
		return PointerGetDatum(NULL);
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);
}

int
delib_attnum_of(TupleDesc tupdesc, const char *name)
{
	int			attnum = SPI_fnumber(tupdesc, name);

	if (attnum <= 0)
		elog(ERROR, "column \"%s\" is missing", name);
	return attnum;
}

char *
delib_tuple_text(HeapTuple tuple, TupleDesc tupdesc, const char *name)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, delib_attnum_of(tupdesc, name), tupdesc, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}
