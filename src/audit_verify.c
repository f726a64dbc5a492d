/*
 * audit_verify.c — checking the audit chain: verify_audit.
 *
 * verify_audit trusts nothing stored: it recomputes every row's payload and
 * leaf hash from its columns, every block's Merkle root from those leaves,
 * every block hash from its header, and checks each signature against a
 * trusted key: the one derived from the root key, or the public key of a
 * digest the caller passes.  Never against the key stored with the block
 * (anyone who rewrites a block can store a key of their own); with no
 * trusted key it says so, in a row 'signatures not checked'.  So a
 * superuser who disabled the triggers and edited rows, leaf hashes or
 * blocks is reported.  Problems are returned as rows; malformed stored
 * values are problems too, never errors.
 *
 * Two changes are sanctioned (audit_retention.c), and accepted only
 * through what no caller can write alone: a cleared payload when the row
 * has both an audit_redactions record and an audit_redacted event; a block
 * whose rows are all gone when it has an audit_prunes record with a
 * well-formed signature that verifies against the trusted key (when there
 * is one), and every block before it was pruned too.  A row still present
 * in a pruned block's range is checked like any other; the audit_pruned
 * event is for readers only.
 *
 * Digests (writing one, verify_audit_digest) are audit_digest_sql.c's.
 */
#include "brandbos.h"
#include "audit_digest.h"
#include "audit_store.h"
#include "merkle.h"

#include <sodium.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "commands/dbcommands.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/xid8.h"
#include "utils/timestamp.h"

/* problem kinds, as reported by verify_audit */
#define P_CHANGED_ROW	"changed row"
#define P_DELETED_ROW	"deleted row"
#define P_INSERTED_ROW	"inserted row"
#define P_CHANGED_BLOCK "changed block"
#define P_REMOVED_BLOCK "removed block"
#define P_BROKEN_CHAIN	"broken chain"
#define P_BAD_SIGNATURE "bad signature"
#define P_NOT_CHECKED	"signatures not checked"

typedef struct Reporter
{
	ReturnSetInfo *rsinfo;
	int64		count;
} Reporter;

static void
report(Reporter *r, int64 block_id, int64 audit_id, const char *problem, const char *detail)
{
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (block_id > 0)
		values[0] = Int64GetDatum(block_id);
	else
		nulls[0] = true;
	if (audit_id > 0)
		values[1] = Int64GetDatum(audit_id);
	else
		nulls[1] = true;
	values[2] = CStringGetTextDatum(problem);
	values[3] = CStringGetTextDatum(detail);
	tuplestore_putvalues(r->rsinfo->setResult, r->rsinfo->setDesc, values, nulls);
	r->count++;
}

/* copy a 32-byte hash out of a bytea datum; false if NULL or another size */
static bool
get_hash(HeapTuple tup, TupleDesc desc, int col, unsigned char *out, size_t len)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	bytea	   *b;

	if (isnull)
		return false;
	b = DatumGetByteaPP(d);
	if (VARSIZE_ANY_EXHDR(b) != len)
		return false;
	memcpy(out, VARDATA_ANY(b), len);
	return true;
}

