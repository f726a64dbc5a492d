/*
 * passwords.c — password hashing with Argon2id (libsodium crypto_pwhash).
 *
 * brandbos.hash_password returns libsodium's encoded string, which carries
 * the algorithm, its parameters and a random salt:
 *
 *		$argon2id$v=19$m=65536,t=2,p=1$<salt>$<hash>
 *
 * so verify_password needs nothing but the string, and password_needs_rehash
 * can tell when a stored hash was made with weaker (or just different)
 * parameters than the current settings, for rehashing at the next login.
 *
 * Settings (superuser only, so an application role cannot weaken them):
 *	brandbos.password_opslimit			Argon2 passes (t), default 2
 *	brandbos.password_memlimit_kb		Argon2 memory (m) in kB, default 64 MB
 *	brandbos.password_max_opslimit		most passes verify_password runs, default 4
 *	brandbos.password_max_memlimit_kb	most memory verify_password uses, default 128 MB
 *
 * Cost ceilings: verify_password takes the hash from its caller (PUBLIC), and
 * the hash says how much memory and time checking it costs; Argon2 cannot be
 * interrupted once started.  So the header is parsed first, strictly, and a
 * hash asking for more than the ceilings is refused (53400) before any
 * hashing.  The effective ceiling is never below the current hashing
 * parameters, so a hash that hash_password makes always verifies.
 * password_needs_rehash only decodes the header: it never hashes.
 *
 * Algorithms: Argon2id and Argon2i (libsodium's encodings, version 19) are
 * verified; anything else (Argon2d, scrypt "$7$", bcrypt, ...) is refused
 * as not an Argon2 hash (22023).
 *
 * Secrets: the password is handed to libsodium straight from the argument
 * datum; no C string copy is made.  When PostgreSQL had to detoast the
 * argument, that detoasted copy is ours and is wiped before it is freed.
 * Length checks look at the datum's size before detoasting it.  No password
 * or hash is ever put into an error message.
 *
 * Passwords are hashed as the bytes of the database encoding.  Unicode
 * normalisation, if wanted, is the application's job (normalize() in SQL).
 */
#include "brandbos.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>

#include "access/detoast.h"
#include "utils/builtins.h"
#include "utils/guc.h"

/*
 * Passwords longer than this are refused by hash_password.  Argon2 accepts
 * any length, but its first step hashes the whole password, so a 1 GB
 * "password" would cost the server real time and memory for nothing.
 */
#define PASSWORD_MAX_BYTES			4096

/* bounds of the settings; hashes asking for more are refused as well */
#define PASSWORD_OPSLIMIT_MAX		20
#define PASSWORD_MEMLIMIT_KB_MIN	8	/* libsodium: 8192 bytes */
#define PASSWORD_MEMLIMIT_KB_MAX	4194304 /* 4 GB */

/* libsodium's encoded strings are shorter than crypto_pwhash_STRBYTES */
#define ARGON2ID_PREFIX				"$argon2id$"
#define ARGON2I_PREFIX				"$argon2i$"

/* defaults of the verification ceilings: twice the default hashing cost */
#define PASSWORD_MAX_OPSLIMIT_DEFAULT		4
#define PASSWORD_MAX_MEMLIMIT_KB_DEFAULT	131072	/* 128 MB */

static int	password_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
static int	password_memlimit_kb = crypto_pwhash_MEMLIMIT_INTERACTIVE / 1024;
static int	password_max_opslimit = PASSWORD_MAX_OPSLIMIT_DEFAULT;
static int	password_max_memlimit_kb = PASSWORD_MAX_MEMLIMIT_KB_DEFAULT;

/* what a well-formed encoded hash says about itself */
typedef struct Argon2Params
{
	bool		is_argon2id;	/* false: argon2i */
	unsigned long m_kb;			/* memory in KiB */
	unsigned long t;			/* passes */
	unsigned long p;			/* lanes */
} Argon2Params;

PG_FUNCTION_INFO_V1(brandbos_hash_password);
PG_FUNCTION_INFO_V1(brandbos_verify_password);
PG_FUNCTION_INFO_V1(brandbos_password_needs_rehash);

