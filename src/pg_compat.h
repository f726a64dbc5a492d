/*
 * pg_compat.h — the few PostgreSQL API differences between majors that are
 * spelled once here rather than at each use.
 *
 * brandbos is tested on PostgreSQL 15 and 18 and compiled for 16 and 17.
 * Differences met in a single place are guarded where they occur, with the
 * PG_VERSION_NUM of the release that brought them; this header holds only
 * those used from several files.  Include it after postgres.h.
 */
#ifndef BRANDBOS_PG_COMPAT_H
#define BRANDBOS_PG_COMPAT_H

#include "postgres.h"

/*
 * 18 replaced the trailing pg_attribute_noreturn() with pg_noreturn, written
 * before the declaration.  Declarations here use the new spelling; before 18
 * it maps to the GCC-style attribute, which may also lead a declaration.
 */
#if PG_VERSION_NUM < 180000 && !defined(pg_noreturn)
#define pg_noreturn pg_attribute_noreturn()
#endif

/*
 * 17 moved a backend's local transaction id and its number into
 * PGPROC.vxid (and renamed BackendId to ProcNumber, 0-based).
 */
#if PG_VERSION_NUM >= 170000
#define BRANDBOS_PROC_LXID(proc)		((proc)->vxid.lxid)
#define BRANDBOS_PROC_NUMBER(proc)		((proc)->vxid.procNumber)
#define BRANDBOS_VXID_NUMBER(vxid)		((vxid).procNumber)
#else
#define BRANDBOS_PROC_LXID(proc)		((proc)->lxid)
#define BRANDBOS_PROC_NUMBER(proc)		((proc)->backendId)
#define BRANDBOS_VXID_NUMBER(vxid)		((vxid).backendId)
#endif

/*
 * ---- pg_compat.c ----
 *
 * Give estate a range table of the one relation rte (RT index 1), as the
 * executor expects before ExecSimpleRelationInsert/Update: 16 added its
 * RTEPermissionInfo list (rte gets an entry, so that the executor finds the
 * inserted and updated columns), 18 the set of unpruned RT indexes.
 */
struct EState;
struct RangeTblEntry;
extern void brandbos_init_one_range_table(struct EState *estate, struct RangeTblEntry *rte);

#endif							/* BRANDBOS_PG_COMPAT_H */
