/*
 * audit_signing_key.c — the audit log's Ed25519 signing key, and how it
 * survives a rotation of the root key.
 *
 * The key pair comes from a 32-byte seed.  Until the first root-key
 * rotation the seed is derived from the root key (a keyed BLAKE2b of a fixed
 * label; what 0.1.0 always did), so a fresh or upgraded database needs no
 * stored state.  rewrap_keys() then stores the seed that signed the chain so
 * far in brandbos.audit_signing_key, wrapped with XChaCha20-Poly1305 under
 * the new root key; from then on the stored seed is used, and every later
 * rewrap_keys() re-wraps it.  Blocks signed before and after a rotation
 * therefore verify under one public key, and so does a digest taken before.
 *
 * Invariants:
 *   - brandbos.audit_signing_key holds at most one row (its primary key is a
 *     constant); only the extension owner writes it, inside rewrap_keys();
 *   - a stored seed that does not unwrap under the loaded root key is an
 *     error (55000), never a reason to fall back to the derived seed: that
 *     would sign new blocks with a key the chain does not know;
 *   - a 0.1.0 schema (no such table yet, the library replaced before ALTER
 *     EXTENSION UPDATE) signs with the derived seed, and rewrap_keys() is
 *     refused (55000) until the update: it could not keep the key;
 *   - without a stored seed, the derived one is used only while the root key
 *     is the one the data keys are wrapped under; a server that has switched
 *     root keys without rewrap_keys() refuses to sign (55000) instead of
 *     starting a second, incompatible key in the same chain.
 */
#include "brandbos.h"
#include "keys_internal.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#define SEED_BYTES			crypto_sign_SEEDBYTES
#define WRAP_NONCE_BYTES	crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define WRAPPED_SEED_BYTES	(WRAP_NONCE_BYTES + SEED_BYTES + \
							 crypto_aead_xchacha20poly1305_ietf_ABYTES)

/* the associated data of a wrapped seed: it cannot pass for a data key */
static const char wrap_label[] = "brandbos audit signing seed v1";

/* the seed 0.1.0 derived from a root key; kept forever, old chains need it */
static void
derive_seed(const unsigned char *root, unsigned char *seed)
{
	static const char label[] = "brandbos audit signing key v1";

	crypto_generichash(seed, SEED_BYTES, (const unsigned char *) label,
					   sizeof(label) - 1, root, 32);
}

static void
wrap_seed(const unsigned char *root, const unsigned char *seed, unsigned char *out)
{
	randombytes_buf(out, WRAP_NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + WRAP_NONCE_BYTES, NULL, seed, SEED_BYTES,
											   (const unsigned char *) wrap_label,
											   sizeof(wrap_label) - 1, NULL, out, root);
}

static bool
unwrap_seed(const unsigned char *root, const bytea *wrapped, unsigned char *seed)
{
	const unsigned char *w = (const unsigned char *) VARDATA_ANY(wrapped);

	if (VARSIZE_ANY_EXHDR(wrapped) != WRAPPED_SEED_BYTES)
		return false;
	return crypto_aead_xchacha20poly1305_ietf_decrypt(seed, NULL, NULL, w + WRAP_NONCE_BYTES,
													  WRAPPED_SEED_BYTES - WRAP_NONCE_BYTES,
													  (const unsigned char *) wrap_label,
													  sizeof(wrap_label) - 1, w, root) == 0;
}

/*
 * Inside an SPI connection: the stored wrapped seed and the fingerprint of
 * the root key it is wrapped under, or false when none is stored.
 */
