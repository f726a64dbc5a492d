/*
 * shard_guard.c — a write into a Citus shard of a protected table runs only
 * while that shard's protection is intact.
 *
 * On a worker, protect_guard.c watches the tables the registry names: the
 * shell tables of distributed tables.  Their shards are other relations,
 * owned by the table's owner, who can change them on the worker directly
 * (or through run_command_on_shards): disable, drop or re-enable for
 * replicas only the shard's copy of the protect trigger, add a BEFORE row
 * trigger or a rule that sees the plaintext.  A disabled trigger never
 * fires, so the check cannot live in it.  Instead, before an INSERT, UPDATE
 * or MERGE plan starts (ExecutorStart) and before a COPY FROM
 * (ProcessUtility), every target relation that is a shard of a protected
 * table must pass brandbos_shard_protection_problem(): its trigger
 * zz_brandbos_protect_<shardid> intact, no BEFORE row trigger before it, no
 * rule.  Otherwise the statement fails with 42501 and nothing is written.
 *
 * A superuser's writes are not checked: Citus moves and copies shards as a
 * superuser, into new shards that get their triggers afterwards, and a
 * superuser could change the shard anyway.  Answers are cached per shard
 * and dropped by a relcache invalidation of it, which every trigger and rule
 * change sends (brandbos_relcache_changed calls
 * brandbos_shard_guard_relcache_changed).  Preloaded only.
 */
#include "brandbos.h"

#include "catalog/namespace.h"
#include "commands/copy.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parsetree.h"
#include "tcop/utility.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

typedef struct ShardGuardEntry
{
	Oid			relid;			/* hash key */
	bool		intact;			/* a protected table's shard, checked; else not protected */
} ShardGuardEntry;

static HTAB *checked = NULL;

void
brandbos_shard_guard_relcache_changed(Oid relid)
{
	if (checked == NULL)
		return;
	if (OidIsValid(relid))
		(void) hash_search(checked, &relid, HASH_REMOVE, NULL);
	else
	{
		hash_destroy(checked);
		checked = NULL;
	}
}

/* 42501 when relid is a shard of a protected table whose protection is not intact */
static void
check_target(Oid relid)
{
	ShardGuardEntry *entry;
	Oid			logical;
	char	   *name;
	char	   *suffix;
	char	   *problem;
	bool		found;

	if (checked != NULL && hash_search(checked, &relid, HASH_FIND, NULL) != NULL)
		return;
	logical = brandbos_logical_relid(relid);
	if (logical == relid)
		return;					/* not a shard (cached by citus_shards.c) */
	name = get_rel_name(relid);
	suffix = name ? strrchr(name, '_') : NULL;
	if (suffix == NULL)
		return;
	if (!brandbos_table_is_protected(logical))
		problem = NULL;
	else
		problem = brandbos_shard_protection_problem(relid, suffix + 1);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("shard \"%s\" of protected table \"%s\" cannot be written: its protection was changed",
						name, get_rel_name(logical)),
				 errdetail("%s.", problem),
				 errhint("Only protect_column sets up a shard's protect trigger; restore it, or let a superuser recreate the shard.")));
	if (checked == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(ShardGuardEntry);
		ctl.hcxt = TopMemoryContext;
		checked = hash_create("brandbos shard guard", 64, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(checked, &relid, HASH_ENTER, &found);
	entry->intact = true;
}

static ExecutorStart_hook_type prev_executor_start = NULL;

static void
shard_guard_executor_start(QueryDesc *queryDesc, int eflags)
{
	PlannedStmt *stmt = queryDesc->plannedstmt;

	if ((queryDesc->operation == CMD_INSERT || queryDesc->operation == CMD_UPDATE ||
		 queryDesc->operation == CMD_MERGE) &&
		!(eflags & EXEC_FLAG_EXPLAIN_ONLY) && stmt->resultRelations != NIL && !superuser())
	{
		ListCell   *lc;

		foreach(lc, stmt->resultRelations)
			check_target(rt_fetch(lfirst_int(lc), stmt->rtable)->relid);
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static ProcessUtility_hook_type prev_utility_hook = NULL;

static void
shard_guard_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					ProcessUtilityContext context, ParamListInfo params,
					QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsA(parsetree, CopyStmt) && ((CopyStmt *) parsetree)->is_from &&
		((CopyStmt *) parsetree)->relation != NULL && !superuser())
	{
		Oid			relid = RangeVarGetRelid(((CopyStmt *) parsetree)->relation, NoLock, true);

		if (OidIsValid(relid))
			check_target(relid);
	}
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

void
brandbos_shard_guard_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = shard_guard_executor_start;
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = shard_guard_utility;
}
