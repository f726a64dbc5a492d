/*
 * brandbos.h — declarations shared by the extension's C files.
 *
 * Each .c file under src/ owns one concern; this header lists what they
 * offer one another.  The pure codecs (envelope.h) carry no PostgreSQL
 * headers so they can be unit-tested and fuzzed on their own.
 */
#ifndef BRANDBOS_H
#define BRANDBOS_H

#include "postgres.h"
#include "pg_compat.h"
#include "fmgr.h"
#include "access/htup.h"
#include "access/tupdesc.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "nodes/bitmapset.h"
#include "utils/inet.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"

#include "audit_canonical.h"
#include "audit_digest.h"

#define BRANDBOS_SCHEMA				"brandbos"
#define BRANDBOS_DATA_KEY_BYTES		32

/* group roles created by the install script */
#define BRANDBOS_ROLE_DECRYPTOR		"brandbos_decryptor"
#define BRANDBOS_ROLE_KEYMASTER		"brandbos_keymaster"
#define BRANDBOS_ROLE_CONTEXT_ADMIN	"brandbos_context_admin"
#define BRANDBOS_ROLE_AUDITOR		"brandbos_auditor"

/* ---- roles.c: role and ownership checks ------------------------------ */

/*
 * Raise 42501 unless the current user has the privileges of the named group
 * role.  "action" completes the sentence "permission denied to ...".
 */
extern void brandbos_require_role(const char *rolename, const char *action);

/* true when the current user has the privileges of the named role */
extern bool brandbos_has_role(const char *rolename);

/*
 * Check that relid is an ordinary or partitioned table that the current
 * user owns (42P01, 42809, 42501); returns its quoted qualified name.
 */
extern char *brandbos_require_owned_table(Oid relid);

/* ---- internal_sql.c: brandbos's objects, internal SQL ---------------- */

/* owner of brandbos.data_keys; internal queries run as this role */
extern Oid	brandbos_extension_owner(void);

/* a relation's owner; InvalidOid when there is no such relation */
extern Oid	brandbos_relation_owner(Oid relid);

/* OID of a relation in schema brandbos, or InvalidOid */
extern Oid	brandbos_relid(const char *relname);

/*
 * Run internal SQL (SPI) with search_path pinned to pg_catalog, pg_temp and
 * as role run_as, inside a restricted security context.  Errors unwind it
 * with the transaction, as for any SECURITY DEFINER call.
 */
typedef struct BrandbosInternalState
{
	Oid			save_userid;
	int			save_sec_context;
	int			guc_nest_level;
} BrandbosInternalState;

extern void brandbos_internal_begin(BrandbosInternalState *state, Oid run_as);
extern void brandbos_internal_end(BrandbosInternalState *state);

/* brandbos_internal_begin plus SPI_connect; brandbos_spi_end undoes both */
extern void brandbos_spi_begin(BrandbosInternalState *state, Oid run_as);
extern void brandbos_spi_end(BrandbosInternalState *state);

/*
 * Run one internal statement in the current SPI connection (nulls: NULL or
 * one ' '/'n' per argument); elog(ERROR) unless SPI returns expect, or, with
 * BRANDBOS_SQL_ANY, any success.  Returns what SPI returned.
 */
#define BRANDBOS_SQL_ANY 0
extern int	brandbos_sql_exec(const char *sql, int nargs, Oid *types, Datum *values,
							  const char *nulls, bool read_only, int expect);

/* brandbos_sql_exec of a statement without parameters, any success */
extern void brandbos_sql_run(const char *sql);

/*
 * ---- relcache invalidations ------------------------------------------
 * A backend has only ten relcache callback slots, and Citus takes several:
 * brandbos registers one (brandbos.c), which calls each cache's handler.
 */
extern void brandbos_keys_relcache_changed(Oid relid);			/* data_keys.c */
extern void brandbos_table_shape_relcache_changed(Oid relid);	/* table_shape.c */
extern void brandbos_audit_table_cache_relcache_changed(Oid relid);	/* audit_table_cache.c */
extern void brandbos_audit_writer_relcache_changed(Oid relid);	/* audit_writer.c */
extern void brandbos_log_scrub_relcache_changed(Oid relid);		/* log_scrub.c */
extern void brandbos_shard_guard_relcache_changed(Oid relid);	/* shard_guard.c */