static bool
read_stored_seed(bytea **wrapped, char **root_key_id)
{
	bool		isnull;

	/* a 0.1.0 schema under this library, before ALTER EXTENSION UPDATE */
	if (!OidIsValid(brandbos_relid("audit_signing_key")))
		return false;
	brandbos_sql_exec("SELECT wrapped_seed, root_key_id FROM brandbos.audit_signing_key",
					  0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	*wrapped = DatumGetByteaPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*root_key_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	return true;
}

/* inside an SPI connection: a data key wrapped under another root key than the loaded one */
static char *
data_key_under_other_root_key(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	values[0] = CStringGetTextDatum(brandbos_root_key_id());
	brandbos_sql_exec("SELECT root_key_id FROM brandbos.data_keys "
					  "WHERE wrapped_key IS NOT NULL "
					  "AND root_key_id OPERATOR(pg_catalog.<>) $1 LIMIT 1",
					  1, types, values, NULL, true, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * The audit log's key pair (pk 32 bytes, sk 64 bytes; the caller wipes sk).
 * Raises 55000 without a root key, or when the loaded root key cannot give
 * the key the chain is signed with (see the file header).
 */
void
brandbos_audit_signing_keypair(unsigned char *pk, unsigned char *sk)
{
	BrandbosInternalState state;
	unsigned char seed[SEED_BYTES];
	bytea	   *wrapped;
	char	   *stored_id;
	char	   *other_id;

	brandbos_require_root_key();
	brandbos_keys_sql_begin(&state);
	if (read_stored_seed(&wrapped, &stored_id))
	{
		if (!unwrap_seed(brandbos_root_key(), wrapped, seed))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the audit signing key cannot be unwrapped with the loaded root key"),
					 errdetail("It is wrapped under root key %s; the loaded root key is %s.",
							   stored_id ? stored_id : "?", brandbos_root_key_id()),
					 errhint("Load the root key it was wrapped under, or set brandbos.previous_root_key_file to it and run brandbos.rewrap_keys().")));
	}
	else
	{
		other_id = data_key_under_other_root_key();
		if (other_id != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the audit signing key belongs to another root key than the loaded one"),
					 errdetail("The data keys are wrapped under root key %s; the loaded root key is %s.",
							   other_id, brandbos_root_key_id()),
					 errhint("Set brandbos.previous_root_key_file to the old root key and run brandbos.rewrap_keys(); it keeps the audit signing key too.")));
		derive_seed(brandbos_root_key(), seed);
	}
	brandbos_keys_sql_end(&state);
	crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof(seed));
}

/*
 * Part of rewrap_keys(), in its transaction: keep the signing key of
 * the chain across the root-key change.  No stored seed: the chain was
 * signed with the seed derived from the previous root key; store it wrapped
 * under the loaded one.  A seed wrapped under the previous key is re-wrapped;
 * one already under the loaded key is left alone.  Returns true when it
 * wrote.
 */
bool
brandbos_rewrap_audit_signing_key(const unsigned char *previous, const char *previous_id)
{
	unsigned char seed[SEED_BYTES];
	unsigned char out[WRAPPED_SEED_BYTES];
	bytea	   *wrapped;
	bytea	   *datum;
	char	   *stored_id;
	Oid			types[2] = {BYTEAOID, TEXTOID};
	Datum		values[2];
	BrandbosInternalState state;

	if (!OidIsValid(brandbos_relid("audit_signing_key")))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("brandbos.rewrap_keys() needs the extension's version 0.2.0 objects"),
				 errdetail("Without brandbos.audit_signing_key the audit signing key would change with the root key."),
				 errhint("Run ALTER EXTENSION brandbos UPDATE first.")));
	brandbos_keys_sql_begin(&state);
	brandbos_sql_exec("LOCK TABLE brandbos.audit_signing_key IN EXCLUSIVE MODE",
					  0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	if (read_stored_seed(&wrapped, &stored_id))
	{
		if (unwrap_seed(brandbos_root_key(), wrapped, seed))
		{
			sodium_memzero(seed, sizeof(seed));
			brandbos_keys_sql_end(&state);
			return false;
		}
		if (!unwrap_seed(previous, wrapped, seed))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the audit signing key unwraps under neither the current nor the previous root key"),
					 errdetail("The current root key is %s; the previous root key is %s.",
							   brandbos_root_key_id(), previous_id)));
	}
	else
		derive_seed(previous, seed);

	wrap_seed(brandbos_root_key(), seed, out);
	sodium_memzero(seed, sizeof(seed));
	datum = palloc(VARHDRSZ + WRAPPED_SEED_BYTES);
	SET_VARSIZE(datum, VARHDRSZ + WRAPPED_SEED_BYTES);
	memcpy(VARDATA(datum), out, WRAPPED_SEED_BYTES);
	values[0] = PointerGetDatum(datum);
	values[1] = CStringGetTextDatum(brandbos_root_key_id());
	brandbos_sql_exec("INSERT INTO brandbos.audit_signing_key (wrapped_seed, root_key_id) "
					  "VALUES ($1, $2) ON CONFLICT (only_row) DO UPDATE "
					  "SET wrapped_seed = excluded.wrapped_seed, root_key_id = excluded.root_key_id, "
					  "wrapped_at = pg_catalog.now()",
					  2, types, values, NULL, false, SPI_OK_INSERT);
	brandbos_keys_sql_end(&state);
	return true;
}
