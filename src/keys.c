/*
 * keys.c — the root key and the data keys wrapped under it.
 *
 * The root key (32 bytes) is read from brandbos.root_key_file or printed by
 * brandbos.root_key_command.  It lives only in sodium_malloc memory, is kept
 * read-only, and no SQL function returns it.  A missing or unusable root key
 * never stops the server: the reason is remembered (without key material)
 * and every call that needs a key fails with 55000 and a hint.
 *
 * The key command runs through key_command.c with a deadline,
 * brandbos.root_key_command_timeout: a command that hangs is killed with
 * its whole process group, and the server starts (or the backend goes on)
 * without a key.  In a backend a query cancel or termination also kills it.
 * What the command prints is never logged.
 *
 * When the library is preloaded the postmaster reads the key once and every
 * backend inherits it; otherwise each backend reads it on first use.  A
 * reload (SIGHUP) that touches the settings makes the next use read again.
 *
 * Data keys are random 32-byte keys stored in brandbos.data_keys, wrapped
 * with XChaCha20-Poly1305 under the root key (associated data: a label and
 * the version).  Unwrapped keys are cached per backend in sodium memory; the
 * cache is flushed by a relcache invalidation of brandbos.data_keys, which
 * every function that changes a key sends, and when a transaction that
 * created a key aborts.
 */
#include "brandbos.h"
#include "key_command.h"
#include "secret_file.h"

#include <ctype.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define ROOT_KEY_BYTES		32
#define ROOT_KEY_ID_BYTES	8
#define WRAP_NONCE_BYTES	crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define WRAPPED_KEY_BYTES	(WRAP_NONCE_BYTES + BRANDBOS_DATA_KEY_BYTES + \
							 crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define KEY_FILE_MAX_BYTES	256

/* settings */
static char *root_key_file = NULL;
static char *root_key_command = NULL;
static char *previous_root_key_file = NULL;
static int	root_key_command_timeout_ms = 10000;

/* the root key of this process, or NULL with the reason in root_key_problem */
static unsigned char *root_key = NULL;
static char root_key_id[ROOT_KEY_ID_BYTES * 2 + 1];
static bool root_key_tried = false;
static char root_key_problem[512];
static bool root_key_timed_out = false;	/* the problem is the command's deadline */

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
 * Loading the root key
 * --------------------------------------------------------------------- */

/* parse 64 hex characters (surrounding white space allowed) into out */
static bool
parse_hex_key(const char *buf, size_t len, unsigned char *out)
{
	size_t		start = 0,
				end = len,
				bin_len = 0;

	while (start < end && isspace((unsigned char) buf[start]))
		start++;
	while (end > start && isspace((unsigned char) buf[end - 1]))
		end--;
	if (end - start != 2 * (size_t) ROOT_KEY_BYTES)
		return false;
	if (sodium_hex2bin(out, ROOT_KEY_BYTES, buf + start, end - start,
					   NULL, &bin_len, NULL) != 0)
		return false;
	return bin_len == ROOT_KEY_BYTES;
}

/* read a key file into out (secret_file.c checks its permissions); on failure describe why */
static bool
read_key_file(const char *path, unsigned char *out, char *problem, size_t problem_len)
{
	unsigned char buf[KEY_FILE_MAX_BYTES];
	size_t		n;
	bool		ok;

	if (!bb_read_secret_file(path, "key file", buf, sizeof(buf), &n, problem, problem_len))
		return false;
	ok = parse_hex_key((const char *) buf, n, out);
	sodium_memzero(buf, sizeof(buf));
	if (!ok)
		snprintf(problem, problem_len,
				 "key file \"%s\" does not hold exactly 64 hexadecimal characters", path);
	return ok;
}

/* polled while the key command runs in a backend: a cancel or terminate kills it */
static bool
key_command_should_stop(void)
{
	return InterruptPending && (QueryCancelPending || ProcDiePending);
}

/*
 * Run the key command (bounded by brandbos.root_key_command_timeout) and
 * parse what it prints.  *interrupted is set when a cancel stopped it.
 */
