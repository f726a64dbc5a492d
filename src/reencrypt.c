/*
 * reencrypt.c — rewriting the protected values of a table in place: moving
 * them to the active data key (reencrypt, reencrypt_table) and sealing the
 * values a table already held when protect_column was called.
 *
 * Rows are rewritten the way logical replication applies an UPDATE: the
 * heap is walked once, block by block, with a fresh snapshot; each row that
 * needs it is locked (following its update chain to the newest version),
 * checked again, and updated through ExecSimpleRelationUpdate with the same
 * values.  The protect trigger fires for that update, sees which rewrite is
 * running (brandbos_reseal_relid / brandbos_rewrite_mode) and re-seals, or
 * for unprotect_column puts the plaintext back.
 * Indexes, constraints and the owner's other triggers are handled by the
 * executor as for any UPDATE.
 *
 * Invariants:
 *   - all of it runs as the table's owner in a security-restricted
 *     operation, so no code of the owner ever runs with the keymaster's
 *     rights;
 *   - row level security does not apply (no query is planned), so a table
 *     under FORCE ROW LEVEL SECURITY is re-sealed completely; values never
 *     leave the server, only their ciphertext changes;
 *   - the walk ends at the number of blocks the relation had when its walk
 *     began, so it terminates whatever writers and rotations do meanwhile;
 *   - reencrypt_table commits after each batch and records where it is in
 *     brandbos.reencrypt_progress, so an interrupted run resumes there;
 *   - a Citus distributed table is walked shard by shard on each node: the
 *     coordinator's reencrypt sends citus_reencrypt_shards to the others in
 *     its distributed transaction (reencrypt_table refuses such a table).
 */
#include "brandbos.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/bufmgr.h"
#include "storage/itemptr.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

Oid			brandbos_reseal_relid = InvalidOid;
BrandbosRewrite brandbos_rewrite_mode = BRANDBOS_REWRITE_MOVE;
const char *brandbos_unprotect_colname = NULL;

/* where a walk over the heap relations of a table stands */
typedef struct WalkPosition
{
	Oid			leaf;			/* relation being walked; InvalidOid = done */
	BlockNumber next_block;		/* first block not walked yet */
	BlockNumber end_block;		/* the leaf's size when its walk began, or
								 * InvalidBlockNumber before that */
} WalkPosition;

/* leaf heap relations of a table, in OID order */
static List *
table_leaves(Oid relid)
{
	List	   *all = find_all_inheritors(relid, AccessShareLock, NULL);
	List	   *leaves = NIL;
	ListCell   *lc;

	foreach(lc, all)
	{
		Oid			child = lfirst_oid(lc);

		if (get_rel_relkind(child) == RELKIND_RELATION)
			leaves = lappend_oid(leaves, child);
	}
	list_sort(leaves, list_oid_cmp);
	return leaves;
}

static Oid
relation_owner(Oid relid)
{
	Oid			owner = brandbos_relation_owner(relid);

	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return owner;
}

/*
 * Rewrite the rows of one heap relation that need it, from block "from"
 * until "limit" rows were rewritten (then stop at the next block boundary,
 * so the position is exact) or the walk's end.  Returns rows rewritten;
 * *next is the first block not walked, or InvalidBlockNumber at the end.
 * The caller runs as the relation's owner.
 */