/* ---- citus_shards.c: Citus shards and their logical tables ----------- */

/* a relcache invalidation of relid (InvalidOid: of every relation) */
extern void brandbos_shard_map_relcache_changed(Oid relid);

/* true when the citus extension is installed in this database */
extern bool brandbos_citus_installed(void);

/* the logical (shell) table of a Citus shard, or relid itself when it is not a shard */
extern Oid	brandbos_logical_relid(Oid relid);

/* true when relid is a Citus shard of a table of this database */
extern bool brandbos_is_citus_shard(Oid relid);

/* true when column colname is relid's Citus distribution column (caller is connected to SPI) */
extern bool brandbos_citus_is_distribution_column(Oid relid, const char *colname);

/* citus_policies.c: keeps isolation policies restrictive on shards (preloaded) */
extern void brandbos_citus_policies_init(void);

/* 0A000 when relid is a Citus distributed or reference table or a shard */
extern void brandbos_refuse_citus_table(Oid relid, const char *what);

/* ---- citus_columns.c, citus_keys.c: encryption across a Citus cluster -- */

/* true when Citus is installed and this node is a worker (its group id is not 0) */
extern bool brandbos_citus_is_worker(void);

/* pg_dist_partition.partmethod of relid ('h', 'n', ...), or 0 when Citus does not manage it */
extern char brandbos_citus_partmethod(Oid relid);

/* OIDs of the shards of a distributed table placed on this node */
extern List *brandbos_citus_local_shards(Oid logical);

/* run command on every other node with metadata, in the distributed transaction, as the extension owner */
extern void brandbos_citus_send(const char *command);

/* 42501 unless the caller is a superuser or the extension owner */
extern void brandbos_citus_require_internal_caller(const char *what);

/*
 * protect_column: -1 for a table Citus does not manage; for a hash-distributed
 * table a GUC nest level to hand to brandbos_citus_protect_done; else 0A000.
 */
extern int	brandbos_citus_protect_check(Oid relid, const char *what);
extern void brandbos_citus_protect_done(int nest);

/* registry row and data keys to every node with metadata, and seal the shards' rows */
extern void brandbos_citus_protect_propagate(Oid relid, const char *colname);

/* post_parse_analyze_hook refusing to distribute a protected table (preloaded) */
extern void brandbos_citus_columns_init(void);

/* the coordinator's data keys to every node with metadata (no-op without Citus or on a worker) */
extern void brandbos_citus_propagate_keys(bool force);

/* 0A000 on a Citus worker: data keys are made and changed on the coordinator */
extern void brandbos_citus_refuse_on_worker(const char *what);

/* ---- random_pool.c ---------------------------------------------------- */

/* Random bytes from a per-backend pool refilled from the OS (nonces). */
extern void brandbos_random_bytes(unsigned char *out, size_t len);

/* ---- root_key.c, data_keys.c: root key and data keys ------------------ */

/* the key settings and callbacks; preloaded, the root key is read here */
extern void brandbos_keys_init(void);

/* true when a root key is loaded in this backend (loads it if needed) */
extern bool brandbos_root_key_available(void);

/*
 * Version of the active data key, creating version 1 if the table is empty.
 * Raises 55000 when the root key is not loaded.
 */
extern uint32 brandbos_active_key_version(void);

/*
 * Keep a key version from being destroyed until this (sub)transaction ends,
 * because a value stored in it is sealed under that version (an envelope
 * written through unchanged); 55000 when it was destroyed meanwhile.
 */
extern void brandbos_hold_key_version(uint32 version);

/*
 * Unwrapped data key of a version (cached per backend, in sodium memory).
 * Raises 55000 for a destroyed version or a key that the loaded root key
 * cannot unwrap, 42704 for an unknown version.
 */