static bool
read_key_command(const char *command, unsigned char *out, char *problem, size_t problem_len,
				 bool *interrupted)
{
	unsigned char buf[KEY_FILE_MAX_BYTES];
	bb_cmd_result res;
	bool		ok = false;

	*interrupted = false;
	bb_run_command(command, root_key_command_timeout_ms, key_command_should_stop,
				   buf, sizeof(buf), &res);
	switch (res.status)
	{
		case BB_CMD_START_FAILED:
			snprintf(problem, problem_len, "could not run brandbos.root_key_command: %s",
					 strerror(res.error));
			break;
		case BB_CMD_TIMED_OUT:
			root_key_timed_out = true;
			snprintf(problem, problem_len,
					 "brandbos.root_key_command did not finish within %d ms (brandbos.root_key_command_timeout) and was killed",
					 root_key_command_timeout_ms);
			break;
		case BB_CMD_INTERRUPTED:
			*interrupted = true;
			snprintf(problem, problem_len,
					 "brandbos.root_key_command was interrupted by a cancel request and killed");
			break;
		case BB_CMD_FAILED:
			if (res.error != 0)
				snprintf(problem, problem_len,
						 "could not learn how brandbos.root_key_command ended: %s",
						 strerror(res.error));
			else if (WIFSIGNALED(res.wait_status))
				snprintf(problem, problem_len,
						 "brandbos.root_key_command was terminated by signal %d",
						 WTERMSIG(res.wait_status));
			else
				snprintf(problem, problem_len,
						 "brandbos.root_key_command exited with status %d",
						 WIFEXITED(res.wait_status) ? WEXITSTATUS(res.wait_status) : -1);
			break;
		case BB_CMD_OK:
			ok = !res.truncated && parse_hex_key((const char *) buf, res.len, out);
			if (!ok)
				snprintf(problem, problem_len,
						 "brandbos.root_key_command did not print exactly 64 hexadecimal characters");
			break;
	}
	sodium_memzero(buf, sizeof(buf));
	return ok;
}

/* fingerprint of a root key: safe to store and show */
static void
compute_key_id(const unsigned char *key, char *hex_out)
{
	unsigned char id[ROOT_KEY_ID_BYTES];
	static const char label[] = "brandbos root key id";

	crypto_generichash(id, sizeof(id), (const unsigned char *) label,
					   sizeof(label) - 1, key, ROOT_KEY_BYTES);
	sodium_bin2hex(hex_out, ROOT_KEY_ID_BYTES * 2 + 1, id, sizeof(id));
}

static void
drop_root_key(void)
{
	if (root_key != NULL)
	{
		sodium_mprotect_readwrite(root_key);
		sodium_free(root_key);	/* wipes before unmapping */
		root_key = NULL;
	}
	root_key_id[0] = '\0';
}

/* (re)load the root key from the settings; never throws */
static void
load_root_key(void)
{
	unsigned char *key;
	bool		have_file = root_key_file != NULL && root_key_file[0] != '\0';
	bool		have_command = root_key_command != NULL && root_key_command[0] != '\0';
	bool		ok;
	bool		interrupted = false;

	drop_root_key();
	flush_key_cache();
	root_key_tried = true;
	root_key_timed_out = false;
	root_key_problem[0] = '\0';

	if (!have_file && !have_command)
	{
		snprintf(root_key_problem, sizeof(root_key_problem),
				 "neither brandbos.root_key_file nor brandbos.root_key_command is set");
		return;
	}
	if (have_file && have_command)
	{
		snprintf(root_key_problem, sizeof(root_key_problem),
				 "both brandbos.root_key_file and brandbos.root_key_command are set; set only one");
		return;
	}

	key = sodium_malloc(ROOT_KEY_BYTES);
	if (key == NULL)
	{
		snprintf(root_key_problem, sizeof(root_key_problem),
				 "could not allocate protected memory for the root key");
		return;
	}
	if (have_file)
		ok = read_key_file(root_key_file, key, root_key_problem, sizeof(root_key_problem));
	else
		ok = read_key_command(root_key_command, key, root_key_problem, sizeof(root_key_problem),
							  &interrupted);
	if (!ok)
	{
		sodium_free(key);
		if (interrupted)
		{
			/* not a verdict on the key: try again next time, report the cancel now */
			root_key_tried = false;
			CHECK_FOR_INTERRUPTS();
		}
		return;
	}
	compute_key_id(key, root_key_id);
	sodium_mprotect_readonly(key);
	root_key = key;
}

