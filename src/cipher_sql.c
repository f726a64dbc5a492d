/*
 * cipher_sql.c — sealing and opening values, and the SQL functions on them.
 *
 * brandbos_seal_datum / brandbos_open_datum put envelope.c's pure codec
 * together with the data keys of data_keys.c and PostgreSQL's bytea/text datums.
 * Every function that returns plaintext checks brandbos_decryptor here, in
 * C, whatever EXECUTE grants say.
 *
 * Domains (envelope.h): the exported brandbos_*_datum functions seal and
 * open in the column domain, for the bindings associated_data.c builds;
 * brandbos.encrypt()/decrypt() use the user domain, so no associated data a
 * caller passes makes an envelope a protected column accepts, and no
 * protected value opens through decrypt().  All seals are format 2.
 * Format-1 envelopes still open where they are stored; a client writing one
 * into a protected column (brandbos_try_open_datum) is refused unless
 * brandbos.accept_format1_envelopes is on, because before format 2 anyone
 * could mint one with encrypt() and a column binding as associated data.
 */
#include "brandbos.h"
#include "envelope.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

StaticAssertDecl(BRANDBOS_ENVELOPE_FORMAT == BB_ENV_FORMAT,
				 "brandbos.h and envelope.h disagree on the envelope format");

/* brandbos.accept_format1_envelopes: superuser-only, for restoring old dumps */
static bool accept_format1 = false;

void
brandbos_cipher_init(void)
{
	DefineCustomBoolVariable("brandbos.accept_format1_envelopes",
							 "Lets protected columns accept format-1 envelopes written by clients.",
							 "Turn it on only while loading a dump taken before format 2 into protected tables: "
							 "anyone could mint a format-1 envelope that authenticates for a row.",
							 &accept_format1, false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
}

/* ---------------------------------------------------------------------
 * Datum-level sealing and opening
 * --------------------------------------------------------------------- */

/*
 * Work space for the envelope's associated data: on the stack for the usual
 * few hundred bytes, palloc'd beyond.
 */
#define AD_SPACE_ON_STACK 1024

static unsigned char *
ad_space_for(size_t ad_len, unsigned char *stack_space)
{
	size_t		need = bb_env_ad_space_size(ad_len);

	return need <= AD_SPACE_ON_STACK ? stack_space : palloc(need);
}

static Datum
seal_datum(const char *plain, size_t plain_len, bb_env_domain domain,
		   const char *ad, size_t ad_len, bool as_text, unsigned char *nonce_out)
{
	uint32		version = brandbos_active_key_version();
	const unsigned char *key = brandbos_data_key(version);
	size_t		bin_len = bb_env_sealed_size(plain_len);
	unsigned char nonce[BB_ENV_NONCE_BYTES];
	unsigned char stack_ad_space[AD_SPACE_ON_STACK];
	unsigned char *ad_space;

	if (bin_len > MaxAllocSize / 2)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value of %zu bytes is too large to seal", plain_len)));

	brandbos_random_bytes(nonce, sizeof(nonce));
	if (nonce_out != NULL)
		memcpy(nonce_out, nonce, sizeof(nonce));
	ad_space = ad_space_for(ad_len, stack_ad_space);
	if (!as_text)
	{
		bytea	   *result = palloc(VARHDRSZ + bin_len);

		SET_VARSIZE(result, VARHDRSZ + bin_len);
		bb_env_seal((unsigned char *) VARDATA(result),
					(const unsigned char *) plain, plain_len, domain,
					(const unsigned char *) ad, ad_len, ad_space, version, nonce, key);
		if (ad_space != stack_ad_space)
			pfree(ad_space);
		return PointerGetDatum(result);
	}
	else
	{
		unsigned char stack_bin[1024];
		unsigned char *bin = bin_len <= sizeof(stack_bin) ? stack_bin : palloc(bin_len);
		size_t		text_len = bb_env_text_size(bin_len);
		text	   *result = palloc(VARHDRSZ + text_len + 1);

		bb_env_seal(bin, (const unsigned char *) plain, plain_len, domain,
					(const unsigned char *) ad, ad_len, ad_space, version, nonce, key);
		bb_env_to_text(VARDATA(result), bin, bin_len);
		SET_VARSIZE(result, VARHDRSZ + text_len);
		if (bin != stack_bin)
			pfree(bin);
		if (ad_space != stack_ad_space)
			pfree(ad_space);
		return PointerGetDatum(result);
	}
}

Datum
brandbos_seal_datum(const char *plain, size_t plain_len,
					const char *ad, size_t ad_len, bool as_text,
					unsigned char *nonce_out)
{
	return seal_datum(plain, plain_len, BB_ENV_DOMAIN_COLUMN, ad, ad_len, as_text,
					  nonce_out);
}

static void
report_malformed(bb_env_status status)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("value is not a brandbos envelope"),
			 errdetail("The %s.", bb_env_status_text(status))));
}

