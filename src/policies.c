/*
 * policies.c — one-call Row Level Security for tenant and owner isolation.
 *
 * enable_tenant_isolation / enable_owner_isolation give a table, and every
 * partition (or inheritance child) below it, ENABLE and FORCE ROW LEVEL
 * SECURITY, one RESTRICTIVE policy per command comparing the column with
 * the request context (typed to the column: text helpers for text and
 * varchar, uuid helpers for uuid; isolation_check.c writes the expression),
 * the permissive brandbos_base (USING true) without which restrictive
 * policies would hide every row — only for the commands no permissive
 * policy of the table's own admits, so enabling isolation never widens
 * them — the BEFORE TRUNCATE trigger of owner_only.c (row level security
 * does not apply to TRUNCATE), the context as the column's default (not
 * on the distribution column of a Citus table, which cannot have one), and,
 * on the table called for, an index leading with the column (a partitioned
 * index covers the partitions).  Restrictive policies are ANDed: tenant and
 * owner isolation mean both, and no permissive policy widens them.  The
 * policies call STABLE C helpers directly — no subquery, so they work where
 * subqueries in policies are not allowed (Citus), cost one function call
 * per row, and keep the tenant comparison an index condition.
 *
 * Every statement is built with quoted identifiers and run as the caller,
 * who must own the table and each partition.  isolation_guard.c calls
 * brandbos_isolation_apply() for partitions that join later.
 */
#include "brandbos.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

bool		brandbos_isolation_running = false;

static bool
exists(const char *sql, Oid relid, const char *name)
{
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2];

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(name ? name : "");
	if (SPI_execute_with_args(sql, 2, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "internal query failed: %s", sql);
	return SPI_processed > 0;
}

static void
drop_policy(Oid relid, const char *table, const char *policy)
{
	if (exists("SELECT 1 FROM pg_catalog.pg_policy WHERE polrelid = $1 AND polname = $2::name",
			   relid, policy))
		brandbos_sql_run(psprintf("DROP POLICY %s ON %s", quote_identifier(policy), table));
}