/* any change of a key setting: read again on next use */
static void
assign_key_setting(const char *newval, void *extra)
{
	root_key_tried = false;
}

static void
assign_key_timeout(int newval, void *extra)
{
	root_key_tried = false;
}

/* the hint of "root key is not loaded", and of the log line at start */
static const char *
root_key_hint(void)
{
	if (root_key_timed_out)
		return psprintf("Make brandbos.root_key_command finish within brandbos.root_key_command_timeout (%d ms), or raise that timeout, then reload the configuration.",
						root_key_command_timeout_ms);
	return "Set brandbos.root_key_file to a file of 64 hexadecimal characters readable only by the server's user, or brandbos.root_key_command, then reload the configuration.";
}

bool
brandbos_root_key_available(void)
{
	if (!root_key_tried)
		load_root_key();
	return root_key != NULL;
}

static void
require_root_key(void)
{
	if (!brandbos_root_key_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("brandbos root key is not loaded"),
				 errdetail("%s.", root_key_problem),
				 errhint("%s", root_key_hint())));
}

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

static void
keys_relcache_callback(Datum arg, Oid relid)
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

static void
spi_exec(const char *sql, int nargs, Oid *types, Datum *values, int expect)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

	if (rc != expect)
		elog(ERROR, "internal query failed (%d): %s", rc, sql);
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

	ok = unwrap_data_key(root_key, version, (unsigned char *) VARDATA_ANY(wrapped),
						 VARSIZE_ANY_EXHDR(wrapped), plain);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key version %u cannot be unwrapped with the loaded root key", version),
				 errdetail("The key was wrapped under root key %s; the loaded root key is %s.",
						   stored_key_id ? stored_key_id : "?", root_key_id),
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

	spi_exec("SELECT coalesce(max(version), 0) + 1 FROM brandbos.data_keys",
			 0, NULL, NULL, SPI_OK_SELECT);
	version = (uint32) spi_int(0, 1);

	crypto_aead_xchacha20poly1305_ietf_keygen(key);
	wrap_data_key(root_key, version, key, wrapped);
	wrapped_datum = palloc(VARHDRSZ + WRAPPED_KEY_BYTES);
	SET_VARSIZE(wrapped_datum, VARHDRSZ + WRAPPED_KEY_BYTES);
	memcpy(VARDATA(wrapped_datum), wrapped, WRAPPED_KEY_BYTES);

	values[0] = Int32GetDatum((int32) version);
	values[1] = PointerGetDatum(wrapped_datum);
	values[2] = CStringGetTextDatum(root_key_id);
	spi_exec("INSERT INTO brandbos.data_keys (version, status, wrapped_key, root_key_id) "
			 "VALUES ($1, 'active', $2, $3)", 3, types, values, SPI_OK_INSERT);

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
		spi_exec("LOCK TABLE brandbos.data_keys IN EXCLUSIVE MODE", 0, NULL, NULL, SPI_OK_UTILITY);
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

#if PG_VERSION_NUM >= 170000
	lxid = MyProc->vxid.lxid;
#else
	lxid = MyProc->lxid;
#endif
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

	require_root_key();
#if PG_VERSION_NUM >= 170000
	lxid = MyProc->vxid.lxid;
#else
	lxid = MyProc->lxid;
