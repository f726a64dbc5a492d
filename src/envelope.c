/*
 * envelope.c — framing, sealing and opening of brandbos envelopes.
 *
 * Pure C on libsodium: no PostgreSQL headers, no allocation, no globals, so
 * the same object links into the extension, the unit tests and the fuzzers.
 * The layout, the two formats and the domains are described in envelope.h.
 */
#include "envelope.h"
#include "base64url.h"

#include <string.h>
#include <sodium.h>

const char *
bb_env_status_text(bb_env_status status)
{
	switch (status)
	{
		case BB_ENV_OK:
			return "ok";
		case BB_ENV_TOO_SHORT:
			return "envelope is shorter than its header and tag";
		case BB_ENV_BAD_MAGIC:
			return "value does not start with the brandbos envelope magic";
		case BB_ENV_BAD_FORMAT:
			return "envelope format version is not supported";
		case BB_ENV_BAD_KEY_VERSION:
			return "envelope names no valid data key version (1 to 2147483647)";
		case BB_ENV_BAD_ENCODING:
			return "printable envelope is not \"bbx1:\" followed by base64url";
		case BB_ENV_FORGED:
			return "envelope does not authenticate";
	}
	return "unknown envelope status";
}

/*
 * XChaCha20-Poly1305-IETF, composed from libsodium's primitives.
 *
 * The AEAD derives a subkey with HChaCha20, takes the Poly1305 key from
 * keystream block 0 and encrypts from block 1.  libsodium's AEAD asks for
 * those as two separate keystream calls, and below 256 bytes its ChaCha20
 * runs one block at a time; a single call over [64 zero bytes || message]
 * yields block 0 and the ciphertext together on the multi-block code path,
 * roughly halving the cost for secrets of a few hundred bytes.  Larger
 * values take the two calls, straight into the caller's buffers.
 *
 * The associated data is given in two pieces, a prefix (format 2: header
 * and domain, 32 bytes) and the caller's bytes, and authenticated as their
 * concatenation, so the format-2 header costs two Poly1305 blocks and a
 * 32-byte copy on the stack.  The output is byte-for-byte libsodium's AEAD
 * over prefix || ad (the unit tests compare both ways, on both code paths).
 */
#define FAST_PATH_MAX 4096
#define V2_PREFIX_BYTES (BB_ENV_HEADER_BYTES + 1)

static void
xchacha_subkey(unsigned char *subkey, unsigned char *nonce12,
			   const unsigned char *nonce24, const unsigned char *key)
{
	crypto_core_hchacha20(subkey, nonce24, key, NULL);
	memset(nonce12, 0, 4);
	memcpy(nonce12 + 4, nonce24 + 16, 8);
}

static void
poly1305_tag(unsigned char *tag, const unsigned char *poly_key,
			 const unsigned char *pre, size_t pre_len,
			 const unsigned char *ad, size_t ad_len,
			 const unsigned char *ct, size_t ct_len)
{
	static const unsigned char zeros[16];
	crypto_onetimeauth_poly1305_state st;
	unsigned char lengths[16];
	uint64_t	a = (uint64_t) pre_len + ad_len,
				c = ct_len;
	int			i;

	for (i = 0; i < 8; i++)
	{
		lengths[i] = (unsigned char) (a >> (8 * i));
		lengths[8 + i] = (unsigned char) (c >> (8 * i));
	}
	crypto_onetimeauth_poly1305_init(&st, poly_key);
	if (pre_len > 0)
		crypto_onetimeauth_poly1305_update(&st, pre, pre_len);
	if (ad_len > 0)
		crypto_onetimeauth_poly1305_update(&st, ad, ad_len);
	crypto_onetimeauth_poly1305_update(&st, zeros, (16 - a % 16) % 16);
	crypto_onetimeauth_poly1305_update(&st, ct, ct_len);
	crypto_onetimeauth_poly1305_update(&st, zeros, (16 - ct_len % 16) % 16);
	crypto_onetimeauth_poly1305_update(&st, lengths, 16);
	crypto_onetimeauth_poly1305_final(&st, tag);	/* wipes st */
}