/* room on the stack for the decoded form of a text envelope up to ~1.3 kB */
#define FRAME_SPACE_ON_STACK 1024

/*
 * Frame a datum as an envelope.  For text the printable form is decoded
 * into stack_space when it fits FRAME_SPACE_ON_STACK, else into *scratch
 * (palloc'd, caller frees; NULL when not used).  Returns the parse status.
 */
static bb_env_status
frame_datum(Datum value, bool as_text, bb_envelope *env, unsigned char *stack_space,
			unsigned char **scratch)
{
	*scratch = NULL;
	if (!as_text)
	{
		bytea	   *b = DatumGetByteaPP(value);

		return bb_env_parse((const unsigned char *) VARDATA_ANY(b),
							VARSIZE_ANY_EXHDR(b), env);
	}
	else
	{
		text	   *t = DatumGetTextPP(value);
		size_t		len = VARSIZE_ANY_EXHDR(t);
		size_t		cap = bb_env_binary_cap(len) + 1;
		unsigned char *bin;
		size_t		bin_len;
		bb_env_status status;

		if (cap <= FRAME_SPACE_ON_STACK)
			bin = stack_space;
		else
			bin = *scratch = palloc(cap);
		status = bb_env_from_text(bin, cap, &bin_len, VARDATA_ANY(t), len);
		if (status != BB_ENV_OK)
			return status;
		return bb_env_parse(bin, bin_len, env);
	}
}

/*
 * Open an envelope datum in a domain.  The plaintext is written lead bytes
 * into a palloc'd buffer of lead + length + 1 bytes (NUL-terminated), so a
 * caller can open straight into a varlena; *buf_out is that buffer, or
 * NULL when the envelope does not authenticate.  With incoming set (a
 * client wrote the value into a protected column) a format-1 envelope is
 * refused with XX001 unless brandbos.accept_format1_envelopes is on.
 */
