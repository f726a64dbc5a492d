/*
 * protect_admin.c — putting protection on a table and taking it off:
 * protect_column, unprotect_column, the companion views, and the event
 * triggers that keep brandbos.column_registry true to the catalog.
 *
 * protect_column registers the column, adds the protect trigger (enabled
 * ALWAYS, so session_replication_role = replica does not skip it; PostgreSQL
 * clones it onto partitions), rebuilds <table>_decrypted and <table>_safe,
 * and seals what the table already holds.  unprotect_column decrypts the
 * column in place while it is still registered, then unregisters it, and
 * drops the trigger with the table's last protected column.
 *
 * Invariants:
 *   - the registry is written as the extension owner; the trigger and view
 *     statements are brandbos's own, run no user code, and pass
 *     protect_guard.c only through spi_run_ddl;
 *   - the companion views belong to the extension owner, so the table owner
 *     can neither replace nor alter what a decryptor reads through;
 *   - no row reaches a protected table without passing its trigger:
 *     ATTACH PARTITION seals the rows it brings, DETACH PARTITION of a
 *     protected table is refused before it runs (brandbos_protect_ddl_start,
 *     called by protect_guard.c), and so is table inheritance;
 *   - RENAME COLUMN keeps the column's id, so its values keep decrypting; a
 *     dropped table or column leaves the registry;
 *   - a hash-distributed Citus table is protected on every node at once
 *     (citus_columns.c); other Citus tables, shards and unprotect_column of
 *     a distributed table are refused with 0A000.
 */
#include "brandbos.h"
#include "table_shape.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#define PROTECT_TRIGGER_NAME "zz_brandbos_protect"

/* ---------------------------------------------------------------------
 * Helpers of the SQL functions
 * --------------------------------------------------------------------- */

typedef struct TargetColumn
{
	Oid			relid;
	char	   *nspname;
	char	   *relname;
	char	   *qualified;		/* quoted schema.table */
	char	   *colname;
	AttrNumber	attnum;
	bool		as_text;
	int			nkeys;
	char	  **key_names;		/* quoted */
} TargetColumn;

static void
require_args(FunctionCallInfo fcinfo, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument %d must not be null", i + 1)));
}

/* validate a table and column for protection and describe them */
static void
describe_target(Oid relid, const char *colname, TargetColumn *t, bool check_type)
{
	Relation	rel;
	AttrNumber *key_attnums;
	int			k;

	(void) brandbos_require_owned_table(relid);

	rel = table_open(relid, ShareRowExclusiveLock);
	if (check_type && !rel->rd_rel->relispartition &&
		(has_superclass(relid) ||
		 (rel->rd_rel->relkind == RELKIND_RELATION && has_subclass(relid))))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" takes part in table inheritance", RelationGetRelationName(rel)),
				 errdetail("Rows of an inheritance child are not written through the parent's trigger and would stay unsealed."),
				 errhint("Use declarative partitioning, or protect each table on its own.")));
	t->relid = relid;
	t->relname = pstrdup(RelationGetRelationName(rel));
	t->nspname = get_namespace_name(RelationGetNamespace(rel));
	t->qualified = quote_qualified_identifier(t->nspname, t->relname);
	t->colname = pstrdup(colname);
	t->attnum = InvalidAttrNumber;
	for (k = 0; k < RelationGetDescr(rel)->natts; k++)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), k);

		if (!att->attisdropped && strcmp(NameStr(att->attname), colname) == 0)
		{
			t->attnum = att->attnum;
			t->as_text = att->atttypid != BYTEAOID;
			if (check_type && att->atttypid != TEXTOID && att->atttypid != BYTEAOID)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("column \"%s\" of table \"%s\" is of type %s",
								colname, t->relname, format_type_be(att->atttypid)),
						 errdetail("Only text and bytea columns can be protected.")));
		}
	}
	if (t->attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist", colname, t->relname)));

	t->nkeys = brandbos_require_bindable_primary_key(rel, t->attnum, check_type, &key_attnums);
	t->key_names = palloc(sizeof(char *) * t->nkeys);
	for (k = 0; k < t->nkeys; k++)
		t->key_names[k] = pstrdup(quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel), key_attnums[k] - 1)->attname)));
	table_close(rel, NoLock);
}

