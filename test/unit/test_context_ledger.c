/*
 * test_context_ledger.c — the ledger of ended distributed transactions:
 * membership, eviction in arrival order with the watermark, and index
 * integrity after many evictions (checked against a plain model).
 */
#include "context_ledger.h"
#include "tap.h"

#include <stdlib.h>

static BbLedgerKey
key(int32_t initiator, uint64_t number, int64_t stamp)
{
	BbLedgerKey k = {initiator, number, stamp};

	return k;
}

int
main(void)
{
	uint32_t	cap = 8;
	void	   *mem = malloc(bb_ledger_size(cap));
	BbLedger   *l = bb_ledger_init(mem, cap);
	BbLedgerKey k;
	int			i;
	int			wrong;

	k = key(0, 1, 1000);
	ok(!bb_ledger_ended(l, &k), "an empty ledger knows no transaction");
	bb_ledger_add(l, &k);
	ok(bb_ledger_ended(l, &k), "an added transaction has ended");
	bb_ledger_add(l, &k);
	ok(bb_ledger_count(l) == 1, "adding it again is a no-op");
	k = key(0, 1, 1001);
	ok(!bb_ledger_ended(l, &k), "the same number with another stamp is another transaction");
	k = key(1, 1, 1000);
	ok(!bb_ledger_ended(l, &k), "the same number from another initiator is another transaction");
	ok(bb_ledger_watermark(l) == INT64_MIN, "no watermark before an eviction");

	/* fill: stamps 2000..2007 after 1000 -> 1000 is evicted first */
	for (i = 0; i < 8; i++)
	{
		k = key(0, 100 + i, 2000 + i);
		bb_ledger_add(l, &k);
	}
	ok(bb_ledger_count(l) == 8, "full at capacity");
	ok(bb_ledger_watermark(l) == 1000, "the oldest entry was evicted and raised the watermark");
	k = key(0, 1, 1000);
	ok(bb_ledger_ended(l, &k), "an evicted transaction still counts as ended (watermark)");
	k = key(0, 999, 999);
	ok(bb_ledger_ended(l, &k), "any transaction that started before the watermark counts as ended");
	k = key(0, 100, 2000);
	ok(bb_ledger_ended(l, &k), "the entries after it are all found");
	k = key(0, 555, 2003);
	ok(!bb_ledger_ended(l, &k), "a newer transaction that did not end is not found");

	/* many additions with colliding homes: compare with a model of the last 8 */
	{
		BbLedgerKey model[8];
		int			n = 0;
		int64_t		wm = bb_ledger_watermark(l);

		l = bb_ledger_init(mem, cap);
		wm = INT64_MIN;
		wrong = 0;
		for (i = 0; i < 5000; i++)
		{
			int			j;
			/* stamps not in order; numbers reused across initiators */
			BbLedgerKey a = key(i % 3, (uint64_t) (i / 3) + 1, 10000 + (i * 7919) % 4000 + i * 3);

			if (!bb_ledger_ended(l, &a))
			{
				if (n == 8)
				{
					if (model[0].stamp > wm)
						wm = model[0].stamp;
					for (j = 1; j < 8; j++)
						model[j - 1] = model[j];
					n--;
				}
				model[n++] = a;
			}
			bb_ledger_add(l, &a);
			for (j = 0; j < n; j++)
				if (!bb_ledger_ended(l, &model[j]))
					wrong++;
			if (bb_ledger_watermark(l) != wm || bb_ledger_count(l) != (uint32_t) n)
				wrong++;
		}
		ok(wrong == 0, "5000 additions: every held entry found, count and watermark as the model (%d wrong)", wrong);
	}
	free(mem);
	return tap_done();
}