static bool
open_envelope(Datum value, bool as_text, bb_env_domain domain, bool incoming,
			  const char *ad, size_t ad_len, size_t lead,
			  char **buf_out, size_t *plain_len, unsigned char *nonce_out)
{
	bb_envelope env;
	unsigned char stack_frame[FRAME_SPACE_ON_STACK];
	unsigned char *scratch;
	bb_env_status status;
	const unsigned char *key;
	char	   *buf;
	unsigned char stack_ad_space[AD_SPACE_ON_STACK];
	unsigned char *ad_space;

	status = frame_datum(value, as_text, &env, stack_frame, &scratch);
	if (status != BB_ENV_OK)
		report_malformed(status);
	if (nonce_out != NULL)
		memcpy(nonce_out, env.nonce, BB_ENV_NONCE_BYTES);
	if (incoming && env.format == BB_ENV_FORMAT_1 && !accept_format1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a protected column does not accept format-1 envelopes"),
				 errdetail("Format-1 envelopes do not tell a column's values from ones anyone could make with brandbos.encrypt(); stored ones keep working, new ones are written in format 2."),
				 errhint("Write the plaintext instead.  To load a dump taken before format 2 into protected tables, a superuser sets brandbos.accept_format1_envelopes = on for that session.")));

	key = brandbos_data_key(env.key_version);
	*plain_len = bb_env_plain_size(&env);
	buf = palloc(lead + *plain_len + 1);
	ad_space = ad_space_for(ad_len, stack_ad_space);
	status = bb_env_open((unsigned char *) buf + lead, &env, domain,
						 (const unsigned char *) ad, ad_len, ad_space, key);
	if (ad_space != stack_ad_space)
		pfree(ad_space);
	if (scratch)
		pfree(scratch);
	if (status != BB_ENV_OK)
	{
		sodium_memzero(buf + lead, *plain_len);
		pfree(buf);
		*buf_out = NULL;
		return false;
	}
	buf[lead + *plain_len] = '\0';
	*buf_out = buf;
	return true;
}

/* open_envelope with the plaintext at the start of its buffer */
static bool
open_datum(Datum value, bool as_text, bb_env_domain domain, bool incoming,
		   const char *ad, size_t ad_len,
		   char **plain_out, size_t *plain_len, unsigned char *nonce_out)
{
	return open_envelope(value, as_text, domain, incoming, ad, ad_len, 0,
						 plain_out, plain_len, nonce_out);
}

bool
brandbos_try_open_datum(Datum value, bool as_text, const char *ad, size_t ad_len,
						char **plain_out, size_t *plain_len, unsigned char *nonce_out)
{
	return open_datum(value, as_text, BB_ENV_DOMAIN_COLUMN, true, ad, ad_len,
					  plain_out, plain_len, nonce_out);
}

bool
brandbos_try_open_stored_datum(Datum value, bool as_text, const char *ad, size_t ad_len,
							   char **plain_out, size_t *plain_len)
{
	return open_datum(value, as_text, BB_ENV_DOMAIN_COLUMN, false, ad, ad_len,
					  plain_out, plain_len, NULL);
}

static void
report_forged(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("brandbos envelope does not authenticate"),
			 errdetail("The value was altered, or it was sealed for another row, column or associated data.")));
}

/* text comes out only when it is valid text here (a bytea envelope could be re-labelled) */
static void
require_valid_text(char *plain, size_t plain_len, void *to_free)
{
	if (!pg_verifymbstr(plain, plain_len, true))
	{
		sodium_memzero(plain, plain_len);
		pfree(to_free);
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("decrypted value is not valid text in the database encoding"),
				 errdetail("A text envelope must hold text; this one holds bytes that are not valid in encoding \"%s\".",
						   GetDatabaseEncodingName())));
	}
}

static char *
open_or_raise(Datum value, bool as_text, bb_env_domain domain,
			  const char *ad, size_t ad_len, size_t *plain_len)
{
	char	   *plain;

	if (!open_datum(value, as_text, domain, false, ad, ad_len, &plain, plain_len, NULL))
		report_forged();
	if (as_text)
		require_valid_text(plain, *plain_len, plain);
	return plain;
}

/*
 * Open a stored column envelope straight into a text or bytea datum (one
 * copy of the plaintext, no intermediate buffer), raising like
 * brandbos_open_datum.
 */
static Datum
open_column_varlena(Datum value, bool as_text, const char *ad, size_t ad_len)
{
	char	   *buf;
	size_t		plain_len;

	if (!open_envelope(value, as_text, BB_ENV_DOMAIN_COLUMN, false, ad, ad_len, VARHDRSZ,
					   &buf, &plain_len, NULL))
		report_forged();
	if (as_text)
		require_valid_text(buf + VARHDRSZ, plain_len, buf);
	SET_VARSIZE(buf, VARHDRSZ + plain_len);
	return PointerGetDatum(buf);
}

