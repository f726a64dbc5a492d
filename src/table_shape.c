/*
 * table_shape.c — what brandbos needs to know of a table: its primary key
 * and its registered protected columns.
 *
 * The protect trigger binds each value to the column's stable id and the
 * row's primary key; the audit trigger keys its entries by the primary key
 * and hides the protected columns; the row rewriter asks which rows need
 * work.  All of them read one cache, kept here.
 *
 * Invariants:
 *   - brandbos.column_registry is read as the extension owner, with a
 *     pinned search_path; a partition takes the protected columns that are
 *     registered for its partitioned ancestors (the trigger fires on the
 *     leaf, protect_column registers the root), and a Citus shard those of
 *     its logical table (brandbos_logical_relid);
 *   - an entry (CacheMemoryContext, one small context per table) is used
 *     until a relcache invalidation of its table; protect_column,
 *     unprotect_column, a rename through registry_ddl and any ALTER TABLE
 *     send one.  An invalidation that arrives while an entry loads leaves
 *     it invalid, so the next use reads it again;
 *   - a table without a primary key, or whose registry names a column it
 *     no longer has (or that is no longer text or bytea), fails to load
 *     with an error: nothing is sealed or audited with a half-known shape.
 */
#include "brandbos.h"
#include "table_shape.h"

#include "access/genam.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/uuid.h"

/* ---------------------------------------------------------------------
 * The per-backend cache
 * --------------------------------------------------------------------- */

static HTAB *table_configs = NULL;
static uint64 config_generation = 0;

void
brandbos_table_shape_relcache_changed(Oid relid)
{
	HASH_SEQ_STATUS seq;
	TableConfig *entry;

	if (table_configs == NULL)
		return;
	config_generation++;
	if (OidIsValid(relid))
	{
		entry = hash_search(table_configs, &relid, HASH_FIND, NULL);
		if (entry)
			entry->valid = false;
		return;
	}
	hash_seq_init(&seq, table_configs);
	while ((entry = hash_seq_search(&seq)) != NULL)
		entry->valid = false;
}

static void
ensure_config_cache(void)
{
	HASHCTL		ctl;

	if (table_configs != NULL)
		return;
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(TableConfig);
	ctl.hcxt = CacheMemoryContext;
	table_configs = hash_create("brandbos protected tables", 32, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* ---------------------------------------------------------------------
 * The primary key
 * --------------------------------------------------------------------- */

/* OID of the primary-key index of a relation, or InvalidOid */
static Oid
primary_key_index(Relation rel)
{
#if PG_VERSION_NUM >= 180000
	return RelationGetPrimaryKeyIndex(rel, false);
#else
	return RelationGetPrimaryKeyIndex(rel);
#endif
}

/* the key columns of rel's primary key (table_shape.h) */
int
brandbos_primary_key_attnums(Relation rel, AttrNumber **attnums)
{
	Oid			pk = primary_key_index(rel);
	Relation	index;
	int			nkeys,
				k;

	*attnums = NULL;
	if (!OidIsValid(pk))
		return 0;
	index = index_open(pk, AccessShareLock);
	nkeys = index->rd_index->indnkeyatts;
	*attnums = palloc(sizeof(AttrNumber) * nkeys);
	for (k = 0; k < nkeys; k++)
		(*attnums)[k] = index->rd_index->indkey.values[k];
	index_close(index, AccessShareLock);
	return nkeys;
}

/* the primary key protect_column binds a column's values to (table_shape.h) */
int
brandbos_require_bindable_primary_key(Relation rel, AttrNumber attnum, bool check_types,
									  AttrNumber **attnums)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			nkeys = brandbos_primary_key_attnums(rel, attnums);
	int			k;

	if (nkeys == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key", RelationGetRelationName(rel)),
				 errdetail("Each protected value is bound to its row's primary key."),
				 errhint("Add a primary key to the table first.")));
	for (k = 0; k < nkeys; k++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, (*attnums)[k] - 1);

		if (att->attnum == attnum)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("column \"%s\" is part of the primary key of \"%s\"",
							NameStr(att->attname), RelationGetRelationName(rel)),
					 errdetail("A primary-key column cannot be protected: it is the associated data of the others.")));
		if (check_types)
			brandbos_require_bindable_key_type(att->atttypid, NameStr(att->attname));
	}
	return nkeys;
}

/* ---------------------------------------------------------------------
 * Loading an entry
 * --------------------------------------------------------------------- */

