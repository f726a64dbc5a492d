/*
 * role_lock.c — while a request context is set, the session's role and
 * session authorization cannot change.
 *
 * Invariant: from the moment brandbos.authenticate() or
 * brandbos.set_context() sets a context until the (sub)transaction that set
 * it ends, the session user (GetSessionUserId) and the outer user
 * (GetOuterUserId: the role of SET ROLE) keep the values they had at that
 * moment.  Whatever would change them fails with SQLSTATE 42501.  The
 * current user (GetUserId) still changes the way PostgreSQL changes it on
 * its own, and restores it: inside a SECURITY DEFINER function, and in
 * brandbos's internal queries (brandbos_internal_begin); neither touches the
 * session or outer user.
 *
 * The lock does not depend on how a change is spelled.  Four layers:
 *   1. ProcessUtility: SET / RESET ROLE, SET / RESET SESSION AUTHORIZATION
 *      (LOCAL or not, TO DEFAULT) and RESET ALL are refused before they run.
 *   2. The check hooks of the settings "role" and "session_authorization"
 *      are wrapped: every assignment of a value — SET, set_config() under
 *      any name expression, plan or view, a function's or procedure's SET
 *      clause, any C caller — is refused before it takes effect.  Pure
 *      validation (PGC_S_TEST: ALTER FUNCTION ... SET, ALTER ROLE ... SET)
 *      changes nothing and is let through; CREATE FUNCTION with
 *      check_function_bodies on applies the clause while it checks the
 *      body, so it is refused like a call.
 *   3. Their show hooks are wrapped: a reset through set_config(name, NULL,
 *      ...), which runs no check hook, is caught at once, since set_config()
 *      reads the setting back before it returns; nothing of the statement
 *      runs in between.
 *   4. The effect itself is compared with the recorded one at the start of
 *      every statement (ExecutorStart, ProcessUtility) and on entry to and
 *      exit from every function PostgreSQL runs through its security-definer
 *      handler (fmgr_hook: SECURITY DEFINER functions and those with SET
 *      clauses, which PostgreSQL routes there without a needs_fmgr_hook), so
 *      a change from any other path (a SET clause restored on exit after the
 *      context was set inside the function, another module) fails the
 *      statement.
 * The lock ends with the (sub)transaction that set the context: a rolled
 * back savepoint releases it, a released one hands it to its parent.
 *
 * Parallel workers run functions too, SET clauses included, so they must see
 * the lock: it is also the internal setting brandbos.request_role_lock, set
 * LOCAL when the lock begins, which workers receive with the leader's
 * settings.  Only this file writes it; a reset of it (which runs no check
 * hook) is refused as a statement and caught by its show hook and at the
 * next statement start, like a reset of the role.  In the leader the C state
 * below is what counts; in a worker, the setting.
 *
 * The hooks are installed whenever the library is loaded.  A context can
 * only be set by a function of this library, so the lock is in place before
 * any context exists, preloaded or not.
 */
#include "brandbos.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"

/*
 * The lowest (sub)transaction nesting level at which a context was set, 0
 * when none, and the session and outer user recorded when the lock began.
 */
static int	lock_level = 0;
static Oid	locked_session_user = InvalidOid;
static Oid	locked_outer_user = InvalidOid;

/* the two settings whose hooks are wrapped, and their own hooks */
typedef struct LockedSetting
{
	const char *name;
	struct config_string *conf;
	GucStringCheckHook check;
	GucShowHook show;
} LockedSetting;

static LockedSetting role_setting = {"role", NULL, NULL, NULL};
static LockedSetting session_authorization_setting = {"session_authorization", NULL, NULL, NULL};

/* brandbos.request_role_lock: on while the lock holds */
#define LOCK_SETTING "brandbos.request_role_lock"
static bool lock_setting = false;
static bool lock_setting_writing = false;
static bool lock_setting_defined = false;

static ProcessUtility_hook_type prev_utility_hook = NULL;
static ExecutorStart_hook_type prev_executor_start = NULL;
static fmgr_hook_type prev_fmgr_hook = NULL;