/*
 * Run one of brandbos's own trigger or view statements past the guard of
 * protect_guard.c.  Only statements that run no user code go through here.
 */
static void
spi_run_ddl(const char *sql)
{
	PG_TRY();
	{
		brandbos_protect_guard_bypass = true;
		brandbos_sql_exec(sql, 0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	}
	PG_FINALLY();
	{
		brandbos_protect_guard_bypass = false;
	}
	PG_END_TRY();
}

/* run a companion view's CREATE, then give it to PUBLIC for nobody and to grantee for SELECT */
static void
create_companion_view(const char *create_sql, const char *nspname, const char *view,
					  const char *grantee, bool with_grant_option, const char *comment)
{
	char	   *qualified = quote_qualified_identifier(nspname, view);

	spi_run_ddl(create_sql);
	spi_run_ddl(psprintf("REVOKE ALL ON %s FROM PUBLIC", qualified));
	spi_run_ddl(psprintf("GRANT SELECT ON %s TO %s%s", qualified, quote_identifier(grantee),
						 with_grant_option ? " WITH GRANT OPTION" : ""));
	spi_run_ddl(psprintf("COMMENT ON VIEW %s IS %s", qualified, quote_literal_cstr(comment)));
}

typedef struct RegisteredColumn
{
	char	   *name;
	char	   *column_id;		/* uuid text */
} RegisteredColumn;

/*
 * Registry rows of a table, copied into cxt.  Runs inside an SPI connection
 * (as the extension owner).
 */
static List *
registered_columns(Oid relid, MemoryContext cxt)
{
	Oid			argtype = REGCLASSOID;
	Datum		arg = ObjectIdGetDatum(relid);
	List	   *result = NIL;
	uint64		i;

	brandbos_sql_exec("SELECT column_name::text, column_id::text FROM brandbos.column_registry "
					  "WHERE table_oid = $1 ORDER BY column_name", 1, &argtype, &arg, NULL, false, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *id = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		RegisteredColumn *rc = palloc(sizeof(RegisteredColumn));

		rc->name = pstrdup(name);
		rc->column_id = pstrdup(id);
		result = lappend(result, rc);
		MemoryContextSwitchTo(old);
	}
	return result;
}

static RegisteredColumn *
find_registered(List *columns, const char *name)
{
	ListCell   *lc;

	foreach(lc, columns)
	{
		RegisteredColumn *rc = lfirst(lc);

		if (strcmp(rc->name, name) == 0)
			return rc;
	}
	return NULL;
}

/* name of a companion view: <table><suffix>, checked against NAMEDATALEN */
static char *
companion_view_name(TargetColumn *t, const char *suffix)
{
	char	   *name = psprintf("%s%s", t->relname, suffix);

	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("view name \"%s\" would be longer than %d bytes", name, NAMEDATALEN - 1),
				 errhint("Rename the table to something shorter.")));
	return name;
}

/* drop a companion view if it exists; refuse if the name is not a view */
static void
drop_companion_view(TargetColumn *t, const char *viewname)
{
	Oid			viewid = get_relname_relid(viewname, get_namespace_oid(t->nspname, false));

	if (!OidIsValid(viewid))
		return;
	if (get_rel_relkind(viewid) != RELKIND_VIEW)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s\" already exists and is not a view", viewname),
				 errhint("brandbos needs that name for a companion view; rename the relation.")));
	spi_run_ddl(psprintf("DROP VIEW %s", quote_qualified_identifier(t->nspname, viewname)));
}

/*
 * (Re)create <table>_decrypted and <table>_safe for the registered columns;
 * with none left, only drop them.  The views belong to the extension owner,
 * so the table owner can neither replace nor alter the definition a
 * decryptor reads through (protect_guard.c refuses the rest); the table
 * owner may read <table>_safe and grant it on.
 */
