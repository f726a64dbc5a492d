/*
 * fuzz_envelope.c — libFuzzer target for the binary envelope: framing and
 * authenticated opening with a fixed key, in both domains and both formats.
 * Every input must be refused or opened without a crash, leak or UB, and
 * nothing may open in both domains (they are apart for every format).  (The printable form has its own
 * target, fuzz_printable_envelope.c.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "envelope.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char key[BB_ENV_KEY_BYTES];
	static int	initialised = 0;
	bb_envelope env;
	unsigned char *plain;

	if (!initialised)
	{
		if (sodium_init() < 0)
			abort();
		memset(key, 7, sizeof(key));
		initialised = 1;
	}

	/* raw envelope */
	if (bb_env_parse(data, size, &env) == BB_ENV_OK)
	{
		/* the associated data: the input's last bytes, up to 40 of them */
		size_t		ad_len = size % 41;
		const unsigned char *ad = data + size - ad_len;
		bb_env_status user,
					column;
		unsigned char *ad_space = malloc(bb_env_ad_space_size(ad_len > 2 ? ad_len : 2));

		plain = malloc(bb_env_plain_size(&env) + 1);
		(void) bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, (const unsigned char *) "ad", 2, ad_space, key);
		user = bb_env_open(plain, &env, BB_ENV_DOMAIN_USER, ad, ad_len, ad_space, key);
		column = bb_env_open(plain, &env, BB_ENV_DOMAIN_COLUMN, ad, ad_len, ad_space, key);
		if (user == BB_ENV_OK && column == BB_ENV_OK && env.format == BB_ENV_FORMAT_2)
			abort();			/* one envelope in both domains */
		free(plain);
		free(ad_space);
	}

	return 0;
}