static int64
rewrite_blocks(Relation rel, BlockNumber from, BlockNumber end, int64 limit,
			   BrandbosRewrite mode, BlockNumber *next)
{
	EState	   *estate;
	RangeTblEntry *rte;
	ResultRelInfo *rri;
	EPQState	epqstate;
	Snapshot	snapshot;
	TableScanDesc scan;
	TupleTableSlot *scanslot,
			   *lockslot,
			   *newslot;
	ItemPointerData mintid,
				maxtid;
	BlockNumber last_block = InvalidBlockNumber;
	int64		rewritten = 0;
	MemoryContext rowcxt;

	*next = InvalidBlockNumber;
	if (from >= end)
		return 0;

	estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	brandbos_init_one_range_table(estate, rte);
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	/* so AFTER triggers find it instead of opening the relation again */
	estate->es_opened_result_relations = lappend(estate->es_opened_result_relations, rri);
	estate->es_output_cid = GetCurrentCommandId(true);
	ExecOpenIndices(rri, false);
#if PG_VERSION_NUM >= 160000
	EvalPlanQualInit(&epqstate, estate, NULL, NIL, -1, NIL);
#else
	EvalPlanQualInit(&epqstate, estate, NULL, NIL, -1);
#endif
	AfterTriggerBeginQuery();

	/*
	 * One fresh snapshot for the walk, also the active one: what this
	 * transaction did before (protect_column's registration) is visible to
	 * the trigger's own lookups.
	 */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	PushActiveSnapshot(snapshot);
	estate->es_snapshot = snapshot;
	ItemPointerSet(&mintid, from, 1);
	ItemPointerSet(&maxtid, end - 1, MaxOffsetNumber);
	scan = table_beginscan_tidrange(rel, snapshot, &mintid, &maxtid);
	scanslot = table_slot_create(rel, &estate->es_tupleTable);
	lockslot = table_slot_create(rel, &estate->es_tupleTable);
	newslot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel), &TTSOpsVirtual);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "brandbos rewrite row",
								   ALLOCSET_DEFAULT_SIZES);

	brandbos_reseal_relid = RelationGetRelid(rel);
	brandbos_rewrite_mode = mode;
	PG_TRY();
	{
		while (table_scan_getnextslot_tidrange(scan, ForwardScanDirection, scanslot))
		{
			BlockNumber block = ItemPointerGetBlockNumber(&scanslot->tts_tid);
			ItemPointerData tid = scanslot->tts_tid;
			TM_FailureData tmfd;
			TM_Result	res;
			MemoryContext old;

			if (block != last_block)
			{
				CHECK_FOR_INTERRUPTS();
				if (rewritten >= limit)
				{
					*next = block;
					break;
				}
				last_block = block;
			}
			old = MemoryContextSwitchTo(rowcxt);
			if (!brandbos_row_needs_reseal(rel, scanslot, mode))
			{
				MemoryContextSwitchTo(old);
				MemoryContextReset(rowcxt);
				continue;
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);

			res = table_tuple_lock(rel, &tid, GetLatestSnapshot(), lockslot,
								   GetCurrentCommandId(false), LockTupleExclusive,
								   LockWaitBlock, TUPLE_LOCK_FLAG_FIND_LAST_VERSION,
								   &tmfd);
			if (res != TM_Ok)
				continue;		/* deleted meanwhile, or ours already */
			old = MemoryContextSwitchTo(rowcxt);
			if (!brandbos_row_needs_reseal(rel, lockslot, mode))
			{
				MemoryContextSwitchTo(old);
				MemoryContextReset(rowcxt);
				continue;		/* a writer re-sealed it meanwhile */
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);

			ExecCopySlot(newslot, lockslot);
			ExecSimpleRelationUpdate(rri, estate, &epqstate, lockslot, newslot);
			rewritten++;
			ResetPerTupleExprContext(estate);
		}
	}
	PG_FINALLY();
	{
		brandbos_reseal_relid = InvalidOid;
		brandbos_rewrite_mode = BRANDBOS_REWRITE_MOVE;
	}
	PG_END_TRY();

	MemoryContextDelete(rowcxt);
	table_endscan(scan);
	PopActiveSnapshot();
	UnregisterSnapshot(snapshot);
	AfterTriggerEndQuery(estate);
	EvalPlanQualEnd(&epqstate);
	ExecCloseResultRelations(estate);	/* its indexes, and relations AFTER triggers opened */
	ExecCloseRangeTableRelations(estate);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	CommandCounterIncrement();
	return rewritten;
}

/*
 * One batch of a walk: rewrite up to about "limit" rows from pos onwards,
 * moving pos.  Runs as each relation's owner.
 */
static int64
rewrite_batch(List *leaves, WalkPosition *pos, int64 limit, BrandbosRewrite mode)
{
	int64		done = 0;

	while (OidIsValid(pos->leaf) && done < limit)
	{
		Relation	rel;
		BrandbosInternalState state;
		BlockNumber next;

		rel = try_table_open(pos->leaf, RowExclusiveLock);
		if (rel != NULL)
		{
			/* rows rewritten land in new blocks: never walk past the start's end */
			if (pos->end_block == InvalidBlockNumber)
				pos->end_block = RelationGetNumberOfBlocks(rel);
			brandbos_internal_begin(&state, rel->rd_rel->relowner);
			done += rewrite_blocks(rel, pos->next_block, pos->end_block, limit - done,
								   mode, &next);
			brandbos_internal_end(&state);
			table_close(rel, NoLock);
			if (next != InvalidBlockNumber)
			{
				pos->next_block = next;
				break;
			}
		}
		/* on to the next leaf */
		{
			Oid			after = pos->leaf;
			ListCell   *lc;

			pos->leaf = InvalidOid;
			pos->next_block = 0;
			pos->end_block = InvalidBlockNumber;
			foreach(lc, leaves)
			{
				if (lfirst_oid(lc) > after)
				{
					pos->leaf = lfirst_oid(lc);
					break;
				}
			}
		}
	}
	return done;
}

