/*
 * audit_canonical.h — the canonical bytes an audit row is hashed over,
 * free of PostgreSQL headers (so it is unit-tested and fuzzed on its own).
 *
 * Two encodings, each a label followed by fields.  A field is a 4-byte
 * big-endian length and that many bytes; SQL NULL is the length 0xFFFFFFFF
 * with no bytes, so NULL and the empty string differ and no two field lists
 * share an encoding.  Integers are fields of 8 big-endian bytes.
 *
 *   leaf     "bbleaf1", id, occurred_at (microseconds since 2000-01-01 UTC),
 *            txid, tenant_id, user_id, db_user, action, resource_type,
 *            resource_id, payload_hash (32 bytes)
 *   payload  "bbpayload1", details (jsonb text), ip_address (inet text),
 *            user_agent
 *
 * The payload (the columns a GDPR redaction may clear) enters the leaf only
 * through its hash, so clearing it keeps the leaf and the chain intact.
 */
#ifndef BRANDBOS_AUDIT_CANONICAL_H
#define BRANDBOS_AUDIT_CANONICAL_H

#include <stddef.h>
#include <stdint.h>

#define BB_AUDIT_HASH_BYTES 32
#define BB_CANON_NULL_LENGTH 0xFFFFFFFFu

/* a byte string; data == NULL means SQL NULL */
typedef struct bb_bytes
{
	const char *data;
	size_t		len;
} bb_bytes;

/* the hashed columns of one audit row; NULL strings are SQL NULLs */
typedef struct bb_audit_fields
{
	int64_t		id;
	int64_t		occurred_at;
	uint64_t	txid;
	const char *tenant_id;
	const char *user_id;
	const char *db_user;
	const char *action;
	const char *resource_type;
	const char *resource_id;
	unsigned char payload_hash[BB_AUDIT_HASH_BYTES];
} bb_audit_fields;

/*
 * Encode into out (capacity cap).  Both return the encoding's full length;
 * they write only when it fits (call with out = NULL, cap = 0 to size a
 * buffer).  (size_t) -1 when a field is longer than 4 GiB - 2.
 */
extern size_t bb_canon_leaf(unsigned char *out, size_t cap, const bb_audit_fields *f);
extern size_t bb_canon_payload(unsigned char *out, size_t cap, bb_bytes details,
							   bb_bytes ip_address, bb_bytes user_agent);

/* the payload hash: BLAKE2b-256 of the payload encoding */
extern void bb_payload_hash(unsigned char *out, const unsigned char *encoding, size_t len);

#endif							/* BRANDBOS_AUDIT_CANONICAL_H */