#endif
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

	require_root_key();
	key = cache_lookup(version);
	if (key != NULL)
		return key;

	keys_sql_begin(&state);
	arg = Int32GetDatum((int32) version);
	spi_exec("SELECT status, wrapped_key, root_key_id FROM brandbos.data_keys WHERE version = $1",
			 1, &argtype, &arg, SPI_OK_SELECT);
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
 * Counting the values that use each version
 * --------------------------------------------------------------------- */

/*
 * Add to "counts" (indexed by version, length max_version + 1) how many
 * values of every protected column are sealed under each version.  The
 * columns are read by value_scan.c (as each table's owner, no user code,
 * a fresh snapshot, row security not applied).  Columns that could not be
 * read are returned as sentences ("table.column: why"), so callers can
 * report them and go on, or refuse.  Runs inside keys_sql_begin.
 */
static List *
count_values_by_version(int64 *counts, uint32 max_version)
{
	SPITupleTable *columns;
	uint64		ncolumns,
				i;
	List	   *unreadable = NIL;

	spi_exec("SELECT r.table_oid::pg_catalog.oid, r.column_name::pg_catalog.text "
			 "FROM brandbos.column_registry r ORDER BY 1, 2",
			 0, NULL, NULL, SPI_OK_SELECT);
	columns = SPI_tuptable;
	ncolumns = SPI_processed;
	for (i = 0; i < ncolumns; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(columns->vals[i], columns->tupdesc, 1, &isnull));
		char	   *column = SPI_getvalue(columns->vals[i], columns->tupdesc, 2);
		BrandbosColumnScan scan;
		int			j;

		brandbos_scan_protected_column(relid, column, &scan);
		for (j = 0; j < scan.nversions; j++)
			if (scan.versions[j] <= max_version)
				counts[scan.versions[j]] += scan.counts[j];
		if (scan.unreadable)
		{
			char	   *relname = get_rel_name(relid);

			unreadable = lappend(unreadable,
								 psprintf("%s.%s: %s", relname ? relname : "?",
										  column, scan.problem));
		}
	}
	return unreadable;
}

/* one line listing the unreadable columns, for a detail message */
static char *
unreadable_detail(List *unreadable)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, unreadable)
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? "; " : "", (char *) lfirst(lc));
	return buf.data;
}

/* ---------------------------------------------------------------------
 * SQL functions
 * --------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(brandbos_root_key_loaded);
/* SQL: brandbos.root_key_loaded() returns boolean */
Datum
brandbos_root_key_loaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(brandbos_root_key_available());
}

PG_FUNCTION_INFO_V1(brandbos_key_status);
/* SQL: brandbos.key_status() returns table(version, status, created_at, rows_using) */
Datum
brandbos_key_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	BrandbosInternalState state;
	SPITupleTable *keys;
	uint64		nkeys,
				i;
	uint32		max_version = 0;
	int64	   *counts;
	List	   *unreadable;

	brandbos_require_role(BRANDBOS_ROLE_KEYMASTER, "read brandbos key status");
	InitMaterializedSRF(fcinfo, 0);

	keys_sql_begin(&state);
	spi_exec("SELECT version, status, created_at FROM brandbos.data_keys ORDER BY version",
			 0, NULL, NULL, SPI_OK_SELECT);
	keys = SPI_tuptable;
	nkeys = SPI_processed;
	for (i = 0; i < nkeys; i++)
	{
		bool		isnull;
		uint32		v = (uint32) DatumGetInt32(SPI_getbinval(keys->vals[i], keys->tupdesc, 1, &isnull));

		if (v > max_version)
			max_version = v;
	}
	counts = palloc0(sizeof(int64) * (max_version + 1));
	unreadable = count_values_by_version(counts, max_version);
	if (unreadable != NIL)
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("%d protected columns could not be read; rows_using leaves them out",
						list_length(unreadable)),
				 errdetail("%s", unreadable_detail(unreadable)),
				 errhint("See the problem column of brandbos.protected_columns.")));

	for (i = 0; i < nkeys; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		bool		isnull;
		uint32		v;

		v = (uint32) DatumGetInt32(SPI_getbinval(keys->vals[i], keys->tupdesc, 1, &isnull));
		values[0] = Int32GetDatum((int32) v);
		values[1] = CStringGetTextDatum(SPI_getvalue(keys->vals[i], keys->tupdesc, 2));
		values[2] = SPI_getbinval(keys->vals[i], keys->tupdesc, 3, &isnull);
		values[3] = Int64GetDatum(counts[v]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	keys_sql_end(&state);
	return (Datum) 0;
}

/*
 * Refuse to add keys under a root key that the existing data keys were not
 * wrapped with: a new active key wrapped under a wrong (or not yet rewrapped)
 * root key would make every later write fail once the right key is back.
 */
static void
require_consistent_root_key(void)
{
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(root_key_id);

	spi_exec("SELECT version, root_key_id FROM brandbos.data_keys "
			 "WHERE wrapped_key IS NOT NULL AND root_key_id <> $1 ORDER BY version LIMIT 1",
			 1, &argtype, &arg, SPI_OK_SELECT);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key version %d is wrapped under another root key", (int) spi_int(0, 1)),
				 errdetail("It was wrapped under root key %s; the loaded root key is %s.",
						   spi_text(0, 2), root_key_id),
				 errhint("Load the root key the data keys were made with, or run brandbos.rewrap_keys() with brandbos.previous_root_key_file set.")));
}

