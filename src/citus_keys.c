/*
 * citus_keys.c — the same data keys on every node of a Citus cluster.
 *
 * Values of a distributed table are sealed and opened on the node that
 * holds their shard, so every node needs the coordinator's data keys: the
 * same versions, the same key bytes (wrapped under the root key, which is
 * the same file on every node), the same status.  The coordinator is where
 * keys are made and changed; a Citus worker never makes a data key of its
 * own (data_keys.c, key_admin.c refuse it there).
 *
 * brandbos_citus_propagate_keys() (coordinator: protect_column, rotate_key,
 * retire_key, destroy_key) sends
 *   SELECT brandbos.citus_receive_keys(versions, statuses, wrapped, root_key_ids, force)
 * with every row of brandbos.data_keys to every other node with metadata,
 * in the current distributed transaction (citus_columns.c,
 * brandbos_citus_send).  The receiving node, in order:
 *   - checks that each wrapped key opens under its own root key, and that a
 *     version it already holds is the same key (a node whose keys were made
 *     elsewhere is refused, never overwritten);
 *   - refuses a version of its own that the coordinator does not list, and a
 *     destroyed key coming back;
 *   - adds the versions it lacks and moves the others to the coordinator's
 *     status (retired, destroyed);
 * It takes only a superuser or the extension owner, as which the
 * coordinator sends it after its own checks (keymaster, table owner).
 *   - before destroying a version without force, waits for its lock and
 *     counts the values the local shards of protected tables still seal
 *     under it, and refuses (55006) when there are any: destroy_key on the
 *     coordinator counts only the rows it holds itself.
 */
#include "brandbos.h"
#include "keys_internal.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

void
brandbos_citus_propagate_keys(bool force)
{
	BrandbosInternalState state;
	Oid			argtype = BOOLOID;
	Datum		arg = BoolGetDatum(force);
	char	   *command = NULL;
	MemoryContext caller_cxt = CurrentMemoryContext;

	if (!brandbos_citus_installed() || brandbos_citus_is_worker())
		return;
	brandbos_keys_sql_begin(&state);
	(void) brandbos_sql_exec("SELECT pg_catalog.format('SELECT brandbos.citus_receive_keys(%L::pg_catalog.int4[], "
							 "%L::pg_catalog.text[], %L::pg_catalog.bytea[], %L::pg_catalog.text[], %L::pg_catalog.bool)', "
							 "pg_catalog.array_agg(version ORDER BY version), pg_catalog.array_agg(status ORDER BY version), "
							 "pg_catalog.array_agg(wrapped_key ORDER BY version), pg_catalog.array_agg(root_key_id ORDER BY version), $1) "
							 "FROM brandbos.data_keys HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0",
							 1, &argtype, &arg, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 1)
		command = MemoryContextStrdup(caller_cxt, brandbos_keys_text(0, 1));
	brandbos_keys_sql_end(&state);
	if (command != NULL)
		brandbos_citus_send(command);
}

/* ---------------------------------------------------------------------
 * On the receiving node
 * --------------------------------------------------------------------- */

typedef struct KeyRow
{
	int32		version;
	char	   *status;
	bytea	   *wrapped;		/* NULL when destroyed */
	char	   *root_key_id;
} KeyRow;

static bool
key_opens(const KeyRow *k, unsigned char *out)
{
	return k->wrapped != NULL && brandbos_unwrap_stored_key((uint32) k->version, k->wrapped, out);
}

static void
require_same_key(const KeyRow *local, const KeyRow *incoming)
{
	unsigned char a[BRANDBOS_DATA_KEY_BYTES];
	unsigned char b[BRANDBOS_DATA_KEY_BYTES];
	bool		same;

	if (local->wrapped == NULL || incoming->wrapped == NULL)
		return;
	if (!key_opens(local, a))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key version %d of this node does not open under its root key", local->version)));
	if (!key_opens(incoming, b))
	{
		sodium_memzero(a, sizeof(a));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the coordinator's data key version %d does not open under this node's root key", incoming->version),
				 errhint("Every node of the cluster needs the same brandbos.root_key_file.")));
	}
	same = sodium_memcmp(a, b, sizeof(a)) == 0;
	sodium_memzero(a, sizeof(a));
	sodium_memzero(b, sizeof(b));
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key version %d of this node is not the coordinator's", local->version),
				 errdetail("This node made or received another key under the same version."),
				 errhint("A node that holds data keys of its own cannot join the coordinator's encryption; see test/citus/README-enc.md.")));
}

