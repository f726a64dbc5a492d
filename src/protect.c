/*
 * protect.c — transparent column encryption: the trigger and the functions
 * that put it on a table, take it off and move values to a new key.
 *
 * brandbos.protect_trigger is a BEFORE INSERT OR UPDATE row trigger.  For
 * each protected column of the new row it:
 *   - leaves NULL alone;
 *   - seals plaintext under the active data key, with associated data made
 *     of the column's stable id and the row's primary key;
 *   - passes an envelope through untouched when it authenticates for this
 *     row and column (dump/restore, COPY, ON CONFLICT, unchanged UPDATEs);
 *   - re-seals the old envelope when an UPDATE changes the primary key;
 *   - rejects any other envelope with XX001, so a ciphertext moved from
 *     another row or column is never stored as if it were plaintext.
 *
 * The per-table configuration (protected columns, primary key) is read from
 * brandbos.column_registry once per backend and cached until a relcache
 * invalidation of the table, which protect_column, unprotect_column and any
 * ALTER TABLE send.
 */
#include "brandbos.h"

#include <sodium.h>

#include "envelope.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

#define PROTECT_TRIGGER_NAME "zz_brandbos_protect"

/* ---------------------------------------------------------------------
 * Per-table configuration cache
 * --------------------------------------------------------------------- */

typedef struct ProtectedColumn
{
	AttrNumber	attnum;
	bool		as_text;
	unsigned char column_id[BRANDBOS_COLUMN_ID_BYTES];
} ProtectedColumn;

typedef struct TableConfig
{
	Oid			relid;			/* hash key */
	bool		valid;
	MemoryContext mcxt;
	int			ncolumns;
	ProtectedColumn *columns;
	int			nkeys;
	AttrNumber *key_attnums;
	BrandbosKeyEncoder *key_encoders;
} TableConfig;

static HTAB *table_configs = NULL;
static uint64 config_generation = 0;

static void
protect_relcache_callback(Datum arg, Oid relid)
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
	CacheRegisterRelcacheCallback(protect_relcache_callback, (Datum) 0);
}

/* OID of the primary-key index of a relation, or InvalidOid */
static Oid
primary_key_index(Relation rel)
{
#if PG_VERSION_NUM >= 170000
	return RelationGetPrimaryKeyIndex(rel, false);
#else
	return RelationGetPrimaryKeyIndex(rel);
#endif
}

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
	Oid			pk;
	Relation	index;
	uint64		i;
	int			k;

	/*
	 * A partition is protected through its partitioned ancestors: the trigger
	 * fires on the leaf, but protect_column registered the root.
	 */
	if (rel->rd_rel->relispartition)
		owners = list_concat(owners, get_partition_ancestors(RelationGetRelid(rel)));
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

	pk = primary_key_index(rel);
	if (!OidIsValid(pk))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key", RelationGetRelationName(rel)),
				 errdetail("brandbos binds protected values and audit entries to the primary key."),
				 errhint("Add a primary key to the table.")));
	index = index_open(pk, AccessShareLock);
	old = MemoryContextSwitchTo(cfg->mcxt);
	cfg->nkeys = index->rd_index->indnkeyatts;
	cfg->key_attnums = palloc(sizeof(AttrNumber) * cfg->nkeys);
	cfg->key_encoders = palloc(sizeof(BrandbosKeyEncoder) * cfg->nkeys);
	for (k = 0; k < cfg->nkeys; k++)
	{
		AttrNumber	attnum = index->rd_index->indkey.values[k];

		cfg->key_attnums[k] = attnum;
		brandbos_key_encoder_init(&cfg->key_encoders[k],
								  TupleDescAttr(tupdesc, attnum - 1)->atttypid,
								  cfg->mcxt);
	}
	MemoryContextSwitchTo(old);
	index_close(index, AccessShareLock);
}

