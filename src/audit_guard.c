/*
 * audit_guard.c — what keeps the audit log complete under hostile DDL.
 *
 * Two guards, both refusing with 42501 and recording each refusal as a
 * tamper_attempt row (written by a short-lived background worker, since the
 * refusing statement's transaction rolls back).
 *
 * 1. The audit triggers of audited tables (event triggers, so they work
 *    without shared_preload_libraries, for every role).  brandbos's audit
 *    triggers are known by identity: every pg_trigger row whose function is
 *    brandbos.audit_trigger() (found through pg_depend), never by name.  At
 *    ddl_command_start the guard notes each such trigger (OID, table, name,
 *    type, enabled state, WHEN clause, column list, arguments, function); at
 *    ddl_command_end it reads each of them again by OID.  A trigger that is
 *    gone while its table still exists, or that differs in any of those
 *    fields (ALTER TRIGGER ... RENAME, CREATE OR REPLACE TRIGGER with a WHEN
 *    clause, a column list or another function, DISABLE TRIGGER name / ALL /
 *    USER, ENABLE [REPLICA] TRIGGER, DROP TRIGGER, DETACH PARTITION of an
 *    audited partitioned table, ...) fails the command.  A trigger that is gone
 *    together with its table (DROP TABLE, DROP SCHEMA ... CASCADE, DROP OWNED)
 *    is not refused — owners may drop their tables — but recorded: one audit
 *    row table_dropped per table, written in the dropping transaction, so it
 *    commits exactly when the drop does.  Tables brandbos does not audit are
 *    not looked at: DISABLE TRIGGER ALL on them works (pg_restore
 *    --disable-triggers).  disable_audit drops the triggers past the guard
 *    (brandbos_guard_bypass, backend-local, set only by C code).
 *
 * 2. brandbos's audit tables (audit_entries, audit_blocks, audit_redactions,
 *    audit_prunes, audit_seal_state).  With the library preloaded, a utility
 *    hook refuses, for every role including superusers, ALTER, DROP, RENAME
 *    and TRUNCATE of them, DROP SCHEMA brandbos, and CREATE TRIGGER, CREATE
 *    RULE and CREATE/ALTER POLICY on them, before they run.  With or without
 *    preload, the event triggers also compare, before and after each DDL
 *    command, the triggers (OID, enabled state, function, type, WHEN
 *    clause), rules, policies and row-security flags of those tables, and
 *    refuse anything new or changed and the loss of brandbos's own triggers
 *    (a trigger, rule or policy brandbos did not make may be dropped).
 *    A superuser without preload can disable the event triggers first; then
 *    the writer (audit_writer.c) still refuses to append while
 *    audit_entries has an INSERT trigger, so no trigger can swallow a row
 *    of a committed change.
 *
 * What no hook sees — a superuser editing pg_trigger directly, or writing
 * the data files — verify_audit detects afterwards, once sealed.
 */
#include "brandbos.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_trigger.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

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

/* the recorder this backend started last, while it may still run */
static BackgroundWorkerHandle *recorder_inflight = NULL;

/*
 * Start a worker that writes the attempt to the audit log (it must commit
 * although the refused command rolls back).  At most one recorder per
 * backend runs at a time: a role repeating refused commands in a loop gets a
 * server-log line for the attempts made while one is still running, and
 * cannot fill the worker slots by itself.
 */
static void
record_attempt(const char *what)
{
	BackgroundWorker worker;
	AttemptRecord rec;
	pid_t		pid;
	MemoryContext old;

	if (recorder_inflight != NULL)
	{
		BgwHandleStatus status = GetBackgroundWorkerPid(recorder_inflight, &pid);

		if (status == BGWH_NOT_YET_STARTED || status == BGWH_STARTED)
		{
			ereport(LOG,
					(errmsg("refused change of the audit log not recorded in it: the previous attempt of this session is still being recorded"),
					 errdetail("Role %u attempted %s.", GetUserId(), what)));
			return;
		}
		pfree(recorder_inflight);
		recorder_inflight = NULL;
	}

	memset(&rec, 0, sizeof(rec));
	rec.roleid = GetUserId();
	/* cut at a character boundary: the row must stay valid in the database encoding */
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
	old = MemoryContextSwitchTo(TopMemoryContext);
	if (!RegisterDynamicBackgroundWorker(&worker, &recorder_inflight))
	{
		recorder_inflight = NULL;
		ereport(WARNING,
				(errmsg("could not start a worker to record a refused change of the audit log"),
				 errhint("Raise max_worker_processes.")));
	}
	MemoryContextSwitchTo(old);
}

/*
 * Refuse a command on the audit tables, from the utility hook.  This runs
 * before PostgreSQL's own permission checks, so only a superuser's attempt
 * (one that would otherwise have succeeded) is recorded: an ordinary role's
 * refused TRUNCATE writes nothing and starts no process.
 */