/* values that the local shards of protected distributed tables seal under version */
static int64
local_shard_values(int32 version)
{
	BrandbosInternalState state;
	SPITupleTable *columns;
	uint64		ncolumns,
				i;
	int64		total = 0;

	brandbos_spi_begin(&state, brandbos_extension_owner());
	(void) brandbos_sql_exec("SELECT table_oid::pg_catalog.oid, column_name::pg_catalog.text "
							 "FROM brandbos.column_registry ORDER BY 1, 2",
							 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	columns = SPI_tuptable;
	ncolumns = SPI_processed;
	for (i = 0; i < ncolumns; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(columns->vals[i], columns->tupdesc, 1, &isnull));
		char	   *column = SPI_getvalue(columns->vals[i], columns->tupdesc, 2);
		ListCell   *lc;

		if (brandbos_citus_partmethod(relid) == 0)
			continue;			/* a local table: counted like on any node (it has no shards) */
		foreach(lc, brandbos_citus_local_shards(relid))
		{
			BrandbosColumnScan scan;

			brandbos_scan_protected_column(lfirst_oid(lc), column, &scan);
			if (scan.unreadable)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_IN_USE),
						 errmsg("cannot tell whether data key version %d still seals values of shard \"%s\"",
								version, get_rel_name(lfirst_oid(lc))),
						 errdetail("%s", scan.problem)));
			total += brandbos_column_scan_count(&scan, (uint32) version);
		}
	}
	brandbos_spi_end(&state);
	return total;
}

static KeyRow *
find_key(KeyRow *rows, int n, int32 version)
{
	int			i;

	for (i = 0; i < n; i++)
		if (rows[i].version == version)
			return &rows[i];
	return NULL;
}

static void
update_status(const KeyRow *k)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];

	values[0] = CStringGetTextDatum(k->status);
	values[1] = Int32GetDatum(k->version);
	if (strcmp(k->status, "destroyed") == 0)
		(void) brandbos_sql_exec("UPDATE brandbos.data_keys SET status = 'destroyed', wrapped_key = NULL, "
								 "destroyed_at = pg_catalog.now(), retired_at = coalesce(retired_at, pg_catalog.now()) "
								 "WHERE version OPERATOR(pg_catalog.=) $2 AND $1 IS NOT NULL",
								 2, types, values, NULL, false, SPI_OK_UPDATE);
	else
		(void) brandbos_sql_exec("UPDATE brandbos.data_keys SET status = $1, retired_at = pg_catalog.now() "
								 "WHERE version OPERATOR(pg_catalog.=) $2",
								 2, types, values, NULL, false, SPI_OK_UPDATE);
}

static void
insert_key(const KeyRow *k)
{
	Oid			types[4] = {INT4OID, TEXTOID, BYTEAOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', k->wrapped ? ' ' : 'n', ' '};

	values[0] = Int32GetDatum(k->version);
	values[1] = CStringGetTextDatum(k->status);
	values[2] = PointerGetDatum(k->wrapped);
	values[3] = CStringGetTextDatum(k->root_key_id);
	(void) brandbos_sql_exec("INSERT INTO brandbos.data_keys (version, status, wrapped_key, root_key_id, retired_at, destroyed_at) "
							 "VALUES ($1, $2, $3, $4, CASE WHEN $2 OPERATOR(pg_catalog.<>) 'active' THEN pg_catalog.now() END, "
							 "CASE WHEN $2 OPERATOR(pg_catalog.=) 'destroyed' THEN pg_catalog.now() END)",
							 4, types, values, nulls, false, SPI_OK_INSERT);
}

static int
status_rank(const char *status)
{
	if (strcmp(status, "active") == 0)
		return 0;
	if (strcmp(status, "retired") == 0)
		return 1;
	if (strcmp(status, "destroyed") == 0)
		return 2;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown data key status \"%s\"", status)));
	return -1;
}

PG_FUNCTION_INFO_V1(brandbos_citus_receive_keys);
/*
 * SQL: brandbos.citus_receive_keys(versions int[], statuses text[],
 *   wrapped bytea[], root_key_ids text[], force boolean) returns void
 */