void
brandbos_passwords_init(void)
{
	DefineCustomIntVariable("brandbos.password_opslimit",
							"Argon2id passes (opslimit) used by brandbos.hash_password.",
							"Raising it makes each hash slower to compute and to guess.",
							&password_opslimit,
							crypto_pwhash_OPSLIMIT_INTERACTIVE,
							crypto_pwhash_OPSLIMIT_MIN, PASSWORD_OPSLIMIT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("brandbos.password_memlimit_kb",
							"Argon2id memory (memlimit) used by brandbos.hash_password.",
							"Each new hash uses this much memory while it is computed; verifying uses what the stored hash records.",
							&password_memlimit_kb,
							crypto_pwhash_MEMLIMIT_INTERACTIVE / 1024,
							PASSWORD_MEMLIMIT_KB_MIN, PASSWORD_MEMLIMIT_KB_MAX,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("brandbos.password_max_opslimit",
							"Most Argon2 passes brandbos.verify_password runs for a hash.",
							"A hash asking for more is refused without hashing; hashes made with brandbos.password_opslimit are always accepted.",
							&password_max_opslimit,
							PASSWORD_MAX_OPSLIMIT_DEFAULT,
							crypto_pwhash_OPSLIMIT_MIN, PASSWORD_OPSLIMIT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("brandbos.password_max_memlimit_kb",
							"Most Argon2 memory brandbos.verify_password uses for a hash.",
							"A hash asking for more is refused without hashing; hashes made with brandbos.password_memlimit_kb are always accepted.",
							&password_max_memlimit_kb,
							PASSWORD_MAX_MEMLIMIT_KB_DEFAULT,
							PASSWORD_MEMLIMIT_KB_MIN, PASSWORD_MEMLIMIT_KB_MAX,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
}

/* the current memory setting in bytes, as libsodium takes it */
static size_t
memlimit_bytes(void)
{
	return (size_t) password_memlimit_kb * 1024;
}

/*
 * Read a decimal number at *s (no sign, no leading zero unless it is "0")
 * and advance *s past it.  Returns false if there is none or it is too big.
 */
static bool
read_decimal(const char **s, unsigned long *value)
{
	const char *p = *s;
	unsigned long v = 0;

	if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
		return false;
	for (; *p >= '0' && *p <= '9'; p++)
	{
		if (v > (UINT_MAX - (unsigned long) (*p - '0')) / 10)
			return false;
		v = v * 10 + (unsigned long) (*p - '0');
	}
	*s = p;
	*value = v;
	return true;
}

/*
 * Is str a well-formed Argon2id or Argon2i encoded hash?  Our parser reads
 * the header (for the parameters); libsodium's own decoder, reached through
 * its needs_rehash function, checks the rest (salt, hash, limits).
 */
static bool
parse_argon2_hash(const char *str, Argon2Params *params)
{
	const char *s = str;
	unsigned long version;
	int			rc;

	if (strlen(str) >= crypto_pwhash_STRBYTES)
		return false;
	if (strncmp(s, ARGON2ID_PREFIX, strlen(ARGON2ID_PREFIX)) == 0)
	{
		params->is_argon2id = true;
		s += strlen(ARGON2ID_PREFIX);
	}
	else if (strncmp(s, ARGON2I_PREFIX, strlen(ARGON2I_PREFIX)) == 0)
	{
		params->is_argon2id = false;
		s += strlen(ARGON2I_PREFIX);
	}
	else
		return false;

	if (strncmp(s, "v=", 2) != 0)
		return false;
	s += 2;
	if (!read_decimal(&s, &version) || version != 19)
		return false;
	if (strncmp(s, "$m=", 3) != 0)
		return false;
	s += 3;
	if (!read_decimal(&s, &params->m_kb))
		return false;
	if (strncmp(s, ",t=", 3) != 0)
		return false;
	s += 3;
	if (!read_decimal(&s, &params->t))
		return false;
	if (strncmp(s, ",p=", 3) != 0)
		return false;
	s += 3;
	if (!read_decimal(&s, &params->p))
		return false;
	if (*s != '$')
		return false;

	/* -1 means libsodium could not decode it; 0 or 1 means it could */
	if (params->is_argon2id)
		rc = crypto_pwhash_argon2id_str_needs_rehash(str,
													 crypto_pwhash_argon2id_OPSLIMIT_MIN,
													 crypto_pwhash_argon2id_MEMLIMIT_MIN);
	else
		rc = crypto_pwhash_argon2i_str_needs_rehash(str,
													crypto_pwhash_argon2i_OPSLIMIT_MIN,
													crypto_pwhash_argon2i_MEMLIMIT_MIN);
	return rc >= 0;
}

/*
 * Parse hash argument argno, raising 22023 when it is not a well-formed
 * Argon2 encoded hash.  An overlong argument is refused by its size, before
 * it is detoasted.  The hash itself is never quoted in the error.
 */
static void
get_argon2_hash(FunctionCallInfo fcinfo, int argno, char **hash_out, Argon2Params *params)
{
	char	   *hash = NULL;

	if (toast_raw_datum_size(PG_GETARG_DATUM(argno)) - VARHDRSZ >= crypto_pwhash_STRBYTES ||
		!parse_argon2_hash(hash = text_to_cstring(PG_GETARG_TEXT_PP(argno)), params))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hash is not an argon2 encoded password hash"),
				 errdetail("An encoded hash starts with \"%s\" or \"%s\", holds its parameters, salt and hash, and is shorter than %d characters.",
						   ARGON2ID_PREFIX, ARGON2I_PREFIX,
						   (int) crypto_pwhash_STRBYTES),
				 errhint("Pass a value returned by brandbos.hash_password().")));
	*hash_out = hash;
}

/*
 * Refuse, before any hashing, a hash that asks for more memory or passes
 * than the ceilings allow (53400).  The ceilings never fall below what
 * hash_password currently uses, so a fresh hash always passes.
 */
static void
require_affordable(const Argon2Params *params)
{
	unsigned long max_m = (unsigned long) Max(password_max_memlimit_kb, password_memlimit_kb);
	unsigned long max_t = (unsigned long) Max(password_max_opslimit, password_opslimit);

	if (params->m_kb > max_m || params->t > max_t)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("argon2 hash asks for more than brandbos allows"),
				 errdetail("The hash asks for m=%lu kB and t=%lu; at most m=%lu kB and t=%lu are accepted.",
						   params->m_kb, params->t, max_m, max_t),
				 errhint("A superuser can raise brandbos.password_max_memlimit_kb and brandbos.password_max_opslimit.")));
}