/* retire the active key and make the next version active */
static uint32
rotate_data_key(void)
{
	BrandbosInternalState state;
	uint32		version;

	require_root_key();
	keys_sql_begin(&state);
	spi_exec("LOCK TABLE brandbos.data_keys IN EXCLUSIVE MODE", 0, NULL, NULL, SPI_OK_UTILITY);
	require_consistent_root_key();
	spi_exec("UPDATE brandbos.data_keys SET status = 'retired', retired_at = now() "
			 "WHERE status = 'active'", 0, NULL, NULL, SPI_OK_UPDATE);
	version = create_data_key();
	keys_sql_end(&state);

	keys_changed();
	active_version = version;
	return version;
}

PG_FUNCTION_INFO_V1(brandbos_rotate_key);
/* SQL: brandbos.rotate_key() returns int */
Datum
brandbos_rotate_key(PG_FUNCTION_ARGS)
{
	brandbos_require_role(BRANDBOS_ROLE_KEYMASTER, "rotate brandbos data keys");
	PG_RETURN_INT32((int32) rotate_data_key());
}

/* the status of a version, or an error if there is none */
static char *
key_version_status(int32 version)
{
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(version);

	spi_exec("SELECT status FROM brandbos.data_keys WHERE version = $1 FOR UPDATE",
			 1, &argtype, &arg, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("data key version %d does not exist", version)));
	return spi_text(0, 1);
}

PG_FUNCTION_INFO_V1(brandbos_retire_key);
/*
 * SQL: brandbos.retire_key(version int) returns void
 *
 * A retired key still decrypts but no longer seals.  Retiring the active
 * key rotates: a new version becomes active.  Retiring a retired key does
 * nothing; a destroyed key cannot come back.
 */
