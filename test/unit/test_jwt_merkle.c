/*
 * test_jwt_merkle.c — unit tests of the JWT framing/HS256 code (src/jwt.c)
 * and of the audit chain hashes (src/merkle.c).
 */
#include <string.h>
#include <sodium.h>

#include "jwt.h"
#include "merkle.h"
#include "tap.h"

static const unsigned char secret[] = "test-secret-of-some-length-0123456789";

/* recursive reference: root = node(root(L[0..k)), root(L[k..n))), k = largest power of 2 < n */
static void
reference_root(unsigned char *out, const unsigned char *leaves, size_t n)
{
	size_t		k = 1;
	unsigned char l[BB_HASH_BYTES],
				r[BB_HASH_BYTES];

	if (n == 1)
	{
		memcpy(out, leaves, BB_HASH_BYTES);
		return;
	}
	while (k << 1 < n)
		k <<= 1;
	reference_root(l, leaves, k);
	reference_root(r, leaves + k * BB_HASH_BYTES, n - k);
	bb_node_hash(out, l, r);
}

int
main(void)
{
	char		token[512];
	unsigned char buf[512];
	bb_jwt		jwt;
	const char *header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	const char *payload = "{\"sub\":\"u1\",\"tenant_id\":\"t1\"}";
	size_t		len;

	if (sodium_init() < 0)
		return 2;

	/* signing and verifying */
	bb_jwt_sign_hs256(token, header, strlen(header), payload, strlen(payload),
					  secret, sizeof(secret) - 1);
	len = strlen(token);
	ok(len == bb_jwt_signed_len(strlen(header), strlen(payload)), "signed length is exact");
	ok(bb_jwt_parse(token, len, buf, &jwt) == BB_JWT_OK, "a signed token parses");
	ok(jwt.header_len == strlen(header) && memcmp(jwt.header, header, jwt.header_len) == 0,
	   "the header decodes to what was signed");
	ok(jwt.payload_len == strlen(payload) && memcmp(jwt.payload, payload, jwt.payload_len) == 0,
	   "the payload decodes to what was signed");
	ok(bb_jwt_verify_hs256(token, &jwt, secret, sizeof(secret) - 1) == BB_JWT_OK,
	   "the signature verifies with the secret");
	ok(bb_jwt_verify_hs256(token, &jwt, (const unsigned char *) "other", 5) == BB_JWT_BAD_SIGNATURE,
	   "another secret is refused");

	/* an independently known vector: HMAC-SHA256 of "a.b" with key "k" */
	{
		unsigned char mac[32];
		crypto_auth_hmacsha256_state st;
		char		expect_token[128];
		char		sig[64];
		size_t		sig_len;

		crypto_auth_hmacsha256_init(&st, (const unsigned char *) "k", 1);
		crypto_auth_hmacsha256_update(&st, (const unsigned char *) "YQ.Yg", 5);
		crypto_auth_hmacsha256_final(&st, mac);
		sodium_bin2base64(sig, sizeof(sig), mac, 32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		sig_len = strlen(sig);
		snprintf(expect_token, sizeof(expect_token), "YQ.Yg.%s", sig);
		bb_jwt_sign_hs256(token, "a", 1, "b", 1, (const unsigned char *) "k", 1);
		ok(strcmp(token, expect_token) == 0 && sig_len == 43,
		   "HS256 matches libsodium's HMAC-SHA256 over the encoded segments");
	}

	/* framing errors */
	ok(bb_jwt_parse("abc", 3, buf, &jwt) == BB_JWT_NOT_THREE_SEGMENTS, "no dots: refused");
	ok(bb_jwt_parse("a.b", 3, buf, &jwt) == BB_JWT_NOT_THREE_SEGMENTS, "two segments: refused");
	ok(bb_jwt_parse("a.b.c.d", 7, buf, &jwt) == BB_JWT_NOT_THREE_SEGMENTS, "four segments: refused");
	ok(bb_jwt_parse(".YQ.YQ", 6, buf, &jwt) == BB_JWT_NOT_THREE_SEGMENTS, "empty header: refused");
	ok(bb_jwt_parse("YQ..YQ", 6, buf, &jwt) == BB_JWT_NOT_THREE_SEGMENTS, "empty payload: refused");
	ok(bb_jwt_parse("YQ.YQ.", 6, buf, &jwt) == BB_JWT_OK && jwt.signature_len == 0,
	   "an empty signature frames (alg none) but can never verify");
	ok(bb_jwt_verify_hs256("YQ.YQ.", &jwt, secret, sizeof(secret) - 1) == BB_JWT_BAD_SIGNATURE,
	   "and does not verify");
	ok(bb_jwt_parse("Y*.YQ.YQ", 8, buf, &jwt) == BB_JWT_BAD_BASE64, "bad base64url: refused");
	ok(bb_jwt_parse("YQ==.YQ.YQ", 10, buf, &jwt) == BB_JWT_BAD_BASE64, "padding: refused");
	{
		char		longsig[200];

		memset(longsig, 'A', sizeof(longsig));
		memcpy(longsig, "YQ.YQ.", 6);
		ok(bb_jwt_parse(longsig, sizeof(longsig), buf, &jwt) == BB_JWT_OK &&
		   jwt.signature_len == (sizeof(longsig) - 6) * 3 / 4,
		   "a signature longer than 32 bytes (HS512, RS256) frames, inside buf");
		ok(bb_jwt_verify_hs256(longsig, &jwt, secret, sizeof(secret) - 1) == BB_JWT_BAD_SIGNATURE,
		   "and never verifies as HS256");
	}
	/* a flipped byte in the payload segment breaks the signature */
	bb_jwt_sign_hs256(token, header, strlen(header), payload, strlen(payload), secret, sizeof(secret) - 1);
	token[strchr(token, '.') - token + 2] ^= 1;
	ok(bb_jwt_parse(token, strlen(token), buf, &jwt) != BB_JWT_OK ||
	   bb_jwt_verify_hs256(token, &jwt, secret, sizeof(secret) - 1) == BB_JWT_BAD_SIGNATURE,
	   "a tampered payload does not verify");

	/* Merkle roots equal the recursive definition for every size up to 70 */
	{
		unsigned char leaves[70 * BB_HASH_BYTES],
					scratch[70 * BB_HASH_BYTES],
					a[BB_HASH_BYTES],
					b[BB_HASH_BYTES];
		size_t		n;
		int			same = 1;

		for (n = 0; n < 70; n++)
			bb_leaf_hash(leaves + n * BB_HASH_BYTES, (const unsigned char *) &n, sizeof(n));
		for (n = 1; n <= 70; n++)
		{
			bb_merkle_root(a, leaves, n, scratch);
			reference_root(b, leaves, n);
			if (memcmp(a, b, BB_HASH_BYTES) != 0)
				same = 0;
		}
		ok(same, "bottom-up Merkle roots equal the recursive definition for 1..70 leaves");
		bb_merkle_root(a, leaves, 5, scratch);
		leaves[3 * BB_HASH_BYTES] ^= 1;
		bb_merkle_root(b, leaves, 5, scratch);
		ok(memcmp(a, b, BB_HASH_BYTES) != 0, "changing one leaf changes the root");
		leaves[3 * BB_HASH_BYTES] ^= 1;
		bb_merkle_root(b, leaves, 4, scratch);
		ok(memcmp(a, b, BB_HASH_BYTES) != 0, "dropping the last leaf changes the root");
	}
	{
		unsigned char node[BB_HASH_BYTES],
					leaf[BB_HASH_BYTES],
					twoleaves[2 * BB_HASH_BYTES];

		bb_leaf_hash(twoleaves, (const unsigned char *) "x", 1);
		bb_leaf_hash(twoleaves + BB_HASH_BYTES, (const unsigned char *) "y", 1);
		bb_node_hash(node, twoleaves, twoleaves + BB_HASH_BYTES);
		bb_leaf_hash(leaf, twoleaves, sizeof(twoleaves));
		ok(memcmp(node, leaf, BB_HASH_BYTES) != 0,
		   "a node cannot pass for a leaf of the same bytes (domain separation)");
	}

	/* block hashes bind every header field */
	{
		bb_block_header h;
		unsigned char base[BB_HASH_BYTES],
					other[BB_HASH_BYTES];
		int64_t		ids[2] = {3, 9};
		int			binds = 1;

		memset(&h, 0, sizeof(h));
		h.block_id = 2;
		h.first_id = 1;
		h.last_id = 10;
		h.row_count = 8;
		h.sealed_at = 123456;
		bb_ids_hash(h.missing_hash, ids, 2);
		bb_block_hash(base, &h);
#define CHANGED(stmt) do { bb_block_header c = h; stmt; bb_block_hash(other, &c); \
		if (memcmp(base, other, BB_HASH_BYTES) == 0) binds = 0; } while (0)
		CHANGED(c.block_id = 3);
		CHANGED(c.prev_hash[0] ^= 1);
		CHANGED(c.root_hash[31] ^= 1);
		CHANGED(c.first_id = 2);
		CHANGED(c.last_id = 11);
		CHANGED(c.row_count = 9);
		CHANGED(c.missing_hash[5] ^= 1);
		CHANGED(c.sealed_at = 123457);
		ok(binds, "the block hash changes with every header field");
		ids[1] = 8;
		bb_ids_hash(other, ids, 2);
		ok(memcmp(other, h.missing_hash, BB_HASH_BYTES) != 0, "the missing-ids hash binds the ids");
	}

	return tap_done();
}