static TableConfig *
get_table_config(Relation rel)
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
	TableConfig *cfg = get_table_config(rel);
	Bitmapset  *protected = NULL;
	int			c;

	for (c = 0; c < cfg->ncolumns; c++)
		protected = bms_add_member(protected, cfg->columns[c].attnum);
	*nkeys = cfg->nkeys;
	*key_attnums = cfg->key_attnums;
	*protected_attnums = protected;
}

/* ---------------------------------------------------------------------
 * Recently sealed values
 *
 * INSERT ... ON CONFLICT DO UPDATE SET col = EXCLUDED.col hands the UPDATE
 * an envelope that the INSERT trigger just sealed for the proposed row,
 * whose primary key may differ from the existing row's.  Remembering the
 * nonce and associated data of the last few seals of the current command
 * lets that UPDATE re-seal exactly those envelopes; any other foreign
 * envelope, including one sealed by an earlier statement of the same
 * transaction, is still rejected.
 * --------------------------------------------------------------------- */

#define RECENT_SEALS 16

typedef struct RecentSeal
{
	LocalTransactionId lxid;
	CommandId	cid;
	unsigned char nonce[24];
	int			ad_len;
	int			ad_cap;
	char	   *ad;				/* TopMemoryContext, grown as needed */
} RecentSeal;

static RecentSeal recent_seals[RECENT_SEALS];
static int	recent_next = 0;

static LocalTransactionId
current_lxid(void)
{
#if PG_VERSION_NUM >= 170000
	return MyProc->vxid.lxid;
#else
	return MyProc->lxid;
#endif
}

static void
remember_seal(const unsigned char *nonce, const char *ad, int ad_len)
{
	RecentSeal *r;

	r = &recent_seals[recent_next];
	if (r->ad_cap < ad_len)
	{
		int			cap = Max(ad_len, 256);

		if (r->ad != NULL)
			pfree(r->ad);
		r->ad = MemoryContextAlloc(TopMemoryContext, cap);
		r->ad_cap = cap;
	}
	recent_next = (recent_next + 1) % RECENT_SEALS;
	r->lxid = current_lxid();
	r->cid = GetCurrentCommandId(false);
	memcpy(r->nonce, nonce, sizeof(r->nonce));
	memcpy(r->ad, ad, ad_len);
	r->ad_len = ad_len;
}

static RecentSeal *
find_recent_seal(const unsigned char *nonce)
{
	LocalTransactionId lxid = current_lxid();
	CommandId	cid = GetCurrentCommandId(false);
	int			i;

	for (i = 0; i < RECENT_SEALS; i++)
		if (recent_seals[i].lxid == lxid && recent_seals[i].cid == cid &&
			memcmp(recent_seals[i].nonce, nonce, 24) == 0)
			return &recent_seals[i];
	return NULL;
}

/* ---------------------------------------------------------------------
 * The trigger
 * --------------------------------------------------------------------- */

/* associated data of one column of a row: "bbad1" || column id || key values */
static void
build_ad(StringInfo ad, TableConfig *cfg, ProtectedColumn *pc,
		 HeapTuple tuple, TupleDesc tupdesc)
{
	int			k;

	resetStringInfo(ad);
	brandbos_ad_begin(ad, pc->column_id);
	for (k = 0; k < cfg->nkeys; k++)
	{
		bool		isnull;
		Datum		v = heap_getattr(tuple, cfg->key_attnums[k], tupdesc, &isnull);

		if (isnull)				/* cannot happen for a primary key */
			elog(ERROR, "primary-key column %d is null", cfg->key_attnums[k]);
		brandbos_ad_append(ad, &cfg->key_encoders[k], v);
	}
}

static bool
key_changed(TableConfig *cfg, HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc)
{
	int			k;

	for (k = 0; k < cfg->nkeys; k++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, cfg->key_attnums[k] - 1);
		bool		oldnull,
					newnull;
		Datum		o = heap_getattr(oldtup, att->attnum, tupdesc, &oldnull);
		Datum		n = heap_getattr(newtup, att->attnum, tupdesc, &newnull);

		if (oldnull != newnull)
			return true;
		if (!oldnull && !datumIsEqual(o, n, att->attbyval, att->attlen))
			return true;
	}
	return false;
}