static void
refuse(const char *what)
{
	if (superuser())
		record_attempt(what);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is refused: the brandbos audit log is append-only", what),
			 errdetail("%s", superuser() ? "The attempt has been recorded in the audit log." : "Only a superuser could have done it."),
			 errhint("Use brandbos.disable_audit(), brandbos.redact_audit() or brandbos.prune_audit().")));
}

/* ---------------------------------------------------------------------
 * The event triggers: audit triggers by identity, audit tables frozen
 * --------------------------------------------------------------------- */

/* what the guard compares of one audit trigger */
typedef struct AuditTrigger
{
	Oid			oid;
	Oid			relid;
	Oid			fnoid;
	NameData	tgname;
	int16		tgtype;
	char		tgenabled;
	bool		has_qual;
	int16		nargs;
	int			ncols;
	char	   *table;			/* qualified name, noted at the start */
} AuditTrigger;

static Oid
audit_trigger_function(void)
{
	List	   *names = lappend(list_make1(makeString(BRANDBOS_SCHEMA)),
								makeString("audit_trigger"));

	return LookupFuncName(names, 0, NULL, true);
}

/* read one pg_trigger row into *at; false when there is none with that OID */
static bool
read_trigger(Relation trigrel, Oid trigoid, AuditTrigger *at)
{
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(trigoid));
	scan = systable_beginscan(trigrel, TriggerOidIndexId, true, NULL, 1, &key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_trigger trig = (Form_pg_trigger) GETSTRUCT(tup);
		bool		isnull;

		at->oid = trigoid;
		at->relid = trig->tgrelid;
		at->fnoid = trig->tgfoid;
		at->tgname = trig->tgname;
		at->tgtype = trig->tgtype;
		at->tgenabled = trig->tgenabled;
		(void) heap_getattr(tup, Anum_pg_trigger_tgqual, RelationGetDescr(trigrel), &isnull);
		at->has_qual = !isnull;
		at->nargs = trig->tgnargs;
		at->ncols = trig->tgattr.dim1;
		at->table = NULL;
		found = true;
	}
	systable_endscan(scan);
	return found;
}

/* every trigger that calls brandbos.audit_trigger(), via pg_depend */
static List *
audit_triggers_now(void)
{
	Oid			fnoid = audit_trigger_function();
	Relation	deprel,
				trigrel;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *result = NIL;

	if (!OidIsValid(fnoid))
		return NIL;
	deprel = table_open(DependRelationId, AccessShareLock);
	trigrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ProcedureRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(fnoid));
	scan = systable_beginscan(deprel, DependReferenceIndexId, true, NULL, 2, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);
		AuditTrigger *at;

		if (dep->classid != TriggerRelationId)
			continue;
		at = palloc(sizeof(AuditTrigger));
		if (!read_trigger(trigrel, dep->objid, at) || at->fnoid != fnoid)
			continue;
		at->table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(at->relid)),
											   get_rel_name(at->relid));
		result = lappend(result, at);
	}
	systable_endscan(scan);
	table_close(trigrel, AccessShareLock);
	table_close(deprel, AccessShareLock);
	return result;
}

/* how the trigger now differs from what it was, or NULL */
static char *
audit_trigger_change(const AuditTrigger *was, const AuditTrigger *now)
{
	if (now->relid != was->relid)
		return "moved to another table";
	if (now->fnoid != was->fnoid)
		return "no longer calls brandbos.audit_trigger()";
	if (strcmp(NameStr(now->tgname), NameStr(was->tgname)) != 0)
		return "renamed";
	/* to ENABLE ALWAYS is allowed: it only widens auditing (pg_restore issues it) */
	if (now->tgenabled != was->tgenabled && now->tgenabled != TRIGGER_FIRES_ALWAYS)
		return now->tgenabled == TRIGGER_DISABLED ? "disabled" : "re-enabled for origin or replica only";
	if (now->tgtype != was->tgtype)
		return "made to fire on other events";
	if (now->has_qual != was->has_qual)
		return "given a WHEN condition";
	if (now->ncols != was->ncols)
		return "given a column list";
	if (now->nargs != was->nargs)
		return "given arguments";
	return NULL;
}

/*
 * What could bend the audit tables, as a list of tokens: each trigger (OID,
 * function, type, enabled state; marked "b" when its function is
 * brandbos's), rule and policy on them, and their row-security flags when
 * set.  After a command, a token that was not there before (something new
 * or changed) is refused, and so is a brandbos token that is gone; a
 * foreign trigger, rule, policy or flag may go (undoing a tampering).
 */
