/*
 * audit_digest_read.c — finding the members of a caller's audit digest in
 * its jsonb, for the checks of audit_digest.c.
 *
 * PostgreSQL has parsed the JSON already (jsonb keeps the last of
 * duplicate keys); what is left is untrusted in shape only: the top level
 * must be an object, nesting is bounded, and each member brandbos reads is
 * passed on with its JSON kind — a number as numeric_out prints it, so a
 * fraction or a sign is visible to the rules.
 */
#include "brandbos.h"
#include "audit_digest.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

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

bb_digest_status
brandbos_audit_digest_read(Jsonb *digest, bb_digest *out)
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