static bool
lock_held(void)
{
	if (InitializingParallelWorker)
		return false;
	if (IsParallelWorker())
		return lock_setting;
	return lock_level > 0;
}

static void
refuse(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is not allowed while a brandbos request context is set", what),
			 errdetail("The role of a request cannot change after its context was set."),
			 errhint("Change role before brandbos.authenticate() or brandbos.set_context(), or end the transaction.")));
}

/*
 * Layer 4: fail when the session or outer user is not the recorded one, or
 * when the setting that carries the lock to parallel workers was reset.
 * Only the backend that set the context recorded them (never a worker).
 */
static void
check_effect(void)
{
	if (lock_level == 0 || InitializingParallelWorker)
		return;
	if (!lock_setting)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s cannot be reset while a brandbos request context is set", LOCK_SETTING),
				 errhint("It ends with the transaction.")));
	if (GetSessionUserId() == locked_session_user && GetOuterUserId() == locked_outer_user)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("the role of the session changed while a brandbos request context is set"),
			 errdetail("The session user or the role set by SET ROLE is no longer the one in effect when the context was set."),
			 errhint("Change role before brandbos.authenticate() or brandbos.set_context(), or end the transaction.")));
}

void
brandbos_role_lock_engage(void)
{
	int			level = GetCurrentTransactionNestLevel();

	if (lock_level == 0)
	{
		lock_setting_writing = true;
		PG_TRY();
		{
			(void) set_config_option(LOCK_SETTING, "on", PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_LOCAL, true, 0, false);
		}
		PG_FINALLY();
		{
			lock_setting_writing = false;
		}
		PG_END_TRY();
		locked_session_user = GetSessionUserId();
		locked_outer_user = GetOuterUserId();
		lock_level = level;
		return;
	}
	/* already held: the identity must still be the recorded one */
	check_effect();
	if (level < lock_level)
		lock_level = level;
}

static void
role_lock_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		lock_level = 0;
}

static void
role_lock_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	if (lock_level == 0 || lock_level < level)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		lock_level = 0;			/* set at this level: gone with it */
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		lock_level = level - 1; /* now the parent's */
}

/* ---------------------------------------------------------------------
 * Layer 1: the statements
 * --------------------------------------------------------------------- */

static const char *
statement_name(VariableSetStmt *stmt)
{
	bool		reset = stmt->kind == VAR_RESET || stmt->kind == VAR_SET_DEFAULT;

	if (stmt->kind == VAR_RESET_ALL)
		return "RESET ALL";
	if (stmt->name == NULL)
		return NULL;
	if (pg_strcasecmp(stmt->name, "role") == 0)
		return reset ? "RESET ROLE" : "SET ROLE";
	if (pg_strcasecmp(stmt->name, "session_authorization") == 0)
		return reset ? "RESET SESSION AUTHORIZATION" : "SET SESSION AUTHORIZATION";
	if (reset && pg_strcasecmp(stmt->name, LOCK_SETTING) == 0)
		return "RESET " LOCK_SETTING;
	return NULL;
}

static void
role_lock_utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (lock_held())
	{
		Node	   *parsetree = pstmt->utilityStmt;

		if (IsA(parsetree, VariableSetStmt))
		{
			const char *what = statement_name((VariableSetStmt *) parsetree);

			if (what != NULL)
				refuse(what);
		}
		/* ROLLBACK (TO SAVEPOINT) must always run: it is what ends the lock */
		if (!IsA(parsetree, TransactionStmt))
			check_effect();
	}
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/* ---------------------------------------------------------------------
 * Layers 2 and 3: the settings
 * --------------------------------------------------------------------- */

/* PGC_S_TEST only validates (CREATE FUNCTION ... SET, ALTER ROLE ... SET): allowed */
static bool
check_locked_setting(LockedSetting *setting, char **newval, void **extra, GucSource source)
{
	if (lock_held() && source != PGC_S_TEST)
	{
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("setting \"%s\" is not allowed while a brandbos request context is set",
						 setting->name);
		GUC_check_errdetail("The role of a request cannot change after its context was set.");
		GUC_check_errhint("Change role before brandbos.authenticate() or brandbos.set_context(), or end the transaction.");
		return false;
	}
	return setting->check == NULL || setting->check(newval, extra, source);
}