static void
relation_tokens(List **tokens, Oid relid, Oid nspid)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return;
	if (((Form_pg_class) GETSTRUCT(tup))->relrowsecurity)
		*tokens = lappend(*tokens, psprintf("%u rls", relid));
	if (((Form_pg_class) GETSTRUCT(tup))->relforcerowsecurity)
		*tokens = lappend(*tokens, psprintf("%u force", relid));
	ReleaseSysCache(tup);

	rel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, TriggerRelidNameIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_trigger trig = (Form_pg_trigger) GETSTRUCT(tup);
		bool		isnull;

		(void) heap_getattr(tup, Anum_pg_trigger_tgqual, RelationGetDescr(rel), &isnull);
		*tokens = lappend(*tokens,
						  psprintf("%s trigger %u %u %d %c %d", 
								   get_func_namespace(trig->tgfoid) == nspid ? "b" : "x",
								   trig->oid, trig->tgfoid, (int) trig->tgtype,
								   trig->tgenabled, (int) isnull));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	rel = table_open(RewriteRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_rewrite_ev_class, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, RewriteRelRulenameIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
		*tokens = lappend(*tokens, psprintf("x rule %u %c", ((Form_pg_rewrite) GETSTRUCT(tup))->oid,
											((Form_pg_rewrite) GETSTRUCT(tup))->ev_enabled));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	rel = table_open(PolicyRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_policy_polrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, PolicyPolrelidPolnameIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
		*tokens = lappend(*tokens, psprintf("x policy %u", ((Form_pg_policy) GETSTRUCT(tup))->oid));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

static List *
audit_table_tokens(void)
{
	List	   *tokens = NIL;
	Oid			nspid = get_namespace_oid(BRANDBOS_SCHEMA, true);
	const char *const *t;

	for (t = guarded_tables; *t; t++)
	{
		Oid			relid = brandbos_relid(*t);

		if (OidIsValid(relid))
			relation_tokens(&tokens, relid, nspid);
	}
	return tokens;
}

static bool
token_member(List *tokens, const char *token)
{
	ListCell   *lc;

	foreach(lc, tokens)
		if (strcmp(lfirst(lc), token) == 0)
			return true;
	return false;
}

/* was the change of the audit tables' tokens one that is refused? */
static bool
audit_tables_bent(List *before, List *after)
{
	ListCell   *lc;

	foreach(lc, after)
		if (!token_member(before, lfirst(lc)))
			return true;
	foreach(lc, before)
		if (((char *) lfirst(lc))[0] == 'b' && !token_member(after, lfirst(lc)))
			return true;
	return false;
}

/*
 * Frames, one per DDL command, as in protect_guard.c: pushed at
 * ddl_command_start, found by parse tree at ddl_command_end (frames above
 * belong to nested commands that failed), dropped when their
 * (sub)transaction aborts.
 */
typedef struct AuditGuardFrame
{
	BrandbosDdlFrame hdr;		/* must be first (ddl_frames.c) */
	List	   *triggers;		/* AuditTrigger, as at the start */
	List	   *tokens;			/* audit_table_tokens(), as at the start */
} AuditGuardFrame;

static BrandbosDdlFrames audit_guard_frames = {"brandbos audit guard", NULL, NIL};

static bool
audit_guard_active(FunctionCallInfo fcinfo, const char *fn)
{
	if (!brandbos_ddl_guard_applies(fcinfo, fn))
		return false;
	return !brandbos_guard_bypass && OidIsValid(brandbos_relid("audit_entries"));
}

PG_FUNCTION_INFO_V1(brandbos_audit_guard_start);
/* SQL: brandbos.audit_guard_start() returns event_trigger */
Datum
brandbos_audit_guard_start(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	MemoryContext old;
	AuditGuardFrame *frame;

	if (!audit_guard_active(fcinfo, "brandbos.audit_guard_start()"))
		PG_RETURN_VOID();
	trigdata = (EventTriggerData *) fcinfo->context;
	old = MemoryContextSwitchTo(brandbos_ddl_frames_context(&audit_guard_frames));
	frame = palloc(sizeof(AuditGuardFrame));
	frame->triggers = audit_triggers_now();
	frame->tokens = audit_table_tokens();
	MemoryContextSwitchTo(old);
	brandbos_ddl_frame_push(&audit_guard_frames, &frame->hdr, trigdata->parsetree);
	PG_RETURN_VOID();
}

/* the audit row of a dropped audited table, in the dropping transaction */
static void
record_table_dropped(const char *table, const char *tag)
{
	BrandbosDetails details;

	brandbos_details_begin(&details);
	brandbos_details_text(&details, "table", table);
	brandbos_details_text(&details, "dropped_by", GetUserNameFromId(GetUserId(), false));
	brandbos_details_text(&details, "command", tag);
	brandbos_audit_append("table_dropped", "table", table, brandbos_details_end(&details));
}

static void
refuse_after(const char *what, const char *detail)
{
	record_attempt(what);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is refused: it would stop or change auditing", what),
			 errdetail("%s The attempt has been recorded in the audit log.", detail),
			 errhint("Use brandbos.disable_audit() to stop auditing a table.")));
}

