/*
 * audit_sealer.c — sealing committed audit rows into signed, chained blocks.
 *
 * A block covers the consecutive ids (previous block's last_id, horizon].
 * The horizon must be final: no transaction may still commit a row with an
 * id at or below it.
 *
 * Which transactions may: a writer takes its top-level xid, then ROW
 * EXCLUSIVE on brandbos.audit_entries, then its id (audit_writer.c), and
 * holds the lock until it ends.  The sealer reads the sequence's last value
 * h first, then lists the holders of locks on audit_entries that conflict
 * with SHARE (GetLockConflicts: fast-path and prepared transactions
 * included, our own transaction excluded).  A writer whose id is <= h took
 * the lock before the sealer read h, so it is listed unless it has ended
 * (a transaction releases its locks only after it left the proc array, so
 * the snapshot of the later row query sees its outcome).  Each holder is
 * turned into its top-level xid through the PGPROCs running it (the
 * backend's, or a prepared transaction's dummy one); a holder without an
 * xid took no id <= h (it would have had its xid before its id).  Any other
 * open transaction, such as `BEGIN; SELECT txid_current();` or a REPEATABLE
 * READ snapshot of any login role, holds no such lock and is not waited
 * for.  A holder that took no id (a superuser's LOCK TABLE, redact_audit,
 * an ANALYZE) only delays sealing while it holds the lock.
 *
 * If no holder remains, h is final now.  Otherwise h and the holders' xids
 * are saved in brandbos.audit_seal_state and become final once all of them
 * have ended; a saved horizon still pending is kept rather than replaced (a
 * newer one waits for at least the same writers), so the rows below a
 * writer that stays open are sealed as soon as the writers before it end;
 * its own id and everything after it wait for it.
 * Ids of the range that no visible row holds belong to rolled-back writers;
 * they are recorded in the block (missing_ids), so they never look like
 * deletions — unless, with preload, audit_xid_ring.c knows that the
 * transaction that took the id committed: then the row was lost after its
 * commit, the id is left out of missing_ids, and verify_audit reports it as
 * a deleted row of that block.
 *
 * Concurrency: sealers serialise on a SHARE ROW EXCLUSIVE lock of
 * brandbos.audit_blocks; writers never touch that table, so they never wait.
 *
 * With the library preloaded, a background worker seals every
 * brandbos.audit_seal_interval in the database brandbos.audit_database.
 */
#include "brandbos.h"
#include "merkle.h"

#include <sodium.h>

#include "access/transam.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

static int	audit_seal_interval_ms = 1000;
static char *audit_database = NULL;

static int64
spi_int8(int row, int col, bool *isnull)
{
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

/* the highest audit id handed out so far (0 when none) */
static int64
highest_issued_id(void)
{
	bool		isnull;
	int64		last;
	bool		is_called;

	brandbos_sql_exec("SELECT last_value, is_called FROM brandbos.audit_log_id_seq", 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	last = spi_int8(0, 1, &isnull);
	is_called = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	return is_called ? last : last - 1;
}

/*
 * Whether xid, a lock holder's top-level xid, may still commit a row.
 */
static bool
may_still_commit(TransactionId xid)
{
	if (!TransactionIdIsValid(xid))
		return false;			/* no xid, so no audit id <= the horizon read */
	/* ours: our rows are visible to us and sealed with us */
	if (TransactionIdIsCurrentTransactionId(xid))
		return false;
	if (TransactionIdDidAbort(xid))
		return false;
	return TransactionIdIsInProgress(xid);
}

/*
 * The xids of the transactions that may still commit an audit row with an
 * id at or below the sequence value read just before: those holding ROW
 * EXCLUSIVE (or stronger) on brandbos.audit_entries.  See the file header.
 */
static List *
writer_xids(void)
{
	Oid			entries = brandbos_relid("audit_entries");
	LOCKTAG		tag;
	VirtualTransactionId *holders;
	List	   *xids = NIL;
	List	   *result = NIL;
	ListCell   *lc;
	int			n,
				i;

	if (!OidIsValid(entries))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"brandbos\" is not installed in this database")));
	SET_LOCKTAG_RELATION(tag, MyDatabaseId, entries);
	holders = GetLockConflicts(&tag, ShareLock, &n);

	/*
	 * Each holder's xid, from every PGPROC that runs that virtual
	 * transaction: the backend itself, or the dummy PGPROC of the prepared
	 * transaction it became (which keeps the backend's virtual id; a
	 * prepared transaction recovered at startup has its xid as local id).
	 * Should the holder have ended since, no PGPROC matches, or a stale one
	 * whose xid has ended too: either way it is rightly skipped.
	 */
	LWLockAcquire(ProcArrayLock, LW_SHARED);
	for (i = 0; i < n; i++)
	{
		uint32		p;

		/* allProcCount excludes the prepared transactions' PGPROCs, which follow */
		for (p = 0; p < ProcGlobal->allProcCount + max_prepared_xacts; p++)
		{
			PGPROC	   *proc = &ProcGlobal->allProcs[p];
			TransactionId xid;

			if (BRANDBOS_PROC_NUMBER(proc) != BRANDBOS_VXID_NUMBER(holders[i]) ||
				BRANDBOS_PROC_LXID(proc) != holders[i].localTransactionId)
				continue;
			xid = *((volatile TransactionId *) &proc->xid);
			if (TransactionIdIsValid(xid) && !list_member_ptr(xids, (void *) (uintptr_t) xid))
				xids = lappend(xids, (void *) (uintptr_t) xid);
		}
	}
	LWLockRelease(ProcArrayLock);

	foreach(lc, xids)
		if (may_still_commit((TransactionId) (uintptr_t) lfirst(lc)))
			result = lappend(result, lfirst(lc));
	return result;
}