static Datum
seal_plain_datum(Datum value, bool as_text, StringInfo ad, bool remember)
{
	/* text and bytea share the varlena layout */
	struct varlena *v = PG_DETOAST_DATUM_PACKED(value);
	unsigned char nonce[24];
	Datum		sealed;

	sealed = brandbos_seal_datum(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v),
								 ad->data, ad->len, as_text, nonce);
	if (remember)
		remember_seal(nonce, ad->data, ad->len);
	return sealed;
}

/* open with one associated data and seal again under another */
static Datum
reseal(Datum envelope, bool as_text, const char *from_ad, int from_len,
	   StringInfo to_ad)
{
	char	   *plain;
	size_t		plain_len;
	Datum		sealed;

	plain = brandbos_open_datum(envelope, as_text, from_ad, from_len, &plain_len);
	sealed = brandbos_seal_datum(plain, plain_len, to_ad->data, to_ad->len, as_text, NULL);
	sodium_memzero(plain, plain_len);
	pfree(plain);
	return sealed;
}

/* is a stored envelope under another key than the active one, or an older format? */
static bool
envelope_is_outdated(Datum value, bool as_text)
{
	uint32		version;
	int			format;

	if (!brandbos_envelope_header(value, as_text, &version, &format))
		return true;
	return version != brandbos_active_key_version() || format != BRANDBOS_ENVELOPE_FORMAT;
}

/* associated-data buffers reused from row to row (TopMemoryContext) */
static StringInfoData ad_buffer;
static StringInfoData old_ad_buffer;