static void
aead_encrypt(unsigned char *out, const unsigned char *plain, size_t plain_len,
			 const unsigned char *pre, size_t pre_len,
			 const unsigned char *ad, size_t ad_len,
			 const unsigned char *nonce, const unsigned char *key)
{
	unsigned char buf[64 + FAST_PATH_MAX];
	unsigned char subkey[32];
	unsigned char nonce12[12];
	size_t		in_buf = plain_len > FAST_PATH_MAX ? 0 : plain_len;

	xchacha_subkey(subkey, nonce12, nonce, key);
	memset(buf, 0, 64);
	if (in_buf > 0)
		memcpy(buf + 64, plain, in_buf);
	crypto_stream_chacha20_ietf_xor_ic(buf, buf, 64 + in_buf, nonce12, 0, subkey);
	if (in_buf > 0)
		memcpy(out, buf + 64, in_buf);
	else if (plain_len > 0)
		crypto_stream_chacha20_ietf_xor_ic(out, plain, plain_len, nonce12, 1, subkey);
	poly1305_tag(out + plain_len, buf, pre, pre_len, ad, ad_len, out, plain_len);
	sodium_memzero(buf, 64 + in_buf);
	sodium_memzero(subkey, sizeof(subkey));
}

/* returns 0 when the tag verifies; plain_out is written only then */
static int
aead_decrypt(unsigned char *plain_out, const unsigned char *sealed, size_t sealed_len,
			 const unsigned char *pre, size_t pre_len,
			 const unsigned char *ad, size_t ad_len,
			 const unsigned char *nonce, const unsigned char *key)
{
	unsigned char buf[64 + FAST_PATH_MAX];
	unsigned char subkey[32];
	unsigned char nonce12[12];
	unsigned char tag[16];
	size_t		ct_len = sealed_len - BB_ENV_TAG_BYTES;
	size_t		in_buf = ct_len > FAST_PATH_MAX ? 0 : ct_len;
	int			rc;

	xchacha_subkey(subkey, nonce12, nonce, key);
	memset(buf, 0, 64);
	if (in_buf > 0)
		memcpy(buf + 64, sealed, in_buf);
	crypto_stream_chacha20_ietf_xor_ic(buf, buf, 64 + in_buf, nonce12, 0, subkey);
	poly1305_tag(tag, buf, pre, pre_len, ad, ad_len, sealed, ct_len);
	rc = crypto_verify_16(tag, sealed + ct_len);
	if (rc == 0 && in_buf > 0)
		memcpy(plain_out, buf + 64, in_buf);
	else if (rc == 0 && ct_len > 0)
		crypto_stream_chacha20_ietf_xor_ic(plain_out, sealed, ct_len, nonce12, 1, subkey);
	sodium_memzero(buf, 64 + in_buf);
	sodium_memzero(subkey, sizeof(subkey));
	return rc == 0 ? 0 : -1;
}

static void
put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char) (v >> 24);
	p[1] = (unsigned char) (v >> 16);
	p[2] = (unsigned char) (v >> 8);
	p[3] = (unsigned char) v;
}