static void
load_config(TableConfig *cfg, Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	BrandbosInternalState state;
	MemoryContext old;
	Oid			argtype = OIDARRAYOID;
	Datum		arg;
	List	   *owners = list_make1_oid(RelationGetRelid(rel));
	Datum	   *owner_datums;
	ListCell   *lc;
	int			nowners = 0;
	uint64		i;
	int			k;

	/*
	 * A partition is protected through its partitioned ancestors: the trigger
	 * fires on the leaf, but protect_column registered the root.
	 */
	if (rel->rd_rel->relispartition)
		owners = list_concat(owners, get_partition_ancestors(RelationGetRelid(rel)));
	/*
	 * On a Citus node the trigger fires on a shard; protect_column registered
	 * the logical table (citus_columns.c).  Shards of partitions have the
	 * parent's shards as ancestors, so each owner's logical table is added.
	 */
	{
		List	   *logicals = NIL;

		foreach(lc, owners)
		{
			Oid			logical = brandbos_logical_relid(lfirst_oid(lc));

			if (logical != lfirst_oid(lc) && !list_member_oid(owners, logical))
				logicals = lappend_oid(logicals, logical);
		}
		owners = list_concat(owners, logicals);
	}
	owner_datums = palloc(sizeof(Datum) * list_length(owners));
	foreach(lc, owners)
		owner_datums[nowners++] = ObjectIdGetDatum(lfirst_oid(lc));
	arg = PointerGetDatum(construct_array(owner_datums, nowners, OIDOID,
										  sizeof(Oid), true, TYPALIGN_INT));

	brandbos_spi_begin(&state, brandbos_extension_owner());
	if (SPI_execute_with_args("SELECT column_id, column_name FROM brandbos.column_registry "
							  "WHERE table_oid::pg_catalog.oid = ANY ($1) ORDER BY column_name",
							  1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read brandbos.column_registry");

	old = MemoryContextSwitchTo(cfg->mcxt);
	cfg->ncolumns = (int) SPI_processed;
	cfg->columns = palloc0(sizeof(ProtectedColumn) * Max(cfg->ncolumns, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		pg_uuid_t  *id = DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 1, &isnull));
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		ProtectedColumn *pc = &cfg->columns[i];
		int			a;

		memcpy(pc->column_id, id->data, BRANDBOS_COLUMN_ID_BYTES);
		pc->attnum = InvalidAttrNumber;
		for (a = 0; a < tupdesc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, a);

			if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			{
				pc->attnum = att->attnum;
				pc->as_text = (att->atttypid != BYTEAOID);
				if (att->atttypid != TEXTOID && att->atttypid != BYTEAOID)
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("protected column \"%s\" of table \"%s\" is no longer of type text or bytea",
									name, RelationGetRelationName(rel)),
							 errhint("Change the column back to text or bytea.")));
				break;
			}
		}
		if (pc->attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("protected column \"%s\" of table \"%s\" does not exist",
							name, RelationGetRelationName(rel)),
					 errdetail("brandbos.column_registry names a column the table no longer has."),
					 errhint("Rename the column back, or call brandbos.unprotect_column() for it.")));
	}
	MemoryContextSwitchTo(old);
	brandbos_spi_end(&state);

	old = MemoryContextSwitchTo(cfg->mcxt);
	cfg->nkeys = brandbos_primary_key_attnums(rel, &cfg->key_attnums);
	if (cfg->nkeys == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key", RelationGetRelationName(rel)),
				 errdetail("brandbos binds protected values and audit entries to the primary key."),
				 errhint("Add a primary key to the table.")));
	cfg->key_encoders = palloc(sizeof(BrandbosKeyEncoder) * cfg->nkeys);
	for (k = 0; k < cfg->nkeys; k++)
		brandbos_key_encoder_init(&cfg->key_encoders[k],
								  TupleDescAttr(tupdesc, cfg->key_attnums[k] - 1)->atttypid,
								  cfg->mcxt);
	MemoryContextSwitchTo(old);
}

TableConfig *
brandbos_table_config(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	TableConfig *cfg;
	bool		found;
	uint64		generation;

	ensure_config_cache();
	cfg = hash_search(table_configs, &relid, HASH_ENTER, &found);
	if (found && cfg->valid)
		return cfg;
	if (!found)
		cfg->mcxt = NULL;
	if (cfg->mcxt != NULL)
		MemoryContextDelete(cfg->mcxt);
	cfg->valid = false;
	cfg->mcxt = AllocSetContextCreate(CacheMemoryContext, "brandbos table config",
									  ALLOCSET_SMALL_SIZES);
	generation = config_generation;
	load_config(cfg, rel);
	/* an invalidation that arrived while loading makes the next call reload */
	cfg->valid = (generation == config_generation);
	return cfg;
}

void
brandbos_table_shape(Relation rel, int *nkeys, AttrNumber **key_attnums,
					 Bitmapset **protected_attnums)
{
	TableConfig *cfg = brandbos_table_config(rel);
	Bitmapset  *protected = NULL;
	int			c;

	for (c = 0; c < cfg->ncolumns; c++)
		protected = bms_add_member(protected, cfg->columns[c].attnum);
	*nkeys = cfg->nkeys;
	*key_attnums = cfg->key_attnums;
	*protected_attnums = protected;
}

/* one registry lookup, as the extension owner; not cached */
bool
brandbos_table_is_protected(Oid relid)
{
	BrandbosInternalState state;
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(relid);
	bool		found;

	brandbos_spi_begin(&state, brandbos_extension_owner());
	if (SPI_execute_with_args("SELECT 1 FROM brandbos.column_registry "
							  "WHERE table_oid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
							  1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read brandbos.column_registry");
	found = SPI_processed > 0;
	brandbos_spi_end(&state);
	return found;
}

