/*
 * mint_format1.c — seal a value as a format-1 brandbos envelope, the way
 * brandbos did before format 2 (test/scenarios/18_envelope_format1_keys.sh).
 *
 *   mint_format1 ROOT_KEY_FILE WRAPPED_KEY_HEX VERSION AD_HEX PLAIN_HEX
 *
 * Unwraps the data key from brandbos.data_keys.wrapped_key with the root
 * key (XChaCha20-Poly1305, associated data "brandbos data key" || version,
 * as data_keys.c does), then prints, in hex, 0xBB 0x78 0x01 || version || nonce
 * || XChaCha20-Poly1305(plain, associated data = AD): format 1, whose
 * associated data is the caller's bytes alone.  Test code only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

static size_t
from_hex(unsigned char *out, size_t cap, const char *hex)
{
	size_t		n = 0;

	if (sodium_hex2bin(out, cap, hex, strlen(hex), " \n", &n, NULL) != 0)
	{
		fprintf(stderr, "mint_format1: bad hex\n");
		exit(2);
	}
	return n;
}

int
main(int argc, char **argv)
{
	unsigned char root[32],
				wrapped[24 + 32 + 16],
				dkey[32],
				wad[21],
				ad[4096],
				plain[4096],
				out[7 + 24 + 4096 + 16];
	char		hexbuf[256];
	unsigned long version;
	size_t		ad_len,
				plain_len,
				i;
	FILE	   *f;

	if (argc != 6 || sodium_init() < 0)
	{
		fprintf(stderr, "usage: mint_format1 ROOT_KEY_FILE WRAPPED_KEY_HEX VERSION AD_HEX PLAIN_HEX\n");
		return 2;
	}
	f = fopen(argv[1], "r");
	if (f == NULL || fgets(hexbuf, sizeof(hexbuf), f) == NULL)
	{
		fprintf(stderr, "mint_format1: cannot read %s\n", argv[1]);
		return 2;
	}
	fclose(f);
	if (from_hex(root, sizeof(root), hexbuf) != 32 ||
		from_hex(wrapped, sizeof(wrapped), argv[2]) != sizeof(wrapped))
	{
		fprintf(stderr, "mint_format1: root key or wrapped key of the wrong size\n");
		return 2;
	}
	version = strtoul(argv[3], NULL, 10);
	ad_len = from_hex(ad, sizeof(ad), argv[4]);
	plain_len = from_hex(plain, sizeof(plain), argv[5]);

	memcpy(wad, "brandbos data key", 17);
	for (i = 0; i < 4; i++)
		wad[17 + i] = (unsigned char) (version >> (8 * (3 - i)));
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(dkey, NULL, NULL, wrapped + 24, sizeof(wrapped) - 24,
												   wad, sizeof(wad), wrapped, root) != 0)
	{
		fprintf(stderr, "mint_format1: the data key does not unwrap\n");
		return 1;
	}

	out[0] = 0xBB;
	out[1] = 0x78;
	out[2] = 0x01;
	for (i = 0; i < 4; i++)
		out[3 + i] = (unsigned char) (version >> (8 * (3 - i)));
	randombytes_buf(out + 7, 24);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 31, NULL, plain, plain_len, ad, ad_len,
											   NULL, out + 7, dkey);
	for (i = 0; i < 31 + plain_len + 16; i++)
		printf("%02x", out[i]);
	printf("\n");
	sodium_memzero(dkey, sizeof(dkey));
	sodium_memzero(root, sizeof(root));
	return 0;
}