static uint32_t
get_u32(const unsigned char *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

/* format 2's associated-data prefix: the header, then the domain byte */
static void
v2_prefix(unsigned char *pre, const unsigned char *header, bb_env_domain domain)
{
	memcpy(pre, header, BB_ENV_HEADER_BYTES);
	pre[BB_ENV_HEADER_BYTES] = (unsigned char) domain;
}

void
bb_env_seal(unsigned char *out,
			const unsigned char *plain, size_t plain_len,
			bb_env_domain domain,
			const unsigned char *ad, size_t ad_len,
			uint32_t key_version,
			const unsigned char *nonce,
			const unsigned char *key)
{
	unsigned char pre[V2_PREFIX_BYTES];

	out[0] = BB_ENV_MAGIC0;
	out[1] = BB_ENV_MAGIC1;
	out[2] = BB_ENV_FORMAT_2;
	put_u32(out + 3, key_version);
	memcpy(out + 7, nonce, BB_ENV_NONCE_BYTES);
	v2_prefix(pre, out, domain);
	aead_encrypt(out + BB_ENV_HEADER_BYTES, plain, plain_len, pre, sizeof(pre),
				 ad, ad_len, nonce, key);
}

bb_env_status
bb_env_parse(const unsigned char *in, size_t len, bb_envelope *env)
{
	uint32_t	version;

	if (len >= 2 && (in[0] != BB_ENV_MAGIC0 || in[1] != BB_ENV_MAGIC1))
		return BB_ENV_BAD_MAGIC;
	if (len < BB_ENV_OVERHEAD)
		return len < 2 ? BB_ENV_BAD_MAGIC : BB_ENV_TOO_SHORT;
	if (in[2] != BB_ENV_FORMAT_1 && in[2] != BB_ENV_FORMAT_2)
		return BB_ENV_BAD_FORMAT;
	version = get_u32(in + 3);
	if (version == 0 || version > BB_ENV_KEY_VERSION_MAX)
		return BB_ENV_BAD_KEY_VERSION;

	env->format = in[2];
	env->key_version = version;
	env->header = in;
	env->nonce = in + 7;
	env->sealed = in + BB_ENV_HEADER_BYTES;
	env->sealed_len = len - BB_ENV_HEADER_BYTES;
	return BB_ENV_OK;
}

bb_env_status
bb_env_open(unsigned char *plain_out,
			const bb_envelope *env,
			bb_env_domain domain,
			const unsigned char *ad, size_t ad_len,
			const unsigned char *key)
{
	unsigned char empty[1];
	unsigned char pre[V2_PREFIX_BYTES];
	size_t		pre_len = 0;

	if (plain_out == NULL)
		plain_out = empty;		/* empty plaintext: nothing is written */

	if (env->format == BB_ENV_FORMAT_2)
	{
		v2_prefix(pre, env->header, domain);
		pre_len = sizeof(pre);
	}
	else if (domain == BB_ENV_DOMAIN_USER && ad_len >= BB_ENV_COLUMN_LABEL_LEN &&
			 memcmp(ad, BB_ENV_COLUMN_LABEL, BB_ENV_COLUMN_LABEL_LEN) == 0)
		return BB_ENV_FORGED;	/* format 1: a column binding, never a user's */

	if (aead_decrypt(plain_out, env->sealed, env->sealed_len, pre, pre_len,
					 ad, ad_len, env->nonce, key) != 0)
		return BB_ENV_FORGED;
	return BB_ENV_OK;
}

size_t
bb_env_text_size(size_t binary_len)
{
	return BB_ENV_TEXT_PREFIX_LEN + bb_b64url_encoded_len(binary_len);
}

void
bb_env_to_text(char *out, const unsigned char *bin, size_t bin_len)
{
	memcpy(out, BB_ENV_TEXT_PREFIX, BB_ENV_TEXT_PREFIX_LEN);
	bb_b64url_encode(out + BB_ENV_TEXT_PREFIX_LEN, bin, bin_len);
}

int
bb_env_text_has_prefix(const char *text, size_t len)
{
	return len >= BB_ENV_TEXT_PREFIX_LEN &&
		memcmp(text, BB_ENV_TEXT_PREFIX, BB_ENV_TEXT_PREFIX_LEN) == 0;
}

bb_env_status
bb_env_from_text(unsigned char *bin, size_t bin_cap, size_t *bin_len,
				 const char *text, size_t len)
{
	if (!bb_env_text_has_prefix(text, len))
		return BB_ENV_BAD_ENCODING;
	if (bb_b64url_decode(bin, bin_cap, bin_len, text + BB_ENV_TEXT_PREFIX_LEN,
						 len - BB_ENV_TEXT_PREFIX_LEN) != 0)
		return BB_ENV_BAD_ENCODING;
	return BB_ENV_OK;
}
