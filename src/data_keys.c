/*
 * data_keys.c — the data keys: wrapped under the root key, unwrapped into a
 * per-backend cache, and the active version that new values are sealed under.
 *
 * A data key is 32 random bytes, stored in brandbos.data_keys wrapped with
 * XChaCha20-Poly1305 under the root key; the associated data is a fixed
 * label and the version, so a wrapped key cannot be moved to another
 * version.  Internal queries on the table run as the extension owner
 * (keys_sql_begin).
 *
 * Invariants of the cache (unwrapped keys in read-only sodium memory):
 *   - every function that changes a key sends a relcache invalidation of
 *     brandbos.data_keys (keys_changed); receiving one throws the whole
 *     cache away, and so does the abort of a (sub)transaction that created
 *     a key, or a reload of the root key;
 *   - data_keys_relid, the relation those invalidations name, survives a
 *     flush: a backend that forgot it would stop hearing of rotations and
 *     destructions and go on sealing under a retired or destroyed version;
 *   - key_cache_generation counts flushes, so an active version read before
 *     a flush is never trusted after it;
 *   - changes that do not come through those functions — a logical
 *     replication apply worker writing the publisher's key changes, or a
 *     restore — fire the row trigger data_keys_changed (ENABLE ALWAYS; apply
 *     workers fire row triggers only), which sends the same invalidation;
 *   - a Citus worker never makes a data key (create_data_key refuses there):
 *     it holds the coordinator's, sent by citus_keys.c.
 *
 * Invariants of the version locks (a database-object lock on
 * (brandbos.data_keys, version)): a writer holds the lock of the version it
 * seals under, or stores an envelope of, in share mode until its
 * (sub)transaction ends; destroy_key (key_admin.c) takes it exclusively, so
 * every value under the version is committed or gone before it counts them.
 */
#include "brandbos.h"
#include "keys_internal.h"

#include <sodium.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"

#define WRAP_NONCE_BYTES	crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define WRAPPED_KEY_BYTES	(WRAP_NONCE_BYTES + BRANDBOS_DATA_KEY_BYTES + \
							 crypto_aead_xchacha20poly1305_ietf_ABYTES)

/* unwrapped data keys of this backend */
typedef struct CachedDataKey
{
	uint32		version;
	unsigned char *key;			/* sodium_malloc'd, read-only */
} CachedDataKey;

#define MAX_CACHED_KEYS 64
static CachedDataKey key_cache[MAX_CACHED_KEYS];
static int	key_cache_len = 0;
static uint32 active_version = 0;	/* 0 = not known */
/*
 * The relation whose invalidations throw the cache away.  Kept when the
 * cache is flushed: a backend that forgot it would no longer hear of the
 * rotations and destructions other backends commit, and would go on
 * sealing under a version that is retired, or destroyed.
 */
static Oid	data_keys_relid = InvalidOid;
/* bumped whenever the cache is thrown away: a version resolved before is suspect */
static uint64 key_cache_generation = 0;
static bool key_created_in_xact = false;

static void flush_key_cache(void);

/* ---------------------------------------------------------------------
 * Wrapping
 * --------------------------------------------------------------------- */

static void
wrap_ad(uint32 version, unsigned char *ad)
{
	memcpy(ad, "brandbos data key", 17);
	ad[17] = (unsigned char) (version >> 24);
	ad[18] = (unsigned char) (version >> 16);
	ad[19] = (unsigned char) (version >> 8);
	ad[20] = (unsigned char) version;
}

static void
wrap_data_key(const unsigned char *wrapping_key, uint32 version,
			  const unsigned char *data_key, unsigned char *out)
{
	unsigned char ad[21];

	wrap_ad(version, ad);
	randombytes_buf(out, WRAP_NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + WRAP_NONCE_BYTES, NULL,
											   data_key, BRANDBOS_DATA_KEY_BYTES,
											   ad, sizeof(ad), NULL, out,
											   wrapping_key);
}

static bool
unwrap_data_key(const unsigned char *wrapping_key, uint32 version,
				const unsigned char *wrapped, size_t wrapped_len,
				unsigned char *out)
{
	unsigned char ad[21];

	if (wrapped_len != WRAPPED_KEY_BYTES)
		return false;
	wrap_ad(version, ad);
	return crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL,
													  wrapped + WRAP_NONCE_BYTES,
													  wrapped_len - WRAP_NONCE_BYTES,
													  ad, sizeof(ad), wrapped,
													  wrapping_key) == 0;
}

/* ---------------------------------------------------------------------
 * The per-backend cache
 * --------------------------------------------------------------------- */