PG_FUNCTION_INFO_V1(brandbos_audit_guard_end);
/* SQL: brandbos.audit_guard_end() returns event_trigger */
Datum
brandbos_audit_guard_end(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	AuditGuardFrame *frame = NULL;
	const char *tag;
	List	   *triggers;
	List	   *dropped = NIL;
	List	   *tokens = NIL;
	Relation	trigrel;
	ListCell   *lc;

	if (!audit_guard_active(fcinfo, "brandbos.audit_guard_end()"))
		PG_RETURN_VOID();
	trigdata = (EventTriggerData *) fcinfo->context;
	tag = GetCommandTagName(trigdata->tag);
	frame = (AuditGuardFrame *) brandbos_ddl_frame_find(&audit_guard_frames, trigdata->parsetree);
	if (frame == NULL)
		PG_RETURN_VOID();		/* the start trigger did not see this command */

	/* copy out of the frame's memory before it is released */
	triggers = NIL;
	foreach(lc, frame->triggers)
	{
		AuditTrigger *at = palloc(sizeof(AuditTrigger));

		*at = *(AuditTrigger *) lfirst(lc);
		at->table = pstrdup(at->table);
		triggers = lappend(triggers, at);
	}
	foreach(lc, frame->tokens)
		tokens = lappend(tokens, pstrdup(lfirst(lc)));
	brandbos_ddl_frame_drop(&audit_guard_frames, &frame->hdr);

	if (audit_tables_bent(tokens, audit_table_tokens()))
		refuse_after(psprintf("%s on an audit table", tag),
					 "A trigger, rule, policy or row-security setting of brandbos's audit tables would change.");

	trigrel = table_open(TriggerRelationId, AccessShareLock);
	foreach(lc, triggers)
	{
		AuditTrigger *was = lfirst(lc);
		AuditTrigger now;
		char	   *change;

		if (!read_trigger(trigrel, was->oid, &now))
		{
			if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(was->relid)))
			{
				if (!list_member_oid(dropped, was->relid))
					dropped = lappend_oid(dropped, was->relid);
				continue;
			}
			change = "dropped";
		}
		else
			change = audit_trigger_change(was, &now);
		if (change != NULL)
		{
			table_close(trigrel, AccessShareLock);
			refuse_after(psprintf("%s on table %s", tag, was->table),
						 psprintf("brandbos's audit trigger \"%s\" would be %s.",
								  NameStr(was->tgname), change));
		}
	}
	table_close(trigrel, AccessShareLock);

	/* owners may drop their tables; the log says so */
	foreach(lc, dropped)
	{
		Oid			relid = lfirst_oid(lc);
		ListCell   *lc2;

		foreach(lc2, triggers)
		{
			AuditTrigger *was = lfirst(lc2);

			if (was->relid == relid)
			{
				record_table_dropped(was->table, tag);
				break;
			}
		}
	}
	PG_RETURN_VOID();
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
				if (is_guarded_rangevar(((AlterTableStmt *) parsetree)->relation))
					refuse(psprintf("ALTER TABLE %s",
									((AlterTableStmt *) parsetree)->relation->relname));
				break;
			case T_CreateTrigStmt:
				if (is_guarded_rangevar(((CreateTrigStmt *) parsetree)->relation))
					refuse(psprintf("CREATE TRIGGER %s on an audit table",
									((CreateTrigStmt *) parsetree)->trigname));
				break;
			case T_RuleStmt:
				if (is_guarded_rangevar(((RuleStmt *) parsetree)->relation))
					refuse(psprintf("CREATE RULE %s on an audit table",
									((RuleStmt *) parsetree)->rulename));
				break;
			case T_CreatePolicyStmt:
				if (is_guarded_rangevar(((CreatePolicyStmt *) parsetree)->table))
					refuse(psprintf("CREATE POLICY %s on an audit table",
									((CreatePolicyStmt *) parsetree)->policy_name));
				break;
			case T_AlterPolicyStmt:
				if (is_guarded_rangevar(((AlterPolicyStmt *) parsetree)->table))
					refuse(psprintf("ALTER POLICY %s on an audit table",
									((AlterPolicyStmt *) parsetree)->policy_name));
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
		BrandbosDetails details;

		role = GetUserNameFromId(rec.roleid, true);
		brandbos_details_begin(&details);
		brandbos_details_text(&details, "attempted_by", role ? role : "?");
		brandbos_details_text(&details, "statement", rec.what);
		brandbos_audit_append("tamper_attempt", "audit_log", NULL, brandbos_details_end(&details));
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
