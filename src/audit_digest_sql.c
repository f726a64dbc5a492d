/*
 * audit_digest_sql.c — audit digests: audit_digest() writes one,
 * verify_audit_digest() checks that today's chain still extends one, and
 * verify_audit(from_block, digest) reads one as its trust anchor.
 *
 * A digest names the newest sealed block (id, hash, the chain's id = the
 * first block's hash, the signature and public key) and the database it
 * came from.  It is built as a jsonb value (brandbos_details_*).  A digest handed back by a
 * caller is untrusted: PostgreSQL has parsed its JSON (jsonb keeps the
 * last of duplicate keys); here the top level must be an object, nesting
 * is bounded, and the members brandbos reads go to audit_digest.c's rules
 * with their JSON kind — a number as numeric_out prints it, so a fraction
 * or a sign is visible to the rules.  Errors: 22023 malformed, 42704 a
 * digest of another database.
 */
#include "brandbos.h"
#include "audit_store.h"

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

static void
find_member(Jsonb *digest, const char *name, bb_json_member *m)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&digest->root, name, strlen(name), NULL);

	m->text = NULL;
	m->len = 0;
	if (v == NULL)
		m->kind = BB_JSON_ABSENT;
	else if (v->type == jbvString)
	{
		m->kind = BB_JSON_STRING;
		m->text = v->val.string.val;
		m->len = v->val.string.len;
	}
	else if (v->type == jbvNumeric)
	{
		char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out,
														   NumericGetDatum(v->val.numeric)));

		m->kind = BB_JSON_NUMBER;
		m->text = s;
		m->len = strlen(s);
	}
	else
		m->kind = BB_JSON_OTHER;
}

/* deeper than BB_DIGEST_MAX_DEPTH levels of arrays and objects, the top one included? */
static bool
nests_too_deep(Jsonb *digest)
{
	JsonbIterator *it = JsonbIteratorInit(&digest->root);
	JsonbIteratorToken token;
	JsonbValue	v;
	int			depth = 0;

	while ((token = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (token == WJB_BEGIN_ARRAY || token == WJB_BEGIN_OBJECT)
		{
			if (++depth > BB_DIGEST_MAX_DEPTH)
				return true;
		}
		else if (token == WJB_END_ARRAY || token == WJB_END_OBJECT)
			depth--;
	}
	return false;
}

static bb_digest_status
read_digest(Jsonb *digest, bb_digest *out)
{
	bb_digest_members members;

	memset(out, 0, sizeof(*out));
	if (JB_ROOT_IS_SCALAR(digest) || !JB_ROOT_IS_OBJECT(digest))
		return BB_DIGEST_NOT_OBJECT;
	if (nests_too_deep(digest))
		return BB_DIGEST_TOO_DEEP;
	find_member(digest, "format", &members.format);
	find_member(digest, "chain_id", &members.chain_id);
	find_member(digest, "block_id", &members.block_id);
	find_member(digest, "block_hash", &members.block_hash);
	find_member(digest, "signature", &members.signature);
	find_member(digest, "public_key", &members.public_key);
	return bb_digest_check(&members, out);
}

/* a caller's digest (untrusted); 22023 when malformed */
void
brandbos_audit_parse_digest(Jsonb *digest, bb_digest *parsed)
{
	bb_digest_status status = read_digest(digest, parsed);

	if (status != BB_DIGEST_OK)
		brandbos_audit_malformed_digest(bb_digest_status_text(status));
}

static char *
hex(const unsigned char *data, size_t len)
{
	char	   *out = palloc(len * 2 + 1);

	sodium_bin2hex(out, len * 2 + 1, data, len);
	return out;
}

/* chain id: hex of the first block's hash (survives dump and restore) */
static char *
chain_id(void)
{
	unsigned char h[BB_HASH_BYTES];

	brandbos_sql_exec("SELECT block_hash FROM brandbos.audit_blocks WHERE block_id = 1", 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 0 || !brandbos_audit_get_hash(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, h, BB_HASH_BYTES))
		return NULL;
	return hex(h, BB_HASH_BYTES);
}

PG_FUNCTION_INFO_V1(brandbos_audit_digest);
/* SQL: brandbos.audit_digest() returns jsonb */
Datum
brandbos_audit_digest(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	BlockRow	b;
	char	   *chain;
	BrandbosDetails digest;
	Jsonb	   *result;

	brandbos_require_role(BRANDBOS_ROLE_AUDITOR, "read the brandbos audit digest");
	brandbos_spi_begin(&state, brandbos_extension_owner());
	chain = chain_id();
	brandbos_sql_exec("SELECT " BLOCK_COLUMNS " FROM brandbos.audit_blocks ORDER BY block_id DESC LIMIT 1", 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 0 || chain == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the audit log has no sealed block yet"),
				 errhint("Call brandbos.seal_audit() first.")));
	brandbos_audit_read_block(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, &b);

	brandbos_details_begin(&digest);
	brandbos_details_text(&digest, "format", BB_DIGEST_FORMAT);
	brandbos_details_text(&digest, "chain_id", chain);
	brandbos_details_text(&digest, "database", get_database_name(MyDatabaseId));
	brandbos_details_text(&digest, "system_identifier", psprintf(UINT64_FORMAT, GetSystemIdentifier()));
	brandbos_details_int8(&digest, "block_id", b.h.block_id);
	brandbos_details_int8(&digest, "last_id", b.h.last_id);
	brandbos_details_text(&digest, "block_hash", hex(b.stored_hash, BB_HASH_BYTES));
	brandbos_details_text(&digest, "signature", hex(b.signature, crypto_sign_BYTES));
	brandbos_details_text(&digest, "public_key", hex(b.public_key, crypto_sign_PUBLICKEYBYTES));
	brandbos_details_text(&digest, "sealed_at", timestamptz_to_str(b.h.sealed_at));
	result = brandbos_details_end(&digest);
	brandbos_spi_end(&state);

	PG_RETURN_JSONB_P(result);
}