PG_FUNCTION_INFO_V1(brandbos_protect_trigger);
/* SQL: brandbos.protect_trigger() returns trigger */
Datum
brandbos_protect_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	tupdesc;
	TableConfig *cfg;
	HeapTuple	newtup,
				oldtup;
	bool		is_update;
	bool		pk_changed = false;
	StringInfo	ad,
				old_ad;
	int		   *repl_cols;
	Datum	   *repl_values;
	bool	   *repl_nulls;
	int			nrepl = 0;
	int			c;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.protect_trigger() must be called as a trigger")));
	if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.protect_trigger() must be a BEFORE INSERT OR UPDATE row trigger")));

	rel = td->tg_relation;
	tupdesc = RelationGetDescr(rel);
	is_update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
	newtup = is_update ? td->tg_newtuple : td->tg_trigtuple;
	oldtup = is_update ? td->tg_trigtuple : NULL;

	cfg = get_table_config(rel);
	if (cfg->ncolumns == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has the brandbos protect trigger but no protected column is registered for it",
						RelationGetRelationName(rel)),
				 errdetail("The row is refused rather than stored unsealed."),
				 errhint("Register the column with brandbos.protect_column(), or drop the trigger if the table is not meant to be protected.")));
	if (is_update)
		pk_changed = key_changed(cfg, oldtup, newtup, tupdesc);

	ad = &ad_buffer;
	old_ad = &old_ad_buffer;
	if (ad->data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(ad);
		initStringInfo(old_ad);
		MemoryContextSwitchTo(old);
	}
	repl_cols = palloc(sizeof(int) * cfg->ncolumns);
	repl_values = palloc(sizeof(Datum) * cfg->ncolumns);
	repl_nulls = palloc0(sizeof(bool) * cfg->ncolumns);

	for (c = 0; c < cfg->ncolumns; c++)
	{
		ProtectedColumn *pc = &cfg->columns[c];
		bool		isnull,
					oldnull = true,
					unchanged = false,
					rewriting;
		Datum		value = heap_getattr(newtup, pc->attnum, tupdesc, &isnull);
		Datum		result;
		char	   *plain;
		size_t		plain_len;
		unsigned char nonce[24];

		if (isnull)
			continue;
		if (is_update)
		{
			Datum		oldvalue = heap_getattr(oldtup, pc->attnum, tupdesc, &oldnull);

			unchanged = !oldnull && datumIsEqual(oldvalue, value, false, -1);
		}
		build_ad(ad, cfg, pc, newtup, tupdesc);

		rewriting = (brandbos_reseal_relid == RelationGetRelid(rel));
		if (rewriting && brandbos_rewrite_mode == BRANDBOS_REWRITE_UNPROTECT)
		{
			/* unprotect_column: this column back to plaintext, the others untouched */
			if (!unchanged ||
				strcmp(NameStr(TupleDescAttr(tupdesc, pc->attnum - 1)->attname),
					   brandbos_unprotect_colname) != 0 ||
				!brandbos_envelope_well_formed(value, pc->as_text))
				continue;
			plain = brandbos_open_datum(value, pc->as_text, ad->data, ad->len, &plain_len);
			{
				bytea	   *out = palloc(VARHDRSZ + plain_len);

				SET_VARSIZE(out, VARHDRSZ + plain_len);
				memcpy(VARDATA(out), plain, plain_len);
				result = PointerGetDatum(out);
			}
			sodium_memzero(plain, plain_len);
			pfree(plain);
		}
		else if (!brandbos_looks_like_envelope(value, pc->as_text))
		{
			/* plaintext: seal it */
			result = seal_plain_datum(value, pc->as_text, ad, !is_update);
		}
		else if (unchanged && rewriting && brandbos_rewrite_mode == BRANDBOS_REWRITE_SEAL)
		{
			/*
			 * protect_column sealing what the table held before: a value is
			 * plaintext unless it is already an envelope for this row and
			 * column (a second protect_column call), even if it happens to
			 * look like one.
			 */
			if (brandbos_envelope_well_formed(value, pc->as_text) &&
				brandbos_try_open_stored_datum(value, pc->as_text, ad->data, ad->len,
											   &plain, &plain_len))
			{
				sodium_memzero(plain, plain_len);
				pfree(plain);
				continue;
			}
			result = seal_plain_datum(value, pc->as_text, ad, false);
		}
		else if (unchanged && !pk_changed &&
				 !(rewriting && envelope_is_outdated(value, pc->as_text)))
		{
			continue;			/* the stored envelope, untouched */
		}
		else if (unchanged)
		{
			/* primary key changed, or reencrypt: move to the new binding/key */
			build_ad(old_ad, cfg, pc, oldtup, tupdesc);
			result = reseal(value, pc->as_text, old_ad->data, old_ad->len, ad);
		}
		else if (brandbos_try_open_datum(value, pc->as_text, ad->data, ad->len,
										 &plain, &plain_len, nonce))
		{
			/*
			 * An envelope sealed for exactly this row and column: stored as
			 * it is, so its key version must outlive this transaction.
			 */
			sodium_memzero(plain, plain_len);
			pfree(plain);
			brandbos_hold_key_version(brandbos_envelope_version_of(value, pc->as_text));
			continue;
		}
		else
		{
			RecentSeal *recent = is_update ? find_recent_seal(nonce) : NULL;

			if (recent == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("envelope in column \"%s\" of table \"%s\" was not sealed for this row",
								NameStr(TupleDescAttr(tupdesc, pc->attnum - 1)->attname),
								RelationGetRelationName(rel)),
						 errdetail("An envelope only authenticates in the row and column it was sealed for."),
						 errhint("Write the plaintext instead; the trigger seals it.")));
			result = reseal(value, pc->as_text, recent->ad, recent->ad_len, ad);
		}
		repl_cols[nrepl] = pc->attnum;
		repl_values[nrepl] = result;
		nrepl++;
	}

	if (nrepl > 0)
		newtup = heap_modify_tuple_by_cols(newtup, tupdesc, nrepl,
										   repl_cols, repl_values, repl_nulls);
	return PointerGetDatum(newtup);
}

/* ---------------------------------------------------------------------
 * Facts for the row rewriter (reencrypt.c)
 * --------------------------------------------------------------------- */

