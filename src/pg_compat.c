/*
 * pg_compat.c — the version-dependent calls that several files make, written
 * once (see pg_compat.h for which major changed what).
 */
#include "postgres.h"

#include "pg_compat.h"

#include "executor/executor.h"
#include "nodes/bitmapset.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#endif

/* one-relation range table for a hand-built executor state (pg_compat.h) */
void
brandbos_init_one_range_table(EState *estate, RangeTblEntry *rte)
{
#if PG_VERSION_NUM >= 160000
	List	   *perminfos = NIL;

	addRTEPermissionInfo(&perminfos, rte);
#endif
#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(estate, list_make1(rte), perminfos, bms_make_singleton(1));
#elif PG_VERSION_NUM >= 160000
	ExecInitRangeTable(estate, list_make1(rte), perminfos);
#else
	ExecInitRangeTable(estate, list_make1(rte));
#endif
}
