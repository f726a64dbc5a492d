/*
 * test_envelope.c — unit tests of the envelope codec (src/envelope.c).
 *
 * Format 2 (what brandbos writes): round trip, every header byte
 * authenticated, the user and column domains apart, equality with
 * libsodium's AEAD over header || domain || ad, fixed vectors.  Format 1
 * (written before format 2): fixed vectors made by the format-1 codec still
 * open, and its label rule keeps column bindings out of the user domain.
 */
#include <string.h>
#include <sodium.h>

#include "envelope.h"
#include "tap.h"

static unsigned char key[BB_ENV_KEY_BYTES];
static unsigned char nonce[BB_ENV_NONCE_BYTES];
/* work space for associated data (the tests use at most 64 bytes of it) */
static unsigned char ad_space[BB_ENV_AD_PREFIX_BYTES + 256];

static size_t
seal(unsigned char *out, const char *plain, bb_env_domain domain, const char *ad,
	 uint32_t version)
{
	bb_env_seal(out, (const unsigned char *) plain, strlen(plain), domain,
				(const unsigned char *) ad, strlen(ad), ad_space, version, nonce, key);
	return bb_env_sealed_size(strlen(plain));
}

static bb_env_status
parse_open(unsigned char *plain, const unsigned char *in, size_t len,
		   bb_env_domain domain, const char *ad, const unsigned char *k)
{
	bb_envelope env;
	bb_env_status st = bb_env_parse(in, len, &env);

	if (st != BB_ENV_OK)
		return st;
	return bb_env_open(plain, &env, domain, (const unsigned char *) ad, strlen(ad), ad_space, k);
}

static size_t
from_hex(unsigned char *out, const char *hex)
{
	size_t		n = strlen(hex) / 2,
				i;

	for (i = 0; i < n; i++)
	{
		unsigned int b;

		sscanf(hex + 2 * i, "%2x", &b);
		out[i] = (unsigned char) b;
	}
	return n;
}

/*
 * Fixed vectors.  key = 00 01 .. 1f, nonce = 40 41 .. 57, key version 3,
 * associated data "where".  The format-1 ones were made by the format-1
 * codec (brandbos before format 2); the format-2 ones equal libsodium's
 * crypto_aead_xchacha20poly1305_ietf_encrypt with associated data
 * header || domain || "where" (checked below as well).
 */
#define V1_PLAIN "brandbos format 1"
#define V1_HEX \
	"bb780100000003404142434445464748494a4b4c4d4e4f5051525354555657" \
	"b64b641eb4821665af92e8ccc2fd11b2a346b9e7fc74a535fe4eedb22fecde4865"
#define V1_TEXT \
	"bbx1:u3gBAAAAA0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV7ZLZB60ghZlr5LozML9EbKjRrnn_HSlNf5O7bIv7N5IZQ"
/* empty plaintext, empty associated data, key version 1 */
#define V1_EMPTY_HEX \
	"bb780100000001404142434445464748494a4b4c4d4e4f505152535455565761d8489bd58cfbe3ec6d5913671c3779"
#define V2_PLAIN "brandbos format 2"
#define V2_USER_HEX \
	"bb780200000003404142434445464748494a4b4c4d4e4f5051525354555657" \
	"b64b641eb4821665af92e8ccc2fd11b2a07e9bb0d3b304292a28bb16c6611d8ada"
#define V2_COLUMN_HEX \
	"bb780200000003404142434445464748494a4b4c4d4e4f5051525354555657" \
	"b64b641eb4821665af92e8ccc2fd11b2a0af9aafd518edc2541a49af85953b0117"

