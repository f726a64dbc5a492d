/*
 * protect_guard.c — a protected column stays protected, whatever its table's
 * owner does with DDL.
 *
 * The protection of a column rests on objects that live beside the user's
 * table (protect_admin.c makes them):
 *   - the row trigger zz_brandbos_protect, BEFORE INSERT OR UPDATE, function
 *     brandbos.protect_trigger, enabled ALWAYS (so session_replication_role
 *     cannot skip it), with no WHEN clause, column list or arguments, on the
 *     table and on every partition of it;
 *   - nothing that sees the row before that trigger does: no other BEFORE
 *     ROW INSERT/UPDATE trigger whose name sorts before it (triggers fire in
 *     strcmp order of their names), no rule, no partition key over the
 *     protected column (tuple routing runs before the leaf's triggers);
 *   - the column is still of type text or bytea exactly (no domain, and no
 *     type whose casts the owner wrote);
 *   - the views <table>_decrypted and <table>_safe are views owned by the
 *     extension owner, security_invoker, so the table owner cannot drop,
 *     replace, rename or alter the definition a decryptor reads through.
 *
 * brandbos_protection_problem() checks those invariants for one column from
 * the catalogs alone: it runs no SQL and calls no function a user wrote.
 *
 * The guard is a pair of event triggers (ddl_command_start and
 * ddl_command_end, ENABLE ALWAYS, created by the install script), so it works
 * without shared_preload_libraries, for every role.  At the start of each DDL
 * command it notes which protected tables already have a problem; at its end
 * it checks every protected table again (the catalog state after the command,
 * which covers every spelling of a change: ALTER TABLE, ALTER TRIGGER, CREATE
 * OR REPLACE, DROP ... CASCADE, CREATE SCHEMA ... CREATE TRIGGER, ...) and
 * raises 42501, rolling the command back, when a table that was guarded is
 * not any more.  A table that already had a problem before the command (a
 * restore that has not yet created the trigger, a superuser's catalog edit)
 * does not block DDL; brandbos.protection_problem() keeps reporting it.
 *
 * With shared_preload_libraries, a utility hook also refuses, for every role
 * including superusers, disabling (or enabling for origin or replica only),
 * renaming, re-owning and dropping brandbos's own event triggers.  What no
 * hook sees — a superuser editing pg_event_trigger or pg_trigger, or
 * single-user mode, where event triggers never fire — the checker reports.
 *
 * brandbos's own DDL (protect_column, unprotect_column) sets
 * brandbos_protect_guard_bypass around exactly the statements that build or
 * drop the trigger and views, never around a statement that could run a
 * user's code.  The bypass is backend-local and only C code can set it.
 */
#include "brandbos.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_event_trigger.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_partitioned_table.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_func.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#define PROTECT_TRIGGER_NAME "zz_brandbos_protect"

bool		brandbos_protect_guard_bypass = false;

/* ---------------------------------------------------------------------
 * The checker
 * --------------------------------------------------------------------- */

static Oid
protect_trigger_function(void)
{
	String	   *schema = makeString(BRANDBOS_SCHEMA);
	String	   *name = makeString("protect_trigger");

	List	   *names = lappend(list_make1(schema), name);

	return LookupFuncName(names, 0, NULL, true);
}

/* is this pg_trigger row the brandbos protect trigger, and how is it wrong? */
static char *
protect_trigger_problem(Form_pg_trigger trig, HeapTuple tup, Relation trigrel,
						Oid fnoid, const char *where)
{
	int16		want = TRIGGER_TYPE_ROW | TRIGGER_TYPE_BEFORE |
		TRIGGER_TYPE_INSERT | TRIGGER_TYPE_UPDATE;
	bool		isnull;

	if (trig->tgfoid != fnoid)
		return psprintf("trigger %s%s does not call brandbos.protect_trigger()",
						PROTECT_TRIGGER_NAME, where);
	if (trig->tgtype != want)
		return psprintf("trigger %s%s is not a BEFORE INSERT OR UPDATE row trigger",
						PROTECT_TRIGGER_NAME, where);
	if (trig->tgenabled != TRIGGER_FIRES_ALWAYS)
		return psprintf("trigger %s%s is %s, not enabled always", PROTECT_TRIGGER_NAME, where,
						trig->tgenabled == TRIGGER_DISABLED ? "disabled" :
						trig->tgenabled == TRIGGER_FIRES_ON_REPLICA ? "enabled on replicas only" :
						"enabled on origin only");
	if (trig->tgnargs != 0 || trig->tgattr.dim1 != 0)
		return psprintf("trigger %s%s has arguments or a column list", PROTECT_TRIGGER_NAME, where);
	(void) heap_getattr(tup, Anum_pg_trigger_tgqual, RelationGetDescr(trigrel), &isnull);
	if (!isnull)
		return psprintf("trigger %s%s has a WHEN condition", PROTECT_TRIGGER_NAME, where);
	return NULL;
}