Datum
brandbos_retire_key(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	int32		version;
	char		status[16];

	brandbos_require_role(BRANDBOS_ROLE_KEYMASTER, "retire brandbos data keys");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key version must not be null")));
	version = PG_GETARG_INT32(0);

	keys_sql_begin(&state);
	strlcpy(status, key_version_status(version), sizeof(status));
	keys_sql_end(&state);

	if (strcmp(status, "destroyed") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key version %d has been destroyed", version)));
	if (strcmp(status, "active") == 0)
	{
		uint32		next = rotate_data_key();

		ereport(NOTICE,
				(errmsg("data key version %u is now active", next)));
	}
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_destroy_key);
/* SQL: brandbos.destroy_key(version int, force boolean default false) returns void */
Datum
brandbos_destroy_key(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	int32		version;
	bool		force;
	char	   *status;
	int64	   *counts;
	Oid			argtype = INT4OID;
	Datum		arg;

	brandbos_require_role(BRANDBOS_ROLE_KEYMASTER, "destroy brandbos data keys");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key version and force must not be null")));
	version = PG_GETARG_INT32(0);
	force = PG_GETARG_BOOL(1);
	arg = Int32GetDatum(version);

	keys_sql_begin(&state);

	/*
	 * Writers hold this version's lock in share mode from their first seal
	 * until they end (brandbos_active_key_version, brandbos_hold_key_version):
	 * waiting for it means every value sealed under the version is committed
	 * (or gone) before the count below, which reads with a fresh snapshot.
	 * Wait before taking the table lock, so that a writer left idle in its
	 * transaction stalls this call only, not every other keymaster's.
	 */
	if (!force && strcmp(key_version_status(version), "retired") == 0)
		lock_key_version((uint32) version, AccessExclusiveLock);
	spi_exec("LOCK TABLE brandbos.data_keys IN EXCLUSIVE MODE", 0, NULL, NULL, SPI_OK_UTILITY);
	status = key_version_status(version);
	if (strcmp(status, "active") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key version %d is the active key", version),
				 errhint("Call brandbos.rotate_key() first, then brandbos.reencrypt() each protected table.")));
	if (strcmp(status, "destroyed") == 0)
	{
		keys_sql_end(&state);
		PG_RETURN_VOID();		/* destroying twice is harmless */
	}
	if (!force)
	{
		List	   *unreadable;

		lock_key_version((uint32) version, AccessExclusiveLock);	/* held already */
		counts = palloc0(sizeof(int64) * (version + 1));
		unreadable = count_values_by_version(counts, (uint32) version);
		if (unreadable != NIL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("cannot tell whether data key version %d still seals values", version),
					 errdetail("%s", unreadable_detail(unreadable)),
					 errhint("Repair those columns (see brandbos.protected_columns), or pass force => true to shred on purpose.")));
		if (counts[version] > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("data key version %d still seals " INT64_FORMAT " values", version, counts[version]),
					 errdetail("Destroying it would make those values unreadable."),
					 errhint("Run brandbos.reencrypt() on each protected table first, or pass force => true to shred them on purpose.")));
	}
	spi_exec("UPDATE brandbos.data_keys SET status = 'destroyed', wrapped_key = NULL, "
			 "destroyed_at = now(), retired_at = coalesce(retired_at, now()) WHERE version = $1",
			 1, &argtype, &arg, SPI_OK_UPDATE);
	keys_sql_end(&state);
	keys_changed();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_rewrap_keys);
/* SQL: brandbos.rewrap_keys() returns int */
Datum
brandbos_rewrap_keys(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	unsigned char *previous;
	char		problem[512];
	char		previous_id[ROOT_KEY_ID_BYTES * 2 + 1];
	SPITupleTable *rows;
	uint64		nrows,
				i;
	int32		rewrapped = 0;

	brandbos_require_role(BRANDBOS_ROLE_KEYMASTER, "rewrap brandbos data keys");
	require_root_key();
	if (previous_root_key_file == NULL || previous_root_key_file[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("brandbos.previous_root_key_file is not set"),
				 errhint("Put the new root key in brandbos.root_key_file, the old one in brandbos.previous_root_key_file, and reload.")));

	previous = sodium_malloc(ROOT_KEY_BYTES);
	if (previous == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not allocate protected memory for the previous root key")));
	if (!read_key_file(previous_root_key_file, previous, problem, sizeof(problem)))
	{
		sodium_free(previous);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("previous root key could not be loaded"),
				 errdetail("%s.", problem)));
	}
	compute_key_id(previous, previous_id);

	PG_TRY();
	{
		keys_sql_begin(&state);
		spi_exec("LOCK TABLE brandbos.data_keys IN EXCLUSIVE MODE", 0, NULL, NULL, SPI_OK_UTILITY);
		spi_exec("SELECT version, wrapped_key FROM brandbos.data_keys "
				 "WHERE wrapped_key IS NOT NULL ORDER BY version",
				 0, NULL, NULL, SPI_OK_SELECT);
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

			if (unwrap_data_key(root_key, version, (unsigned char *) VARDATA_ANY(wrapped),
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
								   root_key_id, previous_id)));
			wrap_data_key(root_key, version, plain, rewrapped_key);
			sodium_memzero(plain, sizeof(plain));

			datum = palloc(VARHDRSZ + WRAPPED_KEY_BYTES);
			SET_VARSIZE(datum, VARHDRSZ + WRAPPED_KEY_BYTES);
			memcpy(VARDATA(datum), rewrapped_key, WRAPPED_KEY_BYTES);
			values[0] = PointerGetDatum(datum);
			values[1] = CStringGetTextDatum(root_key_id);
			values[2] = Int32GetDatum((int32) version);
			spi_exec("UPDATE brandbos.data_keys SET wrapped_key = $1, root_key_id = $2 "
					 "WHERE version = $3", 3, types, values, SPI_OK_UPDATE);
			rewrapped++;
		}
		keys_sql_end(&state);
	}
	PG_FINALLY();
	{
		sodium_free(previous);
	}
	PG_END_TRY();

	keys_changed();
	PG_RETURN_INT32(rewrapped);
}

