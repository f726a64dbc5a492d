/*
 * isolation_guard.c — a partition that joins an isolated table is isolated
 * like it before the command ends.
 *
 * An event trigger on ddl_command_end (ENABLE ALWAYS, created by the install
 * script, so it works without shared_preload_libraries and for every role)
 * looks at commands that put a relation under another: CREATE TABLE ...
 * PARTITION OF / INHERITS (also CREATE FOREIGN TABLE and inside CREATE
 * SCHEMA) and ALTER [FOREIGN] TABLE ... ATTACH PARTITION / INHERIT.  For every
 * relation the command touched, each ancestor (or the relation itself) that
 * carries brandbos isolation has its whole tree checked, and every relation
 * below it that is not isolated as isolation_check.c requires gets the
 * policies, forced row level security and defaults (policies.c), as the
 * role running the command — who owns the new partition.  A foreign table
 * cannot carry row level security, so it cannot join an isolated table
 * (42809); the command fails and rolls back.
 *
 * Invariants: the trigger ignores the DDL brandbos itself runs
 * (brandbos_isolation_running), and brandbos's own install script; it never
 * changes a relation that is already isolated as required; DETACH PARTITION
 * and NO INHERIT are not looked at, so a relation that leaves a tree keeps
 * its policies.  With shared_preload_libraries, protect_guard.c's utility
 * hook keeps this trigger enabled for every role (it refuses changes to any
 * event trigger whose function lives in schema brandbos).
 */
#include "brandbos.h"

#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

/* does the command put a relation under another? */
static bool
joins_a_tree(Node *parsetree)
{
	ListCell   *lc;

	if (parsetree == NULL)
		return false;
	switch (nodeTag(parsetree))
	{
		case T_CreateStmt:
			return ((CreateStmt *) parsetree)->partbound != NULL ||
				((CreateStmt *) parsetree)->inhRelations != NIL;
		case T_CreateForeignTableStmt:
			return ((CreateForeignTableStmt *) parsetree)->base.partbound != NULL ||
				((CreateForeignTableStmt *) parsetree)->base.inhRelations != NIL;
		case T_AlterTableStmt:
			foreach(lc, ((AlterTableStmt *) parsetree)->cmds)
			{
				AlterTableType t = ((AlterTableCmd *) lfirst(lc))->subtype;

				if (t == AT_AttachPartition || t == AT_AddInherit)
					return true;
			}
			return false;
		case T_CreateSchemaStmt:
			foreach(lc, ((CreateSchemaStmt *) parsetree)->schemaElts)
				if (joins_a_tree(lfirst(lc)))
					return true;
			return false;
		default:
			return false;
	}
}

static bool
carries_isolation(Oid relid)
{
	BrandbosIsolation iso;

	brandbos_isolation_own(relid, &iso);
	return iso.tenant_col[0] != '\0' || iso.owner_col[0] != '\0';
}

static bool
rls_on_and_forced(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool		ok;

	if (!HeapTupleIsValid(tup))
		return true;
	ok = ((Form_pg_class) GETSTRUCT(tup))->relrowsecurity &&
		((Form_pg_class) GETSTRUCT(tup))->relforcerowsecurity;
	ReleaseSysCache(tup);
	return ok;
}

/* isolate every relation below root that is not isolated as required */
static void
isolate_below(Oid root)
{
	ListCell   *lc;

	foreach(lc, find_all_inheritors(root, NoLock, NULL))
	{
		Oid			relid = lfirst_oid(lc);
		BrandbosIsolation iso;

		if (relid == root || !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
			continue;
		if (get_rel_relkind(relid) == RELKIND_FOREIGN_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("foreign table \"%s\" cannot be a partition of isolated table \"%s\"",
							get_rel_name(relid), get_rel_name(root)),
					 errdetail("Row level security does not apply to foreign tables, so its rows would be open to every tenant."),
					 errhint("Keep foreign tables out of the partitions of tables isolated by brandbos.")));
		brandbos_isolation_expected(relid, &iso);
		if (rls_on_and_forced(relid) && brandbos_isolation_problems(relid, &iso) == NIL)
			continue;
		(void) brandbos_require_owned_table(relid);
		brandbos_isolation_apply(relid, &iso);
		CommandCounterIncrement();
	}
}

PG_FUNCTION_INFO_V1(brandbos_isolation_guard);
/* SQL: brandbos.isolation_guard() returns event_trigger */
Datum
brandbos_isolation_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	List	   *roots = NIL;
	ListCell   *lc;

	if (!brandbos_ddl_guard_applies(fcinfo, "brandbos.isolation_guard()") || brandbos_isolation_running)
		PG_RETURN_VOID();
	trigdata = (EventTriggerData *) fcinfo->context;
	if (!joins_a_tree(trigdata->parsetree))
		PG_RETURN_VOID();

	foreach(lc, brandbos_ddl_command_objects(RelationRelationId))
	{
		Oid			relid = lfirst_oid(lc);
		List	   *line;
		ListCell   *lc2;

		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
			continue;
		line = lcons_oid(relid, brandbos_isolation_ancestors(relid));
		foreach(lc2, line)
			if (!list_member_oid(roots, lfirst_oid(lc2)) && carries_isolation(lfirst_oid(lc2)))
				roots = lappend_oid(roots, lfirst_oid(lc2));
	}
	foreach(lc, roots)
		isolate_below(lfirst_oid(lc));
	PG_RETURN_VOID();
}