/*
 * The protect trigger (named trigger_name) and what could see a row before
 * it, on one relation.  No other BEFORE row trigger may take a name that
 * starts like brandbos's: Citus renames triggers on a shard to
 * <name>_<shardid>, and "zz_brandbos_protect_0" sorts after the table's
 * trigger but before the shard's zz_brandbos_protect_102008.
 */
static char *
relation_trigger_problem(Oid relid, Oid fnoid, const char *where, const char *trigger_name)
{
	Relation	trigrel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;
	char	   *problem = NULL;

	trigrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(trigrel, TriggerRelidNameIndexId, true, NULL, 1, &key);
	while (problem == NULL && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_trigger trig = (Form_pg_trigger) GETSTRUCT(tup);
		int			cmp = strcmp(NameStr(trig->tgname), trigger_name);
		bool		before_row_write = TRIGGER_FOR_ROW(trig->tgtype) && TRIGGER_FOR_BEFORE(trig->tgtype) &&
			(TRIGGER_FOR_INSERT(trig->tgtype) || TRIGGER_FOR_UPDATE(trig->tgtype));

		if (cmp == 0)
		{
			found = true;
			problem = protect_trigger_problem(trig, tup, trigrel, fnoid, where);
		}
		else if (cmp < 0 && before_row_write)
			problem = psprintf("BEFORE row trigger %s%s fires before %s and sees plaintext",
							   NameStr(trig->tgname), where, trigger_name);
		else if (before_row_write &&
				 strncmp(NameStr(trig->tgname), PROTECT_TRIGGER_NAME, strlen(PROTECT_TRIGGER_NAME)) == 0)
			problem = psprintf("BEFORE row trigger %s%s takes the name reserved for brandbos's %s",
							   NameStr(trig->tgname), where, PROTECT_TRIGGER_NAME);
	}
	systable_endscan(scan);
	table_close(trigrel, AccessShareLock);
	if (problem == NULL && !found)
		problem = psprintf("trigger %s is missing%s", trigger_name, where);
	return problem;
}

/* a rule on the table rewrites the statement before any trigger sees the row */
static char *
relation_rule_problem(Oid relid, const char *where)
{
	Relation	rewrite;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *problem = NULL;

	rewrite = table_open(RewriteRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_rewrite_ev_class, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rewrite, RewriteRelRulenameIndexId, true, NULL, 1, &key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
		problem = psprintf("rule %s%s sees the statement's plaintext",
						   NameStr(((Form_pg_rewrite) GETSTRUCT(tup))->rulename), where);
	systable_endscan(scan);
	table_close(rewrite, AccessShareLock);
	return problem;
}

/* tuple routing evaluates the partition key before the leaf's triggers */
static char *
partition_key_problem(Oid relid, const char *colname, const char *where)
{
	HeapTuple	tup;
	Form_pg_partitioned_table part;
	AttrNumber	attnum = get_attnum(relid, colname);
	char	   *problem = NULL;
	bool		isnull;
	Datum		exprs;
	int			i;

	tup = SearchSysCache1(PARTRELID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return NULL;
	part = (Form_pg_partitioned_table) GETSTRUCT(tup);
	for (i = 0; i < part->partnatts; i++)
		if (attnum != InvalidAttrNumber && part->partattrs.values[i] == attnum)
			problem = psprintf("the partition key%s is the protected column", where);
	exprs = SysCacheGetAttr(PARTRELID, tup, Anum_pg_partitioned_table_partexprs, &isnull);
	if (problem == NULL && !isnull && attnum != InvalidAttrNumber)
	{
		Bitmapset  *attrs = NULL;

		pull_varattnos(stringToNode(TextDatumGetCString(exprs)), 1, &attrs);
		if (bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, attrs))
			problem = psprintf("the partition key%s uses the protected column", where);
	}
	ReleaseSysCache(tup);
	return problem;
}

/* a companion view must be brandbos's: a security_invoker view of the extension owner */
static char *
companion_view_problem(Oid nspid, const char *relname, const char *suffix, Oid ext_owner)
{
	char	   *viewname = psprintf("%s%s", relname, suffix);
	Oid			viewid;
	HeapTuple	tup;
	Form_pg_class form;
	char	   *problem = NULL;
	bool		isnull;
	Datum		options;

	if (strlen(viewname) >= NAMEDATALEN)
		return psprintf("view name %s is too long", viewname);
	viewid = get_relname_relid(viewname, nspid);
	if (!OidIsValid(viewid))
		return psprintf("view %s is missing", viewname);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(viewid));
	if (!HeapTupleIsValid(tup))
		return psprintf("view %s is missing", viewname);
	form = (Form_pg_class) GETSTRUCT(tup);
	options = SysCacheGetAttr(RELOID, tup, Anum_pg_class_reloptions, &isnull);
	if (form->relkind != RELKIND_VIEW)
		problem = psprintf("%s is not a view", viewname);
	else if (form->relowner != ext_owner)
	{
		char	   *owner = GetUserNameFromId(form->relowner, true);

		problem = psprintf("view %s is owned by %s, not by the extension owner", viewname,
						   owner ? owner : "an unknown role");
	}
	else
	{
		ViewOptions *vo = isnull ? NULL : (ViewOptions *) view_reloptions(options, false);

		if (vo == NULL || !vo->security_invoker)
			problem = psprintf("view %s is not security_invoker", viewname);
	}
	ReleaseSysCache(tup);
	return problem;
}