/*
 * The audit log's Ed25519 key pair, derived from the root key: the seed is
 * a keyed BLAKE2b of a fixed label.  sk (64 bytes) should be wiped by the
 * caller; pk is 32 bytes.
 */
void
brandbos_audit_signing_keypair(unsigned char *pk, unsigned char *sk)
{
	unsigned char seed[crypto_sign_SEEDBYTES];
	static const char label[] = "brandbos audit signing key v1";

	require_root_key();
	crypto_generichash(seed, sizeof(seed), (const unsigned char *) label,
					   sizeof(label) - 1, root_key, ROOT_KEY_BYTES);
	crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof(seed));
}

/* a 32-byte secret for a purpose, derived from the root key (raises 55000 without one) */
void
brandbos_derive_secret(const char *label, unsigned char *out)
{
	require_root_key();
	crypto_generichash(out, 32, (const unsigned char *) label, strlen(label),
					   root_key, ROOT_KEY_BYTES);
}

/* ---------------------------------------------------------------------
 * Settings and callbacks
 * --------------------------------------------------------------------- */

void
brandbos_keys_init(void)
{
	DefineCustomStringVariable("brandbos.root_key_file",
							   "File holding the 32-byte root key as 64 hexadecimal characters.",
							   "The file must be readable only by the server's operating-system user.",
							   &root_key_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, assign_key_setting, NULL);
	DefineCustomStringVariable("brandbos.root_key_command",
							   "Shell command that prints the root key as 64 hexadecimal characters.",
							   "Use it to fetch the key from a key management service.",
							   &root_key_command, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, assign_key_setting, NULL);
	DefineCustomIntVariable("brandbos.root_key_command_timeout",
							"How long brandbos waits for brandbos.root_key_command.",
							"After this the command and its process group are killed and the server goes on without a root key.",
							&root_key_command_timeout_ms,
							10000, 1, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, assign_key_timeout, NULL);
	DefineCustomStringVariable("brandbos.previous_root_key_file",
							   "File holding the previous root key, used by brandbos.rewrap_keys().",
							   NULL,
							   &previous_root_key_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	CacheRegisterRelcacheCallback(keys_relcache_callback, (Datum) 0);
	RegisterXactCallback(keys_xact_callback, NULL);
	RegisterSubXactCallback(keys_subxact_callback, NULL);

	/* preloaded: read the key once in the postmaster, children inherit it */
	if (process_shared_preload_libraries_in_progress)
	{
		load_root_key();
		if (root_key == NULL)
			ereport(WARNING,
					(errmsg("brandbos root key is not loaded: %s", root_key_problem),
					 errdetail("Functions that need a key will fail until it is configured."),
					 errhint("%s", root_key_hint())));
		else
			ereport(LOG,
					(errmsg("brandbos root key %s loaded", root_key_id)));
	}
}