static void
flush_key_cache(void)
{
	int			i;

	for (i = 0; i < key_cache_len; i++)
		sodium_free(key_cache[i].key);
	key_cache_len = 0;
	active_version = 0;
	key_cache_generation++;
}

void
brandbos_keys_relcache_changed(Oid relid)
{
	if (relid == InvalidOid || relid == data_keys_relid)
		flush_key_cache();
}

static void
keys_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		if (key_created_in_xact)
			flush_key_cache();
		key_created_in_xact = false;
	}
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
			 event == XACT_EVENT_PREPARE)
		key_created_in_xact = false;
}

static void
keys_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	/* a key made in an aborted subtransaction is gone: forget everything */
	if (event == SUBXACT_EVENT_ABORT_SUB && key_created_in_xact)
		flush_key_cache();
}

static const unsigned char *
cache_lookup(uint32 version)
{
	int			i;

	for (i = 0; i < key_cache_len; i++)
		if (key_cache[i].version == version)
			return key_cache[i].key;
	return NULL;
}

static const unsigned char *
cache_store(uint32 version, const unsigned char *key)
{
	unsigned char *copy;

	if (key_cache_len == MAX_CACHED_KEYS)
		flush_key_cache();
	copy = sodium_malloc(BRANDBOS_DATA_KEY_BYTES);
	if (copy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not allocate protected memory for a data key")));
	memcpy(copy, key, BRANDBOS_DATA_KEY_BYTES);
	sodium_mprotect_readonly(copy);
	key_cache[key_cache_len].version = version;
	key_cache[key_cache_len].key = copy;
	key_cache_len++;
	return copy;
}

/* ---------------------------------------------------------------------
 * Reading and writing brandbos.data_keys (as the extension owner)
 * --------------------------------------------------------------------- */

static void
keys_sql_begin(BrandbosInternalState *state)
{
	data_keys_relid = brandbos_relid("data_keys");
	brandbos_spi_begin(state, brandbos_extension_owner());
}

static void
keys_sql_end(BrandbosInternalState *state)
{
	brandbos_spi_end(state);
}

/* tell every backend (and ourselves, at the next command) to re-read keys */
static void
keys_changed(void)
{
	Oid			relid = brandbos_relid("data_keys");

	if (OidIsValid(relid))
		CacheInvalidateRelcacheByRelid(relid);
}

static bytea *
spi_bytea(int row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? NULL : DatumGetByteaPP(d);
}

static int64
spi_int(int row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	if (isnull)
		return 0;
	switch (SPI_gettypeid(SPI_tuptable->tupdesc, col))
	{
		case INT4OID:
			return DatumGetInt32(d);
		case INT8OID:
			return DatumGetInt64(d);
		default:
			elog(ERROR, "unexpected column type in internal query");
	}
	return 0;
}

static char *
spi_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/* run a read-only query with a snapshot taken now, whatever the isolation level */
static void
spi_exec_latest(const char *sql)
{
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);
	int			rc;

	if (plan == NULL)
		elog(ERROR, "could not prepare internal query: %s", sql);
	rc = SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot,
							  true, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "internal query failed (%d): %s", rc, sql);
	SPI_freeplan(plan);
}

/* unwrap a stored key with the root key (or the previous one); errors if neither */
static const unsigned char *
unwrap_and_cache(uint32 version, bytea *wrapped, const char *stored_key_id)
{
	unsigned char plain[BRANDBOS_DATA_KEY_BYTES];
	const unsigned char *cached;
	bool		ok;

	ok = unwrap_data_key(brandbos_root_key(), version, (unsigned char *) VARDATA_ANY(wrapped),
						 VARSIZE_ANY_EXHDR(wrapped), plain);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key version %u cannot be unwrapped with the loaded root key", version),
				 errdetail("The key was wrapped under root key %s; the loaded root key is %s.",
						   stored_key_id ? stored_key_id : "?", brandbos_root_key_id()),
				 errhint("Load the root key the data keys were made with, or set brandbos.previous_root_key_file to it and run brandbos.rewrap_keys().")));
	cached = cache_store(version, plain);
	sodium_memzero(plain, sizeof(plain));
	return cached;
}

