/*
 * key_admin.c — what a keymaster does with the data keys: read their
 * status, rotate, retire and destroy them.
 *
 * Each function requires brandbos_keymaster and runs its queries on
 * brandbos.data_keys as the extension owner (brandbos_keys_sql_begin).
 *
 * Invariants:
 *   - every change of a key row is followed by brandbos_keys_changed, so
 *     each backend's cache of unwrapped keys (data_keys.c) hears of it;
 *   - a destroyed key never comes back, and the active key is never
 *     destroyed: it is rotated first;
 *   - destroy_key without force shreds a version only when no value is
 *     sealed under it.  It first waits for the version's lock in exclusive
 *     mode (writers hold it in share mode until they end), then counts every
 *     protected column with a fresh snapshot (value_scan.c); a column it
 *     cannot read makes it refuse rather than guess;
 *   - on Citus, keys change on the coordinator only (0A000 on a worker), and
 *     rotate_key, retire_key and destroy_key send the result to every other
 *     node in the same distributed transaction (citus_keys.c), where
 *     destroy_key without force counts that node's shards too.
 */
#include "brandbos.h"
#include "keys_internal.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* ---------------------------------------------------------------------
 * Counting the values that use each version
 * --------------------------------------------------------------------- */

/*
 * Add to "counts" (indexed by version, length max_version + 1) how many
 * values of every protected column are sealed under each version.  The
 * columns are read by value_scan.c (as each table's owner, no user code,
 * a fresh snapshot, row security not applied).  Columns that could not be
 * read are returned as sentences ("table.column: why"), so callers can
 * report them and go on, or refuse.  Runs inside brandbos_keys_sql_begin.
 */
static List *
count_values_by_version(int64 *counts, uint32 max_version)
{
	SPITupleTable *columns;
	uint64		ncolumns,
				i;
	List	   *unreadable = NIL;

	brandbos_sql_exec("SELECT r.table_oid::pg_catalog.oid, r.column_name::pg_catalog.text "
					  "FROM brandbos.column_registry r ORDER BY 1, 2", 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	columns = SPI_tuptable;
	ncolumns = SPI_processed;
	for (i = 0; i < ncolumns; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(columns->vals[i], columns->tupdesc, 1, &isnull));
		char	   *column = SPI_getvalue(columns->vals[i], columns->tupdesc, 2);
		List	   *heaps = list_make1_oid(relid);
		ListCell   *lc;

		/* a Citus distributed table: the shards this node holds (citus_keys.c counts the others') */
		if (brandbos_citus_partmethod(relid) != 0)
			heaps = brandbos_citus_local_shards(relid);
		foreach(lc, heaps)
		{
			BrandbosColumnScan scan;
			int			j;

			brandbos_scan_protected_column(lfirst_oid(lc), column, &scan);
			for (j = 0; j < scan.nversions; j++)
				if (scan.versions[j] <= max_version)
					counts[scan.versions[j]] += scan.counts[j];
			if (scan.unreadable)
			{
				char	   *relname = get_rel_name(lfirst_oid(lc));

				unreadable = lappend(unreadable,
									 psprintf("%s.%s: %s", relname ? relname : "?",
											  column, scan.problem));
			}
		}
	}
	return unreadable;
}

/* one line listing the unreadable columns, for a detail message */
static char *
unreadable_detail(List *unreadable)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, unreadable)
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? "; " : "", (char *) lfirst(lc));
	return buf.data;
}

PG_FUNCTION_INFO_V1(brandbos_key_status);
/* SQL: brandbos.key_status() returns table(version, status, created_at, rows_using) */
Datum
brandbos_key_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	BrandbosInternalState state;
	SPITupleTable *keys;
	uint64		nkeys,
				i;
	uint32		max_version = 0;
	int64	   *counts;
	List	   *unreadable;

	brandbos_require_role(BRANDBOS_ROLE_KEYMASTER, "read brandbos key status");
	InitMaterializedSRF(fcinfo, 0);

	brandbos_keys_sql_begin(&state);
	brandbos_sql_exec("SELECT version, status, created_at FROM brandbos.data_keys ORDER BY version", 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	keys = SPI_tuptable;
	nkeys = SPI_processed;
	for (i = 0; i < nkeys; i++)
	{
		bool		isnull;
		uint32		v = (uint32) DatumGetInt32(SPI_getbinval(keys->vals[i], keys->tupdesc, 1, &isnull));

		if (v > max_version)
			max_version = v;
	}
	counts = palloc0(sizeof(int64) * (max_version + 1));
	unreadable = count_values_by_version(counts, max_version);
	if (unreadable != NIL)
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("%d protected columns could not be read; rows_using leaves them out",
						list_length(unreadable)),
				 errdetail("%s", unreadable_detail(unreadable)),
				 errhint("See the problem column of brandbos.protected_columns.")));

	for (i = 0; i < nkeys; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		bool		isnull;
		uint32		v;

		v = (uint32) DatumGetInt32(SPI_getbinval(keys->vals[i], keys->tupdesc, 1, &isnull));
		values[0] = Int32GetDatum((int32) v);
		values[1] = CStringGetTextDatum(SPI_getvalue(keys->vals[i], keys->tupdesc, 2));
		values[2] = SPI_getbinval(keys->vals[i], keys->tupdesc, 3, &isnull);
		values[3] = Int64GetDatum(counts[v]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	brandbos_keys_sql_end(&state);
	return (Datum) 0;
}

/* the status of a version, or an error if there is none */
static char *
key_version_status(int32 version)
{
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(version);

	brandbos_sql_exec("SELECT status FROM brandbos.data_keys WHERE version = $1 FOR UPDATE", 1, &argtype, &arg, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("data key version %d does not exist", version)));
	return brandbos_keys_text(0, 1);
}