char *
brandbos_open_datum(Datum value, bool as_text, const char *ad, size_t ad_len,
					size_t *plain_len)
{
	return open_or_raise(value, as_text, BB_ENV_DOMAIN_COLUMN, ad, ad_len, plain_len);
}

bool
brandbos_looks_like_envelope(Datum value, bool as_text)
{
	if (as_text)
	{
		text	   *t = DatumGetTextPP(value);

		return bb_env_text_has_prefix(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	else
	{
		bytea	   *b = DatumGetByteaPP(value);
		bb_envelope env;

		return bb_env_parse((const unsigned char *) VARDATA_ANY(b),
							VARSIZE_ANY_EXHDR(b), &env) == BB_ENV_OK;
	}
}

/*
 * Format and key version of an envelope datum, raising 22P03 if it is
 * malformed.  A text value is decoded only as far as its header (the first
 * 12 characters after the prefix hold magic, format and key version) when
 * its length fits an envelope; anything else takes the full decode, which
 * gives the precise error.
 */
static void
envelope_header_of(Datum value, bool as_text, int *format, uint32 *version)
{
	bb_envelope env;
	unsigned char stack_frame[FRAME_SPACE_ON_STACK];
	unsigned char *scratch;
	bb_env_status status;

	if (as_text)
	{
		text	   *t = DatumGetTextPP(value);
		size_t		len = VARSIZE_ANY_EXHDR(t);
		unsigned char bin[48];
		size_t		bin_len;

		if (!bb_env_text_has_prefix(VARDATA_ANY(t), len))
			report_malformed(BB_ENV_BAD_ENCODING);
		if (len >= bb_env_text_size(BB_ENV_OVERHEAD))
		{
			status = bb_env_from_text(bin, sizeof(bin), &bin_len,
									  VARDATA_ANY(t), BB_ENV_TEXT_PREFIX_LEN + 12);
			if (status == BB_ENV_OK && bin_len == 9 &&
				bin[0] == BB_ENV_MAGIC0 && bin[1] == BB_ENV_MAGIC1 &&
				(bin[2] == BB_ENV_FORMAT_1 || bin[2] == BB_ENV_FORMAT_2))
			{
				uint32		v = ((uint32) bin[3] << 24) | ((uint32) bin[4] << 16) |
					((uint32) bin[5] << 8) | bin[6];

				if (v != 0 && v <= BB_ENV_KEY_VERSION_MAX)
				{
					*format = bin[2];
					*version = v;
					return;
				}
			}
		}
		/* fall through to the full decode for the precise error */
	}
	status = frame_datum(value, as_text, &env, stack_frame, &scratch);
	if (status != BB_ENV_OK)
		report_malformed(status);
	if (scratch)
		pfree(scratch);
	*format = env.format;
	*version = env.key_version;
}

uint32
brandbos_envelope_version_of(Datum value, bool as_text)
{
	int			format;
	uint32		version;

	envelope_header_of(value, as_text, &format, &version);
	return version;
}

int
brandbos_envelope_format_of(Datum value, bool as_text)
{
	int			format;
	uint32		version;

	envelope_header_of(value, as_text, &format, &version);
	return format;
}

/* ---------------------------------------------------------------------
 * Decryptor check, cached per call site and user
 * --------------------------------------------------------------------- */

typedef struct DecryptorCheck
{
	Oid			checked_user;
}			DecryptorCheck;

/*
 * Plaintext is handed only to statements the decryptor runs itself, never to
 * a trigger: a trigger runs as whoever's write fires it, so one planted by a
 * table's owner (or by anyone allowed to add triggers) would read what the
 * decryptor may read whenever a decryptor writes.  brandbos's own triggers
 * never decrypt through these functions.
 */
static int
trigger_depth(void)
{
	LOCAL_FCINFO(call, 0);

	InitFunctionCallInfoData(*call, NULL, 0, InvalidOid, NULL, NULL);
	return DatumGetInt32(pg_trigger_depth(call));
}

static void
require_decryptor(FunctionCallInfo fcinfo)
{
	DecryptorCheck *check = (DecryptorCheck *) fcinfo->flinfo->fn_extra;
	Oid			user = GetUserId();

	if (trigger_depth() > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("brandbos does not decrypt inside a trigger"),
				 errdetail("A trigger runs with the rights of whoever fires it; plaintext is released only to statements its reader runs."),
				 errhint("Read the _decrypted view or call decrypt() from the application's own statement, not from a trigger.")));
	if (check != NULL && check->checked_user == user)
		return;
	brandbos_require_role(BRANDBOS_ROLE_DECRYPTOR, "decrypt brandbos envelopes");
	if (check == NULL)
	{
		check = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(DecryptorCheck));
		fcinfo->flinfo->fn_extra = check;
	}
	check->checked_user = user;
}

