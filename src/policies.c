/*
 * policies.c — one-call Row Level Security for tenant and owner isolation.
 *
 * enable_tenant_isolation / enable_owner_isolation give a table ENABLE and
 * FORCE ROW LEVEL SECURITY, one policy per command comparing the column
 * with the request context (typed to the column: text helpers for text and
 * varchar, uuid helpers for uuid), a policy for brandbos.is_admin() given
 * to members of brandbos_tenant_admin, the
 * context as the column's default, and an index leading with the column.
 * The policies call STABLE C helpers directly — no subquery, so they work
 * where subqueries in policies are not allowed (Citus) and cost one
 * function call per row.  Every statement is built with quoted identifiers
 * and run as the caller, who must own the table.
 */
#include "brandbos.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

typedef struct IsolationKind
{
	const char *name;			/* policy name stem: brandbos_<name>_<command> */
	const char *text_helper;
	const char *uuid_helper;
} IsolationKind;

static const IsolationKind tenant_kind = {"tenant", "brandbos.current_tenant_id()", "brandbos.current_tenant_uuid()"};
static const IsolationKind owner_kind = {"owner", "brandbos.current_user_id()", "brandbos.current_user_uuid()"};

static void
run(const char *sql)
{
	if (SPI_execute(sql, false, 0) < 0)
		elog(ERROR, "internal statement failed: %s", sql);
}

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

