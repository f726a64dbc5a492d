/*
 * context_ledger.c — ended distributed transactions: a ring in arrival
 * order and a linear-probing index (twice the ring's size) of ring slots.
 * See context_ledger.h.  Free of PostgreSQL headers.
 */
#include "context_ledger.h"

#include <string.h>

#define EMPTY UINT32_MAX

struct BbLedger
{
	uint32_t	capacity;		/* ring entries, a power of two */
	uint32_t	next;			/* ring slot written next */
	uint32_t	count;			/* entries held */
	uint32_t	pad;
	int64_t		watermark;		/* newest stamp evicted */
	/* then: the ring (capacity keys), the index (2 * capacity ring slots, EMPTY when free) */
};

/* no pointers are stored: the block may be mapped at another address in each process */
static BbLedgerKey *
ring_of(const BbLedger *l)
{
	return (BbLedgerKey *) ((char *) l + sizeof(BbLedger));
}

static uint32_t *
index_of(const BbLedger *l)
{
	return (uint32_t *) ((char *) ring_of(l) + sizeof(BbLedgerKey) * l->capacity);
}

size_t
bb_ledger_size(uint32_t capacity)
{
	return sizeof(BbLedger) + sizeof(BbLedgerKey) * (size_t) capacity +
		sizeof(uint32_t) * 2 * (size_t) capacity;
}

BbLedger *
bb_ledger_init(void *mem, uint32_t capacity)
{
	BbLedger   *l = (BbLedger *) mem;

	memset(l, 0, sizeof(BbLedger));
	l->capacity = capacity;
	l->watermark = INT64_MIN;
	memset(index_of(l), 0xFF, sizeof(uint32_t) * 2 * (size_t) capacity);
	return l;
}

static bool
same_key(const BbLedgerKey *a, const BbLedgerKey *b)
{
	return a->initiator == b->initiator && a->number == b->number && a->stamp == b->stamp;
}

static uint32_t
home(const BbLedger *l, const BbLedgerKey *k)
{
	uint64_t	h = k->number * UINT64_C(0x9E3779B97F4A7C15);

	h ^= (uint64_t) k->stamp * UINT64_C(0xC2B2AE3D27D4EB4F);
	h ^= (uint64_t) (uint32_t) k->initiator * UINT64_C(0x165667B19E3779F9);
	h ^= h >> 29;
	return (uint32_t) h & (2 * l->capacity - 1);
}

/* the index position holding key, or EMPTY */
static uint32_t
find(const BbLedger *l, const BbLedgerKey *k)
{
	const BbLedgerKey *ring = ring_of(l);
	const uint32_t *index = index_of(l);
	uint32_t	mask = 2 * l->capacity - 1;
	uint32_t	pos = home(l, k);

	while (index[pos] != EMPTY)
	{
		if (same_key(&ring[index[pos]], k))
			return pos;
		pos = (pos + 1) & mask;
	}
	return EMPTY;
}

/* remove index position pos, shifting later entries of the cluster back */
static void
remove_at(BbLedger *l, uint32_t pos)
{
	const BbLedgerKey *ring = ring_of(l);
	uint32_t   *index = index_of(l);
	uint32_t	mask = 2 * l->capacity - 1;
	uint32_t	hole = pos;
	uint32_t	next = (pos + 1) & mask;

	while (index[next] != EMPTY)
	{
		uint32_t	want = home(l, &ring[index[next]]);

		/* move it into the hole unless its home lies cyclically in (hole, next] */
		if (((next - want) & mask) >= ((next - hole) & mask))
		{
			index[hole] = index[next];
			hole = next;
		}
		next = (next + 1) & mask;
	}
	index[hole] = EMPTY;
}

bool
bb_ledger_ended(const BbLedger *l, const BbLedgerKey *k)
{
	if (k->stamp <= l->watermark)
		return true;
	return find(l, k) != EMPTY;
}

void
bb_ledger_add(BbLedger *l, const BbLedgerKey *k)
{
	BbLedgerKey *ring = ring_of(l);
	uint32_t   *index = index_of(l);
	uint32_t	mask = 2 * l->capacity - 1;
	uint32_t	slot = l->next;
	uint32_t	pos;

	if (bb_ledger_ended(l, k))
		return;
	if (l->count == l->capacity)
	{
		uint32_t	old = find(l, &ring[slot]);

		if (ring[slot].stamp > l->watermark)
			l->watermark = ring[slot].stamp;
		if (old != EMPTY)
			remove_at(l, old);
		l->count--;
	}
	ring[slot] = *k;
	pos = home(l, k);
	while (index[pos] != EMPTY)
		pos = (pos + 1) & mask;
	index[pos] = slot;
	l->next = (slot + 1) & (l->capacity - 1);
	l->count++;
}

uint32_t
bb_ledger_count(const BbLedger *l)
{
	return l->count;
}

int64_t
bb_ledger_watermark(const BbLedger *l)
{
	return l->watermark;
}