extern const unsigned char *brandbos_data_key(uint32 version);

/*
 * audit_signing_key.c: the Ed25519 key pair of the audit chain (pk 32 bytes,
 * sk 64 bytes; wipe sk after use), the same across root-key rotations.
 * Raises 55000 without a root key, or when the loaded one cannot give it.
 */
extern void brandbos_audit_signing_keypair(unsigned char *pk, unsigned char *sk);

/* a 32-byte secret for a purpose (label), derived from the root key; 55000 without one */
extern void brandbos_derive_secret(const char *label, unsigned char *out);

/* ---- drop_guard.c: no DROP silently destroys the data keys ------------ */

/* defines brandbos.allow_drop_with_keys */
extern void brandbos_drop_guard_init(void);

/* ---- associated_data.c: what binds a value to its place --------------- */

/*
 * How one primary-key column is turned into bytes: a stable form that does
 * not depend on OIDs, TimeZone, DateStyle or client_encoding.
 */
typedef struct BrandbosKeyEncoder
{
	Oid			typid;			/* the key column's type */
	Oid			base;			/* its base type (domains bind as it) */
	char		method;			/* 'i' int, 'u' uuid, 't' text, 'o' output fn, 's' send fn */
	bool		refuse;			/* not bindable: brandbos_ad_append raises 0A000 */
	FmgrInfo	fn;
} BrandbosKeyEncoder;

#define BRANDBOS_COLUMN_ID_BYTES 16

/*
 * Raise 0A000 unless values of this primary-key type bind stably (the same
 * bytes in every session and after pg_dump/pg_restore into another
 * database); colname, if not NULL, names the key column in the message.
 * The accepted types are listed in associated_data.c and the README.
 */
extern void brandbos_require_bindable_key_type(Oid typid, const char *colname);

/*
 * Prepare an encoder for a key column type; fn lives in mcxt.  It never
 * raises for an unbindable type (the audit trigger shares the table config
 * of tables that protect nothing): it sets refuse, and brandbos_ad_append
 * then fails closed with 0A000.
 */
extern void brandbos_key_encoder_init(BrandbosKeyEncoder *enc, Oid typid,
									  MemoryContext mcxt);

/* start associated data for a protected column id (16-byte uuid) */
extern void brandbos_ad_begin(StringInfo buf, const unsigned char *column_id);

/* append one key value: a 4-byte big-endian length, then its bytes (0A000 if enc->refuse) */
extern void brandbos_ad_append(StringInfo buf, BrandbosKeyEncoder *enc,
							   Datum value);

/* ---- cipher_sql.c: sealing and opening values ------------------------ */

/*
 * The functions below seal and open protected-column values: the
 * associated data is a column binding (brandbos_ad_begin/append), in the
 * envelope's column domain, apart from what brandbos.encrypt() makes.
 */

/* the envelope format every seal writes (envelope.h) */
#define BRANDBOS_ENVELOPE_FORMAT	2

/* defines brandbos.accept_format1_envelopes */
extern void brandbos_cipher_init(void);

/*
 * Seal plaintext under the active key with associated data.  Returns a
 * palloc'd raw envelope (bytea) or printable envelope (text) as a Datum;
 * the nonce used is copied to nonce_out (24 bytes) unless it is NULL.
 */
extern Datum brandbos_seal_datum(const char *plain, size_t plain_len,
								 const char *ad, size_t ad_len, bool as_text,
								 unsigned char *nonce_out);

/*
 * Check an envelope a client wrote into a protected column: like
 * brandbos_open_datum, but returns false instead of raising XX001 when the
 * envelope does not authenticate; the envelope's nonce is copied to
 * nonce_out (24 bytes) unless it is NULL.  A format-1 envelope raises XX001
 * unless brandbos.accept_format1_envelopes is on (anyone could mint one);
 * values already stored are opened with brandbos_open_datum instead.
 */
extern bool brandbos_try_open_datum(Datum envelope, bool as_text,
									const char *ad, size_t ad_len,
									char **plain, size_t *plain_len,
									unsigned char *nonce_out);