void
brandbos_seal_existing_values(Oid relid)
{
	List	   *leaves = table_leaves(relid);
	WalkPosition pos;

	pos.leaf = leaves != NIL ? linitial_oid(leaves) : InvalidOid;
	pos.next_block = 0;
	pos.end_block = InvalidBlockNumber;
	while (OidIsValid(pos.leaf))
		(void) rewrite_batch(leaves, &pos, PG_INT64_MAX, BRANDBOS_REWRITE_SEAL);
}

void
brandbos_unprotect_values(Oid relid, const char *colname)
{
	List	   *leaves = table_leaves(relid);
	WalkPosition pos;

	pos.leaf = leaves != NIL ? linitial_oid(leaves) : InvalidOid;
	pos.next_block = 0;
	pos.end_block = InvalidBlockNumber;
	brandbos_unprotect_colname = colname;
	PG_TRY();
	{
		while (OidIsValid(pos.leaf))
			(void) rewrite_batch(leaves, &pos, PG_INT64_MAX, BRANDBOS_REWRITE_UNPROTECT);
	}
	PG_FINALLY();
	{
		brandbos_unprotect_colname = NULL;
	}
	PG_END_TRY();
}

/* the heap relations of the shards of a distributed table on this node */
static List *
citus_local_leaves(Oid relid)
{
	List	   *leaves = NIL;
	ListCell   *lc;

	foreach(lc, brandbos_citus_local_shards(relid))
		leaves = list_concat(leaves, table_leaves(lfirst_oid(lc)));
	return leaves;
}

/* checks shared by reencrypt and reencrypt_table; returns the table's leaves */
static List *
reencrypt_prepare(FunctionCallInfo fcinfo, Oid *relid, int32 *batch_size)
{
	brandbos_require_role(BRANDBOS_ROLE_KEYMASTER, "re-encrypt protected columns");
	/* on a standby even a walk with nothing to move is refused (25006) */
	PreventCommandDuringRecovery("brandbos.reencrypt()");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and batch_size must not be null")));
	*relid = PG_GETARG_OID(0);
	*batch_size = PG_GETARG_INT32(1);
	if (*batch_size <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be positive, not %d", *batch_size)));
	(void) relation_owner(*relid);	/* 42P01 when it is gone */
	if (!brandbos_table_is_protected(*relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table \"%s\" has no protected columns", get_rel_name(*relid))));
	(void) brandbos_active_key_version();	/* 55000 without a root key */
	if (brandbos_citus_partmethod(*relid) != 0)
		return citus_local_leaves(*relid);
	return table_leaves(*relid);
}

PG_FUNCTION_INFO_V1(brandbos_reencrypt);
/*
 * SQL: brandbos.reencrypt(tbl regclass, batch_size int default 1000) returns bigint
 *
 * Moves every protected value of the table to the active key (and the
 * current envelope format) in the calling transaction, in one walk over the
 * table; returns the number of rows rewritten.
 */
Datum
brandbos_reencrypt(PG_FUNCTION_ARGS)
{
	Oid			relid;
	int32		batch_size;
	List	   *leaves = reencrypt_prepare(fcinfo, &relid, &batch_size);
	WalkPosition pos;
	int64		moved = 0;

	/*
	 * A distributed table: the coordinator walks the shards it holds, and
	 * sends the walk of theirs to the other nodes in the same distributed
	 * transaction (the rows moved there are reported in a NOTICE of each).
	 */
	if (brandbos_citus_partmethod(relid) != 0)
	{
		brandbos_citus_refuse_on_worker("brandbos.reencrypt() of a distributed table");
		brandbos_citus_send(psprintf("SELECT brandbos.citus_reencrypt_shards(%s::pg_catalog.regclass, %d)",
									 quote_literal_cstr(quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
																				   get_rel_name(relid))),
									 batch_size));
	}
	pos.leaf = leaves != NIL ? linitial_oid(leaves) : InvalidOid;
	pos.next_block = 0;
	pos.end_block = InvalidBlockNumber;
	while (OidIsValid(pos.leaf))
		moved += rewrite_batch(leaves, &pos, batch_size, BRANDBOS_REWRITE_MOVE);
	PG_RETURN_INT64(moved);
}

/* ---------------------------------------------------------------------
 * reencrypt_table: a procedure that commits per batch and can resume
 * --------------------------------------------------------------------- */