static void
enable_isolation(FunctionCallInfo fcinfo, const IsolationKind *kind)
{
	static const char *const commands[] = {"select", "insert", "update", "delete"};
	BrandbosInternalState state;
	Oid			relid;
	char	   *table = isolation_target(fcinfo, 2, &relid);
	const char *colname = NameStr(*PG_GETARG_NAME(1));
	AttrNumber	attnum = get_attnum(relid, colname);
	Oid			typid;
	const char *helper;
	const char *col;
	int			i;

	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist", colname, get_rel_name(relid))));
	typid = getBaseType(get_atttype(relid, attnum));
	if (typid == TEXTOID || typid == VARCHAROID)
		helper = kind->text_helper;
	else if (typid == UUIDOID)
		helper = kind->uuid_helper;
	else
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" is of type %s", colname, format_type_be(typid)),
				 errdetail("Isolation columns must be text, varchar or uuid.")));
	col = quote_identifier(colname);

	brandbos_spi_begin(&state, GetUserId());
	run(psprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", table));
	run(psprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY", table));
	for (i = 0; i < 4; i++)
	{
		char	   *policy = psprintf("brandbos_%s_%s", kind->name, commands[i]);
		char	   *check = psprintf("(%s OPERATOR(pg_catalog.=) %s)", col, helper);

		if (exists("SELECT 1 FROM pg_catalog.pg_policy WHERE polrelid = $1 AND polname = $2::name",
				   relid, policy))
			run(psprintf("DROP POLICY %s ON %s", quote_identifier(policy), table));
		if (strcmp(commands[i], "insert") == 0)
			run(psprintf("CREATE POLICY %s ON %s FOR INSERT WITH CHECK %s",
						 quote_identifier(policy), table, check));
		else if (strcmp(commands[i], "update") == 0)
			run(psprintf("CREATE POLICY %s ON %s FOR UPDATE USING %s WITH CHECK %s",
						 quote_identifier(policy), table, check, check));
		else
			run(psprintf("CREATE POLICY %s ON %s FOR %s USING %s",
						 quote_identifier(policy), table, commands[i], check));
	}
	/*
	 * Admins cross the isolation only through a database role: a permissive
	 * policy ORs with the others, and "col = f() OR is_admin()" can use no
	 * index, so it is given only to members of brandbos_tenant_admin; every
	 * other role's plan keeps the index condition.
	 */
	if (exists("SELECT 1 FROM pg_catalog.pg_policy WHERE polrelid = $1 AND polname = $2::name",
			   relid, "brandbos_admin"))
		run(psprintf("DROP POLICY brandbos_admin ON %s", table));
	run(psprintf("CREATE POLICY brandbos_admin ON %s FOR ALL TO brandbos_tenant_admin "
				 "USING (brandbos.is_admin()) WITH CHECK (brandbos.is_admin())", table));
	run(psprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", table, col, helper));

	/* an index leading with the column, unless one exists */
	{
		Oid			types[2] = {OIDOID, INT2OID};
		Datum		values[2];

		values[0] = ObjectIdGetDatum(relid);
		values[1] = Int16GetDatum(attnum);
		if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_index WHERE indrelid = $1 AND indkey[0] = $2",
								  2, types, values, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read pg_index");
		if (SPI_processed == 0)
			run(psprintf("CREATE INDEX ON %s (%s)", table, col));
	}
	brandbos_spi_end(&state);
}

PG_FUNCTION_INFO_V1(brandbos_enable_tenant_isolation);
/* SQL: brandbos.enable_tenant_isolation(tbl regclass, tenant_column name default 'tenant_id') returns void */
Datum
brandbos_enable_tenant_isolation(PG_FUNCTION_ARGS)
{
	enable_isolation(fcinfo, &tenant_kind);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_enable_owner_isolation);
/* SQL: brandbos.enable_owner_isolation(tbl regclass, owner_column name default 'user_id') returns void */
Datum
brandbos_enable_owner_isolation(PG_FUNCTION_ARGS)
{
	enable_isolation(fcinfo, &owner_kind);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_disable_isolation);
/* SQL: brandbos.disable_isolation(tbl regclass) returns void */
Datum
brandbos_disable_isolation(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	Oid			relid;
	char	   *table = isolation_target(fcinfo, 1, &relid);
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(relid);
	List	   *policies = NIL;
	List	   *columns = NIL;
	ListCell   *lc;
	uint64		i;
	MemoryContext caller = CurrentMemoryContext;

	brandbos_spi_begin(&state, GetUserId());
	if (SPI_execute_with_args("SELECT polname::text FROM pg_catalog.pg_policy WHERE polrelid = $1 "
							  "AND polname::text LIKE 'brandbos\\_%'", 1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_policy");
	for (i = 0; i < SPI_processed; i++)
		policies = lappend(policies, MemoryContextStrdup(caller, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
	if (policies == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table %s has no brandbos isolation", table)));
	if (SPI_execute_with_args("SELECT a.attname::text FROM pg_catalog.pg_attrdef d "
							  "JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
							  "WHERE d.adrelid = $1 AND pg_catalog.pg_get_expr(d.adbin, d.adrelid) "
							  "LIKE 'brandbos.current\\_%'", 1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_attrdef");
	for (i = 0; i < SPI_processed; i++)
		columns = lappend(columns, MemoryContextStrdup(caller, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));

	foreach(lc, policies)
		run(psprintf("DROP POLICY %s ON %s", quote_identifier(lfirst(lc)), table));
	foreach(lc, columns)
		run(psprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", table, quote_identifier(lfirst(lc))));
	run(psprintf("ALTER TABLE %s NO FORCE ROW LEVEL SECURITY", table));
	run(psprintf("ALTER TABLE %s DISABLE ROW LEVEL SECURITY", table));
	brandbos_spi_end(&state);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_rls_report);
/*
 * SQL: brandbos.rls_report(schemas name[] default array['public'])
 *      returns table(table_name regclass, rls_enabled boolean, rls_forced boolean,
 *                    policies int, problems text[])
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
							  "         THEN 'view without security_invoker' END]::text[], NULL) "
							  "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
							  "WHERE n.nspname = ANY ($1) AND c.relkind IN ('r', 'p', 'v') "
							  "ORDER BY n.nspname, c.relname",
							  1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the catalog");
	for (i = 0; i < SPI_processed; i++)
	{
		Datum		values[5];
		bool		nulls[5];
		int			c;

		for (c = 0; c < 5; c++)
			values[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, c + 1, &nulls[c]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	brandbos_spi_end(&state);
	return (Datum) 0;
}