/*
 * Does a value already stored in a protected column (either format)
 * authenticate for this associated data?  Like brandbos_open_datum, but
 * false instead of XX001; 22P03 still raises for a malformed value.
 */
extern bool brandbos_try_open_stored_datum(Datum envelope, bool as_text,
										   const char *ad, size_t ad_len,
										   char **plain, size_t *plain_len);

/*
 * Open an envelope datum (bytea or text, per as_text).  On success returns
 * the palloc'd plaintext and its length.  Errors: 22P03 malformed, XX001
 * does not authenticate, 55000 key unavailable.
 */
extern char *brandbos_open_datum(Datum envelope, bool as_text,
								 const char *ad, size_t ad_len,
								 size_t *plain_len);

/*
 * Is this datum an envelope at all (by its framing, not authenticated)?
 * Used to tell plaintext from envelopes in the trigger.
 */
extern bool brandbos_looks_like_envelope(Datum value, bool as_text);

/* key version (1 .. 2^31-1) recorded in an envelope datum; raises 22P03 if malformed */
extern uint32 brandbos_envelope_version_of(Datum value, bool as_text);

/* ---- value_scan.c: reading stored values without running user code --- */

/*
 * What the values of one protected column are sealed under, over every heap
 * relation of the table (partitions, inheritance children), read with a
 * fresh snapshot.  versions[] is sorted; problem is NULL or a sentence.
 */
typedef struct BrandbosColumnScan
{
	int64		values;			/* non-null values seen */
	int64		not_envelopes;	/* values that are not envelopes at all */
	int64		old_format;		/* envelopes of an older format */
	int			nversions;
	int			capacity;
	uint32	   *versions;
	int64	   *counts;
	bool		unreadable;		/* some relation or column could not be read */
	char	   *problem;
	MemoryContext result_cxt;
} BrandbosColumnScan;

extern void brandbos_scan_protected_column(Oid relid, const char *colname,
										   BrandbosColumnScan *scan);
extern int64 brandbos_column_scan_count(const BrandbosColumnScan *scan, uint32 version);

/* envelope header by framing only; false when the value is no envelope */
extern bool brandbos_envelope_header(Datum value, bool as_text, uint32 *version,
									 int *format);

/* is the value a well-formed envelope by its whole framing?  never raises */
extern bool brandbos_envelope_well_formed(Datum value, bool as_text);

/* ---- protect_guard.c: is protection still in force? ------------------ */

/* NULL when Citus shard <table>_<suffix> keeps its protect trigger intact, else a sentence */
extern char *brandbos_shard_protection_problem(Oid shard, const char *suffix);

/* ---- shard_guard.c: writes into shards of protected tables (preloaded) */

extern void brandbos_shard_guard_init(void);

/* NULL when the guards of a protected column hold, else a sentence */
extern char *brandbos_protection_problem(Oid relid, AttrNumber attnum);

/* format of an envelope datum, 1 or 2; raises 22P03 if malformed */
extern int	brandbos_envelope_format_of(Datum value, bool as_text);

/* ---- audit_leaf.c: canonical audit rows ------------------------------ */

/* the columns of an audit row that its leaf hash commits to (audit_canonical.h) */
typedef bb_audit_fields BrandbosAuditRow;

/* hash of the redactable payload (any argument may be NULL) */
extern void brandbos_audit_payload_hash(Jsonb *details, inet *ip,
										text *user_agent,
										unsigned char *out);

/* leaf hash of a row */
extern void brandbos_audit_leaf_hash(const BrandbosAuditRow *row,
									 unsigned char *out);

/* ---- audit_row_image.c: what an audit row says about a table row ------ */

/* {"old": ..., "new": ..., "changed": [...]}; either tuple may be NULL */
extern Jsonb *brandbos_audit_row_change(Relation rel, HeapTuple oldtup, HeapTuple newtup,
										Bitmapset *protected_attnums);
/* {"<key>": count} */
extern Jsonb *brandbos_audit_count_details(const char *key, int64 count);