PG_FUNCTION_INFO_V1(brandbos_rotate_key);
/* SQL: brandbos.rotate_key() returns int */
Datum
brandbos_rotate_key(PG_FUNCTION_ARGS)
{
	uint32		version;

	brandbos_require_role(BRANDBOS_ROLE_KEYMASTER, "rotate brandbos data keys");
	brandbos_citus_refuse_on_worker("brandbos.rotate_key()");
	version = brandbos_rotate_data_key();
	brandbos_citus_propagate_keys(false);	/* every Citus node, same transaction */
	PG_RETURN_INT32((int32) version);
}

PG_FUNCTION_INFO_V1(brandbos_retire_key);
/*
 * SQL: brandbos.retire_key(version int) returns void
 *
 * A retired key still decrypts but no longer seals.  Retiring the active
 * key rotates: a new version becomes active.  Retiring a retired key does
 * nothing; a destroyed key cannot come back.
 */
Datum
brandbos_retire_key(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	int32		version;
	char		status[16];

	brandbos_require_role(BRANDBOS_ROLE_KEYMASTER, "retire brandbos data keys");
	brandbos_citus_refuse_on_worker("brandbos.retire_key()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key version must not be null")));
	version = PG_GETARG_INT32(0);

	brandbos_keys_sql_begin(&state);
	strlcpy(status, key_version_status(version), sizeof(status));
	brandbos_keys_sql_end(&state);

	if (strcmp(status, "destroyed") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key version %d has been destroyed", version)));
	if (strcmp(status, "active") == 0)
	{
		uint32		next = brandbos_rotate_data_key();

		brandbos_citus_propagate_keys(false);

		ereport(NOTICE,
				(errmsg("data key version %u is now active", next)));
	}
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_destroy_key);
/* SQL: brandbos.destroy_key(version int, force boolean default false) returns void */
Datum
brandbos_destroy_key(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	int32		version;
	bool		force;
	char	   *status;
	int64	   *counts;
	Oid			argtype = INT4OID;
	Datum		arg;

	brandbos_require_role(BRANDBOS_ROLE_KEYMASTER, "destroy brandbos data keys");
	brandbos_citus_refuse_on_worker("brandbos.destroy_key()");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key version and force must not be null")));
	version = PG_GETARG_INT32(0);
	force = PG_GETARG_BOOL(1);
	arg = Int32GetDatum(version);

	brandbos_keys_sql_begin(&state);

	/*
	 * Writers hold this version's lock in share mode from their first seal
	 * until they end (brandbos_active_key_version, brandbos_hold_key_version):
	 * waiting for it means every value sealed under the version is committed
	 * (or gone) before the count below, which reads with a fresh snapshot.
	 * Wait before taking the table lock, so that a writer left idle in its
	 * transaction stalls this call only, not every other keymaster's.
	 */
	if (!force && strcmp(key_version_status(version), "retired") == 0)
		brandbos_lock_key_version((uint32) version, AccessExclusiveLock);
	brandbos_sql_exec("LOCK TABLE brandbos.data_keys IN EXCLUSIVE MODE", 0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	status = key_version_status(version);
	if (strcmp(status, "active") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key version %d is the active key", version),
				 errhint("Call brandbos.rotate_key() first, then brandbos.reencrypt() each protected table.")));
	if (strcmp(status, "destroyed") == 0)
	{
		brandbos_keys_sql_end(&state);
		PG_RETURN_VOID();		/* destroying twice is harmless */
	}
	if (!force)
	{
		List	   *unreadable;

		brandbos_lock_key_version((uint32) version, AccessExclusiveLock);	/* held already */
		counts = palloc0(sizeof(int64) * (version + 1));
		unreadable = count_values_by_version(counts, (uint32) version);
		if (unreadable != NIL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("cannot tell whether data key version %d still seals values", version),
					 errdetail("%s", unreadable_detail(unreadable)),
					 errhint("Repair those columns (see brandbos.protected_columns), or pass force => true to shred on purpose.")));
		if (counts[version] > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("data key version %d still seals " INT64_FORMAT " values", version, counts[version]),
					 errdetail("Destroying it would make those values unreadable."),
					 errhint("Run brandbos.reencrypt() on each protected table first, or pass force => true to shred them on purpose.")));
	}
	brandbos_sql_exec("UPDATE brandbos.data_keys SET status = 'destroyed', wrapped_key = NULL, "
					  "destroyed_at = now(), retired_at = coalesce(retired_at, now()) WHERE version = $1", 1, &argtype, &arg, NULL, false, SPI_OK_UPDATE);
	brandbos_keys_sql_end(&state);
	brandbos_keys_changed();
	/* every Citus node destroys it too, after counting its shards' values (citus_keys.c) */
	brandbos_citus_propagate_keys(force);
	PG_RETURN_VOID();
}