/* ---------------------------------------------------------------------
 * SQL functions
 * --------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(brandbos_encrypt);
/* SQL: brandbos.encrypt(data bytea, associated bytea default '') returns bytea */
Datum
brandbos_encrypt(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	bytea	   *ad = PG_GETARG_BYTEA_PP(1);

	PG_RETURN_DATUM(seal_datum(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data), BB_ENV_DOMAIN_USER,
							   VARDATA_ANY(ad), VARSIZE_ANY_EXHDR(ad), false, NULL));
}

PG_FUNCTION_INFO_V1(brandbos_encrypt_text);
/* SQL: brandbos.encrypt_text(data text, associated text default '') returns text */
Datum
brandbos_encrypt_text(PG_FUNCTION_ARGS)
{
	text	   *data = PG_GETARG_TEXT_PP(0);
	text	   *ad = PG_GETARG_TEXT_PP(1);

	PG_RETURN_DATUM(seal_datum(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data), BB_ENV_DOMAIN_USER,
							   VARDATA_ANY(ad), VARSIZE_ANY_EXHDR(ad), true, NULL));
}

PG_FUNCTION_INFO_V1(brandbos_decrypt);
/* SQL: brandbos.decrypt(envelope bytea, associated bytea default '') returns bytea */
Datum
brandbos_decrypt(PG_FUNCTION_ARGS)
{
	bytea	   *ad = PG_GETARG_BYTEA_PP(1);
	size_t		plain_len;
	char	   *plain;
	bytea	   *result;

	require_decryptor(fcinfo);
	plain = open_or_raise(PG_GETARG_DATUM(0), false, BB_ENV_DOMAIN_USER,
						  VARDATA_ANY(ad), VARSIZE_ANY_EXHDR(ad), &plain_len);
	result = palloc(VARHDRSZ + plain_len);
	SET_VARSIZE(result, VARHDRSZ + plain_len);
	memcpy(VARDATA(result), plain, plain_len);
	sodium_memzero(plain, plain_len);
	pfree(plain);
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(brandbos_decrypt_text);
/* SQL: brandbos.decrypt_text(envelope text, associated text default '') returns text */
Datum
brandbos_decrypt_text(PG_FUNCTION_ARGS)
{
	text	   *ad = PG_GETARG_TEXT_PP(1);
	size_t		plain_len;
	char	   *plain;
	text	   *result;

	require_decryptor(fcinfo);
	plain = open_or_raise(PG_GETARG_DATUM(0), true, BB_ENV_DOMAIN_USER,
						  VARDATA_ANY(ad), VARSIZE_ANY_EXHDR(ad), &plain_len);
	result = cstring_to_text_with_len(plain, plain_len);
	sodium_memzero(plain, plain_len);
	pfree(plain);
	PG_RETURN_TEXT_P(result);
}

/*
 * A well-formed envelope names a key version in 1 .. 2^31-1 (the codec
 * refuses others with 22P03), so the integer result is always the version.
 */
PG_FUNCTION_INFO_V1(brandbos_envelope_key_version_bytea);
/* SQL: brandbos.envelope_key_version(envelope bytea) returns int */
Datum
brandbos_envelope_key_version_bytea(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32((int32) brandbos_envelope_version_of(PG_GETARG_DATUM(0), false));
}

PG_FUNCTION_INFO_V1(brandbos_envelope_key_version_text);
/* SQL: brandbos.envelope_key_version(envelope text) returns int */
Datum
brandbos_envelope_key_version_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32((int32) brandbos_envelope_version_of(PG_GETARG_DATUM(0), true));
}

