/*
 * restore_mode.c — loading a data-only dump into a database whose schema
 * (brandbos's triggers included) is already in place.
 *
 * A data-only load re-inserts rows whose history arrives with the data of
 * brandbos.audit_entries, and the audit id sequence is set only after the
 * table data.  Audited as new inserts, those rows would take ids the
 * restored log already holds (the load fails, or the history is lost).
 *
 * brandbos.restore_mode (superuser, at connection start only: PGOPTIONS)
 * names such a session:
 *   - the audit row and TRUNCATE triggers write nothing in it (one LOG line
 *     per session says so in the server log);
 *   - ALTER TABLE ... DISABLE/ENABLE TRIGGER ALL on a table
 *     of schema brandbos or that carries a brandbos trigger (protected, audited)
 *     is skipped with a NOTICE instead of refused, so that
 *     pg_restore --disable-triggers runs through: the table's triggers stay
 *     as they are (brandbos's stay ENABLE ALWAYS; envelopes pass the protect
 *     trigger unchanged).  Nothing is ever disabled by this file.
 * Everything else (the protect trigger, the guards, the drop guard) works
 * as in any other session.  The hook is installed whenever the library is
 * loaded: with preload, or through session_preload_libraries for a restore
 * session of a cluster without it (a library loaded only by the first
 * brandbos call would come after pg_restore's first ALTER TABLE).
 *
 * Invariant: restore mode is honoured only while the session's current
 * user is a superuser (a SET ROLE to an ordinary role ends it).
 */
#include "brandbos.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

static bool restore_mode = false;
static bool restore_mode_logged = false;
static ProcessUtility_hook_type prev_utility_hook = NULL;

bool
brandbos_restore_mode_active(void)
{
	if (!restore_mode || !superuser())
		return false;
	if (!restore_mode_logged)
	{
		restore_mode_logged = true;
		ereport(LOG,
				(errmsg("brandbos restore mode: audit triggers write nothing in this session"),
				 errdetail("brandbos.restore_mode is on for role \"%s\".",
						   GetUserNameFromId(GetUserId(), false))));
	}
	return true;
}

/* is it one of brandbos's tables, or does it carry a trigger of brandbos's? */
static bool
has_brandbos_trigger(RangeVar *rv)
{
	Oid			relid = RangeVarGetRelid(rv, AccessShareLock, true);
	Oid			nsp = get_namespace_oid(BRANDBOS_SCHEMA, true);
	Relation	rel;
	bool		found = false;
	int			i;

	if (!OidIsValid(relid) || !OidIsValid(nsp))
		return false;
	rel = table_open(relid, AccessShareLock);
	found = RelationGetNamespace(rel) == nsp;
	if (rel->trigdesc)
		for (i = 0; i < rel->trigdesc->numtriggers && !found; i++)
			found = get_func_namespace(rel->trigdesc->triggers[i].tgfoid) == nsp;
	table_close(rel, AccessShareLock);
	return found;
}

/* ALTER TABLE x DISABLE|ENABLE TRIGGER ALL, and nothing else, on a brandbos table */
static bool
is_trigger_all_toggle(Node *stmt)
{
	AlterTableStmt *ats;
	ListCell   *lc;

	if (!IsA(stmt, AlterTableStmt))
		return false;
	ats = (AlterTableStmt *) stmt;
	if (ats->objtype != OBJECT_TABLE || ats->cmds == NIL)
		return false;
	foreach(lc, ats->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		if (cmd->subtype != AT_DisableTrigAll && cmd->subtype != AT_EnableTrigAll)
			return false;
	}
	return has_brandbos_trigger(ats->relation);
}

static void
restore_utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					 ProcessUtilityContext context, ParamListInfo params,
					 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (restore_mode && is_trigger_all_toggle(pstmt->utilityStmt) &&
		brandbos_restore_mode_active())
	{
		ereport(NOTICE,
				(errmsg("brandbos restore mode: triggers of \"%s\" left as they are",
						((AlterTableStmt *) pstmt->utilityStmt)->relation->relname),
				 errdetail("Restored envelopes pass the protect trigger unchanged and the audit triggers write nothing in restore mode.")));
		if (qc)
			SetQueryCompletion(qc, CMDTAG_ALTER_TABLE, 0);
		return;
	}
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

void
brandbos_restore_mode_init(void)
{
	DefineCustomBoolVariable("brandbos.restore_mode",
							 "Marks a session loading a data-only dump: audit triggers write nothing, DISABLE/ENABLE TRIGGER ALL on brandbos's tables is skipped.",
							 "Superusers only, at connection start (PGOPTIONS='-c brandbos.restore_mode=on').",
							 &restore_mode,
							 false,
							 PGC_SU_BACKEND,
							 0,
							 NULL, NULL, NULL);
	/*
	 * Also when loaded later in a session (session_preload_libraries): a
	 * restore without preload loads brandbos that way so that the hook is in
	 * place before pg_restore's first ALTER TABLE.  Off, it costs one test.
	 */
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = restore_utility_hook;
}
