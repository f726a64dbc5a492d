/*
 * audit_xid_ring.c — which transaction took each recent audit id.
 *
 * A row of brandbos.audit_entries carries the xid of its writer, but an id
 * whose row never arrived carries nothing, and the sealer used to count
 * every such id as rolled back.  With the library preloaded, every writer
 * notes here, in shared memory, the (sub)transaction id under which it took
 * each audit id; the sealer asks, for each id of its range that no row
 * holds, whether that transaction committed.  If it did, the row was lost
 * after the fact (deleted past the append-only trigger, hidden from the
 * sealer), and the id is not sealed as rolled back.
 *
 * The ring has BB_XID_RING_SIZE slots, slot id % size, written without a
 * lock: the writer stores the xid, a write barrier, then the id; a reader
 * reads the id, a read barrier, the xid, a read barrier and the id again,
 * and trusts the xid only when both ids match.  An id whose slot was reused
 * (more ids issued than slots before the sealer came), taken before the
 * server started, or taken without preload, is unknown: the sealer then
 * keeps its old rule (absent means rolled back).
 *
 * Invariant: the xid noted for an id is the one whose commit or abort
 * decides whether that id's row exists (a subtransaction's own xid, since a
 * row written in a savepoint that rolls back is gone even when the top
 * transaction commits).
 */
#include "brandbos.h"

#include "access/transam.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"

#define BB_XID_RING_SIZE 65536

typedef struct XidRingSlot
{
	pg_atomic_uint64 id;		/* 0: empty */
	pg_atomic_uint32 xid;
} XidRingSlot;

static XidRingSlot *xid_ring = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
xid_ring_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(mul_size(BB_XID_RING_SIZE, sizeof(XidRingSlot)));
}

static void
xid_ring_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	xid_ring = ShmemInitStruct("brandbos audit xid ring",
							   mul_size(BB_XID_RING_SIZE, sizeof(XidRingSlot)), &found);
	if (!found)
	{
		int			i;

		for (i = 0; i < BB_XID_RING_SIZE; i++)
		{
			pg_atomic_init_u64(&xid_ring[i].id, 0);
			pg_atomic_init_u32(&xid_ring[i].xid, InvalidTransactionId);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

void
brandbos_xid_ring_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = xid_ring_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = xid_ring_startup;
}

void
brandbos_xid_ring_note(int64 id)
{
	XidRingSlot *slot;

	if (xid_ring == NULL || id <= 0)
		return;
	slot = &xid_ring[id % BB_XID_RING_SIZE];
	pg_atomic_write_u32(&slot->xid, GetCurrentTransactionId());
	pg_write_barrier();
	pg_atomic_write_u64(&slot->id, (uint64) id);
}

BrandbosIdFate
brandbos_xid_ring_fate(int64 id, TransactionId *xid_out)
{
	XidRingSlot *slot;
	TransactionId xid;

	*xid_out = InvalidTransactionId;
	if (xid_ring == NULL || id <= 0)
		return BB_ID_UNKNOWN;
	slot = &xid_ring[id % BB_XID_RING_SIZE];
	if (pg_atomic_read_u64(&slot->id) != (uint64) id)
		return BB_ID_UNKNOWN;
	pg_read_barrier();
	xid = pg_atomic_read_u32(&slot->xid);
	pg_read_barrier();
	if (pg_atomic_read_u64(&slot->id) != (uint64) id || !TransactionIdIsNormal(xid))
		return BB_ID_UNKNOWN;
	*xid_out = xid;
	if (TransactionIdIsCurrentTransactionId(xid) || TransactionIdIsInProgress(xid))
		return BB_ID_RUNNING;
	if (TransactionIdDidCommit(xid))
		return BB_ID_COMMITTED;
	return BB_ID_ABORTED;	/* aborted, or crashed while running */
}
