/*
 * citus_ledger.c — in shared memory, which distributed transactions' request
 * contexts are in use on this node, and which have ended.
 *
 * citus_context.c accepts a forwarded context only for a distributed
 * transaction that has not ended on this node.  Anyone may give a backend
 * any distributed transaction id (Citus's assign_distributed_transaction_id
 * is open to every role), so without this a value copied from a finished
 * transaction would be accepted again under its old id.  Each backend that
 * received (or, on the coordinator, sealed) a context holds its transaction
 * in a slot of its own, marked checked once the binding was checked; when
 * its transaction ends the id goes into the
 * ledger of ended transactions (context_ledger.c: a ring of
 * LEDGER_CAPACITY ids, and a watermark below which every transaction counts
 * as ended), whether the context was read or not.  A parallel worker
 * accepts its leader's context only when the leader checked it.  Needs shared_preload_libraries; without
 * it nothing is accepted.
 */
#include "brandbos.h"
#include "context_ledger.h"

#include "access/twophase.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"

#define LEDGER_CAPACITY 65536		/* ended transactions remembered (1.5 MB) */
#define LEDGER_TRANCHE "brandbos citus context ledger"

typedef struct HeldSlot
{
	bool		held;
	bool		checked;		/* the binding was checked (parallel workers may trust it) */
	BbLedgerKey key;
} HeldSlot;

typedef struct LedgerShared
{
	LWLock	   *lock;
	int			slots;			/* entries of held[] */
	HeldSlot   *held;			/* by pgprocno; then the ledger */
	BbLedger   *ended;
} LedgerShared;

static LedgerShared *shared = NULL;
static bool holding = false;		/* this backend's slot is in use */

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static int
slot_count(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

static Size
shared_size(void)
{
	Size		size = MAXALIGN(sizeof(LedgerShared));

	size = add_size(size, MAXALIGN(mul_size(slot_count(), sizeof(HeldSlot))));
	return add_size(size, bb_ledger_size(LEDGER_CAPACITY));
}

static void
ledger_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche(LEDGER_TRANCHE, 1);
}

static void
ledger_startup(void)
{
	bool		found;
	char	   *base;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	base = ShmemInitStruct(LEDGER_TRANCHE, shared_size(), &found);
	shared = (LedgerShared *) base;
	if (!found)
	{
		shared->lock = &(GetNamedLWLockTranche(LEDGER_TRANCHE))->lock;
		shared->slots = slot_count();
		shared->held = (HeldSlot *) (base + MAXALIGN(sizeof(LedgerShared)));
		memset(shared->held, 0, sizeof(HeldSlot) * shared->slots);
		shared->ended = bb_ledger_init(base + MAXALIGN(sizeof(LedgerShared)) +
									   MAXALIGN(mul_size(shared->slots, sizeof(HeldSlot))),
									   LEDGER_CAPACITY);
	}
	LWLockRelease(AddinShmemInitLock);
}

static BbLedgerKey
make_key(int32 initiator, uint64 number, int64 stamp)
{
	BbLedgerKey k;

	k.initiator = initiator;
	k.number = number;
	k.stamp = stamp;
	return k;
}

static bool
same_key(const BbLedgerKey *a, const BbLedgerKey *b)
{
	return a->initiator == b->initiator && a->number == b->number && a->stamp == b->stamp;
}

bool
brandbos_citus_ledger_available(void)
{
	return shared != NULL && MyProc != NULL && MyProc->pgprocno < shared->slots;
}

bool
brandbos_citus_ledger_ended(int32 initiator, uint64 number, int64 stamp)
{
	BbLedgerKey k = make_key(initiator, number, stamp);
	bool		ended;

	LWLockAcquire(shared->lock, LW_SHARED);
	ended = bb_ledger_ended(shared->ended, &k);
	LWLockRelease(shared->lock);
	return ended;
}

void
brandbos_citus_ledger_hold(int32 initiator, uint64 number, int64 stamp, bool checked)
{
	BbLedgerKey k = make_key(initiator, number, stamp);
	HeldSlot   *mine = &shared->held[MyProc->pgprocno];

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (mine->held && !same_key(&mine->key, &k))
	{
		bb_ledger_add(shared->ended, &mine->key);	/* one transaction per backend */
		mine->checked = false;
	}
	mine->key = k;
	mine->checked = mine->checked || checked;
	mine->held = true;
	LWLockRelease(shared->lock);
	holding = true;
}

bool
brandbos_citus_ledger_leader_holds(int32 initiator, uint64 number, int64 stamp)
{
	BbLedgerKey k = make_key(initiator, number, stamp);
	PGPROC	   *leader = MyProc ? MyProc->lockGroupLeader : NULL;
	bool		holds;

	if (shared == NULL || leader == NULL || leader == MyProc || leader->pgprocno >= shared->slots)
		return false;
	LWLockAcquire(shared->lock, LW_SHARED);
	holds = shared->held[leader->pgprocno].held && shared->held[leader->pgprocno].checked &&
		same_key(&shared->held[leader->pgprocno].key, &k);
	LWLockRelease(shared->lock);
	return holds;
}

/* the transaction ended: what this backend held has ended on this node */
static void
ledger_xact_callback(XactEvent event, void *arg)
{
	HeldSlot   *mine;

	if (!holding || shared == NULL)
		return;
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT && event != XACT_EVENT_PREPARE)
		return;
	mine = &shared->held[MyProc->pgprocno];
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (mine->held)
		bb_ledger_add(shared->ended, &mine->key);
	mine->held = false;
	mine->checked = false;
	LWLockRelease(shared->lock);
	holding = false;
}

void
brandbos_citus_ledger_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ledger_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ledger_startup;
	RegisterXactCallback(ledger_xact_callback, NULL);
}
