/*
 * audit_table_cache.c — per audited table, what the audit trigger would
 * otherwise look up for every row.
 *
 * For each column: how its value maps into the row image (audit_row_image.c)
 * and its type's output function, resolved once; and the table's quoted
 * qualified name, the resource_type of its audit rows.
 *
 * Invariants:
 *   - an entry (one small context per table under CacheMemoryContext) is
 *     used until a relcache invalidation of its table or of every table
 *     (ALTER TABLE, a rename, a column type change send one); a change of
 *     any schema (ALTER SCHEMA ... RENAME sends no relcache invalidation)
 *     drops every cached name; an invalidation that arrives while an entry
 *     loads leaves it invalid, so the next use loads it again;
 *   - an entry is checked against the descriptor it is used with (number of
 *     columns, each column's type): a mismatch reloads it, so a stale entry
 *     can never encode a value with another type's function;
 *   - a reloaded entry's old memory is kept to the end of the transaction,
 *     so a caller further up the stack never reads freed memory;
 *   - the name of a Citus shard's table is not cached (it is the logical
 *     table's, which can be renamed without an invalidation of the shard).
 */
#include "brandbos.h"
#include "audit_table_cache.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

static HTAB *audit_tables = NULL;
static uint64 audit_tables_generation = 0;
static bool namespace_callback_registered = false;

/* relcache invalidation of relid (InvalidOid: of every table) */
void
brandbos_audit_table_cache_relcache_changed(Oid relid)
{
	HASH_SEQ_STATUS seq;
	AuditTableInfo *entry;

	if (audit_tables == NULL)
		return;
	audit_tables_generation++;
	if (OidIsValid(relid))
	{
		entry = hash_search(audit_tables, &relid, HASH_FIND, NULL);
		if (entry)
			entry->valid = false;
		return;
	}
	hash_seq_init(&seq, audit_tables);
	while ((entry = hash_seq_search(&seq)) != NULL)
		entry->valid = false;
}

/* a schema changed (renamed, dropped): no cached name can be trusted */
static void
namespace_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	brandbos_audit_table_cache_relcache_changed(InvalidOid);
}

/* the way a value of type typid goes into a row image */
static AuditValueKind
value_kind(Oid typid)
{
	switch (getBaseType(typid))
	{
		case BOOLOID:
			return AUDIT_VALUE_BOOL;
		case INT2OID:
			return AUDIT_VALUE_INT2;
		case INT4OID:
			return AUDIT_VALUE_INT4;
		case INT8OID:
			return AUDIT_VALUE_INT8;
		case OIDOID:
			return AUDIT_VALUE_OID;
		case NUMERICOID:
			return AUDIT_VALUE_NUMERIC;
		case JSONBOID:
			return AUDIT_VALUE_JSONB;
		case JSONOID:
			return AUDIT_VALUE_JSON;
		case FLOAT4OID:
		case FLOAT8OID:
			return AUDIT_VALUE_FLOAT;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			/* their output functions print the stored bytes as they are */
			return AUDIT_VALUE_TEXT;
		default:
			return AUDIT_VALUE_OTHER;
	}
}

/* fill an entry from rel's descriptor, in the entry's own context */
static void
load_entry(AuditTableInfo *info, Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	Oid			relid = RelationGetRelid(rel);
	MemoryContext old = MemoryContextSwitchTo(info->mcxt);
	int			a;

	info->natts = tupdesc->natts;
	info->columns = palloc0(sizeof(AuditColumnInfo) * Max(tupdesc->natts, 1));
	for (a = 0; a < tupdesc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, a);
		AuditColumnInfo *col = &info->columns[a];
		Oid			outfn;
		bool		isvarlena;

		col->dropped = att->attisdropped;
		if (col->dropped)
			continue;
		col->typid = att->atttypid;
		col->kind = value_kind(att->atttypid);
		getTypeOutputInfo(att->atttypid, &outfn, &isvarlena);
		fmgr_info_cxt(outfn, &col->output, info->mcxt);
	}
	info->qualified_name = NULL;
	if (brandbos_logical_relid(relid) == relid)
		info->qualified_name =
			pstrdup(quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
											   RelationGetRelationName(rel)));
	MemoryContextSwitchTo(old);
}

/* does the entry still describe this descriptor, column by column? */
static bool
entry_matches(AuditTableInfo *info, TupleDesc tupdesc)
{
	int			a;

	if (info->natts != tupdesc->natts)
		return false;
	for (a = 0; a < tupdesc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, a);

		if (att->attisdropped != info->columns[a].dropped ||
			(!att->attisdropped && att->atttypid != info->columns[a].typid))
			return false;
	}
	return true;
}

AuditTableInfo *
brandbos_audit_table_info(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	AuditTableInfo *info;
	bool		found;
	uint64		generation;

	if (audit_tables == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(AuditTableInfo);
		ctl.hcxt = CacheMemoryContext;
		audit_tables = hash_create("brandbos audited tables", 32, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (!namespace_callback_registered)
	{
		CacheRegisterSyscacheCallback(NAMESPACEOID, namespace_changed, (Datum) 0);
		namespace_callback_registered = true;
	}
	info = hash_search(audit_tables, &relid, HASH_ENTER, &found);
	if (found && info->valid && entry_matches(info, RelationGetDescr(rel)))
		return info;
	if (!found)
		info->mcxt = NULL;
	/*
	 * The old entry may still be in use further up the stack (an output
	 * function whose work fires this trigger again): its memory lives on to
	 * the end of the transaction.
	 */
	if (info->mcxt != NULL)
		MemoryContextSetParent(info->mcxt, TopTransactionContext);
	info->valid = false;
	info->mcxt = AllocSetContextCreate(CacheMemoryContext, "brandbos audited table",
									   ALLOCSET_SMALL_SIZES);
	generation = audit_tables_generation;
	load_entry(info, rel);
	/* an invalidation that arrived while loading makes the next call reload */
	info->valid = (generation == audit_tables_generation);
	return info;
}
