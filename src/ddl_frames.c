/*
 * ddl_frames.c — what a guard's ddl_command_start event trigger notes for
 * the matching ddl_command_end.
 *
 * The DDL guards (protect_guard.c, audit_guard.c) compare the catalogs
 * before and after each command.  The start trigger pushes a frame (the
 * command's parse tree and what the guard read); the end trigger finds the
 * frame of the same parse tree and drops it together with every frame above
 * it, which belong to nested commands that failed.
 *
 * Invariants: frames live in a memory context of their own under
 * TopMemoryContext, so they survive the commits inside CREATE INDEX
 * CONCURRENTLY between a command's start and end; an aborted transaction
 * forgets all of them, an aborted subtransaction those it pushed; the
 * context is reset whenever the stack is empty.
 */
#include "brandbos.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"

#include "access/xact.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "utils/memutils.h"

static void
forget_from(BrandbosDdlFrames *stack, int nest_level)
{
	while (stack->frames != NIL &&
		   ((BrandbosDdlFrame *) llast(stack->frames))->nest_level >= nest_level)
		stack->frames = list_delete_last(stack->frames);
	if (stack->frames == NIL && stack->cxt != NULL)
		MemoryContextReset(stack->cxt);
}

static void
frames_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		forget_from((BrandbosDdlFrames *) arg, 0);
}

static void
frames_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		forget_from((BrandbosDdlFrames *) arg, GetCurrentTransactionNestLevel());
}

MemoryContext
brandbos_ddl_frames_context(BrandbosDdlFrames *stack)
{
	if (stack->cxt == NULL)
	{
		stack->cxt = AllocSetContextCreate(TopMemoryContext, "brandbos guard frames",
										   ALLOCSET_SMALL_SIZES);
		MemoryContextSetIdentifier(stack->cxt, stack->name);
		RegisterXactCallback(frames_xact_callback, stack);
		RegisterSubXactCallback(frames_subxact_callback, stack);
	}
	return stack->cxt;
}

void
brandbos_ddl_frame_push(BrandbosDdlFrames *stack, BrandbosDdlFrame *frame, Node *parsetree)
{
	MemoryContext old = MemoryContextSwitchTo(brandbos_ddl_frames_context(stack));

	frame->parsetree = parsetree;
	frame->nest_level = GetCurrentTransactionNestLevel();
	stack->frames = lappend(stack->frames, frame);
	MemoryContextSwitchTo(old);
}

BrandbosDdlFrame *
brandbos_ddl_frame_find(BrandbosDdlFrames *stack, Node *parsetree)
{
	int			i;

	for (i = list_length(stack->frames) - 1; i >= 0; i--)
	{
		BrandbosDdlFrame *frame = list_nth(stack->frames, i);

		if (frame->parsetree == parsetree)
			return frame;
	}
	return NULL;
}

void
brandbos_ddl_frame_drop(BrandbosDdlFrames *stack, BrandbosDdlFrame *frame)
{
	int			i;

	for (i = list_length(stack->frames) - 1; i >= 0; i--)
	{
		if (list_nth(stack->frames, i) == frame)
		{
			stack->frames = list_truncate(stack->frames, i);
			break;
		}
	}
	if (stack->frames == NIL && stack->cxt != NULL)
		MemoryContextReset(stack->cxt);
}

bool
brandbos_ddl_guard_applies(FunctionCallInfo fcinfo, const char *fn)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as an event trigger", fn)));
	/* brandbos's own install script, not another extension's, passes */
	return !(creating_extension &&
			 CurrentExtensionObject == get_extension_oid("brandbos", true));
}

/*
 * The objects of catalog classid that the current command created or
 * altered (pg_event_trigger_ddl_commands(), at ddl_command_end), as the
 * current user; whole objects only (objsubid 0).  The list is allocated in
 * the caller's memory context.
 */
List *
brandbos_ddl_command_objects(Oid classid)
{
	BrandbosInternalState state;
	List	   *objids = NIL;
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(classid);
	uint64		i;

	brandbos_spi_begin(&state, GetUserId());
	(void) brandbos_sql_exec("SELECT DISTINCT objid FROM pg_catalog.pg_event_trigger_ddl_commands() "
							 "WHERE classid OPERATOR(pg_catalog.=) $1 "
							 "AND objsubid OPERATOR(pg_catalog.=) 0",
							 1, &argtype, &arg, NULL, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		MemoryContext old;

		if (isnull)
			continue;
		old = MemoryContextSwitchTo(caller);
		objids = lappend_oid(objids, DatumGetObjectId(d));
		MemoryContextSwitchTo(old);
	}
	brandbos_spi_end(&state);
	return objids;
}
