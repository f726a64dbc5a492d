/*
 * brandbos.c — module entry point and helpers shared by every concern.
 *
 * _PG_init initialises libsodium, then each concern's settings, then
 * reserves the "brandbos." prefix.  Features that need the library in
 * shared_preload_libraries say so where they are used; the install script
 * prints a notice when it is missing.
 */
#include "brandbos.h"
#include "token.h"

#include <sodium.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/syscache.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	if (sodium_init() < 0)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("libsodium could not be initialised")));

	brandbos_keys_init();
	brandbos_drop_guard_init();
	brandbos_cipher_init();
	brandbos_passwords_init();
	brandbos_sealer_init();
	brandbos_xid_ring_init();
	brandbos_guard_init();
	brandbos_protect_guard_init();
	brandbos_token_init();
	brandbos_context_init();
	brandbos_role_lock_init();
	if (process_shared_preload_libraries_in_progress)
		brandbos_log_scrub_init();
	brandbos_restore_mode_init();	/* last: its utility hook runs before the guards' */

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("brandbos");
#else
	EmitWarningsOnPlaceholders("brandbos");
#endif
}

bool
brandbos_has_role(const char *rolename)
{
	Oid			roleid = get_role_oid(rolename, true);

	if (!OidIsValid(roleid))
		return superuser();
	return has_privs_of_role(GetUserId(), roleid);
}

void
brandbos_require_role(const char *rolename, const char *action)
{
	if (!brandbos_has_role(rolename))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", action),
				 errdetail("Only roles with the privileges of \"%s\" may do this.",
						   rolename),
				 errhint("GRANT %s TO the role that needs it.", rolename)));
}

char *
brandbos_require_owned_table(Oid relid)
{
	char		relkind;

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", get_rel_name(relid)),
				 errdetail("Only ordinary and partitioned tables are supported.")));
#if PG_VERSION_NUM >= 160000
	if (!object_ownercheck(RelationRelationId, relid, GetUserId()))
#else
	if (!pg_class_ownercheck(relid, GetUserId()))
#endif
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

Oid
brandbos_relid(const char *relname)
{
	Oid			nsp = get_namespace_oid(BRANDBOS_SCHEMA, true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid(relname, nsp);
}

Oid
brandbos_extension_owner(void)
{
	Oid			relid = brandbos_relid("data_keys");
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"brandbos\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION brandbos.")));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Nonces need not be secret, only unique; drawing them from a pool filled
 * by one getrandom() call per 4 kB keeps a system call off every row.  The
 * pool is refilled after fork so two backends never share bytes.
 */
#define RANDOM_POOL_BYTES 4096

static unsigned char random_pool[RANDOM_POOL_BYTES];
static size_t random_pool_used = RANDOM_POOL_BYTES;
static int	random_pool_pid = 0;

void
brandbos_random_bytes(unsigned char *out, size_t len)
{
	if (len > RANDOM_POOL_BYTES / 4)
	{
		randombytes_buf(out, len);
		return;
	}
	if (random_pool_pid != MyProcPid || random_pool_used + len > RANDOM_POOL_BYTES)
	{
		randombytes_buf(random_pool, RANDOM_POOL_BYTES);
		random_pool_used = 0;
		random_pool_pid = MyProcPid;
	}
	memcpy(out, random_pool + random_pool_used, len);
	sodium_memzero(random_pool + random_pool_used, len);
	random_pool_used += len;
}

/*
 * Internal SQL runs with search_path pinned to pg_catalog, pg_temp, so no
 * object a caller put on their path can stand in for ours, with row_security
 * on (the bookkeeping triggers treat "off" as a restore), and optionally as
 * another role (the extension owner for brandbos's own tables, the table
 * owner for maintenance of a user table), as a restricted operation.
 */
void
brandbos_internal_begin(BrandbosInternalState *state, Oid run_as)
{
	GetUserIdAndSecContext(&state->save_userid, &state->save_sec_context);
	SetUserIdAndSecContext(run_as,
						   state->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	state->guc_nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* the caller's row_security = off must not reach brandbos's own statements */
	if (!row_security)
		(void) set_config_option("row_security", "on",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
}

void
brandbos_internal_end(BrandbosInternalState *state)
{
	AtEOXact_GUC(false, state->guc_nest_level);
	SetUserIdAndSecContext(state->save_userid, state->save_sec_context);
}

/* the usual pairing: internal context, then an SPI connection inside it */
void
brandbos_spi_begin(BrandbosInternalState *state, Oid run_as)
{
	brandbos_internal_begin(state, run_as);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

void
brandbos_spi_end(BrandbosInternalState *state)
{
	SPI_finish();
	brandbos_internal_end(state);
}