bool
brandbos_row_needs_reseal(Relation rel, TupleTableSlot *slot, BrandbosRewrite mode)
{
	TableConfig *cfg = get_table_config(rel);
	TupleDesc	tupdesc = RelationGetDescr(rel);
	bool		should_free;
	HeapTuple	tuple;
	bool		needs = false;
	int			c;

	if (cfg->ncolumns == 0)
		return false;
	tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
	for (c = 0; c < cfg->ncolumns && !needs; c++)
	{
		ProtectedColumn *pc = &cfg->columns[c];
		bool		isnull;
		Datum		value = heap_getattr(tuple, pc->attnum, tupdesc, &isnull);

		if (isnull)
			continue;
		if (mode == BRANDBOS_REWRITE_UNPROTECT)
			needs = strcmp(NameStr(TupleDescAttr(tupdesc, pc->attnum - 1)->attname),
						   brandbos_unprotect_colname) == 0 &&
				brandbos_envelope_well_formed(value, pc->as_text);
		else if (mode == BRANDBOS_REWRITE_MOVE)
			needs = envelope_is_outdated(value, pc->as_text);
		else if (!brandbos_envelope_well_formed(value, pc->as_text))
			needs = true;
		else
		{
			StringInfoData ad;
			char	   *plain;
			size_t		plain_len;

			initStringInfo(&ad);
			build_ad(&ad, cfg, pc, tuple, tupdesc);
			if (brandbos_try_open_stored_datum(value, pc->as_text, ad.data, ad.len,
											   &plain, &plain_len))
			{
				sodium_memzero(plain, plain_len);
				pfree(plain);
			}
			else
				needs = true;
			pfree(ad.data);
		}
	}
	if (should_free)
		heap_freetuple(tuple);
	return needs;
}

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
	Oid			pk;
	Relation	index;
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

	pk = primary_key_index(rel);
	if (!OidIsValid(pk))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key", t->relname),
				 errdetail("Each protected value is bound to its row's primary key."),
				 errhint("Add a primary key to the table first.")));
	index = index_open(pk, AccessShareLock);
	t->nkeys = index->rd_index->indnkeyatts;
	t->key_names = palloc(sizeof(char *) * t->nkeys);
	for (k = 0; k < t->nkeys; k++)
	{
		AttrNumber	attnum = index->rd_index->indkey.values[k];

		if (attnum == t->attnum)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("column \"%s\" is part of the primary key of \"%s\"", colname, t->relname),
					 errdetail("A primary-key column cannot be protected: it is the associated data of the others.")));
		if (check_type)
			brandbos_require_bindable_key_type(TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid,
											   NameStr(TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attname));
		t->key_names[k] = pstrdup(quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attname)));
	}
	index_close(index, AccessShareLock);
	table_close(rel, NoLock);
}

static void
spi_run(const char *sql, int expect)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expect)
		elog(ERROR, "internal statement failed (%d): %s", rc, sql);
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
		spi_run(sql, SPI_OK_UTILITY);
	}
	PG_FINALLY();
	{
		brandbos_protect_guard_bypass = false;
	}
	PG_END_TRY();
}