static void
rebuild_views(TargetColumn *t, List *columns)
{
	char	   *decrypted = companion_view_name(t, "_decrypted");
	char	   *safe = companion_view_name(t, "_safe");
	StringInfoData dsql,
				ssql;
	Relation	rel;
	TupleDesc	tupdesc;
	Oid			table_owner;
	char	   *owner_name;
	BrandbosInternalState state;
	bool		dfirst = true,
				sfirst = true;
	int			a,
				k;

	brandbos_spi_begin(&state, brandbos_extension_owner());
	drop_companion_view(t, decrypted);
	drop_companion_view(t, safe);
	if (columns == NIL)
	{
		brandbos_spi_end(&state);
		return;
	}

	initStringInfo(&dsql);
	initStringInfo(&ssql);
	appendStringInfo(&dsql, "CREATE VIEW %s WITH (security_invoker = true) AS SELECT ",
					 quote_qualified_identifier(t->nspname, decrypted));
	appendStringInfo(&ssql, "CREATE VIEW %s WITH (security_invoker = true) AS SELECT ",
					 quote_qualified_identifier(t->nspname, safe));

	rel = table_open(t->relid, AccessShareLock);
	tupdesc = RelationGetDescr(rel);
	table_owner = rel->rd_rel->relowner;
	for (a = 0; a < tupdesc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, a);
		const char *col;
		RegisteredColumn *reg;

		if (att->attisdropped)
			continue;
		col = quote_identifier(NameStr(att->attname));
		reg = find_registered(columns, NameStr(att->attname));
		if (!dfirst)
			appendStringInfoString(&dsql, ", ");
		dfirst = false;
		if (reg == NULL)
		{
			appendStringInfo(&dsql, "t.%s", col);
			if (!sfirst)
				appendStringInfoString(&ssql, ", ");
			sfirst = false;
			appendStringInfo(&ssql, "t.%s", col);
			continue;
		}
		appendStringInfo(&dsql, "brandbos.decrypt_column(%s::uuid, t.%s",
						 quote_literal_cstr(reg->column_id), col);
		for (k = 0; k < t->nkeys; k++)
			appendStringInfo(&dsql, ", t.%s", t->key_names[k]);
		appendStringInfo(&dsql, ") AS %s", col);
	}
	table_close(rel, AccessShareLock);
	appendStringInfo(&dsql, " FROM %s t", t->qualified);
	appendStringInfo(&ssql, " FROM %s t", t->qualified);

	owner_name = GetUserNameFromId(table_owner, false);

	create_companion_view(dsql.data, t->nspname, decrypted, BRANDBOS_ROLE_DECRYPTOR, false,
						  psprintf("plaintext of %s for brandbos_decryptor; made by brandbos.protect_column", t->relname));
	if (!sfirst)
		create_companion_view(ssql.data, t->nspname, safe, owner_name, true,
							  psprintf("%s without its protected columns; made by brandbos.protect_column", t->relname));
	brandbos_spi_end(&state);
}

static bool
trigger_exists(Oid relid)
{
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2];

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(PROTECT_TRIGGER_NAME);
	brandbos_sql_exec("SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2::name", 2, types, values, NULL, false, SPI_OK_SELECT);
	return SPI_processed > 0;
}