/*
 * NULL when every invariant of the file header holds for column attnum of
 * relation relid, else a short palloc'd sentence saying what is wrong.
 * Reads only the catalogs.
 */
char *
brandbos_protection_problem(Oid relid, AttrNumber attnum)
{
	HeapTuple	tup;
	Form_pg_class form;
	char		relkind;
	Oid			nspid;
	char	   *relname;
	char	   *colname;
	Oid			atttype;
	Oid			fnoid;
	List	   *rels;
	ListCell   *lc;
	char	   *problem;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return pstrdup("the table does not exist");
	form = (Form_pg_class) GETSTRUCT(tup);
	relkind = form->relkind;
	nspid = form->relnamespace;
	relname = pstrdup(NameStr(form->relname));
	ReleaseSysCache(tup);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		return psprintf("%s is not a table", relname);

	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(attnum));
	if (!HeapTupleIsValid(tup) || attnum <= 0 ||
		((Form_pg_attribute) GETSTRUCT(tup))->attisdropped)
	{
		if (HeapTupleIsValid(tup))
			ReleaseSysCache(tup);
		return pstrdup("the column does not exist");
	}
	colname = pstrdup(NameStr(((Form_pg_attribute) GETSTRUCT(tup))->attname));
	atttype = ((Form_pg_attribute) GETSTRUCT(tup))->atttypid;
	ReleaseSysCache(tup);
	if (atttype != TEXTOID && atttype != BYTEAOID)
		return psprintf("column type is %s, not text or bytea", format_type_be(atttype));

	fnoid = protect_trigger_function();
	if (!OidIsValid(fnoid))
		return pstrdup("function brandbos.protect_trigger() is missing");

	/* the table, and every partition of a partitioned one */
	if (relkind == RELKIND_PARTITIONED_TABLE)
		rels = find_all_inheritors(relid, NoLock, NULL);
	else
		rels = list_make1_oid(relid);
	foreach(lc, rels)
	{
		Oid			rel = lfirst_oid(lc);
		char	   *partname = rel == relid ? NULL : get_rel_name(rel);
		const char *where;

		if (rel != relid && partname == NULL)
			continue;			/* dropped concurrently */
		where = partname ? psprintf(" on partition %s", partname) : "";
		problem = relation_trigger_problem(rel, fnoid, where, PROTECT_TRIGGER_NAME);
		if (problem == NULL)
			problem = relation_rule_problem(rel, where);
		if (problem == NULL && get_rel_relkind(rel) == RELKIND_PARTITIONED_TABLE)
			problem = partition_key_problem(rel, colname, where);
		if (problem != NULL)
			return problem;
	}

	problem = companion_view_problem(nspid, relname, "_decrypted", brandbos_extension_owner());
	if (problem == NULL)
		problem = companion_view_problem(nspid, relname, "_safe", brandbos_extension_owner());
	return problem;
}

/*
 * The same for a Citus shard of a protected table (name <table>_<suffix>):
 * its copy of the protect trigger, zz_brandbos_protect_<suffix>, intact and
 * first of the BEFORE row triggers, and no rule.  NULL when intact.
 */
