/*
 * deliberation.h — what the deliberation files share (SPEC 5).
 *
 *   deliberation.c               internal statements, argument checks, the
 *                                trigger plumbing, and finding the session a
 *                                caller may reach
 *   deliberation_sessions.c      sessions: the status machine, rounds,
 *                                phases, status changes, the summary
 *   deliberation_bookkeeping.c   contributions and votes: the triggers that
 *                                keep costs and tokens exact, the functions
 *   deliberation_personas.c      the shared persona catalogue
 *   deliberation_gdpr.c          a user's export and erasure
 *
 * Only these files include this header; everything here is for them.
 */
#ifndef BRANDBOS_DELIBERATION_H
#define BRANDBOS_DELIBERATION_H

#include "brandbos.h"

#include "access/htup.h"
#include "commands/trigger.h"
#include "fmgr.h"

/* membership of a NULL-terminated list of strings */
extern bool delib_in_list(const char *value, const char *const *list);

/*
 * Internal statements, inside brandbos_spi_begin.  nulls is NULL or one
 * ' '/'n' per argument; an SPI failure is an internal error.  The _cached
 * form keeps a plan per backend for the statements on the path of every
 * contribution and vote: its sql must be a string constant (the cache is
 * keyed by the address).  delib_text and delib_datum read SPI_tuptable.
 */
extern int	delib_exec_cached(const char *sql, int nargs, Oid *types, Datum *values,
							  const char *nulls, bool read_only);
extern char *delib_text(int row, int col);
extern Datum delib_datum(int row, int col, bool *isnull);

/* argument checks: 22004 for NULL, 22023 for an empty string or bad value */
extern char *delib_required_text(FunctionCallInfo fcinfo, int argno, const char *what);
extern char *delib_optional_text(FunctionCallInfo fcinfo, int argno);
extern void delib_check_phase(const char *phase);
extern bool delib_numeric_is_negative(Datum n);

/*
 * The session a caller reaches (delib_open_session): status in the SPI
 * context, round_number and max_rounds as they were when it was read (or
 * locked).
 */
typedef struct DelibSession
{
	char	   *status;
	int32		round_number;
	int32		max_rounds;
} DelibSession;

extern void delib_open_session(BrandbosInternalState *state, const char *session_id,
							   bool lock, DelibSession *session);
extern void delib_require_persona(const char *code);
pg_noreturn extern void delib_refuse_inactive(const char *session_id, const char *status,
											  const char *what);

/* trigger plumbing */
extern TriggerData *delib_trigger_data(FunctionCallInfo fcinfo, const char *name);
extern bool delib_loading_rows(void);
extern Datum delib_row_as_is(TriggerData *td);
extern int	delib_attnum_of(TupleDesc tupdesc, const char *name);
extern char *delib_tuple_text(HeapTuple tuple, TupleDesc tupdesc, const char *name);

#endif							/* BRANDBOS_DELIBERATION_H */