/* a flat details object, member by member: begin, text/int8 ..., end */
typedef struct BrandbosDetails
{
	struct JsonbParseState *state;
} BrandbosDetails;

extern void brandbos_details_begin(BrandbosDetails *d);
extern void brandbos_details_text(BrandbosDetails *d, const char *key, const char *value);	/* NULL: null */
extern void brandbos_details_int8(BrandbosDetails *d, const char *key, int64 value);
extern Jsonb *brandbos_details_end(BrandbosDetails *d);
/* the primary key as text: the value, or a JSON array for a composite key */
extern char *brandbos_audit_row_key(Relation rel, HeapTuple tuple, int nkeys,
									AttrNumber *keys);

/* ---- audit_writer.c --------------------------------------------------- */

/*
 * Append one row to brandbos.audit_log in the current transaction and
 * return its id.  Actor fields come from the request context when one is
 * set; the database role is always recorded.
 */
extern int64 brandbos_audit_append(const char *action, const char *resource_type,
								   const char *resource_id, Jsonb *details);

/*
 * Set only while redact_audit clears a payload / prune_audit deletes sealed
 * rows; the append-only trigger allows exactly those changes then.
 */
extern bool brandbos_audit_maintenance;
extern bool brandbos_audit_pruning;
extern bool brandbos_audit_action_reserved(const char *action);

/* ---- audit_sealer.c --------------------------------------------------- */

/* seal what is final; returns the new block id or 0, *rows the rows sealed */
extern int64 brandbos_seal_pending(int64 *rows);

/* settings of the sealer, and its background worker when preloaded */
extern void brandbos_sealer_init(void);

/* ---- audit_guard.c --------------------------------------------------- */

/* set by enable_audit / disable_audit around their own trigger DDL only */
extern bool brandbos_guard_bypass;

/* the utility hook guarding the audit tables, when preloaded */
extern void brandbos_guard_init(void);

/* ---- audit_xid_ring.c: which transaction took a recent audit id ------ */

typedef enum BrandbosIdFate
{
	BB_ID_UNKNOWN,				/* not in the ring (reused slot, restart, no preload) */
	BB_ID_RUNNING,
	BB_ID_COMMITTED,
	BB_ID_ABORTED
} BrandbosIdFate;

/* with preload: set up the ring in shared memory */
extern void brandbos_xid_ring_init(void);

/* note that the current (sub)transaction took audit id id */
extern void brandbos_xid_ring_note(int64 id);

/* the fate of the transaction that took id, as far as the ring knows */
extern BrandbosIdFate brandbos_xid_ring_fate(int64 id, TransactionId *xid);

/* ---- table_shape.c: table facts shared with the audit trigger --------- */

/*
 * Primary-key columns and protected columns of a table, from the cache the
 * protect trigger shares.  Raises 55000 when the table has no primary key.
 */
extern void brandbos_table_shape(Relation rel, int *nkeys, AttrNumber **key_attnums,
								 Bitmapset **protected_attnums);

/* ---- protect_trigger.c / reencrypt.c: rewriting protected rows in place */

/* what a rewrite of protected rows in place does (reencrypt.c) */
typedef enum BrandbosRewrite
{
	BRANDBOS_REWRITE_MOVE,		/* reencrypt: stored envelopes to the active key and format */
	BRANDBOS_REWRITE_SEAL,		/* protect_column, ATTACH: stored values are plaintext unless
								 * they authenticate for their row */
	BRANDBOS_REWRITE_UNPROTECT	/* unprotect_column: one column back to plaintext */
} BrandbosRewrite;

/*
 * While reencrypt.c rewrites the rows of a heap relation: its OID, what the
 * rewrite does, and for BRANDBOS_REWRITE_UNPROTECT the column's name.  The
 * protect trigger reads them.
 */
extern Oid	brandbos_reseal_relid;
extern BrandbosRewrite brandbos_rewrite_mode;
extern const char *brandbos_unprotect_colname;

/* does this stored row need the rewrite? (protect_trigger.c) */
extern bool brandbos_row_needs_reseal(Relation rel, TupleTableSlot *slot, BrandbosRewrite mode);