char *
brandbos_shard_protection_problem(Oid shard, const char *suffix)
{
	Oid			fnoid = protect_trigger_function();
	const char *where = psprintf(" on shard %s", get_rel_name(shard));
	char	   *problem;

	if (!OidIsValid(fnoid))
		return pstrdup("function brandbos.protect_trigger() is missing");
	problem = relation_trigger_problem(shard, fnoid, where,
									   psprintf("%s_%s", PROTECT_TRIGGER_NAME, suffix));
	if (problem == NULL)
		problem = relation_rule_problem(shard, where);
	return problem;
}

PG_FUNCTION_INFO_V1(brandbos_protection_problem_sql);
/* SQL: brandbos.protection_problem(tbl regclass, col name) returns text */
Datum
brandbos_protection_problem_sql(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	AttrNumber	attnum;
	char	   *problem;

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		PG_RETURN_TEXT_P(cstring_to_text("the table does not exist"));
	attnum = get_attnum(relid, NameStr(*PG_GETARG_NAME(1)));
	if (attnum == InvalidAttrNumber)
		PG_RETURN_TEXT_P(cstring_to_text("the column does not exist"));
	problem = brandbos_protection_problem(relid, attnum);
	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}

/* ---------------------------------------------------------------------
 * The registry, read directly (no SQL, no user code)
 * --------------------------------------------------------------------- */

typedef struct GuardedColumn
{
	Oid			relid;
	NameData	name;
} GuardedColumn;

/* every row of brandbos.column_registry, or NIL when the extension is absent */
static List *
registry_rows(void)
{
	Oid			regid = brandbos_relid("column_registry");
	Relation	reg;
	SysScanDesc scan;
	HeapTuple	tup;
	AttrNumber	oid_att,
				name_att;
	List	   *rows = NIL;

	if (!OidIsValid(regid))
		return NIL;
	oid_att = get_attnum(regid, "table_oid");
	name_att = get_attnum(regid, "column_name");
	if (oid_att == InvalidAttrNumber || name_att == InvalidAttrNumber)
		return NIL;
	reg = table_open(regid, AccessShareLock);
	scan = systable_beginscan(reg, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		n1,
					n2;
		Datum		relid = heap_getattr(tup, oid_att, RelationGetDescr(reg), &n1);
		Datum		name = heap_getattr(tup, name_att, RelationGetDescr(reg), &n2);
		GuardedColumn *gc;

		if (n1 || n2)
			continue;
		gc = palloc(sizeof(GuardedColumn));
		gc->relid = DatumGetObjectId(relid);
		namestrcpy(&gc->name, NameStr(*DatumGetName(name)));
		rows = lappend(rows, gc);
	}
	systable_endscan(scan);
	table_close(reg, AccessShareLock);
	return rows;
}

static char *
column_problem(GuardedColumn *gc)
{
	AttrNumber	attnum;

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(gc->relid)))
		return NULL;			/* a dropped table leaves the registry with it */
	attnum = get_attnum(gc->relid, NameStr(gc->name));
	if (attnum == InvalidAttrNumber)
		return pstrdup("the column does not exist");
	return brandbos_protection_problem(gc->relid, attnum);
}

/* tables with at least one protected column that has a problem now */
static List *
unguarded_tables(void)
{
	List	   *bad = NIL;
	ListCell   *lc;

	foreach(lc, registry_rows())
	{
		GuardedColumn *gc = lfirst(lc);

		if (!list_member_oid(bad, gc->relid) && column_problem(gc) != NULL)
			bad = lappend_oid(bad, gc->relid);
	}
	return bad;
}

/* ---------------------------------------------------------------------
 * The event triggers
 *
 * Each DDL command pushes a frame at ddl_command_start (its parse tree and
 * the tables already unguarded) and looks it up at ddl_command_end by parse
 * tree, from the top: frames of nested commands that failed are skipped.
 * Frames outlive a commit, since CREATE INDEX CONCURRENTLY and DETACH
 * PARTITION CONCURRENTLY commit between their start and their end; they are
 * dropped when their (sub)transaction aborts, and their memory is freed
 * whenever no frame is left.
 * --------------------------------------------------------------------- */

typedef struct GuardFrame
{
	BrandbosDdlFrame hdr;		/* must be first (ddl_frames.c) */
	List	   *unguarded;		/* OIDs */
	Oid			renamed;		/* ALTER TABLE ... RENAME TO: the table */
	NameData	renamed_from;	/* ... and its name before */
} GuardFrame;

