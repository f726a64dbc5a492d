/*
 * internal_sql.c — brandbos's own objects, and the context its internal SQL
 * runs in.
 *
 * brandbos_relid and brandbos_extension_owner find the extension's tables
 * and their owner by name in the brandbos schema (never through a
 * search_path).  brandbos_internal_begin / brandbos_spi_begin switch to a
 * given role as a security-restricted operation with search_path pinned to
 * pg_catalog, pg_temp and row security on, so that no object or setting of
 * the caller's changes what brandbos's own statements mean;
 * brandbos_sql_exec runs one statement there and checks what SPI returns.
 */
#include "brandbos.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/syscache.h"

Oid
brandbos_relid(const char *relname)
{
	Oid			nsp = get_namespace_oid(BRANDBOS_SCHEMA, true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid(relname, nsp);
}

Oid
brandbos_extension_owner(void)
{
	Oid			relid = brandbos_relid("data_keys");
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"brandbos\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION brandbos.")));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Internal SQL runs with search_path pinned to pg_catalog, pg_temp, so no
 * object a caller put on their path can stand in for ours, with row_security
 * on (the bookkeeping triggers treat "off" as a restore), and optionally as
 * another role (the extension owner for brandbos's own tables, the table
 * owner for maintenance of a user table), as a restricted operation.
 */
void
brandbos_internal_begin(BrandbosInternalState *state, Oid run_as)
{
	GetUserIdAndSecContext(&state->save_userid, &state->save_sec_context);
	SetUserIdAndSecContext(run_as,
						   state->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	state->guc_nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* the caller's row_security = off must not reach brandbos's own statements */
	if (!row_security)
		(void) set_config_option("row_security", "on",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
}

void
brandbos_internal_end(BrandbosInternalState *state)
{
	AtEOXact_GUC(false, state->guc_nest_level);
	SetUserIdAndSecContext(state->save_userid, state->save_sec_context);
}

/* the usual pairing: internal context, then an SPI connection inside it */
void
brandbos_spi_begin(BrandbosInternalState *state, Oid run_as)
{
	brandbos_internal_begin(state, run_as);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

void
brandbos_spi_end(BrandbosInternalState *state)
{
	SPI_finish();
	brandbos_internal_end(state);
}

int
brandbos_sql_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
				  bool read_only, int expect)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);

	if (expect == BRANDBOS_SQL_ANY ? rc < 0 : rc != expect)
		elog(ERROR, "internal statement failed (%d): %s", rc, sql);
	return rc;
}

void
brandbos_sql_run(const char *sql)
{
	(void) brandbos_sql_exec(sql, 0, NULL, NULL, NULL, false, BRANDBOS_SQL_ANY);
}
