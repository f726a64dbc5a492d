/*
 * citus_shards.c — Citus table metadata: which logical table a shard
 * belongs to, and which column a table is distributed by.
 *
 * On a Citus worker a distributed table's rows live in shard tables named
 * <table>_<shardid> in the table's schema; triggers copied to the shards
 * fire on those, with the shard as tg_relation.  Everything brandbos keys
 * by table (the protected-column registry, the audit log's resource name)
 * means the logical table, which exists on every node with metadata (the
 * "shell" table, whose OID differs from node to node).
 *
 * brandbos_logical_relid(relid) returns the shell table's OID when relid is
 * a shard, else relid itself.  A relation is a shard only when Citus is
 * installed in the database, its name ends in _<digits>, pg_dist_shard
 * names a table for that shard id, and that table is in the same schema
 * and owner and its name plus "_<shardid>" is the relation's name: a
 * user's own table called orders_102008 is not taken for someone else's
 * shard (its audit entries would otherwise name the other table).
 *
 * Answers are cached per backend (a "not a shard" answer only for names
 * that cannot be a shard's, or without Citus) and dropped with a relcache invalidation
 * of the relation (or of all relations): brandbos_relcache_changed calls
 * brandbos_shard_map_relcache_changed.
 */
#include "brandbos.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

typedef struct ShardMapEntry
{
	Oid			relid;			/* hash key */
	Oid			logical;		/* the shell table, or relid when not a shard */
} ShardMapEntry;

static HTAB *shard_map = NULL;

void
brandbos_shard_map_relcache_changed(Oid relid)
{
	if (shard_map == NULL)
		return;
	if (OidIsValid(relid))
		(void) hash_search(shard_map, &relid, HASH_REMOVE, NULL);
	else
	{
		hash_destroy(shard_map);
		shard_map = NULL;
	}
}

bool
brandbos_citus_installed(void)
{
	return OidIsValid(get_extension_oid("citus", true));
}

/* the shard id at the end of relname ("orders_102008" -> 102008), or 0 */
static int64
trailing_shard_id(const char *relname)
{
	const char *us = strrchr(relname, '_');
	const char *p;
	int64		id = 0;

	if (us == NULL || us == relname || us[1] == '\0')
		return 0;
	for (p = us + 1; *p; p++)
	{
		if (*p < '0' || *p > '9' || id > (PG_INT64_MAX - 9) / 10)
			return 0;
		id = id * 10 + (*p - '0');
	}
	return id;
}

static bool
looks_like_shard(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	return relname != NULL && trailing_shard_id(relname) != 0 && brandbos_citus_installed();
}

static Oid
lookup_logical_relid(Oid relid)
{
	char	   *relname = get_rel_name(relid);
	int64		shardid;
	Oid			logical = InvalidOid;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	int			rc;
	BrandbosInternalState state;

	if (relname == NULL || (shardid = trailing_shard_id(relname)) == 0 ||
		!brandbos_citus_installed())
		return relid;

	values[0] = Int64GetDatum(shardid);
	/* as the extension owner, search_path pinned: the caller may lack rights on the catalog */
	brandbos_spi_begin(&state, brandbos_extension_owner());
	rc = brandbos_sql_exec("SELECT logicalrelid::pg_catalog.oid FROM pg_catalog.pg_dist_shard "
							   "WHERE shardid OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, true, SPI_OK_SELECT);
	if (rc == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			logical = DatumGetObjectId(d);
	}
	brandbos_spi_end(&state);

	/* a shard is owned by its table's owner; a planted look-alike is not */
	if (OidIsValid(logical) && logical != relid &&
		get_rel_namespace(logical) == get_rel_namespace(relid) &&
		brandbos_relation_owner(logical) == brandbos_relation_owner(relid))
	{
		char	   *lname = get_rel_name(logical);
		char	   *expected = psprintf("%s_" INT64_FORMAT, lname ? lname : "", shardid);

		if (lname != NULL && strcmp(expected, relname) == 0)
			return logical;
	}
	return relid;
}

Oid
brandbos_logical_relid(Oid relid)
{
	ShardMapEntry *entry;
	bool		found;

	if (shard_map == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(ShardMapEntry);
		ctl.hcxt = TopMemoryContext;
		shard_map = hash_create("brandbos shard map", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(shard_map, &relid, HASH_FIND, NULL);
	if (entry != NULL)
		return entry->logical;
	{
		Oid			logical = lookup_logical_relid(relid);

		/* the lookup may have run invalidations that dropped the map */
		if (shard_map == NULL)
			return logical;
		/*
		 * A relation that is not (yet) a shard is asked again next time when
		 * its name looks like one: Citus creates a shard, and fires its
		 * triggers, before the worker's metadata lists it.
		 */
		if (logical == relid && looks_like_shard(relid))
			return logical;
		entry = hash_search(shard_map, &relid, HASH_ENTER, &found);
		entry->logical = logical;
		return logical;
	}
}

bool
brandbos_is_citus_shard(Oid relid)
{
	return brandbos_logical_relid(relid) != relid;
}

/*
 * Raise 0A000 when relid is a Citus distributed or reference table (or a
 * shard of one): for what brandbos cannot do across a cluster yet, a clear
 * refusal instead of a table that cannot be written.  "what" names the
 * call, as "brandbos.protect_column()".
 */
void
brandbos_refuse_citus_table(Oid relid, const char *what)
{
	BrandbosInternalState state;
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	bool		distributed;

	if (!brandbos_citus_installed())
		return;
	if (!brandbos_is_citus_shard(relid))
	{
		values[0] = ObjectIdGetDatum(relid);
		brandbos_spi_begin(&state, brandbos_extension_owner());
		(void) brandbos_sql_exec("SELECT 1 FROM pg_catalog.pg_dist_partition "
								 "WHERE logicalrelid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
								 1, types, values, NULL, true, SPI_OK_SELECT);
		distributed = (SPI_processed > 0);
		brandbos_spi_end(&state);
		if (!distributed)
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s does not support Citus distributed or reference tables yet", what),
			 errdetail("Table \"%s\" is managed by Citus; the call would act on the coordinator's copy only.",
					   get_rel_name(relid)),
			 errhint("See \"Citus\" in the README (test/citus/README-enc.md) for what brandbos supports on Citus.")));
}

/*
 * Is colname the distribution column of relid (a hash- or range-distributed
 * Citus table)?  Reference tables and local tables have none.  Runs in the
 * caller's SPI connection; every name is schema-qualified.
 */
bool
brandbos_citus_is_distribution_column(Oid relid, const char *colname)
{
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2];

	if (!brandbos_citus_installed())
		return false;
	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(colname);
	if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_dist_partition p"
							  " WHERE p.logicalrelid = $1 AND p.partkey IS NOT NULL"
							  " AND pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) OPERATOR(pg_catalog.=) $2",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the Citus distribution column");
	return SPI_processed > 0;
}