/* ---------------------------------------------------------------------
 * SQL functions
 * --------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(brandbos_protect_column);
/* SQL: brandbos.protect_column(tbl regclass, col name) returns void */
Datum
brandbos_protect_column(PG_FUNCTION_ARGS)
{
	TargetColumn t;
	BrandbosInternalState state;
	List	   *columns;
	Oid			types[2] = {REGCLASSOID, NAMEOID};
	Datum		values[2];
	MemoryContext caller_cxt = CurrentMemoryContext;
	int			citus_nest;

	/*
	 * On a standby: PostgreSQL's read-only error (25006), before the locks
	 * that recovery would refuse with 55000.
	 */
	PreventCommandDuringRecovery("brandbos.protect_column()");
	require_args(fcinfo, 2);
	describe_target(PG_GETARG_OID(0), NameStr(*PG_GETARG_NAME(1)), &t, true);
	/* a hash-distributed Citus table goes on below and in citus_columns.c */
	citus_nest = brandbos_citus_protect_check(t.relid, "brandbos.protect_column()");

	/* sealing needs a key: fail now, before any DDL, if there is none */
	(void) brandbos_active_key_version();

	/* register the column (as the extension owner) */
	brandbos_spi_begin(&state, brandbos_extension_owner());
	values[0] = ObjectIdGetDatum(t.relid);
	values[1] = PG_GETARG_DATUM(1);
	brandbos_sql_exec("INSERT INTO brandbos.column_registry (table_oid, column_name) "
					  "VALUES ($1, $2) ON CONFLICT (table_oid, column_name) DO NOTHING", 2, types, values, NULL, false, SPI_OK_INSERT);
	columns = registered_columns(t.relid, caller_cxt);
	brandbos_spi_end(&state);
	CacheInvalidateRelcacheByRelid(t.relid);
	CommandCounterIncrement();

	/*
	 * Trigger, views and sealing of existing rows (as the caller, the owner).
	 * For a distributed table the trigger is made as the extension owner:
	 * Citus creates it on the shards over that role's connections, the same
	 * ones that then carry the registry and keys (citus_columns.c).
	 */
	brandbos_spi_begin(&state, citus_nest >= 0 ? brandbos_extension_owner() : GetUserId());
	{
		char	   *create = trigger_exists(t.relid) ? NULL :
			psprintf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE ON %s "
					 "FOR EACH ROW EXECUTE FUNCTION brandbos.protect_trigger()",
					 quote_identifier(PROTECT_TRIGGER_NAME), t.qualified);
		/* session_replication_role = replica must not skip it (partitions follow) */
		char	   *enable = psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s", t.qualified,
									  quote_identifier(PROTECT_TRIGGER_NAME));

		if (citus_nest >= 0)
		{
			/*
			 * In a DO block, which Citus runs as a multi-statement
			 * transaction: the shards on this node get the trigger in this
			 * very backend (local execution), not over a connection to
			 * itself, so they can be sealed below (citus_columns.c).
			 */
			spi_run_ddl(psprintf("DO %s",
								 quote_literal_cstr(psprintf("BEGIN %s%s%s; END",
															 create ? create : "",
															 create ? "; " : "",
															 enable))));
		}
		else
		{
			if (create)
				spi_run_ddl(create);
			spi_run_ddl(enable);
		}
	}
	rebuild_views(&t, columns);
	CommandCounterIncrement();
	/* nothing the owner planted earlier may see the plaintext (protect_guard.c) */
	{
		char	   *problem = brandbos_protection_problem(t.relid, t.attnum);

		if (problem != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("column \"%s\" of table \"%s\" cannot be protected", t.colname, t.relname),
					 errdetail("After protect_column, %s.", problem),
					 errhint("Drop or rename what the detail names, then call brandbos.protect_column() again.")));
	}
	brandbos_spi_end(&state);

	/*
	 * Seal what the table already holds, in C and without row level
	 * security, so rows hidden from the owner are sealed too and values
	 * that merely look like envelopes are not trusted.
	 */
	CommandCounterIncrement();
	if (citus_nest >= 0)
	{
		/* the other nodes' registry and keys, and the shards' rows */
		brandbos_citus_protect_propagate(t.relid, t.colname);
		brandbos_citus_protect_done(citus_nest);
	}
	else
		brandbos_seal_existing_values(t.relid);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_unprotect_column);
