/*
 * value_scan.c — reading the stored values of a protected column without
 * running anybody's code.
 *
 * key_status(), destroy_key(), column_key_versions() and the
 * protected_columns view need to know which data-key versions the values
 * of a protected column are sealed under.  Asking SQL for that
 * ("SELECT envelope_key_version(col) FROM tbl") would evaluate whatever the
 * table's owner attached to the column: an implicit cast from a type the
 * owner made up, an operator, a policy function.  Evaluated as the caller
 * (a keymaster, or a superuser reading the view) that is privilege
 * escalation; one bad value would also make the whole query fail.
 *
 * So the column is read here, in C: each heap relation of the table (the
 * table itself, or every leaf partition / inheritance child) is opened and
 * scanned through the table AM with a fresh snapshot, the column's type is
 * checked to be exactly text or bytea first, and each value's envelope
 * header is parsed by the pure codec (envelope.h).  No cast, operator,
 * function, trigger, policy or view of the owner is ever called.  The scan
 * still runs as the relation's owner inside a security-restricted
 * operation, so that if PostgreSQL itself ever had to call out (a table
 * access method, say) it would do so with the owner's rights only.
 *
 * A value that is not an envelope, a column whose type was changed, a
 * relation that cannot be scanned: each is counted or reported in the
 * result, never raised, so that one broken table does not stop key
 * management for the others.
 */
#include "brandbos.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/detoast.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "envelope.h"

/* append one count to the result's version list (kept sorted) */
static void
count_version(BrandbosColumnScan *scan, uint32 version)
{
	int			i;

	for (i = 0; i < scan->nversions; i++)
	{
		if (scan->versions[i] == version)
		{
			scan->counts[i]++;
			return;
		}
		if (scan->versions[i] > version)
			break;
	}
	if (scan->nversions == scan->capacity)
	{
		scan->capacity = Max(8, scan->capacity * 2);
		if (scan->versions == NULL)
		{
			scan->versions = MemoryContextAlloc(scan->result_cxt, sizeof(uint32) * scan->capacity);
			scan->counts = MemoryContextAlloc(scan->result_cxt, sizeof(int64) * scan->capacity);
		}
		else
		{
			scan->versions = repalloc(scan->versions, sizeof(uint32) * scan->capacity);
			scan->counts = repalloc(scan->counts, sizeof(int64) * scan->capacity);
		}
	}
	memmove(&scan->versions[i + 1], &scan->versions[i],
			sizeof(uint32) * (scan->nversions - i));
	memmove(&scan->counts[i + 1], &scan->counts[i],
			sizeof(int64) * (scan->nversions - i));
	scan->versions[i] = version;
	scan->counts[i] = 1;
	scan->nversions++;
}

int64
brandbos_column_scan_count(const BrandbosColumnScan *scan, uint32 version)
{
	int			i;

	for (i = 0; i < scan->nversions; i++)
		if (scan->versions[i] == version)
			return scan->counts[i];
	return 0;
}

static void
add_problem(BrandbosColumnScan *scan, const char *problem)
{
	if (scan->problem == NULL)
		scan->problem = pstrdup(problem);
	else
		scan->problem = psprintf("%s; %s", scan->problem, problem);
}

