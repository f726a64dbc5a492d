/*
 * api_keys.c — generating and verifying API keys.
 *
 * An API key is "<prefix>_<secret>": a short label chosen by the caller
 * (1 to 16 ASCII letters and digits, starting with a letter, default "bb")
 * and 32 random bytes written as 43 characters of URL-safe base64 without
 * padding.  brandbos.generate_api_key returns, once:
 *
 *	api_key		the whole key, for the client; never stored by brandbos
 *	key_prefix	"<prefix>_" and the first 8 characters of the secret, safe to
 *				store and show, for finding the row of a presented key
 *	key_hash	32 bytes to store and later pass to brandbos.verify_api_key
 *
 * key_hash is BLAKE2b-256 keyed with the 32 secret bytes over the message
 * "brandbos api key v1" || prefix.  It needs no server secret, so stored
 * hashes survive root-key rotation and restore into any database.  That is
 * safe because the secret is 256 uniformly random bits: unlike a password,
 * there is nothing to guess offline from a stolen hash, and a keyed hash
 * with the secret as key is a PRF, so the hash reveals nothing about it.
 * The prefix is in the message, so a key's secret under another prefix
 * does not verify.  The 8 secret characters in key_prefix leave 240 bits.
 *
 * verify_api_key answers false for anything that is not a well-formed key
 * (callers pass whatever a client sent) and compares in constant time.
 */
#include "brandbos.h"

#include <sodium.h>

#include "access/detoast.h"
#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/builtins.h"

#define API_KEY_SECRET_BYTES	32
#define API_KEY_SECRET_CHARS	43	/* base64url of 32 bytes, no padding */
#define API_KEY_HASH_BYTES		32
#define API_KEY_PREFIX_MAX		16
#define API_KEY_SHOWN_CHARS		8	/* secret characters in key_prefix */
#define API_KEY_DOMAIN			"brandbos api key v1"

#define API_KEY_B64_VARIANT		sodium_base64_VARIANT_URLSAFE_NO_PADDING

PG_FUNCTION_INFO_V1(brandbos_generate_api_key);
PG_FUNCTION_INFO_V1(brandbos_verify_api_key);