static bool
all_ended(Datum xid_array)
{
	ArrayType  *arr = DatumGetArrayTypeP(xid_array);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (TransactionIdIsInProgress((TransactionId) DatumGetInt64(elems[i])))
			return false;
	return true;
}

static void
save_horizon(int64 horizon, List *running)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(running), 1));
	ListCell   *lc;
	int			n = 0;
	Oid			types[2] = {INT8OID, INT8ARRAYOID};
	Datum		values[2];

	foreach(lc, running)
		elems[n++] = Int64GetDatum((int64) (uintptr_t) lfirst(lc));
	values[0] = Int64GetDatum(horizon);
	values[1] = PointerGetDatum(construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	brandbos_sql_exec("INSERT INTO brandbos.audit_seal_state (horizon_id, waiting_for) VALUES ($1, $2) "
					  "ON CONFLICT (singleton) DO UPDATE SET horizon_id = EXCLUDED.horizon_id, "
					  "waiting_for = EXCLUDED.waiting_for", 2, types, values, NULL, false, SPI_OK_INSERT);
}

static bytea *
bytes_datum(const unsigned char *data, size_t len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return b;
}

/* may a row-less id of a final range be sealed as rolled back? */
static bool
rolled_back(int64 id)
{
	TransactionId xid;

	if (brandbos_xid_ring_fate(id, &xid) != BB_ID_COMMITTED)
		return true;
	ereport(WARNING,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("audit row " INT64_FORMAT " is missing, but transaction %u that wrote it committed", id, xid),
			 errhint("Run brandbos.verify_audit(); the row was removed outside brandbos.")));
	return false;
}

/*
 * Seal what is final.  Returns the new block id, or 0 when nothing was
 * sealed; *rows gets the number of rows sealed.
 */
