/*
 * audit_digest.h — reading an audit digest (the JSON object that
 * brandbos.audit_digest() returns and users keep outside the database),
 * free of PostgreSQL headers so it can be unit-tested and fuzzed.
 *
 * The input is untrusted text: a complete JSON document (RFC 8259) whose
 * top level must be an object.  Members read: "format" (must be
 * BB_DIGEST_FORMAT), "chain_id" and "block_hash" (64 hexadecimal
 * characters each), "block_id" (a positive integer without fraction or
 * exponent), and, when present, "signature" (128 hex) and "public_key"
 * (64 hex).  Other members are skipped after a syntax check; a member
 * named twice is refused (its meaning would be ambiguous).  Nesting is
 * limited to BB_DIGEST_MAX_DEPTH levels.
 */
#ifndef BRANDBOS_AUDIT_DIGEST_H
#define BRANDBOS_AUDIT_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define BB_DIGEST_FORMAT "brandbos-audit-digest-1"
#define BB_DIGEST_MAX_DEPTH 32

typedef enum bb_digest_status
{
	BB_DIGEST_OK = 0,
	BB_DIGEST_NOT_JSON,			/* syntax error, or bytes after the document */
	BB_DIGEST_TOO_DEEP,
	BB_DIGEST_NOT_OBJECT,
	BB_DIGEST_DUPLICATE_MEMBER,
	BB_DIGEST_BAD_FORMAT,
	BB_DIGEST_BAD_CHAIN_ID,
	BB_DIGEST_BAD_BLOCK_ID,
	BB_DIGEST_BAD_BLOCK_HASH,
	BB_DIGEST_BAD_SIGNATURE,
	BB_DIGEST_BAD_PUBLIC_KEY
} bb_digest_status;

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

/* parse len bytes of json (need not be NUL-terminated) into *out */
extern bb_digest_status bb_digest_parse(const char *json, size_t len, bb_digest *out);

/* one sentence saying what is wrong, for error details */
extern const char *bb_digest_status_text(bb_digest_status status);

#endif							/* BRANDBOS_AUDIT_DIGEST_H */