void
brandbos_audit_malformed_digest(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("malformed audit digest"),
			 errdetail("%s", what),
			 errhint("Pass the jsonb that brandbos.audit_digest() returned.")));
}

/* a string member of the digest, or NULL */
static char *
digest_string(Jsonb *digest, const char *key)
{
	JsonbValue	v;

	if (!JB_ROOT_IS_OBJECT(digest) ||
		getKeyJsonValueFromContainer(&digest->root, key, strlen(key), &v) == NULL ||
		v.type != jbvString)
		return NULL;
	return pnstrdup(v.val.string.val, v.val.string.len);
}

/*
 * Whether the digest names this database: its name and the cluster's
 * system identifier.  (A restored copy has another system identifier; its
 * digests still verify while the chain id matches.)
 */
static bool
digest_of_this_database(Jsonb *digest)
{
	char	   *db = digest_string(digest, "database");
	char	   *sysid = digest_string(digest, "system_identifier");
	char	   *name = get_database_name(MyDatabaseId);

	return db != NULL && sysid != NULL && name != NULL && strcmp(db, name) == 0 &&
		strcmp(sysid, psprintf(UINT64_FORMAT, GetSystemIdentifier())) == 0;
}

PG_FUNCTION_INFO_V1(brandbos_verify_audit_digest);
/*
 * SQL: brandbos.verify_audit_digest(digest jsonb) returns boolean
 *
 * True when the digest's block still exists unchanged and every later
 * block chains to it (and, with a trusted key, is signed by it); false
 * whenever the current chain does not extend the digest, including a chain
 * rebuilt from its first block in this database.  Errors: 22023 malformed,
 * 42704 a digest of another database, 22004 NULL.
 */
Datum
brandbos_verify_audit_digest(PG_FUNCTION_ARGS)
{
	Jsonb	   *digest;
	char	   *chain;
	bb_digest	parsed;
	int64		block_id;
	BrandbosInternalState state;
	Oid			argtype = INT8OID;
	Datum		arg;
	uint64		i;
	bool		intact = true;
	BlockRow	prev;
	unsigned char trusted_pk[crypto_sign_PUBLICKEYBYTES];
	bool		have_pk;

	brandbos_require_role(BRANDBOS_ROLE_AUDITOR, "verify a brandbos audit digest");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("digest must not be null")));
	digest = PG_GETARG_JSONB_P(0);
	/* the digest is untrusted: its members are checked by audit_digest.c */
	brandbos_audit_parse_digest(digest, &parsed);
	block_id = parsed.block_id;

	/*
	 * The key later blocks must be signed with: the root-derived one, else
	 * the digest's own (the caller kept it outside).  Without either only
	 * the hash chain from the digest's block is checked, which is what
	 * "extends the digest" means; never the key stored in each block.
	 */
	have_pk = brandbos_audit_trusted_public_key(trusted_pk);
	if (!have_pk && parsed.has_public_key)
	{
		memcpy(trusted_pk, parsed.public_key, sizeof(trusted_pk));
		have_pk = true;
	}

	brandbos_spi_begin(&state, brandbos_extension_owner());
	chain = chain_id();
	if (chain == NULL || strcmp(chain, hex(parsed.chain_id, BB_HASH_BYTES)) != 0)
	{
		/* this database's chain was rebuilt (or emptied): it does not extend the digest */
		if (digest_of_this_database(digest))
		{
			brandbos_spi_end(&state);
			PG_RETURN_BOOL(false);
		}
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the digest belongs to another audit chain"),
				 errdetail("It was taken from another database (its database name or system identifier differ) and its chain id is not this database's.")));
	}

	arg = Int64GetDatum(block_id);
	brandbos_sql_exec("SELECT " BLOCK_COLUMNS " FROM brandbos.audit_blocks WHERE block_id >= $1 ORDER BY block_id", 1, &argtype, &arg, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 0)
		intact = false;			/* the block is gone */
	for (i = 0; intact && i < SPI_processed; i++)
	{
		BlockRow	b;
		unsigned char recomputed[BB_HASH_BYTES];

		brandbos_audit_read_block(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, &b);
		bb_block_hash(recomputed, &b.h);
		/* the block itself is sound ... */
		intact = b.well_formed && memcmp(recomputed, b.stored_hash, BB_HASH_BYTES) == 0 &&
			(!have_pk || crypto_sign_verify_detached(b.signature, recomputed, BB_HASH_BYTES,
													 trusted_pk) == 0);
		/* ... and is the digest's block, or chains to the one before it */
		if (intact && i == 0)
			intact = b.h.block_id == block_id &&
				memcmp(b.stored_hash, parsed.block_hash, BB_HASH_BYTES) == 0;
		else if (intact)
			intact = b.h.block_id == prev.h.block_id + 1 &&
				memcmp(b.h.prev_hash, prev.stored_hash, BB_HASH_BYTES) == 0;
		prev = b;
	}
	brandbos_spi_end(&state);
	PG_RETURN_BOOL(intact);
}