int64
brandbos_seal_pending(int64 *rows)
{
	BrandbosInternalState state;
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	unsigned char signature[crypto_sign_BYTES];
	unsigned char block_hash[BB_HASH_BYTES];
	bb_block_header header;
	int64		issued,
				horizon,
				last_sealed = 0,
				last_block = 0;
	List	   *running;
	bool		keep_saved = false;
	bool		isnull;
	uint64		n,
				i;
	unsigned char *leaves,
			   *scratch;
	int64	   *missing;
	int			nmissing = 0;
	int64		expect;
	Datum	   *missing_datums;

	*rows = 0;
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("brandbos.seal_audit() must run in a READ COMMITTED transaction"),
				 errdetail("An older snapshot could miss rows that committed after it.")));

	brandbos_audit_signing_keypair(pk, sk);
	memset(&header, 0, sizeof(header));

	brandbos_spi_begin(&state, brandbos_extension_owner());
	brandbos_sql_exec("LOCK TABLE brandbos.audit_blocks IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL, NULL, false, SPI_OK_UTILITY);

	/* the sequence first, then the writers: see the file header */
	issued = highest_issued_id();
	running = writer_xids();

	brandbos_sql_exec("SELECT block_id, last_id, block_hash, public_key FROM brandbos.audit_blocks "
					  "ORDER BY block_id DESC LIMIT 1", 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		bytea	   *h;
		bytea	   *signer;

		last_block = spi_int8(0, 1, &isnull);
		last_sealed = spi_int8(0, 2, &isnull);
		h = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		if (VARSIZE_ANY_EXHDR(h) != BB_HASH_BYTES)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("audit block " INT64_FORMAT " has a malformed hash", last_block),
					 errhint("Run brandbos.verify_audit().")));
		memcpy(header.prev_hash, VARDATA_ANY(h), BB_HASH_BYTES);

		/*
		 * One chain, one signing key: a block signed with another key than the
		 * last one would break every verification after it.  That happens
		 * when the root key was switched without rewrap_keys() in a database
		 * without data keys (audit_signing_key.c covers the others).
		 */
		signer = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
		if (isnull || VARSIZE_ANY_EXHDR(signer) != crypto_sign_PUBLICKEYBYTES ||
			sodium_memcmp(VARDATA_ANY(signer), pk, crypto_sign_PUBLICKEYBYTES) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("audit block " INT64_FORMAT " is signed with another key than the loaded root key gives", last_block),
					 errdetail("New blocks would not verify under the key of the chain."),
					 errhint("Load the root key the chain was signed under; after a root-key change set brandbos.previous_root_key_file to the old key and run brandbos.rewrap_keys().")));
	}

	if (running == NIL)
		horizon = issued;
	else
	{
		horizon = last_sealed;
		brandbos_sql_exec("SELECT horizon_id, waiting_for FROM brandbos.audit_seal_state", 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
		if (SPI_processed > 0)
		{
			int64		saved = spi_int8(0, 1, &isnull);
			Datum		waiting = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

			if (saved > last_sealed)
			{
				if (all_ended(waiting))
					horizon = saved;
				else
					keep_saved = true;
			}
		}
		if (!keep_saved)
			save_horizon(issued, running);
	}
	if (horizon <= last_sealed)
	{
		brandbos_spi_end(&state);
		sodium_memzero(sk, sizeof(sk));
		return 0;
	}

	/* the rows of the range, in id order */
	{
		Oid			types[2] = {INT8OID, INT8OID};
		Datum		values[2];

		values[0] = Int64GetDatum(last_sealed);
		values[1] = Int64GetDatum(horizon);
		brandbos_sql_exec("SELECT id, leaf_hash FROM brandbos.audit_entries "
						  "WHERE id > $1 AND id <= $2 ORDER BY id", 2, types, values, NULL, false, SPI_OK_SELECT);
	}
	n = SPI_processed;
	if (n == 0)
	{
		/* only rolled-back ids: nothing to seal; the next block will cover them */
		brandbos_spi_end(&state);
		sodium_memzero(sk, sizeof(sk));
		return 0;
	}

	leaves = palloc(n * BB_HASH_BYTES);
	scratch = palloc(n * BB_HASH_BYTES);
	missing = palloc(sizeof(int64) * Max(horizon - last_sealed - (int64) n, 1));
	expect = last_sealed + 1;
	for (i = 0; i < n; i++)
	{
		int64		id = spi_int8(i, 1, &isnull);
		bytea	   *leaf = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));

		if (isnull || VARSIZE_ANY_EXHDR(leaf) != BB_HASH_BYTES)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("audit row " INT64_FORMAT " has a malformed leaf hash", id),
					 errhint("Run brandbos.verify_audit(); the row was altered outside brandbos.")));
		for (; expect < id; expect++)
			if (rolled_back(expect))
				missing[nmissing++] = expect;
		expect = id + 1;
		memcpy(leaves + i * BB_HASH_BYTES, VARDATA_ANY(leaf), BB_HASH_BYTES);
	}
	for (; expect <= horizon; expect++)
		if (rolled_back(expect))
			missing[nmissing++] = expect;

	header.block_id = last_block + 1;
	bb_merkle_root(header.root_hash, leaves, n, scratch);
	header.first_id = last_sealed + 1;
	header.last_id = horizon;
	header.row_count = (int64) n;
	bb_ids_hash(header.missing_hash, missing, nmissing);
	header.sealed_at = GetCurrentTimestamp();
	bb_block_hash(block_hash, &header);
	crypto_sign_detached(signature, NULL, block_hash, BB_HASH_BYTES, sk);
	sodium_memzero(sk, sizeof(sk));

	missing_datums = palloc(sizeof(Datum) * Max(nmissing, 1));
	for (i = 0; i < (uint64) nmissing; i++)
		missing_datums[i] = Int64GetDatum(missing[i]);
	{
		Oid			types[11] = {INT8OID, BYTEAOID, BYTEAOID, INT8OID, INT8OID, INT8OID,
		INT8ARRAYOID, TIMESTAMPTZOID, BYTEAOID, BYTEAOID, BYTEAOID};
		Datum		values[11];

		values[0] = Int64GetDatum(header.block_id);
		values[1] = PointerGetDatum(bytes_datum(header.prev_hash, BB_HASH_BYTES));
		values[2] = PointerGetDatum(bytes_datum(header.root_hash, BB_HASH_BYTES));
		values[3] = Int64GetDatum(header.first_id);
		values[4] = Int64GetDatum(header.last_id);
		values[5] = Int64GetDatum(header.row_count);
		values[6] = PointerGetDatum(construct_array(missing_datums, nmissing, INT8OID, 8,
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[7] = TimestampTzGetDatum(header.sealed_at);
		values[8] = PointerGetDatum(bytes_datum(block_hash, BB_HASH_BYTES));
		values[9] = PointerGetDatum(bytes_datum(signature, sizeof(signature)));
		values[10] = PointerGetDatum(bytes_datum(pk, sizeof(pk)));
		brandbos_sql_exec("INSERT INTO brandbos.audit_blocks (block_id, prev_hash, root_hash, first_id, last_id, "
						  "row_count, missing_ids, sealed_at, block_hash, signature, public_key) "
						  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", 11, types, values, NULL, false, SPI_OK_INSERT);
	}
	brandbos_spi_end(&state);
	*rows = (int64) n;
	return header.block_id;
}

PG_FUNCTION_INFO_V1(brandbos_seal_audit);
/* SQL: brandbos.seal_audit() returns bigint */
Datum
brandbos_seal_audit(PG_FUNCTION_ARGS)
{
	int64		rows;
	int64		block;

	brandbos_require_role(BRANDBOS_ROLE_AUDITOR, "seal the brandbos audit log");
	block = brandbos_seal_pending(&rows);
	if (block == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(block);
}

/* ---------------------------------------------------------------------
 * The background sealer
 * --------------------------------------------------------------------- */

PGDLLEXPORT void brandbos_sealer_main(Datum arg);

static volatile sig_atomic_t got_sighup = false;

static void
sealer_sighup(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sighup = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

/* one sealing round in its own transaction; errors are logged, not fatal */
static void
sealer_round(void)
{
	MemoryContext round_context = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "brandbos: sealing the audit log");
	PG_TRY();
	{
		int64		rows;

		if (OidIsValid(brandbos_relid("audit_blocks")) && brandbos_root_key_available())
		{
			int64		block = brandbos_seal_pending(&rows);

			if (block > 0)
				elog(DEBUG1, "brandbos sealed block " INT64_FORMAT " with " INT64_FORMAT " rows",
					 block, rows);
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(round_context);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
brandbos_sealer_main(Datum arg)
{
	pqsignal(SIGHUP, sealer_sighup);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(audit_database, NULL, 0);
	pgstat_report_appname("brandbos audit sealer");

	for (;;)
	{
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (got_sighup)
		{
			char	   *connected_to = pstrdup(audit_database);

			got_sighup = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (strcmp(connected_to, audit_database) != 0)
				proc_exit(1);	/* restarted by the postmaster, in the new database */
			pfree(connected_to);
		}
		sealer_round();
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   audit_seal_interval_ms, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
	}
}

void
brandbos_sealer_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("brandbos.audit_seal_interval",
							"How often the background worker seals the audit log.",
							NULL, &audit_seal_interval_ms, 1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomStringVariable("brandbos.audit_database",
							   "Database in which the background worker seals the audit log.",
							   "Needs shared_preload_libraries; on a change the worker restarts there.",
							   &audit_database, "postgres",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/*
	 * Not during recovery: sealing writes, and on a hot standby every round
	 * would fail (LOCK TABLE is refused there).  The postmaster starts the
	 * worker when recovery ends, so a promoted standby seals what the old
	 * primary left (scenario 35_streaming_standby).
	 */
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "brandbos");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "brandbos_sealer_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "brandbos audit sealer");
	snprintf(worker.bgw_type, BGW_MAXLEN, "brandbos audit sealer");
	RegisterBackgroundWorker(&worker);
}
