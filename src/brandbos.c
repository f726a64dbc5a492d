/*
 * brandbos.c — the module's entry point, and nothing else.
 *
 * _PG_init initialises libsodium, then each concern's settings and hooks,
 * then reserves the "brandbos." prefix.  Features that need the library in
 * shared_preload_libraries say so where they are used; the install script
 * prints a notice when it is missing.  What every concern shares lives in
 * roles.c (role and ownership checks), internal_sql.c (brandbos's own
 * objects and the security context its internal SQL runs in) and
 * random_pool.c (nonces).
 */
#include "brandbos.h"
#include "token.h"

#include <sodium.h>

#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/inval.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * The one relcache callback brandbos takes (a backend has ten slots, and
 * Citus uses several of them): each per-backend cache that depends on a
 * relation is told here.  Every handler is a no-op until its cache exists.
 */
static void
brandbos_relcache_changed(Datum arg, Oid relid)
{
	brandbos_keys_relcache_changed(relid);
	brandbos_table_shape_relcache_changed(relid);
	brandbos_audit_table_cache_relcache_changed(relid);
	brandbos_audit_writer_relcache_changed(relid);
	brandbos_log_scrub_relcache_changed(relid);
	brandbos_shard_map_relcache_changed(relid);
	brandbos_shard_guard_relcache_changed(relid);
}

void
_PG_init(void)
{
	if (sodium_init() < 0)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("libsodium could not be initialised")));

	brandbos_keys_init();
	CacheRegisterRelcacheCallback(brandbos_relcache_changed, (Datum) 0);
	brandbos_drop_guard_init();
	brandbos_cipher_init();
	brandbos_passwords_init();
	brandbos_sealer_init();
	brandbos_xid_ring_init();
	brandbos_guard_init();
	brandbos_protect_guard_init();
	brandbos_token_init();
	brandbos_context_init();
	brandbos_citus_context_init();
	brandbos_citus_ledger_init();
	brandbos_role_lock_init();
	if (process_shared_preload_libraries_in_progress)
	{
		brandbos_log_scrub_init();
		brandbos_citus_policies_init();
		brandbos_shard_guard_init();
		brandbos_citus_columns_init();
	}
	brandbos_restore_mode_init();	/* last: its utility hook runs before the guards' */

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("brandbos");
#else
	EmitWarningsOnPlaceholders("brandbos");
#endif
}