static int64
get_int8(HeapTuple tup, TupleDesc desc, int col, bool *isnull)
{
	Datum		d = SPI_getbinval(tup, desc, col, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

/* the public key derived from the root key, when one is loaded */
void
brandbos_audit_read_block(HeapTuple tup, TupleDesc desc, BlockRow *b)
{
	bool		isnull;
	bool		ok = true;
	Datum		d;

	memset(b, 0, sizeof(*b));
	b->h.block_id = get_int8(tup, desc, 1, &isnull);
	ok &= get_hash(tup, desc, 2, b->h.prev_hash, BB_HASH_BYTES);
	ok &= get_hash(tup, desc, 3, b->h.root_hash, BB_HASH_BYTES);
	b->h.first_id = get_int8(tup, desc, 4, &isnull);
	b->h.last_id = get_int8(tup, desc, 5, &isnull);
	b->h.row_count = get_int8(tup, desc, 6, &isnull);
	d = SPI_getbinval(tup, desc, 7, &isnull);
	if (!isnull)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			i;

		deconstruct_array(DatumGetArrayTypeP(d), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &elems, &nulls, &b->nmissing);
		b->missing = palloc(sizeof(int64) * Max(b->nmissing, 1));
		for (i = 0; i < b->nmissing; i++)
			b->missing[i] = nulls[i] ? 0 : DatumGetInt64(elems[i]);
	}
	else
		ok = false;
	d = SPI_getbinval(tup, desc, 8, &isnull);
	b->h.sealed_at = isnull ? 0 : DatumGetTimestampTz(d);
	ok &= get_hash(tup, desc, 9, b->stored_hash, BB_HASH_BYTES);
	ok &= get_hash(tup, desc, 10, b->signature, crypto_sign_BYTES);
	ok &= get_hash(tup, desc, 11, b->public_key, crypto_sign_PUBLICKEYBYTES);
	if (b->missing)
		bb_ids_hash(b->h.missing_hash, b->missing, b->nmissing);
	b->well_formed = ok;
}

static bool
id_is_missing(const BlockRow *b, int64 id)
{
	int			i;

	for (i = 0; i < b->nmissing; i++)
		if (b->missing[i] == id)
			return true;
	return false;
}

/* recompute a row's payload and leaf hashes from its columns */
#define ROW_COLUMNS "id, occurred_at, txid, tenant_id, user_id, db_user, action, resource_type, " \
	"resource_id, details, ip_address, user_agent, payload_hash, leaf_hash"

static char *
nullable_text(HeapTuple tup, TupleDesc desc, int col)
{
	return SPI_getvalue(tup, desc, col);	/* NULL for NULL */
}

/*
 * Check one row; returns false (and reports) when it does not match its
 * stored hashes.  The recomputed leaf is written to leaf.
 */
static bool
check_row(Reporter *r, int64 block_id, HeapTuple tup, TupleDesc desc,
		  bool redacted, unsigned char *leaf)
{
	BrandbosAuditRow row;
	unsigned char stored_payload[BB_HASH_BYTES];
	unsigned char stored_leaf[BB_HASH_BYTES];
	bool		isnull,
				details_null,
				ip_null,
				ua_null;
	Datum		details,
				ip,
				ua;
	bool		have_payload = get_hash(tup, desc, 13, stored_payload, BB_HASH_BYTES);
	bool		have_leaf = get_hash(tup, desc, 14, stored_leaf, BB_HASH_BYTES);

	memset(&row, 0, sizeof(row));
	row.id = get_int8(tup, desc, 1, &isnull);
	row.occurred_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
	row.txid = U64FromFullTransactionId(DatumGetFullTransactionId(SPI_getbinval(tup, desc, 3, &isnull)));
	row.tenant_id = nullable_text(tup, desc, 4);
	row.user_id = nullable_text(tup, desc, 5);
	row.db_user = nullable_text(tup, desc, 6);
	row.action = nullable_text(tup, desc, 7);
	row.resource_type = nullable_text(tup, desc, 8);
	row.resource_id = nullable_text(tup, desc, 9);
	details = SPI_getbinval(tup, desc, 10, &details_null);
	ip = SPI_getbinval(tup, desc, 11, &ip_null);
	ua = SPI_getbinval(tup, desc, 12, &ua_null);

	if (redacted && details_null && ip_null && ua_null && have_payload)
		memcpy(row.payload_hash, stored_payload, BB_HASH_BYTES);
	else
	{
		brandbos_audit_payload_hash(details_null ? NULL : DatumGetJsonbP(details),
									ip_null ? NULL : DatumGetInetPP(ip),
									ua_null ? NULL : DatumGetTextPP(ua),
									row.payload_hash);
		if (!have_payload || memcmp(row.payload_hash, stored_payload, BB_HASH_BYTES) != 0)
		{
			report(r, block_id, row.id, P_CHANGED_ROW,
				   redacted ? "the payload of a redacted row is not empty"
				   : "details, ip_address or user_agent no longer match the payload hash");
			brandbos_audit_leaf_hash(&row, leaf);
			return false;
		}
	}
	brandbos_audit_leaf_hash(&row, leaf);
	if (!have_leaf || memcmp(leaf, stored_leaf, BB_HASH_BYTES) != 0)
	{
		report(r, block_id, row.id, P_CHANGED_ROW, "the row's columns no longer hash to its leaf hash");
		return false;
	}
	return true;
}

/* ids of rows whose payload was redacted through redact_audit (with its event) */
static List *
sanctioned_redactions(void)
{
	List	   *ids = NIL;
	uint64		i;

	brandbos_sql_exec("SELECT r.audit_id FROM brandbos.audit_redactions r "
					  "WHERE EXISTS (SELECT 1 FROM brandbos.audit_entries e WHERE e.action = 'audit_redacted' "
					  "AND e.resource_id = r.audit_id::text)", 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		id = get_int8(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		int64	   *p = palloc(sizeof(int64));

		*p = id;
		ids = lappend(ids, p);
	}
	return ids;
}

static bool
int64_list_member(List *list, int64 v)
{
	ListCell   *lc;

	foreach(lc, list)
		if (*(int64 *) lfirst(lc) == v)
			return true;
	return false;
}

/* a row of brandbos.audit_prunes: a block and the signature over its hash */
typedef struct PruneRecord
{
	int64		block_id;
	bool		has_signature;
	unsigned char signature[crypto_sign_BYTES];
} PruneRecord;

/* the prune records (sorted by block id), whatever wrote them: each is checked where it is used */
typedef struct PruneRecords
{
	PruneRecord *items;
	uint64		n;
} PruneRecords;

static PruneRecords
prune_records(void)
{
	PruneRecords records;
	uint64		i;

	brandbos_sql_exec("SELECT block_id, signature FROM brandbos.audit_prunes ORDER BY block_id", 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	records.n = SPI_processed;
	records.items = palloc0(sizeof(PruneRecord) * Max(records.n, 1));
	for (i = 0; i < records.n; i++)
	{
		bool		isnull;
		PruneRecord *p = &records.items[i];

		p->block_id = get_int8(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		p->has_signature = get_hash(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2,
									p->signature, crypto_sign_BYTES);
	}
	SPI_freetuptable(SPI_tuptable);
	return records;
}

/* binary search: block_id is the table's primary key */
static const PruneRecord *
find_prune(const PruneRecords *records, int64 block_id)
{
	uint64		lo = 0,
				hi = records->n;

	while (lo < hi)
	{
		uint64		mid = lo + (hi - lo) / 2;

		if (records->items[mid].block_id == block_id)
			return &records->items[mid];
		if (records->items[mid].block_id < block_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Verify one block's rows against its header.  When the block has a prune
 * record and none of its rows is left, nothing is reported and true is
 * returned: the caller decides whether the prune is genuine.  A block with
 * a prune record that still has rows is checked like any other.
 */
static bool
verify_block_rows(Reporter *r, const BlockRow *b, List *redacted, bool has_prune_record)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2];
	SPITupleTable *rows;
	uint64		n,
				i;
	unsigned char *leaves,
			   *scratch;
	unsigned char root[BB_HASH_BYTES];
	int64		expect = b->h.first_id;
	bool		membership_ok = true;
	bool		rows_ok = true;
	int			j;

	values[0] = Int64GetDatum(b->h.first_id);
	values[1] = Int64GetDatum(b->h.last_id);
	brandbos_sql_exec("SELECT " ROW_COLUMNS " FROM brandbos.audit_entries WHERE id BETWEEN $1 AND $2 ORDER BY id", 2, types, values, NULL, false, SPI_OK_SELECT);
	rows = SPI_tuptable;
	n = SPI_processed;
	if (n == 0 && has_prune_record)
	{
		SPI_freetuptable(rows);
		return true;
	}
	leaves = palloc(Max(n, 1) * BB_HASH_BYTES);
	scratch = palloc(Max(n, 1) * BB_HASH_BYTES);

	for (i = 0; i < n; i++)
	{
		bool		isnull;
		int64		id = get_int8(rows->vals[i], rows->tupdesc, 1, &isnull);

		/* expected ids skipped over were deleted */
		for (; expect < id; expect++)
			if (!id_is_missing(b, expect))
			{
				report(r, b->h.block_id, expect, P_DELETED_ROW, "the block sealed a row with this id");
				membership_ok = false;
			}
		expect = id + 1;
		if (id_is_missing(b, id))
		{
			report(r, b->h.block_id, id, P_INSERTED_ROW, "the block sealed no row with this id");
			membership_ok = false;
		}
		if (!check_row(r, b->h.block_id, rows->vals[i], rows->tupdesc,
					   int64_list_member(redacted, id), leaves + i * BB_HASH_BYTES))
			rows_ok = false;
	}
	for (; expect <= b->h.last_id; expect++)
		if (!id_is_missing(b, expect))
		{
			report(r, b->h.block_id, expect, P_DELETED_ROW, "the block sealed a row with this id");
			membership_ok = false;
		}
	for (j = 0; j < b->nmissing; j++)
		if (b->missing[j] < b->h.first_id || b->missing[j] > b->h.last_id)
			membership_ok = false;

	if (membership_ok && rows_ok)
	{
		bb_merkle_root(root, leaves, n, scratch);
		if ((int64) n != b->h.row_count || memcmp(root, b->h.root_hash, BB_HASH_BYTES) != 0)
			report(r, b->h.block_id, 0, P_CHANGED_ROW,
				   "the block's rows (with their leaf hashes) no longer hash to its Merkle root");
	}
	SPI_freetuptable(rows);
	pfree(leaves);
	pfree(scratch);
	return false;
}

/* where the key that signatures are checked against came from */
typedef enum TrustedKey
{
	TRUSTED_NONE,				/* no root key, no digest: signatures are not checked */
	TRUSTED_ROOT,				/* derived from the root key */
	TRUSTED_DIGEST				/* the public key of a digest the caller passed */
} TrustedKey;

PG_FUNCTION_INFO_V1(brandbos_verify_audit);
/*
 * SQL: brandbos.verify_audit(from_block bigint default null, digest jsonb default null)
 *      returns table(block_id bigint, audit_id bigint, problem text, detail text)
 */
Datum
brandbos_verify_audit(PG_FUNCTION_ARGS)
{
	Reporter	r;
	BrandbosInternalState state;
	int64		from = PG_ARGISNULL(0) ? 1 : PG_GETARG_INT64(0);
	unsigned char trusted_pk[crypto_sign_PUBLICKEYBYTES];
	TrustedKey	trust = TRUSTED_NONE;
	bb_digest	given;
	bool		have_given = false;
	List	   *redacted;
	PruneRecords prunes;
	SPITupleTable *blocks;
	uint64		nblocks,
				i;
	BlockRow	prev;
	bool		have_prev = false;
	bool		pruned_prefix = true;	/* every examined block so far was pruned */
	int64		examined = 0;
	Oid			argtype = INT8OID;
	Datum		arg;

	brandbos_require_role(BRANDBOS_ROLE_AUDITOR, "verify the brandbos audit log");
	if (from < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_block must be at least 1")));
	if (PG_NARGS() > 1 && !PG_ARGISNULL(1))
	{
		brandbos_audit_parse_digest(PG_GETARG_JSONB_P(1), &given);
		if (!given.has_public_key)
			brandbos_audit_malformed_digest("The digest has no public_key member, so it cannot say which key signed the chain.");
		have_given = true;
	}
	if (brandbos_audit_trusted_public_key(trusted_pk))
		trust = TRUSTED_ROOT;
	else if (have_given)
	{
		memcpy(trusted_pk, given.public_key, sizeof(trusted_pk));
		trust = TRUSTED_DIGEST;
	}
	InitMaterializedSRF(fcinfo, 0);
	r.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	r.count = 0;
	if (trust == TRUSTED_ROOT && have_given &&
		memcmp(given.public_key, trusted_pk, sizeof(trusted_pk)) != 0)
		report(&r, 0, 0, P_BAD_SIGNATURE, "the digest's public key is not the key derived from the root key");

	brandbos_spi_begin(&state, brandbos_extension_owner());
	redacted = sanctioned_redactions();
	prunes = prune_records();

	arg = Int64GetDatum(from - 1);
	brandbos_sql_exec("SELECT " BLOCK_COLUMNS " FROM brandbos.audit_blocks WHERE block_id >= $1 ORDER BY block_id", 1, &argtype, &arg, NULL, false, SPI_OK_SELECT);
	blocks = SPI_tuptable;
	nblocks = SPI_processed;

	for (i = 0; i < nblocks; i++)
	{
		BlockRow	b;
		unsigned char recomputed[BB_HASH_BYTES];
		static const unsigned char zero[BB_HASH_BYTES];
		const PruneRecord *pr;

		brandbos_audit_read_block(blocks->vals[i], blocks->tupdesc, &b);
		if (b.h.block_id < from)
		{
			prev = b;			/* only the anchor of the chain check */
			have_prev = true;
			continue;
		}
		examined++;
		if (!b.well_formed)
		{
			report(&r, b.h.block_id, 0, P_CHANGED_BLOCK, "a hash, signature or key of the block is malformed");
			prev = b;
			have_prev = true;
			pruned_prefix = false;
			continue;
		}

		/* chain: consecutive ids, ranges and hashes */
		if (have_prev && b.h.block_id != prev.h.block_id + 1)
			report(&r, b.h.block_id, 0, P_REMOVED_BLOCK,
				   psprintf("blocks " INT64_FORMAT " to " INT64_FORMAT " are missing",
							prev.h.block_id + 1, b.h.block_id - 1));
		else if (!have_prev && b.h.block_id != 1 && from == 1)
			report(&r, b.h.block_id, 0, P_REMOVED_BLOCK,
				   psprintf("blocks 1 to " INT64_FORMAT " are missing", b.h.block_id - 1));
		if (have_prev && memcmp(b.h.prev_hash, prev.stored_hash, BB_HASH_BYTES) != 0)
			report(&r, b.h.block_id, 0, P_BROKEN_CHAIN, "prev_hash is not the hash of the block before");
		else if (!have_prev && b.h.block_id == 1 && memcmp(b.h.prev_hash, zero, BB_HASH_BYTES) != 0)
			report(&r, b.h.block_id, 0, P_BROKEN_CHAIN, "the first block does not start the chain");
		if (have_prev && b.h.first_id != prev.h.last_id + 1)
			report(&r, b.h.block_id, 0, P_CHANGED_BLOCK, "the id range does not follow the block before");
		else if (!have_prev && b.h.block_id == 1 && b.h.first_id != 1)
			report(&r, b.h.block_id, 0, P_CHANGED_BLOCK, "the first block does not start at id 1");

		/* header and signature (never against the key stored with the block) */
		bb_block_hash(recomputed, &b.h);
		if (memcmp(recomputed, b.stored_hash, BB_HASH_BYTES) != 0)
			report(&r, b.h.block_id, 0, P_CHANGED_BLOCK, "the header no longer hashes to block_hash");
		else if (trust != TRUSTED_NONE && memcmp(trusted_pk, b.public_key, sizeof(trusted_pk)) != 0)
			report(&r, b.h.block_id, 0, P_BAD_SIGNATURE, "the block was signed by another key");
		else if (trust != TRUSTED_NONE &&
				 crypto_sign_verify_detached(b.signature, recomputed, BB_HASH_BYTES, trusted_pk) != 0)
			report(&r, b.h.block_id, 0, P_BAD_SIGNATURE, "the signature does not verify");

		/* rows; a block without rows is accepted only as a genuine prune */
		pr = find_prune(&prunes, b.h.block_id);
		if (verify_block_rows(&r, &b, redacted, pr != NULL))
		{
			const char *why = NULL;
			unsigned char msg[BB_HASH_BYTES];

			brandbos_audit_prune_message(msg, b.h.block_id, b.stored_hash);
			if (!pruned_prefix)
				why = "an earlier block still has its rows, and prune_audit prunes only the oldest blocks";
			else if (!pr->has_signature)
				why = "its prune record has no well-formed signature";
			else if (trust != TRUSTED_NONE &&
					 crypto_sign_verify_detached(pr->signature, msg, BB_HASH_BYTES, trusted_pk) != 0)
				why = "the signature of its prune record does not verify";
			if (why)
			{
				report(&r, b.h.block_id, 0, P_DELETED_ROW,
					   psprintf("all rows of the block are gone and it was not pruned by prune_audit: %s", why));
				pruned_prefix = false;
			}
		}
		else
			pruned_prefix = false;
		prev = b;
		have_prev = true;
	}

	if (trust == TRUSTED_NONE && examined > 0)
		report(&r, 0, 0, P_NOT_CHECKED,
			   "no root key is loaded and no digest was passed: block and prune signatures were not "
			   "checked against a trusted key (pass a digest kept outside the database)");

	/* rows beyond the last block's range that claim nothing are fine (unsealed) */
	brandbos_spi_end(&state);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Offered to audit_retention.c and audit_digest_sql.c (audit_store.h)
 * --------------------------------------------------------------------- */

/* the public key the chain must be signed with: derived from the root key, if loaded */
bool
brandbos_audit_trusted_public_key(unsigned char *pk)
{
	unsigned char sk[crypto_sign_SECRETKEYBYTES];

	if (!brandbos_root_key_available())
		return false;
	brandbos_audit_signing_keypair(pk, sk);
	sodium_memzero(sk, sizeof(sk));
	return true;
}

bool
brandbos_audit_get_hash(HeapTuple tup, TupleDesc desc, int col, unsigned char *out, size_t len)
{
	return get_hash(tup, desc, col, out, len);
}

int64
brandbos_audit_get_int8(HeapTuple tup, TupleDesc desc, int col, bool *isnull)
{
	return get_int8(tup, desc, col, isnull);
}