static void
test_vectors(void)
{
	unsigned char vkey[BB_ENV_KEY_BYTES],
				vnonce[BB_ENV_NONCE_BYTES],
				buf[256],
				mine[256],
				plain[256];
	size_t		len,
				i;
	bb_envelope env;

	for (i = 0; i < sizeof(vkey); i++)
		vkey[i] = (unsigned char) i;
	for (i = 0; i < sizeof(vnonce); i++)
		vnonce[i] = (unsigned char) (0x40 + i);

	/* format 1 still opens, in both domains (the label rule aside) */
	len = from_hex(buf, V1_HEX);
	ok(bb_env_parse(buf, len, &env) == BB_ENV_OK && env.format == 1 && env.key_version == 3,
	   "format-1 vector parses: format 1, key version 3");
	ok(bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, (const unsigned char *) "where", 5, ad_space, vkey) == BB_ENV_OK &&
	   memcmp(plain, V1_PLAIN, strlen(V1_PLAIN)) == 0,
	   "format-1 vector opens in the user domain (brandbos.decrypt)");
	ok(bb_env_open(plain, &env, BB_ENV_DOMAIN_COLUMN, (const unsigned char *) "where", 5, ad_space, vkey) == BB_ENV_OK &&
	   memcmp(plain, V1_PLAIN, strlen(V1_PLAIN)) == 0,
	   "format-1 vector opens in the column domain (stored column values)");
	ok(bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, (const unsigned char *) "where?", 6, ad_space, vkey) == BB_ENV_FORGED,
	   "format-1 vector refuses other associated data");
	{
		unsigned char bin[256];
		size_t		bin_len;

		ok(bb_env_from_text(bin, sizeof(bin), &bin_len, V1_TEXT, strlen(V1_TEXT)) == BB_ENV_OK &&
		   bin_len == len && memcmp(bin, buf, len) == 0,
		   "format-1 printable vector decodes to the binary vector");
	}
	len = from_hex(buf, V1_EMPTY_HEX);
	ok(bb_env_parse(buf, len, &env) == BB_ENV_OK &&
	   bb_env_open(NULL, &env, BB_ENV_DOMAIN_COLUMN, NULL, 0, ad_space, vkey) == BB_ENV_OK,
	   "format-1 empty vector opens");

	/* format 2 vectors, and they are libsodium's AEAD over header || domain || ad */
	memcpy(nonce, vnonce, sizeof(nonce));
	memcpy(key, vkey, sizeof(key));
	len = seal(mine, V2_PLAIN, BB_ENV_DOMAIN_USER, "where", 3);
	ok(len == from_hex(buf, V2_USER_HEX) && memcmp(mine, buf, len) == 0,
	   "format-2 user-domain vector");
	len = seal(mine, V2_PLAIN, BB_ENV_DOMAIN_COLUMN, "where", 3);
	ok(len == from_hex(buf, V2_COLUMN_HEX) && memcmp(mine, buf, len) == 0,
	   "format-2 column-domain vector");
	{
		unsigned char ad[BB_ENV_HEADER_BYTES + 1 + 5],
					ref[256];
		unsigned long long ref_len;

		memcpy(ad, buf, BB_ENV_HEADER_BYTES);
		ad[BB_ENV_HEADER_BYTES] = 'C';
		memcpy(ad + BB_ENV_HEADER_BYTES + 1, "where", 5);
		crypto_aead_xchacha20poly1305_ietf_encrypt(ref, &ref_len, (const unsigned char *) V2_PLAIN,
												   strlen(V2_PLAIN), ad, sizeof(ad), NULL, vnonce, vkey);
		ok(ref_len + BB_ENV_HEADER_BYTES == len &&
		   memcmp(ref, buf + BB_ENV_HEADER_BYTES, ref_len) == 0,
		   "format-2 vector equals libsodium's AEAD with associated data header || 'C' || ad");
	}
	ok(parse_open(plain, buf, len, BB_ENV_DOMAIN_COLUMN, "where", vkey) == BB_ENV_OK &&
	   memcmp(plain, V2_PLAIN, strlen(V2_PLAIN)) == 0, "format-2 vector opens");
}

