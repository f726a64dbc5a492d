/*
 * envelope.c — framing, sealing and opening of brandbos envelopes.
 *
 * Pure C on libsodium: no PostgreSQL headers, no allocation, no globals, so
 * the same object links into the extension, the unit tests and the fuzzers.
 * The layout is described in envelope.h.
 */
#include "envelope.h"

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
			return "envelope names data key version 0";
		case BB_ENV_BAD_ENCODING:
			return "printable envelope is not \"bbx1:\" followed by base64url";
		case BB_ENV_FORGED:
			return "envelope does not authenticate";
	}
	return "unknown envelope status";
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

void
bb_env_seal(unsigned char *out,
			const unsigned char *plain, size_t plain_len,
			const unsigned char *ad, size_t ad_len,
			uint32_t key_version,
			const unsigned char *nonce,
			const unsigned char *key)
{
	unsigned long long sealed_len;

	out[0] = BB_ENV_MAGIC0;
	out[1] = BB_ENV_MAGIC1;
	out[2] = BB_ENV_FORMAT;
	put_u32(out + 3, key_version);
	memcpy(out + 7, nonce, BB_ENV_NONCE_BYTES);

	/*
	 * The header itself is not part of the associated data: a changed key
	 * version or nonce already makes the tag fail, and the format byte is
	 * checked before decryption.
	 */
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + BB_ENV_HEADER_BYTES,
											   &sealed_len,
											   plain, plain_len,
											   ad, ad_len,
											   NULL, nonce, key);
}

bb_env_status
bb_env_parse(const unsigned char *in, size_t len, bb_envelope *env)
{
	uint32_t	version;

	if (len >= 2 && (in[0] != BB_ENV_MAGIC0 || in[1] != BB_ENV_MAGIC1))
		return BB_ENV_BAD_MAGIC;
	if (len < BB_ENV_OVERHEAD)
		return len < 2 ? BB_ENV_BAD_MAGIC : BB_ENV_TOO_SHORT;
	if (in[2] != BB_ENV_FORMAT)
		return BB_ENV_BAD_FORMAT;
	version = get_u32(in + 3);
	if (version == 0)
		return BB_ENV_BAD_KEY_VERSION;

	env->key_version = version;
	env->nonce = in + 7;
	env->sealed = in + BB_ENV_HEADER_BYTES;
	env->sealed_len = len - BB_ENV_HEADER_BYTES;
	return BB_ENV_OK;
}

bb_env_status
bb_env_open(unsigned char *plain_out,
			const bb_envelope *env,
			const unsigned char *ad, size_t ad_len,
			const unsigned char *key)
{
	unsigned long long plain_len;
	unsigned char empty[1];

	if (plain_out == NULL)
		plain_out = empty;		/* empty plaintext: nothing is written */

	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain_out, &plain_len, NULL,
												   env->sealed, env->sealed_len,
												   ad, ad_len,
												   env->nonce, key) != 0)
		return BB_ENV_FORGED;
	return BB_ENV_OK;
}

size_t
bb_env_text_size(size_t binary_len)
{
	/* sodium_base64_ENCODED_LEN counts a terminating NUL */
	return BB_ENV_TEXT_PREFIX_LEN +
		sodium_base64_ENCODED_LEN(binary_len,
								  sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1;
}

void
bb_env_to_text(char *out, const unsigned char *bin, size_t bin_len)
{
	size_t		b64_len = bb_env_text_size(bin_len) - BB_ENV_TEXT_PREFIX_LEN;

	memcpy(out, BB_ENV_TEXT_PREFIX, BB_ENV_TEXT_PREFIX_LEN);
	sodium_bin2base64(out + BB_ENV_TEXT_PREFIX_LEN, b64_len + 1, bin, bin_len,
					  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
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
	const char *end = NULL;

	if (!bb_env_text_has_prefix(text, len))
		return BB_ENV_BAD_ENCODING;
	if (sodium_base642bin(bin, bin_cap, text + BB_ENV_TEXT_PREFIX_LEN,
						  len - BB_ENV_TEXT_PREFIX_LEN, NULL, bin_len, &end,
						  sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return BB_ENV_BAD_ENCODING;
	if (end != text + len)
		return BB_ENV_BAD_ENCODING;
	return BB_ENV_OK;
}