static BrandbosDdlFrames guard_frames = {"brandbos protect guard", NULL, NIL};

/*
 * ALTER TABLE t RENAME TO u: the companion views follow the table by OID,
 * but they are found by name, so rename t_decrypted and t_safe to
 * u_decrypted and u_safe (as the extension owner, past the guard).  A view
 * that is not brandbos's, or a name already taken, leaves the check that
 * follows to refuse the rename.
 */
static void
follow_table_rename(Oid relid, const char *oldname)
{
	static const char *const suffixes[] = {"_decrypted", "_safe"};
	char	   *relname = get_rel_name(relid);
	Oid			nspid = get_rel_namespace(relid);
	Oid			ext_owner = brandbos_extension_owner();
	bool		is_protected = false;
	ListCell   *lc;
	int			i;

	if (relname == NULL || strcmp(relname, oldname) == 0)
		return;
	foreach(lc, registry_rows())
		if (((GuardedColumn *) lfirst(lc))->relid == relid)
			is_protected = true;
	if (!is_protected)
		return;
	for (i = 0; i < lengthof(suffixes); i++)
	{
		char	   *from = psprintf("%s%s", oldname, suffixes[i]);
		char	   *to = psprintf("%s%s", relname, suffixes[i]);
		Oid			viewid = get_relname_relid(from, nspid);
		BrandbosInternalState state;
		HeapTuple	tup;
		bool		ours;

		if (!OidIsValid(viewid) || strlen(to) >= NAMEDATALEN)
			continue;
		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(viewid));
		if (!HeapTupleIsValid(tup))
			continue;
		ours = ((Form_pg_class) GETSTRUCT(tup))->relkind == RELKIND_VIEW &&
			((Form_pg_class) GETSTRUCT(tup))->relowner == ext_owner;
		ReleaseSysCache(tup);
		if (!ours)
			continue;
		brandbos_spi_begin(&state, ext_owner);
		PG_TRY();
		{
			brandbos_protect_guard_bypass = true;
			if (SPI_execute(psprintf("ALTER VIEW %s RENAME TO %s",
									 quote_qualified_identifier(get_namespace_name(nspid), from),
									 quote_identifier(to)), false, 0) != SPI_OK_UTILITY)
				elog(ERROR, "could not rename view \"%s\"", from);
		}
		PG_FINALLY();
		{
			brandbos_protect_guard_bypass = false;
		}
		PG_END_TRY();
		brandbos_spi_end(&state);
	}
	CommandCounterIncrement();
}

static bool
guard_active(FunctionCallInfo fcinfo, const char *fn)
{
	if (!brandbos_ddl_guard_applies(fcinfo, fn))
		return false;
	return !brandbos_protect_guard_bypass && OidIsValid(brandbos_relid("column_registry"));
}

PG_FUNCTION_INFO_V1(brandbos_protect_guard_start);
/* SQL: brandbos.protect_guard_start() returns event_trigger */
Datum
brandbos_protect_guard_start(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	MemoryContext old;
	List	   *unguarded;
	GuardFrame *frame;

	if (!guard_active(fcinfo, "brandbos.protect_guard_start()"))
		PG_RETURN_VOID();
	trigdata = (EventTriggerData *) fcinfo->context;
	brandbos_protect_ddl_start(trigdata->parsetree);
	unguarded = unguarded_tables();
	old = MemoryContextSwitchTo(brandbos_ddl_frames_context(&guard_frames));
	frame = palloc(sizeof(GuardFrame));
	frame->unguarded = list_copy(unguarded);
	frame->renamed = InvalidOid;
	if (IsA(trigdata->parsetree, RenameStmt) &&
		((RenameStmt *) trigdata->parsetree)->renameType == OBJECT_TABLE &&
		((RenameStmt *) trigdata->parsetree)->relation != NULL)
	{
		frame->renamed = RangeVarGetRelid(((RenameStmt *) trigdata->parsetree)->relation,
										  NoLock, true);
		if (OidIsValid(frame->renamed))
			namestrcpy(&frame->renamed_from, get_rel_name(frame->renamed));
	}
	MemoryContextSwitchTo(old);
	brandbos_ddl_frame_push(&guard_frames, &frame->hdr, trigdata->parsetree);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_protect_guard_end);