/* does the table have registered protected columns? (table_shape.c) */
extern bool brandbos_table_is_protected(Oid relid);

/* refuse, before it runs, DDL that would take values out of protection (protect_admin.c) */
extern void brandbos_protect_ddl_start(Node *parsetree);

/* decrypt one protected column of a table in place (as its owner, no RLS) */
extern void brandbos_unprotect_values(Oid relid, const char *colname);

/* seal every value a table holds that is not an envelope for its row */
extern void brandbos_seal_existing_values(Oid relid);

/* ---- ddl_frames.c: from a guard's ddl_command_start to its end -------- */

/* one command's frame; a guard's own frame struct starts with it */
typedef struct BrandbosDdlFrame
{
	Node	   *parsetree;
	int			nest_level;
} BrandbosDdlFrame;

/* a guard's stack of frames: {"context name", NULL, NIL} */
typedef struct BrandbosDdlFrames
{
	const char *name;
	MemoryContext cxt;
	List	   *frames;
} BrandbosDdlFrames;

/* the memory context frames (and what they point to) are allocated in */
extern MemoryContext brandbos_ddl_frames_context(BrandbosDdlFrames *stack);

/* OIDs of the objects of catalog classid the current command created or altered */
extern List *brandbos_ddl_command_objects(Oid classid);
extern void brandbos_ddl_frame_push(BrandbosDdlFrames *stack, BrandbosDdlFrame *frame,
									Node *parsetree);
/* the newest frame of this parse tree, or NULL */
extern BrandbosDdlFrame *brandbos_ddl_frame_find(BrandbosDdlFrames *stack, Node *parsetree);
/* drop it and every frame above it; copy what you need out first */
extern void brandbos_ddl_frame_drop(BrandbosDdlFrames *stack, BrandbosDdlFrame *frame);

/*
 * Checks shared by the guards' event-trigger functions: 39P01 unless called
 * as an event trigger; false while brandbos's own install script runs.
 */
extern bool brandbos_ddl_guard_applies(FunctionCallInfo fcinfo, const char *fn);

/* ---- isolation_check.c / policies.c: tenant and owner isolation ------- */

/* the isolated columns of a relation; "" where the kind is absent */
typedef struct BrandbosIsolation
{
	char		tenant_col[NAMEDATALEN];
	char		owner_col[NAMEDATALEN];
} BrandbosIsolation;

/* "select", "insert", "update", "delete": brandbos_<kind>_<command> */
extern const char *const brandbos_isolation_commands[4];
/* their polcmd letters: r, a, w, d */
extern const char brandbos_isolation_command_chars[4];
/* what the relation's own brandbos_tenant_* / brandbos_owner_* policies isolate */
extern void brandbos_isolation_own(Oid relid, BrandbosIsolation *iso);
/* every ancestor (partitioned or inheritance parent), nearest first */
extern List *brandbos_isolation_ancestors(Oid relid);
/* what it must isolate: its own and every ancestor's */
extern void brandbos_isolation_expected(Oid relid, BrandbosIsolation *iso);
/* the context helper for the column (NULL unless text, varchar or uuid) */
extern const char *brandbos_isolation_helper(Oid relid, const char *col, bool owner);
/* the USING / WITH CHECK text of a kind's policies on relid, or NULL */
extern char *brandbos_isolation_qual_sql(Oid relid, bool owner, const BrandbosIsolation *iso);
/* how the relation departs from iso, as sentences; NIL when isolated so */
extern List *brandbos_isolation_problems(Oid relid, const BrandbosIsolation *iso);
/* (re)create iso's policies, forced RLS and defaults on one relation, as the current user */
extern void brandbos_isolation_apply(Oid relid, const BrandbosIsolation *iso);
/* true while brandbos_isolation_apply runs its DDL (the guard ignores it) */
extern bool brandbos_isolation_running;
/* privileges row level security does not limit, held by non-owners: a sentence or NULL */
extern char *brandbos_isolation_grant_problem(Oid relid);