/* scan one heap relation; its column attnum is known to be text or bytea */
static void
scan_relation(Relation rel, AttrNumber attnum, bool as_text,
			  BrandbosColumnScan *scan, MemoryContext rowcxt)
{
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc tscan = table_beginscan(rel, snapshot, 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	uint64		n = 0;

	while (table_scan_getnextslot(tscan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		value = slot_getattr(slot, attnum, &isnull);
		uint32		version;
		int			format;
		bool		is_envelope;
		MemoryContext old;

		if ((++n & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		if (isnull)
			continue;
		/* detoasting the header allocates: in rowcxt, reset per row */
		old = MemoryContextSwitchTo(rowcxt);
		is_envelope = brandbos_envelope_header(value, as_text, &version, &format);
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
		/* the counts outlive the scan: never in rowcxt */
		scan->values++;
		if (is_envelope)
		{
			count_version(scan, version);
			if (format != BB_ENV_FORMAT)
				scan->old_format++;
		}
		else
			scan->not_envelopes++;
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(tscan);
	UnregisterSnapshot(snapshot);
}

void
brandbos_scan_protected_column(Oid relid, const char *colname,
							   BrandbosColumnScan *scan)
{
	List	   *relids;
	ListCell   *lc;
	MemoryContext rowcxt;

	memset(scan, 0, sizeof(*scan));
	scan->result_cxt = CurrentMemoryContext;
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
	{
		add_problem(scan, "the table no longer exists");
		scan->unreadable = true;
		return;
	}

	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "brandbos value scan",
								   ALLOCSET_DEFAULT_SIZES);
	relids = find_all_inheritors(relid, AccessShareLock, NULL);
	foreach(lc, relids)
	{
		Oid			child = lfirst_oid(lc);
		char		relkind = get_rel_relkind(child);
		AttrNumber	attnum;
		Oid			typid;
		Relation	rel;
		BrandbosInternalState state;

		if (relkind == RELKIND_PARTITIONED_TABLE)
			continue;			/* no storage of its own */
		if (relkind != RELKIND_RELATION)
		{
			add_problem(scan, psprintf("\"%s\" is not an ordinary table and cannot be checked",
									   get_rel_name(child)));
			scan->unreadable = true;
			continue;
		}
		attnum = get_attnum(child, colname);
		if (attnum == InvalidAttrNumber)
		{
			add_problem(scan, psprintf("\"%s\" has no column \"%s\"",
									   get_rel_name(child), colname));
			scan->unreadable = true;
			continue;
		}
		typid = get_atttype(child, attnum);
		if (typid != TEXTOID && typid != BYTEAOID)
		{
			add_problem(scan, psprintf("column \"%s\" of \"%s\" is of type %s, not text or bytea",
									   colname, get_rel_name(child), format_type_be(typid)));
			scan->unreadable = true;
			continue;
		}

		rel = table_open(child, AccessShareLock);
		brandbos_internal_begin(&state, rel->rd_rel->relowner);
		scan_relation(rel, attnum, typid == TEXTOID, scan, rowcxt);
		brandbos_internal_end(&state);
		table_close(rel, AccessShareLock);
	}
	MemoryContextDelete(rowcxt);

	if (scan->not_envelopes > 0)
		add_problem(scan, psprintf(INT64_FORMAT " values are not envelopes (stored unsealed)",
								   scan->not_envelopes));
}

/*
 * The envelope header of a stored value, by its framing only (nothing is
 * authenticated): key version and format.  False when the value is not an
 * envelope at all.  Never raises for bad data.
 */
bool
brandbos_envelope_header(Datum value, bool as_text, uint32 *version, int *format)
{
	/* only the first bytes are needed: a large value is not detoasted whole */
	size_t		len = toast_raw_datum_size(value) - VARHDRSZ;
	struct varlena *v = VARATT_IS_EXTENDED(DatumGetPointer(value)) ?
		pg_detoast_datum_slice((struct varlena *) DatumGetPointer(value), 0, 32) :
		(struct varlena *) DatumGetPointer(value);
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(v);
	size_t		have = VARSIZE_ANY_EXHDR(v);
	unsigned char header[9];

	if (have < Min(len, 32))
		return false;

	if (as_text)
	{
		size_t		bin_len;

		if (len < bb_env_text_size(BB_ENV_OVERHEAD) ||
			!bb_env_text_has_prefix((const char *) p, len))
			return false;
		/* 12 base64url characters after the prefix are the first 9 bytes */
		if (bb_env_from_text(header, sizeof(header), &bin_len, (const char *) p,
							 BB_ENV_TEXT_PREFIX_LEN + 12) != BB_ENV_OK || bin_len != 9)
			return false;
		p = header;
	}
	else if (len < BB_ENV_OVERHEAD)
		return false;
	if (p[0] != BB_ENV_MAGIC0 || p[1] != BB_ENV_MAGIC1 ||
		p[2] < 1 || p[2] > BB_ENV_FORMAT)
		return false;
	*format = p[2];
	*version = ((uint32) p[3] << 24) | ((uint32) p[4] << 16) |
		((uint32) p[5] << 8) | p[6];
	return *version != 0;
}

/* may the current user see what a table's protected values look like? */
static bool
may_inspect(Oid relid, const char *colname)
{
	AttrNumber	attnum;

	if (brandbos_has_role(BRANDBOS_ROLE_KEYMASTER))
		return true;
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK)
		return true;
	attnum = get_attnum(relid, colname);
	return attnum != InvalidAttrNumber &&
		pg_attribute_aclcheck(relid, attnum, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
}

static Datum
versions_array(const BrandbosColumnScan *scan)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(scan->nversions, 1));
	int			i;

	for (i = 0; i < scan->nversions; i++)
		elems[i] = Int32GetDatum((int32) Min(scan->versions[i], (uint32) PG_INT32_MAX));
	return PointerGetDatum(construct_array(elems, scan->nversions, INT4OID,
										   sizeof(int32), true, TYPALIGN_INT));
}

PG_FUNCTION_INFO_V1(brandbos_protected_column_report);
/*
 * SQL: brandbos.protected_column_report() returns table(table_name regclass,
 *      column_name name, column_id uuid, protected_at timestamptz,
 *      key_versions int[], problem text)
 *
 * The rows of brandbos.protected_columns.  key_versions and problem are
 * shown to keymasters and to roles that may read the column; NULL to others.
 */
Datum
brandbos_protected_column_report(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	BrandbosInternalState state;
	SPITupleTable *rows;
	uint64		nrows,
				i;
	Oid			caller = GetUserId();

	InitMaterializedSRF(fcinfo, 0);
	brandbos_spi_begin(&state, brandbos_extension_owner());
	if (SPI_execute("SELECT table_oid::pg_catalog.oid, column_name, column_id, protected_at "
					"FROM brandbos.column_registry ORDER BY table_oid, column_name",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read brandbos.column_registry");
	rows = SPI_tuptable;
	nrows = SPI_processed;
	for (i = 0; i < nrows; i++)
	{
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, true, true};
		bool		isnull;
		Oid			relid;
		char	   *colname;
		bool		visible;
		Oid			inner_user;
		int			inner_sec;

		relid = DatumGetObjectId(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
		values[0] = ObjectIdGetDatum(relid);
		values[1] = SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull);
		values[2] = SPI_getbinval(rows->vals[i], rows->tupdesc, 3, &isnull);
		values[3] = SPI_getbinval(rows->vals[i], rows->tupdesc, 4, &isnull);
		colname = NameStr(*DatumGetName(values[1]));

		/* the privilege checks are the caller's, not the extension owner's */
		GetUserIdAndSecContext(&inner_user, &inner_sec);
		SetUserIdAndSecContext(caller, inner_sec);
		visible = SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)) &&
			may_inspect(relid, colname);
		SetUserIdAndSecContext(inner_user, inner_sec);

		if (visible)
		{
			BrandbosColumnScan scan;
			AttrNumber	attnum = get_attnum(relid, colname);
			char	   *guard = attnum != InvalidAttrNumber ?
				brandbos_protection_problem(relid, attnum) : NULL;

			brandbos_scan_protected_column(relid, colname, &scan);
			values[4] = versions_array(&scan);
			nulls[4] = scan.unreadable;
			if (guard != NULL)
				add_problem(&scan, guard);
			if (scan.problem != NULL)
			{
				values[5] = CStringGetTextDatum(scan.problem);
				nulls[5] = false;
			}
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	brandbos_spi_end(&state);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(brandbos_column_key_versions);
/*
 * SQL: brandbos.column_key_versions(tbl regclass, col name) returns int[]
 *
 * Distinct key versions of a column's envelopes; NULL when the caller may
 * not read the column or it cannot be read (see protected_columns.problem).
 */
Datum
brandbos_column_key_versions(PG_FUNCTION_ARGS)
{
	Oid			relid;
	const char *colname;
	BrandbosColumnScan scan;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	relid = PG_GETARG_OID(0);
	colname = NameStr(*PG_GETARG_NAME(1));
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)) ||
		!may_inspect(relid, colname))
		PG_RETURN_NULL();
	brandbos_scan_protected_column(relid, colname, &scan);
	if (scan.unreadable)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(versions_array(&scan));
}

/* is the value a well-formed envelope, by its whole framing?  Never raises. */
bool
brandbos_envelope_well_formed(Datum value, bool as_text)
{
	struct varlena *v = PG_DETOAST_DATUM_PACKED(value);
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(v);
	size_t		len = VARSIZE_ANY_EXHDR(v);
	bb_envelope env;
	bool		ok;

	if (!as_text)
		return bb_env_parse(p, len, &env) == BB_ENV_OK;
	if (!bb_env_text_has_prefix((const char *) p, len))
		return false;
	{
		size_t		cap = bb_env_binary_cap(len);
		unsigned char *bin = palloc(cap);
		size_t		bin_len;

		ok = bb_env_from_text(bin, cap, &bin_len, (const char *) p, len) == BB_ENV_OK &&
			bb_env_parse(bin, bin_len, &env) == BB_ENV_OK;
		pfree(bin);
	}
	return ok;
}