/* insert a fresh data key as the next version; caller holds the table lock */
static uint32
create_data_key(void)
{
	unsigned char key[BRANDBOS_DATA_KEY_BYTES];
	unsigned char wrapped[WRAPPED_KEY_BYTES];
	bytea	   *wrapped_datum;
	uint32		version;
	Oid			types[3] = {INT4OID, BYTEAOID, TEXTOID};
	Datum		values[3];

	/* a Citus worker uses the coordinator's keys (citus_keys.c), never one of its own */
	if (brandbos_citus_is_worker())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this Citus worker holds no active data key"),
				 errdetail("Data keys are made on the Citus coordinator and sent to every node; a worker never makes one of its own."),
				 errhint("Protect the table with brandbos.protect_column() on the coordinator, or call brandbos.rotate_key() there.")));
	brandbos_sql_exec("SELECT coalesce(max(version), 0) + 1 FROM brandbos.data_keys", 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	version = (uint32) spi_int(0, 1);

	crypto_aead_xchacha20poly1305_ietf_keygen(key);
	wrap_data_key(brandbos_root_key(), version, key, wrapped);
	wrapped_datum = palloc(VARHDRSZ + WRAPPED_KEY_BYTES);
	SET_VARSIZE(wrapped_datum, VARHDRSZ + WRAPPED_KEY_BYTES);
	memcpy(VARDATA(wrapped_datum), wrapped, WRAPPED_KEY_BYTES);

	values[0] = Int32GetDatum((int32) version);
	values[1] = PointerGetDatum(wrapped_datum);
	values[2] = CStringGetTextDatum(brandbos_root_key_id());
	brandbos_sql_exec("INSERT INTO brandbos.data_keys (version, status, wrapped_key, root_key_id) "
					  "VALUES ($1, 'active', $2, $3)", 3, types, values, NULL, false, SPI_OK_INSERT);

	key_created_in_xact = true;
	cache_store(version, key);
	sodium_memzero(key, sizeof(key));
	return version;
}

/*
 * Locks on data-key versions.  A backend holds the lock of the version it
 * seals under in share mode from its first seal until the end of the
 * (sub)transaction that took it; destroy_key takes it exclusively, so it
 * waits for every writer that may still commit values under the version
 * and then counts them.  The lock is a database-object lock on
 * (brandbos.data_keys, version).
 */
static void
lock_key_version(uint32 version, LOCKMODE mode)
{
	Oid			relid = brandbos_relid("data_keys");

	LockDatabaseObject(relid, (Oid) version, 0, mode);
}

static bool
key_version_locked_by_me(uint32 version)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, brandbos_relid("data_keys"), (Oid) version, 0);
#if PG_VERSION_NUM >= 170000
	return LockHeldByMe(&tag, AccessShareLock, true);
#else
	return LockHeldByMe(&tag, AccessShareLock);
#endif
}

/* the (sub)transaction that last made sure it holds the active version's lock */
static LocalTransactionId sealing_lxid = InvalidLocalTransactionId;
static SubTransactionId sealing_subxid = InvalidSubTransactionId;
static uint32 sealing_version = 0;

