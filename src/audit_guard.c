/*
 * audit_guard.c — the utility hook that protects the audit tables.
 *
 * Installed only when brandbos is in shared_preload_libraries.  It refuses,
 * for every role including superusers:
 *   - ALTER, DROP, RENAME and TRUNCATE of the audit tables (which is how one
 *     would disable their append-only triggers);
 *   - DROP of the schema brandbos;
 *   - disabling, re-enabling as ORIGIN/REPLICA-only, or dropping the audit
 *     triggers of an audited table other than through disable_audit.
 * The triggers are ENABLE ALWAYS, so session_replication_role = replica
 * cannot skip them and needs no refusal of its own.
 *
 * Each refused attempt is recorded in the audit log.  The refusing
 * statement's transaction is rolled back, so the record is written by a
 * short-lived background worker in its own transaction.
 *
 * What a hook cannot stop — a superuser editing pg_trigger directly, or
 * writing the data files — verify_audit detects afterwards.
 */
#include "brandbos.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#define AUDIT_TRIGGER_PREFIX "zz_brandbos_audit"

bool		brandbos_guard_bypass = false;

static ProcessUtility_hook_type prev_utility_hook = NULL;

/* what a refused attempt leaves for the recording worker */
typedef struct AttemptRecord
{
	Oid			roleid;
	char		what[BGW_EXTRALEN - sizeof(Oid)];
} AttemptRecord;

static const char *const guarded_tables[] = {
	"audit_entries", "audit_blocks", "audit_redactions", "audit_prunes", "audit_seal_state", NULL
};

static bool
is_guarded_relid(Oid relid)
{
	Oid			nsp = get_namespace_oid(BRANDBOS_SCHEMA, true);
	const char *const *t;

	if (!OidIsValid(relid) || !OidIsValid(nsp) || get_rel_namespace(relid) != nsp)
		return false;
	for (t = guarded_tables; *t; t++)
		if (strcmp(get_rel_name(relid), *t) == 0)
			return true;
	return false;
}

static bool
is_guarded_rangevar(RangeVar *rv)
{
	return rv != NULL && is_guarded_relid(RangeVarGetRelid(rv, NoLock, true));
}

static bool
is_audit_trigger_name(const char *name)
{
	return name != NULL && strncmp(name, AUDIT_TRIGGER_PREFIX, strlen(AUDIT_TRIGGER_PREFIX)) == 0;
}

/* start a worker that writes the attempt to the audit log */
static void
record_attempt(const char *what)
{
	BackgroundWorker worker;
	AttemptRecord rec;

	memset(&rec, 0, sizeof(rec));
	rec.roleid = GetUserId();
	/* cut at a character boundary: the text goes into the audit log */
	memcpy(rec.what, what, pg_mbcliplen(what, strlen(what), sizeof(rec.what) - 1));

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "brandbos");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "brandbos_attempt_recorder_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "brandbos audit attempt recorder");
	snprintf(worker.bgw_type, BGW_MAXLEN, "brandbos audit attempt recorder");
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	memcpy(worker.bgw_extra, &rec, sizeof(rec));
	if (!RegisterDynamicBackgroundWorker(&worker, NULL))
		ereport(WARNING,
				(errmsg("could not start a worker to record a refused change of the audit log"),
				 errhint("Raise max_worker_processes.")));
}

static void
refuse(const char *what)
{
	record_attempt(what);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is refused: the brandbos audit log is append-only", what),
			 errdetail("The attempt has been recorded in the audit log."),
			 errhint("Use brandbos.disable_audit(), brandbos.redact_audit() or brandbos.prune_audit().")));
}

static void
check_alter_table(AlterTableStmt *stmt)
{
	ListCell   *lc;

	if (is_guarded_rangevar(stmt->relation))
		refuse(psprintf("ALTER TABLE %s", stmt->relation->relname));

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);

		switch (cmd->subtype)
		{
			case AT_DisableTrigAll:
			case AT_DisableTrigUser:
				refuse(psprintf("ALTER TABLE %s DISABLE TRIGGER ALL/USER", stmt->relation->relname));
				break;
			case AT_DisableTrig:
			case AT_EnableTrig:
			case AT_EnableReplicaTrig:
				if (is_audit_trigger_name(cmd->name))
					refuse(psprintf("changing trigger %s of %s", cmd->name, stmt->relation->relname));
				break;
			default:
				break;
		}
	}
}

static void
check_drop(DropStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		Node	   *obj = lfirst(lc);

		switch (stmt->removeType)
		{
			case OBJECT_TABLE:
				if (is_guarded_rangevar(makeRangeVarFromNameList((List *) obj)))
					refuse("DROP TABLE of an audit table");
				break;
			case OBJECT_SCHEMA:
				if (strcmp(strVal(obj), BRANDBOS_SCHEMA) == 0)
					refuse("DROP SCHEMA brandbos");
				break;
			case OBJECT_TRIGGER:
				{
					List	   *names = (List *) obj;
					char	   *trigger = strVal(llast(names));
					RangeVar   *rel = makeRangeVarFromNameList(list_truncate(list_copy(names),
																			 list_length(names) - 1));

					if (is_audit_trigger_name(trigger) || is_guarded_rangevar(rel))
						refuse(psprintf("DROP TRIGGER %s", trigger));
					break;
				}
			default:
				break;
		}
	}
}

static void
brandbos_utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (!creating_extension && !brandbos_guard_bypass && IsTransactionState() &&
		OidIsValid(get_namespace_oid(BRANDBOS_SCHEMA, true)))
	{
		switch (nodeTag(parsetree))
		{
			case T_AlterTableStmt:
				check_alter_table((AlterTableStmt *) parsetree);
				break;
			case T_DropStmt:
				check_drop((DropStmt *) parsetree);
				break;
			case T_TruncateStmt:
				{
					ListCell   *lc;

					foreach(lc, ((TruncateStmt *) parsetree)->relations)
						if (is_guarded_rangevar(lfirst(lc)))
							refuse("TRUNCATE of an audit table");
					break;
				}
			case T_RenameStmt:
				if (is_guarded_rangevar(((RenameStmt *) parsetree)->relation))
					refuse("renaming an audit table or its columns");
				break;
			default:
				break;
		}
	}

	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

PGDLLEXPORT void brandbos_attempt_recorder_main(Datum arg);

/* background worker: write one refused attempt to the audit log */
void
brandbos_attempt_recorder_main(Datum arg)
{
	AttemptRecord rec;
	char	   *role;

	memcpy(&rec, MyBgworkerEntry->bgw_extra, sizeof(rec));
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (OidIsValid(brandbos_relid("audit_entries")))
	{
		StringInfoData details;

		role = GetUserNameFromId(rec.roleid, true);
		initStringInfo(&details);
		appendStringInfoString(&details, "{\"attempted_by\": ");
		escape_json(&details, role ? role : "?");
		appendStringInfoString(&details, ", \"statement\": ");
		escape_json(&details, rec.what);
		appendStringInfoChar(&details, '}');
		brandbos_audit_append("tamper_attempt", "audit_log", NULL,
							  DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(details.data))));
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	proc_exit(0);
}

void
brandbos_guard_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = brandbos_utility_hook;
}
