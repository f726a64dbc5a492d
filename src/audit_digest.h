/*
 * audit_digest.h — checking the values of an audit digest (the object that
 * brandbos.audit_digest() returns and users keep outside the database),
 * free of PostgreSQL headers so it can be unit-tested and fuzzed.
 *
 * The digest reaches brandbos as jsonb, already parsed by PostgreSQL; the
 * caller (audit_verify.c) looks its members up and hands their values here
 * as text with their JSON kind.  Rules: "format" is the string
 * BB_DIGEST_FORMAT; "chain_id" and "block_hash" are strings of 64
 * hexadecimal characters; "block_id" is a number written without sign,
 * fraction or exponent, from 1 to 2^63 - 1; "signature" (128 hex) and
 * "public_key" (64 hex) are optional, but strings of the right length when
 * present.  Values are untrusted: nothing is read past the given lengths.
 */
#ifndef BRANDBOS_AUDIT_DIGEST_H
#define BRANDBOS_AUDIT_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define BB_DIGEST_FORMAT "brandbos-audit-digest-1"
#define BB_DIGEST_MAX_DEPTH 32	/* nesting allowed in members brandbos does not read */

typedef enum bb_digest_status
{
	BB_DIGEST_OK = 0,
	BB_DIGEST_TOO_DEEP,
	BB_DIGEST_NOT_OBJECT,
	BB_DIGEST_BAD_FORMAT,
	BB_DIGEST_BAD_CHAIN_ID,
	BB_DIGEST_BAD_BLOCK_ID,
	BB_DIGEST_BAD_BLOCK_HASH,
	BB_DIGEST_BAD_SIGNATURE,
	BB_DIGEST_BAD_PUBLIC_KEY
} bb_digest_status;

/* the JSON kind of a member's value */
typedef enum bb_json_kind
{
	BB_JSON_ABSENT = 0,
	BB_JSON_STRING,
	BB_JSON_NUMBER,				/* text: the number as PostgreSQL prints it */
	BB_JSON_OTHER				/* true, false, null, array or object */
} bb_json_kind;

typedef struct bb_json_member
{
	bb_json_kind kind;
	const char *text;			/* STRING and NUMBER only; not NUL-terminated */
	size_t		len;
} bb_json_member;

/* the members brandbos reads, as found in the digest */
typedef struct bb_digest_members
{
	bb_json_member format;
	bb_json_member chain_id;
	bb_json_member block_id;
	bb_json_member block_hash;
	bb_json_member signature;
	bb_json_member public_key;
} bb_digest_members;

typedef struct bb_digest
{
	int64_t		block_id;
	unsigned char chain_id[32];
	unsigned char block_hash[32];
	int			has_signature;
	unsigned char signature[64];	/* Ed25519 over block_hash */
	int			has_public_key;
	unsigned char public_key[32];
} bb_digest;

/* check the members and decode them into *out (zeroed first) */
extern bb_digest_status bb_digest_check(const bb_digest_members *in, bb_digest *out);

/* one sentence saying what is wrong, for error details */
extern const char *bb_digest_status_text(bb_digest_status status);

#endif							/* BRANDBOS_AUDIT_DIGEST_H */