/* does prefix[0..len) match ^[A-Za-z][A-Za-z0-9]{0,15}$ ? */
static bool
valid_prefix(const char *prefix, size_t len)
{
	if (len < 1 || len > API_KEY_PREFIX_MAX)
		return false;
	if (!((prefix[0] >= 'A' && prefix[0] <= 'Z') ||
		  (prefix[0] >= 'a' && prefix[0] <= 'z')))
		return false;
	for (size_t i = 1; i < len; i++)
	{
		char		c = prefix[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* key_hash of a secret under a prefix */
static void
api_key_hash(unsigned char *out, const unsigned char *secret,
			 const char *prefix, size_t prefix_len)
{
	crypto_generichash_state state;

	crypto_generichash_init(&state, secret, API_KEY_SECRET_BYTES,
							API_KEY_HASH_BYTES);
	crypto_generichash_update(&state, (const unsigned char *) API_KEY_DOMAIN,
							  strlen(API_KEY_DOMAIN));
	crypto_generichash_update(&state, (const unsigned char *) prefix,
							  prefix_len);
	crypto_generichash_final(&state, out, API_KEY_HASH_BYTES);
	sodium_memzero(&state, sizeof(state));
}

/* SQL: brandbos.generate_api_key(prefix text) returns table(api_key text, key_prefix text, key_hash bytea) */
Datum
brandbos_generate_api_key(PG_FUNCTION_ARGS)
{
	text	   *prefix_text = PG_GETARG_TEXT_PP(0);
	const char *prefix = VARDATA_ANY(prefix_text);
	size_t		prefix_len = VARSIZE_ANY_EXHDR(prefix_text);
	TupleDesc	tupdesc;
	unsigned char secret[API_KEY_SECRET_BYTES];
	char		encoded[sodium_base64_ENCODED_LEN(API_KEY_SECRET_BYTES,
												  API_KEY_B64_VARIANT)];
	StringInfoData key;
	bytea	   *hash;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	HeapTuple	tuple;

	if (!valid_prefix(prefix, prefix_len))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid api key prefix"),
				 errdetail("A prefix is 1 to %d ASCII letters and digits and starts with a letter.",
						   API_KEY_PREFIX_MAX)));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("function returning record called in context that cannot accept type record")));
	tupdesc = BlessTupleDesc(tupdesc);

	randombytes_buf(secret, sizeof(secret));
	sodium_bin2base64(encoded, sizeof(encoded), secret, sizeof(secret),
					  API_KEY_B64_VARIANT);
	Assert(strlen(encoded) == API_KEY_SECRET_CHARS);

	hash = palloc(VARHDRSZ + API_KEY_HASH_BYTES);
	SET_VARSIZE(hash, VARHDRSZ + API_KEY_HASH_BYTES);
	api_key_hash((unsigned char *) VARDATA(hash), secret, prefix, prefix_len);

	/* "<prefix>_<secret>"; key_prefix is its first prefix_len + 1 + 8 bytes */
	initStringInfo(&key);
	appendBinaryStringInfo(&key, prefix, prefix_len);
	appendStringInfoChar(&key, '_');
	appendStringInfoString(&key, encoded);

	values[0] = PointerGetDatum(cstring_to_text_with_len(key.data, key.len));
	values[1] = PointerGetDatum(cstring_to_text_with_len(key.data,
														 prefix_len + 1 + API_KEY_SHOWN_CHARS));
	values[2] = PointerGetDatum(hash);

	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(encoded, sizeof(encoded));
	sodium_memzero(key.data, key.len);
	pfree(key.data);

	/* one row: a set-returning function that returns once, single result */
	tuple = heap_form_tuple(tupdesc, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

/* SQL: brandbos.verify_api_key(api_key text, key_hash bytea) returns boolean */
Datum
brandbos_verify_api_key(PG_FUNCTION_ARGS)
{
	bytea	   *stored = PG_GETARG_BYTEA_PP(1);
	Datum		key_datum = PG_GETARG_DATUM(0);
	text	   *key_text;
	const char *key;
	size_t		key_len;
	const char *sep;
	size_t		prefix_len;
	unsigned char secret[API_KEY_SECRET_BYTES];
	size_t		secret_len = 0;
	unsigned char computed[API_KEY_HASH_BYTES];
	bool		ok = false;

	if (VARSIZE_ANY_EXHDR(stored) != API_KEY_HASH_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid api key hash"),
				 errdetail("Key hashes from brandbos.generate_api_key() are %d bytes long, not %d.",
						   API_KEY_HASH_BYTES, (int) VARSIZE_ANY_EXHDR(stored))));

	/* longer than any key could be: do not even detoast it */
	if (toast_raw_datum_size(key_datum) - VARHDRSZ >
		API_KEY_PREFIX_MAX + 1 + API_KEY_SECRET_CHARS)
		PG_RETURN_BOOL(false);

	key_text = (text *) PG_DETOAST_DATUM_PACKED(key_datum);
	key = VARDATA_ANY(key_text);
	key_len = VARSIZE_ANY_EXHDR(key_text);

	/* the prefix has no '_'; base64url does, so split at the first one */
	sep = memchr(key, '_', key_len);
	if (sep != NULL)
	{
		prefix_len = sep - key;
		if (valid_prefix(key, prefix_len) &&
			key_len - prefix_len - 1 == API_KEY_SECRET_CHARS &&
			sodium_base642bin(secret, sizeof(secret),
							  sep + 1, API_KEY_SECRET_CHARS, NULL,
							  &secret_len, NULL, API_KEY_B64_VARIANT) == 0 &&
			secret_len == API_KEY_SECRET_BYTES)
		{
			api_key_hash(computed, secret, key, prefix_len);
			ok = sodium_memcmp(computed, VARDATA_ANY(stored),
							   API_KEY_HASH_BYTES) == 0;
		}
	}

	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(computed, sizeof(computed));
	if ((Pointer) key_text != DatumGetPointer(key_datum))
	{
		sodium_memzero(key_text, VARSIZE_ANY(key_text));
		pfree(key_text);
	}
	PG_RETURN_BOOL(ok);
}