static bool
check_role_locked(char **newval, void **extra, GucSource source)
{
	return check_locked_setting(&role_setting, newval, extra, source);
}

static bool
check_session_authorization_locked(char **newval, void **extra, GucSource source)
{
	return check_locked_setting(&session_authorization_setting, newval, extra, source);
}

/*
 * A show hook runs in ordinary statements (SHOW, current_setting(), the end
 * of set_config()) and when the server reports a changed setting to the
 * client; an error there aborts the transaction, which releases the lock
 * and restores the setting.
 */
static const char *
show_locked_setting(LockedSetting *setting)
{
	check_effect();
	if (setting->show)
		return setting->show();
	return *setting->conf->variable ? *setting->conf->variable : "";
}

static const char *
show_role_locked(void)
{
	return show_locked_setting(&role_setting);
}

static const char *
show_session_authorization_locked(void)
{
	return show_locked_setting(&session_authorization_setting);
}

static struct config_string *
find_string_setting(const char *name)
{
	struct config_generic *gen = NULL;

#if PG_VERSION_NUM >= 160000
	gen = find_option(name, false, true, ERROR);
#else
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();

	for (int i = 0; i < n; i++)
	{
		if (pg_strcasecmp(vars[i]->name, name) == 0)
		{
			gen = vars[i];
			break;
		}
	}
#endif
	if (gen == NULL || gen->vartype != PGC_STRING)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("setting \"%s\" not found: the brandbos role lock cannot be installed", name)));
	return (struct config_string *) gen;
}

static void
wrap_setting(LockedSetting *setting, GucStringCheckHook check, GucShowHook show)
{
	setting->conf = find_string_setting(setting->name);
	setting->check = setting->conf->check_hook;
	setting->show = setting->conf->show_hook;
	setting->conf->check_hook = check;
	setting->conf->show_hook = show;
}

/*
 * brandbos.request_role_lock: written by brandbos_role_lock_engage(), by a
 * parallel worker restoring its leader's settings, and at definition.
 */
static bool
check_lock_setting(bool *newval, void **extra, GucSource source)
{
	if (lock_setting_writing || InitializingParallelWorker)
		return true;
	if (source == PGC_S_DEFAULT && !lock_setting_defined)
		return true;
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("%s is set only by brandbos.authenticate() and brandbos.set_context()", LOCK_SETTING);
	return false;
}

/* set_config(name, NULL, ...) resets without a check hook, then reads back */
static const char *
show_lock_setting(void)
{
	check_effect();
	return lock_setting ? "on" : "off";
}

/* ---------------------------------------------------------------------
 * Layer 4: statements and functions
 * --------------------------------------------------------------------- */

static void
role_lock_executor_start(QueryDesc *queryDesc, int eflags)
{
	check_effect();
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/*
 * On entry the function's SET clauses are in effect (a SET role among them
 * was already refused by the check hook); on exit they are restored.
 */
static void
role_lock_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg)
{
	if (event == FHET_START)
		check_effect();
	if (prev_fmgr_hook)
		prev_fmgr_hook(event, flinfo, arg);
	if (event == FHET_END)
		check_effect();
}

void
brandbos_role_lock_init(void)
{
	DefineCustomBoolVariable(LOCK_SETTING,
							 "On while a brandbos request context locks the session's role.",
							 "Set only by brandbos.authenticate() and brandbos.set_context(), for the rest of the (sub)transaction.",
							 &lock_setting, false, PGC_USERSET,
							 GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_NO_RESET_ALL,
							 check_lock_setting, NULL, show_lock_setting);
	lock_setting_defined = true;

	wrap_setting(&role_setting, check_role_locked, show_role_locked);
	wrap_setting(&session_authorization_setting, check_session_authorization_locked,
				 show_session_authorization_locked);

	RegisterXactCallback(role_lock_xact_callback, NULL);
	RegisterSubXactCallback(role_lock_subxact_callback, NULL);

	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = role_lock_utility_hook;
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = role_lock_executor_start;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = role_lock_fmgr_hook;
}