int
main(void)
{
	unsigned char env_buf[256],
				plain[256],
				bin[256];
	char		text[512];
	bb_envelope env;
	size_t		len,
				bin_len,
				i;

	if (sodium_init() < 0)
		return 2;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(nonce, sizeof(nonce));

	/* round trip */
	len = seal(env_buf, "refresh-token", BB_ENV_DOMAIN_USER, "ad", 7);
	ok(len == 47 + 13, "sealed size is header + tag + plaintext");
	ok(env_buf[0] == 0xBB && env_buf[1] == 0x78 && env_buf[2] == 2, "magic and format byte 2");
	ok(bb_env_parse(env_buf, len, &env) == BB_ENV_OK, "parse a fresh envelope");
	ok(env.format == 2 && env.key_version == 7, "format and key version survive the round trip");
	ok(memcmp(env.nonce, nonce, sizeof(nonce)) == 0 && env.header == env_buf,
	   "nonce is stored in the header");
	ok(bb_env_plain_size(&env) == 13, "plain size from the envelope");
	ok(bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, (const unsigned char *) "ad", 2, ad_space, key) == BB_ENV_OK &&
	   memcmp(plain, "refresh-token", 13) == 0, "open returns the plaintext");

	/* authentication */
	ok(bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, (const unsigned char *) "AD", 2, ad_space, key) == BB_ENV_FORGED,
	   "other associated data is refused");
	ok(bb_env_open(plain, &env, BB_ENV_DOMAIN_COLUMN, (const unsigned char *) "ad", 2, ad_space, key) == BB_ENV_FORGED,
	   "a user-domain envelope does not open in the column domain");
	env_buf[len - 1] ^= 1;
	ok(bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, (const unsigned char *) "ad", 2, ad_space, key) == BB_ENV_FORGED,
	   "a flipped tag bit is refused");
	env_buf[len - 1] ^= 1;
	env_buf[BB_ENV_HEADER_BYTES] ^= 0x80;
	ok(bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, (const unsigned char *) "ad", 2, ad_space, key) == BB_ENV_FORGED,
	   "a flipped ciphertext bit is refused");
	env_buf[BB_ENV_HEADER_BYTES] ^= 0x80;
	{
		unsigned char other[BB_ENV_KEY_BYTES];

		randombytes_buf(other, sizeof(other));
		ok(bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, (const unsigned char *) "ad", 2, ad_space, other) == BB_ENV_FORGED,
		   "another key is refused");
	}

	/* every header byte is authenticated: each single-bit flip fails (same key) */
	{
		int			all_fail = 1,
					version_authenticated = 1;
		int			bit;

		for (i = 0; i < BB_ENV_HEADER_BYTES; i++)
			for (bit = 0; bit < 8; bit++)
			{
				env_buf[i] ^= (unsigned char) (1 << bit);
				if (parse_open(plain, env_buf, len, BB_ENV_DOMAIN_USER, "ad", key) == BB_ENV_OK)
					all_fail = 0;
				env_buf[i] ^= (unsigned char) (1 << bit);
			}
		/* the key version alone: parses fine, the tag refuses it */
		for (i = 3; i < 7; i++)
		{
			env_buf[i] ^= 1;
			if (bb_env_parse(env_buf, len, &env) != BB_ENV_OK ||
				bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, (const unsigned char *) "ad", 2, ad_space, key) != BB_ENV_FORGED)
				version_authenticated = 0;
			env_buf[i] ^= 1;
		}
		ok(all_fail, "format 2: a flip of any of the 248 header bits fails (parse or tag)");
		ok(version_authenticated, "format 2: a changed key version parses but does not authenticate");
		env_buf[2] = 1;
		ok(bb_env_parse(env_buf, len, &env) == BB_ENV_OK && env.format == 1 &&
		   bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, (const unsigned char *) "ad", 2, ad_space, key) == BB_ENV_FORGED,
		   "format 2 relabelled as format 1 does not open");
		env_buf[2] = 2;
		ok(parse_open(plain, env_buf, len, BB_ENV_DOMAIN_USER, "ad", key) == BB_ENV_OK,
		   "the untouched envelope still opens after the flips");
	}

	/* domains: no caller bytes make a user envelope open as a column one */
	{
		int			apart = 1;
		unsigned char ad[64];
		size_t		n;

		for (n = 0; n < sizeof(ad); n++)
		{
			randombytes_buf(ad, n);
			memcpy(ad, "bbad1", n < 5 ? n : 5);
			bb_env_seal(env_buf, (const unsigned char *) "x", 1, BB_ENV_DOMAIN_USER, ad, n, ad_space, 1, nonce, key);
			if (bb_env_parse(env_buf, 48, &env) != BB_ENV_OK ||
				bb_env_open(plain, &env, BB_ENV_DOMAIN_COLUMN, ad, n, ad_space, key) != BB_ENV_FORGED ||
				bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, ad, n, ad_space, key) != BB_ENV_OK)
				apart = 0;
			bb_env_seal(env_buf, (const unsigned char *) "x", 1, BB_ENV_DOMAIN_COLUMN, ad, n, ad_space, 1, nonce, key);
			if (bb_env_parse(env_buf, 48, &env) != BB_ENV_OK ||
				bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, ad, n, ad_space, key) != BB_ENV_FORGED ||
				bb_env_open(plain, &env, BB_ENV_DOMAIN_COLUMN, ad, n, ad_space, key) != BB_ENV_OK)
				apart = 0;
		}
		ok(apart, "format 2: user and column domains never open each other's envelopes");
	}

	/* format 1: header not authenticated, but the label rule separates the domains */
	{
		unsigned char ad[40],
					ct[64];
		unsigned long long ct_len;

		memcpy(ad, "bbad1", 5);
		randombytes_buf(ad + 5, sizeof(ad) - 5);
		env_buf[0] = 0xBB, env_buf[1] = 0x78, env_buf[2] = 1;
		memset(env_buf + 3, 0, 3), env_buf[6] = 5;
		memcpy(env_buf + 7, nonce, sizeof(nonce));
		crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ct_len, (const unsigned char *) "secret", 6,
												   ad, sizeof(ad), NULL, nonce, key);
		memcpy(env_buf + BB_ENV_HEADER_BYTES, ct, ct_len);
		len = BB_ENV_HEADER_BYTES + ct_len;
		ok(bb_env_parse(env_buf, len, &env) == BB_ENV_OK && env.format == 1 &&
		   bb_env_open(plain, &env, BB_ENV_DOMAIN_COLUMN, ad, sizeof(ad), ad_space, key) == BB_ENV_OK &&
		   memcmp(plain, "secret", 6) == 0,
		   "format 1 (sealed by libsodium as brandbos did) opens in the column domain");
		ok(bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, ad, sizeof(ad), ad_space, key) == BB_ENV_FORGED,
		   "format 1: a column binding (\"bbad1\"...) as user associated data does not open");
		ok(bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, ad, 4, ad_space, key) == BB_ENV_FORGED,
		   "format 1: a shorter prefix of it does not either (different bytes)");
		env_buf[6] = 6;
		ok(bb_env_parse(env_buf, len, &env) == BB_ENV_OK && env.key_version == 6 &&
		   bb_env_open(plain, &env, BB_ENV_DOMAIN_COLUMN, ad, sizeof(ad), ad_space, key) == BB_ENV_OK,
		   "format 1 leaves its header unauthenticated: a changed key version still opens (why format 2 exists)");
	}

	/* framing errors */
	len = seal(env_buf, "refresh-token", BB_ENV_DOMAIN_USER, "ad", 7);
	ok(bb_env_parse(env_buf, 0, &env) == BB_ENV_BAD_MAGIC, "empty input: bad magic");
	ok(bb_env_parse(env_buf, 1, &env) == BB_ENV_BAD_MAGIC, "one byte: bad magic");
	ok(bb_env_parse(env_buf, 46, &env) == BB_ENV_TOO_SHORT, "46 bytes: too short");
	/*
	 * a hand-built envelope shorter than its tag (bb_env_parse refuses
	 * these): refused, not a wrapped ciphertext length on the short path
	 */
	{
		bb_envelope short_env;
		unsigned char opened[64],
					space[BB_ENV_AD_PREFIX_BYTES + 8];
		size_t		s;
		int			refused = 1;

		(void) bb_env_parse(env_buf, len, &short_env);
		for (s = 0; s < BB_ENV_TAG_BYTES; s++)
		{
			short_env.sealed_len = s;
			if (bb_env_open(opened, &short_env, BB_ENV_DOMAIN_USER,
							(const unsigned char *) "ad", 2, space, key) != BB_ENV_TOO_SHORT)
				refused = 0;
		}
		ok(refused, "an envelope struct with fewer sealed bytes than a tag: too short, for 0..15");
	}
	ok(bb_env_parse((const unsigned char *) "hello world, this is not an envelope at all....", 47, &env) == BB_ENV_BAD_MAGIC,
	   "plaintext: bad magic");
	env_buf[2] = 3;
	ok(bb_env_parse(env_buf, len, &env) == BB_ENV_BAD_FORMAT, "format 3: unsupported");
	env_buf[2] = 0;
	ok(bb_env_parse(env_buf, len, &env) == BB_ENV_BAD_FORMAT, "format 0: unsupported");
	env_buf[2] = 2;
	memset(env_buf + 3, 0, 4);
	ok(bb_env_parse(env_buf, len, &env) == BB_ENV_BAD_KEY_VERSION, "key version 0 is refused");
	env_buf[3] = 0x80;
	ok(bb_env_parse(env_buf, len, &env) == BB_ENV_BAD_KEY_VERSION, "key version 2^31 is refused");
	memset(env_buf + 3, 0xFF, 4);
	ok(bb_env_parse(env_buf, len, &env) == BB_ENV_BAD_KEY_VERSION, "key version 2^32-1 is refused");
	len = seal(env_buf, "top", BB_ENV_DOMAIN_USER, "", BB_ENV_KEY_VERSION_MAX);
	ok(bb_env_parse(env_buf, len, &env) == BB_ENV_OK && env.key_version == 0x7FFFFFFFu &&
	   bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, NULL, 0, ad_space, key) == BB_ENV_OK,
	   "key version 2^31-1 is the largest and works");

	/* empty plaintext */
	len = seal(env_buf, "", BB_ENV_DOMAIN_COLUMN, "", 1);
	ok(len == 47, "empty plaintext seals to 47 bytes");
	ok(bb_env_parse(env_buf, len, &env) == BB_ENV_OK &&
	   bb_env_open(NULL, &env, BB_ENV_DOMAIN_COLUMN, NULL, 0, ad_space, key) == BB_ENV_OK,
	   "empty plaintext opens");

	/* printable form */
	len = seal(env_buf, "printable", BB_ENV_DOMAIN_USER, "x", 3);
	bb_env_to_text(text, env_buf, len);
	ok(strncmp(text, "bbx1:u3gC", 9) == 0, "printable form of format 2 starts with bbx1:u3gC");
	ok(strlen(text) == bb_env_text_size(len), "printable size is exact");
	ok(strspn(text + 5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(text) - 5,
	   "printable form is base64url without padding");
	ok(bb_env_from_text(bin, sizeof(bin), &bin_len, text, strlen(text)) == BB_ENV_OK &&
	   bin_len == len && memcmp(bin, env_buf, len) == 0, "printable form decodes to the same bytes");
	ok(bb_env_text_has_prefix(text, strlen(text)) && !bb_env_text_has_prefix("bbx", 3),
	   "prefix check");
	ok(bb_env_from_text(bin, sizeof(bin), &bin_len, "bbx1:***", 8) == BB_ENV_BAD_ENCODING,
	   "bad base64url is refused");
	ok(bb_env_from_text(bin, sizeof(bin), &bin_len, "bbx2:AAAA", 9) == BB_ENV_BAD_ENCODING,
	   "another prefix is refused");
	ok(bb_env_from_text(bin, 4, &bin_len, text, strlen(text)) == BB_ENV_BAD_ENCODING,
	   "a too-small output buffer is refused, not overrun");
	/* the codec agrees with libsodium's reference base64url for every length */
	{
		int			agree = 1,
					roundtrip = 1;
		size_t		n;

		for (n = 0; n <= 100; n++)
		{
			unsigned char raw[100],
						back[100];
			char		mine[200],
						ref[200];
			size_t		back_len = 0;

			randombytes_buf(raw, n);
			bb_env_to_text(mine, raw, n);
			sodium_bin2base64(ref, sizeof(ref), raw, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
			if (strcmp(mine + 5, ref) != 0 || strlen(mine) != bb_env_text_size(n))
				agree = 0;
			if (bb_env_from_text(back, sizeof(back), &back_len, mine, strlen(mine)) != BB_ENV_OK ||
				back_len != n || memcmp(back, raw, n) != 0)
				roundtrip = 0;
		}
		ok(agree, "base64url output equals libsodium's for lengths 0..100");
		ok(roundtrip, "decode(encode(x)) == x for lengths 0..100");
	}
	/*
	 * bb_env_seal and bb_env_open compose the AEAD themselves for short
	 * values: for every plaintext length across that limit and several
	 * associated-data lengths the seal must be libsodium's bytes, the open
	 * must give libsodium's plaintext and refuse a flipped bit in the
	 * ciphertext, the tag, the nonce or the associated data.
	 */
	{
		static unsigned char plain[1400],
					sealed[1400 + BB_ENV_OVERHEAD],
					opened[1400],
					reference[1400 + BB_ENV_TAG_BYTES],
					space[BB_ENV_AD_PREFIX_BYTES + 64],
					ad[64];
		unsigned char saved_nonce[BB_ENV_NONCE_BYTES];
		int			same = 1,
					refused = 1;
		size_t		n,
					a;

		memcpy(saved_nonce, nonce, sizeof(nonce));
		for (n = 0; n <= 1300; n++)
			for (a = 0; a <= 63; a += 9)
			{
				bb_envelope e;
				size_t		len = bb_env_sealed_size(n);
				size_t		full_len;

				randombytes_buf(plain, n);
				randombytes_buf(ad, a);
				randombytes_buf(nonce, sizeof(nonce));
				bb_env_seal(sealed, plain, n, BB_ENV_DOMAIN_COLUMN, ad, a, space, 7, nonce, key);
				full_len = BB_ENV_AD_PREFIX_BYTES + a;
				/* sealing: the same bytes as libsodium's AEAD */
				crypto_aead_xchacha20poly1305_ietf_encrypt_detached(reference, reference + n, NULL,
																	plain, n, space, full_len,
																	NULL, nonce, key);
				if (memcmp(reference, sealed + BB_ENV_HEADER_BYTES, n + BB_ENV_TAG_BYTES) != 0)
					same = 0;
				if (bb_env_parse(sealed, len, &e) != BB_ENV_OK ||
					bb_env_open(opened, &e, BB_ENV_DOMAIN_COLUMN, ad, a, space, key) != BB_ENV_OK ||
					crypto_aead_xchacha20poly1305_ietf_decrypt_detached(reference, NULL, e.sealed, n,
																		e.sealed + n, space, full_len,
																		e.nonce, key) != 0 ||
					memcmp(opened, plain, n) != 0 || memcmp(reference, plain, n) != 0)
					same = 0;
				if (n > 0)
				{
					sealed[BB_ENV_HEADER_BYTES + n / 2] ^= 0x01;
					if (bb_env_open(opened, &e, BB_ENV_DOMAIN_COLUMN, ad, a, space, key) != BB_ENV_FORGED)
						refused = 0;
					sealed[BB_ENV_HEADER_BYTES + n / 2] ^= 0x01;
				}
				sealed[len - 1 - n % 16] ^= 0x80;
				if (bb_env_open(opened, &e, BB_ENV_DOMAIN_COLUMN, ad, a, space, key) != BB_ENV_FORGED)
					refused = 0;
				sealed[len - 1 - n % 16] ^= 0x80;
				sealed[7 + n % 24] ^= 0x04;
				if (bb_env_open(opened, &e, BB_ENV_DOMAIN_COLUMN, ad, a, space, key) != BB_ENV_FORGED)
					refused = 0;
				sealed[7 + n % 24] ^= 0x04;
				if (a > 0)
				{
					ad[a - 1] ^= 0x10;
					if (bb_env_open(opened, &e, BB_ENV_DOMAIN_COLUMN, ad, a, space, key) != BB_ENV_FORGED)
						refused = 0;
					ad[a - 1] ^= 0x10;
				}
				if (bb_env_open(opened, &e, BB_ENV_DOMAIN_USER, ad, a, space, key) != BB_ENV_FORGED)
					refused = 0;
			}
		memcpy(nonce, saved_nonce, sizeof(nonce));
		ok(same, "sealing gives libsodium's bytes and opening its plaintext, every length 0..1300, AD lengths 0..63");
		ok(refused, "a flipped bit in ciphertext, tag, nonce or AD, or the other domain, is refused at every length");
	}
	/* every byte value in every position: accepted exactly when libsodium accepts it (ASCII) */
	{
		int			same = 1;
		int			pos,
					c;

		for (pos = 0; pos < 11; pos++)
			for (c = 0; c < 256; c++)
			{
				char		t[17] = "bbx1:QUJDREVGR0g";	/* "ABCDEFGH" */
				unsigned char mine[16],
							ref[16];
				size_t		mine_len = 0,
							ref_len = 0;
				int			mine_ok,
							ref_ok;

				t[5 + pos] = (char) c;
				mine_ok = bb_env_from_text(mine, sizeof(mine), &mine_len, t, 16) == BB_ENV_OK;
				/* libsodium 1.0.18 lets some bytes >= 0x80 through; base64url has none */
				ref_ok = c < 128 &&
					sodium_base642bin(ref, sizeof(ref), t + 5, 11, NULL, &ref_len, NULL,
									  sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
					ref_len == 8;
				if (mine_ok != ref_ok || (mine_ok && (mine_len != 8 || memcmp(mine, ref, 8) != 0)))
					same = 0;
			}
		ok(same, "base64url decoding accepts and refuses what libsodium's does, any byte in any place");
	}
	ok(bb_env_from_text(bin, sizeof(bin), &bin_len, "bbx1:AB", 7) == BB_ENV_BAD_ENCODING,
	   "non-canonical trailing bits (2 chars) are refused");
	ok(bb_env_from_text(bin, sizeof(bin), &bin_len, "bbx1:AAB", 8) == BB_ENV_BAD_ENCODING,
	   "non-canonical trailing bits (3 chars) are refused");
	ok(bb_env_from_text(bin, sizeof(bin), &bin_len, "bbx1:AAAAA", 10) == BB_ENV_BAD_ENCODING,
	   "a single trailing character is refused");
	ok(bb_env_from_text(bin, sizeof(bin), &bin_len, "bbx1:AA==", 9) == BB_ENV_BAD_ENCODING,
	   "padding is refused");
	ok(bb_env_from_text(bin, sizeof(bin), &bin_len, "bbx1:", 5) == BB_ENV_OK && bin_len == 0,
	   "an empty payload decodes to nothing (and fails later as too short)");

	/*
	 * The envelope is libsodium's XChaCha20-Poly1305-IETF, byte for byte,
	 * with associated data header || domain || ad (format 2) or ad
	 * (format 1), for values from 0 to 9000 bytes.
	 */
	{
		int			same = 1,
					interop = 1,
					v1_interop = 1;
		size_t		n;
		static unsigned char msg[9000],
					mine[9100],
					ref[9100],
					back[9000],
					full_ad[BB_ENV_HEADER_BYTES + 1 + 38];

		for (n = 0; n <= 9000; n += (n < 300 ? 1 : (n < 4000 ? 397 : 97)))
		{
			unsigned long long ref_len;
			unsigned char ad2[37];
			size_t		ad_len = n % 38;
			bb_env_domain domain = n % 2 ? BB_ENV_DOMAIN_USER : BB_ENV_DOMAIN_COLUMN;
			bb_envelope e;

			randombytes_buf(msg, n);
			randombytes_buf(ad2, sizeof(ad2));
			ad2[0] = 'x';		/* never the column label */
			randombytes_buf(nonce, sizeof(nonce));
			bb_env_seal(mine, msg, n, domain, ad2, ad_len, ad_space, 9, nonce, key);
			memcpy(full_ad, mine, BB_ENV_HEADER_BYTES);
			full_ad[BB_ENV_HEADER_BYTES] = (unsigned char) domain;
			memcpy(full_ad + BB_ENV_HEADER_BYTES + 1, ad2, ad_len);
			crypto_aead_xchacha20poly1305_ietf_encrypt(ref, &ref_len, msg, n, full_ad,
													   BB_ENV_HEADER_BYTES + 1 + ad_len,
													   NULL, nonce, key);
			if (ref_len != n + 16 || memcmp(mine + BB_ENV_HEADER_BYTES, ref, ref_len) != 0)
				same = 0;
			if (bb_env_parse(mine, bb_env_sealed_size(n), &e) != BB_ENV_OK ||
				bb_env_open(back, &e, domain, ad2, ad_len, ad_space, key) != BB_ENV_OK ||
				memcmp(back, msg, n) != 0)
				interop = 0;
			mine[BB_ENV_HEADER_BYTES + n / 2] ^= 4;
			if (bb_env_open(back, &e, domain, ad2, ad_len, ad_space, key) != BB_ENV_FORGED)
				interop = 0;

			/* format 1: libsodium's AEAD over ad alone, opened by the codec */
			crypto_aead_xchacha20poly1305_ietf_encrypt(mine + BB_ENV_HEADER_BYTES, &ref_len, msg, n,
													   ad2, ad_len, NULL, nonce, key);
			mine[2] = 1;
			if (bb_env_parse(mine, bb_env_sealed_size(n), &e) != BB_ENV_OK ||
				bb_env_open(back, &e, domain, ad2, ad_len, ad_space, key) != BB_ENV_OK ||
				memcmp(back, msg, n) != 0)
				v1_interop = 0;
			mine[BB_ENV_HEADER_BYTES + n / 2] ^= 4;
			if (bb_env_open(back, &e, domain, ad2, ad_len, ad_space, key) != BB_ENV_FORGED)
				v1_interop = 0;
		}
		ok(same, "format-2 sealing equals libsodium's AEAD over header || domain || ad, 0..9000 bytes");
		ok(interop, "format 2: what is sealed opens, and any flipped bit is refused, 0..9000 bytes");
		ok(v1_interop, "format 1: libsodium's AEAD over ad opens, and a flipped bit is refused, 0..9000 bytes");
	}
	ok(strcmp(bb_env_status_text(BB_ENV_FORGED), "envelope does not authenticate") == 0,
	   "status texts carry no data");

	test_vectors();

	return tap_done();
}
