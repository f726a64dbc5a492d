/*
 * test_audit_digest.c — unit tests of the audit digest reader
 * (src/audit_digest.c): well-formed digests in the shape audit_digest()
 * writes, every refusal, and the JSON edge cases a hostile digest can use.
 */
#include <stdio.h>
#include <string.h>

#include "audit_digest.h"
#include "tap.h"

#define HASH_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define HASH_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define SIG HASH_A HASH_B

static bb_digest d;

static bb_digest_status
parse(const char *json)
{
	return bb_digest_parse(json, strlen(json), &d);
}

/* a digest with one member replaced (or added when absent): {"format":...,<extra>} */
static bb_digest_status
parse_with(const char *members)
{
	char		buf[2048];

	snprintf(buf, sizeof(buf),
			 "{\"format\": \"" BB_DIGEST_FORMAT "\", \"chain_id\": \"" HASH_A "\", "
			 "\"block_hash\": \"" HASH_B "\"%s}", members);
	return parse(buf);
}

static bb_digest_status
nested(int levels)
{
	char		buf[1024];
	size_t		n = 0;
	int			i;

	if (levels > 400)
		return BB_DIGEST_NOT_JSON;	/* the buffer holds 2 * 400 brackets */
	n += (size_t) snprintf(buf + n, sizeof(buf) - n,
						   "{\"block_id\": 1, \"format\": \"" BB_DIGEST_FORMAT "\", \"chain_id\": \"" HASH_A
						   "\", \"block_hash\": \"" HASH_B "\", \"x\": ");
	for (i = 0; i < levels; i++)
		buf[n++] = '[';
	for (i = 0; i < levels; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	buf[n] = '\0';
	return parse(buf);
}

int
main(void)
{
	const char *real =
		"{\"format\": \"brandbos-audit-digest-1\", \"chain_id\": \"" HASH_A "\", "
		"\"database\": \"app\", \"system_identifier\": \"7311\", \"block_id\": 12, "
		"\"last_id\": 3400, \"block_hash\": \"" HASH_B "\", \"signature\": \"" SIG "\", "
		"\"public_key\": \"" HASH_A "\", \"sealed_at\": \"2026-11-23 10:00:00+00\"}";

	/* the shape audit_digest() writes */
	ok(parse(real) == BB_DIGEST_OK, "a digest of audit_digest()'s shape parses");
	ok(d.block_id == 12, "block_id is read");
	ok(d.chain_id[0] == 0x00 && d.chain_id[31] == 0xff, "chain_id is decoded from hex");
	ok(d.block_hash[0] == 0xff && d.block_hash[31] == 0x00, "block_hash is decoded from hex");
	ok(d.has_signature && d.signature[32] == 0xff && d.has_public_key && d.public_key[1] == 0x11,
	   "signature and public key are decoded");
	ok(bb_digest_parse(real, strlen(real) - 1, &d) == BB_DIGEST_NOT_JSON,
	   "the same bytes without the closing brace are refused (length is honoured)");

	/* layout freedom that JSON allows */
	ok(parse_with(", \"block_id\": 7") == BB_DIGEST_OK && d.block_id == 7, "member order does not matter");
	ok(parse(" \n\t{\"block_id\":1,\"format\":\"" BB_DIGEST_FORMAT "\",\"chain_id\":\"" HASH_A
			 "\",\"block_hash\":\"" HASH_B "\"}\r\n") == BB_DIGEST_OK, "whitespace around and without");
	ok(parse_with(", \"block_id\": 1, \"note\": {\"a\": [1, -2.5e+3, true, false, null, \"s\\\"\\u00e9\"], \"b\": {}}")
	   == BB_DIGEST_OK, "unknown members of any type are skipped");
	ok(parse_with(", \"block_id\": 1, \"\\u0062lock_id\": 2") == BB_DIGEST_DUPLICATE_MEMBER,
	   "a member name written with an escape is the same member");
	ok(parse_with(", \"block_id\": 1, \"chain_id\": \"" HASH_A "\"") == BB_DIGEST_DUPLICATE_MEMBER,
	   "a member named twice is refused");
	ok(parse_with(", \"block_id\": 1, \"signature\": \"abc\"") == BB_DIGEST_BAD_SIGNATURE,
	   "a malformed optional signature is refused");
	ok(parse_with(", \"block_id\": 1, \"public_key\": 5") == BB_DIGEST_BAD_PUBLIC_KEY,
	   "a public key that is not a string is refused");
	ok(parse_with(", \"block_id\": 1") == BB_DIGEST_OK && !d.has_signature && !d.has_public_key,
	   "signature and public key are optional");

	/* required members */
	ok(parse("{\"chain_id\": \"" HASH_A "\", \"block_hash\": \"" HASH_B "\", \"block_id\": 1}") == BB_DIGEST_BAD_FORMAT,
	   "a missing format is refused");
	ok(parse("{\"format\": \"nope\"}") == BB_DIGEST_BAD_FORMAT, "another format is refused");
	ok(parse_with("") == BB_DIGEST_BAD_BLOCK_ID, "a missing block_id is refused");
	ok(parse("{\"format\": \"" BB_DIGEST_FORMAT "\", \"block_id\": 1, \"block_hash\": \"" HASH_B "\"}")
	   == BB_DIGEST_BAD_CHAIN_ID, "a missing chain_id is refused");

	/* block_id */
	ok(parse_with(", \"block_id\": 0") == BB_DIGEST_BAD_BLOCK_ID, "block_id 0 is refused");
	ok(parse_with(", \"block_id\": -3") == BB_DIGEST_BAD_BLOCK_ID, "a negative block_id is refused");
	ok(parse_with(", \"block_id\": 1.5") == BB_DIGEST_BAD_BLOCK_ID, "a fractional block_id is refused");
	ok(parse_with(", \"block_id\": 1e3") == BB_DIGEST_BAD_BLOCK_ID, "an exponent is refused");
	ok(parse_with(", \"block_id\": \"5\"") == BB_DIGEST_BAD_BLOCK_ID, "a block_id string is refused");
	ok(parse_with(", \"block_id\": 9223372036854775807") == BB_DIGEST_OK && d.block_id == INT64_MAX,
	   "the largest bigint is read exactly");
	ok(parse_with(", \"block_id\": 9223372036854775808") == BB_DIGEST_BAD_BLOCK_ID,
	   "one more overflows and is refused");
	ok(parse_with(", \"block_id\": 01") == BB_DIGEST_NOT_JSON, "a leading zero is not JSON");

	/* hashes */
	ok(parse("{\"format\": \"" BB_DIGEST_FORMAT "\", \"chain_id\": \"" HASH_A "\", \"block_id\": 1, "
			 "\"block_hash\": \"zz\"}") == BB_DIGEST_BAD_BLOCK_HASH, "a short block_hash is refused");
	ok(parse("{\"format\": \"" BB_DIGEST_FORMAT "\", \"chain_id\": \"" HASH_A "\", \"block_id\": 1, "
			 "\"block_hash\": \"" "g0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" "\"}")
	   == BB_DIGEST_BAD_BLOCK_HASH, "a non-hex character is refused");
	ok(parse("{\"format\": \"" BB_DIGEST_FORMAT "\", \"chain_id\": \"" HASH_A "\", \"block_id\": 1, "
			 "\"block_hash\": \"" "FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100" "\"}")
	   == BB_DIGEST_OK && d.block_hash[0] == 0xff, "upper-case hex is accepted");

	/* not an object, not JSON */
	ok(parse("[1, 2]") == BB_DIGEST_NOT_OBJECT, "an array is not an object");
	ok(parse("\"x\"") == BB_DIGEST_NOT_OBJECT, "a string is not an object");
	ok(parse("") == BB_DIGEST_NOT_JSON, "empty input is not JSON");
	ok(parse("{not json") == BB_DIGEST_NOT_JSON, "garbage is not JSON");
	ok(parse_with(", \"block_id\": 1} x") == BB_DIGEST_NOT_JSON, "bytes after the document are refused");
	ok(parse_with(", \"block_id\": 1,") == BB_DIGEST_NOT_JSON, "a trailing comma in the object is refused");
	ok(parse_with(", \"block_id\": 1, \"x\": [1, ]") == BB_DIGEST_NOT_JSON, "a trailing comma in an array is refused");
	ok(parse_with(", \"block_id\": 1, \"x\": tru") == BB_DIGEST_NOT_JSON, "a cut literal is refused");
	ok(parse_with(", \"block_id\": 1, \"x\": \"a\tb\"") == BB_DIGEST_NOT_JSON,
	   "a raw control character in a string is refused");
	ok(parse_with(", \"block_id\": 1, \"x\": \"\\x\"") == BB_DIGEST_NOT_JSON, "an unknown escape is refused");
	ok(parse_with(", \"block_id\": 1, \"x\": \"\\u12\"") == BB_DIGEST_NOT_JSON, "a short \\u escape is refused");
	ok(parse("{\"a\" 1}") == BB_DIGEST_NOT_JSON, "a missing colon is refused");

	/* nesting */
	ok(nested(BB_DIGEST_MAX_DEPTH - 1) == BB_DIGEST_OK, "nesting up to the limit is accepted");
	ok(nested(BB_DIGEST_MAX_DEPTH) == BB_DIGEST_TOO_DEEP, "one level more is refused, without recursion beyond it");
	ok(nested(200) == BB_DIGEST_TOO_DEEP, "200 levels are refused");

	ok(strstr(bb_digest_status_text(BB_DIGEST_BAD_BLOCK_HASH), "block_hash") != NULL,
	   "each status has a sentence naming the member");

	return tap_done();
}
