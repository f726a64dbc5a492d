/*
 * test_audit_digest.c — unit tests of the audit digest rules
 * (src/audit_digest.c): the members audit_digest() writes are accepted and
 * decoded; every rule a hostile digest could bend is refused, with the
 * status naming the member.
 */
#include <stdio.h>
#include <string.h>

#include "audit_digest.h"
#include "tap.h"

#define HASH_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define HASH_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define SIG HASH_A HASH_B

static bb_digest d;

static bb_json_member
str(const char *s)
{
	bb_json_member m = {BB_JSON_STRING, s, strlen(s)};

	return m;
}

static bb_json_member
num(const char *s)
{
	bb_json_member m = {BB_JSON_NUMBER, s, strlen(s)};

	return m;
}

static const bb_json_member absent = {BB_JSON_ABSENT, NULL, 0};
static const bb_json_member other = {BB_JSON_OTHER, NULL, 0};

/* the members audit_digest() writes, without signature and key */
static bb_digest_members
good(void)
{
	bb_digest_members m;

	m.format = str(BB_DIGEST_FORMAT);
	m.chain_id = str(HASH_A);
	m.block_id = num("12");
	m.block_hash = str(HASH_B);
	m.signature = absent;
	m.public_key = absent;
	return m;
}

static bb_digest_status
check(bb_digest_members m)
{
	return bb_digest_check(&m, &d);
}

int
main(void)
{
	bb_digest_members m;

	/* the shape audit_digest() writes */
	m = good();
	m.signature = str(SIG);
	m.public_key = str(HASH_A);
	ok(check(m) == BB_DIGEST_OK, "a digest of audit_digest()'s shape is accepted");
	ok(d.block_id == 12, "block_id is read");
	ok(d.chain_id[0] == 0x00 && d.chain_id[31] == 0xff, "chain_id is decoded from hex");
	ok(d.block_hash[0] == 0xff && d.block_hash[31] == 0x00, "block_hash is decoded from hex");
	ok(d.has_signature && d.signature[32] == 0xff && d.has_public_key && d.public_key[1] == 0x11,
	   "signature and public key are decoded");
	ok(check(good()) == BB_DIGEST_OK && !d.has_signature && !d.has_public_key,
	   "signature and public key are optional");

	/* format */
	m = good(); m.format = absent;
	ok(check(m) == BB_DIGEST_BAD_FORMAT, "a missing format is refused");
	m = good(); m.format = str("nope");
	ok(check(m) == BB_DIGEST_BAD_FORMAT, "another format is refused");
	m = good(); m.format = str(BB_DIGEST_FORMAT "x");
	ok(check(m) == BB_DIGEST_BAD_FORMAT, "a longer format is refused");
	m = good(); m.format.len--;
	ok(check(m) == BB_DIGEST_BAD_FORMAT, "a prefix of the format is refused (length is honoured)");
	m = good(); m.format = other;
	ok(check(m) == BB_DIGEST_BAD_FORMAT, "a format that is not a string is refused");

	/* block_id */
	m = good(); m.block_id = absent;
	ok(check(m) == BB_DIGEST_BAD_BLOCK_ID, "a missing block_id is refused");
	m = good(); m.block_id = num("0");
	ok(check(m) == BB_DIGEST_BAD_BLOCK_ID, "block_id 0 is refused");
	m = good(); m.block_id = num("-3");
	ok(check(m) == BB_DIGEST_BAD_BLOCK_ID, "a negative block_id is refused");
	m = good(); m.block_id = num("1.5");
	ok(check(m) == BB_DIGEST_BAD_BLOCK_ID, "a fractional block_id is refused");
	m = good(); m.block_id = num("1.0");
	ok(check(m) == BB_DIGEST_BAD_BLOCK_ID, "a block_id with a fraction part is refused");
	m = good(); m.block_id = num("NaN");
	ok(check(m) == BB_DIGEST_BAD_BLOCK_ID, "NaN is refused");
	m = good(); m.block_id = str("5");
	ok(check(m) == BB_DIGEST_BAD_BLOCK_ID, "a block_id string is refused");
	m = good(); m.block_id = num("9223372036854775807");
	ok(check(m) == BB_DIGEST_OK && d.block_id == INT64_MAX, "the largest bigint is read exactly");
	m = good(); m.block_id = num("9223372036854775808");
	ok(check(m) == BB_DIGEST_BAD_BLOCK_ID, "one more overflows and is refused");
	m = good(); m.block_id = num("18446744073709551616");
	ok(check(m) == BB_DIGEST_BAD_BLOCK_ID, "a 20-digit number is refused without wrapping");
	m = good(); m.block_id = num("");
	ok(check(m) == BB_DIGEST_BAD_BLOCK_ID, "an empty number is refused");

	/* hashes */
	m = good(); m.chain_id = absent;
	ok(check(m) == BB_DIGEST_BAD_CHAIN_ID, "a missing chain_id is refused");
	m = good(); m.block_hash = str("zz");
	ok(check(m) == BB_DIGEST_BAD_BLOCK_HASH, "a short block_hash is refused");
	m = good(); m.block_hash = str("g0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	ok(check(m) == BB_DIGEST_BAD_BLOCK_HASH, "a non-hex character is refused");
	m = good(); m.block_hash = str(HASH_B "00");
	ok(check(m) == BB_DIGEST_BAD_BLOCK_HASH, "a long block_hash is refused");
	m = good(); m.block_hash = str("FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100");
	ok(check(m) == BB_DIGEST_OK && d.block_hash[0] == 0xff, "upper-case hex is accepted");
	m = good(); m.block_hash = num("1");
	ok(check(m) == BB_DIGEST_BAD_BLOCK_HASH, "a block_hash that is not a string is refused");

	/* optional members, when present */
	m = good(); m.signature = str("abc");
	ok(check(m) == BB_DIGEST_BAD_SIGNATURE, "a malformed optional signature is refused");
	m = good(); m.signature = other;
	ok(check(m) == BB_DIGEST_BAD_SIGNATURE, "a signature that is null or an object is refused");
	m = good(); m.public_key = num("5");
	ok(check(m) == BB_DIGEST_BAD_PUBLIC_KEY, "a public key that is not a string is refused");

	/* the first broken rule is reported */
	m = good(); m.format = absent; m.block_hash = absent;
	ok(check(m) == BB_DIGEST_BAD_FORMAT, "the format is checked first");
	m = good(); m.block_id = num("0"); m.block_hash = absent;
	ok(check(m) == BB_DIGEST_BAD_BLOCK_ID, "then the members in a fixed order");

	ok(strstr(bb_digest_status_text(BB_DIGEST_BAD_BLOCK_HASH), "block_hash") != NULL,
	   "each status has a sentence naming the member");
	ok(strstr(bb_digest_status_text(BB_DIGEST_TOO_DEEP), "32") != NULL &&
	   strstr(bb_digest_status_text(BB_DIGEST_NOT_OBJECT), "object") != NULL,
	   "and the shape refusals say what is wrong");

	return tap_done();
}