/* ---- owner_only.c: triggers and TRUNCATE on managed tables ------------ */

/* the BEFORE TRUNCATE statement trigger of every isolated relation */
#define BRANDBOS_TRUNCATE_GUARD_NAME "brandbos_truncate_guard"
/* is relid (or an ancestor) isolated, protected or audited by brandbos? */
extern bool brandbos_table_is_managed(Oid relid);

/* ---- protect_guard.c: protection the table owner cannot switch off ---- */

/*
 * NULL when the protection of column attnum of relid is intact (trigger on
 * the table and its partitions, nothing seeing the row before it, type text
 * or bytea, brandbos's companion views), else a short palloc'd sentence.
 * Reads only the catalogs.
 */
extern char *brandbos_protection_problem(Oid relid, AttrNumber attnum);

/* set by protect_admin.c around its own trigger and view DDL only */
extern bool brandbos_protect_guard_bypass;

/* with preload: the utility hook that keeps brandbos's event triggers enabled */
extern void brandbos_protect_guard_init(void);

/* ---- context.c: the request context ---------------------------------- */

extern void brandbos_context_init(void);

/* actor fields of the current request (each NULL when unknown) */
extern void brandbos_context_actor(const char **user_id, const char **tenant_id,
								   const char **ip, const char **user_agent);

/* true when a brandbos writer set an identity on this node in this transaction */
extern bool brandbos_context_written(void);

/* ---- citus_context.c: the context forwarded to Citus workers --------- */

extern void brandbos_citus_context_init(void);

/*
 * On a coordinator (Citus installed, inside a transaction block): seal the
 * whole current context and send it, with the transaction, to every worker
 * connection of the transaction.  A no-op without Citus.
 */
extern void brandbos_citus_context_forward(const char *user_id, const char *tenant_id,
										   const char *app_role, const char *claims,
										   const char *ip, const char *user_agent);

/* the context a coordinator forwarded to this node, checked against this transaction */
typedef struct BrandbosForwardedContext
{
	const char *user_id;
	const char *tenant_id;
	const char *app_role;
	const char *claims;
	const char *ip;
	const char *user_agent;
	uint64		generation;		/* changes whenever another value is assigned */
} BrandbosForwardedContext;

/* NULL when none was forwarded; 42501 when it was reset or is not for this transaction */
extern const BrandbosForwardedContext *brandbos_citus_context_current(void);

/* true when a coordinator forwarded a context to this node in this transaction */
extern bool brandbos_citus_context_forwarded(void);

/* ---- citus_ledger.c: forwarded contexts in use and ended (shared memory) */

extern void brandbos_citus_ledger_init(void);
/* false without shared_preload_libraries: then no forwarded context is accepted */
extern bool brandbos_citus_ledger_available(void);
extern bool brandbos_citus_ledger_ended(int32 initiator, uint64 number, int64 stamp);
/*
 * This backend received (checked: and checked the binding of) that
 * transaction's context: it counts as ended here when this transaction ends.
 */
extern void brandbos_citus_ledger_hold(int32 initiator, uint64 number, int64 stamp, bool checked);
/* in a parallel worker: does the leader hold (has it checked) that transaction's context? */
extern bool brandbos_citus_ledger_leader_holds(int32 initiator, uint64 number, int64 stamp);

/* ---- role_lock.c: no role change while a request context is set ------ */

extern void brandbos_role_lock_init(void);

/*
 * A request context is being set: from now until the (sub)transaction that
 * set it ends, the session user and the role of SET ROLE cannot change
 * (42501).  The lock follows savepoints by itself.
 */
extern void brandbos_role_lock_engage(void);

/* ---- log_scrub.c: no plaintext in errors and the log (preloaded only) -- */

extern void brandbos_log_scrub_init(void);

/* ---- passwords.c --------------------------------------------------- */

extern void brandbos_passwords_init(void);

/* restore_mode.c */
extern void brandbos_restore_mode_init(void);
extern bool brandbos_restore_mode_active(void);

#endif							/* BRANDBOS_H */