/* checks shared by the functions; returns the quoted qualified name */
static char *
isolation_target(FunctionCallInfo fcinfo, int nargs, Oid *relid_out)
{
	Oid			relid;
	int			i;

	for (i = 0; i < nargs; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument %d must not be null", i + 1)));
	relid = PG_GETARG_OID(0);
	*relid_out = relid;
	return brandbos_require_owned_table(relid);
}

/* the table and every partition (or inheritance child) below it, each owned by the caller */
static List *
isolation_tree(Oid relid)
{
	List	   *rels;
	ListCell   *lc;

	/*
	 * Lock the table before reading its partitions: a partition attached
	 * meanwhile either committed before (and is in the list) or waits, and
	 * its guard then sees this call's policies.
	 */
	LockRelationOid(relid, AccessExclusiveLock);
	rels = find_all_inheritors(relid, AccessExclusiveLock, NULL);

	foreach(lc, rels)
		(void) brandbos_require_owned_table(lfirst_oid(lc));
	return rels;
}

/*
 * brandbos_base admits rows for the commands that no other permissive
 * policy admits: for ALL when the table has no permissive policy of its
 * own, else one brandbos_base_<command> per command none covers.  A
 * command the table's own permissive policies cover keeps them as the only
 * admission (ORed with USING (true) they would admit every row).
 */
static void
base_policies(Oid relid, const char *table)
{
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(relid);
	bool		covered[4] = {false, false, false, false};
	bool		any = false;
	uint64		r;
	int			i;

	drop_policy(relid, table, "brandbos_base");
	for (i = 0; i < 4; i++)
		drop_policy(relid, table, psprintf("brandbos_base_%s", brandbos_isolation_commands[i]));
	if (SPI_execute_with_args("SELECT polcmd FROM pg_catalog.pg_policy WHERE polrelid = $1 "
							  "AND polpermissive AND polname::text NOT LIKE 'brandbos\\_%'",
							  1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_policy");
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		char		cmd = DatumGetChar(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));

		any = true;
		for (i = 0; i < 4; i++)
			if (cmd == '*' || cmd == brandbos_isolation_command_chars[i])
				covered[i] = true;
	}
	if (!any)
	{
		brandbos_sql_run(psprintf("CREATE POLICY brandbos_base ON %s AS PERMISSIVE FOR ALL USING (true) WITH CHECK (true)",
								  table));
		return;
	}
	for (i = 0; i < 4; i++)
	{
		const char *command = brandbos_isolation_commands[i];
		const char *clause;

		if (covered[i])
			continue;
		clause = strcmp(command, "insert") == 0 ? "WITH CHECK (true)" :
			strcmp(command, "update") == 0 ? "USING (true) WITH CHECK (true)" : "USING (true)";
		brandbos_sql_run(psprintf("CREATE POLICY %s ON %s AS PERMISSIVE FOR %s %s",
								  quote_identifier(psprintf("brandbos_base_%s", command)), table, command, clause));
	}
}

/* the BEFORE TRUNCATE statement trigger refusing non-owners (owner_only.c), recreated */
static void
truncate_guard(Oid relid, const char *table)
{
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(relid);
	List	   *names = NIL;
	ListCell   *lc;
	uint64		r;
	MemoryContext caller = CurrentMemoryContext;

	if (SPI_execute_with_args("SELECT tgname::text FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgparentid = 0 "
							  "AND (tgfoid = 'brandbos.isolation_truncate_guard()'::pg_catalog.regprocedure "
							  "OR tgname = '" BRANDBOS_TRUNCATE_GUARD_NAME "')",
							  1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_trigger");
	for (r = 0; r < SPI_processed; r++)
		names = lappend(names, MemoryContextStrdup(caller, SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1)));
	foreach(lc, names)
		brandbos_sql_run(psprintf("DROP TRIGGER %s ON %s", quote_identifier(lfirst(lc)), table));
	brandbos_sql_run(psprintf("CREATE TRIGGER %s BEFORE TRUNCATE ON %s FOR EACH STATEMENT "
							  "EXECUTE FUNCTION brandbos.isolation_truncate_guard()",
							  BRANDBOS_TRUNCATE_GUARD_NAME, table));
	brandbos_sql_run(psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s", table, BRANDBOS_TRUNCATE_GUARD_NAME));
}

void
brandbos_isolation_apply(Oid relid, const BrandbosIsolation *iso)
{
	BrandbosInternalState state;
	char	   *table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												   get_rel_name(relid));
	bool		save_running = brandbos_isolation_running;
	int			k;

	brandbos_spi_begin(&state, GetUserId());
	brandbos_isolation_running = true;
	PG_TRY();
	{
		brandbos_sql_run(psprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", table));
		brandbos_sql_run(psprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY", table));
		for (k = 0; k < 2; k++)
		{
			bool		owner = (k == 1);
			const char *col = owner ? iso->owner_col : iso->tenant_col;
			char	   *check;
			int			i;

			if (col[0] == '\0')
				continue;
			check = brandbos_isolation_qual_sql(relid, owner, iso);
			if (check == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("column \"%s\" of relation \"%s\" cannot be isolated", col, get_rel_name(relid)),
						 errdetail("Isolation columns must be text, varchar or uuid.")));
			for (i = 0; i < 4; i++)
			{
				const char *command = brandbos_isolation_commands[i];
				const char *policy = quote_identifier(psprintf("brandbos_%s_%s", owner ? "owner" : "tenant", command));

				drop_policy(relid, table, psprintf("brandbos_%s_%s", owner ? "owner" : "tenant", command));
				if (strcmp(command, "insert") == 0)
					brandbos_sql_run(psprintf("CREATE POLICY %s ON %s AS RESTRICTIVE FOR INSERT WITH CHECK %s",
											  policy, table, check));
				else if (strcmp(command, "update") == 0)
					brandbos_sql_run(psprintf("CREATE POLICY %s ON %s AS RESTRICTIVE FOR UPDATE USING %s WITH CHECK %s",
											  policy, table, check, check));
				else
					brandbos_sql_run(psprintf("CREATE POLICY %s ON %s AS RESTRICTIVE FOR %s USING %s",
											  policy, table, command, check));
			}
			/*
			 * Citus cannot give a distribution column a default (a row's
			 * shard is known before its defaults): there the application
			 * gives the column, and WITH CHECK still holds it to the context.
			 */
			if (!brandbos_citus_is_distribution_column(relid, col))
				brandbos_sql_run(psprintf("ALTER TABLE ONLY %s ALTER COLUMN %s SET DEFAULT %s", table,
										  quote_identifier(col), brandbos_isolation_helper(relid, col, owner)));
		}

		/*
		 * Restrictive policies only narrow what a permissive one admits, and
		 * with none every row is hidden: brandbos_base admits every row, the
		 * restrictive isolation policies keep the tenant's (and the user's).
		 * The admin crossing of users lives in the owner policies; the
		 * permissive brandbos_admin of older versions crossed tenants.
		 */
		drop_policy(relid, table, "brandbos_admin");
		base_policies(relid, table);
		truncate_guard(relid, table);
	}
	PG_FINALLY();
	{
		brandbos_isolation_running = save_running;
	}
	PG_END_TRY();
	brandbos_spi_end(&state);
}

static void
enable_isolation(FunctionCallInfo fcinfo, bool owner)
{
	BrandbosInternalState state;
	Oid			relid;
	char	   *table = isolation_target(fcinfo, 2, &relid);
	const char *colname = NameStr(*PG_GETARG_NAME(1));
	AttrNumber	attnum = get_attnum(relid, colname);
	Oid			typid;
	List	   *rels;
	List	   *isos = NIL;
	ListCell   *lc;
	int			i;

	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist", colname, get_rel_name(relid))));
	typid = getBaseType(get_atttype(relid, attnum));
	if (typid != TEXTOID && typid != VARCHAROID && typid != UUIDOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" is of type %s", colname, format_type_be(typid)),
				 errdetail("Isolation columns must be text, varchar or uuid.")));

	/* what each relation of the tree must carry, read before any of it changes */
	rels = isolation_tree(relid);
	foreach(lc, rels)
	{
		BrandbosIsolation *iso = palloc(sizeof(BrandbosIsolation));

		brandbos_isolation_expected(lfirst_oid(lc), iso);
		strlcpy(owner ? iso->owner_col : iso->tenant_col, colname, NAMEDATALEN);
		isos = lappend(isos, iso);
	}
	for (i = 0; i < list_length(rels); i++)
	{
		brandbos_isolation_apply(list_nth_oid(rels, i), list_nth(isos, i));
		CommandCounterIncrement();
	}

	/* an index leading with the column, unless one exists (a partitioned one covers every partition) */
	brandbos_spi_begin(&state, GetUserId());
	{
		Oid			types[2] = {OIDOID, INT2OID};
		Datum		values[2];

		values[0] = ObjectIdGetDatum(relid);
		values[1] = Int16GetDatum(attnum);
		if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_index WHERE indrelid = $1 AND indkey[0] = $2",
								  2, types, values, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read pg_index");
		if (SPI_processed == 0)
			brandbos_sql_run(psprintf("CREATE INDEX ON %s (%s)", table, quote_identifier(colname)));
	}
	brandbos_spi_end(&state);
}

PG_FUNCTION_INFO_V1(brandbos_enable_tenant_isolation);
/* SQL: brandbos.enable_tenant_isolation(tbl regclass, tenant_column name default 'tenant_id') returns void */
Datum
brandbos_enable_tenant_isolation(PG_FUNCTION_ARGS)
{
	/*
	 * On a standby: PostgreSQL's read-only error (25006), before the
	 * AccessExclusiveLock that recovery would refuse with 55000.
	 */
	PreventCommandDuringRecovery("brandbos.enable_tenant_isolation()");
	enable_isolation(fcinfo, false);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_enable_owner_isolation);
/* SQL: brandbos.enable_owner_isolation(tbl regclass, owner_column name default 'user_id') returns void */
Datum
brandbos_enable_owner_isolation(PG_FUNCTION_ARGS)
{
	PreventCommandDuringRecovery("brandbos.enable_owner_isolation()");	/* as above */
	enable_isolation(fcinfo, true);
	PG_RETURN_VOID();
}

/* drop brandbos's policies and defaults of one relation and turn its row level security off */
static bool
disable_one(Oid relid)
{
	char	   *table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												   get_rel_name(relid));
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(relid);
	List	   *policies = NIL;
	List	   *columns = NIL;
	List	   *triggers = NIL;
	ListCell   *lc;
	uint64		i;
	MemoryContext caller = CurrentMemoryContext;

	if (SPI_execute_with_args("SELECT polname::text FROM pg_catalog.pg_policy WHERE polrelid = $1 "
							  "AND polname::text LIKE 'brandbos\\_%'", 1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_policy");
	for (i = 0; i < SPI_processed; i++)
		policies = lappend(policies, MemoryContextStrdup(caller, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
	if (policies == NIL)
		return false;
	if (SPI_execute_with_args("SELECT a.attname::text FROM pg_catalog.pg_attrdef d "
							  "JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
							  "WHERE d.adrelid = $1 AND pg_catalog.pg_get_expr(d.adbin, d.adrelid) "
							  "LIKE 'brandbos.current\\_%'", 1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_attrdef");
	for (i = 0; i < SPI_processed; i++)
		columns = lappend(columns, MemoryContextStrdup(caller, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));

	if (SPI_execute_with_args("SELECT tgname::text FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgparentid = 0 "
							  "AND tgfoid = 'brandbos.isolation_truncate_guard()'::pg_catalog.regprocedure",
							  1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_trigger");
	for (i = 0; i < SPI_processed; i++)
		triggers = lappend(triggers, MemoryContextStrdup(caller, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));

	foreach(lc, policies)
		brandbos_sql_run(psprintf("DROP POLICY %s ON %s", quote_identifier(lfirst(lc)), table));
	foreach(lc, triggers)
		brandbos_sql_run(psprintf("DROP TRIGGER %s ON %s", quote_identifier(lfirst(lc)), table));
	foreach(lc, columns)
		brandbos_sql_run(psprintf("ALTER TABLE ONLY %s ALTER COLUMN %s DROP DEFAULT", table, quote_identifier(lfirst(lc))));
	brandbos_sql_run(psprintf("ALTER TABLE %s NO FORCE ROW LEVEL SECURITY", table));
	brandbos_sql_run(psprintf("ALTER TABLE %s DISABLE ROW LEVEL SECURITY", table));
	return true;
}

PG_FUNCTION_INFO_V1(brandbos_disable_isolation);
/* SQL: brandbos.disable_isolation(tbl regclass) returns void */
Datum
brandbos_disable_isolation(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	Oid			relid;
	char	   *table;
	List	   *rels;
	ListCell   *lc;

	PreventCommandDuringRecovery("brandbos.disable_isolation()");	/* as above */
	table = isolation_target(fcinfo, 1, &relid);
	rels = isolation_tree(relid);
	brandbos_spi_begin(&state, GetUserId());
	foreach(lc, rels)
	{
		if (!disable_one(lfirst_oid(lc)) && lfirst_oid(lc) == relid)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("table %s has no brandbos isolation", table)));
	}
	brandbos_spi_end(&state);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_rls_report);
/*
 * SQL: brandbos.rls_report(schemas name[] default array['public'])
 *      returns table(table_name regclass, rls_enabled boolean, rls_forced boolean,
 *                    policies int, problems text[])
 *
 * Tables and views of the schemas, and every partition (or inheritance
 * child) of those tables wherever it lives; isolation_check.c adds what
 * departs from the isolation each relation must carry.
 */
Datum
brandbos_rls_report(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	BrandbosInternalState state;
	Oid			argtype = NAMEARRAYOID;
	Datum		arg;
	uint64		i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("schemas must not be null")));
	arg = PG_GETARG_DATUM(0);
	InitMaterializedSRF(fcinfo, 0);

	brandbos_spi_begin(&state, GetUserId());
	if (SPI_execute_with_args(
							  "WITH RECURSIVE tree(oid) AS ("
							  "  SELECT c.oid FROM pg_catalog.pg_class c "
							  "    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
							  "   WHERE n.nspname = ANY ($1) AND c.relkind IN ('r', 'p', 'v') "
							  "  UNION "
							  "  SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent = t.oid) "
							  "SELECT c.oid::pg_catalog.regclass, "
							  "  CASE WHEN c.relkind = 'v' THEN NULL ELSE c.relrowsecurity END, "
							  "  CASE WHEN c.relkind = 'v' THEN NULL ELSE c.relforcerowsecurity END, "
							  "  (SELECT count(*) FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid)::int, "
							  "  pg_catalog.array_remove(ARRAY["
							  "    CASE WHEN c.relkind <> 'v' AND NOT c.relrowsecurity THEN 'rls not enabled' END, "
							  "    CASE WHEN c.relkind <> 'v' AND NOT c.relforcerowsecurity THEN 'rls not forced' END, "
							  "    CASE WHEN c.relkind <> 'v' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p "
							  "         WHERE p.polrelid = c.oid) THEN 'no policies' END, "
							  "    CASE WHEN c.relkind = 'v' AND NOT coalesce(c.reloptions && "
							  "         ARRAY['security_invoker=true', 'security_invoker=on', 'security_invoker=1', "
							  "               'security_invoker=yes'], false) "
							  "         THEN 'view without security_invoker' END]::text[], NULL), "
							  "  c.oid, c.relkind = 'v' "
							  "FROM tree JOIN pg_catalog.pg_class c ON c.oid = tree.oid "
							  "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
							  "ORDER BY n.nspname, c.relname",
							  1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the catalog");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Datum		values[5];
		bool		nulls[5];
		bool		isnull;
		int			c;

		for (c = 0; c < 5; c++)
			values[c] = SPI_getbinval(row, desc, c + 1, &nulls[c]);
		if (!DatumGetBool(SPI_getbinval(row, desc, 7, &isnull)))
		{
			Oid			relid = DatumGetObjectId(SPI_getbinval(row, desc, 6, &isnull));
			BrandbosIsolation iso;
			List	   *extra;

			brandbos_isolation_expected(relid, &iso);
			extra = brandbos_isolation_problems(relid, &iso);
			if (iso.tenant_col[0] != '\0' || iso.owner_col[0] != '\0')
			{
				char	   *grants = brandbos_isolation_grant_problem(relid);

				if (grants != NULL)
					extra = lappend(extra, grants);
			}
			if (extra != NIL)
			{
				ArrayType  *arr = DatumGetArrayTypeP(values[4]);
				Datum	   *elems;
				int			nelems;
				ListCell   *lc;

				deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &nelems);
				elems = repalloc(elems, sizeof(Datum) * (nelems + list_length(extra) + 1));
				foreach(lc, extra)
					elems[nelems++] = CStringGetTextDatum(lfirst(lc));
				values[4] = PointerGetDatum(construct_array(elems, nelems, TEXTOID, -1, false, TYPALIGN_INT));
			}
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	brandbos_spi_end(&state);
	return (Datum) 0;
}