static void
spi_run_args(const char *sql, int nargs, Oid *types, Datum *values, int expect)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

	if (rc != expect)
		elog(ERROR, "internal statement failed (%d): %s", rc, sql);
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

	spi_run_args("SELECT column_name::text, column_id::text FROM brandbos.column_registry "
				 "WHERE table_oid = $1 ORDER BY column_name", 1, &argtype, &arg, SPI_OK_SELECT);
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

	spi_run_ddl(dsql.data);
	spi_run_ddl(psprintf("REVOKE ALL ON %s FROM PUBLIC",
						 quote_qualified_identifier(t->nspname, decrypted)));
	spi_run_ddl(psprintf("GRANT SELECT ON %s TO %s",
						 quote_qualified_identifier(t->nspname, decrypted),
						 quote_identifier(BRANDBOS_ROLE_DECRYPTOR)));
	spi_run_ddl(psprintf("COMMENT ON VIEW %s IS %s",
						 quote_qualified_identifier(t->nspname, decrypted),
						 quote_literal_cstr(psprintf("plaintext of %s for brandbos_decryptor; made by brandbos.protect_column", t->relname))));
	if (!sfirst)
	{
		spi_run_ddl(ssql.data);
		spi_run_ddl(psprintf("REVOKE ALL ON %s FROM PUBLIC",
							 quote_qualified_identifier(t->nspname, safe)));
		spi_run_ddl(psprintf("GRANT SELECT ON %s TO %s WITH GRANT OPTION",
							 quote_qualified_identifier(t->nspname, safe),
							 quote_identifier(owner_name)));
		spi_run_ddl(psprintf("COMMENT ON VIEW %s IS %s",
							 quote_qualified_identifier(t->nspname, safe),
							 quote_literal_cstr(psprintf("%s without its protected columns; made by brandbos.protect_column", t->relname))));
	}
	brandbos_spi_end(&state);
}

static bool
trigger_exists(Oid relid)
{
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2];

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(PROTECT_TRIGGER_NAME);
	spi_run_args("SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2::name",
				 2, types, values, SPI_OK_SELECT);
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

	require_args(fcinfo, 2);
	describe_target(PG_GETARG_OID(0), NameStr(*PG_GETARG_NAME(1)), &t, true);

	/* sealing needs a key: fail now, before any DDL, if there is none */
	(void) brandbos_active_key_version();

	/* register the column (as the extension owner) */
	brandbos_spi_begin(&state, brandbos_extension_owner());
	values[0] = ObjectIdGetDatum(t.relid);
	values[1] = PG_GETARG_DATUM(1);
	spi_run_args("INSERT INTO brandbos.column_registry (table_oid, column_name) "
				 "VALUES ($1, $2) ON CONFLICT (table_oid, column_name) DO NOTHING",
				 2, types, values, SPI_OK_INSERT);
	columns = registered_columns(t.relid, caller_cxt);
	brandbos_spi_end(&state);
	CacheInvalidateRelcacheByRelid(t.relid);
	CommandCounterIncrement();

	/* trigger, views and sealing of existing rows (as the caller, the owner) */
	brandbos_spi_begin(&state, GetUserId());
	if (!trigger_exists(t.relid))
		spi_run_ddl(psprintf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE ON %s "
							 "FOR EACH ROW EXECUTE FUNCTION brandbos.protect_trigger()",
							 quote_identifier(PROTECT_TRIGGER_NAME), t.qualified));
	/* session_replication_role = replica must not skip it (partitions follow) */
	spi_run_ddl(psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s", t.qualified,
						 quote_identifier(PROTECT_TRIGGER_NAME)));
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

	require_args(fcinfo, 2);
	describe_target(PG_GETARG_OID(0), NameStr(*PG_GETARG_NAME(1)), &t, false);
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
	spi_run_args("DELETE FROM brandbos.column_registry WHERE table_oid = $1 AND column_name = $2",
				 2, types, values, SPI_OK_DELETE);
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
	spi_run_args("UPDATE brandbos.column_registry SET column_name = $1::name "
				 "WHERE table_oid = $2 AND column_name = $3::name", 3, types, values, SPI_OK_UPDATE);
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
	spi_run("WITH d AS ("
			" DELETE FROM brandbos.column_registry r"
			"  USING pg_catalog.pg_event_trigger_dropped_objects() d"
			"  WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
			"    AND r.table_oid::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid"
			"    AND (d.objsubid OPERATOR(pg_catalog.=) 0"
			"         OR r.column_name OPERATOR(pg_catalog.=) d.address_names[3])"
			" RETURNING r.table_oid::pg_catalog.oid AS relid)"
			" SELECT DISTINCT d.relid FROM d",
			SPI_OK_SELECT);
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