/* SQL: brandbos.protect_guard_end() returns event_trigger */
Datum
brandbos_protect_guard_end(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	List	   *unguarded_before = NIL;
	Oid			renamed = InvalidOid;
	NameData	renamed_from;
	ListCell   *lc;
	GuardFrame *frame;

	if (!guard_active(fcinfo, "brandbos.protect_guard_end()"))
		PG_RETURN_VOID();
	trigdata = (EventTriggerData *) fcinfo->context;

	/* this command's frame; frames above it belong to failed nested commands */
	frame = (GuardFrame *) brandbos_ddl_frame_find(&guard_frames, trigdata->parsetree);
	if (frame != NULL)
	{
		unguarded_before = list_copy(frame->unguarded);
		renamed = frame->renamed;
		renamed_from = frame->renamed_from;
		brandbos_ddl_frame_drop(&guard_frames, &frame->hdr);
	}

	if (OidIsValid(renamed))
		follow_table_rename(renamed, NameStr(renamed_from));

	foreach(lc, registry_rows())
	{
		GuardedColumn *gc = lfirst(lc);
		char	   *problem;

		if (list_member_oid(unguarded_before, gc->relid))
			continue;
		problem = column_problem(gc);
		if (problem != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("%s would leave protected column \"%s\" of table \"%s\" unguarded",
							GetCommandTagName(trigdata->tag), NameStr(gc->name),
							get_rel_name(gc->relid)),
					 errdetail("After the command, %s.", problem),
					 errhint("Only brandbos.protect_column() and brandbos.unprotect_column() "
							 "change the protect trigger and the companion views; "
							 "unprotect the column first to change what it depends on.")));
	}
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * With preload: brandbos's event triggers stay on
 * --------------------------------------------------------------------- */

static ProcessUtility_hook_type prev_utility_hook = NULL;

/* is this an event trigger whose function lives in schema brandbos? */
static bool
is_brandbos_event_trigger(const char *name)
{
	Oid			evtoid = get_event_trigger_oid(name, true);
	Oid			nspid = get_namespace_oid(BRANDBOS_SCHEMA, true);
	HeapTuple	tup;
	Oid			fnoid;

	if (!OidIsValid(evtoid) || !OidIsValid(nspid))
		return false;
	tup = SearchSysCache1(EVENTTRIGGEROID, ObjectIdGetDatum(evtoid));
	if (!HeapTupleIsValid(tup))
		return false;
	fnoid = ((Form_pg_event_trigger) GETSTRUCT(tup))->evtfoid;
	ReleaseSysCache(tup);
	return get_func_namespace(fnoid) == nspid;
}

static void
refuse_event_trigger_change(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("changing event trigger \"%s\" is refused: it is one of brandbos's guards",
					name),
			 errdetail("With brandbos in shared_preload_libraries, its event triggers stay enabled for every role."),
			 errhint("DROP EXTENSION brandbos removes them together with the extension.")));
}

static void
protect_guard_utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						   ProcessUtilityContext context, ParamListInfo params,
						   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsTransactionState() &&
		!(creating_extension && CurrentExtensionObject == get_extension_oid("brandbos", true)))
	{
		switch (nodeTag(parsetree))
		{
			case T_AlterEventTrigStmt:
				{
					AlterEventTrigStmt *stmt = (AlterEventTrigStmt *) parsetree;

					if (stmt->tgenabled != TRIGGER_FIRES_ALWAYS &&
						is_brandbos_event_trigger(stmt->trigname))
						refuse_event_trigger_change(stmt->trigname);
					break;
				}
			case T_RenameStmt:
				{
					RenameStmt *stmt = (RenameStmt *) parsetree;

					if (stmt->renameType == OBJECT_EVENT_TRIGGER &&
						is_brandbos_event_trigger(strVal(stmt->object)))
						refuse_event_trigger_change(strVal(stmt->object));
					break;
				}
			case T_AlterOwnerStmt:
				{
					AlterOwnerStmt *stmt = (AlterOwnerStmt *) parsetree;

					if (stmt->objectType == OBJECT_EVENT_TRIGGER &&
						is_brandbos_event_trigger(strVal(stmt->object)))
						refuse_event_trigger_change(strVal(stmt->object));
					break;
				}
			case T_DropStmt:
				{
					DropStmt   *stmt = (DropStmt *) parsetree;
					ListCell   *lc;

					if (stmt->removeType != OBJECT_EVENT_TRIGGER)
						break;
					foreach(lc, stmt->objects)
						if (is_brandbos_event_trigger(strVal(lfirst(lc))))
							refuse_event_trigger_change(strVal(lfirst(lc)));
					break;
				}
			default:
				break;
		}
	}

	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

void
brandbos_protect_guard_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = protect_guard_utility_hook;
}