/* SQL: brandbos.unprotect_column(tbl regclass, col name) returns void */
Datum
brandbos_unprotect_column(PG_FUNCTION_ARGS)
{
	TargetColumn t;
	BrandbosInternalState state;
	List	   *columns;
	Oid			types[2] = {REGCLASSOID, NAMEOID};
	Datum		values[2];
	MemoryContext caller_cxt = CurrentMemoryContext;

	PreventCommandDuringRecovery("brandbos.unprotect_column()");	/* as above */
	require_args(fcinfo, 2);
	describe_target(PG_GETARG_OID(0), NameStr(*PG_GETARG_NAME(1)), &t, false);
	brandbos_refuse_citus_table(t.relid, "brandbos.unprotect_column()");
	brandbos_require_role(BRANDBOS_ROLE_DECRYPTOR, "unprotect a column");

	brandbos_spi_begin(&state, brandbos_extension_owner());
	columns = registered_columns(t.relid, caller_cxt);
	brandbos_spi_end(&state);
	if (find_registered(columns, t.colname) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("column \"%s\" of table \"%s\" is not protected", t.colname, t.relname)));

	/*
	 * Decrypt in place while the column is still registered, so the audit
	 * trigger keeps recording it as "[protected]" and no plaintext reaches
	 * the audit log; in C as the owner, so row security hides no row.
	 */
	brandbos_unprotect_values(t.relid, t.colname);

	brandbos_spi_begin(&state, brandbos_extension_owner());
	values[0] = ObjectIdGetDatum(t.relid);
	values[1] = PG_GETARG_DATUM(1);
	brandbos_sql_exec("DELETE FROM brandbos.column_registry WHERE table_oid = $1 AND column_name = $2", 2, types, values, NULL, false, SPI_OK_DELETE);
	columns = registered_columns(t.relid, caller_cxt);
	brandbos_spi_end(&state);
	CacheInvalidateRelcacheByRelid(t.relid);
	CommandCounterIncrement();

	brandbos_spi_begin(&state, GetUserId());
	if (columns == NIL && trigger_exists(t.relid))
		spi_run_ddl(psprintf("DROP TRIGGER %s ON %s", quote_identifier(PROTECT_TRIGGER_NAME),
							 t.qualified));
	rebuild_views(&t, columns);
	brandbos_spi_end(&state);
	PG_RETURN_VOID();
}

/* is the table, or a partitioned table it is a partition of, protected? */
static bool
protected_here_or_above(Oid relid)
{
	ListCell   *lc;

	if (brandbos_table_is_protected(relid))
		return true;
	if (!get_rel_relispartition(relid))
		return false;
	foreach(lc, get_partition_ancestors(relid))
		if (brandbos_table_is_protected(lfirst_oid(lc)))
			return true;
	return false;
}

static void
refuse_inheritance(Oid relid)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("table \"%s\" has protected columns and cannot take part in table inheritance",
					get_rel_name(relid)),
			 errdetail("Rows of an inheritance child are not written through the parent's trigger and would stay unsealed."),
			 errhint("Use declarative partitioning instead.")));
}

/*
 * ALTER TABLE ... ATTACH PARTITION brings rows that never passed the
 * protect trigger: seal them now (as each partition's owner, without RLS).
 * INHERIT of or from a protected table is refused.
 */
static void
protect_alter_table(AlterTableStmt *stmt)
{
	Oid			relid;
	ListCell   *lc;

	if (stmt->relation == NULL)
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return;
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		if (cmd->subtype == AT_AttachPartition && IsA(cmd->def, PartitionCmd))
		{
			Oid			part = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name, NoLock, true);

			if (OidIsValid(part) && protected_here_or_above(relid))
				brandbos_seal_existing_values(part);
		}
		else if (cmd->subtype == AT_AddInherit && IsA(cmd->def, RangeVar))
		{
			Oid			parent = RangeVarGetRelid((RangeVar *) cmd->def, NoLock, true);

			if (brandbos_table_is_protected(relid))
				refuse_inheritance(relid);
			if (OidIsValid(parent) && brandbos_table_is_protected(parent))
				refuse_inheritance(parent);
		}
	}
}

/*
 * Before a DDL command runs: DETACH PARTITION of a partition of a protected
 * table is refused.  PostgreSQL drops the cloned protect trigger on detach,
 * so later writes to the detached table would be stored unsealed, and its
 * envelopes would leave every count (destroy_key could shred them).
 */
void
brandbos_protect_ddl_start(Node *parsetree)
{
	AlterTableStmt *stmt;
	Oid			relid;
	ListCell   *lc;

	if (!IsA(parsetree, AlterTableStmt))
		return;
	stmt = (AlterTableStmt *) parsetree;
	if (stmt->relation == NULL)
		return;
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		if (cmd->subtype != AT_DetachPartition && cmd->subtype != AT_DetachPartitionFinalize)
			continue;
		relid = RangeVarGetRelid(stmt->relation, NoLock, true);
		if (OidIsValid(relid) && protected_here_or_above(relid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a partition of protected table \"%s\" cannot be detached",
							get_rel_name(relid)),
					 errdetail("The detached table would lose the protect trigger and its values would leave key management."),
					 errhint("Call brandbos.unprotect_column() first, detach, then protect the tables again.")));
	}
}

