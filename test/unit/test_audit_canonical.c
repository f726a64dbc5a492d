/*
 * test_audit_canonical.c — unit tests of the canonical audit row encodings
 * (src/audit_canonical.c).  The fixed hash vectors were computed
 * independently with Python's hashlib.blake2b(digest_size=32) over the
 * layout described in audit_canonical.h.
 */
#include <string.h>
#include <sodium.h>

#include "audit_canonical.h"
#include "merkle.h"
#include "tap.h"

static bb_audit_fields
sample_row(void)
{
	bb_audit_fields f;
	int			i;

	memset(&f, 0, sizeof(f));
	f.id = 42;
	f.occurred_at = -1;
	f.txid = ((uint64_t) 1 << 63) + 5;
	f.tenant_id = "t1";
	f.user_id = NULL;
	f.db_user = "postgres";
	f.action = "insert";
	f.resource_type = "public.t";
	f.resource_id = "";
	for (i = 0; i < BB_AUDIT_HASH_BYTES; i++)
		f.payload_hash[i] = (unsigned char) i;
	return f;
}

static size_t
leaf_of(const bb_audit_fields *f, unsigned char *buf, size_t cap)
{
	return bb_canon_leaf(buf, cap, f);
}

static int
hex_equals(const unsigned char *bin, const char *hex)
{
	char		got[2 * BB_AUDIT_HASH_BYTES + 1];

	sodium_bin2hex(got, sizeof(got), bin, BB_AUDIT_HASH_BYTES);
	return strcmp(got, hex) == 0;
}

int
main(void)
{
	unsigned char buf[512],
				other[512],
				hash[BB_HASH_BYTES];
	bb_audit_fields f = sample_row(),
				g;
	size_t		n,
				m;
	bb_bytes	none = {NULL, 0},
				empty = {"", 0},
				details = {"{\"a\": 1}", 8},
				ip = {"10.0.0.1", 8};

	if (sodium_init() < 0)
		return 2;

	/* sizing and layout of a leaf */
	n = bb_canon_leaf(NULL, 0, &f);
	ok(n == 127, "the leaf encoding of the sample row is 127 bytes (got %zu)", n);
	ok(leaf_of(&f, buf, sizeof(buf)) == n, "encoding into a large buffer returns the same length");
	ok(memcmp(buf, "bbleaf1", 7) == 0, "the leaf starts with its label");
	ok(memcmp(buf + 7, "\0\0\0\x08\0\0\0\0\0\0\0\x2a", 12) == 0,
	   "the id is a length-8 field, big-endian");
	ok(memcmp(buf + 19, "\0\0\0\x08\xff\xff\xff\xff\xff\xff\xff\xff", 12) == 0,
	   "a negative timestamp is two's complement, big-endian");
	ok(memcmp(buf + 31, "\0\0\0\x08\x80\0\0\0\0\0\0\x05", 12) == 0,
	   "a txid above 2^63 keeps all 64 bits");
	ok(memcmp(buf + 43, "\0\0\0\x02t1", 6) == 0, "text is its length then its bytes");
	ok(memcmp(buf + 49, "\xff\xff\xff\xff", 4) == 0, "NULL is the length 0xFFFFFFFF and no bytes");
	ok(memcmp(buf + 87, "\0\0\0\0", 4) == 0 && memcmp(buf + 91, "\0\0\0\x20", 4) == 0,
	   "the empty string is length 0, followed by the 32-byte payload hash field");
	bb_leaf_hash(hash, buf, n);
	ok(hex_equals(hash, "de4e1eb799633164bef2ef849ace3d7f0e6ae9f0c22b98d350a5fac2cf17532a"),
	   "the leaf hash matches the independently computed vector");

	/* a short buffer is never overrun and still reports the full length */
	memset(other, 0xAA, sizeof(other));
	ok(bb_canon_leaf(other, 10, &f) == n, "a 10-byte buffer still reports the full length");
	ok(other[10] == 0xAA && other[0] == 0xAA, "and nothing is written when it does not fit");

	/* every field matters, and field boundaries cannot be shifted */
	g = f;
	g.user_id = "";
	ok(leaf_of(&g, other, sizeof(other)) != n || memcmp(buf, other, n) != 0,
	   "NULL and the empty string encode differently");
	g = f;
	g.tenant_id = "t";
	g.user_id = "1";
	m = leaf_of(&g, other, sizeof(other));
	ok(m != n || memcmp(buf, other, n) != 0, "moving a byte from one field to the next changes the encoding");
	g = f;
	g.payload_hash[31] ^= 1;
	leaf_of(&g, other, sizeof(other));
	ok(memcmp(buf, other, n) != 0, "a changed payload hash changes the leaf");
	g = f;
	g.id = 43;
	leaf_of(&g, other, sizeof(other));
	ok(memcmp(buf, other, n) != 0, "a changed id changes the leaf");

	/* payload */
	n = bb_canon_payload(buf, sizeof(buf), details, ip, none);
	ok(n == 10 + 12 + 12 + 4, "the payload encoding is label + three fields (got %zu)", n);
	ok(memcmp(buf, "bbpayload1\0\0\0\x08{\"a\": 1}", 22) == 0, "details come first, as text");
	bb_payload_hash(hash, buf, n);
	ok(hex_equals(hash, "169fca25fad9bfbee7b570676981d99e38b3b3cf42704a7b75ea04fb16bafcb0"),
	   "the payload hash matches the independently computed vector");
	m = bb_canon_payload(other, sizeof(other), details, ip, empty);
	ok(m == n && memcmp(buf, other, n) != 0, "a NULL user agent differs from an empty one");
	m = bb_canon_payload(other, sizeof(other), none, none, none);
	ok(m == 10 + 12, "an all-NULL payload is the label and three NULL markers");

	return tap_done();
}