/* read (or start) the job of a table; runs inside an SPI connection */
static void
load_progress(Oid relid, uint32 target, List *leaves, WalkPosition *pos,
			  int64 *rows_done)
{
	Oid			types[2] = {REGCLASSOID, INT4OID};
	Datum		values[2];

	values[0] = ObjectIdGetDatum(relid);
	values[1] = Int32GetDatum((int32) target);
	if (SPI_execute_with_args("SELECT leaf, next_block, rows_done, end_block FROM brandbos.reencrypt_progress "
							  "WHERE table_name OPERATOR(pg_catalog.=) $1 "
							  "AND target_version OPERATOR(pg_catalog.=) $2 AND finished_at IS NULL",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read brandbos.reencrypt_progress");
	if (SPI_processed == 1)
	{
		bool		isnull;

		pos->leaf = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		pos->next_block = (BlockNumber) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		*rows_done = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		pos->end_block = (BlockNumber) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
		if (isnull)
			pos->end_block = InvalidBlockNumber;
		ereport(NOTICE,
				(errmsg("resuming the re-encryption of \"%s\" after " INT64_FORMAT " rows",
						get_rel_name(relid), *rows_done)));
		return;
	}
	pos->leaf = leaves != NIL ? linitial_oid(leaves) : InvalidOid;
	pos->next_block = 0;
	pos->end_block = InvalidBlockNumber;
	*rows_done = 0;
}

/* record the position, in the batch's own transaction */
static void
save_progress(Oid relid, uint32 target, const WalkPosition *pos, int64 rows_done,
			  int64 blocks_total)
{
	Oid			types[7] = {REGCLASSOID, INT4OID, OIDOID, INT8OID, INT8OID, INT8OID, INT8OID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = ObjectIdGetDatum(relid);
	values[1] = Int32GetDatum((int32) target);
	values[2] = ObjectIdGetDatum(pos->leaf);
	values[3] = Int64GetDatum((int64) pos->next_block);
	values[4] = Int64GetDatum(rows_done);
	values[5] = Int64GetDatum(blocks_total);
	values[6] = Int64GetDatum((int64) pos->end_block);
	if (!OidIsValid(pos->leaf))
		nulls[2] = nulls[3] = 'n';
	if (pos->end_block == InvalidBlockNumber)
		nulls[6] = 'n';
	if (SPI_execute_with_args("INSERT INTO brandbos.reencrypt_progress AS p "
							  "(table_name, target_version, leaf, next_block, rows_done, blocks_total, "
							  " end_block, started_at, updated_at, finished_at) "
							  "VALUES ($1, $2, $3, $4, $5, $6, $7, pg_catalog.now(), pg_catalog.clock_timestamp(), "
							  " CASE WHEN $3 IS NULL THEN pg_catalog.clock_timestamp() END) "
							  "ON CONFLICT (table_name) DO UPDATE SET "
							  " target_version = EXCLUDED.target_version, leaf = EXCLUDED.leaf, "
							  " next_block = EXCLUDED.next_block, end_block = EXCLUDED.end_block, "
							  " rows_done = EXCLUDED.rows_done, "
							  " blocks_total = EXCLUDED.blocks_total, updated_at = EXCLUDED.updated_at, "
							  " finished_at = EXCLUDED.finished_at, "
							  " started_at = CASE WHEN p.finished_at IS NULL "
							  "   AND p.target_version OPERATOR(pg_catalog.=) EXCLUDED.target_version "
							  "   THEN p.started_at ELSE EXCLUDED.started_at END",
							  7, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write brandbos.reencrypt_progress");
}

static int64
total_blocks(List *leaves)
{
	int64		total = 0;
	ListCell   *lc;

	foreach(lc, leaves)
	{
		Relation	rel = try_table_open(lfirst_oid(lc), AccessShareLock);

		if (rel == NULL)
			continue;
		total += RelationGetNumberOfBlocks(rel);
		table_close(rel, AccessShareLock);
	}
	return total;
}

PG_FUNCTION_INFO_V1(brandbos_reencrypt_table);
/*
 * SQL: CALL brandbos.reencrypt_table(tbl regclass, batch_size int default 1000)
 *
 * The same walk as reencrypt, committing after every batch of about
 * batch_size rows.  brandbos.reencrypt_progress shows rows done, the
 * position and the table's size as it goes; called again after an
 * interruption, it resumes at the recorded position as long as the same
 * key is active (a rotation in between starts a new walk).  Inside a
 * transaction block (or a function) it cannot commit and does the whole
 * walk in the caller's transaction.
 */
Datum
brandbos_reencrypt_table(PG_FUNCTION_ARGS)
{
	Oid			relid;
	int32		batch_size;
	List	   *leaves = reencrypt_prepare(fcinfo, &relid, &batch_size);
	bool		atomic;
	uint32		target;
	uint32		notified;
	BrandbosInternalState state;
	WalkPosition pos;
	int64		rows_done;
	int64		blocks_total;
	Oid			owner;
	MemoryContext keep;
	MemoryContext old;

	if (brandbos_citus_partmethod(relid) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("brandbos.reencrypt_table() does not support Citus distributed tables"),
				 errdetail("Its batches commit on their own, outside a distributed transaction."),
				 errhint("Call brandbos.reencrypt() on the coordinator: it re-encrypts the shards of every node in one transaction.")));
	atomic = !(fcinfo->context && IsA(fcinfo->context, CallContext) &&
						   !castNode(CallContext, fcinfo->context)->atomic);
	target = brandbos_active_key_version();
	notified = target;
	blocks_total = total_blocks(leaves);
	owner = brandbos_extension_owner();
	keep = AllocSetContextCreate(TopMemoryContext, "brandbos reencrypt_table",
								 ALLOCSET_SMALL_SIZES);

	old = MemoryContextSwitchTo(keep);
	leaves = list_copy(leaves);
	MemoryContextSwitchTo(old);

	if (SPI_connect_ext(atomic ? 0 : SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	brandbos_internal_begin(&state, owner);
	load_progress(relid, target, leaves, &pos, &rows_done);
	brandbos_internal_end(&state);

	PG_TRY();
	{
		for (;;)
		{
			int64		done;

			bool		pushed = false;

			if (!ActiveSnapshotSet())
			{
				PushActiveSnapshot(GetTransactionSnapshot());
				pushed = true;
			}
			done = rewrite_batch(leaves, &pos, batch_size, BRANDBOS_REWRITE_MOVE);
			rows_done += done;
			brandbos_internal_begin(&state, owner);
			save_progress(relid, target, &pos, rows_done, blocks_total);
			brandbos_internal_end(&state);
			if (pushed)
				PopActiveSnapshot();
			if (!OidIsValid(pos.leaf))
				break;
			if (!atomic)
			{
				SPI_commit();
				/* the table may have been dropped or unprotected meanwhile */
				if (!brandbos_table_is_protected(relid))
					ereport(ERROR,
							(errcode(ERRCODE_UNDEFINED_OBJECT),
							 errmsg("table \"%s\" has no protected columns any more",
									get_rel_name(relid))));
				if (brandbos_active_key_version() != target &&
					brandbos_active_key_version() != notified)
				{
					notified = brandbos_active_key_version();
					ereport(NOTICE,
							(errmsg("the active key changed during the walk; rows rewritten from now on use version %u",
									notified)));
				}
			}
		}
	}
	PG_FINALLY();
	{
		MemoryContextDelete(keep);
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_citus_reencrypt_shards);
/*
 * SQL: brandbos.citus_reencrypt_shards(tbl regclass, batch_size int) returns bigint
 *
 * Sent by reencrypt() on the Citus coordinator: moves the protected values
 * of this node's shards of a distributed table to the active key.
 * Superuser or extension owner only.
 */
Datum
brandbos_citus_reencrypt_shards(PG_FUNCTION_ARGS)
{
	Oid			relid;
	int32		batch_size;
	List	   *leaves;
	WalkPosition pos;
	int64		moved = 0;

	brandbos_citus_require_internal_caller("brandbos.citus_reencrypt_shards()");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and batch_size must not be null")));
	relid = PG_GETARG_OID(0);
	batch_size = PG_GETARG_INT32(1);
	if (batch_size <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be positive, not %d", batch_size)));
	if (!brandbos_citus_is_worker() || brandbos_citus_partmethod(relid) != 'h')
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("brandbos.citus_reencrypt_shards() runs on Citus workers only, for distributed tables")));
	if (!brandbos_table_is_protected(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table \"%s\" has no protected columns on this node", get_rel_name(relid))));
	(void) brandbos_active_key_version();
	leaves = citus_local_leaves(relid);
	pos.leaf = leaves != NIL ? linitial_oid(leaves) : InvalidOid;
	pos.next_block = 0;
	pos.end_block = InvalidBlockNumber;
	while (OidIsValid(pos.leaf))
		moved += rewrite_batch(leaves, &pos, batch_size, BRANDBOS_REWRITE_MOVE);
	ereport(NOTICE,
			(errmsg("brandbos.reencrypt(): " INT64_FORMAT " rows of table \"%s\" rewritten on this node",
					moved, get_rel_name(relid))));
	PG_RETURN_INT64(moved);
}