/* CREATE TABLE ... INHERITS (a protected table) is refused */
static void
protect_create_table(CreateStmt *stmt)
{
	ListCell   *lc;

	if (stmt->partbound != NULL)
		return;					/* a partition: the trigger is cloned onto it */
	foreach(lc, stmt->inhRelations)
	{
		Oid			parent = RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true);

		if (OidIsValid(parent) && brandbos_table_is_protected(parent))
			refuse_inheritance(parent);
	}
}

PG_FUNCTION_INFO_V1(brandbos_registry_ddl);
/*
 * SQL: brandbos.registry_ddl() returns event_trigger
 *
 * Keeps brandbos.column_registry in step with ALTER TABLE ... RENAME
 * COLUMN, so a protected column keeps its id (and its values keep
 * decrypting) under its new name.
 */
Datum
brandbos_registry_ddl(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	RenameStmt *stmt;
	Oid			relid;
	BrandbosInternalState state;
	Oid			types[3] = {TEXTOID, REGCLASSOID, TEXTOID};
	Datum		values[3];
	uint64		renamed;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.registry_ddl() must be called as an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;
	if (IsA(trigdata->parsetree, AlterTableStmt))
	{
		protect_alter_table((AlterTableStmt *) trigdata->parsetree);
		PG_RETURN_VOID();
	}
	if (IsA(trigdata->parsetree, CreateStmt))
	{
		protect_create_table((CreateStmt *) trigdata->parsetree);
		PG_RETURN_VOID();
	}
	if (!IsA(trigdata->parsetree, RenameStmt))
		PG_RETURN_VOID();
	stmt = (RenameStmt *) trigdata->parsetree;
	if (stmt->renameType != OBJECT_COLUMN || stmt->relation == NULL)
		PG_RETURN_VOID();
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		PG_RETURN_VOID();

	values[0] = CStringGetTextDatum(stmt->newname);
	values[1] = ObjectIdGetDatum(relid);
	values[2] = CStringGetTextDatum(stmt->subname);
	brandbos_spi_begin(&state, brandbos_extension_owner());
	brandbos_sql_exec("UPDATE brandbos.column_registry SET column_name = $1::name "
					  "WHERE table_oid = $2 AND column_name = $3::name", 3, types, values, NULL, false, SPI_OK_UPDATE);
	renamed = SPI_processed;
	brandbos_spi_end(&state);
	if (renamed > 0)
		CacheInvalidateRelcacheByRelid(relid);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_registry_drop);
/*
 * SQL: brandbos.registry_drop() returns event_trigger (sql_drop)
 *
 * A dropped table or protected column leaves brandbos.column_registry; a
 * table whose last protected column went loses the protect trigger, which
 * would otherwise refuse every write.
 */
Datum
brandbos_registry_drop(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	uint64		i;
	List	   *orphans = NIL;
	ListCell   *lc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.registry_drop() must be called as an event trigger")));

	brandbos_spi_begin(&state, brandbos_extension_owner());
	brandbos_sql_exec("WITH d AS ("
					  " DELETE FROM brandbos.column_registry r"
					  "  USING pg_catalog.pg_event_trigger_dropped_objects() d"
					  "  WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
					  "    AND r.table_oid::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid"
					  "    AND (d.objsubid OPERATOR(pg_catalog.=) 0"
					  "         OR r.column_name OPERATOR(pg_catalog.=) d.address_names[3])"
					  " RETURNING r.table_oid::pg_catalog.oid AS relid)"
					  " SELECT DISTINCT d.relid FROM d", 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1, &isnull));

		orphans = lappend_oid(orphans, relid);
	}
	/* the DELETE above is visible to the check below */
	CommandCounterIncrement();
	foreach(lc, orphans)
	{
		Oid			relid = lfirst_oid(lc);
		char	   *relname = get_rel_name(relid);

		if (relname == NULL || brandbos_table_is_protected(relid) || !trigger_exists(relid))
			continue;			/* the table itself is gone, or still protected */
		spi_run_ddl(psprintf("DROP TRIGGER %s ON %s", quote_identifier(PROTECT_TRIGGER_NAME),
							 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
														relname)));
	}
	brandbos_spi_end(&state);
	PG_RETURN_VOID();
}