/* read the active version from brandbos.data_keys, with a fresh snapshot */
static uint32
resolve_active_version(void)
{
	BrandbosInternalState state;
	uint32		version;

	keys_sql_begin(&state);
	spi_exec_latest("SELECT version, wrapped_key, root_key_id FROM brandbos.data_keys "
					"WHERE status = 'active'");
	if (SPI_processed == 0)
	{
		/* first use: make version 1 (or the next), once across backends */
		brandbos_sql_exec("LOCK TABLE brandbos.data_keys IN EXCLUSIVE MODE", 0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
		spi_exec_latest("SELECT version, wrapped_key, root_key_id FROM brandbos.data_keys "
						"WHERE status = 'active'");
	}
	if (SPI_processed == 0)
		version = create_data_key();
	else
	{
		version = (uint32) spi_int(0, 1);
		if (cache_lookup(version) == NULL)
			unwrap_and_cache(version, spi_bytea(0, 2), spi_text(0, 3));
	}
	keys_sql_end(&state);
	return version;
}

void
brandbos_hold_key_version(uint32 version)
{
	BrandbosInternalState state;
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum((int32) version);
	SPIPlanPtr	plan;
	bool		destroyed;

	LocalTransactionId lxid;

	lxid = BRANDBOS_PROC_LXID(MyProc);
	/* the active version's lock, already taken by this very (sub)transaction */
	if (version == active_version && sealing_version == version &&
		sealing_lxid == lxid && sealing_subxid == GetCurrentSubTransactionId())
		return;
	if (key_version_locked_by_me(version))
		return;
	lock_key_version(version, AccessShareLock);

	/* a destroy_key that committed while we waited: the value cannot be kept */
	keys_sql_begin(&state);
	plan = SPI_prepare("SELECT 1 FROM brandbos.data_keys WHERE version = $1 "
					   "AND status = 'destroyed'", 1, &argtype);
	if (plan == NULL ||
		SPI_execute_snapshot(plan, &arg, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read brandbos.data_keys");
	destroyed = SPI_processed > 0;
	keys_sql_end(&state);
	if (destroyed)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key version %u has been destroyed", version),
				 errdetail("The envelope cannot be stored: nobody could ever read it."),
				 errhint("Write the plaintext instead; the trigger seals it under the active key.")));
}

uint32
brandbos_active_key_version(void)
{
	LocalTransactionId lxid;
	SubTransactionId subxid;

	brandbos_require_root_key();
	lxid = BRANDBOS_PROC_LXID(MyProc);
	subxid = GetCurrentSubTransactionId();
	for (;;)
	{
		uint32		version;
		uint64		generation = key_cache_generation;

		if (active_version == 0)
			active_version = resolve_active_version();
		version = active_version;
		if (sealing_lxid == lxid && sealing_subxid == subxid && sealing_version == version)
			return version;
		if (!key_version_locked_by_me(version))
		{
			/*
			 * Taking the lock reads pending invalidations: a rotation or
			 * destruction committed meanwhile flushes the cache, and the
			 * loop moves on to the version that is active now.  So does a
			 * flush while the version was being read (its answer may
			 * predate what the flush announced).
			 */
			lock_key_version(version, AccessShareLock);
			if (key_cache_generation != generation || active_version != version)
			{
				active_version = 0;
				continue;
			}
		}
		sealing_lxid = lxid;
		sealing_subxid = subxid;
		sealing_version = version;
		return version;
	}
}

const unsigned char *
brandbos_data_key(uint32 version)
{
	BrandbosInternalState state;
	const unsigned char *key;
	Datum		arg;
	Oid			argtype = INT4OID;
	char	   *status;

	brandbos_require_root_key();
	key = cache_lookup(version);
	if (key != NULL)
		return key;

	keys_sql_begin(&state);
	arg = Int32GetDatum((int32) version);
	brandbos_sql_exec("SELECT status, wrapped_key, root_key_id FROM brandbos.data_keys WHERE version = $1", 1, &argtype, &arg, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("data key version %u does not exist", version),
				 errdetail("The value was sealed under data key version %u, which brandbos.data_keys does not hold: the extension was dropped and created again, or the data was restored without brandbos.data_keys. No one can decrypt it without that key.",
						   version),
				 errhint("Restore brandbos.data_keys from the same backup as the data (pg_dump includes it).")));
	status = spi_text(0, 1);
	if (strcmp(status, "destroyed") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key version %u has been destroyed", version),
				 errdetail("Values sealed under a destroyed key cannot be decrypted by anyone.")));
	key = unwrap_and_cache(version, spi_bytea(0, 2), spi_text(0, 3));
	keys_sql_end(&state);
	return key;
}

/* ---------------------------------------------------------------------
 * Rotation and rewrapping
 * --------------------------------------------------------------------- */

/*
 * Refuse to add keys under a root key that the existing data keys were not
 * wrapped with: a new active key wrapped under a wrong (or not yet rewrapped)
 * root key would make every later write fail once the right key is back.
 */
static void
require_consistent_root_key(void)
{
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(brandbos_root_key_id());

	brandbos_sql_exec("SELECT version, root_key_id FROM brandbos.data_keys "
					  "WHERE wrapped_key IS NOT NULL AND root_key_id <> $1 ORDER BY version LIMIT 1", 1, &argtype, &arg, NULL, false, SPI_OK_SELECT);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key version %d is wrapped under another root key", (int) spi_int(0, 1)),
				 errdetail("It was wrapped under root key %s; the loaded root key is %s.",
						   spi_text(0, 2), brandbos_root_key_id()),
				 errhint("Load the root key the data keys were made with, or run brandbos.rewrap_keys() with brandbos.previous_root_key_file set.")));
}

