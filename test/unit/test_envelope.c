/*
 * test_envelope.c — unit tests of the envelope codec (src/envelope.c).
 */
#include <string.h>
#include <sodium.h>

#include "envelope.h"
#include "tap.h"

static unsigned char key[BB_ENV_KEY_BYTES];
static unsigned char nonce[BB_ENV_NONCE_BYTES];

static size_t
seal(unsigned char *out, const char *plain, const char *ad, uint32_t version)
{
	bb_env_seal(out, (const unsigned char *) plain, strlen(plain),
				(const unsigned char *) ad, strlen(ad), version, nonce, key);
	return bb_env_sealed_size(strlen(plain));
}

int
main(void)
{
	unsigned char env_buf[256], plain[256], bin[256];
	char		text[512];
	bb_envelope env;
	size_t		len, bin_len;

	if (sodium_init() < 0)
		return 2;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(nonce, sizeof(nonce));

	/* round trip */
	len = seal(env_buf, "refresh-token", "ad", 7);
	ok(len == 47 + 13, "sealed size is header + tag + plaintext");
	ok(env_buf[0] == 0xBB && env_buf[1] == 0x78 && env_buf[2] == 1, "magic and format byte");
	ok(bb_env_parse(env_buf, len, &env) == BB_ENV_OK, "parse a fresh envelope");
	ok(env.key_version == 7, "key version survives the round trip");
	ok(memcmp(env.nonce, nonce, sizeof(nonce)) == 0, "nonce is stored in the header");
	ok(bb_env_plain_size(&env) == 13, "plain size from the envelope");
	ok(bb_env_open(plain, &env, (const unsigned char *) "ad", 2, key) == BB_ENV_OK &&
	   memcmp(plain, "refresh-token", 13) == 0, "open returns the plaintext");

	/* authentication */
	ok(bb_env_open(plain, &env, (const unsigned char *) "AD", 2, key) == BB_ENV_FORGED,
	   "other associated data is refused");
	env_buf[len - 1] ^= 1;
	ok(bb_env_open(plain, &env, (const unsigned char *) "ad", 2, key) == BB_ENV_FORGED,
	   "a flipped tag bit is refused");
	env_buf[len - 1] ^= 1;
	env_buf[BB_ENV_HEADER_BYTES] ^= 0x80;
	ok(bb_env_open(plain, &env, (const unsigned char *) "ad", 2, key) == BB_ENV_FORGED,
	   "a flipped ciphertext bit is refused");
	env_buf[BB_ENV_HEADER_BYTES] ^= 0x80;
	{
		unsigned char other[BB_ENV_KEY_BYTES];

		randombytes_buf(other, sizeof(other));
		ok(bb_env_open(plain, &env, (const unsigned char *) "ad", 2, other) == BB_ENV_FORGED,
		   "another key is refused");
	}

	/* framing errors */
	ok(bb_env_parse(env_buf, 0, &env) == BB_ENV_BAD_MAGIC, "empty input: bad magic");
	ok(bb_env_parse(env_buf, 1, &env) == BB_ENV_BAD_MAGIC, "one byte: bad magic");
	ok(bb_env_parse(env_buf, 46, &env) == BB_ENV_TOO_SHORT, "46 bytes: too short");
	ok(bb_env_parse((const unsigned char *) "hello world, this is not an envelope at all....", 47, &env) == BB_ENV_BAD_MAGIC,
	   "plaintext: bad magic");
	env_buf[2] = 2;
	ok(bb_env_parse(env_buf, len, &env) == BB_ENV_BAD_FORMAT, "format 2: unsupported");
	env_buf[2] = 1;
	memset(env_buf + 3, 0, 4);
	ok(bb_env_parse(env_buf, len, &env) == BB_ENV_BAD_KEY_VERSION, "key version 0 is refused");

	/* empty plaintext */
	len = seal(env_buf, "", "", 1);
	ok(len == 47, "empty plaintext seals to 47 bytes");
	ok(bb_env_parse(env_buf, len, &env) == BB_ENV_OK &&
	   bb_env_open(NULL, &env, NULL, 0, key) == BB_ENV_OK, "empty plaintext opens");

	/* printable form */
	len = seal(env_buf, "printable", "x", 3);
	bb_env_to_text(text, env_buf, len);
	ok(strncmp(text, "bbx1:", 5) == 0, "printable form starts with bbx1:");
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
	/* the composed AEAD is libsodium's XChaCha20-Poly1305-IETF, byte for byte */
	{
		int			same = 1,
					interop = 1;
		size_t		n;
		static unsigned char msg[5000],
					mine[5100],
					ref[5100],
					back[5000];

		for (n = 0; n <= 5000; n += (n < 300 ? 1 : 397))
		{
			unsigned long long ref_len;
			unsigned char ad2[37];
			bb_envelope e;

			randombytes_buf(msg, n);
			randombytes_buf(ad2, sizeof(ad2));
			randombytes_buf(nonce, sizeof(nonce));
			bb_env_seal(mine, msg, n, ad2, n % 38, 9, nonce, key);
			crypto_aead_xchacha20poly1305_ietf_encrypt(ref, &ref_len, msg, n, ad2, n % 38,
													   NULL, nonce, key);
			if (ref_len != n + 16 || memcmp(mine + BB_ENV_HEADER_BYTES, ref, ref_len) != 0)
				same = 0;
			if (bb_env_parse(mine, bb_env_sealed_size(n), &e) != BB_ENV_OK ||
				bb_env_open(back, &e, ad2, n % 38, key) != BB_ENV_OK ||
				memcmp(back, msg, n) != 0)
				interop = 0;
			mine[BB_ENV_HEADER_BYTES + n / 2] ^= 4;
			if (bb_env_open(back, &e, ad2, n % 38, key) != BB_ENV_FORGED)
				interop = 0;
		}
		ok(same, "sealing equals libsodium's AEAD for 0..300 bytes and up to 5000 (both code paths)");
		ok(interop, "what is sealed opens, and any flipped bit is refused, on both code paths");
	}
	ok(strcmp(bb_env_status_text(BB_ENV_FORGED), "envelope does not authenticate") == 0,
	   "status texts carry no data");

	return tap_done();
}