/*
 * The password argument, detoasted but not copied when it need not be.
 * release_password() wipes and frees it if detoasting made a copy.
 */
static text *
get_password(FunctionCallInfo fcinfo, int argno)
{
	return (text *) PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(argno));
}

static void
release_password(FunctionCallInfo fcinfo, int argno, text *password)
{
	if ((Pointer) password != DatumGetPointer(PG_GETARG_DATUM(argno)))
	{
		sodium_memzero(password, VARSIZE_ANY(password));
		pfree(password);
	}
}

/* length in bytes of a text argument, without detoasting it */
static Size
text_arg_length(FunctionCallInfo fcinfo, int argno)
{
	return toast_raw_datum_size(PG_GETARG_DATUM(argno)) - VARHDRSZ;
}

/* SQL: brandbos.hash_password(password text) returns text */
Datum
brandbos_hash_password(PG_FUNCTION_ARGS)
{
	Size		len = text_arg_length(fcinfo, 0);
	text	   *password;
	char		encoded[crypto_pwhash_STRBYTES];
	int			rc;

	/*
	 * An empty password is refused: it is nearly always a form field that
	 * was never filled in, and storing its hash would let anyone log in
	 * with nothing.  Applications that want passwordless accounts should
	 * say so with NULL, not with the hash of ''.
	 */
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password must not be empty"),
				 errhint("Store NULL for an account without a password.")));
	if (len > PASSWORD_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password is too long"),
				 errdetail("A password may be at most %d bytes long; this one is %zu bytes.",
						   PASSWORD_MAX_BYTES, (size_t) len)));

	password = get_password(fcinfo, 0);
	rc = crypto_pwhash_str_alg(encoded,
							   VARDATA_ANY(password),
							   VARSIZE_ANY_EXHDR(password),
							   (unsigned long long) password_opslimit,
							   memlimit_bytes(),
							   crypto_pwhash_ALG_ARGON2ID13);
	release_password(fcinfo, 0, password);

	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Argon2id could not allocate the %d kB set by brandbos.password_memlimit_kb.",
						   password_memlimit_kb)));

	PG_RETURN_TEXT_P(cstring_to_text(encoded));
}

/* SQL: brandbos.verify_password(password text, hash text) returns boolean */
Datum
brandbos_verify_password(PG_FUNCTION_ARGS)
{
	char	   *hash;
	Argon2Params params;
	text	   *password;
	int			rc;
	int			saved_errno;

	get_argon2_hash(fcinfo, 1, &hash, &params);
	require_affordable(&params);

	/*
	 * No hash made by hash_password can match an overlong password, so
	 * answer false without hashing it.  This is not an error: callers pass
	 * whatever a client typed into a login form.
	 */
	if (text_arg_length(fcinfo, 0) > PASSWORD_MAX_BYTES)
		PG_RETURN_BOOL(false);

	password = get_password(fcinfo, 0);
	errno = 0;
	rc = crypto_pwhash_str_verify(hash,
								  VARDATA_ANY(password),
								  VARSIZE_ANY_EXHDR(password));
	saved_errno = errno;
	release_password(fcinfo, 0, password);

	if (rc == 0)
		PG_RETURN_BOOL(true);

	/*
	 * The hash was decoded above, so a failure is either a mismatch, which
	 * libsodium marks with EINVAL, or a failed allocation.
	 */
	if (saved_errno != EINVAL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Argon2 could not allocate the %lu kB the hash asks for.",
						   params.m_kb)));
	PG_RETURN_BOOL(false);
}

/* SQL: brandbos.password_needs_rehash(hash text) returns boolean */
Datum
brandbos_password_needs_rehash(PG_FUNCTION_ARGS)
{
	char	   *hash;
	Argon2Params params;
	int			rc;

	get_argon2_hash(fcinfo, 0, &hash, &params);

	/* Argon2i, or lanes hash_password never uses: always rehash */
	if (!params.is_argon2id || params.p != 1)
		PG_RETURN_BOOL(true);

	rc = crypto_pwhash_argon2id_str_needs_rehash(hash,
												 (unsigned long long) password_opslimit,
												 memlimit_bytes());
	if (rc < 0)					/* cannot happen: the hash was decoded above */
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not read the parameters of an argon2 hash")));
	PG_RETURN_BOOL(rc == 1);
}