/* retire the active key and make the next version active; returns it */
uint32
brandbos_rotate_data_key(void)
{
	BrandbosInternalState state;
	uint32		version;

	brandbos_require_root_key();
	keys_sql_begin(&state);
	brandbos_sql_exec("LOCK TABLE brandbos.data_keys IN EXCLUSIVE MODE", 0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	require_consistent_root_key();
	brandbos_sql_exec("UPDATE brandbos.data_keys SET status = 'retired', retired_at = now() "
					  "WHERE status = 'active'", 0, NULL, NULL, NULL, false, SPI_OK_UPDATE);
	version = create_data_key();
	keys_sql_end(&state);

	keys_changed();
	active_version = version;
	return version;
}

/*
 * Wrap every stored data key under the loaded root key that is still
 * wrapped under the previous one; returns how many were rewrapped.  A key
 * that unwraps under neither raises 55000 and nothing is changed.
 */
int32
brandbos_rewrap_data_keys(const unsigned char *previous, const char *previous_id)
{
	BrandbosInternalState state;
	SPITupleTable *rows;
	uint64		nrows,
				i;
	int32		rewrapped = 0;

	keys_sql_begin(&state);
	brandbos_sql_exec("LOCK TABLE brandbos.data_keys IN EXCLUSIVE MODE", 0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	brandbos_sql_exec("SELECT version, wrapped_key FROM brandbos.data_keys "
					  "WHERE wrapped_key IS NOT NULL ORDER BY version", 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	rows = SPI_tuptable;
	nrows = SPI_processed;
	for (i = 0; i < nrows; i++)
	{
		bool		isnull;
		uint32		version = (uint32) DatumGetInt32(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
		bytea	   *wrapped = DatumGetByteaPP(SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull));
		unsigned char plain[BRANDBOS_DATA_KEY_BYTES];
		unsigned char rewrapped_key[WRAPPED_KEY_BYTES];
		bytea	   *datum;
		Oid			types[3] = {BYTEAOID, TEXTOID, INT4OID};
		Datum		values[3];

		if (unwrap_data_key(brandbos_root_key(), version, (unsigned char *) VARDATA_ANY(wrapped),
							VARSIZE_ANY_EXHDR(wrapped), plain))
		{
			sodium_memzero(plain, sizeof(plain));
			continue;		/* already under the current root key */
		}
		if (!unwrap_data_key(previous, version, (unsigned char *) VARDATA_ANY(wrapped),
							 VARSIZE_ANY_EXHDR(wrapped), plain))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("data key version %u unwraps under neither the current nor the previous root key", version),
					 errdetail("The current root key is %s; the previous root key is %s.",
							   brandbos_root_key_id(), previous_id)));
		wrap_data_key(brandbos_root_key(), version, plain, rewrapped_key);
		sodium_memzero(plain, sizeof(plain));

		datum = palloc(VARHDRSZ + WRAPPED_KEY_BYTES);
		SET_VARSIZE(datum, VARHDRSZ + WRAPPED_KEY_BYTES);
		memcpy(VARDATA(datum), rewrapped_key, WRAPPED_KEY_BYTES);
		values[0] = PointerGetDatum(datum);
		values[1] = CStringGetTextDatum(brandbos_root_key_id());
		values[2] = Int32GetDatum((int32) version);
		brandbos_sql_exec("UPDATE brandbos.data_keys SET wrapped_key = $1, root_key_id = $2 "
						  "WHERE version = $3", 3, types, values, NULL, false, SPI_OK_UPDATE);
		rewrapped++;
	}
	keys_sql_end(&state);
	keys_changed();
	return rewrapped;
}

/* ---------------------------------------------------------------------
 * Offered to root_key.c and key_admin.c (keys_internal.h)
 * --------------------------------------------------------------------- */

void
brandbos_data_keys_init(void)
{
	RegisterXactCallback(keys_xact_callback, NULL);
	RegisterSubXactCallback(keys_subxact_callback, NULL);
}

void
brandbos_forget_data_keys(void)
{
	flush_key_cache();
}

void
brandbos_keys_sql_begin(BrandbosInternalState *state)
{
	keys_sql_begin(state);
}

void
brandbos_keys_sql_end(BrandbosInternalState *state)
{
	keys_sql_end(state);
}

void
brandbos_keys_changed(void)
{
	keys_changed();
}

PG_FUNCTION_INFO_V1(brandbos_data_keys_changed);
/* SQL: brandbos.data_keys_changed() returns trigger (AFTER INSERT OR UPDATE OR DELETE, FOR EACH ROW) */
Datum
brandbos_data_keys_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.data_keys_changed() may only be called as a trigger")));
	keys_changed();
	return PointerGetDatum(NULL);
}

bool
brandbos_unwrap_stored_key(uint32 version, bytea *wrapped, unsigned char *out)
{
	return unwrap_data_key(brandbos_root_key(), version, (unsigned char *) VARDATA_ANY(wrapped),
						   VARSIZE_ANY_EXHDR(wrapped), out);
}

char *
brandbos_keys_text(int row, int col)
{
	return spi_text(row, col);
}

void
brandbos_lock_key_version(uint32 version, LOCKMODE mode)
{
	lock_key_version(version, mode);
}