PG_FUNCTION_INFO_V1(brandbos_envelope_format_bytea);
/* SQL: brandbos.envelope_format(envelope bytea) returns int */
Datum
brandbos_envelope_format_bytea(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(brandbos_envelope_format_of(PG_GETARG_DATUM(0), false));
}

PG_FUNCTION_INFO_V1(brandbos_envelope_format_text);
/* SQL: brandbos.envelope_format(envelope text) returns int */
Datum
brandbos_envelope_format_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(brandbos_envelope_format_of(PG_GETARG_DATUM(0), true));
}

/*
 * Per-call-site state of decrypt_column: the decryptor check and one
 * encoder per primary-key argument.
 */
typedef struct DecryptColumnState
{
	DecryptorCheck check;		/* must be first: require_decryptor uses it */
	bool		as_text;
	StringInfoData ad;			/* the row's binding, reused from row to row */
	int			nkeys;
	BrandbosKeyEncoder keys[FLEXIBLE_ARRAY_MEMBER];
} DecryptColumnState;

PG_FUNCTION_INFO_V1(brandbos_decrypt_column);
/*
 * SQL: brandbos.decrypt_column(column_id uuid, envelope text|bytea,
 *                              VARIADIC primary_key "any") returns text|bytea
 */
Datum
brandbos_decrypt_column(PG_FUNCTION_ARGS)
{
	DecryptColumnState *state = (DecryptColumnState *) fcinfo->flinfo->fn_extra;
	StringInfo	ad;
	int			i;

	if (state == NULL)
	{
		int			nkeys = PG_NARGS() - 2;
		Oid			envtype = get_fn_expr_argtype(fcinfo->flinfo, 1);

		if (nkeys < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("decrypt_column needs the row's primary-key values")));
		state = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
									   offsetof(DecryptColumnState, keys) +
									   sizeof(BrandbosKeyEncoder) * nkeys);
		state->as_text = (envtype != BYTEAOID);
		state->nkeys = nkeys;
		{
			MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

			initStringInfo(&state->ad);
			MemoryContextSwitchTo(old);
		}
		for (i = 0; i < nkeys; i++)
		{
			Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, i + 2);

			if (!OidIsValid(typid))
				elog(ERROR, "could not determine the type of primary-key argument %d", i + 1);
			brandbos_key_encoder_init(&state->keys[i], typid, fcinfo->flinfo->fn_mcxt);
			/* reading may use a binding that can no longer seal: it moves data out */
			state->keys[i].refuse = false;
		}
		fcinfo->flinfo->fn_extra = state;
	}
	require_decryptor(fcinfo);

	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("column id must not be null")));

	ad = &state->ad;
	resetStringInfo(ad);
	brandbos_ad_begin(ad, PG_GETARG_UUID_P(0)->data);
	for (i = 0; i < state->nkeys; i++)
	{
		if (PG_ARGISNULL(i + 2))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("primary-key value %d must not be null", i + 1)));
		brandbos_ad_append(ad, &state->keys[i], PG_GETARG_DATUM(i + 2));
	}

	PG_RETURN_DATUM(open_column_varlena(PG_GETARG_DATUM(1), state->as_text,
										ad->data, ad->len));
}
