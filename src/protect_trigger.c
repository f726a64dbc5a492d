/*
 * protect_trigger.c — the trigger that seals protected columns, and the
 * same decisions for the row rewriter.
 *
 * brandbos.protect_trigger is a BEFORE INSERT OR UPDATE row trigger.  For
 * each protected column of the new row it:
 *   - leaves NULL alone;
 *   - seals plaintext under the active data key, bound (associated data)
 *     to the column's stable id and the row's primary key;
 *   - keeps an envelope that authenticates for this very row and column
 *     (dump and restore, COPY, ON CONFLICT, an UPDATE that leaves it), and
 *     then holds its key version until the transaction ends, so destroy_key
 *     cannot shred a value being stored;
 *   - seals the old value again when an UPDATE changes the primary key;
 *   - refuses any other envelope with XX001: a ciphertext copied from
 *     another row or column is never stored as if it were plaintext.
 *
 * The one exception is INSERT ... ON CONFLICT DO UPDATE, whose UPDATE may
 * receive what the INSERT trigger just sealed for the proposed row: the
 * last few seals of the current command are remembered (RecentSeal) and
 * only those are sealed again for the existing row.
 *
 * While reencrypt.c rewrites a relation (brandbos_reseal_relid), the
 * trigger moves stored envelopes to the active key, seals what
 * protect_column found in place, or opens one column for unprotect_column;
 * brandbos_row_needs_reseal makes the same choice without writing, so the
 * rewriter touches only the rows that need it.
 */
#include "brandbos.h"
#include "table_shape.h"

#include <sodium.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "storage/proc.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"

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
	return BRANDBOS_PROC_LXID(MyProc);
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

	cfg = brandbos_table_config(rel);
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
	TableConfig *cfg = brandbos_table_config(rel);
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