Datum
brandbos_citus_receive_keys(PG_FUNCTION_ARGS)
{
	Datum	   *d[4];
	bool	   *dn[4];
	int			n[4];
	Oid			elemtypes[4] = {INT4OID, TEXTOID, BYTEAOID, TEXTOID};
	int			i;
	int			nin;
	KeyRow	   *in;
	KeyRow	   *local;
	int			nlocal;
	bool		force;
	BrandbosInternalState state;
	int			pass;

	for (i = 0; i < 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("arguments must not be null")));
	brandbos_citus_require_internal_caller("brandbos.citus_receive_keys()");
	if (!brandbos_citus_is_worker())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("brandbos.citus_receive_keys() runs on Citus workers only"),
				 errdetail("The coordinator's key functions call it.")));
	brandbos_require_root_key();
	force = PG_GETARG_BOOL(4);
	for (i = 0; i < 4; i++)
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(i);
		int16		typlen;
		bool		typbyval;
		char		typalign;

		if (ARR_ELEMTYPE(arr) != elemtypes[i] || ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("argument %d must be a one-dimensional array", i + 1)));
		get_typlenbyvalalign(elemtypes[i], &typlen, &typbyval, &typalign);
		deconstruct_array(arr, elemtypes[i], typlen, typbyval, typalign, &d[i], &dn[i], &n[i]);
	}
	if (n[1] != n[0] || n[2] != n[0] || n[3] != n[0])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the key arrays must have the same length")));
	nin = n[0];
	in = palloc0(sizeof(KeyRow) * Max(nin, 1));
	for (i = 0; i < nin; i++)
	{
		unsigned char probe[BRANDBOS_DATA_KEY_BYTES];

		if (dn[0][i] || dn[1][i] || dn[3][i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("a key's version, status and root key id must not be null")));
		in[i].version = DatumGetInt32(d[0][i]);
		in[i].status = TextDatumGetCString(d[1][i]);
		in[i].wrapped = dn[2][i] ? NULL : DatumGetByteaPP(d[2][i]);
		in[i].root_key_id = TextDatumGetCString(d[3][i]);
		if ((status_rank(in[i].status) == 2) != (in[i].wrapped == NULL))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("data key version %d: only a destroyed key has no key bytes", in[i].version)));
		if (in[i].wrapped != NULL)
		{
			if (!key_opens(&in[i], probe))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the coordinator's data key version %d does not open under this node's root key",
								in[i].version),
						 errhint("Every node of the cluster needs the same brandbos.root_key_file.")));
			sodium_memzero(probe, sizeof(probe));
		}
	}

	brandbos_keys_sql_begin(&state);
	brandbos_sql_exec("LOCK TABLE brandbos.data_keys IN EXCLUSIVE MODE", 0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	brandbos_sql_exec("SELECT version, status, wrapped_key, root_key_id FROM brandbos.data_keys ORDER BY version",
					  0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	nlocal = (int) SPI_processed;
	local = palloc0(sizeof(KeyRow) * Max(nlocal, 1));
	for (i = 0; i < nlocal; i++)
	{
		bool		isnull;
		Datum		w;

		local[i].version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		local[i].status = brandbos_keys_text(i, 2);
		w = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull);
		local[i].wrapped = isnull ? NULL : DatumGetByteaPCopy(w);
		local[i].root_key_id = brandbos_keys_text(i, 4);
	}

	/* check everything before changing anything */
	for (i = 0; i < nlocal; i++)
		if (find_key(in, nin, local[i].version) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("this node holds data key version %d, which the coordinator does not", local[i].version),
					 errhint("A node that holds data keys of its own cannot join the coordinator's encryption; see test/citus/README-enc.md.")));
	for (i = 0; i < nin; i++)
	{
		KeyRow	   *l = find_key(local, nlocal, in[i].version);

		if (l == NULL)
			continue;
		if (status_rank(l->status) > status_rank(in[i].status))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("data key version %d is %s on this node and %s on the coordinator",
							in[i].version, l->status, in[i].status),
					 errdetail("A key never goes back to an earlier status.")));
		require_same_key(l, &in[i]);
	}

	/* retire and destroy first (one active key at a time), then add, the active key last */
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < nin; i++)
		{
			KeyRow	   *l = find_key(local, nlocal, in[i].version);
			bool		active = status_rank(in[i].status) == 0;

			if ((pass == 0) == active)
				continue;
			if (l == NULL)
				insert_key(&in[i]);
			else if (strcmp(l->status, in[i].status) != 0)
			{
				if (status_rank(in[i].status) == 2 && !force)
				{
					int64		left;

					brandbos_lock_key_version((uint32) in[i].version, AccessExclusiveLock);
					left = local_shard_values(in[i].version);
					if (left > 0)
						ereport(ERROR,
								(errcode(ERRCODE_OBJECT_IN_USE),
								 errmsg("data key version %d still seals " INT64_FORMAT " values on this node",
										in[i].version, left),
								 errdetail("Destroying it would make those values unreadable."),
								 errhint("Run brandbos.reencrypt() on each protected table first, or pass force => true to shred them on purpose.")));
				}
				update_status(&in[i]);
			}
		}
	brandbos_keys_sql_end(&state);
	brandbos_keys_changed();
	PG_RETURN_VOID();
}

void
brandbos_citus_refuse_on_worker(const char *what)
{
	if (brandbos_citus_is_worker())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is not possible on a Citus worker", what),
				 errdetail("Data keys are made and changed on the Citus coordinator, which sends them to every node."),
				 errhint("Call it on the coordinator.")));
}
