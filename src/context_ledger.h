/*
 * context_ledger.h — the set of distributed transactions that have ended on
 * a node, kept so that a forwarded request context sealed for one of them
 * is never accepted again.  Free of PostgreSQL headers (unit-tested alone).
 *
 * A fixed-size ring in arrival order plus an open-addressing index over it.
 * When the ring is full the oldest entry is evicted, and its stamp raises a
 * watermark: a transaction that started at or before the newest evicted
 * stamp counts as ended too (it may have been evicted), so eviction can
 * only refuse more, never accept more.  The caller provides the memory
 * (shared memory in the server) and the locking.
 */
#ifndef BRANDBOS_CONTEXT_LEDGER_H
#define BRANDBOS_CONTEXT_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct BbLedgerKey
{
	int32_t		initiator;		/* Citus initiator node */
	uint64_t	number;			/* distributed transaction number (never 0) */
	int64_t		stamp;			/* its start, microseconds since 2000 */
} BbLedgerKey;

typedef struct BbLedger BbLedger;

/* bytes needed for a ledger of capacity entries (a power of two, >= 2) */
extern size_t bb_ledger_size(uint32_t capacity);

/* initialise mem (bb_ledger_size(capacity) bytes) as an empty ledger */
extern BbLedger *bb_ledger_init(void *mem, uint32_t capacity);

/* has the transaction ended here (or may it have: at or before the watermark)? */
extern bool bb_ledger_ended(const BbLedger *ledger, const BbLedgerKey *key);

/* record that the transaction ended here (no-op when already recorded) */
extern void bb_ledger_add(BbLedger *ledger, const BbLedgerKey *key);

/* entries held now, and the watermark (INT64_MIN while nothing was evicted) */
extern uint32_t bb_ledger_count(const BbLedger *ledger);
extern int64_t bb_ledger_watermark(const BbLedger *ledger);

#endif							/* BRANDBOS_CONTEXT_LEDGER_H */
